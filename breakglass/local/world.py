"""An incident world: a program deployed into the emulator, an AI system, and the people around it.

What the drill, the end-to-end tests and the benchmarks share, so none of them wires anything by
hand: the program (``examples/quickstart`` by default) is deployed by the adapter with IAM
enforced; each person is an IAM user with their own access key and the persona policy the
deployment offers (responder, approver, security); a bootstrap admin enrolls them through the
``breakglass`` command, which prints each one's authenticator URI (the world keeps the secrets, as
each person's phone would); and every step a person takes goes through the same command, the
same approval emails and the same approval page a person uses.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

import pyotp

from breakglass.contracts import EVENTS_PREFIX, utc_now
from breakglass.lambdas.audit.events import AuditEvent, parse_record
from breakglass.local.deploy import Deployment, deploy_directory
from breakglass.local.emulator import Emulator

QUICKSTART: Final = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
ADMIN: Final = "cloud-admin"
SENDER: Final = "breakglass@example.com"
# Who takes part, by user id: their roles in break-glass.
PEOPLE: Final[Mapping[str, tuple[str, ...]]] = {
    "rita": ("responder",),
    "sam": ("responder",),
    "ann": ("approver",),
    "bob": ("approver",),
    "cat": ("approver",),
    "sec": ("security",),
}
HOLD_WAITS_SECONDS: Final = 3600.0
_LINK: Final = re.compile(r"(https?://[^\s\"<>]+/requests/[a-z0-9]+\?token=[^\s\"<>&]+)")


@dataclass
class Person:
    """Someone with an IAM user of their own and, once enrolled, an authenticator."""

    user: str
    roles: tuple[str, ...]
    arn: str
    email: str
    access_key_id: str
    secret_access_key: str
    totp_secret: str | None = None
    last_step: int = 0

    def code(self, world: World) -> str:
        """The authenticator's code now (at the emulator's clock), never one already used.

        A verifier accepts each time step once, so a third code inside one 30-second step moves
        the emulator's clock to the next step instead of waiting for it.
        """
        if self.totp_secret is None:
            raise RuntimeError(f"{self.user} is not enrolled")
        current = int(utc_now().timestamp()) // 30
        if self.last_step + 1 > current + 1:
            world.emulator.fast_forward(utc_now() + timedelta(seconds=31 - utc_now().timestamp() % 30))
            current = int(utc_now().timestamp()) // 30
        step = max(current, self.last_step + 1)
        self.last_step = step
        return str(pyotp.TOTP(self.totp_secret).at(step * 30))


@dataclass
class CliRun:
    """One ``breakglass`` invocation: exit code, stdout, stderr, and the command line."""

    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def line(self) -> str:
        return shlex.join(["breakglass", *self.argv])

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class World:
    emulator: Emulator
    deployment: Deployment
    name: str
    people: dict[str, Person]
    home: Path
    runs: list[CliRun] = field(default_factory=list)

    # -- running the command as a person --------------------------------------------------------

    def cli(self, person: str | None, *args: str, input: str | None = None) -> CliRun:
        """Run ``breakglass`` as ``person`` (their own profile), against this deployment."""
        from typer.testing import CliRunner

        from breakglass.cli.main import app

        argv = ["--deployment", self.name, "--endpoint-url", self.emulator.endpoint_url]
        if person is not None:
            argv += ["--profile", person]
        argv += list(args)
        result = CliRunner().invoke(app, argv, input=input, catch_exceptions=False)
        run = CliRun(argv=argv, exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr)
        self.runs.append(run)
        return run

    def code(self, person: str) -> str:
        return self.people[person].code(self)

    def access_api(self, person: str) -> Any:
        """The access API signed as ``person`` (what the command uses), safe to call from threads,
        unlike :meth:`cli` (which swaps the process's standard streams)."""
        import boto3

        from breakglass.cli.api import AccessApi

        who = self.people[person]
        session = boto3.Session(
            aws_access_key_id=who.access_key_id,
            aws_secret_access_key=who.secret_access_key,
            region_name=self.emulator.region,
        )
        return AccessApi(session, str(self.deployment.output("access_api_url")), self.emulator.region)

    def request(self, person: str, tier: str, reason: str, *extra: str) -> CliRun:
        """``breakglass request --tier TIER --reason REASON --totp <their code> --json [EXTRA...]``
        as ``person``; it waits for the decision (polling fast) unless ``--no-wait`` is in EXTRA."""
        args = ["request", "--tier", tier, "--reason", reason, "--totp", self.code(person), "--json"]
        return self.cli(person, *args, "--poll-seconds", "0.05", *extra)

    # -- email and the approval page ------------------------------------------------------------

    def emails_to(self, user: str) -> list[Any]:
        address = self.people[user].email
        return [
            m
            for m in self.emulator.sent_emails()
            if address in getattr(m, "destinations", {}).get("ToAddresses", [])
        ]

    def emails_about(self, user: str, request_id: str, *, wait: float = 0.0) -> list[str]:
        """The bodies of ``user``'s emails that name ``request_id``; waits up to ``wait`` seconds
        for the first (the workflow mails asynchronously)."""
        deadline = time.monotonic() + wait
        while True:
            bodies = [str(getattr(m, "body", "")) for m in self.emails_to(user)]
            found = [body for body in bodies if request_id in body]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)

    def approval_links(self, user: str, request_id: str, *, wait: float = 0.0) -> list[str]:
        """The approval links ``user`` was mailed for ``request_id`` (waiting as :meth:`emails_about`)."""
        found: list[str] = []
        for body in self.emails_about(user, request_id, wait=wait):
            found += [link for link in _LINK.findall(body) if f"/requests/{request_id}?" in link]
        return list(dict.fromkeys(found))

    def open_link(self, link: str) -> tuple[int, str]:
        """What an approver's browser shows when the link is opened (GET: never decides)."""
        return _http("GET", link)

    def decide(self, user: str, link: str, decision: str, *, code: str | None = None) -> tuple[int, str]:
        """Submit the approval page's form as the approver's browser does (token, TOTP, POST)."""
        parts = urlsplit(link)
        token = parse_qs(parts.query)["token"][0]
        form = urlencode({"token": token, "totp": code or self.code(user), "decision": decision}).encode()
        target = f"{parts.scheme}://{parts.netloc}{parts.path}"
        origin = f"{parts.scheme}://{parts.netloc}"
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "origin": origin,
            "sec-fetch-site": "same-origin",
        }
        return _http("POST", target, form, headers)

    @contextmanager
    def cloudtrail_delivery(self, every: float = 0.2) -> Iterator[None]:
        """Deliver CloudTrail's log files every ``every`` seconds while inside, as CloudTrail does
        every few minutes (otherwise they are written only when :meth:`flush` is called)."""
        import threading

        stop = threading.Event()

        def deliver() -> None:
            while not stop.wait(every):
                self.emulator.cloudtrail.flush()

        worker = threading.Thread(target=deliver, name="cloudtrail-delivery", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join()
            self.emulator.cloudtrail.flush()

    # -- what was recorded ----------------------------------------------------------------------

    def audit_events(self, request_id: str | None = None) -> list[AuditEvent]:
        """The break-glass events in the locked bucket, in write order (of one request)."""
        from moto.s3.models import s3_backends

        bucket = s3_backends[self.emulator.account_id]["aws"].get_bucket(
            self.deployment.output("audit_bucket")
        )
        events = []
        for key in list(bucket.keys.keys()):
            if key.startswith(f"{EVENTS_PREFIX}/"):
                event = parse_record(json.loads(bucket.keys[key].value))
                if request_id is None or event.request_id == request_id:
                    events.append(event)
        return events

    def wait_for(self, request_id: str, statuses: Sequence[str], *, timeout: float = 30.0) -> dict[str, Any]:
        """Poll the request (as security sees it) until its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.cli("sec", "status", request_id, "--json")
            if run.exit_code == 0 and run.json().get("status") in statuses:
                return dict(run.json())
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"request {request_id} is not {statuses} after {timeout}s: {run.stdout or run.stderr}"
                )
            time.sleep(0.05)

    def end_window(self, request_id: str) -> dict[str, Any]:
        """Let time reach the request's expiry (the emulator's clock jumps there); the workflow's
        Wait ends and it revokes at expiry. Returns the request once it has ended."""
        from breakglass.contracts import parse_iso

        current = self.wait_for(request_id, ["granted", "revoked", "expired", "denied"])
        if current.get("expires_at"):
            self.emulator.fast_forward(parse_iso(str(current["expires_at"])) + timedelta(seconds=1))
        return self.wait_for(request_id, ["expired", "revoked", "denied"])

    # -- the AI system ------------------------------------------------------------------------------

    def seed_ai_system(self, endpoint: str = "chat-prod", invoker_role: str = "chat-api") -> None:
        """A SageMaker model, endpoint config and endpoint, and the role that invokes it."""
        iam = self.emulator.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(RoleName=invoker_role, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
            "Arn"
        ]
        iam.create_role(RoleName="bedrock-invoker", AssumeRolePolicyDocument=json.dumps(trust))
        sagemaker = self.emulator.client("sagemaker")
        sagemaker.create_model(
            ModelName=f"{endpoint}-model",
            ExecutionRoleArn=role,
            PrimaryContainer={"Image": f"{self.emulator.account_id}.dkr.ecr.us-east-1.amazonaws.com/chat:1"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{endpoint}-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{endpoint}-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-config")


def _http(
    method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# -- building a world -------------------------------------------------------------------------------


def _create_users(emulator: Emulator, people: Mapping[str, tuple[str, ...]]) -> dict[str, Person]:
    iam = emulator.client("iam")
    found: dict[str, Person] = {}
    for user, roles in {**people, ADMIN: ("admin",)}.items():
        arn = iam.create_user(UserName=user)["User"]["Arn"]
        key = iam.create_access_key(UserName=user)["AccessKey"]
        found[user] = Person(
            user=user,
            roles=tuple(roles),
            arn=arn,
            email=f"{user}@example.com",
            access_key_id=key["AccessKeyId"],
            secret_access_key=key["SecretAccessKey"],
        )
    return found


def _grant_persona_policies(emulator: Emulator, deployment: Deployment, people: Mapping[str, Person]) -> None:
    """Attach the managed policy of each person's persona (what a cloud team does)."""
    iam = emulator.client("iam")
    # Each persona's policies: the workflow's, and any other a component offers that persona
    # (e.g. SealedAccess's `...-sealed-security`).
    policies: dict[str, list[str]] = {}
    for p in deployment.by_type("aws:iam/policy:Policy"):
        name = str(p.output("name"))
        if name.endswith(("-responder", "-approver", "-security")):
            policies.setdefault(name.rsplit("-", 1)[-1], []).append(str(p.arn))
    for person in people.values():
        for role in person.roles:
            for arn in policies.get(role, []):
                iam.attach_user_policy(UserName=person.user, PolicyArn=arn)
        if person.user == ADMIN:
            # The bootstrap admin enrolls through the access API and reads the deployment.
            for arn in policies["security"]:
                iam.attach_user_policy(UserName=person.user, PolicyArn=arn)


def _write_profiles(home: Path, people: Mapping[str, Person], region: str) -> None:
    credentials = "".join(
        f"[{p.user}]\naws_access_key_id = {p.access_key_id}\naws_secret_access_key = {p.secret_access_key}\n\n"
        for p in people.values()
    )
    (home / "credentials").write_text(credentials)
    (home / "config").write_text(
        "".join(f"[profile {p.user}]\nregion = {region}\n\n" for p in people.values())
    )


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def enroll_everyone(world: World) -> None:
    """The bootstrap admin enrolls each person through the command; their secret is kept as
    their phone would keep it (from the otpauth URI the command prints once)."""
    for person in world.people.values():
        if person.user == ADMIN:
            continue
        args = ["enroll", person.user, "--principal", person.arn, "--email", person.email, "--json"]
        for role in person.roles:
            args += ["--role", role]
        run = world.cli(ADMIN, *args)
        if run.exit_code != 0:
            raise RuntimeError(f"enrolling {person.user} failed: {run.stderr.strip()}")
        person.totp_secret = pyotp.parse_uri(run.json()["otpauth_uri"]).secret


@contextmanager
def open_world(
    program: Path = QUICKSTART,
    *,
    name: str = "drill",
    people: Mapping[str, tuple[str, ...]] = PEOPLE,
    enroll: bool = True,
    transform: Any = None,
    prepare: Callable[[Emulator], Mapping[str, str]] | None = None,
) -> Iterator[World]:
    """Deploy ``program`` into a fresh emulator (IAM enforced) with ``people`` around it.

    ``prepare`` creates what the account holds before the stack (an organization's trail, bucket
    and key, say) and returns the stack config that names it, added to the people's config.

    Wait states hold (in real time, up to an hour) until the emulator's clock is moved past
    them: a window ends when the world says so (:meth:`World.end_window`), never while a
    responder is still acting in it.
    """
    with (
        tempfile.TemporaryDirectory(prefix="breakglass-world-") as tmp,
        Emulator(enforce_iam=True, max_wait_seconds=HOLD_WAITS_SECONDS) as emulator,
    ):
        home = Path(tmp)
        users = _create_users(emulator, people)
        responders = [u.arn for u in users.values() if "responder" in u.roles]
        config = {
            "deployment": name,
            "responders": ",".join(responders),
            "approvers": ",".join(u for u, roles in people.items() if "approver" in roles),
            "securityAdmins": users[ADMIN].arn,
            "senderEmail": SENDER,
            "alertEmail": "security@example.com",
            **(prepare(emulator) if prepare is not None else {}),
        }
        deployment = deploy_directory(program, emulator, config=config, transform=transform)
        _grant_persona_policies(emulator, deployment, users)
        _write_profiles(home, users, emulator.region)
        environment = {
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_CONFIG_FILE": str(home / "config"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_CONFIG_HOME": str(home / "xdg"),
        }
        with _environment(environment):
            world = World(emulator=emulator, deployment=deployment, name=name, people=users, home=home)
            if enroll:
                enroll_everyone(world)
            yield world


__all__ = ["ADMIN", "PEOPLE", "QUICKSTART", "CliRun", "Person", "World", "enroll_everyone", "open_world"]
