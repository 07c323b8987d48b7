"""Building blocks every policy builder shares: the document shape and the TLS-only statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

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
