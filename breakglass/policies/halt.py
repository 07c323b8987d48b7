"""Pure builders for the AI kill switch: halt targets, deny documents, Lambda policies, tripwire wiring.

A *halt target* is one thing a responder or a tripwire can stop: a SageMaker endpoint (by name or
by a tag selector) or a set of Bedrock model / inference-profile / agent ARNs, with the invoker
roles that call it, the halt modes allowed for it and, for ``scp``, the accounts / OUs / roots the
deny SCP is attached to. The component validates targets here at deploy time and the Lambdas
validate the same specs again at run time (they receive them through their environment), so both
sides share one parser.

Everything returns plain dicts; ``json.dumps`` happens at the resource or API boundary.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from breakglass.policies.audit_trail import audit_writer_statements
from breakglass.policies.documents import policy_size
from breakglass.validation import (
    RESOURCE_NAME,
    RESOURCE_NAME_HINT,
    ConfigError,
    reject_unknown_keys,
    require_choice,
    require_mapping,
    require_str,
    require_str_list,
    require_tags,
)

MODES: Final = ("deny-invoke", "delete-endpoint", "scp")
# Inline policies on invoker roles and SCPs are named with this prefix and the target ids they
# hold; each deny statement's Sid names its target, so resume removes exactly what halt added.
HALT_POLICY_PREFIX: Final = "breakglass-halt-"
# deny-invoke batches the targets of one invoker role into "pages" (inline policies) of at most
# this many characters. IAM caps a role's inline policies at 10,240 characters together, and a
# PutRolePolicy is all or nothing for the targets it carries: pages let the first targets of a role
# near its quota be halted even when the last ones no longer fit, and keep one refused write from
# taking more than about twenty targets with it.
DENY_PAGE_MAX_CHARS: Final = 4096
# Between a target id and the "Of" of its statement ids; ids are lower case, so an upper-case
# letter cannot appear in them and the Sid reads back to exactly one id.
_SID_DASH: Final = "X"
# scp mode batches the same way into SCPs, whose content AWS caps at 5,120 characters.
SCP_PAGE_MAX_CHARS: Final = 5120
_SID_OWNER = re.compile(r"(BreakGlassHalt[A-Za-z]+?)Of([a-z][a-z0-9X]{0,39})")
# The tag scp mode puts on its SCPs (value: the target id). The Lambdas' Organizations rights are
# conditioned on it: an SCP's id is only known once created, and "any SCP" would let them rewrite,
# attach or detach every policy of the organization.
HALT_TAG_KEY: Final = "breakglass-halt"
# delete-endpoint snapshots live in the audit bucket (Object Lock) beside the audit events.
SNAPSHOT_PREFIX: Final = "breakglass-snapshots"
# The ``source`` of the input the tripwire rule hands to the halt Lambda.
TRIPWIRE_SOURCE: Final = "breakglass.tripwire"
ALARM_DETAIL_TYPE: Final = "CloudWatch Alarm State Change"

SAGEMAKER_INVOKE_ACTIONS: Final = ("sagemaker:InvokeEndpoint*",)
# IAM authorizes Converse / ConverseStream through InvokeModel / InvokeModelWithResponseStream, so
# ``bedrock:InvokeModel*`` is what blocks them; ``bedrock:Converse*`` is kept as well (the issue
# names it, and it costs nothing in a deny) although IAM's action list has no Converse action.
BEDROCK_MODEL_INVOKE_ACTIONS: Final = ("bedrock:InvokeModel*", "bedrock:Converse*")
BEDROCK_AGENT_INVOKE_ACTIONS: Final = ("bedrock:InvokeAgent",)

ENDPOINT_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
ENDPOINT_NAME_HINT = "a SageMaker endpoint name: 1-63 letters, digits or '-', not starting with '-'"
ROLE_NAME = r"[\w+=,.@-]{1,64}"
ROLE_NAME_HINT = "an IAM role name (not an ARN): 1-64 letters, digits or +=,.@_-"
BEDROCK_ARN = (
    r"arn:aws[a-z-]*:bedrock:[a-z0-9-]+:(\d{12})?:"
    r"(foundation-model|inference-profile|application-inference-profile|provisioned-model|"
    r"custom-model|imported-model|agent|agent-alias)/[\w.:/-]+"
)
BEDROCK_ARN_HINT = (
    "a Bedrock foundation-model, inference-profile, application-inference-profile, provisioned-model, "
    "custom-model, imported-model, agent or agent-alias ARN"
)
ALARM_ARN = r"arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:\d{12}:alarm:[^\x00-\x1f]{1,255}"
ALARM_ARN_HINT = "a CloudWatch alarm ARN (arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME)"
SCP_TARGET_ID = r"\d{12}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32}"
SCP_TARGET_HINT = "an AWS account id (12 digits), an OU id (ou-...) or a root id (r-...)"

TARGET_KEYS: Final = (
    "id",
    "endpoint_name",
    "endpoint_tags",
    "bedrock_arns",
    "invoker_roles",
    "modes",
    "scp_target_ids",
)


@dataclass(frozen=True)
class HaltTarget:
    """One declared halt target (see the module docstring)."""

    id: str
    modes: tuple[str, ...]
    endpoint_name: str | None = None
    endpoint_tags: tuple[tuple[str, str], ...] = ()
    bedrock_arns: tuple[str, ...] = ()
    invoker_roles: tuple[str, ...] = ()
    scp_target_ids: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "bedrock" if self.bedrock_arns else "sagemaker"

    @property
    def policy_name(self) -> str:
        return halt_policy_name(self.id)

    @classmethod
    def parse(cls, field: str, value: Any) -> HaltTarget:
        """Validate one target spec (component args or the Lambda's environment)."""
        spec = require_mapping(field, value)
        reject_unknown_keys(field, spec, TARGET_KEYS)
        if "id" not in spec:
            raise ConfigError(f"{field}.id", "every target needs an id (used in policy names and results)")
        target_id = require_str(f"{field}.id", spec["id"], pattern=RESOURCE_NAME, hint=RESOURCE_NAME_HINT)
        selectors = [k for k in ("endpoint_name", "endpoint_tags", "bedrock_arns") if spec.get(k)]
        if len(selectors) != 1:
            raise ConfigError(
                field,
                "give exactly one of endpoint_name, endpoint_tags (SageMaker) or bedrock_arns (Bedrock), "
                f"got {selectors or 'none'}",
            )
        endpoint_name = None
        if "endpoint_name" in spec:
            endpoint_name = require_str(
                f"{field}.endpoint_name",
                spec["endpoint_name"],
                pattern=ENDPOINT_NAME,
                hint=ENDPOINT_NAME_HINT,
            )
        tags: tuple[tuple[str, str], ...] = ()
        if "endpoint_tags" in spec:
            raw_tags = require_tags(f"{field}.endpoint_tags", spec["endpoint_tags"])
            tags = tuple(sorted(raw_tags.items()))
        arns: tuple[str, ...] = ()
        if "bedrock_arns" in spec:
            arns = require_str_list(
                f"{field}.bedrock_arns",
                spec["bedrock_arns"],
                pattern=BEDROCK_ARN,
                allow_empty=False,
                hint=BEDROCK_ARN_HINT,
            )
        roles = require_str_list(
            f"{field}.invoker_roles", spec.get("invoker_roles", []), pattern=ROLE_NAME, hint=ROLE_NAME_HINT
        )
        raw_modes = spec.get("modes", ["deny-invoke"])
        modes = require_str_list(f"{field}.modes", raw_modes, allow_empty=False)
        for i, mode in enumerate(modes):
            require_choice(f"{field}.modes[{i}]", mode, MODES)
        scp_ids = require_str_list(
            f"{field}.scp_target_ids",
            spec.get("scp_target_ids", []),
            pattern=SCP_TARGET_ID,
            hint=SCP_TARGET_HINT,
        )
        if "deny-invoke" in modes and not roles:
            raise ConfigError(f"{field}.invoker_roles", "deny-invoke needs the invoker role names to deny")
        if "delete-endpoint" in modes and arns:
            raise ConfigError(
                f"{field}.modes", "delete-endpoint applies to SageMaker endpoints, not Bedrock ARNs"
            )
        if "scp" in modes and not scp_ids:
            raise ConfigError(f"{field}.scp_target_ids", "scp needs the account, OU or root ids to attach to")
        return cls(
            id=target_id,
            modes=modes,
            endpoint_name=endpoint_name,
            endpoint_tags=tags,
            bedrock_arns=arns,
            invoker_roles=roles,
            scp_target_ids=scp_ids,
        )

    def to_spec(self) -> dict[str, Any]:
        """The compact spec the component hands the Lambdas (the inverse of :meth:`parse`)."""
        spec: dict[str, Any] = {"id": self.id, "modes": list(self.modes)}
        if self.endpoint_name:
            spec["endpoint_name"] = self.endpoint_name
        if self.endpoint_tags:
            spec["endpoint_tags"] = dict(self.endpoint_tags)
        if self.bedrock_arns:
            spec["bedrock_arns"] = list(self.bedrock_arns)
        if self.invoker_roles:
            spec["invoker_roles"] = list(self.invoker_roles)
        if self.scp_target_ids:
            spec["scp_target_ids"] = list(self.scp_target_ids)
        return spec


def parse_targets(field: str, value: Any) -> tuple[HaltTarget, ...]:
    """A non-empty list of targets with distinct ids."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError(field, f"must be a list of targets, got {type(value).__name__}")
    if not value:
        raise ConfigError(field, "declare at least one halt target")
    targets = tuple(HaltTarget.parse(f"{field}[{i}]", item) for i, item in enumerate(value))
    seen: set[str] = set()
    for i, target in enumerate(targets):
        if target.id in seen:
            raise ConfigError(f"{field}[{i}].id", f"{target.id!r} is used by another target")
        seen.add(target.id)
    return targets


def parse_tripwires(field: str, value: Any) -> dict[str, str]:
    """The configured tripwires, ``{alarm ARN: tripwire name}``: the only alarms that may halt."""
    spec = require_mapping(field, value)
    tripwires: dict[str, str] = {}
    for arn, name in spec.items():
        require_str(f"{field} key", arn, pattern=ALARM_ARN, hint=ALARM_ARN_HINT)
        tripwires[str(arn)] = require_str(
            f"{field}[{arn}]", name, pattern=RESOURCE_NAME, hint=RESOURCE_NAME_HINT
        )
    return tripwires


def encode_halt_config(targets: Iterable[HaltTarget], tripwires: Mapping[str, str]) -> str:
    """The file the halt and resume functions ship (``HALT_CONFIG_FILE``): their declared targets
    and the tripwires ``{alarm ARN: tripwire name}`` the halt function accepts, as compact JSON."""
    return json.dumps(
        {"targets": [t.to_spec() for t in targets], "tripwires": dict(tripwires)},
        separators=(",", ":"),
        sort_keys=True,
    )


def parse_halt_config(field: str, value: Any) -> tuple[tuple[HaltTarget, ...], dict[str, str]]:
    """The targets and tripwires of :func:`encode_halt_config`'s JSON, validated."""
    spec = require_mapping(field, value)
    reject_unknown_keys(field, spec, ("targets", "tripwires"))
    if "targets" not in spec:
        raise ConfigError(f"{field}.targets", "is required")
    return parse_targets(f"{field}.targets", spec["targets"]), parse_tripwires(
        f"{field}.tripwires", spec.get("tripwires", {})
    )


def alarm_arn(name: str, *, partition: str, region: str, account: str) -> str:
    """The ARN CloudWatch gives the alarm ``name``: known before the alarm exists, so the halt
    function's environment and policy can name it (and can never disagree with the rule)."""
    return f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}"


def alarm_name(alarm_arn: str) -> str:
    """The alarm's name: everything after ``:alarm:`` (names may contain ':')."""
    return alarm_arn.split(":", 6)[6]


def halt_policy_name(target_id: str) -> str:
    return f"{HALT_POLICY_PREFIX}{target_id}"


def endpoint_arn(name: str, *, partition: str, region: str, account: str) -> str:
    # SageMaker stores endpoint ARNs in lower case, and IAM matches ARNs case-sensitively.
    return f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{name.lower()}"


def snapshot_prefix(target_id: str) -> str:
    return f"{SNAPSHOT_PREFIX}/{target_id}/"


def _bedrock_split(arns: Iterable[str]) -> tuple[list[str], list[str]]:
    """(model-like ARNs, agent-alias ARNs). InvokeAgent is authorized on aliases, so an agent ARN
    ``agent/ID`` is widened to all of that agent's aliases ``agent-alias/ID/*``."""
    models: list[str] = []
    aliases: list[str] = []
    for arn in arns:
        match = re.match(r"(arn:[^:]+:bedrock:[^:]*:[^:]*:)(agent|agent-alias)/(.+)", arn)
        if match is None:
            models.append(arn)
        elif match.group(2) == "agent":
            aliases.append(f"{match.group(1)}agent-alias/{match.group(3)}/*")
        else:
            aliases.append(arn)
    return models, aliases


def _tag_condition(tags: Iterable[tuple[str, str]], key: str = "aws:ResourceTag") -> dict[str, Any]:
    return {"StringEquals": {f"{key}/{k}": v for k, v in tags}}


def invoke_deny_statements(
    target: HaltTarget, *, partition: str, region: str, account: str
) -> list[dict[str, Any]]:
    """Deny statements on the invoke actions of exactly this target's resources."""
    if target.kind == "bedrock":
        models, aliases = _bedrock_split(target.bedrock_arns)
        statements: list[dict[str, Any]] = []
        if models:
            statements.append(
                {
                    "Sid": "BreakGlassHaltBedrockModels",
                    "Effect": "Deny",
                    "Action": list(BEDROCK_MODEL_INVOKE_ACTIONS),
                    "Resource": models,
                }
            )
        if aliases:
            statements.append(
                {
                    "Sid": "BreakGlassHaltBedrockAgents",
                    "Effect": "Deny",
                    "Action": list(BEDROCK_AGENT_INVOKE_ACTIONS),
                    "Resource": aliases,
                }
            )
        return statements
    statement: dict[str, Any] = {
        "Sid": "BreakGlassHaltSageMakerEndpoint",
        "Effect": "Deny",
        "Action": list(SAGEMAKER_INVOKE_ACTIONS),
    }
    if target.endpoint_name:
        statement["Resource"] = endpoint_arn(
            target.endpoint_name, partition=partition, region=region, account=account
        )
    else:
        # A tag selector also covers endpoints created after the halt that carry the same tags.
        statement["Resource"] = f"arn:{partition}:sagemaker:{region}:{account}:endpoint/*"
        statement["Condition"] = _tag_condition(target.endpoint_tags)
    return [statement]


def deny_invoke_policy(target: HaltTarget, *, partition: str, region: str, account: str) -> dict[str, Any]:
    """The deny of one target alone: the page ``breakglass-halt-<id>`` deny-invoke writes when a
    halt puts only this target on an invoker role (see :func:`deny_pages`)."""
    return {
        "Version": "2012-10-17",
        "Statement": deny_invoke_statements(target, partition=partition, region=region, account=account),
    }


def deny_sid(base: str, target_id: str) -> str:
    """``<base>Of<id>``: the Sid of one of ``target_id``'s deny statements (its ownership marker)."""
    if not re.fullmatch(RESOURCE_NAME, target_id):
        raise ValueError(f"target id {target_id!r} is not {RESOURCE_NAME_HINT}")
    return f"{base}Of{target_id.replace('-', _SID_DASH)}"


def deny_sid_owner(sid: Any) -> str | None:
    """The target id a deny statement's Sid names, or None for any other statement."""
    match = _SID_OWNER.fullmatch(sid) if isinstance(sid, str) else None
    return match.group(2).replace(_SID_DASH, "-") if match else None


def deny_invoke_statements(
    target: HaltTarget, *, partition: str, region: str, account: str
) -> list[dict[str, Any]]:
    """The target's deny statements as deny-invoke writes them: each Sid names the target, so
    several targets share one page and resume removes exactly one target's statements."""
    return [
        {**s, "Sid": deny_sid(s["Sid"], target.id)}
        for s in invoke_deny_statements(target, partition=partition, region=region, account=account)
    ]


def deny_page_name(target_ids: Sequence[str]) -> str:
    """A page's name, from the ids it holds (never from caller text): ``breakglass-halt-<id>`` for
    one target (the name a single halt always had), else ``breakglass-halt-<first id>.<digest>``.

    The name is a function of the ids, so two concurrent halts that write the same name write the
    same targets (a halt never rewrites another halt's page with fewer targets), and ``.`` cannot
    occur in an id, so a shared page's name is never a single target's."""
    if len(target_ids) == 1:
        return halt_policy_name(target_ids[0])
    digest = hashlib.sha256(",".join(target_ids).encode()).hexdigest()[:8]
    return f"{halt_policy_name(target_ids[0])}.{digest}"


@dataclass(frozen=True)
class DenyPage:
    """One inline policy deny-invoke puts on an invoker role: the targets it holds, in order."""

    name: str
    target_ids: tuple[str, ...]
    document: dict[str, Any]


def deny_pages(
    statements: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *, max_chars: int = DENY_PAGE_MAX_CHARS
) -> list[DenyPage]:
    """Pack ``(target id, its deny statements)`` into named pages, in the order given.

    A target's statements always share a page; a page takes targets while it stays within
    ``max_chars`` (a single target larger than that gets a page of its own, IAM has the last word).
    Deterministic: the same targets in the same order give the same pages and names."""
    pages: list[tuple[list[str], list[dict[str, Any]]]] = []
    for target_id, owned in statements:
        if pages:
            ids, current = pages[-1]
            if policy_size(_page_document([*current, *owned])) <= max_chars:
                ids.append(target_id)
                current.extend(dict(s) for s in owned)
                continue
        pages.append(([target_id], [dict(s) for s in owned]))
    return [DenyPage(deny_page_name(ids), tuple(ids), _page_document(found)) for ids, found in pages]


def _page_document(statements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}


def scp_document(target: HaltTarget, *, partition: str) -> dict[str, Any]:
    """The service control policy attached by ``scp`` mode.

    It applies in member accounts, so SageMaker endpoints match in any account and region of the
    targets; Bedrock ARNs are used as declared.
    """
    statements = invoke_deny_statements(target, partition=partition, region="*", account="*")
    if target.endpoint_tags:
        # An SCP's tag condition is evaluated in the member account: any endpoint with the tags.
        statements[0]["Resource"] = "*"
    return {
        "Version": "2012-10-17",
        # Marked like deny-invoke's: one SCP carries several targets, resume removes exactly its own.
        "Statement": [{**s, "Sid": deny_sid(s["Sid"], target.id)} for s in statements],
    }


# ----- the Lambdas' own least-privilege policies ---------------------------------------------


@dataclass(frozen=True)
class AuditAccess:
    """Where the Lambdas write audit events (and snapshots): resolved values, no Outputs."""

    bucket: str
    events_prefix: str
    kms_key_arn: str | None = None
    topic_arn: str | None = None


def _audit_statements(audit: AuditAccess, *, partition: str) -> list[dict[str, Any]]:
    """Writing audit events and alerts: the shared builder, never a copy (review finding 13: a copy
    here lacked ``kms:Decrypt``, which SNS asks of publishers to an encrypted topic). The same key
    statement covers the snapshots (puts under the key, and resume's reads)."""
    return audit_writer_statements(
        bucket_arn=f"arn:{partition}:s3:::{audit.bucket}",
        prefix=audit.events_prefix,
        kms_key_arn=audit.kms_key_arn,
        topic_arn=audit.topic_arn,
    )


def _sagemaker_resources(
    targets: Iterable[HaltTarget], *, partition: str, region: str, account: str
) -> tuple[list[str], list[HaltTarget]]:
    named = [
        endpoint_arn(t.endpoint_name, partition=partition, region=region, account=account)
        for t in targets
        if t.endpoint_name
    ]
    tagged = [t for t in targets if t.endpoint_tags]
    return named, tagged


def _org_resources(targets: Iterable[HaltTarget], *, partition: str, account: str) -> list[str]:
    resources: list[str] = []
    for target in targets:
        for target_id in target.scp_target_ids:
            if target_id.startswith("ou-"):
                resources.append(f"arn:{partition}:organizations::{account}:ou/o-*/{target_id}")
            elif target_id.startswith("r-"):
                resources.append(f"arn:{partition}:organizations::{account}:root/o-*/{target_id}")
            else:
                resources.append(f"arn:{partition}:organizations::{account}:account/o-*/{target_id}")
    return sorted(set(resources))


def _function_statements(
    targets: Sequence[HaltTarget],
    *,
    resume: bool,
    partition: str,
    region: str,
    account: str,
    audit: AuditAccess,
    tripwire_alarm_arns: Sequence[str] = (),
) -> list[dict[str, Any]]:
    statements = _audit_statements(audit, partition=partition)
    if tripwire_alarm_arns and not resume:
        statements.append(
            {
                "Sid": "VerifyTripwireAlarms",
                "Effect": "Allow",
                # A tripwire event is believed only if its alarm is one of these and CloudWatch
                # shows it in ALARM; DescribeAlarms is authorized per alarm ARN.
                "Action": ["cloudwatch:DescribeAlarms"],
                "Resource": sorted(set(tripwire_alarm_arns)),
            }
        )
    deny_targets = [t for t in targets if "deny-invoke" in t.modes]
    delete_targets = [t for t in targets if "delete-endpoint" in t.modes]
    scp_targets = [t for t in targets if "scp" in t.modes]

    roles = sorted({r for t in deny_targets for r in t.invoker_roles})
    if roles:
        statements.append(
            {
                "Sid": "ManageHaltDenyOnInvokerRoles",
                "Effect": "Allow",
                # Both list and read the role's breakglass-halt-* pages (a missing role is a
                # NoSuchEntity on the list). Halt only adds pages. Resume must rewrite a page it
                # shares with still-halted targets, so it too may put, which the halt role could
                # already: these roles are protected and their functions write only the pages.
                "Action": (
                    ["iam:ListRolePolicies", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"]
                    if resume
                    else ["iam:ListRolePolicies", "iam:GetRolePolicy", "iam:PutRolePolicy"]
                ),
                "Resource": [f"arn:{partition}:iam::{account}:role/{r}" for r in roles],
            }
        )

    if delete_targets:
        named, tagged = _sagemaker_resources(
            delete_targets, partition=partition, region=region, account=account
        )
        halt_actions = ["sagemaker:DescribeEndpoint", "sagemaker:ListTags", "sagemaker:DeleteEndpoint"]
        any_endpoint = f"arn:{partition}:sagemaker:{region}:{account}:endpoint/*"
        # CreateEndpoint also authorizes the endpoint config, whose name is only known from the
        # snapshot at resume time: any config, combined with only the declared endpoints.
        any_config = f"arn:{partition}:sagemaker:{region}:{account}:endpoint-config/*"
        if named and resume:
            statements.append(
                {
                    "Sid": "HaltNamedEndpoints",
                    "Effect": "Allow",
                    "Action": ["sagemaker:DescribeEndpoint", "sagemaker:AddTags"],
                    "Resource": named,
                }
            )
            statements.append(
                {
                    "Sid": "RecreateNamedEndpoints",
                    "Effect": "Allow",
                    "Action": ["sagemaker:CreateEndpoint"],
                    "Resource": [*named, any_config],
                }
            )
        elif named:
            statements.append(
                {"Sid": "HaltNamedEndpoints", "Effect": "Allow", "Action": halt_actions, "Resource": named}
            )
        for i, target in enumerate(tagged):
            # A tag selector names no endpoint up front; the tag condition is what scopes it. Halt
            # matches the endpoint's tags; resume sends the snapshot's tags with CreateEndpoint.
            statements.append(
                {
                    "Sid": f"HaltTaggedEndpoints{i}",
                    "Effect": "Allow",
                    "Action": (
                        ["sagemaker:CreateEndpoint", "sagemaker:AddTags"]
                        if resume
                        else ["sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint"]
                    ),
                    "Resource": [any_endpoint, any_config] if resume else any_endpoint,
                    "Condition": _tag_condition(
                        target.endpoint_tags, "aws:RequestTag" if resume else "aws:ResourceTag"
                    ),
                }
            )
        if tagged:
            statements.append(
                {
                    "Sid": "FindTaggedEndpoints",
                    "Effect": "Allow",
                    # Read-only, on this account's endpoints in this region: a selector finds its
                    # endpoints by their tags, and a deleted endpoint has no tags left to match.
                    "Action": ["sagemaker:DescribeEndpoint"] if resume else ["sagemaker:ListTags"],
                    "Resource": any_endpoint,
                }
            )
            if not resume:
                statements.append(
                    {
                        "Sid": "ListEndpoints",
                        "Effect": "Allow",
                        # sagemaker:ListEndpoints supports no resource-level permissions: "*" is required.
                        "Action": ["sagemaker:ListEndpoints"],
                        "Resource": "*",
                    }
                )
        prefixes = [snapshot_prefix(t.id) for t in delete_targets]
        statements.append(
            {
                "Sid": "FindSnapshots",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:{partition}:s3:::{audit.bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
            }
        )
        statements.append(
            {
                "Sid": "ReadSnapshotsAndWriteMarkers" if resume else "WriteSnapshots",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"] if resume else ["s3:PutObject"],
                "Resource": [f"arn:{partition}:s3:::{audit.bucket}/{p}*" for p in prefixes],
            }
        )

    if scp_targets:
        policy_arns = f"arn:{partition}:organizations::{account}:policy/o-*/service_control_policy/p-*"
        scp_type = {"organizations:PolicyType": "SERVICE_CONTROL_POLICY"}
        ids = sorted(t.id for t in scp_targets)
        statements.append(
            {
                "Sid": "FindHaltScps",
                "Effect": "Allow",
                # organizations:ListPolicies supports no resource-level permissions: "*" is
                # required; the condition limits it to SCPs.
                "Action": ["organizations:ListPolicies"],
                "Resource": "*",
                "Condition": {"StringEquals": scp_type},
            }
        )
        if not resume:
            statements.append(
                {
                    "Sid": "CreateHaltScps",
                    "Effect": "Allow",
                    # The new SCP has no ARN yet: "*" is required; only SCPs carrying the halt tag
                    # of a declared target may be created.
                    "Action": ["organizations:CreatePolicy"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {**scp_type, f"aws:RequestTag/{HALT_TAG_KEY}": ids}},
                }
            )
        # The SCP's id is assigned when it is created, so its ARN can only be matched by pattern;
        # the tag condition narrows the pattern to the SCPs this kill switch created.
        statements.append(
            {
                "Sid": "ManageHaltScps",
                "Effect": "Allow",
                # Resume rewrites an SCP that still-halted targets share, so it reads and
                # updates these SCPs too.
                "Action": [
                    "organizations:ListTargetsForPolicy",
                    "organizations:DescribePolicy",
                    "organizations:UpdatePolicy",
                ],
                "Resource": policy_arns,
                "Condition": {"StringEquals": {f"aws:ResourceTag/{HALT_TAG_KEY}": ids}},
            }
        )
        # Attach / Detach authorize the policy and the target in one statement, so a tag condition
        # here would also be checked on the (untagged) accounts and OUs; the declared targets are
        # what bounds these two.
        statements.append(
            {
                "Sid": "DetachHaltScps" if resume else "AttachHaltScps",
                "Effect": "Allow",
                "Action": ["organizations:DetachPolicy"] if resume else ["organizations:AttachPolicy"],
                "Resource": [policy_arns, *_org_resources(scp_targets, partition=partition, account=account)],
            }
        )
    return statements


def halt_function_statements(
    targets: Sequence[HaltTarget],
    *,
    partition: str,
    region: str,
    account: str,
    audit: AuditAccess,
    tripwire_alarm_arns: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The halt Lambda's statements: only the declared targets, the audit bucket, key and topic,
    and reading the state of the tripwire alarms it is configured with."""
    return _function_statements(
        targets,
        resume=False,
        partition=partition,
        region=region,
        account=account,
        audit=audit,
        tripwire_alarm_arns=tripwire_alarm_arns,
    )


def resume_function_statements(
    targets: Sequence[HaltTarget], *, partition: str, region: str, account: str, audit: AuditAccess
) -> list[dict[str, Any]]:
    """The resume Lambda's statements: the exact inverse operations on the same targets."""
    return _function_statements(
        targets, resume=True, partition=partition, region=region, account=account, audit=audit
    )


def policy_document(statements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}


# ----- tripwire -------------------------------------------------------------------------------


def tripwire_event_pattern(alarm_arn: str) -> dict[str, Any]:
    """EventBridge pattern: this alarm (by ARN) entering ALARM. OK / INSUFFICIENT_DATA never halt."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_DETAIL_TYPE],
        "resources": [alarm_arn],
        "detail": {"state": {"value": ["ALARM"]}},
    }


def tripwire_input_template(tripwire: str, target_ids: Sequence[str], mode: str) -> str:
    """The rule target's input template: the configured targets and mode, plus the whole alarm
    event (``<aws.events.event.json>``, an EventBridge predefined variable) for the audit record."""
    fixed = json.dumps(
        {"source": TRIPWIRE_SOURCE, "tripwire": tripwire, "mode": mode, "targets": list(target_ids)},
        separators=(",", ":"),
    )
    return fixed[:-1] + ',"alarm":<aws.events.event.json>}'
