"""Names and tags shared by the components, the policies that protect them and the audit queries.

One place, because a query that looks for emergency roles and the component that names them
must never disagree.
"""

from __future__ import annotations

from typing import Final

# Every IAM role, managed policy and state machine the system creates is named with this prefix,
# so the permission boundary can protect them by name (state machines and executions cannot be
# tagged, and iam:PassRole cannot be conditioned on a role's tags).
SYSTEM_NAME_PREFIX: Final = "breakglass-"
# Every emergency role's IAM name starts with this; alert rules and audit queries match on it.
EMERGENCY_ROLE_PREFIX: Final = f"{SYSTEM_NAME_PREFIX}emergency-"
# Execution roles of the system's functions and state machine.
SYSTEM_ROLE_PREFIX: Final = f"{SYSTEM_NAME_PREFIX}system-"
# Tag on every emergency role (value: the tier name).
EMERGENCY_ROLE_TAG: Final = "breakglass:emergency-tier"
# Tag on an emergency role whose tier opted in to role chaining (``role_chaining_opt_in``; value
# ROLE_CHAINING_OPT_IN): the guardrail pack accepts a boundary that lets it chain only with this tag.
ROLE_CHAINING_TAG: Final = "breakglass:role-chaining"
ROLE_CHAINING_OPT_IN: Final = "opt-in"
# Tag on every resource the break-glass system itself consists of; emergency roles may not touch them.
PROTECTED_TAG: Final = "breakglass:protected"
# Session tag carrying the request id on every emergency session.
REQUEST_ID_SESSION_TAG: Final = "breakglass-request-id"


def emergency_role_name(tier: str) -> str:
    return f"{EMERGENCY_ROLE_PREFIX}{tier}"


def system_role_name(name: str) -> str:
    """The IAM name of a function's (or the state machine's) execution role (64 chars at most)."""
    return f"{SYSTEM_ROLE_PREFIX}{name}"[:64]
