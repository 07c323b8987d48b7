"""Building blocks every policy builder shares: the document shape and the TLS-only statement."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from breakglass.validation import ConfigError

Document = dict[str, Any]
Statement = dict[str, Any]

POLICY_VERSION: Final = "2012-10-17"


def document(statements: Sequence[Statement]) -> Document:
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def deny_insecure_transport(action: str, resources: str | list[str]) -> Statement:
    """Refuse any request to ``resources`` that does not arrive over TLS, whoever makes it."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resources,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


class PolicySizeError(ConfigError):
    """A document would exceed an AWS size quota; AWS would refuse it."""


def policy_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against a quota (JSON without insignificant whitespace)."""
    return len(json.dumps(document, separators=(",", ":")))


def check_size(field: str, size: int, limit: int, what: str, advice: str) -> None:
    if size > limit:
        raise PolicySizeError(field, f"{what} would be {size} characters, over the {limit} quota; {advice}")
