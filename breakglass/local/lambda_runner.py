"""Run moto's Lambda functions in this process instead of in Docker.

moto runs function code only in a Docker container. :func:`install` replaces
``moto.awslambda.models.LambdaFunction._invoke_lambda`` with :func:`invoke_in_process`, which
imports the handler named in the function's configuration and calls it with the event, under
the function's environment variables and its role's credentials, and answers as moto expects:
``(payload, errored, logs)``.

Where the handler comes from: the function's own zip (the archive the component built) cannot be
imported as ``breakglass`` next to the installed package of that name, so for modules of this
package the runner checks that the handler's module is in the zip and that every
``breakglass/...`` file in the zip is byte for byte the installed file (:func:`verify_code`;
any difference fails the invocation), and then imports the installed package: what runs is
exactly what was shipped. Any other module is loaded from the zip itself, isolated per code hash.

Credentials: each invocation assumes the function's role in the emulator's STS as
``lambda.amazonaws.com`` (the role must trust it) and gives the handler those temporary keys, so
with IAM enforced a call the role's policies do not allow fails as it would in AWS. Calls go to
the emulator that invoked the function.

Environment: moto invokes functions on its request threads, several at a time (Step
Functions executions run on background threads), while other threads read ``os.environ`` too.
A handler's thread therefore reads a private copy of the environment with its function's
variables in it (:func:`function_environment`); the shared environment is never written. boto3's
default session is per invocation for the same reason (it caches the credentials it first read).
Invocations run concurrently, as in Lambda, except that a function with a reserved concurrency of
one runs one invocation at a time (the access function: IAM has no conditional writes, so edits
of one role must never interleave); Lambda would throttle the second call and its caller retry,
here it waits. A handler may invoke another function synchronously.
"""

from __future__ import annotations

import atexit
import importlib
import io
import json
import os
import shutil
import tempfile
import threading
import traceback
import types
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import boto3
from moto.awslambda.models import LambdaFunction

import breakglass
from breakglass.lambdas import runtime
from breakglass.local import calls, faults
from breakglass.local.iam_enforcement import service_credentials

_ENV_LOCK = threading.RLock()
_ZIP_MODULES: dict[tuple[str, str], types.ModuleType] = {}
_VERIFIED: dict[tuple[str, str], None] = {}
_ORIGINAL: Callable[..., tuple[str, bool, str]] | None = None
_ORIGINAL_DEFAULT_SESSION: Callable[[], Any] | None = None
_PACKAGE_PARENT: Final = Path(breakglass.__file__).parent.parent
LAMBDA_PRINCIPAL: Final = "lambda.amazonaws.com"


class LambdaCodeError(Exception):
    """The function's zip is not what would run: a handler module missing, or a file that differs."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class LambdaContext:
    """The parts of the Lambda context object handlers may read."""

    def __init__(self, function: Any) -> None:
        self.function_name: str = function.function_name
        self.function_version: str = str(function.version)
        self.invoked_function_arn: str = function.function_arn
        self.memory_limit_in_mb: int = int(function.memory_size or 128)
        self.aws_request_id: str = os.urandom(16).hex()
        self.log_group_name: str = f"/aws/lambda/{function.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class _ThreadEnviron(os._Environ):
    """``os.environ`` whose contents a thread can overlay without touching anyone else's view.

    A function's variables must be visible to the handler (and to boto3 inside it), but writing
    them into the process-wide mapping races with every other thread that reads the environment
    at that moment (botocore iterates ``os.environ`` whenever it creates a client, and a
    variable removed mid-iteration raises KeyError). So the handler's thread reads a private copy
    with its variables in it, and every other thread keeps reading the shared one, unchanged.
    """

    @property
    def _data(self) -> dict[bytes, bytes]:
        overlay: dict[bytes, bytes] | None = getattr(_OVERLAY, "data", None)
        return overlay if overlay is not None else self.__dict__["_data"]

    @_data.setter
    def _data(self, value: dict[bytes, bytes]) -> None:
        self.__dict__["_data"] = value


_OVERLAY = threading.local()


def _install_thread_environ() -> None:
    if type(os.environ) is not _ThreadEnviron:
        os.environ.__class__ = _ThreadEnviron


@contextmanager
def function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Make ``variables`` part of ``os.environ`` for this thread only, for the duration.

    Other threads never see the function's variables.
    """
    _install_thread_environ()
    environ: Any = os.environ
    with _ENV_LOCK:
        overlay = dict(environ.__dict__["_data"])
    for name, value in variables.items():
        overlay[environ.encodekey(name)] = environ.encodevalue(str(value))
    # A handler may invoke another function synchronously (the access API invokes the access
    # and halt functions): the previous overlay comes back when the inner call ends.
    previous = getattr(_OVERLAY, "data", None)
    _OVERLAY.data = overlay
    try:
        yield
    finally:
        _OVERLAY.data = previous


def _module_from_zip(code_bytes: bytes, code_sha: str, module_name: str) -> types.ModuleType:
    cached = _ZIP_MODULES.get((code_sha, module_name))
    if cached is not None:
        return cached
    path = module_name.replace(".", "/") + ".py"
    with zipfile.ZipFile(io.BytesIO(code_bytes)) as archive:
        try:
            source = archive.read(path).decode()
        except KeyError as exc:
            raise ImportError(f"{path} is not in the function's zip") from exc
    module = types.ModuleType(f"_lambda_zip_{code_sha[:12]}_{module_name.replace('.', '_')}")
    module.__file__ = f"<zip {code_sha[:12]}>/{path}"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    _ZIP_MODULES[(code_sha, module_name)] = module
    return module


def verify_code(function: Any) -> None:
    """Check that importing the installed package runs what the function's zip ships.

    The handler's module must be in the zip, and every ``breakglass/...`` file in the zip must be
    byte for byte the installed file. Checked once per code hash and handler.
    """
    code_bytes: bytes = getattr(function, "code_bytes", b"") or b""
    key = (str(getattr(function, "code_sha_256", "")), str(function.handler))
    if key in _VERIFIED:
        return
    module_name = str(function.handler).rpartition(".")[0]
    module_path = module_name.replace(".", "/")
    try:
        archive = zipfile.ZipFile(io.BytesIO(code_bytes))
    except zipfile.BadZipFile as exc:
        raise LambdaCodeError(
            "Runtime.InvalidZip", f"the code of {function.function_name} is not a zip"
        ) from exc
    with archive:
        names = set(archive.namelist())
        if f"{module_path}.py" not in names and f"{module_path}/__init__.py" not in names:
            raise LambdaCodeError(
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_name}': {module_path}.py is not in the function's zip",
            )
        differing = sorted(
            name
            for name in names
            if name.startswith("breakglass/")
            and not name.endswith("/")
            and (
                not (_PACKAGE_PARENT / name).is_file()
                or (_PACKAGE_PARENT / name).read_bytes() != archive.read(name)
            )
        )
    if differing:
        raise LambdaCodeError(
            "Emulator.CodeMismatch",
            f"the zip of {function.function_name} ships files that differ from the installed breakglass "
            f"package, so the emulator cannot run it from the installed package: {', '.join(differing[:10])}"
            + (f" and {len(differing) - 10} more" if len(differing) > 10 else "")
            + " (rebuild the deployment from this checkout)",
        )
    _VERIFIED[key] = None


def load_handler(function: Any) -> Callable[[Any, Any], Any]:
    """The callable named by ``function.handler`` (``package.module.function``)."""
    module_name, _, attribute = str(function.handler).rpartition(".")
    if not module_name:
        raise ImportError(f"handler {function.handler!r} must look like module.function")
    if module_name == "breakglass" or module_name.startswith("breakglass."):
        verify_code(function)
        module = importlib.import_module(module_name)
    else:
        code_bytes = getattr(function, "code_bytes", b"") or b""
        module = _module_from_zip(code_bytes, str(getattr(function, "code_sha_256", "")), module_name)
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise ImportError(f"{module_name} has no callable {attribute!r}")
    return handler


def _error_payload(exc: BaseException) -> dict[str, Any]:
    # The shape AWS Lambda returns for an unhandled exception; Step Functions names the error
    # after errorType, which is what Retry and Catch match on.
    return {
        "errorMessage": str(exc),
        "errorType": exc.error_type
        if isinstance(exc, LambdaCodeError)
        else faults.LAMBDA_TIMEOUT_ERROR
        if isinstance(exc, faults.LambdaTimedOut)
        else type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def endpoint_for(function: Any) -> str:
    """The emulator a function's calls go to: the one that invoked it."""
    scope = calls.for_account(str(function.account_id))
    if scope is not None:
        return scope.endpoint_url
    return f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}"


_TASK_ROOTS: dict[str, Path] = {}


def task_root(function: Any) -> Path:
    """The function's zip unpacked in a folder of its own (once per code hash, removed at exit)."""
    code_sha = str(getattr(function, "code_sha_256", ""))
    with _ENV_LOCK:
        root = _TASK_ROOTS.get(code_sha)
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="breakglass-task-"))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            code_bytes: bytes = getattr(function, "code_bytes", b"") or b""
            try:
                with zipfile.ZipFile(io.BytesIO(code_bytes)) as archive:
                    archive.extractall(root)
            except zipfile.BadZipFile:
                pass  # load_handler reports a zip that is not one
            _TASK_ROOTS[code_sha] = root
    return root


def runtime_environment(function: Any) -> dict[str, str]:
    """What a handler sees: Lambda's reserved variables, the function's own, its role's
    temporary credentials and the emulator's endpoint."""
    credentials = service_credentials(
        str(function.role),
        LAMBDA_PRINCIPAL,
        session_name=str(function.function_name)[:64],
        region=str(function.region),
    )
    variables = {
        "AWS_LAMBDA_FUNCTION_NAME": str(function.function_name),
        "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": str(function.logs_group_name),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time}",
        "AWS_REGION": str(function.region),
        "AWS_DEFAULT_REGION": str(function.region),
        # The function's archive unpacked, as Lambda does under /var/task: its handler may read
        # files it ships (the halt functions' targets).
        "LAMBDA_TASK_ROOT": str(task_root(function)),
        "_HANDLER": str(function.handler),
    }
    variables.update({str(k): str(v) for k, v in (function.environment_vars or {}).items()})
    # Whatever the function's settings, its AWS calls go to the emulator, as its role.
    variables["AWS_ENDPOINT_URL"] = endpoint_for(function)
    variables["AWS_ACCESS_KEY_ID"] = credentials.access_key_id
    variables["AWS_SECRET_ACCESS_KEY"] = credentials.secret_access_key
    variables["AWS_SESSION_TOKEN"] = credentials.session_token
    return variables


_SESSION = threading.local()
_SESSIONS: dict[tuple[str, str, str], Any] = {}


def _session_for(environment: Mapping[str, str]) -> Any:
    """A boto3 session reading this function's credentials, reused while they are (a new session
    per invocation would load every service model from disk again)."""
    key = (
        environment.get("AWS_ACCESS_KEY_ID", ""),
        environment.get("AWS_ENDPOINT_URL", ""),
        environment.get("AWS_REGION", ""),
    )
    session = _SESSIONS.get(key)
    if session is None:
        # Made inside the function's environment view, so it reads that function's variables.
        session = _SESSIONS[key] = boto3.session.Session()
        # Where an armed faults.Timeout stops the invocation, just before one of its calls.
        session.events.register("before-call", faults.before_call)
    return session


def _thread_default_session() -> Any:
    """boto3's default session, or the running handler's own (see :func:`invoke_in_process`)."""
    session = getattr(_SESSION, "session", None)
    if session is not None:
        return session
    assert _ORIGINAL_DEFAULT_SESSION is not None
    return _ORIGINAL_DEFAULT_SESSION()


_FUNCTION_LOCKS: dict[str, threading.Lock] = {}


@contextmanager
def _one_at_a_time(function: Any) -> Iterator[None]:
    """Serialize the invocations of a function whose reserved concurrency is one."""
    if str(getattr(function, "reserved_concurrency", "") or "") != "1":
        yield
        return
    with _ENV_LOCK:
        lock = _FUNCTION_LOCKS.setdefault(str(function.function_arn), threading.Lock())
    with lock:
        yield


def invoke_in_process(function: Any, event: Any = None) -> tuple[str, bool, str]:
    """Call the function's handler here; return moto's ``(payload, errored, logs)``."""
    function.logs_backend.ensure_log_group(function.logs_group_name)
    errored = False
    logs = ""
    try:
        environment = runtime_environment(function)
    except Exception as exc:  # the role is missing or does not trust Lambda: the invocation fails
        environment = None
        failure: Exception | None = exc
    else:
        failure = None
    lines = io.StringIO()
    # The handler's JSON log lines go to the function's log (as Lambda sends stdout to the log
    # group), not to whatever this process's stdout is at the moment.
    with _one_at_a_time(function), function_environment(environment or {}), runtime.logs_to(lines):
        try:
            if failure is not None:
                raise failure
            handler = load_handler(function)
            # boto3's default session caches the first credentials it reads; the handler's
            # boto3.client(...) calls must read this invocation's.
            _SESSION.session = _session_for(environment or {})
            try:
                result = handler({} if event is None else event, LambdaContext(function))
            finally:
                _SESSION.session = None
            payload = json.dumps(result)
        except (Exception, faults.LambdaTimedOut) as exc:
            errored = True
            error = _error_payload(exc)
            payload = json.dumps(error)
            # The handlers' own JSON logs go to stdout; the failure is what moto keeps.
            logs = json.dumps({"level": "ERROR", "message": "handler failed", **error})
    logged = lines.getvalue()
    function.save_logs(f"{logged}{logs}\n{payload}" if logs else f"{logged}{payload}")
    return payload, errored, logs


def install() -> None:
    """Make every moto Lambda invocation in this process run in-process (idempotent)."""
    global _ORIGINAL, _ORIGINAL_DEFAULT_SESSION
    with _ENV_LOCK:
        if _ORIGINAL is None:
            _ORIGINAL = LambdaFunction._invoke_lambda
            LambdaFunction._invoke_lambda = invoke_in_process  # type: ignore[method-assign,assignment]
            _ORIGINAL_DEFAULT_SESSION = boto3._get_default_session
            boto3._get_default_session = _thread_default_session


def uninstall() -> None:
    """Give moto back its own (Docker) invocation."""
    global _ORIGINAL, _ORIGINAL_DEFAULT_SESSION
    with _ENV_LOCK:
        if _ORIGINAL is not None:
            LambdaFunction._invoke_lambda = _ORIGINAL  # type: ignore[method-assign]
            _ORIGINAL = None
        if _ORIGINAL_DEFAULT_SESSION is not None:
            boto3._get_default_session = _ORIGINAL_DEFAULT_SESSION
            _ORIGINAL_DEFAULT_SESSION = None


def installed() -> bool:
    return _ORIGINAL is not None


__all__ = [
    "LambdaCodeError",
    "LambdaContext",
    "endpoint_for",
    "function_environment",
    "install",
    "installed",
    "invoke_in_process",
    "load_handler",
    "runtime_environment",
    "uninstall",
    "verify_code",
]
