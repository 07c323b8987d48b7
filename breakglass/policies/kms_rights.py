"""Static check: does every function of a program hold the KMS rights its services will ask it for?

moto does not check KMS permissions, and IAM linting sees one document at a time; a function that
may publish to a KMS-encrypted topic but lacks ``kms:Decrypt`` on the topic's key passes every
offline test and fails on its first real call (review finding 13: every real halt ended in
``AuditWriteError``). This check reads a synthesized program (the resources Pulumi would register,
with their inputs and outputs, as :func:`breakglass.local.synth.synth` returns them), derives for
each Lambda function the KMS rights that the services it *may touch* will need on its behalf, and
reports each one its role does not hold.

Derivation rules (what the function may touch, the key that protects it, the KMS actions needed):

- **S3, SSE-KMS.** ``s3:PutObject`` on an object of a bucket whose objects are written under a
  customer managed key needs ``kms:GenerateDataKey``; ``s3:GetObject`` / ``s3:GetObjectVersion``
  need ``kms:Decrypt``. The key is the one the function's environment names for that bucket (the
  audit writer sends ``BREAKGLASS_AUDIT_KMS_KEY_ID`` as ``SSEKMSKeyId`` on every put to
  ``BREAKGLASS_AUDIT_BUCKET``, and reads back what it wrote), else the bucket's default encryption
  (``sseAlgorithm`` ``aws:kms`` / ``aws:kms:dsse`` with a ``kmsMasterKeyId``). A bucket key lowers
  the number of KMS calls, not the permissions. Multipart uploads also need ``kms:Decrypt``; this
  package writes single objects, so the rule does not ask for it.
  Source: Amazon S3 User Guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)",
  section "Permissions" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
- **SNS, encrypted topics.** ``sns:Publish`` to a topic with a ``kmsMasterKeyId`` needs
  ``kms:GenerateDataKey*`` and ``kms:Decrypt`` (checked as ``kms:GenerateDataKey``, which SNS
  calls, and ``kms:Decrypt``). Source: Amazon SNS Developer Guide, "Managing Amazon SNS encryption
  keys and costs", section "AWS KMS permissions for publishers"
  (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
- **DynamoDB, customer managed key.** Reading a table encrypted with a customer managed key
  (``GetItem``, ``BatchGetItem``, ``Query``, ``Scan``, ``ConditionCheckItem``) needs
  ``kms:Decrypt``: DynamoDB decrypts the table key with the caller's permissions and caches it per
  caller. Writing (``PutItem``, ``UpdateItem``, ``DeleteItem``, ``BatchWriteItem``) also needs
  ``kms:Encrypt`` and ``kms:GenerateDataKey``, the data-plane part of what AWS's documented key
  policy gives "principals authorized to use Amazon DynamoDB". Source: Amazon DynamoDB Developer
  Guide, "DynamoDB encryption at rest: how it works", sections "Table keys" and "Key policy for a
  customer managed key"
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.howitworks.html).
- **Secrets Manager, customer managed key.** ``secretsmanager:GetSecretValue`` (and
  ``BatchGetSecretValue``) on a secret with a ``kmsKeyId`` needs ``kms:Decrypt``; changing its
  value (``PutSecretValue``, ``UpdateSecret``, ``CreateSecret``) needs ``kms:GenerateDataKey`` and
  ``kms:Decrypt``. Source: AWS Secrets Manager User Guide, "Secret encryption and decryption",
  section "Permissions for the KMS key"
  (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html).
- AWS managed keys (``alias/aws/s3``, ``alias/aws/sns``, ``aws/dynamodb``, ``aws/secretsmanager``,
  or no key given) need no identity-policy right: their key policies admit the account's
  principals through the service.

"May touch" means: an ``Allow`` statement of the function's role (inline policies, ``RolePolicy``
resources, customer managed policies of the program attached to it) matches the service action
(``Action`` / ``NotAction``, IAM wildcards) and the resource (``Resource`` / ``NotResource``; for S3,
any object of the bucket). Conditions on allows are assumed satisfiable, and denies are not used
to narrow what it may touch: the check errs toward asking for a right.

"Holds a right" means: the role's statements allow ``kms:<Action>`` on the key's ARN and no
unconditional ``Deny`` matches it, or the key's own policy allows the action to the role's ARN
(or to ``*``). A key policy naming the account root only lets IAM policies grant; it grants
nothing by itself.

Not covered, so nobody relies on it: resources outside the program (a topic or table passed in as
an ARN string has unknown encryption; an S3 key named in the function's environment is covered),
AWS managed policies attached by ARN (their text is not in the program), permission boundaries,
SCPs, grants, and conditions that can never hold (a wrong ``kms:ViaService`` is not detected).

The module is pure: it reads resources through :class:`RegisteredResource` and imports nothing
from the components or the emulator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Final, Protocol

from breakglass.contracts import ENV_AUDIT_BUCKET, ENV_AUDIT_KMS_KEY

FUNCTION: Final = "aws:lambda/function:Function"
ROLE: Final = "aws:iam/role:Role"
ROLE_POLICY: Final = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT: Final = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT: Final = "aws:iam/policyAttachment:PolicyAttachment"
# Attaches exactly the listed managed policies to the role named by roleName (and detaches the rest).
ATTACHMENTS_EXCLUSIVE: Final = "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive"
MANAGED_POLICY: Final = "aws:iam/policy:Policy"
KEY: Final = "aws:kms/key:Key"
KEY_POLICY: Final = "aws:kms/keyPolicy:KeyPolicy"
ALIAS: Final = "aws:kms/alias:Alias"
BUCKETS: Final = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_ENCRYPTION: Final = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
TOPIC: Final = "aws:sns/topic:Topic"
TABLE: Final = "aws:dynamodb/table:Table"
SECRET: Final = "aws:secretsmanager/secret:Secret"

GENERATE_DATA_KEY: Final = "kms:GenerateDataKey"
DECRYPT: Final = "kms:Decrypt"
ENCRYPT: Final = "kms:Encrypt"

# Service action -> the KMS actions it needs on the resource's key (see the module docstring).
S3_RULES: Final[Mapping[str, tuple[str, ...]]] = {
    "s3:PutObject": (GENERATE_DATA_KEY,),
    "s3:GetObject": (DECRYPT,),
    "s3:GetObjectVersion": (DECRYPT,),
}
SNS_RULES: Final[Mapping[str, tuple[str, ...]]] = {"sns:Publish": (GENERATE_DATA_KEY, DECRYPT)}
_DYNAMODB_WRITE: Final = (DECRYPT, ENCRYPT, GENERATE_DATA_KEY)
DYNAMODB_RULES: Final[Mapping[str, tuple[str, ...]]] = {
    **{
        f"dynamodb:{a}": (DECRYPT,)
        for a in ("GetItem", "BatchGetItem", "Query", "Scan", "ConditionCheckItem")
    },
    **{f"dynamodb:{a}": _DYNAMODB_WRITE for a in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")},
}
SECRETS_RULES: Final[Mapping[str, tuple[str, ...]]] = {
    "secretsmanager:GetSecretValue": (DECRYPT,),
    "secretsmanager:BatchGetSecretValue": (DECRYPT,),
    **{
        f"secretsmanager:{a}": (GENERATE_DATA_KEY, DECRYPT)
        for a in ("PutSecretValue", "UpdateSecret", "CreateSecret")
    },
}

# Environment variables that name the key a function passes explicitly with its S3 puts, by the
# variable naming the bucket (the audit writer's contract).
EXPLICIT_SSE_KEYS: Final = ((ENV_AUDIT_BUCKET, ENV_AUDIT_KMS_KEY),)

Statement = Mapping[str, Any]


class RegisteredResource(Protocol):
    """What the check reads of a registered resource (``breakglass.local.synth.SynthResource``)."""

    @property
    def type(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> Mapping[str, Any]: ...

    @property
    def outputs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, order=True)
class KmsRight:
    """One KMS right a function needs: ``action`` on ``key`` for ``needed_for`` on ``resource``.

    :func:`missing_kms_rights` returns the ones the function lacks: each is a finding.
    """

    function: str
    service: str
    resource: str
    key: str
    action: str
    needed_for: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        because = ", ".join(self.needed_for)
        return (
            f"function {self.function} lacks {self.action} on key {self.key}: {self.service} needs it "
            f"for {because} on {self.resource}"
        )


# ----- IAM matching --------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character; nothing else is special."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]  # one value, whatever its type: an odd shape is read, never a crash


def _action_matches(statement: Statement, action: str) -> bool:
    if "NotAction" in statement:
        return not any(_glob(p, ignore_case=True).fullmatch(action) for p in _as_list(statement["NotAction"]))
    return any(_glob(p, ignore_case=True).fullmatch(action) for p in _as_list(statement.get("Action")))


def _resource_matches(statement: Statement, covers: Callable[[str], bool]) -> bool:
    if "NotResource" in statement:
        # NotResource excludes what it lists; anything else of the service is covered.
        return not any(covers(p) for p in _as_list(statement["NotResource"]))
    return any(covers(p) for p in _as_list(statement.get("Resource")))


def _exactly(arn: str) -> Callable[[str], bool]:
    return lambda pattern: _glob(pattern).fullmatch(arn) is not None


def _allows(statements: Iterable[Statement], action: str, covers: Callable[[str], bool]) -> bool:
    """An Allow matches and (for exact resources) no unconditional Deny does."""
    allowed = False
    for statement in statements:
        if not _action_matches(statement, action) or not _resource_matches(statement, covers):
            continue
        effect = statement.get("Effect")
        if effect == "Deny" and not statement.get("Condition"):
            return False
        if effect == "Allow":
            allowed = True
    return allowed


def _touches(statements: Iterable[Statement], action: str, covers: Callable[[str], bool]) -> bool:
    return any(
        s.get("Effect") == "Allow" and _action_matches(s, action) and _resource_matches(s, covers)
        for s in statements
    )


def _covers_objects_of(bucket: str) -> Callable[[str], bool]:
    """Whether a Resource pattern covers at least one object of ``bucket`` (any partition)."""

    def covers(pattern: str) -> bool:
        if pattern == "*":
            return True
        match = re.fullmatch(r"arn:[^:]*:s3:::(.*)", pattern, re.DOTALL)
        if match is None:
            # A wildcard over the service part, e.g. "arn:aws:*" or "arn:*:s3:*".
            return _glob(pattern).fullmatch(f"arn:aws:s3:::{bucket}/object") is not None
        bucket_part, slash, _ = match.group(1).partition("/")
        if slash:
            return _glob(bucket_part).fullmatch(bucket) is not None
        # No "/": only a "*" running across the bucket name into the key reaches objects.
        return _glob(bucket_part).fullmatch(f"{bucket}/object") is not None

    return covers


def _covers_table(arn: str) -> Callable[[str], bool]:
    # Reading an index reads the table's data under the table's key.
    return lambda p: bool(_glob(p).fullmatch(arn) or _glob(p).fullmatch(f"{arn}/index/any"))


def _statements(policy: Any) -> list[Statement]:
    """The statements of a policy given as JSON text or as a mapping (anything else: none)."""
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return []
    if not isinstance(policy, Mapping):
        return []
    found = policy.get("Statement", [])
    if isinstance(found, Mapping):
        return [found]
    return [s for s in found if isinstance(s, Mapping)] if isinstance(found, list) else []


def _principals(statement: Statement) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return _as_list(principal.get("AWS"))
    return []


# ----- the program's resources ---------------------------------------------------------------


def _arn(resource: RegisteredResource) -> str:
    return str(resource.outputs.get("arn") or resource.inputs.get("arn") or "")


def _physical(resource: RegisteredResource, key: str = "name") -> str:
    return str(resource.outputs.get(key) or resource.inputs.get(key) or resource.name)


class _Program:
    """Indexes of a synthesized program: roles and their statements, keys, encrypted resources."""

    def __init__(self, resources: Sequence[RegisteredResource]) -> None:
        self.resources = resources
        self.functions = [r for r in resources if r.type == FUNCTION]
        self.roles: dict[str, RegisteredResource] = {}
        for role in (r for r in resources if r.type == ROLE):
            for ref in (_arn(role), _physical(role), role.name):
                if ref:
                    self.roles[ref] = role
        self.policies = {_arn(p): p for p in resources if p.type == MANAGED_POLICY and _arn(p)}
        self.key_arns: dict[str, str] = {}
        self.key_policies: dict[str, list[Statement]] = {}
        for key in (r for r in resources if r.type == KEY):
            arn = _arn(key)
            for ref in (arn, str(key.outputs.get("keyId") or ""), str(key.outputs.get("id") or "")):
                if ref:
                    self.key_arns[ref] = arn
            self.key_policies.setdefault(arn, []).extend(_statements(key.inputs.get("policy")))
        for alias in (r for r in resources if r.type == ALIAS):
            target = self.key_arns.get(str(alias.inputs.get("targetKeyId") or ""))
            name = str(alias.inputs.get("name") or "")
            if target and name:
                self.key_arns[name] = target
                self.key_arns[f"{target.rsplit(':', 1)[0]}:{name}"] = target  # the alias ARN
        for key_policy in (r for r in resources if r.type == KEY_POLICY):
            key_arn = self.key_arns.get(str(key_policy.inputs.get("keyId") or ""))
            if key_arn:
                self.key_policies.setdefault(key_arn, []).extend(_statements(key_policy.inputs.get("policy")))

    def customer_key(self, ref: Any) -> str | None:
        """The ARN of the customer managed key ``ref`` names; None for no key or an AWS managed one."""
        if not ref:
            return None
        text = str(ref)
        if text.startswith("alias/aws/") or ":alias/aws/" in text:
            return None
        return self.key_arns.get(text, text)

    def _role_resources(self, role: RegisteredResource) -> list[RegisteredResource]:
        """The program's resources that name ``role`` in ``role`` / ``roles`` (policies, attachments)."""
        refs = {_arn(role), _physical(role), role.name} - {""}
        return [
            r
            for r in self.resources
            if refs
            & {
                *_as_list(r.inputs.get("role")),
                *_as_list(r.inputs.get("roles")),
                *_as_list(r.inputs.get("roleName")),
            }
        ]

    def attached_policy_arns(self, role: RegisteredResource) -> set[str]:
        """ARNs of the managed policies attached to ``role`` (in the program or not)."""
        attached = set(_as_list(role.inputs.get("managedPolicyArns")))
        for resource in self._role_resources(role):
            if resource.type in (ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT):
                attached.add(str(resource.inputs.get("policyArn")))
            elif resource.type == ATTACHMENTS_EXCLUSIVE:
                attached.update(_as_list(resource.inputs.get("policyArns")))
        return attached

    def role_statements(self, role: RegisteredResource) -> list[Statement]:
        statements: list[Statement] = []
        for inline in role.inputs.get("inlinePolicies") or []:
            if isinstance(inline, Mapping):
                statements += _statements(inline.get("policy"))
        for resource in self._role_resources(role):
            if resource.type == ROLE_POLICY:
                statements += _statements(resource.inputs.get("policy"))
        for arn in sorted(self.attached_policy_arns(role)):
            if arn in self.policies:
                statements += _statements(self.policies[arn].inputs.get("policy"))
        return statements

    def bucket_keys(self) -> dict[str, str]:
        """Bucket name -> the customer managed key of its default encryption."""
        keys: dict[str, str] = {}
        for resource in self.resources:
            if resource.type in BUCKETS:
                config: Any = resource.inputs.get("serverSideEncryptionConfiguration")
                bucket = _physical(resource, "bucket")
            elif resource.type in BUCKET_ENCRYPTION:
                config = resource.inputs.get("rules")
                bucket = str(resource.inputs.get("bucket") or "")  # a bucket's id is its name
            else:
                continue
            for default in _find(config, "applyServerSideEncryptionByDefault"):
                if str(default.get("sseAlgorithm", "")).startswith("aws:kms"):
                    key = self.customer_key(default.get("kmsMasterKeyId"))
                    if key:
                        keys[bucket] = key
        return keys


def _find(value: Any, wanted: str) -> list[Mapping[str, Any]]:
    """Every mapping stored under the key ``wanted`` anywhere inside ``value``."""
    found: list[Mapping[str, Any]] = []
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key == wanted and isinstance(inner, Mapping):
                found.append(inner)
            else:
                found += _find(inner, wanted)
    elif isinstance(value, list | tuple):
        for inner in value:
            found += _find(inner, wanted)
    return found


# ----- derivation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Protected:
    """A resource of the program under a customer managed key, and how it is touched."""

    service: str
    arn: str
    key: str
    rules: Mapping[str, tuple[str, ...]]
    covers: Callable[[str], bool]


def _environment(function: RegisteredResource) -> Mapping[str, Any]:
    environment = function.inputs.get("environment") or {}
    variables = environment.get("variables") if isinstance(environment, Mapping) else None
    return variables if isinstance(variables, Mapping) else {}


def _protected_for(program: _Program, function: RegisteredResource, partition: str) -> list[_Protected]:
    found: list[_Protected] = []
    s3_keys = program.bucket_keys()
    environment = _environment(function)
    for bucket_variable, key_variable in EXPLICIT_SSE_KEYS:
        bucket, key = environment.get(bucket_variable), program.customer_key(environment.get(key_variable))
        if bucket and key:
            s3_keys[str(bucket)] = key  # an explicit SSEKMSKeyId wins over the bucket default
    for bucket, key in sorted(s3_keys.items()):
        found.append(
            _Protected("s3", f"arn:{partition}:s3:::{bucket}", key, S3_RULES, _covers_objects_of(bucket))
        )
    for resource in program.resources:
        arn = _arn(resource)
        if resource.type == TOPIC:
            key = program.customer_key(resource.inputs.get("kmsMasterKeyId"))
            if key:
                found.append(_Protected("sns", arn, key, SNS_RULES, _exactly(arn)))
        elif resource.type == TABLE:
            sse = resource.inputs.get("serverSideEncryption") or {}
            key = program.customer_key(sse.get("kmsKeyArn")) if sse.get("enabled") else None
            if key:
                found.append(_Protected("dynamodb", arn, key, DYNAMODB_RULES, _covers_table(arn)))
        elif resource.type == SECRET:
            key = program.customer_key(resource.inputs.get("kmsKeyId"))
            if key:
                found.append(_Protected("secretsmanager", arn, key, SECRETS_RULES, _exactly(arn)))
    return found


def _function_name(function: RegisteredResource) -> str:
    return str(function.inputs.get("name") or function.name)


@dataclass(frozen=True)
class _Need:
    right: KmsRight
    role: RegisteredResource
    statements: Sequence[Statement]


def _needs(program: _Program) -> list[_Need]:
    """Every KMS right each function of ``program`` needs, with why, its role and its statements."""
    needed: dict[KmsRight, tuple[list[str], RegisteredResource, list[Statement]]] = {}
    for function in program.functions:
        role_arn = str(function.inputs.get("role") or "")
        role = program.roles.get(role_arn)
        if role is None:
            continue  # an external role: its policies are not in the program
        statements = program.role_statements(role)
        partition = role_arn.split(":")[1] if role_arn.count(":") >= 2 else "aws"
        for protected in _protected_for(program, function, partition):
            for service_action, kms_actions in protected.rules.items():
                if not _touches(statements, service_action, protected.covers):
                    continue
                for kms_action in kms_actions:
                    right = KmsRight(
                        _function_name(function), protected.service, protected.arn, protected.key, kms_action
                    )
                    needed.setdefault(right, ([], role, statements))[0].append(service_action)
    return sorted(
        (
            _Need(replace(right, needed_for=tuple(because)), role, statements)
            for right, (because, role, statements) in needed.items()
        ),
        key=lambda need: need.right,
    )


def _holds(program: _Program, need: _Need) -> bool:
    right = need.right
    if _allows(need.statements, right.action, _exactly(right.key)):
        return True
    role_arn = _arn(need.role)
    granted_by_key = [
        s for s in program.key_policies.get(right.key, []) if set(_principals(s)) & {"*", role_arn}
    ]
    # In a key policy "Resource": "*" means this key.
    return _allows(granted_by_key, right.action, lambda _pattern: True)


def required_kms_rights(resources: Sequence[RegisteredResource]) -> list[KmsRight]:
    """Every KMS right each function needs for what its role lets it touch (sorted, one per action)."""
    return [need.right for need in _needs(_Program(resources))]


def missing_kms_rights(resources: Sequence[RegisteredResource]) -> list[KmsRight]:
    """The findings: each right a function needs (see :func:`required_kms_rights`) but does not hold."""
    program = _Program(resources)
    return [need.right for need in _needs(program) if not _holds(program, need)]


def role_statements(resources: Sequence[RegisteredResource]) -> dict[str, list[Statement]]:
    """Each role of the program (by resource name) -> the statements of every policy it holds there.

    The same reading of inline policies, ``RolePolicy`` resources and attached managed policies the
    KMS check uses (the guardrail pack's wildcard rule reads roles through it too).
    """
    program = _Program(resources)
    return {role.name: program.role_statements(role) for role in resources if role.type == ROLE}


def policies_outside(resources: Sequence[RegisteredResource]) -> dict[str, list[str]]:
    """Each role (by resource name) -> the ARNs of attached managed policies whose text is not in
    the program (AWS managed policies, policies of other stacks): nothing here can read them."""
    program = _Program(resources)
    return {
        role.name: sorted(program.attached_policy_arns(role) - set(program.policies))
        for role in resources
        if role.type == ROLE
    }


def policy_statements(policy: Any) -> list[Statement]:
    """The statements of a policy given as JSON text or as a mapping (anything else: none)."""
    return _statements(policy)


def glob_matches(pattern: str, value: str) -> bool:
    """Whether an IAM pattern (``*`` and ``?`` wildcards, case-sensitive as for ARNs) matches ``value``."""
    return _glob(pattern).fullmatch(value) is not None


def action_matches(statement: Statement, action: str) -> bool:
    """Whether the statement's ``Action`` / ``NotAction`` covers ``action`` (IAM wildcards)."""
    return _action_matches(statement, action)


def report(findings: Sequence[KmsRight]) -> str:
    """One line per finding, for a person (the CLI prints this)."""
    return "\n".join(str(f) for f in findings)


__all__ = [
    "KmsRight",
    "RegisteredResource",
    "action_matches",
    "glob_matches",
    "missing_kms_rights",
    "policies_outside",
    "policy_statements",
    "report",
    "required_kms_rights",
    "role_statements",
]
