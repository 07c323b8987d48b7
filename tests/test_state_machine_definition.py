"""The workflow's state machine, tested as data: reachable, fail-safe after grant, JSONPath only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from breakglass.policies.state_machine import (
    POST_GRANT_STATES,
    PRE_GRANT_TASKS,
    REQUEST_REJECTED,
    TASK_NAMES,
    RetryPolicy,
    WorkflowFunctions,
    definition,
    successors,
)

ARNS = WorkflowFunctions(
    **{name: f"arn:aws:lambda:us-east-1:123456789012:function:bg-{name}" for name in TASK_NAMES}
)


@pytest.fixture
def doc() -> dict[str, Any]:
    return definition(ARNS)


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def reachable(doc: dict[str, Any], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(successors(doc["States"][name]))
    return seen


def test_every_next_default_choice_and_catch_target_exists(doc: dict[str, Any]) -> None:
    states = doc["States"]
    assert doc["StartAt"] in states
    for name, state in states.items():
        for target in successors(state):
            assert target in states, f"{name} -> {target} does not exist"


def test_every_state_is_reachable_from_the_start(doc: dict[str, Any]) -> None:
    assert reachable(doc, doc["StartAt"]) == set(doc["States"])


def test_only_terminal_states_lack_a_next(doc: dict[str, Any]) -> None:
    for name, state in doc["States"].items():
        if state["Type"] in {"Succeed", "Fail"}:
            assert "Next" not in state and "End" not in state, name
        elif state["Type"] != "Choice":
            assert "Next" in state, f"{name} has nowhere to go"


def test_every_path_out_of_grant_passes_through_revoke(doc: dict[str, Any]) -> None:
    states = dict(doc["States"])
    revoke = states.pop("Revoke")
    assert revoke["Type"] == "Task"
    # Without Revoke, no terminal state may be reachable from Grant: access never outlives the flow.
    seen: set[str] = set()
    todo = ["Grant"]
    while todo:
        name = todo.pop()
        if name in seen or name == "Revoke":
            continue
        seen.add(name)
        assert states[name]["Type"] not in {"Succeed", "Fail"}, f"{name} ends the execution without revoking"
        todo.extend(successors(states[name]))
    assert set(POST_GRANT_STATES) <= seen


def test_every_post_grant_state_that_can_fail_catches_everything_to_revoke(doc: dict[str, Any]) -> None:
    for name in POST_GRANT_STATES:
        state = doc["States"][name]
        if state["Type"] == "Wait":  # a Wait state cannot carry Catch in ASL
            continue
        catchers = state["Catch"]
        assert catchers[-1]["ErrorEquals"] == ["States.ALL"], name
        assert {c["Next"] for c in catchers} == {"Revoke"}, name


def test_revoke_retries_with_backoff_at_least_five_times(doc: dict[str, Any]) -> None:
    throttled, retrier = doc["States"]["Revoke"]["Retry"]
    assert throttled["ErrorEquals"] == ["Lambda.TooManyRequestsException"]
    assert retrier["ErrorEquals"] == ["States.ALL"]
    assert retrier["MaxAttempts"] >= 5
    assert retrier["BackoffRate"] > 1
    assert retrier["IntervalSeconds"] >= 1


def test_a_revoke_policy_with_fewer_than_five_attempts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"revoke_retry\.max_attempts"):
        definition(ARNS, revoke_retry=RetryPolicy(interval_seconds=1, max_attempts=4))


def test_grant_retries_with_backoff_but_not_on_a_refusal(doc: dict[str, Any]) -> None:
    refusal, throttled, transient = doc["States"]["Grant"]["Retry"]
    assert refusal == {"ErrorEquals": ["GrantError"], "MaxAttempts": 0}
    assert throttled["ErrorEquals"] == ["Lambda.TooManyRequestsException"] and throttled["MaxAttempts"] >= 10
    assert transient["ErrorEquals"] == ["States.ALL"] and transient["BackoffRate"] > 1


def test_failures_before_grant_are_audited_then_fail(doc: dict[str, Any]) -> None:
    states = doc["States"]
    for name in PRE_GRANT_TASKS:
        targets = {c["Next"] for c in states[name]["Catch"]}
        assert "Grant" not in targets and "Revoke" not in targets, name
        assert "RecordError" in targets, name
    assert states["RecordError"]["Resource"] == "arn:aws:states:::lambda:invoke"
    assert states["RecordError"]["Parameters"]["FunctionName"] == ARNS.record_error
    assert states[states["RecordError"]["Next"]]["Type"] == "Fail"


def test_a_rejected_request_fails_with_the_rejection_as_cause(doc: dict[str, Any]) -> None:
    catchers = doc["States"]["Validate"]["Catch"]
    assert catchers[0] == {"ErrorEquals": [REQUEST_REJECTED], "ResultPath": "$.rejection", "Next": "Rejected"}
    assert doc["States"]["Rejected"] == {
        "Type": "Fail",
        "Comment": "The request was refused; the request audit event says why.",
        "Error": REQUEST_REJECTED,
        "CausePath": "$.rejection.Cause",
    }


def test_validate_drops_the_input_so_the_totp_code_goes_no_further(doc: dict[str, Any]) -> None:
    validate = doc["States"]["Validate"]
    assert validate["ResultPath"] == "$"
    assert validate["ResultSelector"] == {"request.$": "$.Payload"}
    assert validate["Parameters"]["Payload"]["request_id.$"] == "$$.Execution.Name"


def test_quorum_zero_is_auto_approved_and_anything_else_waits_for_approvers(doc: dict[str, Any]) -> None:
    choice = doc["States"]["ApprovalMode"]
    assert choice["Choices"] == [{"Variable": "$.request.quorum", "NumericEquals": 0, "Next": "AutoApprove"}]
    assert choice["Default"] == "AwaitApproval"
    assert doc["States"]["AutoApprove"]["Next"] == "Grant"


def test_approval_waits_for_a_task_token_until_the_tier_deadline_then_asks_backups_once(
    doc: dict[str, Any],
) -> None:
    states = doc["States"]
    for name, timeout_next in (("AwaitApproval", "AwaitBackupApproval"), ("AwaitBackupApproval", "TimedOut")):
        state = states[name]
        assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
        assert state["TimeoutSecondsPath"] == "$.request.approval_timeout_seconds"
        assert state["Catch"][0] == {
            "ErrorEquals": ["States.Timeout"],
            "ResultPath": "$.timeout",
            "Next": timeout_next,
        }
        assert state["Next"] == "Decide"
    assert states["AwaitApproval"]["Parameters"]["Payload"]["round"] == "primary"
    assert states["AwaitBackupApproval"]["Parameters"]["Payload"]["round"] == "backup"
    # After the backup round times out the request is denied: no third round.
    assert states["TimedOut"]["Next"] == "Deny"


def test_only_an_approved_decision_leads_to_grant(doc: dict[str, Any]) -> None:
    decide = doc["States"]["Decide"]
    assert decide["Choices"] == [
        {"Variable": "$.decision.decision", "StringEquals": "approved", "Next": "Grant"}
    ]
    assert decide["Default"] == "Deny"
    assert doc["States"]["Deny"]["Next"] == "Denied"
    assert doc["States"]["Denied"]["Type"] == "Succeed"


def test_access_ends_with_a_wait_until_expiry_then_revoke_then_review(doc: dict[str, Any]) -> None:
    states = doc["States"]
    assert states["Grant"]["Next"] == "NotifyRequester"
    assert states["NotifyRequester"]["Next"] == "WaitUntilExpiry"
    assert states["WaitUntilExpiry"] == {
        "Type": "Wait",
        "Comment": states["WaitUntilExpiry"]["Comment"],
        "TimestampPath": "$.grant.expires_at",
        "Next": "Revoke",
    }
    assert states["Revoke"]["Next"] == "OpenReview"
    assert states["OpenReview"]["Next"] == "Finished"
    assert states["Finished"]["Default"] == "Done"
    # A run that went to Revoke through a Catch ends failed so the alarm sees it.
    assert states["Finished"]["Choices"] == [
        {"Variable": "$.revoke.after_failure", "BooleanEquals": True, "Next": "FailedAfterGrant"}
    ]
    assert states["Revoke"]["ResultSelector"]["after_failure.$"] == "$.Payload.after_failure"


def test_every_task_invokes_one_of_the_workflow_functions(doc: dict[str, Any]) -> None:
    arns = set(ARNS.as_dict().values())
    used = set()
    for name, state in doc["States"].items():
        if state["Type"] == "Task":
            assert state["Resource"].startswith("arn:aws:states:::lambda:invoke"), name
            assert state["Parameters"]["FunctionName"] in arns, name
            used.add(state["Parameters"]["FunctionName"])
    assert used == arns


def test_the_definition_uses_jsonpath_only_and_serializes(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    assert "QueryLanguage" not in text and "{%" not in text
    for key, value in walk(doc):
        if (key.endswith(".$") or key.endswith("Path")) and value is not None:  # ResultPath null: discard
            assert isinstance(value, str) and value.startswith("$"), (key, value)
    assert json.loads(text) == doc
