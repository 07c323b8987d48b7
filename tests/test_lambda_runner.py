"""The in-process Lambda runner: a handler gets its function's variables without racing anyone, runs
the code its archive ships, and calls AWS as its function's role."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import breakglass
from breakglass.local.lambda_runner import LambdaCodeError, function_environment, verify_code
from breakglass.local.resources import archive_zip

PACKAGE = Path(breakglass.__file__).parent


def test_a_functions_variables_are_seen_by_its_thread_only_and_gone_afterwards() -> None:
    inside, ready, done = {}, threading.Event(), threading.Event()

    def handler_thread() -> None:
        with function_environment({"BREAKGLASS_PROBE": "function-value"}):
            inside["value"] = os.environ.get("BREAKGLASS_PROBE")
            ready.set()
            done.wait(5)

    thread = threading.Thread(target=handler_thread)
    thread.start()
    ready.wait(5)
    try:
        assert inside["value"] == "function-value"
        assert "BREAKGLASS_PROBE" not in os.environ  # another thread, meanwhile
    finally:
        done.set()
        thread.join()
    assert "BREAKGLASS_PROBE" not in os.environ


def test_other_threads_can_iterate_the_environment_while_handlers_come_and_go() -> None:
    # botocore iterates os.environ whenever it creates a client; a variable added or removed
    # mid-iteration used to raise in the reading thread.
    stop = threading.Event()
    errors: list[BaseException] = []

    def handlers() -> None:
        n = 0
        while not stop.is_set():
            with function_environment({f"BREAKGLASS_CHURN_{n % 7}": str(n)}):
                n += 1

    churn = threading.Thread(target=handlers)
    churn.start()
    try:
        for _ in range(3000):
            try:
                dict(os.environ.items())
            except (KeyError, RuntimeError) as exc:
                errors.append(exc)
                break
    finally:
        stop.set()
        churn.join()
    assert errors == []
    assert not any(name.startswith("BREAKGLASS_CHURN_") for name in os.environ)


# -- what runs: the function's own archive, checked against the installed package -----------------


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, content in files.items():
            zipped.writestr(name, content)
    return buffer.getvalue()


def fake_function(code: bytes, handler: str) -> SimpleNamespace:
    return SimpleNamespace(
        code_bytes=code,
        code_sha_256=hashlib.sha256(code).hexdigest(),
        handler=handler,
        function_name="probe",
    )


def test_the_components_archive_runs_from_the_installed_package() -> None:
    from breakglass.components.functions import lambda_code

    code = archive_zip(lambda_code())
    verify_code(fake_function(code, "breakglass.lambdas.halt.handler.halt_handler"))


def test_a_zip_without_the_handlers_module_fails_as_an_import_error() -> None:
    code = zip_of({"breakglass/__init__.py": (PACKAGE / "__init__.py").read_bytes()})
    with pytest.raises(
        LambdaCodeError, match=r"Unable to import module 'breakglass.lambdas.halt.handler'"
    ) as failed:
        verify_code(fake_function(code, "breakglass.lambdas.halt.handler.halt_handler"))
    assert failed.value.error_type == "Runtime.ImportModuleError"


def test_a_zip_that_ships_a_different_file_than_the_installed_one_is_refused() -> None:
    handler = PACKAGE / "lambdas" / "halt" / "handler.py"
    code = zip_of(
        {"breakglass/lambdas/halt/handler.py": handler.read_bytes() + b"\n# edited after the build\n"}
    )
    with pytest.raises(LambdaCodeError, match=r"breakglass/lambdas/halt/handler.py") as failed:
        verify_code(fake_function(code, "breakglass.lambdas.halt.handler.halt_handler"))
    assert failed.value.error_type == "Emulator.CodeMismatch"


WHOAMI = b"""
import os

import boto3


def handler(event, context):
    return {"arn": boto3.client("sts").get_caller_identity()["Arn"], "probe": os.environ.get("PROBE")}
"""
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def test_a_function_runs_with_its_own_roles_credentials_and_its_environment() -> None:
    from breakglass.local.emulator import Emulator

    with Emulator(enforce_iam=True) as emulator:
        role = emulator.client("iam").create_role(
            RoleName="whoami-role", AssumeRolePolicyDocument=json.dumps(TRUST)
        )
        client = emulator.client("lambda")
        client.create_function(
            FunctionName="whoami",
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler="whoami.handler",
            Code={"ZipFile": zip_of({"whoami.py": WHOAMI})},
            Environment={"Variables": {"PROBE": "set by the function"}},
        )
        answer = json.loads(client.invoke(FunctionName="whoami")["Payload"].read())
    assert answer == {
        "arn": f"arn:aws:sts::{emulator.account_id}:assumed-role/whoami-role/whoami",
        "probe": "set by the function",
    }


def test_a_function_whose_role_does_not_trust_lambda_fails_to_run() -> None:
    from breakglass.local.emulator import Emulator

    ec2_trust = json.loads(json.dumps(TRUST).replace("lambda.amazonaws.com", "ec2.amazonaws.com"))
    with Emulator(enforce_iam=True) as emulator:
        role = emulator.client("iam").create_role(
            RoleName="ec2-role", AssumeRolePolicyDocument=json.dumps(ec2_trust)
        )
        client = emulator.client("lambda")
        client.create_function(
            FunctionName="misconfigured",
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler="whoami.handler",
            Code={"ZipFile": zip_of({"whoami.py": WHOAMI})},
        )
        response = client.invoke(FunctionName="misconfigured")
        error = json.loads(response["Payload"].read())
    assert response["FunctionError"]
    assert (
        error["errorType"] == "ServiceRoleError"
        and "does not trust lambda.amazonaws.com" in error["errorMessage"]
    )
