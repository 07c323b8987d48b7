"""An embedded AWS emulator: moto's server in this process, running the deployment for real.

:class:`Emulator` serves ``moto.server``'s application on a free port of 127.0.0.1, turns on
moto's Step Functions interpreter, runs Lambda handlers in-process under their own roles
(:mod:`breakglass.local.lambda_runner`), delivers EventBridge events to Lambda and SNS targets
(:mod:`breakglass.local.eventbridge`), serves deployed HTTP APIs (:mod:`breakglass.local.http_api`)
and records every call as CloudTrail would (:mod:`breakglass.local.cloudtrail`). Wait states and
retry back-offs are shortened so a whole request, approval, grant and expiry runs in seconds; a
shortened Wait moves the package's clock (``breakglass.contracts.CLOCK``) to the moment it was
waiting for, so the Lambdas see the time the workflow expects.

IAM enforcement is on by default (:mod:`breakglass.local.iam_enforcement`): the emulator gets an
account of its own, an admin IAM user whose keys :meth:`Emulator.client` uses, and every call is
checked against the caller's policies. :mod:`breakglass.local.deploy` deploys a Pulumi program
into it (the components are the only deployment; nothing is wired by hand), and
:mod:`breakglass.local.world` adds the people and the AI system around it.

Not for production: nothing here is secured; it exists for tests, the drill and benchmarks.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import socket
import sys
import threading
import time
import types
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config

import breakglass
from breakglass.contracts import (
    CLOCK,
    utc_now,
)
from breakglass.lambdas import archive
from breakglass.local import calls, eventbridge, faults, iam_enforcement, lambda_runner
from breakglass.local.cloudtrail import CloudTrailRecorder
from breakglass.local.http_api import HttpApiGateway

if TYPE_CHECKING:
    pass

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
ADMIN_USER: Final = "breakglass-emulator-admin"
ADMIN_POLICY_ARN: Final = "arn:aws:iam::aws:policy/AdministratorAccess"
STATES_PRINCIPAL: Final = "states.amazonaws.com"

_PATCH_LOCK = threading.Lock()
_CLOCK_LOCK = threading.Lock()
_PACKAGE_ROOT = Path(breakglass.__file__).parent
# Emulators that enforce IAM get accounts of their own (100000000001, ...), so deployments in one
# process never collide, whatever their names.
_ACCOUNT_NUMBERS = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lambda_zip() -> bytes:
    """The code every emulated function gets: the Lambda side of this package, like the real zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, path in archive.shipped_files().items():
            zipped.write(path, name)
    return buffer.getvalue()


def advance_clock(to: datetime) -> None:
    """Move the package's clock forward (never back) so ``utc_now()`` is at least ``to``."""
    if to.tzinfo is None:
        raise ValueError("fast_forward needs a timezone-aware moment")
    with _CLOCK_LOCK:
        needed = to - datetime.now(UTC)
        if needed > CLOCK.offset:
            CLOCK.offset = needed


def _wait_target(wait: Any, env: Any) -> datetime:
    """The moment a Wait state waits for: its timestamp, or now (emulated) plus its seconds."""
    if hasattr(wait, "_from_timestamp_string") and hasattr(wait, "string"):
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEventException,
        )

        wait.string.eval(env=env)
        text = env.stack.pop()
        moment = wait._from_timestamp_string(timestamp=text)
        if moment is None:
            raise FailureEventException(wait._create_failure_event(env, text))
        return moment.replace(tzinfo=UTC)
    return utc_now() + timedelta(seconds=int(wait._get_wait_seconds(env=env)))


class _Patches:
    """What the emulators need changed in moto, installed once per process while any runs.

    moto's interpreter sleeps in real time in Wait states and retry back-offs: both are shortened
    (the running emulators' settings, smallest wins), and a Wait cut short moves the clock to the
    moment it waited for. Step Functions calls Lambda with the state machine's role. Lambda runs
    in-process, IAM is checked per emulator, EventBridge delivers to Lambda and SNS.
    """

    def __init__(self) -> None:
        self.active: list[Emulator] = []
        self._saved: dict[str, Any] = {}

    def wait_cap(self) -> float:
        return min((e.max_wait_seconds for e in self.active), default=float("inf"))

    def retry_cap(self) -> float:
        return min((e.max_retry_sleep_seconds for e in self.active), default=float("inf"))

    def install(self, emulator: Emulator) -> None:
        from moto.core.config import default_user_config
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

        with _PATCH_LOCK:
            if not self.active:
                self._saved = {
                    "wait": wait_function.WaitFunction._eval_body,
                    "time": retrier_decl.time,
                    "sfn": dict(default_user_config.get("stepfunctions", {})),
                }
                patches = self

                def short_wait(self_: Any, env: Any) -> None:
                    target = _wait_target(self_, env)
                    account = str(getattr(getattr(env, "aws_execution_details", None), "account", ""))
                    scope = calls.for_account(account)
                    advances = scope.advance_clock if scope is not None else False
                    # Without moving the clock, the Wait is only shortened: its end is relative.
                    deadline = target if advances else datetime.now(UTC) + (target - utc_now())
                    now = utc_now if advances else (lambda: datetime.now(UTC))
                    started = time.monotonic()
                    # In slices, re-reading the cap and the clock: a test may hold an execution in
                    # its Wait (large cap) and then let it go on (small cap, or fast_forward).
                    while env.is_running():
                        if now() >= deadline:
                            return
                        if time.monotonic() - started >= patches.wait_cap():
                            if advances:
                                advance_clock(target)
                            return
                        if env.program_state_event.wait(0.02):
                            return  # the execution was stopped

                real_sleep = time.sleep
                wait_function.WaitFunction._eval_body = short_wait  # type: ignore[method-assign,assignment]
                retrier_decl.time = types.SimpleNamespace(  # type: ignore[assignment]
                    sleep=lambda seconds: real_sleep(min(float(seconds), patches.retry_cap()))
                )
                default_user_config["stepfunctions"] = {"execute_state_machine": True}
                self._saved["clients"] = _install_state_machine_credentials()
                lambda_runner.install()
                iam_enforcement.install()
                eventbridge.install()
            self.active.append(emulator)

    def uninstall(self, emulator: Emulator) -> None:
        from moto.core.config import default_user_config
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

        with _PATCH_LOCK:
            if emulator in self.active:
                self.active.remove(emulator)
            if not self.active and self._saved:
                wait_function.WaitFunction._eval_body = self._saved["wait"]  # type: ignore[method-assign]
                retrier_decl.time = self._saved["time"]
                default_user_config["stepfunctions"] = self._saved["sfn"]
                _uninstall_state_machine_credentials(self._saved["clients"])
                lambda_runner.uninstall()
                iam_enforcement.uninstall()
                eventbridge.uninstall()
                self._saved = {}
                # The clock is the emulators' to move; without one it tells the real time again.
                with _CLOCK_LOCK:
                    CLOCK.offset = timedelta(0)


_PATCHES = _Patches()


def _install_state_machine_credentials() -> list[tuple[types.ModuleType, Any]]:
    """Make moto's interpreter call services (Lambda) with the state machine's role, as AWS does.

    moto's ``boto_client_for`` signs with fixed keys ("ak"/"sk") that no IAM user has; with IAM
    enforced every Task would fail. The replacement assumes the role the state (or the machine)
    runs with, as ``states.amazonaws.com``, and calls the emulator holding that role's account.
    """
    import importlib

    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.utils import boto_client

    # Import the users of boto_client_for now, so each module's reference can be replaced.
    importlib.import_module("moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils")
    original = boto_client.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None)
        account = str(role_arn).split(":")[4] if role_arn and str(role_arn).count(":") >= 5 else ""
        scope = calls.for_account(account) if account else None
        if scope is None:
            return original(region, service, state_credentials)
        credentials = iam_enforcement.service_credentials(
            str(role_arn), STATES_PRINCIPAL, session_name="StepFunctions", region=region
        )
        # A client per call, as moto makes them: a shared one would reuse kept-alive connections
        # the server has closed, and the interpreter's Retry would run a Task twice.
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=scope.endpoint_url,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            ),
        )

    replaced = []
    for name, module in list(sys.modules.items()):
        if (
            name.startswith("moto.stepfunctions.parser")
            and getattr(module, "boto_client_for", None) is original
        ):
            replaced.append((module, original))
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
    return replaced


def _uninstall_state_machine_credentials(replaced: Iterable[tuple[types.ModuleType, Any]]) -> None:
    for module, original in replaced:
        module.boto_client_for = original  # type: ignore[attr-defined]


class _RequestMiddleware:
    """The WSGI layer in front of moto's application: marks each request's thread with its
    emulator (IAM setting, endpoint) and shows every call to the CloudTrail recorder."""

    def __init__(self, app: Any, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            body = stream.read(length)
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        answered: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered.append((status, headers))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        with calls.working_for(self.emulator.scope):
            # A fault armed for this call (tests, benchmarks) answers instead of the service.
            faulted = faults.answer(self.emulator.account_id, environ, body)
            if faulted is not None:
                capture(faulted[0], faulted[1])
                payload = faulted[2]
            else:
                payload = self._serve(environ, capture)
        if answered and not str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            status, headers = answered[-1]
            self.emulator.cloudtrail.observe(environ, body, int(status.split()[0]), headers, payload)
        return [payload]

    def _serve(self, environ: dict[str, Any], capture: Any) -> bytes:
        try:
            iam_enforcement.request_started(str(environ.get("HTTP_AUTHORIZATION", "")), self.emulator.region)
            result = self.app(environ, capture)
            try:
                return b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            iam_enforcement.request_finished()


class Emulator:
    """moto's server in-process, with Step Functions executing and Lambdas running here.

    Use as a context manager (or call :meth:`start` / :meth:`stop`). Waits last at most
    ``max_wait_seconds``, retry back-offs at most ``max_retry_sleep_seconds`` (real time).
    ``enforce_iam`` (default true) checks every call against the caller's IAM policies, in an
    account of the emulator's own (``account_id`` to choose it); off, calls are not checked and
    land in moto's default account. ``advance_clock`` (default: as ``enforce_iam``) makes a shortened Wait move ``breakglass.contracts.CLOCK`` to the moment it
    waited for; compute TOTP codes with ``utc_now()`` then, not the wall clock.
    """

    def __init__(
        self,
        *,
        region: str = REGION,
        max_wait_seconds: float = 0.2,
        max_retry_sleep_seconds: float = 0.05,
        enforce_iam: bool = True,
        account_id: str | None = None,
        advance_clock: bool | None = None,
    ) -> None:
        self.region = region
        self.max_wait_seconds = max_wait_seconds
        self.max_retry_sleep_seconds = max_retry_sleep_seconds
        self.enforce_iam = enforce_iam
        # Without enforcement (a bare moto), the clock stays real unless asked.
        self.advance_clock = enforce_iam if advance_clock is None else advance_clock
        self.account_id = account_id or (
            f"{100_000_000_000 + next(_ACCOUNT_NUMBERS):012d}" if enforce_iam else ACCOUNT_ID
        )
        self.port = 0
        self.admin_access_key_id = ""
        self.admin_secret_access_key = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._saved_port: str | None = None
        self.cloudtrail = CloudTrailRecorder(self.account_id, region, scope=lambda: self.scope)
        self.http_apis = HttpApiGateway(self)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def scope(self) -> calls.CallScope:
        return calls.CallScope(
            endpoint_url=self.endpoint_url,
            account_id=self.account_id,
            region=self.region,
            enforce_iam=self.enforce_iam,
            advance_clock=self.advance_clock,
        )

    @property
    def admin_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{ADMIN_USER}"

    def start(self) -> Emulator:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self._create_admin()
        self.port = free_port()
        application = _RequestMiddleware(DomainDispatcherApplication(create_backend_app), self)
        self._server = make_server(
            "127.0.0.1", self.port, application, threaded=True, request_handler=MotoRequestHandler
        )
        # One access-log line per request would drown the test output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._server.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        # moto's own code (and older callers) find the server on MOTO_PORT.
        self._saved_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)
        calls.started(self.scope)
        _PATCHES.install(self)
        return self

    def stop(self) -> None:
        self.http_apis.stop()
        _PATCHES.uninstall(self)
        calls.stopped(self.scope)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._saved_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self._saved_port

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _create_admin(self) -> None:
        """The harness's own IAM user: AdministratorAccess, created in moto's backend directly
        (with enforcement on, nothing could create it through the API)."""
        from moto.iam.models import iam_backends

        backend = iam_backends[self.account_id]["aws"]
        if ADMIN_USER not in backend.users:
            backend.create_user(self.region, ADMIN_USER)
            if iam_enforcement.ensure_aws_managed_policy(self.account_id, ADMIN_POLICY_ARN):
                backend.attach_user_policy(ADMIN_POLICY_ARN, ADMIN_USER)
            else:
                everything = {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
                backend.put_user_policy(ADMIN_USER, "AdministratorAccess", json.dumps(everything))
        keys = backend.list_access_keys(ADMIN_USER)
        key = keys[0] if keys else backend.create_access_key(ADMIN_USER)
        self.admin_access_key_id = key.access_key_id
        self.admin_secret_access_key = key.secret_access_key

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` pointed at this emulator, signed as its admin user."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=kwargs.pop("region_name", self.region),
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.admin_access_key_id,
            aws_secret_access_key=self.admin_secret_access_key,
            config=kwargs.pop("config", Config(retries={"max_attempts": 2, "mode": "standard"})),
            **kwargs,
        )

    def client_as(self, service: str, credentials: Mapping[str, str], **kwargs: Any) -> Any:
        """A client signed with other credentials: ``AccessKeyId``, ``SecretAccessKey`` and
        ``SessionToken`` (as STS returns them) or an IAM user's access key."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=kwargs.pop("region_name", self.region),
            endpoint_url=self.endpoint_url,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials.get("SessionToken"),
            config=kwargs.pop("config", Config(retries={"max_attempts": 1, "mode": "standard"})),
            **kwargs,
        )

    def session(self) -> EmulatorSession:
        """An object with ``client(name)``, for service functions that take a ``session``."""
        return EmulatorSession(self)

    def fast_forward(self, to: datetime) -> None:
        """Move the package's clock (``utc_now()``) forward to ``to`` (never back); Wait states
        waiting for a moment before it end on their next check."""
        advance_clock(to)

    # -- what moto keeps that AWS would deliver elsewhere ------------------------------------------

    def sent_emails(self) -> list[Any]:
        """Every message SES accepted (moto keeps them instead of delivering them)."""
        from moto.ses.models import ses_backends

        return list(ses_backends[self.account_id][self.region].sent_messages)

    def copy_bucket(self, bucket: str, directory: Path) -> Path:
        """Copy every object of ``bucket`` (latest versions) under ``directory``, keys as paths,
        like ``aws s3 sync s3://BUCKET DIR``; read from moto directly, so it leaves no trace."""
        from moto.s3.models import s3_backends

        root = Path(directory)
        stored = s3_backends[self.account_id]["aws"].get_bucket(bucket)
        for key, item in list(stored.keys.items()):
            target = root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.value)
        return root

    def event_deliveries(self) -> list[eventbridge.Delivery]:
        """Every EventBridge delivery to a rule target in this emulator's account, oldest first."""
        return eventbridge.deliveries(self.account_id)


@dataclass
class EmulatorSession:
    emulator: Emulator

    def client(self, service: str, **_: Any) -> Any:
        return self.emulator.client(service)


__all__ = ["Emulator", "EmulatorSession", "advance_clock", "lambda_zip"]
