"""The emulator's clock: a shortened Wait state moves ``utc_now()`` to the moment it waited for.

The package reads the time through ``breakglass.contracts.utc_now()``; the emulator adds
``CLOCK.offset``. A Wait cut short moves it forward (never back), so the Lambda after the Wait
sees the time the workflow expects; ``Emulator.fast_forward`` moves it by hand and lets a held
Wait end; the offset is gone when the emulator stops.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import timedelta
from typing import Any

from breakglass.contracts import CLOCK, iso, utc_now
from breakglass.local.emulator import Emulator

NOW_HANDLER = b"""
from breakglass.contracts import iso, utc_now


def handler(event, context):
    return {"now": iso(utc_now())}
"""


def trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def state_machine(emulator: Emulator, name: str, wait: dict[str, Any]) -> str:
    """Wait, then a Lambda task answering the time it sees."""
    iam = emulator.client("iam")
    function_role = iam.create_role(
        RoleName=f"{name}-fn", AssumeRolePolicyDocument=trust("lambda.amazonaws.com")
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("now.py", NOW_HANDLER)
    function_arn = emulator.client("lambda").create_function(
        FunctionName=f"{name}-now",
        Runtime="python3.12",
        Role=function_role["Role"]["Arn"],
        Handler="now.handler",
        Code={"ZipFile": buffer.getvalue()},
    )["FunctionArn"]
    machine_role = iam.create_role(
        RoleName=f"{name}-sm", AssumeRolePolicyDocument=trust("states.amazonaws.com")
    )
    iam.put_role_policy(
        RoleName=f"{name}-sm",
        PolicyName="invoke",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arn}
                ],
            }
        ),
    )
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", **wait, "Next": "Now"},
            "Now": {"Type": "Task", "Resource": function_arn, "End": True},
        },
    }
    return str(
        emulator.client("stepfunctions").create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=machine_role["Role"]["Arn"]
        )["stateMachineArn"]
    )


def run(emulator: Emulator, machine: str, payload: dict[str, Any]) -> dict[str, Any]:
    sfn = emulator.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + 60
    while True:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return dict(described)
        time.sleep(0.02)


def test_a_timestamp_wait_cut_short_moves_the_clock_to_its_timestamp() -> None:
    with Emulator(enforce_iam=True) as emulator:
        machine = state_machine(emulator, "expiry", {"TimestampPath": "$.until"})
        until = iso(utc_now() + timedelta(hours=2))
        described = run(emulator, machine, {"until": until})
        assert described["status"] == "SUCCEEDED"
        # The function after the Wait saw the moment the Wait was waiting for (or later).
        assert json.loads(described["output"])["now"] >= until
        assert iso(utc_now()) >= until


def test_a_seconds_wait_cut_short_moves_the_clock_by_its_seconds() -> None:
    with Emulator(enforce_iam=True) as emulator:
        machine = state_machine(emulator, "pause", {"Seconds": 3600})
        before = utc_now()
        assert run(emulator, machine, {})["status"] == "SUCCEEDED"
        assert utc_now() >= before + timedelta(seconds=3600)


def test_fast_forward_lets_a_held_wait_end_and_never_moves_back() -> None:
    with Emulator(enforce_iam=True, max_wait_seconds=600) as emulator:
        machine = state_machine(emulator, "held", {"TimestampPath": "$.until"})
        until = utc_now() + timedelta(days=1)
        sfn = emulator.client("stepfunctions")
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"until": iso(until)}))[
            "executionArn"
        ]
        emulator.fast_forward(until)
        emulator.fast_forward(until - timedelta(hours=5))  # earlier: no effect
        assert utc_now() >= until
        deadline = time.monotonic() + 60
        while (
            sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
    assert CLOCK.offset == timedelta(0)


def test_an_emulator_that_does_not_advance_the_clock_only_shortens_waits() -> None:
    with Emulator(enforce_iam=True, advance_clock=False) as emulator:
        machine = state_machine(emulator, "real-time", {"Seconds": 3600})
        assert run(emulator, machine, {})["status"] == "SUCCEEDED"
        assert CLOCK.offset == timedelta(0)


def test_the_clock_tells_the_real_time_again_when_the_emulator_stops() -> None:
    with Emulator(enforce_iam=True) as emulator:
        emulator.fast_forward(utc_now() + timedelta(days=3))
        assert CLOCK.offset > timedelta(days=2)
    assert CLOCK.offset == timedelta(0)
