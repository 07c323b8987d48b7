"""The approval workflow as Amazon States Language: a pure function of the Task Lambdas' ARNs.

One Standard state machine per stack. The shape, start to end::

    Validate ─(rejected)→ Rejected (Fail)
       │
    ApprovalMode ─(quorum 0)→ AutoApprove ──────────────────────────────┐
       │                                                                │
    AwaitApproval (.waitForTaskToken, tier deadline)                    │
       │ States.Timeout → AwaitBackupApproval ─(timeout)→ TimedOut ─┐   │
    Decide ─(denied)→ Deny → Denied (Succeed)  ←────────────────────┘   │
       │ approved                                                       │
    Grant (retry) → NotifyRequester → WaitUntilExpiry → Revoke (retry ≥5) → OpenReview → Finished
       └──── any failure after Grant is caught and goes to Revoke (fail-safe) ────┘

Only JSONPath is used (no JSONata) so the same document runs in moto's interpreter. The state
data stays small on purpose: handlers reload the request from the table by id, so nothing a
later state reads can be forged by editing the execution input. Requests are checked (TOTP
included) and stored by the access API before their execution starts; ``Validate`` only takes
the stored request up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

# Error names raised by the Task Lambdas (Step Functions uses the exception's class name).
REQUEST_REJECTED: Final = "RequestRejected"
GRANT_ERROR: Final = "GrantError"

# What Lambda's own transient failures are called when Step Functions invokes a function.
LAMBDA_TRANSIENT_ERRORS: Final = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)

# States after which access may exist: each of them that can catch must catch to Revoke.
POST_GRANT_STATES: Final = ("Grant", "NotifyRequester", "WaitUntilExpiry")
PRE_GRANT_TASKS: Final = ("Validate", "AutoApprove", "AwaitApproval", "AwaitBackupApproval", "Deny")


@dataclass(frozen=True)
class WorkflowFunctions:
    """The ARN of the Lambda behind each Task state."""

    validate: str
    await_approval: str
    auto_approve: str
    deny: str
    grant: str
    notify_requester: str
    revoke: str
    open_review: str
    record_error: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


TASK_NAMES: Final = tuple(WorkflowFunctions.__dataclass_fields__)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff of one retrier: waits interval, interval*rate, ... capped at max_delay."""

    interval_seconds: int
    max_attempts: int
    backoff_rate: float = 2.0
    max_delay_seconds: int = 60

    def retrier(self, errors: tuple[str, ...] = ("States.ALL",)) -> dict[str, Any]:
        return {
            "ErrorEquals": list(errors),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
            "MaxDelaySeconds": self.max_delay_seconds,
            "JitterStrategy": "FULL",
        }


GRANT_RETRY: Final = RetryPolicy(interval_seconds=2, max_attempts=3)
# Revoke is what ends access early after a failure: it keeps trying for about two minutes.
REVOKE_RETRY: Final = RetryPolicy(interval_seconds=2, max_attempts=6)
STEP_RETRY: Final = RetryPolicy(interval_seconds=1, max_attempts=3)

_TASK_TRANSIENT_RETRY: Final = {
    "ErrorEquals": list(LAMBDA_TRANSIENT_ERRORS),
    "IntervalSeconds": 1,
    "MaxAttempts": 3,
    "BackoffRate": 2.0,
}


# Grant and revoke run in one function with a concurrency of one (IAM has no conditional writes,
# so edits of one role must not interleave): being throttled is expected, not a failure.
_THROTTLE_RETRY: Final = {
    "ErrorEquals": ["Lambda.TooManyRequestsException"],
    "IntervalSeconds": 1,
    "MaxAttempts": 20,
    "BackoffRate": 1.5,
    "MaxDelaySeconds": 10,
    "JitterStrategy": "FULL",
}


def _invoke(function_arn: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload": dict(payload)},
    }


def _catch_all(next_state: str, result_path: str = "$.failure") -> dict[str, Any]:
    return {"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next_state}


def _await(function_arn: str, round_name: str, on_timeout: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": f"Store the task token and email the {round_name} approvers; wait for their decision.",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": function_arn,
            "Payload": {
                "request_id.$": "$.request.request_id",
                "task_token.$": "$$.Task.Token",
                "execution_arn.$": "$$.Execution.Id",
                "round": round_name,
            },
        },
        # Per-tier deadline, set by Validate from the tier's approval policy.
        "TimeoutSecondsPath": "$.request.approval_timeout_seconds",
        "ResultPath": "$.decision",
        "Retry": [_TASK_TRANSIENT_RETRY],
        "Catch": [
            {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": on_timeout},
            _catch_all("RecordError"),
        ],
        "Next": "Decide",
    }


def _record_error(function_arn: str, failure_path: str, stage: str) -> dict[str, Any]:
    return {
        **_invoke(
            function_arn,
            {"request_id.$": "$$.Execution.Name", "failure.$": failure_path, "stage": stage},
        ),
        "Comment": f"Audit the failure ({stage}) as an error event, then fail the execution.",
        "ResultPath": None,
        "Retry": [STEP_RETRY.retrier()],
        "Next": "Failed",
    }


def definition(
    functions: WorkflowFunctions,
    *,
    grant_retry: RetryPolicy = GRANT_RETRY,
    revoke_retry: RetryPolicy = REVOKE_RETRY,
) -> dict[str, Any]:
    """The state machine definition (a dict; ``json.dumps`` it at the resource boundary).

    Started only by the access API, with the minted request id as the execution name and
    ``{"request_id"}`` as input (nothing else of the input is read).
    """
    if revoke_retry.max_attempts < 5:
        raise ValueError("revoke_retry.max_attempts: revoke must be tried at least 5 times")
    f = functions
    post_grant_catch = [_catch_all("Revoke")]
    states: dict[str, Any] = {
        "Validate": {
            **_invoke(
                f.validate,
                {"request_id.$": "$$.Execution.Name", "execution_arn.$": "$$.Execution.Id"},
            ),
            "Comment": "Take up the request the access API admitted (checked there, TOTP included).",
            # Replaces the whole state: nothing of the execution input goes further.
            "ResultSelector": {"request.$": "$.Payload"},
            "ResultPath": "$",
            "Retry": [_TASK_TRANSIENT_RETRY],
            "Catch": [
                {"ErrorEquals": [REQUEST_REJECTED], "ResultPath": "$.rejection", "Next": "Rejected"},
                _catch_all("RecordError"),
            ],
            "Next": "ApprovalMode",
        },
        "Rejected": {
            "Type": "Fail",
            "Comment": "The request was refused; the request audit event says why.",
            "Error": REQUEST_REJECTED,
            "CausePath": "$.rejection.Cause",
        },
        "ApprovalMode": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.request.quorum", "NumericEquals": 0, "Next": "AutoApprove"}],
            "Default": "AwaitApproval",
        },
        "AutoApprove": {
            **_invoke(f.auto_approve, {"request_id.$": "$.request.request_id"}),
            "Comment": "Low-risk tier: approved at once, approvers notified.",
            "ResultSelector": {"decision.$": "$.Payload.decision"},
            "ResultPath": "$.decision",
            "Retry": [STEP_RETRY.retrier()],
            "Catch": [_catch_all("RecordError")],
            "Next": "Grant",
        },
        "AwaitApproval": _await(f.await_approval, "primary", on_timeout="AwaitBackupApproval"),
        "AwaitBackupApproval": _await(f.await_approval, "backup", on_timeout="TimedOut"),
        "TimedOut": {
            "Type": "Pass",
            "Result": {"decision": "timed_out"},
            "ResultPath": "$.decision",
            "Next": "Deny",
        },
        "Decide": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.decision.decision", "StringEquals": "approved", "Next": "Grant"}],
            "Default": "Deny",
        },
        "Deny": {
            **_invoke(
                f.deny,
                {"request_id.$": "$.request.request_id", "decision.$": "$.decision.decision"},
            ),
            "Comment": "Final: record the denial and tell the requester.",
            "ResultPath": None,
            "Retry": [STEP_RETRY.retrier()],
            "Catch": [_catch_all("RecordError")],
            "Next": "Denied",
        },
        "Denied": {"Type": "Succeed", "Comment": "Denied by an approver or by the deadline."},
        "RecordError": _record_error(f.record_error, "$.failure", "before-grant"),
        "Failed": {"Type": "Fail", "Error": "WorkflowFailed", "Cause": "see the error audit event"},
        "Grant": {
            **_invoke(f.grant, {"action": "grant", "request_id.$": "$.request.request_id"}),
            "Comment": "Open the time-bound trust and the expiry deny on the tier's emergency role.",
            "ResultSelector": {
                "role_arn.$": "$.Payload.role_arn",
                "starts_at.$": "$.Payload.starts_at",
                "expires_at.$": "$.Payload.expires_at",
            },
            "ResultPath": "$.grant",
            # A GrantError is a refusal (e.g. requester not allowed): retrying cannot help.
            "Retry": [
                {"ErrorEquals": [GRANT_ERROR], "MaxAttempts": 0},
                _THROTTLE_RETRY,
                grant_retry.retrier(),
            ],
            # A grant that failed half-way may have opened the trust: revoke resets it.
            "Catch": post_grant_catch,
            "Next": "NotifyRequester",
        },
        "NotifyRequester": {
            **_invoke(f.notify_requester, {"request_id.$": "$.request.request_id", "grant.$": "$.grant"}),
            "ResultPath": None,
            "Retry": [STEP_RETRY.retrier()],
            "Catch": post_grant_catch,
            "Next": "WaitUntilExpiry",
        },
        "WaitUntilExpiry": {
            "Type": "Wait",
            "Comment": "IAM already refuses sessions after expiry; this only tidies up on time.",
            "TimestampPath": "$.grant.expires_at",
            "Next": "Revoke",
        },
        "Revoke": {
            # The whole state goes in: after a failed Grant there is no $.grant to select.
            **_invoke(
                f.revoke,
                {
                    "action": "revoke",
                    "request_id.$": "$.request.request_id",
                    # The access function checks with Step Functions that this execution is in
                    # this state: nothing else can run the end-of-window revoke.
                    "execution_arn.$": "$$.Execution.Id",
                    "state.$": "$",
                },
            ),
            "Comment": "Remove the grant's statements (idempotent; also after an early revoke).",
            "ResultSelector": {
                "outcome.$": "$.Payload.outcome",
                "after_failure.$": "$.Payload.after_failure",
            },
            "ResultPath": "$.revoke",
            "Retry": [_THROTTLE_RETRY, revoke_retry.retrier()],
            "Catch": [_catch_all("RevokeFailed", "$.revoke_failure")],
            "Next": "OpenReview",
        },
        # Revoke kept failing: alert loudly (IAM still ends access at expiry by itself).
        "RevokeFailed": _record_error(f.record_error, "$.revoke_failure", "revoke"),
        "OpenReview": {
            **_invoke(f.open_review, {"request_id.$": "$.request.request_id", "state.$": "$"}),
            "Comment": "Open the post-event review an auditor must sign off.",
            "ResultPath": None,
            "Retry": [STEP_RETRY.retrier()],
            "Catch": [_catch_all("ReviewFailed", "$.review_failure")],
            "Next": "Finished",
        },
        "ReviewFailed": _record_error(f.record_error, "$.review_failure", "review"),
        "Finished": {
            "Type": "Choice",
            # Decided by Revoke, which saw whether a Catch sent the execution there.
            "Choices": [
                {"Variable": "$.revoke.after_failure", "BooleanEquals": True, "Next": "FailedAfterGrant"}
            ],
            "Default": "Done",
        },
        "FailedAfterGrant": {
            "Type": "Fail",
            "Error": "FailedAfterGrant",
            "Comment": "Something failed after the grant; access was revoked and the review opened.",
            "CausePath": "$.failure.Cause",
        },
        "Done": {"Type": "Succeed"},
    }
    return {
        "Comment": "break-glass: request, approval, time-bound grant, revoke at expiry, review",
        "StartAt": "Validate",
        "States": states,
    }


def successors(state: Mapping[str, Any]) -> set[str]:
    """Every state name ``state`` can move to (Next, Default, Choices, Catch)."""
    names: set[str] = set()
    for key in ("Next", "Default"):
        if key in state:
            names.add(state[key])
    names.update(choice["Next"] for choice in state.get("Choices", ()))
    names.update(catcher["Next"] for catcher in state.get("Catch", ()))
    return names


# -- IAM statements of the workflow's roles ----------------------------------------------------------
# Each Lambda gets only the statements it needs; table access is limited to the item kinds it
# touches through ``dynamodb:LeadingKeys`` (items are keyed USER#, TOKEN#, REQUEST#, RATE#, LIVE#,
# INDEX#: see the store and the admission modules).

ITEM_KINDS: Final = ("USER", "TOKEN", "REQUEST", "RATE", "LIVE", "INDEX")
_TABLE_ACCESS: Final = (
    ("read", "ReadItems", ("dynamodb:GetItem", "dynamodb:BatchGetItem")),
    ("write", "WriteItems", ("dynamodb:PutItem", "dynamodb:UpdateItem")),
    ("query", "QueryItems", ("dynamodb:Query",)),
    ("delete", "DeleteItems", ("dynamodb:DeleteItem",)),
)


def table_statements(
    table_arn: str,
    *,
    read: tuple[str, ...] = (),
    write: tuple[str, ...] = (),
    query: tuple[str, ...] = (),
    delete: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Each kind of table access on the listed item kinds only."""
    wanted = {"read": read, "write": write, "query": query, "delete": delete}
    for kind in (k for kinds in wanted.values() for k in kinds):
        if kind not in ITEM_KINDS:
            raise ValueError(f"item kind: must be one of {', '.join(ITEM_KINDS)}, got {kind!r}")
    statements = []
    for access, sid, actions in _TABLE_ACCESS:
        kinds = wanted[access]
        if kinds:
            statements.append(
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Action": list(actions),
                    "Resource": table_arn,
                    "Condition": {
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{k}#*" for k in sorted(kinds)]}
                    },
                }
            )
    return statements


def start_execution_statement(state_machine_arn: str) -> dict[str, Any]:
    """The access API starts one execution per admitted request."""
    return {
        "Sid": "StartWorkflow",
        "Effect": "Allow",
        "Action": "states:StartExecution",
        "Resource": state_machine_arn,
    }


def watch_executions_statement(
    *, partition: str, region: str, account: str, state_machine_name: str
) -> dict[str, Any]:
    """Read the workflow's executions (the access function checks who asks it to revoke; the
    reconciler looks for executions that stopped). Named, since the machine's ARN depends on
    the functions."""
    return {
        "Sid": "WatchWorkflowExecutions",
        "Effect": "Allow",
        "Action": ["states:DescribeExecution", "states:GetExecutionHistory"],
        "Resource": f"arn:{partition}:states:{region}:{account}:execution:{state_machine_name}:*",
    }


def invoke_statement(sid: str, function_arns: list[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": sorted(function_arns),
    }


def key_statement(key_arn: str, actions: tuple[str, ...] = ("kms:Decrypt",)) -> dict[str, Any]:
    """The workflow key: it encrypts the table, the link secret and each TOTP secret (Encrypt
    is for enrolling). DynamoDB and Secrets Manager use it on the caller's behalf, so the
    caller needs Decrypt (reads) and GenerateDataKey/Encrypt (writes) as AWS documents."""
    return {"Sid": "UseWorkflowKey", "Effect": "Allow", "Action": list(actions), "Resource": key_arn}


def secret_statement(secret_arn: str) -> dict[str, Any]:
    return {
        "Sid": "ReadLinkKey",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": secret_arn,
    }


def send_email_statement(identity_arn: str) -> dict[str, Any]:
    return {
        "Sid": "SendFromWorkflowIdentity",
        "Effect": "Allow",
        "Action": ["ses:SendEmail", "ses:SendRawEmail"],
        "Resource": identity_arn,
    }


def send_task_statement(state_machine_arn: str) -> dict[str, Any]:
    """Answer the workflow's waiting task (the approval and access APIs, when a vote decides the
    request; the await function, when votes decided it before it waited)."""
    return {
        "Sid": "AnswerWaitingTask",
        "Effect": "Allow",
        "Action": ["states:SendTaskSuccess", "states:SendTaskFailure"],
        "Resource": state_machine_arn,
    }


def state_machine_role_statements(function_arns: list[str]) -> list[dict[str, Any]]:
    """The state machine's own role: invoke its Task functions; deliver logs; send traces."""
    arns = sorted(set(function_arns))
    return [
        {
            "Sid": "InvokeTaskFunctions",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": [*arns, *(f"{a}:*" for a in arns)],
        },
        {
            # CloudWatch Logs delivery for Step Functions does not support resource-level permissions.
            "Sid": "DeliverExecutionLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            ],
            "Resource": "*",
        },
        {
            # X-Ray's write actions do not support resource-level permissions either.
            "Sid": "SendTraces",
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
            ],
            "Resource": "*",
        },
    ]
