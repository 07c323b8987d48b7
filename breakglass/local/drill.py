"""The drill: a whole break-glass incident on the embedded emulator, every step checked.

The program (``examples/quickstart``) is deployed into the emulator with IAM enforced, an AI
system is seeded, people are enrolled, and the incident plays through the same command, emails,
pages and AWS CLI a person uses:

1. the model's error alarm fires and the tripwire halts the endpoint without waiting for anyone;
2. a responder asks for ``admin`` with a justification, a ticket and their TOTP code;
3. two approvers open the emailed links and approve on the page (their TOTP, a POST);
4. the responder's credentials reach the AWS CLI through ``credential_process`` and it investigates;
5. the responder resumes the model through a tier that may resume;
6. the responder extends the window by 30 minutes; both approvers approve it again from a terminal;
7. the first window ends (time fast-forwarded): its session is refused a second later while the
   extension's session works, until the second window ends and it is refused too;
8. security copies the audit bucket, runs the named queries offline, writes the incident report
   and records the review;
9. the sealed last resort: a break-glass IAM user with a hardware MFA device assumes the sealed
   role; both regions' alert topics and the alert addresses hear of it, the use is in the locked
   bucket with its mandatory review open, and the hourly check finds nothing out of place.

Each step checks what it expects and says what it saw: the drill passes only when every step did
what it should.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from breakglass.cli.steps import DrillFailed, DrillResult, Step, Timeline, check
from breakglass.contracts import parse_iso
from breakglass.local.world import QUICKSTART, World, open_world

REASON: Final = "the chat model answers with other customers' data; rotate its guardrail and keys"
TICKET: Final = "INC-2213"
RESPONDER: Final = "rita"
APPROVERS: Final = ("ann", "bob")
SECURITY: Final = "sec"
PEOPLE: Final[Mapping[str, tuple[str, ...]]] = {
    RESPONDER: ("responder",),
    "ann": ("approver",),
    "bob": ("approver",),
    "cat": ("approver",),
    SECURITY: ("security",),
}
MFA_SERIAL: Final = "arn:aws:iam::{account}:mfa/rita"
# The quickstart's sealed user and the serial of its hardware token (not an ARN: not virtual).
SEALED_USER: Final = "breakglass-sealed"
SEALED_MFA_SERIAL: Final = "GAHT12345678"


class Drill(Timeline):
    """One run: the world, the timeline, the checks."""

    def __init__(
        self, world: World, *, report_dir: Path, on_step: Callable[[Step], None], pause: float
    ) -> None:
        super().__init__(on_step=on_step, pause=pause)
        self.world = world
        self.report_dir = report_dir
        self.request_id = ""
        self.session: dict[str, str] = {}
        self.extension_id = ""
        self.expires_at = ""
        self.profile = ""
        self.report: str | None = None

    def cli(self, person: str, *args: str) -> Any:
        return self.world.cli(person, *args)

    # -- the incident --------------------------------------------------------------------------------

    def run(self) -> None:
        self.seed()
        self.tripwire()
        self.request()
        self.approve()
        self.investigate()
        self.resume()
        self.extend()
        self.expire()
        self.audit()
        self.sealed()

    def seed(self) -> None:
        with self.step("seed", "an AI system and the people around it") as note:
            self.world.seed_ai_system()
            enrolled = [p.user for p in self.world.people.values() if p.totp_secret]
            check("seed", len(enrolled) == len(PEOPLE), f"{len(PEOPLE)} people enrolled", enrolled)
            described = self.world.emulator.client("sagemaker").describe_endpoint(EndpointName="chat-prod")
            check(
                "seed",
                described["EndpointStatus"] == "InService",
                "chat-prod InService",
                described["EndpointStatus"],
            )
            note["detail"] = (
                f"endpoint chat-prod (InService), invoker role chat-api; enrolled: {', '.join(enrolled)}"
            )

    def tripwire(self) -> None:
        with self.step("tripwire", "the model's error alarm fires: the tripwire halts it") as note:
            alarm = next(
                a
                for a in self.world.deployment.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                if "-trip-" in a.name
            )
            name = str(alarm.output("name"))
            self.world.emulator.client("cloudwatch").set_alarm_state(
                AlarmName=name, StateValue="ALARM", StateReason="Threshold Crossed: 2 of 3 datapoints >= 5"
            )
            policies = self.world.emulator.client("iam").list_role_policies(RoleName="chat-api")[
                "PolicyNames"
            ]
            check(
                "tripwire", policies == ["breakglass-halt-chat"], "a deny-invoke policy on chat-api", policies
            )
            halts = [e for e in self.world.audit_events() if e.event_type == "halt"]
            check(
                "tripwire",
                [h.actor for h in halts] == ["tripwire:chat-5xx"],
                "one halt by tripwire:chat-5xx",
                [(h.actor, h.outcome) for h in halts],
            )
            note["detail"] = (
                f"alarm {name} in ALARM -> chat halted (deny-invoke on chat-api) by tripwire:chat-5xx"
            )

    def request(self) -> None:
        with self.step(
            "request", f"{RESPONDER} asks for admin with a justification, a ticket and TOTP"
        ) as note:
            run = self.world.request(
                RESPONDER, "admin", REASON, "--ticket", TICKET, "--duration", "1h", "--no-wait"
            )
            check("request", run.exit_code == 0, "exit 0", run.stderr.strip())
            made = run.json()
            check("request", made["status"] == "pending" and made["quorum"] == 2, "pending, quorum 2", made)
            self.request_id = str(made["request_id"])
            note["detail"] = (
                f"breakglass request --tier admin ... -> {self.request_id} pending (2 approvals needed)"
            )

    def approve(self) -> None:
        with self.step("approve", "two approvers approve from the emailed link (page, TOTP, POST)") as note:
            rid = self.request_id
            decided = []
            for approver in APPROVERS:
                links = self.world.approval_links(approver, rid, wait=20)
                status, page = self.world.open_link(links[0])
                check(
                    "approve",
                    status == 200 and TICKET in page,
                    "the confirmation page (GET decides nothing)",
                    status,
                )
                status, page = self.world.decide(approver, links[0], "approve")
                check("approve", status == 200, "HTTP 200 for the vote", (status, page[:200]))
                decided.append(approver)
            check(
                "approve",
                self.world.approval_links(RESPONDER, rid) == [],
                "no link for the requester",
                "a link",
            )
            granted = self.world.wait_for(rid, ["granted", "denied"])
            check("approve", granted["status"] == "granted", "granted", granted["status"])
            self.expires_at = str(granted["expires_at"])
            note["detail"] = (
                f"{' and '.join(decided)} approved on the page -> granted until {granted['expires_at']}"
            )

    def investigate(self) -> None:
        with self.step("investigate", "the AWS CLI works as the emergency role (credential_process)") as note:
            rid = self.request_id
            mfa = [
                "--mfa-serial",
                MFA_SERIAL.format(account=self.world.emulator.account_id),
                "--mfa-code",
                "123456",
            ]
            assumed = self.cli(RESPONDER, "assume", rid, "--format", "json", *mfa)
            check(
                "investigate",
                assumed.exit_code == 0,
                "credentials for the emergency role",
                assumed.stderr.strip(),
            )
            self.session = assumed.json()
            configured = self.cli(RESPONDER, "configure-profile", rid, "--json")
            check("investigate", configured.exit_code == 0, "a profile written", configured.stderr.strip())
            self.profile = configured.json()["profile"]
            identity = self._aws("sts", "get-caller-identity")
            expected = f":assumed-role/breakglass-emergency-admin/{RESPONDER}"
            check(
                "investigate",
                identity.get("Arn", "").endswith(expected),
                f"the AWS CLI as ...{expected}",
                identity,
            )
            endpoint = self._aws("sagemaker", "describe-endpoint", "--endpoint-name", "chat-prod")
            check(
                "investigate", endpoint.get("EndpointName") == "chat-prod", "the endpoint described", endpoint
            )
            note["detail"] = (
                f"breakglass configure-profile {rid}; aws --profile {self.profile} sts get-caller-identity -> "
                f"{identity['Arn']}; sagemaker describe-endpoint chat-prod"
            )

    def _aws(self, *args: str) -> dict[str, Any]:
        command = [sys.executable, "-m", "awscli", "--profile", self.profile, "--output", "json", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=dict(os.environ))
        if done.returncode != 0:
            raise DrillFailed("investigate", f"`aws {' '.join(args)}` to succeed", done.stderr.strip()[-500:])
        return dict(json.loads(done.stdout or "{}"))

    def resume(self) -> None:
        with self.step(
            "resume", f"{RESPONDER} resumes the model through admin, a tier approved by people"
        ) as note:
            run = self.cli(
                RESPONDER,
                "resume",
                "chat",
                "--tier",
                "admin",
                "--reason",
                "guardrail fixed and tested",
                "--json",
            )
            check("resume", run.exit_code == 0, "exit 0", run.stderr.strip())
            policies = self.world.emulator.client("iam").list_role_policies(RoleName="chat-api")[
                "PolicyNames"
            ]
            check("resume", policies == [], "the deny-invoke policy gone", policies)
            resumes = [(e.actor, e.request_id) for e in self.world.audit_events() if e.event_type == "resume"]
            check("resume", resumes == [(RESPONDER, self.request_id)], f"one resume by {RESPONDER}", resumes)
            note["detail"] = (
                f"breakglass resume chat --tier admin -> resumed, recorded as {RESPONDER} ({self.request_id})"
            )

    def _mfa(self) -> list[str]:
        return [
            "--mfa-serial",
            MFA_SERIAL.format(account=self.world.emulator.account_id),
            "--mfa-code",
            "123456",
        ]

    def extend(self) -> None:
        with self.step("extend", f"{RESPONDER} extends by 30m; both approvers approve it again") as note:
            rid = self.request_id
            run = self.cli(
                RESPONDER,
                "extend",
                rid,
                "--by",
                "30m",
                "--reason",
                "the guardrail rollback needs another half hour",
                "--totp",
                self.world.code(RESPONDER),
                "--no-wait",
                "--json",
            )
            check("extend", run.exit_code == 0, "exit 0", run.stderr.strip())
            made = run.json()
            check("extend", made["status"] == "pending" and made["quorum"] == 2, "pending, quorum 2", made)
            self.extension_id = ext = str(made["request_id"])
            for approver in APPROVERS:
                voted = self.cli(approver, "approve", ext, "--totp", self.world.code(approver), "--json")
                check("extend", voted.exit_code == 0, f"{approver}'s approval counted", voted.stderr.strip())
            granted = self.world.wait_for(ext, ["granted", "denied"])
            check(
                "extend",
                granted["status"] == "granted" and granted["starts_at"] == self.expires_at,
                f"granted from {self.expires_at}",
                (granted["status"], granted.get("starts_at")),
            )
            early = self.cli(RESPONDER, "assume", ext, "--format", "json", *self._mfa())
            check(
                "extend",
                early.exit_code == 1 and "opens at" in early.stderr,
                "assume refused until the second window opens",
                early.stderr.strip(),
            )
            note["detail"] = (
                f"breakglass extend {rid} --by 30m -> {ext}; {' and '.join(APPROVERS)} approved -> "
                f"granted {granted['starts_at']} to {granted['expires_at']}"
            )

    def _call(self, session: Mapping[str, str]) -> str:
        sagemaker = self.world.emulator.client_as(
            "sagemaker",
            {
                "AccessKeyId": session["AWS_ACCESS_KEY_ID"],
                "SecretAccessKey": session["AWS_SECRET_ACCESS_KEY"],
                "SessionToken": session["AWS_SESSION_TOKEN"],
            },
        )
        try:
            sagemaker.describe_endpoint(EndpointName="chat-prod")
        except Exception as exc:
            return "AccessDenied" if "AccessDenied" in str(exc) else str(exc)[:200]
        return "ok"

    def expire(self) -> None:
        with self.step(
            "expire", "each window ends (time fast-forwarded); its session's call a second later is refused"
        ) as note:
            ended = self.world.end_window(self.request_id)
            check("expire", ended["status"] == "expired", "expired", ended["status"])
            kinds = [(e.event_type, e.outcome) for e in self.world.audit_events(self.request_id)]
            check("expire", ("expiry", "succeeded") in kinds, "an expiry event", kinds)
            self.world.emulator.fast_forward(parse_iso(str(ended["expires_at"])) + timedelta(seconds=1))
            check(
                "expire", self._call(self.session) == "AccessDenied", "AccessDenied", self._call(self.session)
            )
            assumed = self.cli(RESPONDER, "assume", self.extension_id, "--format", "json", *self._mfa())
            check("expire", assumed.exit_code == 0, "the extension's session", assumed.stderr.strip())
            second = assumed.json()
            check("expire", self._call(second) == "ok", "the extension's session works", self._call(second))
            last = self.world.end_window(self.extension_id)
            check("expire", last["status"] == "expired", "the extension expired", last["status"])
            self.world.emulator.fast_forward(parse_iso(str(last["expires_at"])) + timedelta(seconds=1))
            check("expire", self._call(second) == "AccessDenied", "AccessDenied", self._call(second))
            note["detail"] = (
                f"expired at {ended['expires_at']}: the first session's call one second later: AccessDenied; "
                f"the extension's session worked until {last['expires_at']}, then AccessDenied"
            )

    def audit(self) -> None:
        with self.step(
            "audit", "security copies the record, queries it offline, reports and reviews"
        ) as note:
            self.world.emulator.cloudtrail.flush()
            copy = self.report_dir / "audit-copy"
            synced = self.cli(SECURITY, "audit", "sync", str(copy), "--json")
            check("audit", synced.exit_code == 0, "a verified copy of the bucket", synced.stderr.strip())
            window = ["--param", "start=2000-01-01T00:00:00Z", "--param", "end=2100-01-01T00:00:00Z"]
            actions = self.cli(
                SECURITY,
                "audit",
                "query",
                "session_actions",
                "--local",
                str(copy),
                "--param",
                f"source_identity={RESPONDER}",
                *window,
                "--json",
            )
            check("audit", actions.exit_code == 0, "session_actions runs", actions.stderr.strip())
            names = [r.get("event_name") for r in _rows(actions.json())]
            check(
                "audit",
                "DescribeEndpoint" in names,
                "the AWS CLI's DescribeEndpoint in session_actions",
                names,
            )
            outside = self.cli(
                SECURITY,
                "audit",
                "query",
                "access_outside_grants",
                "--local",
                str(copy),
                "--fail-on-rows",
                "--json",
            )
            check(
                "audit",
                outside.exit_code == 0,
                "access_outside_grants empty",
                outside.stdout[:300] or outside.stderr,
            )
            reported = self.cli(
                SECURITY,
                "audit",
                "report",
                self.request_id,
                "--local",
                str(copy),
                "--out",
                str(self.report_dir),
                "--json",
            )
            check("audit", reported.exit_code == 0, "the incident report written", reported.stderr.strip())
            report = next(self.report_dir.glob(f"*{self.request_id}*.html"), None)
            check("audit", report is not None, "an HTML report", list(self.report_dir.iterdir()))
            self.report = str(report)
            reviewed = self.cli(
                SECURITY,
                "audit",
                "review",
                self.request_id,
                "--verdict",
                "accepted",
                "--notes",
                "drill: every call was within the ticket's scope",
                "--totp",
                self.world.code(SECURITY),
                "--json",
            )
            check("audit", reviewed.exit_code == 0, "the review recorded", reviewed.stderr.strip())
            note["detail"] = (
                f"{len(names)} calls of {RESPONDER}'s session in session_actions, access_outside_grants empty, "
                f"report {report.name if report else None}, review accepted"
            )

    def sealed(self) -> None:
        with self.step(
            "sealed", "the sealed last resort: a use alerts both regions and opens a review"
        ) as note:
            from breakglass.local import eventbridge

            world, user = self.world, SEALED_USER
            settings = json.loads(
                world.emulator.client("ssm").get_parameter(Name=f"/breakglass/{world.name}/sealed_access")[
                    "Parameter"
                ]["Value"]
            )
            iam = world.emulator.client("iam")
            # What a person does out of band once: a hardware MFA device on the sealed user. The
            # console session (password + MFA) is stood in for by an access key, removed at once.
            iam.enable_mfa_device(
                UserName=user,
                SerialNumber=SEALED_MFA_SERIAL,
                AuthenticationCode1="123456",
                AuthenticationCode2="654321",
            )
            key = iam.create_access_key(UserName=user)["AccessKey"]
            before = len(eventbridge.deliveries(world.emulator.account_id))
            sent_before = len(world.emulator.sent_emails())
            try:
                sts = world.emulator.client_as(
                    "sts", {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
                )
                assumed = sts.assume_role(
                    RoleArn=settings["role_arn"],
                    RoleSessionName=user,
                    SerialNumber=SEALED_MFA_SERIAL,
                    TokenCode="123456",
                )
                world.emulator.cloudtrail.flush()  # CloudTrail hands the AssumeRole to EventBridge
            finally:
                iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
            arn = assumed["AssumedRoleUser"]["Arn"]
            check(
                "sealed",
                arn.endswith(f"/breakglass-sealed/{user}"),
                f"a session of the sealed role as {user}",
                arn,
            )
            topics = {r["topic_arn"] for r in settings["regions"].values()}
            heard = {
                d.target_arn
                for d in eventbridge.deliveries(world.emulator.account_id)[before:]
                if d.outcome == "delivered"
            }
            check("sealed", topics <= heard, "both regions' sealed topics alerted", sorted(heard))
            mailed = {
                address
                for m in world.emulator.sent_emails()[sent_before:]
                for address in getattr(m, "destinations", {}).get("ToAddresses", [])
            }
            check(
                "sealed",
                set(settings["alert_emails"]) <= mailed,
                "every alert address mailed",
                sorted(mailed),
            )
            uses = [e for e in world.audit_events() if e.event_type == "sealed-use" and e.actor == user]
            check("sealed", len(uses) == 1 and bool(uses[0].request_id), "one sealed-use record", uses)
            review_id = str(uses[0].request_id)
            kinds = [(e.event_type, e.outcome) for e in world.audit_events(review_id)]
            check("sealed", ("review", "opened") in kinds, "its mandatory review opened", kinds)
            answer = world.emulator.client("lambda").invoke(
                FunctionName=settings["check_function"], Payload=b"{}"
            )
            findings = json.loads(answer["Payload"].read()).get("findings")
            check("sealed", findings == [], "the sealed check finds nothing", findings)
            note["detail"] = (
                f"{user} assumed {arn.split(':')[-1]} with MFA -> alerts in {len(topics)} regions' topics, "
                f"mail to {', '.join(sorted(mailed))}; sealed-use {review_id}, review opened; check: no finding"
            )


def _rows(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, list):
        return [dict(r) for r in document]
    if isinstance(document, Mapping):
        return [dict(r) for r in document.get("rows", [])]
    return []


def deployment_summary(world: World) -> dict[str, Any]:
    """One screen: resources by kind, the tiers, the halt targets."""
    kinds = Counter(r.type.split(":")[-1] for r in world.deployment.resources if r.custom)
    tiers_parameter = world.emulator.client("ssm").get_parameter(Name=f"/breakglass/{world.name}/tiers")
    tiers = json.loads(tiers_parameter["Parameter"]["Value"])
    targets = json.loads(
        world.emulator.client("ssm").get_parameter(Name=f"/breakglass/{world.name}/halt_targets")[
            "Parameter"
        ]["Value"]
    )
    return {
        "resources": sum(kinds.values()),
        "by_kind": dict(kinds.most_common()),
        "tiers": {
            name: {
                "approval": "auto" if t["quorum"] == 0 else t["quorum"],
                "max_window_seconds": t["max_window_seconds"],
                "may_resume": t["may_resume"],
            }
            for name, t in sorted(tiers.items())
        },
        "targets": targets,
        "account": world.emulator.account_id,
    }


def run_drill(
    program: Path = QUICKSTART,
    *,
    report_dir: Path | None = None,
    on_start: Callable[[dict[str, Any]], None] = lambda summary: None,
    on_step: Callable[[Step], None] = lambda step: None,
    pause: float = 0.0,
) -> DrillResult:
    """Play the incident; never raises for a failed step (the result says which and why)."""
    began = time.perf_counter()
    logging.disable(logging.INFO)  # the Lambdas' lines go to their own logs; this is the timeline
    with tempfile.TemporaryDirectory(prefix="breakglass-drill-") as scratch:
        target = Path(report_dir) if report_dir else Path(scratch)
        target.mkdir(parents=True, exist_ok=True)
        try:
            with open_world(program, name="drill", people=PEOPLE) as world:
                summary = deployment_summary(world)
                on_start(summary)
                drill = Drill(world, report_dir=target, on_step=on_step, pause=pause)
                try:
                    drill.run()
                    ok = True
                except DrillFailed:
                    ok = False
                report = drill.report if report_dir else None
                return DrillResult(
                    ok, time.perf_counter() - began, summary, drill.steps, report, drill.request_id or None
                )
        finally:
            logging.disable(logging.NOTSET)


__all__ = ["DrillFailed", "DrillResult", "Step", "check", "run_drill"]
