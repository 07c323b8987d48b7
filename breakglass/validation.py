"""Validation at the edge: every check names the field it rejects and says what is expected.

Used by component configs (inputs a cloud team writes in a stack) and by Lambda handlers
(events a person or a workflow sends). Imports no pulumi and no boto3 so Lambdas can ship it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad input. The message starts with the field's name so a person can find it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def require_int(field: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (not a bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(field, f"must be at least {minimum}, got {_shown(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(field, f"must be at most {maximum}, got {_shown(value)}")
    return value


def _shown(value: int) -> str:
    # Python refuses to print ints of more than 4300 digits; an error message must never raise.
    return str(value) if value.bit_length() < 1000 else "a number hundreds of digits long"


def require_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, f"must be true or false, got {value!r}")
    return value


def require_str(
    field: str,
    value: Any,
    *,
    pattern: str | None = None,
    min_length: int = 1,
    max_length: int | None = None,
    hint: str | None = None,
) -> str:
    """A string of bounded length, optionally matching ``pattern`` in full."""
    if not isinstance(value, str):
        raise ConfigError(field, f"must be a string, got {type(value).__name__}")
    if len(value.strip()) < min_length:
        raise ConfigError(
            field, "must not be empty" if min_length == 1 else f"needs {min_length}+ characters"
        )
    if max_length is not None and len(value) > max_length:
        raise ConfigError(field, f"must be at most {max_length} characters, got {len(value)}")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ConfigError(field, hint or f"{value!r} does not match {pattern}")
    return value


def require_choice(field: str, value: Any, choices: Iterable[T]) -> T:
    options = list(choices)
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ConfigError(field, f"must be one of {listed}, got {value!r}")
    return value


def require_str_list(
    field: str,
    value: Any,
    *,
    pattern: str | None = None,
    allow_empty: bool = True,
    hint: str | None = None,
) -> tuple[str, ...]:
    """A list of distinct strings, each checked like :func:`require_str`."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(field, f"must be a list of strings, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ConfigError(field, "must not be empty")
    items = tuple(require_str(f"{field}[{i}]", v, pattern=pattern, hint=hint) for i, v in enumerate(value))
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            raise ConfigError(f"{field}[{i}]", f"{item!r} is listed twice")
        seen.add(item)
    return items


def require_mapping(field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(field, f"must be a mapping, got {type(value).__name__}")
    return value


def require_tags(field: str, value: Any, *, reserved: Iterable[str] = ()) -> dict[str, str]:
    """AWS resource tags: valid keys (not ``aws:``, not one the component sets itself), values of
    at most 256 characters."""
    tags = require_mapping(field, value)
    taken = set(reserved)
    checked: dict[str, str] = {}
    for key, tag_value in tags.items():
        require_str(
            f"{field}.{key}",
            key,
            pattern=TAG_KEY,
            hint="tag keys use 1-128 letters, digits, spaces or _.:/=+@-",
        )
        if key.lower().startswith("aws:"):
            raise ConfigError(f"{field}.{key}", "keys starting with 'aws:' are reserved by AWS")
        if key in taken:
            raise ConfigError(f"{field}.{key}", "is set by the component and cannot be overridden")
        checked[key] = require_str(f"{field}.{key}", tag_value, min_length=0, max_length=256)
    return checked


def reject_unknown_keys(field: str, value: Mapping[str, Any], known: Iterable[str]) -> None:
    """Typos in args must not silently fall back to a default (which may be the weaker one)."""
    allowed = set(known)
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(
            f"{field}.{unknown[0]}" if field else unknown[0],
            f"unknown setting; known settings are: {', '.join(sorted(allowed))}",
        )


# Shapes shared by every module that accepts these values: one definition each.

# A request id is minted by the system (never chosen by a requester) and is the Step Functions
# execution name; it also becomes a session tag value, S3 key parts and, verbatim, the tail of IAM
# statement ids, which allow only letters and digits: so lower-case letters and digits only, which
# makes ``<Kind><request id>`` statement ids unique per request without a digest.
REQUEST_ID = r"[a-z0-9]{1,40}"
REQUEST_ID_HINT = "a request id is 1-40 lower-case letters and digits, as break-glass printed it"
# A person's id: their enrollment key and their sts:SourceIdentity (2-64 characters of
# [A-Za-z0-9_+=,.@-]; AWS reserves the "aws:" prefix).
USER_ID = r"(?!aws:)[A-Za-z0-9_+=,.@-]{2,64}"
USER_ID_HINT = "use 2-64 letters, digits or any of + = , . @ _ - (a person's user name, e.g. 'alice')"
EMAIL = r"[^@\s<>\"',;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
EMAIL_HINT = "must be an email address such as security@example.com"
TAG_KEY = r"[\w .:/=+@-]{1,128}"

# Shared shapes of AWS identifiers.
IAM_ROLE_OR_USER_ARN = (
    r"arn:aws[a-z-]*:(iam::\d{12}:(role|user)/[\w+=,.@/-]+|sts::\d{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+)"
)
ARN = r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+"
RESOURCE_NAME = r"[a-z][a-z0-9-]{0,39}"
RESOURCE_NAME_HINT = "use 1-40 lower-case letters, digits or '-', starting with a letter"
