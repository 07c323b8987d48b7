"""Request validation and the tiers' approval policy: every refusal names the field and says why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyotp
import pytest
from moto import mock_aws

from breakglass.contracts import APPROVAL_POLICY_FILE
from breakglass.lambdas.access.grants import Tier
from breakglass.lambdas.approvals.enrollment import enroll
from breakglass.lambdas.approvals.requests import (
    RequestRejected,
    TierApproval,
    eligible_approvers,
    load_policy,
    parse_duration,
    parse_policy,
    policy_to_json,
    validate_request,
)
from breakglass.lambdas.approvals.store import (
    TABLE_ATTRIBUTE_DEFINITIONS,
    TABLE_KEY_SCHEMA,
    Enrollment,
    Store,
)
from breakglass.lambdas.runtime import TASK_ROOT_VARIABLE
from breakglass.validation import ConfigError

ACCOUNT = "123456789012"
NOW = datetime(2025, 3, 1, 9, 30, 0, tzinfo=UTC)


def arn(user: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{user}"


def tier(name: str, *, window: int = 3600, allowed: tuple[str, ...] = (arn("rita"), arn("ann"))) -> Tier:
    return Tier(
        name=name,
        role_name=f"breakglass-emergency-{name}",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/breakglass-emergency-{name}",
        max_session_seconds=3600,
        max_window_seconds=window,
        require_mfa=False,
        allowed_requesters=allowed,
    )


TIERS = {"operator": tier("operator", window=7200), "halt": tier("halt")}
POLICY = parse_policy(
    {
        "operator": {
            "approval": 2,
            "approvers": ["ann", "bob", "cat"],
            "backup_approvers": ["sec"],
            "ticket_required": True,
            "ticket_pattern": r"INC-\d+",
            "approval_timeout_seconds": 900,
        },
        "halt": {"approval": "auto", "approvers": ["ann"]},
    }
)


@pytest.fixture
def store() -> Iterator[Store]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="state",
            KeySchema=list(TABLE_KEY_SCHEMA),
            AttributeDefinitions=list(TABLE_ATTRIBUTE_DEFINITIONS),
            BillingMode="PAY_PER_REQUEST",
        )
        kms = boto3.client("kms", region_name="us-east-1")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        yield Store(dynamodb, "state", kms, key)


@pytest.fixture
def secrets(store: Store) -> dict[str, str]:
    found = {}
    for user, roles in {"rita": ["responder"], "ann": ["responder", "approver"], "zed": ["approver"]}.items():
        uri = enroll(store, user, arn(user), f"{user}@example.com", roles)
        found[user] = pyotp.parse_uri(uri).secret
    return found


def body(secrets: dict[str, str], **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "tier": "operator",
        "requester": "rita",
        "reason": "the fraud model approves every transaction since 09:10",
        "ticket": "INC-4242",
        "duration": "30m",
    }
    values.update(changes)
    user = values["requester"]
    if "totp" not in values and user in secrets:
        values["totp"] = pyotp.TOTP(secrets[user]).at(NOW)
    return {k: v for k, v in values.items() if v is not None}


def person(store: Store, user: str) -> Enrollment:
    """The enrolled person AWS verified as the caller (identity maps the caller to them)."""
    enrollment = store.get_enrollment(user)
    assert enrollment is not None, user
    return enrollment


def validate(
    store: Store,
    data: dict[str, Any],
    request_id: str = "req1",
    *,
    tiers: Any = TIERS,
    policy: Any = POLICY,
    **kwargs: Any,
) -> Any:
    """The body carries no requester any more: ``requester`` here only picks the verified caller."""
    values = dict(data)
    user = values.pop("requester", "rita")
    return validate_request(
        store, tiers, policy, values, request_id=request_id, requester=person(store, user), now=NOW, **kwargs
    )


def rejected(store: Store, data: dict[str, Any]) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        validate(store, data)
    return caught.value


# -- a valid request ---------------------------------------------------------------------------------


def test_a_valid_request_becomes_a_pending_record_without_the_requester_among_approvers(
    store: Store, secrets: dict[str, str]
) -> None:
    validated = validate(store, body(secrets, requester="ann", totp=pyotp.TOTP(secrets["ann"]).at(NOW)))
    record = validated.record
    assert (record.request_id, record.requester, record.requester_arn) == ("req1", "ann", arn("ann"))
    assert (record.tier, record.status, record.quorum, record.duration_seconds) == (
        "operator",
        "pending",
        2,
        1800,
    )
    assert record.approvers == ("bob", "cat")
    assert record.requested_at == "2025-03-01T09:30:00Z" and record.execution_arn is None
    assert validated.state() == {
        "request_id": "req1",
        "tier": "operator",
        "requester": "ann",
        "quorum": 2,
        "duration_seconds": 1800,
        "approval_timeout_seconds": 900,
    }


def test_an_auto_tier_needs_no_ticket_and_has_quorum_zero(store: Store, secrets: dict[str, str]) -> None:
    record = validate(store, body(secrets, tier="halt", ticket=None)).record
    assert record.quorum == 0 and record.ticket is None and record.approvers == ("ann",)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("900s", 900), ("900", 900), (1200, 1200), (" 2H ", 7200)],
)
def test_durations_are_read_from_minutes_hours_or_seconds(text: Any, seconds: int) -> None:
    assert parse_duration("duration", text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "30x", "m", "-5m", True, 12.5, None, "10m"])
def test_bad_or_too_short_durations_name_the_field(text: Any) -> None:
    with pytest.raises(ConfigError, match=r"^duration: "):
        parse_duration("duration", text)


# -- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"tier": "root"}, "tier", "unknown tier 'root'; known tiers: halt, operator"),
        ({"reason": "urgent"}, "reason", "at least 10 characters"),
        ({"reason": "x" * 1001}, "reason", "at most 1000 characters"),
        ({"reason": None}, "reason", "is required"),
        ({"ticket": None}, "ticket", "tier 'operator' requires an incident ticket"),
        ({"ticket": "JIRA-1"}, "ticket", "does not look like a ticket"),
        ({"ticket": "I" * 129}, "ticket", "at most 128 characters"),
        ({"reason": "model leaks data\r\nBcc: x@evil.example"}, "reason", "plain text"),
        ({"reason": "approve quickly \u202eatad skael"}, "reason", "plain text"),
        ({"reason": "terminal \x1b[2J clears the screen"}, "reason", "plain text"),
        ({"ticket": "INC-1\nINC-2"}, "ticket", "one line"),
        ({"duration": "3h"}, "duration", "allows at most 2h, asked for 3h"),
        ({"duration": "5m"}, "duration", "at least 15 minutes"),
        ({"requester": "zed", "totp": "123456"}, "requester", "enrolled but not as a responder"),
        ({"totp": "12345"}, "totp", "6 digits"),
        ({"colour": "red"}, "colour", "unknown setting"),
    ],
)
def test_each_bad_field_is_rejected_by_name(
    store: Store, secrets: dict[str, str], changes: dict[str, Any], field: str, problem: str
) -> None:
    error = rejected(store, body(secrets, **changes))
    assert error.field == field and problem in error.problem, str(error)
    assert str(error).startswith(f"{field}: ")


def test_a_requester_not_allowed_for_the_tier_is_rejected(store: Store, secrets: dict[str, str]) -> None:
    tiers = {**TIERS, "operator": tier("operator", allowed=(arn("ann"),))}
    with pytest.raises(RequestRejected, match=r"requester: 'rita' .* may not request tier 'operator'"):
        validate(store, body(secrets), request_id="r", tiers=tiers)


def test_a_tier_without_enough_approvers_besides_the_requester_is_rejected(
    store: Store, secrets: dict[str, str]
) -> None:
    policy = {**POLICY, "operator": TierApproval(quorum=2, approvers=("ann", "bob"))}
    data = body(secrets, requester="ann", totp=pyotp.TOTP(secrets["ann"]).at(NOW))
    with pytest.raises(RequestRejected, match="tier: tier 'operator' needs 2 approvers besides you"):
        validate(store, data, request_id="r", policy=policy)


def test_a_wrong_totp_is_rejected_and_a_good_one_cannot_be_replayed(
    store: Store, secrets: dict[str, str]
) -> None:
    good = pyotp.TOTP(secrets["rita"]).at(NOW)
    wrong = next(c for c in ("000000", "111111", "222222") if c != good)
    assert rejected(store, body(secrets, totp=wrong)).problem.startswith("the code is wrong")
    validate(store, body(secrets, totp=good))
    replay = rejected(store, body(secrets, totp=good))
    assert replay.field == "totp" and "already used" in replay.problem


def test_the_code_is_checked_last_so_a_typo_elsewhere_does_not_spend_it(
    store: Store, secrets: dict[str, str]
) -> None:
    good = pyotp.TOTP(secrets["rita"]).at(NOW)
    assert rejected(store, body(secrets, reason="short", totp=good)).field == "reason"
    assert validate(store, body(secrets, totp=good)).record.requester == "rita"


def test_an_unsafe_request_id_is_rejected(store: Store, secrets: dict[str, str]) -> None:
    with pytest.raises(RequestRejected, match=r"^request_id: "):
        validate(store, body(secrets), request_id="../etc")
    # One length for every module: a longer id could never be signed into an approval link.
    with pytest.raises(RequestRejected, match=r"^request_id: "):
        validate(store, body(secrets), request_id="r" * 65)


def test_a_multi_line_reason_is_kept(store: Store, secrets: dict[str, str]) -> None:
    reason = "the fraud model approves everything:\n\tsee dashboard"
    assert validate(store, body(secrets, reason=reason)).record.reason == reason


# -- the approval policy -----------------------------------------------------------------------------


def test_the_policy_round_trips_through_the_function_archive(tmp_path: Path) -> None:
    (tmp_path / APPROVAL_POLICY_FILE).write_text(policy_to_json(POLICY))
    assert load_policy({TASK_ROOT_VARIABLE: str(tmp_path)}) == POLICY
    assert json.loads((tmp_path / APPROVAL_POLICY_FILE).read_text())["halt"]["approval"] == "auto"


def test_a_function_without_the_policy_is_misconfigured(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=f"{APPROVAL_POLICY_FILE} is not in the function's archive"):
        load_policy({TASK_ROOT_VARIABLE: str(tmp_path)})
    (tmp_path / APPROVAL_POLICY_FILE).write_text(json.dumps({"ops": {"approval": 0}}))
    with pytest.raises(ConfigError, match=f"{APPROVAL_POLICY_FILE}.ops"):
        load_policy({TASK_ROOT_VARIABLE: str(tmp_path)})


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        ({}, "tiers.t.approval", "required"),
        ({"approval": "manual"}, "tiers.t.approval", 'must be "auto" or a quorum'),
        ({"approval": 0}, "tiers.t.approval", "at least 1"),
        ({"approval": True}, "tiers.t.approval", 'must be "auto" or a quorum'),
        ({"approval": 3, "approvers": ["a1", "b1"]}, "tiers.t.approvers", "needs at least 3 approvers"),
        ({"approval": 1, "approvers": ["a1", "a1"]}, "tiers.t.approvers[1]", "listed twice"),
        (
            {"approval": 1, "approvers": ["a1"], "backup_approvers": ["a1"]},
            "tiers.t.backup_approvers",
            "primary",
        ),
        (
            {"approval": "auto", "ticket_pattern": "("},
            "tiers.t.ticket_pattern",
            "not a valid regular expression",
        ),
        (
            {"approval": "auto", "approval_timeout_seconds": 0},
            "tiers.t.approval_timeout_seconds",
            "at least 1",
        ),
        ({"approval": "auto", "ticket_required": "yes"}, "tiers.t.ticket_required", "true or false"),
        ({"approval": "auto", "quorum": 2}, "tiers.t.quorum", "unknown setting"),
    ],
)
def test_bad_policy_settings_name_the_field(spec: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy({"t": spec})
    assert caught.value.field == field and problem in caught.value.problem


def test_backup_approvers_join_the_vote_only_in_the_backup_round_and_never_the_requester() -> None:
    approval = POLICY["operator"]
    assert eligible_approvers(approval, "rita") == ("ann", "bob", "cat")
    assert eligible_approvers(approval, "ann", backup=True) == ("bob", "cat", "sec")
    assert eligible_approvers(approval, "ANN", backup=True) == ("bob", "cat", "sec")


def test_a_code_is_judged_at_the_time_of_the_request(store: Store, secrets: dict[str, str]) -> None:
    # Validation does not depend on wall-clock time: a code for NOW is checked at NOW.
    later = NOW + timedelta(minutes=5)
    data = body(secrets, totp=pyotp.TOTP(secrets["rita"]).at(NOW))
    data.pop("requester")
    with pytest.raises(RequestRejected, match=r"^totp: the code is wrong"):
        validate_request(
            store, TIERS, POLICY, data, request_id="r", requester=person(store, "rita"), now=later
        )


def test_the_body_cannot_name_the_requester_any_more(store: Store, secrets: dict[str, str]) -> None:
    # Who asks is what AWS verified (security review, finding 7); a body naming someone is refused.
    data = body(secrets)
    with pytest.raises(RequestRejected, match=r"^requester: unknown setting"):
        validate_request(
            store, TIERS, POLICY, data, request_id="req1", requester=person(store, "rita"), now=NOW
        )


def test_admission_runs_after_every_other_check_and_before_the_code_is_spent(
    store: Store, secrets: dict[str, str]
) -> None:
    good = pyotp.TOTP(secrets["rita"]).at(NOW)
    seen: list[str] = []

    def refuse(request: Any, approval: TierApproval) -> None:
        seen.append(request.tier)
        raise ConfigError("tier", "limit reached")

    with pytest.raises(RequestRejected, match="tier: limit reached"):
        validate(store, body(secrets, totp=good), before_totp=refuse)
    assert rejected(store, body(secrets, reason="short", totp=good)).field == "reason"
    assert seen == ["operator"]
    assert validate(store, body(secrets, totp=good)).record.requester == "rita"  # the code was not spent


def test_an_auto_approved_tier_may_not_resume_without_the_named_opt_in() -> None:
    with pytest.raises(ConfigError, match=r"^tiers\.halt\.may_resume: an auto-approved tier may not resume"):
        parse_policy({"halt": {"approval": "auto", "may_resume": True}}, "tiers")
    opted = parse_policy(
        {"halt": {"approval": "auto", "may_resume": True, "resume_without_quorum_opt_in": True}}
    )
    assert opted["halt"].may_resume
    assert not parse_policy({"halt": {"approval": "auto"}})["halt"].may_resume
    assert parse_policy({"op": {"approval": 1, "approvers": ["ann"]}})["op"].may_resume


def test_request_rate_limits_are_bounded_and_per_person_fits_in_per_tier() -> None:
    with pytest.raises(ConfigError, match=r"max_requests_per_hour: must be at least 6"):
        parse_policy({"halt": {"approval": "auto", "max_requests_per_hour": 5}})
    policy = parse_policy({"halt": {"approval": "auto", "max_requests_per_person_per_hour": 2}})
    assert policy_to_json(policy) and policy["halt"].max_requests_per_person_per_hour == 2
