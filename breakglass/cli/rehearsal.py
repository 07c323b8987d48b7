"""``breakglass drill --against NAME``: rehearse the break-glass path on a real deployment, harmlessly.

The person running it asks for the ``drill`` tier (approved automatically; its role may call
``sts:GetCallerIdentity`` and nothing else), exactly as in an incident: AWS says who they are, their
TOTP code proves it. Then, each step checked against AWS rather than assumed:

1. ``whoami``: the access API knows the caller, enrolled as a responder;
2. ``request``: the drill tier is granted, automatically;
3. ``assume``: a session of the drill role with the grant's session name, source identity and request
   tag (and MFA where the tier requires it), ending by the window's expiry;
4. ``call``: the session is the drill role as this person, and anything else (``ListEndpoints``) is
   refused: the tier really is empty;
5. ``revoke``: an early revoke with a fresh TOTP code; the request is revoked and the role's trust no
   longer holds the grant's statements;
6. ``audit``: the request, automatic approval, grant and revoke are in the Object Lock bucket;
7. ``cloudtrail``: CloudTrail delivered the session's AssumeRole (with the source identity) and its
   refused call into the audit bucket. CloudTrail delivers within about 15 minutes, so this step
   waits (``--cloudtrail-wait``);
8. ``sealed``: when the deployment has a sealed last resort (``SealedAccess``), its alarms are wired,
   checked without using it: both regions' rules exist, are enabled, have the published event
   pattern and deliver the event unchanged to their published targets; each topic has every alert
   address subscribed, confirmed and without a filter policy; both alarms exist; the sealed check ran within two of its periods and
   found nothing. Skipped, saying so, for a deployment without one.

Nothing is changed but the drill request's own grant. Its post-event review stays open for another
security person (nobody reviews their own access).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import ClientError

from breakglass.cli import sessions
from breakglass.cli.access import granted_credentials, read_totp, wait_for_decision
from breakglass.cli.api import AccessApi
from breakglass.cli.audit import copy_incident
from breakglass.cli.context import CliContext, make_client
from breakglass.cli.report import Incident, build_incident
from breakglass.cli.steps import DrillFailed, DrillResult, Step, Timeline, check
from breakglass.contracts import (
    DRILL_TIER,
    DRILL_WINDOW_SECONDS,
    EVENTS_PREFIX,
    SSM_SEALED_ACCESS_KEY,
    iso,
    ssm_parameter_name,
    utc_now,
)
from breakglass.lambdas.runtime import DIMENSION_FUNCTION, METRICS_NAMESPACE
from breakglass.lambdas.sealed.check import METRIC_CHECK_FINDINGS, METRIC_CHECK_RUNS
from breakglass.local.athena import LocalBucket
from breakglass.policies import sealed_access as sealed_policies
from breakglass.policies.emergency_role import grant_trust_sids

REASON: Final = "breakglass drill: a rehearsal of the break-glass path (tier drill, no access)"
# The call the drill tier must refuse: a harmless regional read outside sts:GetCallerIdentity.
REFUSED_CALL: Final = ("sagemaker", "ListEndpoints")
REFUSED: Final = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
EXPECTED_EVENTS: Final = ("request", "approval", "grant", "revoke")
GRANT_WAIT_SECONDS: Final = 120


def _prompt_code(whose: str) -> str:
    return read_totp(None, whose)


class Rehearsal(Timeline):
    """One rehearsal against a deployment, as the person whose credentials the command uses."""

    def __init__(
        self,
        cli: CliContext,
        *,
        cloudtrail_wait: float,
        poll_seconds: float,
        mfa_serial: str | None,
        mfa_code: str | None,
        code: Callable[[str], str] = _prompt_code,
        on_step: Callable[[Step], None],
    ) -> None:
        super().__init__(on_step=on_step)
        self.cli = cli
        self.api: AccessApi = cli.access_api()
        self.deployment = cli.deployment()
        self.cloudtrail_wait = cloudtrail_wait
        self.poll_seconds = poll_seconds
        self.mfa_serial = mfa_serial
        self.mfa_code = mfa_code
        self.code = code
        self.user = ""
        self.request_id = ""
        self.granted: dict[str, Any] = {}
        self.credentials: sessions.Credentials | None = None
        self.copy = Path(tempfile.mkdtemp(prefix="breakglass-rehearsal-"))
        self.incident: Incident | None = None

    def run(self) -> None:
        self.whoami()
        self.request()
        self.assume()
        self.call()
        self.revoke()
        self.audit()
        self.cloudtrail()
        self.sealed()

    # -- the steps ------------------------------------------------------------------------------------

    def whoami(self) -> None:
        with self.step("whoami", "the access API knows you, enrolled as a responder") as note:
            me = self.api.get("/whoami")
            self.user = str(me.get("user") or "")
            roles = list(me.get("roles") or [])
            check("whoami", bool(self.user) and "responder" in roles, "enrolled as a responder", me)
            tier = self.deployment.tier(DRILL_TIER)
            check("whoami", tier.quorum == 0, f"tier {DRILL_TIER} approved automatically", tier.approval)
            note["detail"] = f"{self.user} ({', '.join(roles)}) on {self.deployment.name}"

    def request(self) -> None:
        with self.step("request", f"ask for tier {DRILL_TIER} with a justification and TOTP") as note:
            made = self.api.post(
                "/requests",
                {
                    "tier": DRILL_TIER,
                    "reason": REASON,
                    "duration": f"{DRILL_WINDOW_SECONDS // 60}m",
                    "totp": self.code("your"),
                },
            )
            self.request_id = str(made["request_id"])
            decided = wait_for_decision(self.api, self.request_id, GRANT_WAIT_SECONDS, self.poll_seconds)
            check(
                "request", decided.get("status") == "granted", "granted automatically", decided.get("status")
            )
            self.granted = dict(decided)
            note["detail"] = f"{self.request_id} granted until {decided.get('expires_at')}"

    def assume(self) -> None:
        with self.step("assume", "a session of the drill role, ending by the window's expiry") as note:
            credentials = granted_credentials(
                self.cli, self.request_id, mfa_serial=self.mfa_serial, mfa_code=self.mfa_code, fresh=True
            )
            role = self.deployment.tier(DRILL_TIER).role_arn
            check("assume", credentials.role_arn == role, f"a session of {role}", credentials.role_arn)
            expires = str(self.granted.get("expires_at"))
            check(
                "assume",
                iso(credentials.expiration) <= expires,
                f"a session ending by {expires}",
                iso(credentials.expiration),
            )
            self.credentials = credentials
            note["detail"] = f"session until {iso(credentials.expiration)}"

    def call(self) -> None:
        service, operation = REFUSED_CALL
        with self.step("call", f"the session is the drill role as you; {operation} is refused") as note:
            role_name = str(self.deployment.tier(DRILL_TIER).role_arn).rsplit("/", 1)[-1]
            identity = self._as_session("sts").get_caller_identity()
            expected = f":assumed-role/{role_name}/{self.user}"
            check(
                "call", str(identity.get("Arn", "")).endswith(expected), f"...{expected}", identity.get("Arn")
            )
            try:
                self._as_session(service).list_endpoints()
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                check("call", code in REFUSED, f"{operation} refused (AccessDenied)", code)
            else:
                raise DrillFailed(
                    "call", f"{operation} refused: the drill tier allows nothing else", "it succeeded"
                )
            note["detail"] = f"{identity['Arn']}; {service}:{operation} refused"

    def revoke(self) -> None:
        with self.step("revoke", "revoke early with a fresh TOTP code; the trust forgets the grant") as note:
            self.api.post(
                f"/requests/{self.request_id}/revoke",
                {"totp": self.code("the next code, for the revoke, of your"), "reason": "drill finished"},
            )
            sessions.forget(self.deployment.name, self.request_id)
            status = self.api.get(f"/requests/{self.request_id}").get("status")
            check("revoke", status == "revoked", "revoked", status)
            role_name = str(self.deployment.tier(DRILL_TIER).role_arn).rsplit("/", 1)[-1]
            document = self.cli.client("iam").get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
            trust = json.loads(document) if isinstance(document, str) else document
            left = [
                s.get("Sid")
                for s in trust.get("Statement", [])
                if s.get("Sid") in grant_trust_sids(self.request_id)
            ]
            check("revoke", left == [], "no trust statement of the grant left", left)
            note["detail"] = f"{self.request_id} revoked; {role_name}'s trust holds none of its statements"

    def audit(self) -> None:
        with self.step("audit", "the request, approval, grant and revoke are in the locked bucket") as note:
            incident = self._incident()
            kinds = [(e.get("event_type"), e.get("outcome")) for e in incident.events]
            missing = [k for k in EXPECTED_EVENTS if k not in {t for t, _ in kinds}]
            check("audit", missing == [], f"events {', '.join(EXPECTED_EVENTS)}", kinds)
            check("audit", incident.ended_by == "revoke", "ended by revoke", incident.ended_by)
            note["detail"] = f"{len(kinds)} events: {', '.join(str(t) for t, _ in kinds)}"

    def cloudtrail(self) -> None:
        operation = REFUSED_CALL[1]
        with self.step(
            "cloudtrail", f"CloudTrail delivered the AssumeRole and the refused {operation}"
        ) as note:
            if self.cloudtrail_wait <= 0:
                note["detail"] = "not checked (--cloudtrail-wait 0)"
                return
            deadline = time.monotonic() + self.cloudtrail_wait
            while True:
                calls = self._incident().calls
                assumed = [c for c in calls if c.kind == "assume" and not c.error_code]
                refused = [c for c in calls if c.event_name == operation and c.error_code]
                if assumed and refused:
                    break
                if time.monotonic() > deadline:
                    raise DrillFailed(
                        "cloudtrail",
                        f"the AssumeRole and the refused {operation} within {self.cloudtrail_wait:.0f} s",
                        f"AssumeRole: {len(assumed)}, refused {operation}: {len(refused)} "
                        "(CloudTrail may be late; the trail may not log this region)",
                    )
                time.sleep(self.poll_seconds)
            note["detail"] = (
                f"AssumeRole by {self.user} (source identity) at {assumed[0].at}; "
                f"{operation} refused ({refused[0].error_code}) at {refused[0].at}"
            )

    def sealed(self) -> None:
        with self.step("sealed", "the sealed last resort's alarms are wired (checked, not used)") as note:
            settings = self._sealed_settings()
            if settings is None:
                # A sealed role without its settings is a deployment whose parameter was deleted:
                # its alarms can no longer be checked, which is a failure, not a skip.
                role = self._sealed_role()
                check(
                    "sealed",
                    role is None,
                    f"no sealed role {sealed_policies.role_name()} (the deployment publishes no sealed settings)",
                    f"{role} exists but {ssm_parameter_name(self.deployment.name, SSM_SEALED_ACCESS_KEY)} "
                    "is missing: restore it (pulumi up)",
                )
                note["detail"] = f"skipped: deployment {self.deployment.name} has no sealed access"
                return
            emails = set(settings.get("alert_emails") or [])
            checked = []
            for where, region in sorted((settings.get("regions") or {}).items()):
                name = str(region["region"])
                events = self.cli.client("events", region=name)
                patterns = region.get("rule_patterns") or {}
                wanted_targets = region.get("rule_targets") or {}
                for rule in region["rules"]:
                    self._check_sealed_rule(events, name, rule, patterns.get(rule), wanted_targets.get(rule))
                sns = self.cli.client("sns", region=name)
                delivering = self._delivering_emails(sns, str(region["topic_arn"]))
                check(
                    "sealed",
                    emails <= delivering,
                    f"{sorted(emails)} subscribed in {name}, confirmed, without a filter policy",
                    sorted(delivering),
                )
                checked.append(f"{where} ({name}): {len(region['rules'])} rules")
            cloudwatch = self.cli.client("cloudwatch")
            alarms = [
                a["AlarmName"]
                for a in cloudwatch.describe_alarms(AlarmNames=settings["alarms"])["MetricAlarms"]
            ]
            check(
                "sealed", sorted(alarms) == sorted(settings["alarms"]), f"alarms {settings['alarms']}", alarms
            )
            runs, findings = self._sealed_check_figures(cloudwatch, settings)
            minutes = int(settings.get("check_every_minutes") or 60)
            check("sealed", runs > 0, f"the sealed check ran within {2 * minutes} minutes", "it did not")
            check(
                "sealed",
                findings == 0,
                "no finding (read the sealed check's log)",
                f"{findings:.0f} findings",
            )
            note["detail"] = (
                f"{'; '.join(checked)}; {len(emails)} addresses subscribed; alarms {', '.join(alarms)}; "
                f"the check ran {runs:.0f} times in {2 * minutes} min, no finding"
            )

    # -- helpers -----------------------------------------------------------------------------------

    def _sealed_settings(self) -> dict[str, Any] | None:
        ssm = self.cli.client("ssm")
        try:
            value = ssm.get_parameter(Name=ssm_parameter_name(self.deployment.name, SSM_SEALED_ACCESS_KEY))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise
        return dict(json.loads(value["Parameter"]["Value"]))

    @staticmethod
    def _check_sealed_rule(
        events: Any, region: str, rule: str, pattern: Any, wanted: list[str] | None
    ) -> None:
        """A rule is enabled, matches what the deployment published (a pattern edited to match
        nothing alerts nobody) and delivers the event itself to at least the published targets."""
        described = events.describe_rule(Name=rule)
        check(
            "sealed",
            described.get("State") == "ENABLED",
            f"rule {rule} in {region} ENABLED",
            described.get("State"),
        )
        check(
            "sealed",
            pattern is not None
            and _canonical_json(described.get("EventPattern")) == _canonical_json(pattern),
            f"rule {rule}'s event pattern as published",
            described.get("EventPattern"),
        )
        targets = events.list_targets_by_rule(Rule=rule).get("Targets", [])
        arns = {t["Arn"] for t in targets}
        check(
            "sealed",
            set(wanted or ["(none published)"]) <= arns,
            f"rule {rule} targets {wanted}",
            sorted(arns),
        )
        rewritten = [t["Id"] for t in targets if {"Input", "InputPath", "InputTransformer"} & set(t)]
        check(
            "sealed",
            not rewritten,
            f"rule {rule} delivers the event unchanged",
            f"input rewritten for {rewritten}",
        )

    @staticmethod
    def _delivering_emails(sns: Any, topic_arn: str) -> set[str]:
        """The addresses a topic really delivers to: confirmed email subscriptions without a filter
        policy (a filter that matches nothing drops every alert while the address stays listed)."""
        found: set[str] = set()
        listed = sns.list_subscriptions_by_topic(TopicArn=topic_arn).get("Subscriptions", [])
        for sub in listed:
            arn = str(sub.get("SubscriptionArn") or "")
            if sub.get("Protocol") != "email" or not arn.startswith("arn:"):
                continue  # pending confirmation: delivers nothing yet
            attributes = sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
            if (attributes.get("FilterPolicy") or "{}").strip() in ("", "{}"):
                found.add(str(sub["Endpoint"]))
        return found

    def _sealed_role(self) -> str | None:
        """The sealed role's ARN when it exists; None when it does not or cannot be read (security
        without ``<prefix>-sealed-security``: a deployment without sealed access)."""
        try:
            role = self.cli.client("iam").get_role(RoleName=sealed_policies.role_name())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchEntity", *REFUSED):
                return None
            raise
        return str(role["Role"]["Arn"])

    @staticmethod
    def _sealed_check_figures(cloudwatch: Any, settings: dict[str, Any]) -> tuple[float, float]:
        """How often the sealed check ran in the last two periods, and its most findings then."""
        period = int(settings.get("check_every_minutes") or 60) * 60
        now = utc_now()
        found: dict[str, float] = {}
        for metric, statistic in ((METRIC_CHECK_RUNS, "Sum"), (METRIC_CHECK_FINDINGS, "Maximum")):
            points = cloudwatch.get_metric_statistics(
                Namespace=METRICS_NAMESPACE,
                MetricName=metric,
                Dimensions=[{"Name": DIMENSION_FUNCTION, "Value": settings["check_function"]}],
                StartTime=now - timedelta(seconds=2 * period),
                EndTime=now + timedelta(seconds=60),
                Period=2 * period,
                Statistics=[statistic],
            ).get("Datapoints", [])
            values = [float(p.get(statistic, 0)) for p in points]
            found[metric] = (sum(values) if statistic == "Sum" else max(values)) if values else 0.0
        return found[METRIC_CHECK_RUNS], found[METRIC_CHECK_FINDINGS]

    def _as_session(self, service: str) -> Any:
        assert self.credentials is not None
        region = self.deployment.region or self.cli.region
        return make_client(
            self.credentials.session(region),
            service,
            region=region,
            endpoint_url=self.cli.settings.endpoint_url.value,
        )

    def _incident(self) -> Incident:
        copy_incident(self.cli, self.request_id, self.copy, quiet=True)
        prefix = (self.deployment.audit_events_prefix or EVENTS_PREFIX).strip("/")
        return build_incident(LocalBucket(self.copy, events_prefix=prefix), self.request_id)


def _canonical_json(value: Any) -> str:
    """A pattern (JSON text or object) in one spelling: parsed, keys sorted."""
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return ""
    return json.dumps(parsed, sort_keys=True)


def rehearse(
    cli: CliContext,
    *,
    cloudtrail_wait: float,
    poll_seconds: float = 5.0,
    mfa_serial: str | None = None,
    mfa_code: str | None = None,
    code: Callable[[str], str] = _prompt_code,
    on_step: Callable[[Step], None] = lambda step: None,
) -> DrillResult:
    """Run every step; never raises for a failed step (the result says which and why)."""
    rehearsal = Rehearsal(
        cli,
        cloudtrail_wait=cloudtrail_wait,
        poll_seconds=poll_seconds,
        mfa_serial=mfa_serial,
        mfa_code=mfa_code,
        code=code,
        on_step=on_step,
    )
    try:
        rehearsal.run()
        ok = True
    except DrillFailed:
        ok = False
    finally:
        shutil.rmtree(rehearsal.copy, ignore_errors=True)
    summary = {"deployment": rehearsal.deployment.name, "tier": DRILL_TIER, "user": rehearsal.user}
    return DrillResult(
        ok,
        time.perf_counter() - rehearsal.began,
        summary,
        rehearsal.steps,
        None,
        rehearsal.request_id or None,
    )
