"""``breakglass synth --check``: the guardrail pack and parliament over a program, before any preview.

Synthesizes the program offline (:func:`breakglass.local.synth.synth_directory`), runs every rule of
the policy pack (:mod:`breakglass.policies.pack.rules`, the same functions CrossGuard runs) and
lints every IAM document of every resource with parliament. A finding the pack or parliament
reports is a finding, except the parliament findings in :data:`PARLIAMENT_ALLOWED`: each is a
known false positive for a document these components write, matched narrowly and explained.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pulumi
from pulumi.runtime import rpc

from breakglass.local.synth import RecordingMocks, SynthResource, is_unknown, synth_directory, target
from breakglass.policies.pack.rules import Finding, PackConfig, Resource, check

PARLIAMENT_RULE: Final = "parliament"
UNKNOWN_RULE: Final = "value-known-before-deploy"
KEY_POLICY_TYPES: Final = ("aws:kms/key:Key", "aws:kms/keyPolicy:KeyPolicy")


class MissingDependency(RuntimeError):
    """parliament (an optional dependency) is not installed; the message says how to get it."""


@dataclass(frozen=True)
class Allowed:
    """A parliament finding that is not a problem: ``issue`` about ``action`` (exact, or a prefix
    ending in ``*``; for issues without an action, parliament's sentence), for resource mismatches
    the ``required_format`` parliament asked for, in documents of ``resource_types`` (any if empty)."""

    issue: str
    action: str
    reason: str
    required_format: str = ""
    resource_types: tuple[str, ...] = ()
    # A regular expression every Resource of the statement must match (any if empty).
    statement_resources: str = ""

    def covers(
        self, issue: str, action: str, required: str, resource_type: str, statement: Mapping[str, Any]
    ) -> bool:
        resources = statement.get("Resource")
        named = [resources] if isinstance(resources, str) else list(resources or [])
        return (
            issue == self.issue
            and (
                not self.statement_resources
                or all(re.fullmatch(self.statement_resources, str(r)) for r in named)
            )
            and bool(named or not self.statement_resources)
            and (action == self.action or (self.action.endswith("*") and action.startswith(self.action[:-1])))
            and required.startswith(self.required_format)
            and (not self.resource_types or resource_type in self.resource_types)
        )


PARLIAMENT_ALLOWED: Final = (
    Allowed(
        "RESOURCE_STAR",
        "kms:*",
        'in a key policy "Resource": "*" means the key itself, and is the only value KMS accepts',
        resource_types=KEY_POLICY_TYPES,
    ),
    Allowed(
        "RESOURCE_MISMATCH",
        "states:SendTask*",
        "parliament's action table gives task-token answers no resource type; Step Functions "
        "authorizes them on the state machine that issued the token (what AWS CDK's "
        "grantTaskResponse grants), so the approval functions name the workflow's state machine",
        required_format="*",
        statement_resources=r"arn:[\w-]+:states:[\w-]+:\d{12}:stateMachine:[\w-]+",
    ),
    Allowed(
        "RESOURCE_MISMATCH",
        "states:DescribeExecution",
        "parliament requires both execution and express execution ARNs; the workflow is a STANDARD "
        "state machine, so its execution ARNs are the whole of what the statement needs",
        required_format="arn:*:states:*:*:express:",
        statement_resources=r"arn:[\w-]+:states:[\w-]+:\d{12}:execution:[\w-]+:.+",
    ),
    Allowed(
        "RESOURCE_MISMATCH",
        "s3:GetObjectAttributes",
        "parliament requires an access point ARN as well as object ARNs; the audit trail is read "
        "directly, not through an access point, so object ARNs are what AWS matches",
        required_format="arn:*:s3:*:*:accesspoint/",
        statement_resources=r"arn:[\w-]+:s3:::[^/]+(/.*)?",
    ),
)


# Type token -> (service, resource part of the ARN AWS returns, from the physical name), for the
# resources whose ARNs the components' policies name. The API's is its execution ARN.
REAL_ARNS: Final[Mapping[str, tuple[str, str]]] = {
    "aws:secretsmanager/secret:Secret": ("secretsmanager", "secret:{}-AbCdEf"),
    "aws:ses/emailIdentity:EmailIdentity": ("ses", "identity/{}"),
    "aws:cloudwatch/eventRule:EventRule": ("events", "rule/{}"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch", "alarm:{}"),
    "aws:apigatewayv2/api:Api": ("execute-api", "{}"),
}


class CheckMocks(RecordingMocks):
    """The synth's mocks, with the ARN formats AWS really uses where a policy names them.

    parliament checks each ARN in a policy against the format of its action's resource type, so a
    placeholder of the wrong shape would be a finding about the mock, not the program. Partition,
    region and account come from the synth's own ARN, so they stay whatever it chose.
    """

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        parts = str(outputs.get("arn") or "").split(":", 5)
        if args.typ not in REAL_ARNS or len(parts) < 6:
            return resource_id, outputs
        service, resource = REAL_ARNS[args.typ]
        physical = str(args.inputs.get("email") or args.inputs.get("name") or args.name)
        arn = f"arn:{parts[1]}:{service}:{parts[3]}:{parts[4]}:{resource.format(physical)}"
        if args.typ == "aws:apigatewayv2/api:Api":
            outputs["executionArn"] = arn  # in place of the synth's <unknown: ...> marker
        else:
            outputs["arn"] = arn
        return resource_id, outputs


def _revealed(value: Any) -> Any:
    """``value`` with every secret unwrapped: a secret policy is still a policy the rules must read."""
    if isinstance(value, Mapping):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _revealed(value.get("value"))
        return {k: _revealed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_revealed(v) for v in value]
    return value


def _holds_unknown(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_holds_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_unknown(v) for v in value)
    return is_unknown(value)


def resources_of(synthesized: Sequence[SynthResource]) -> list[Resource]:
    """The pack's view of synthesized resources (custom resources only: components hold nothing),
    secrets revealed and unknown inputs named in :attr:`Resource.unknown`."""
    return [
        Resource(
            type=r.type,
            name=r.name,
            inputs=_revealed(r.inputs),
            outputs=_revealed(r.outputs),
            urn=r.urn,
            unknown=frozenset(k for k, v in r.inputs.items() if _holds_unknown(v)),
        )
        for r in synthesized
        if r.custom
    ]


def unknown_values(resources: Sequence[Resource]) -> list[Finding]:
    """A finding for every input not known before deploy: the rules skip what they cannot read (as
    in a CrossGuard preview), so offline, where every value the program computes is known, an
    unknown one is a place the gate would be blind."""
    return [
        Finding(
            UNKNOWN_RULE,
            r.type,
            r.name,
            f"{', '.join(sorted(r.unknown))} not known before deploy, so no rule can read it: compute it in "
            "the program (or pass it as config)",
        )
        for r in resources
        if r.unknown
    ]


def _documents(value: Any, key: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(property name, document) for every IAM policy document inside a resource's inputs."""
    if isinstance(value, str) and '"Statement"' in value:
        try:
            parsed = json.loads(value)
        except ValueError:
            return
        if isinstance(parsed, Mapping) and "Statement" in parsed:
            yield key, parsed
    elif isinstance(value, Mapping) and "Statement" in value:
        yield key, value  # a document given as a mapping is linted like one given as text
    elif isinstance(value, Mapping):
        for inner_key, inner in value.items():
            yield from _documents(inner, str(inner_key))
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _documents(inner, key)


def _as_identity_policy(trust: Mapping[str, Any], role_arn: str) -> dict[str, Any]:
    # parliament lints identity policies and stops at a trust statement's missing Resource (the role
    # is a trust policy's resource): lint each trust statement as the identity statement it is
    # equivalent to for actions and condition keys, Principal out and the role in.
    return {
        **trust,
        "Statement": [
            {**{k: v for k, v in s.items() if k != "Principal"}, "Resource": role_arn or "*"}
            for s in _statements(trust)
        ],
    }


def _problems(issue: str, detail: Any) -> list[tuple[str, str]]:
    """(action, required format) pairs of a finding's detail ('' where it names none)."""
    if issue == "RESOURCE_STAR" and isinstance(detail, list):
        return [(str(a), "") for a in detail]
    if issue == "RESOURCE_MISMATCH" and isinstance(detail, list):
        return [
            (str(d.get("action", "")), str(d.get("required_format", "")))
            for d in detail
            if isinstance(d, Mapping)
        ]
    # Other issues carry a sentence naming the action and what is wrong; match it whole.
    return [(str(detail), "")]


def allowed(issue: str, detail: Any, resource_type: str, statement: Mapping[str, Any]) -> bool:
    """Whether every part of a parliament finding about ``statement`` is covered by
    :data:`PARLIAMENT_ALLOWED`."""
    return all(
        any(entry.covers(issue, action, required, resource_type, statement) for entry in PARLIAMENT_ALLOWED)
        for action, required in _problems(issue, detail)
    )


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, Mapping) else statements
    return [s for s in statements if isinstance(s, Mapping)]


def lint(resources: Sequence[Resource]) -> list[Finding]:
    """parliament over every IAM document of every resource, less :data:`PARLIAMENT_ALLOWED`."""
    try:
        from parliament import analyze_policy_string
    except ImportError as exc:  # an optional dependency: say how to get it
        raise MissingDependency("synth --check needs parliament: pip install 'breakglass[policy]'") from exc
    found: list[Finding] = []
    for resource in resources:
        for key, document in _documents(resource.inputs):
            if key == "assumeRolePolicy":
                document = _as_identity_policy(document, str(resource.get("arn") or ""))
            # One statement at a time, so an allow-list entry can look at the statement it excuses.
            for statement in _statements(document):
                single = json.dumps({**document, "Statement": [statement]}, default=str)
                try:
                    issues = analyze_policy_string(single).findings
                except Exception as exc:  # a linter that crashes must not pass the document
                    found.append(
                        Finding(
                            PARLIAMENT_RULE,
                            resource.type,
                            resource.name,
                            f"{key}: parliament could not read a statement ({type(exc).__name__}: {exc}): "
                            "write it in the shape IAM documents",
                        )
                    )
                    continue
                for issue in issues:
                    if allowed(issue.issue, issue.detail, resource.type, statement):
                        continue
                    detail = json.dumps(issue.detail, sort_keys=True, default=str)
                    found.append(
                        Finding(
                            PARLIAMENT_RULE, resource.type, resource.name, f"{key}: {issue.issue} {detail}"
                        )
                    )
    return found


def check_resources(resources: Sequence[Resource], config: PackConfig | None = None) -> list[Finding]:
    """The pack's rules and parliament: every finding, sorted."""
    return sorted({*check(resources, config), *lint(resources), *unknown_values(resources)})


def check_directory(
    program_dir: Path,
    *,
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    pack_config: PackConfig | None = None,
) -> list[Finding]:
    """Synthesize the program in ``program_dir`` and return every finding (raises ``SynthError``)."""
    region, account = target(config or {})
    mocks = CheckMocks(region=region, account=account)
    result = synth_directory(program_dir, stack=stack, config=config, mocks=mocks)
    return check_resources(resources_of(result.resources), pack_config)


def report(findings: Sequence[Finding], *, title: str) -> str:
    """What the command prints: one line per finding (rule, resource, message), or one OK line."""
    if not findings:
        return f"OK: {title} passes the breakglass guardrail pack and parliament (0 findings)"
    lines = [str(f) for f in findings]
    return "\n".join([*lines, f"{len(findings)} finding(s) in {title}"])


__all__ = [
    "PARLIAMENT_ALLOWED",
    "CheckMocks",
    "MissingDependency",
    "check_directory",
    "check_resources",
    "lint",
    "report",
]
