"""Every validation error names the field, so a person can find and fix it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from breakglass.validation import (
    IAM_ROLE_OR_USER_ARN,
    ConfigError,
    reject_unknown_keys,
    require_bool,
    require_choice,
    require_int,
    require_str,
    require_str_list,
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "whole number"),
        ("10", "whole number"),
        (1.5, "whole number"),
        (0, "at least 1"),
        (100, "at most 99"),
    ],
)
def test_require_int_rejects_with_the_field_name(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^retention_days: .*{message}") as info:
        require_int("retention_days", value, minimum=1, maximum=99)
    assert info.value.field == "retention_days"


def test_require_int_accepts_the_bounds() -> None:
    assert require_int("n", 1, minimum=1, maximum=2) == 1
    assert require_int("n", 2, minimum=1, maximum=2) == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, "must be a string"), ("   ", "must not be empty"), ("x" * 11, "at most 10"), ("A", "lower")],
)
def test_require_str_rejects_bad_strings(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^name: .*{message}"):
        require_str("name", value, max_length=10, pattern=r"[a-z]+", hint="use lower-case letters")


def test_require_choice_lists_the_options() -> None:
    with pytest.raises(ConfigError, match=r"^mode: must be one of 'deny-invoke', 'scp', got 'nuke'"):
        require_choice("mode", "nuke", ["deny-invoke", "scp"])


def test_require_bool_refuses_truthy_strings() -> None:
    with pytest.raises(ConfigError, match=r"^require_mfa: must be true or false"):
        require_bool("require_mfa", "yes")


def test_require_str_list_names_the_bad_item_and_refuses_duplicates() -> None:
    with pytest.raises(ConfigError, match=r"^emails\[1\]: must not be empty"):
        require_str_list("emails", ["a@example.com", ""])
    with pytest.raises(ConfigError, match=r"^emails\[1\]: 'a' is listed twice"):
        require_str_list("emails", ["a", "a"])
    with pytest.raises(ConfigError, match=r"^emails: must be a list"):
        require_str_list("emails", "a@example.com")
    with pytest.raises(ConfigError, match=r"^emails: must not be empty"):
        require_str_list("emails", [], allow_empty=False)


def test_unknown_keys_are_refused_so_a_typo_never_falls_back_to_a_default() -> None:
    with pytest.raises(
        ConfigError, match=r"^retention_dayz: unknown setting; known settings are: retention_days"
    ):
        reject_unknown_keys("", {"retention_dayz": 30}, ["retention_days"])
    with pytest.raises(ConfigError, match=r"^tiers\.colour: unknown setting"):
        reject_unknown_keys("tiers", {"colour": 1}, ["quorum"])


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/oncall",
        "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Oncall_0123",
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws-us-gov:iam::123456789012:user/alice",
    ],
)
def test_principal_arn_pattern_accepts_roles_and_users(arn: str) -> None:
    assert re.fullmatch(IAM_ROLE_OR_USER_ARN, arn)


@pytest.mark.parametrize(
    "arn", ["arn:aws:iam::12345:role/x", "arn:aws:s3:::bucket", "*", "arn:aws:iam::123456789012:group/ops"]
)
def test_principal_arn_pattern_rejects_other_arns(arn: str) -> None:
    assert not re.fullmatch(IAM_ROLE_OR_USER_ARN, arn)


def test_tags_refuse_bad_keys_reserved_keys_and_long_values() -> None:
    from breakglass.validation import require_tags

    assert require_tags("tags", {"team": "ml", "cost center": ""}) == {"team": "ml", "cost center": ""}
    with pytest.raises(ConfigError, match=r"^tags\.aws:owner: keys starting with 'aws:' are reserved"):
        require_tags("tags", {"aws:owner": "x"})
    with pytest.raises(ConfigError, match=r"^tags\.breakglass:protected: is set by the component"):
        require_tags("tags", {"breakglass:protected": "false"}, reserved=["breakglass:protected"])
    with pytest.raises(ConfigError, match=r"^tags\.team: must be at most 256 characters"):
        require_tags("tags", {"team": "x" * 257})
    with pytest.raises(ConfigError, match=r"^tags\.bad\$key: tag keys use"):
        require_tags("tags", {"bad$key": "x"})
    with pytest.raises(ConfigError, match=r"^tags: must be a mapping"):
        require_tags("tags", ["team"])
