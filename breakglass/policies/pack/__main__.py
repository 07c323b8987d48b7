"""The CrossGuard policy pack: ``pulumi preview --policy-pack breakglass/policies/pack``.

The only module that imports pulumi_policy. Each rule of :mod:`breakglass.policies.pack.rules`
becomes a policy of the same name: resource rules as ``ResourceValidationPolicy``, rules that need
several resources at once as ``StackValidationPolicy``. Constructing ``PolicyPack`` starts the
analyzer server Pulumi talks to, so it happens only when this file runs as the pack's program.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

try:
    import breakglass  # noqa: F401  (installed: `pip install 'breakglass[policy]'`)
except ImportError:  # a source checkout: Pulumi runs this file with the pack's folder on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    _DictProxy,
    _ListProxy,
)

from breakglass.policies.pack.rules import (
    RESOURCE_RULES,
    RULE_CONFIG,
    STACK_RULES,
    PackConfig,
    Resource,
    description,
    run_resource_rule,
    run_stack_rule,
)

PACK_NAME: Final = "breakglass-guardrails"
_UNKNOWN: Final = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)


def plain(value: Any) -> Any:
    """CrossGuard's props as plain dicts and lists. Its proxies raise on reading an unknown value;
    the rules check :attr:`Resource.unknown` instead, so one unknown ARN does not hide a resource."""
    if isinstance(value, _DictProxy | _ListProxy):
        value = value["__target"]  # the proxy's wrapped dict or list
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _contains_unknown(value: Any) -> bool:
    if isinstance(value, str):
        return value in _UNKNOWN
    if isinstance(value, Mapping):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_unknown(v) for v in value)
    return False


def resource(resource_type: str, name: str, urn: str, props: Any) -> Resource:
    """What the rules read, from what CrossGuard hands a policy."""
    values = plain(props)
    unknown = frozenset(k for k, v in values.items() if _contains_unknown(v))
    return Resource(type=resource_type, name=name, inputs=values, outputs=values, urn=urn, unknown=unknown)


def _config(raw: Mapping[str, Any]) -> PackConfig:
    # CrossGuard hands each policy its own section; PackConfig reads sections keyed by rule.
    return PackConfig.from_policy_config({rule: dict(raw) for rule in RULE_CONFIG})


def _schema(rule: str) -> PolicyConfigSchema | None:
    properties = RULE_CONFIG.get(rule)
    return PolicyConfigSchema(properties={k: dict(v) for k, v in properties.items()}) if properties else None


def resource_policy(rule: str) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        subject = resource(args.resource_type, args.name, args.urn, args.props)
        for finding in run_resource_rule(rule, subject, _config(args.get_config())):
            report_violation(finding.message, None)

    return ResourceValidationPolicy(rule, description(rule), validate, config_schema=_schema(rule))


def stack_policy(rule: str) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        subjects = [_of(r) for r in args.resources]
        urns = {(s.type, s.name): s.urn for s in subjects}
        for finding in run_stack_rule(rule, subjects, _config(args.get_config())):
            report_violation(finding.message, urns.get((finding.resource_type, finding.resource_name)))

    return StackValidationPolicy(rule, description(rule), validate, config_schema=_schema(rule))


def _of(policy_resource: PolicyResource) -> Resource:
    return resource(
        policy_resource.resource_type, policy_resource.name, policy_resource.urn, policy_resource.props
    )


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """One policy per rule, named as the rule."""
    return [
        *(resource_policy(rule) for rule in RESOURCE_RULES),
        *(stack_policy(rule) for rule in STACK_RULES),
    ]


if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=list(policies()),
    )
