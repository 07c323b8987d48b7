"""Run moto's Lambda functions in this process instead of in Docker.

moto runs function code only in a Docker container. :func:`install` replaces
``moto.awslambda.models.LambdaFunction._invoke_lambda`` with :func:`invoke_in_process`, which
imports the handler named in the function's configuration and calls it with the event, under
the function's environment variables, and answers as moto expects: ``(payload, errored, logs)``.

Where the handler comes from: modules of this package (``breakglass.*``) are imported from the
installed package, which is the code every deployed zip is built from; any other module is
loaded from the function's own zip, isolated per code hash so two functions never share one.

Environment: ``os.environ`` is process-global and moto invokes functions on its request
threads, several at a time (Step Functions executions run on background threads). Every call
therefore holds one lock while the function's variables are in place, and puts back exactly the
variables it changed afterwards. Invocations are serialized, so two executions can never see
each other's settings; the price is no parallelism between handlers, which the emulator does
not need. A handler must not invoke another function synchronously (it would wait forever for
the lock); none of this package's handlers do.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import threading
import traceback
import types
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from moto.awslambda.models import LambdaFunction

_ENV_LOCK = threading.RLock()
_ZIP_MODULES: dict[tuple[str, str], types.ModuleType] = {}
_ORIGINAL: Callable[..., tuple[str, bool, str]] | None = None


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


@contextmanager
def function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Put ``variables`` into ``os.environ`` for the duration, serialized with every other call.

    Only the variables named are touched and restored, so changes other code makes to other
    variables meanwhile survive.
    """
    with _ENV_LOCK:
        previous = {name: os.environ.get(name) for name in variables}
        os.environ.update({name: str(value) for name, value in variables.items()})
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


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


def load_handler(function: Any) -> Callable[[Any, Any], Any]:
    """The callable named by ``function.handler`` (``package.module.function``)."""
    module_name, _, attribute = str(function.handler).rpartition(".")
    if not module_name:
        raise ImportError(f"handler {function.handler!r} must look like module.function")
    if module_name == "breakglass" or module_name.startswith("breakglass."):
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
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def runtime_environment(function: Any) -> dict[str, str]:
    """What a handler sees: Lambda's reserved variables, the function's own, and the emulator."""
    port = os.environ.get("MOTO_PORT", "5000")
    variables = {
        "AWS_LAMBDA_FUNCTION_NAME": str(function.function_name),
        "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_REGION": str(function.region),
        "AWS_DEFAULT_REGION": str(function.region),
        "_HANDLER": str(function.handler),
    }
    variables.update({str(k): str(v) for k, v in (function.environment_vars or {}).items()})
    # Whatever the function's settings, its AWS calls go to the emulator, with credentials
    # that are worthless anywhere else.
    variables["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    variables["AWS_ACCESS_KEY_ID"] = "emulator"
    variables["AWS_SECRET_ACCESS_KEY"] = "emulator"
    variables["AWS_SESSION_TOKEN"] = "emulator"
    return variables


def invoke_in_process(function: Any, event: Any = None) -> tuple[str, bool, str]:
    """Call the function's handler here; return moto's ``(payload, errored, logs)``."""
    function.logs_backend.ensure_log_group(function.logs_group_name)
    errored = False
    logs = ""
    with function_environment(runtime_environment(function)):
        try:
            handler = load_handler(function)
            result = handler({} if event is None else event, LambdaContext(function))
            payload = json.dumps(result)
        except Exception as exc:
            errored = True
            error = _error_payload(exc)
            payload = json.dumps(error)
            # The handlers' own JSON logs go to stdout; the failure is what moto keeps.
            logs = json.dumps({"level": "ERROR", "message": "handler failed", **error})
    function.save_logs(f"{logs}\n{payload}" if logs else payload)
    return payload, errored, logs


def install() -> None:
    """Make every moto Lambda invocation in this process run in-process (idempotent)."""
    global _ORIGINAL
    with _ENV_LOCK:
        if _ORIGINAL is None:
            _ORIGINAL = LambdaFunction._invoke_lambda
            LambdaFunction._invoke_lambda = invoke_in_process  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """Give moto back its own (Docker) invocation."""
    global _ORIGINAL
    with _ENV_LOCK:
        if _ORIGINAL is not None:
            LambdaFunction._invoke_lambda = _ORIGINAL  # type: ignore[method-assign]
            _ORIGINAL = None


def installed() -> bool:
    return _ORIGINAL is not None


__all__ = [
    "LambdaContext",
    "function_environment",
    "install",
    "installed",
    "invoke_in_process",
    "load_handler",
    "runtime_environment",
    "uninstall",
]
