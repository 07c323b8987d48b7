"""IAM policy statements evaluated the way IAM evaluates them, for calls to the emulator.

moto 5.2 evaluates a statement's Condition block only for ``StringEquals`` on ``sts:ExternalId``
and treats every other condition as true; and it answers *denied* (not *not applicable*) when
an Allow statement's condition or principal does not match. So a conditional Deny (the grant's
end-of-window deny, the early-revoke deny) denies at once, and an Allow that does not apply
denies what another statement allows. :func:`statement_decision` replaces that logic for calls
to an emulator: action, principal, resource and conditions decide whether a statement applies,
and only then its effect counts.

Conditions are evaluated on the keys of the request context the emulator knows (see
:mod:`breakglass.local.iam_enforcement` for the list). A condition on a key the emulator
cannot know (``aws:ResourceTag/...``, ``dynamodb:LeadingKeys``, service-specific keys...) is
taken to hold, as moto takes it: an Allow that depends on one is granted and a Deny that depends
on one applies. Operators: String*, Arn*, Numeric*, Date*, Bool, Null, with ``...IfExists`` and
the ``ForAnyValue:`` / ``ForAllValues:`` set qualifiers; policy variables (``${aws:username}``)
are not expanded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any, Final

# Condition keys (lower case) -> their values in the request.
Context = Mapping[str, Sequence[str]]
# Whether the emulator can know a (lower-case) condition key at all.
KnownKey = Callable[[str], bool]

# Matches any resource: the emulator could not tell which resource a call touches, so only
# the action decides (see iam_enforcement.resources_of).
ANY_RESOURCE: Final = "\x00any-resource"


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NOT_APPLICABLE = "not-applicable"


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    # IAM wildcards: * is any run of characters, ? is one; everything else is literal.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    return _wildcard(pattern, case_sensitive).match(value) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def action_matches(patterns: Any, action: str) -> bool:
    # Action names are case-insensitive in IAM.
    return any(wildcard_match(str(p), action, case_sensitive=False) for p in _as_list(patterns))


def resource_matches(patterns: Any, resource: str) -> bool:
    if resource == ANY_RESOURCE:
        return True
    return any(wildcard_match(str(p), resource) for p in _as_list(patterns))


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def principal_matches(expected: Any, caller_arn: str) -> bool:
    """Whether a trust statement's ``Principal`` names the caller.

    An account (id or ``:root`` ARN) names every principal of that account; a role ARN names
    its sessions (``assumed-role/ROLE/...``) too; users and sessions are named exactly. Service
    and federated principals never name an IAM caller.
    """
    if expected == "*":
        return True
    if not isinstance(expected, Mapping):
        return False
    if not caller_arn.startswith("arn:"):
        # A service acting on its own behalf (e.g. events.amazonaws.com invoking a function).
        return caller_arn in [str(s) for s in _as_list(expected.get("Service"))]
    caller_account = _account_of(caller_arn)
    for value in _as_list(expected.get("AWS")):
        named = str(value)
        if named == "*":
            return True
        if re.fullmatch(r"\d{12}", named) or named.endswith(":root"):
            if (named if re.fullmatch(r"\d{12}", named) else _account_of(named)) == caller_account:
                return True
            continue
        if named == caller_arn:
            return True
        role = re.fullmatch(r"arn:([\w-]+):iam::(\d{12}):role/(?:.*/)?([^/]+)", named)
        session = re.fullmatch(r"arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/.+", caller_arn)
        if role and session and role.groups() == session.groups():
            return True
    return False


def statement_decision(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    context: Context,
    known: KnownKey,
    principal: str | None = None,
) -> Decision:
    """Whether ``statement`` applies to the call and, if so, its effect."""
    if "NotAction" in statement:
        if action_matches(statement["NotAction"], action):
            return Decision.NOT_APPLICABLE
    elif not action_matches(statement.get("Action"), action):
        return Decision.NOT_APPLICABLE
    if principal is not None:
        if "NotPrincipal" in statement:
            if principal_matches(statement["NotPrincipal"], principal):
                return Decision.NOT_APPLICABLE
        elif not principal_matches(statement.get("Principal"), principal):
            return Decision.NOT_APPLICABLE
    # Trust policies name no resource: the role being assumed is implied.
    if "NotResource" in statement:
        if resource_matches(statement["NotResource"], resource) and resource != ANY_RESOURCE:
            return Decision.NOT_APPLICABLE
    elif "Resource" in statement and not resource_matches(statement["Resource"], resource):
        return Decision.NOT_APPLICABLE
    if not conditions_hold(statement.get("Condition") or {}, context, known):
        return Decision.NOT_APPLICABLE
    return Decision.DENY if statement.get("Effect") == "Deny" else Decision.ALLOW


def policy_decision(
    document: Mapping[str, Any],
    action: str,
    resource: str,
    context: Context,
    known: KnownKey,
    principal: str | None = None,
) -> Decision:
    """A policy's answer: an explicit deny wins, then any allow, else not applicable."""
    allowed = False
    for statement in _as_list(document.get("Statement")):
        decision = statement_decision(statement, action, resource, context, known, principal)
        if decision is Decision.DENY:
            return Decision.DENY
        allowed = allowed or decision is Decision.ALLOW
    return Decision.ALLOW if allowed else Decision.NOT_APPLICABLE


# -- conditions ------------------------------------------------------------------------------


def conditions_hold(conditions: Mapping[str, Any], context: Context, known: KnownKey) -> bool:
    """Every operator block holds (they are ANDed, as are the keys inside one block)."""
    for operator, block in conditions.items():
        if not isinstance(block, Mapping):
            return False
        for raw_key, expected in block.items():
            # Condition key names are case-insensitive; contexts hold them in lower case.
            key = str(raw_key).lower()
            if not known(key):
                continue  # moto's choice, kept: a key nobody can evaluate is taken to hold
            present = key in context
            actual = list(context.get(key, ()))
            if not _operator_holds(str(operator), [str(v) for v in _as_list(expected)], actual, present):
                return False
    return True


def _operator_holds(operator: str, expected: list[str], actual: list[str], present: bool) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    base = name[: -len("IfExists")] if if_exists else name
    if base == "Null":
        # Null: "true" means the key must be absent, "false" that it must be present.
        wanted_absent = expected[0].lower() == "true" if expected else True
        return (not present) == wanted_absent
    compare = _COMPARATORS.get(base)
    if compare is None:
        return True  # an operator the emulator does not know: taken to hold, like unknown keys
    negated = base.startswith(("StringNot", "ArnNot", "NumericNotEquals", "DateNotEquals"))
    if not present:
        if if_exists:
            return True
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        # A missing key matches nothing; a negated operator then holds.
        return negated
    if qualifier == "ForAllValues":
        return all(_one_matches(compare, negated, expected, value) for value in actual)
    # Single-valued keys and ForAnyValue: any value of the key may match.
    return any(_one_matches(compare, negated, expected, value) for value in actual)


def _one_matches(compare: Callable[[str, str], bool], negated: bool, expected: list[str], value: str) -> bool:
    hit = any(compare(e, value) for e in expected)
    return not hit if negated else hit


def _number(text: str) -> float:
    return float(text)


def _moment(text: str) -> datetime:
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _safe(compare: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    def run(expected: str, value: str) -> bool:
        try:
            return compare(expected, value)
        except ValueError:
            return False  # IAM: a value that does not parse as the operator's type does not match

    return run


_COMPARATORS: Final[dict[str, Callable[[str, str], bool]]] = {
    "StringEquals": lambda e, v: e == v,
    "StringNotEquals": lambda e, v: e == v,
    "StringEqualsIgnoreCase": lambda e, v: e.lower() == v.lower(),
    "StringNotEqualsIgnoreCase": lambda e, v: e.lower() == v.lower(),
    "StringLike": lambda e, v: wildcard_match(e, v),
    "StringNotLike": lambda e, v: wildcard_match(e, v),
    "ArnEquals": lambda e, v: wildcard_match(e, v),
    "ArnLike": lambda e, v: wildcard_match(e, v),
    "ArnNotEquals": lambda e, v: wildcard_match(e, v),
    "ArnNotLike": lambda e, v: wildcard_match(e, v),
    "Bool": lambda e, v: e.lower() == v.lower(),
    "NumericEquals": _safe(lambda e, v: _number(v) == _number(e)),
    "NumericNotEquals": _safe(lambda e, v: _number(v) == _number(e)),
    "NumericLessThan": _safe(lambda e, v: _number(v) < _number(e)),
    "NumericLessThanEquals": _safe(lambda e, v: _number(v) <= _number(e)),
    "NumericGreaterThan": _safe(lambda e, v: _number(v) > _number(e)),
    "NumericGreaterThanEquals": _safe(lambda e, v: _number(v) >= _number(e)),
    "DateEquals": _safe(lambda e, v: _moment(v) == _moment(e)),
    "DateNotEquals": _safe(lambda e, v: _moment(v) == _moment(e)),
    "DateLessThan": _safe(lambda e, v: _moment(v) < _moment(e)),
    "DateLessThanEquals": _safe(lambda e, v: _moment(v) <= _moment(e)),
    "DateGreaterThan": _safe(lambda e, v: _moment(v) > _moment(e)),
    "DateGreaterThanEquals": _safe(lambda e, v: _moment(v) >= _moment(e)),
}


def lower_keys(context: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    return {key.lower(): list(values) for key, values in context.items()}


__all__ = [
    "ANY_RESOURCE",
    "Decision",
    "action_matches",
    "conditions_hold",
    "lower_keys",
    "policy_decision",
    "principal_matches",
    "resource_matches",
    "statement_decision",
    "wildcard_match",
]
