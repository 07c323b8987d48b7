"""How each Pulumi resource type is created in the emulator: one small handler per type.

A handler gets a :class:`ResourceContext` (the registration's logical name and inputs, with
Pulumi's camelCase keys and secrets unwrapped, and admin clients of the emulator), creates the
resource through boto3 and returns :class:`Created`: the physical id and the outputs the provider
would compute (ARNs, generated names, endpoints, ids), camelCase too. :data:`HANDLERS` maps type
tokens to handlers; :data:`NOT_EMULATED` names the types moto cannot emulate and why (they are
recorded with their inputs, not created). Names a provider would generate follow Pulumi's
auto-naming (``<logical name>-<7 hex>``) or the resource's ``namePrefix``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import string
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pulumi

from breakglass.contracts import LAMBDA_ENVIRONMENT_MAX_BYTES, SSM_VALUE_MAX, environment_bytes
from breakglass.local.iam_enforcement import ensure_aws_managed_policy

if TYPE_CHECKING:
    from breakglass.local.emulator import Emulator


@dataclass(frozen=True)
class Created:
    """What the provider answers: the physical id and computed outputs (camelCase)."""

    id: str
    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ResourceContext:
    """One registration, and the emulator to create it in."""

    emulator: Emulator
    type: str
    name: str
    inputs: Mapping[str, Any]
    clients: dict[str, Any] = field(default_factory=dict)
    # The region of the registration's explicit provider; None: the emulator's own.
    region_name: str | None = None

    @property
    def account_id(self) -> str:
        return self.emulator.account_id

    @property
    def region(self) -> str:
        return self.region_name or self.emulator.region

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.emulator.client(service, region_name=self.region)
        return self.clients[service]

    def arn(self, service: str, resource: str, *, region: str | None = None) -> str:
        where = self.region if region is None else region
        return f"arn:aws:{service}:{where}:{self.account_id}:{resource}"

    def get(self, key: str, default: Any = None) -> Any:
        value = self.inputs.get(key)
        return default if value is None else value

    def physical_name(
        self, key: str = "name", *, prefix_key: str = "namePrefix", max_length: int = 64, lower: bool = False
    ) -> str:
        """The given name, else ``namePrefix`` plus a unique suffix, else Pulumi's auto-name."""
        if self.inputs.get(key):
            return str(self.inputs[key])
        if self.inputs.get(prefix_key):
            prefix = str(self.inputs[prefix_key])
            alphabet = string.ascii_lowercase + string.digits
            suffix = "".join(
                secrets.choice(alphabet) for _ in range(max(1, min(26, max_length - len(prefix))))
            )
            return prefix + suffix
        base = self.name.lower() if lower else self.name
        return f"{base[: max_length - 8]}-{secrets.token_hex(4)[:7]}"

    def tags(self, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
        return [{key: str(k), value: str(v)} for k, v in (self.inputs.get("tags") or {}).items()]


Handler = Callable[[ResourceContext], Created]
HANDLERS: dict[str, Handler] = {}
# Types moto cannot emulate, with the reason; a deployment records them (inputs kept) and goes on.
NOT_EMULATED: Final[dict[str, str]] = {
    "aws:bedrock/guardrail:Guardrail": "moto does not implement Bedrock guardrails",
    "aws:bedrock/guardrailVersion:GuardrailVersion": "moto does not implement Bedrock guardrails",
    "aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput": (
        "moto does not implement Bedrock provisioned throughput"
    ),
}


def handles(*types: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for type_token in types:
            HANDLERS[type_token] = handler
        return handler

    return register


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _pascal(value: Any, renames: Mapping[str, str] | None = None) -> Any:
    """camelCase keys to the API's PascalCase (``renames`` for the exceptions, e.g. ``id`` -> ``ID``)."""
    renames = renames or {}
    if isinstance(value, Mapping):
        return {
            renames.get(str(k), str(k)[:1].upper() + str(k)[1:]): _pascal(v, renames)
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, list | tuple):
        return [_pascal(v, renames) for v in value]
    return value


def _drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _iso(moment: Any) -> str:
    if isinstance(moment, datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
    return str(moment)


# -- Lambda code: the zip built from the component's AssetArchive ---------------------------------

_ZIPS: dict[tuple[Any, ...], bytes] = {}


def _archive_entries(archive: Any, prefix: str = "") -> Iterable[tuple[str, Path | bytes]]:
    """(path in the zip, file or content) for every asset of a Pulumi archive."""
    if isinstance(archive, pulumi.AssetArchive):
        for name, asset in sorted(archive.assets.items()):
            entry = f"{prefix}{name}"
            if isinstance(asset, pulumi.FileAsset):
                yield entry, Path(str(asset.path))
            elif isinstance(asset, pulumi.StringAsset):
                yield entry, str(asset.text).encode()
            else:
                yield from _archive_entries(asset, f"{entry}/")
    elif isinstance(archive, pulumi.FileArchive):
        root = Path(str(archive.path))
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                # Bytecode caches are the builder's, not the code: left out so the zip is stable.
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    yield f"{prefix}{path.relative_to(root).as_posix()}", path
        else:
            with zipfile.ZipFile(root) as zipped:
                for name in sorted(zipped.namelist()):
                    if not name.endswith("/"):
                        yield f"{prefix}{name}", zipped.read(name)
    else:
        raise TypeError(f"Lambda code must be a Pulumi archive, got {type(archive).__name__}")


def archive_zip(archive: Any) -> bytes:
    """The deployment package of a Pulumi archive, as the provider uploads it (deterministic)."""
    entries = list(_archive_entries(archive))
    key = tuple(
        (name, str(source), source.stat().st_mtime_ns, source.stat().st_size)
        if isinstance(source, Path)
        else (name, hashlib.sha256(source).hexdigest())
        for name, source in entries
    )
    if key not in _ZIPS:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
            for name, source in entries:
                content = source.read_bytes() if isinstance(source, Path) else source
                zipped.writestr(
                    zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content, zipfile.ZIP_DEFLATED
                )
        _ZIPS[key] = buffer.getvalue()
    return _ZIPS[key]


# -- IAM ------------------------------------------------------------------------------------------


@handles("aws:iam/role:Role")
def _role(ctx: ResourceContext) -> Created:
    iam = ctx.client("iam")
    name = ctx.physical_name()
    params: dict[str, Any] = _drop_none(
        RoleName=name,
        AssumeRolePolicyDocument=_json_text(ctx.inputs["assumeRolePolicy"]),
        Path=ctx.get("path", "/"),
        Description=ctx.get("description"),
        MaxSessionDuration=ctx.get("maxSessionDuration"),
        PermissionsBoundary=ctx.get("permissionsBoundary"),
    )
    if ctx.tags():
        params["Tags"] = ctx.tags()
    role = iam.create_role(**params)["Role"]
    for inline in ctx.get("inlinePolicies", []):
        if inline.get("name") and inline.get("policy"):
            iam.put_role_policy(
                RoleName=name, PolicyName=inline["name"], PolicyDocument=_json_text(inline["policy"])
            )
    for arn in ctx.get("managedPolicyArns", []):
        ensure_aws_managed_policy(ctx.account_id, str(arn))
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    return Created(
        name,
        {
            "arn": role["Arn"],
            "name": name,
            "uniqueId": role["RoleId"],
            "createDate": _iso(role["CreateDate"]),
        },
    )


@handles("aws:iam/policy:Policy")
def _policy(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=128)
    params = _drop_none(
        PolicyName=name,
        PolicyDocument=_json_text(ctx.inputs["policy"]),
        Path=ctx.get("path", "/"),
        Description=ctx.get("description"),
    )
    if ctx.tags():
        params["Tags"] = ctx.tags()
    policy = ctx.client("iam").create_policy(**params)["Policy"]
    return Created(
        policy["Arn"],
        {"arn": policy["Arn"], "name": name, "policyId": policy["PolicyId"], "attachmentCount": 0},
    )


@handles("aws:iam/rolePolicy:RolePolicy")
def _role_policy(ctx: ResourceContext) -> Created:
    role = str(ctx.inputs["role"])
    name = ctx.physical_name(max_length=128)
    ctx.client("iam").put_role_policy(
        RoleName=role, PolicyName=name, PolicyDocument=_json_text(ctx.inputs["policy"])
    )
    return Created(f"{role}:{name}", {"name": name})


@handles("aws:iam/user:User")
def _user(ctx: ResourceContext) -> Created:
    name = ctx.physical_name()
    params: dict[str, Any] = _drop_none(UserName=name, Path=ctx.get("path", "/"))
    if ctx.tags():
        params["Tags"] = ctx.tags()
    user = ctx.client("iam").create_user(**params)["User"]
    return Created(name, {"arn": user["Arn"], "name": name, "uniqueId": user["UserId"]})


@handles("aws:iam/userPolicy:UserPolicy")
def _user_policy(ctx: ResourceContext) -> Created:
    user = str(ctx.inputs["user"])
    name = ctx.physical_name(max_length=128)
    ctx.client("iam").put_user_policy(
        UserName=user, PolicyName=name, PolicyDocument=_json_text(ctx.inputs["policy"])
    )
    return Created(f"{user}:{name}", {"name": name})


@handles("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _role_policy_attachment(ctx: ResourceContext) -> Created:
    role, arn = str(ctx.inputs["role"]), str(ctx.inputs["policyArn"])
    ensure_aws_managed_policy(ctx.account_id, arn)
    ctx.client("iam").attach_role_policy(RoleName=role, PolicyArn=arn)
    return Created(f"{role}/{arn}")


# -- Lambda ---------------------------------------------------------------------------------------


@handles("aws:lambda/function:Function")
def _function(ctx: ResourceContext) -> Created:
    client = ctx.client("lambda")
    name = ctx.physical_name()
    code = archive_zip(ctx.inputs["code"])
    params: dict[str, Any] = _drop_none(
        FunctionName=name,
        Runtime=ctx.get("runtime"),
        Role=ctx.inputs["role"],
        Handler=ctx.get("handler"),
        Code={"ZipFile": code},
        Description=ctx.get("description"),
        Timeout=ctx.get("timeout"),
        MemorySize=ctx.get("memorySize"),
        Architectures=ctx.get("architectures"),
        KMSKeyArn=ctx.get("kmsKeyArn"),
    )
    variables = (ctx.get("environment") or {}).get("variables")
    if variables:
        params["Environment"] = {"Variables": {str(k): str(v) for k, v in variables.items()}}
        # moto stores any environment; Lambda refuses one over 4 KB in aggregate (keys and values,
        # see LAMBDA_ENVIRONMENT_MAX_BYTES), so a deployment here must fail as `pulumi up` would.
        size = environment_bytes(params["Environment"]["Variables"])
        if size > LAMBDA_ENVIRONMENT_MAX_BYTES:
            raise ValueError(
                f"Lambda function {name}: its environment variables total {size} bytes, over the "
                f"{LAMBDA_ENVIRONMENT_MAX_BYTES} Lambda allows (AWS answers InvalidParameterValueException)"
            )
    logging_config = ctx.get("loggingConfig")
    if logging_config:
        params["LoggingConfig"] = _pascal(logging_config)
    if ctx.get("tags"):
        params["Tags"] = {str(k): str(v) for k, v in ctx.inputs["tags"].items()}
    created = client.create_function(**params)
    if (
        ctx.get("reservedConcurrentExecutions") is not None
        and int(ctx.inputs["reservedConcurrentExecutions"]) >= 0
    ):
        client.put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=int(ctx.inputs["reservedConcurrentExecutions"])
        )
    arn = str(created["FunctionArn"])
    return Created(
        name,
        {
            "arn": arn,
            "name": name,
            "invokeArn": f"arn:aws:apigateway:{ctx.region}:lambda:path/2015-03-31/functions/{arn}/invocations",
            "qualifiedArn": f"{arn}:$LATEST",
            "qualifiedInvokeArn": (
                f"arn:aws:apigateway:{ctx.region}:lambda:path/2015-03-31/functions/{arn}:$LATEST/invocations"
            ),
            "version": "$LATEST",
            "sourceCodeHash": base64.b64encode(hashlib.sha256(code).digest()).decode(),
            "sourceCodeSize": len(code),
            "lastModified": str(created.get("LastModified", "")),
        },
    )


@handles("aws:lambda/permission:Permission")
def _permission(ctx: ResourceContext) -> Created:
    statement_id = ctx.physical_name("statementId", prefix_key="statementIdPrefix", max_length=100)
    params = _drop_none(
        FunctionName=str(ctx.inputs["function"]),
        StatementId=statement_id,
        Action=ctx.get("action", "lambda:InvokeFunction"),
        Principal=ctx.inputs["principal"],
        SourceArn=ctx.get("sourceArn"),
        SourceAccount=ctx.get("sourceAccount"),
        Qualifier=ctx.get("qualifier"),
        PrincipalOrgID=ctx.get("principalOrgId"),
        FunctionUrlAuthType=ctx.get("functionUrlAuthType"),
    )
    ctx.client("lambda").add_permission(**params)
    return Created(statement_id, {"statementId": statement_id})


# -- Step Functions ----------------------------------------------------------------------------


@handles("aws:sfn/stateMachine:StateMachine")
def _state_machine(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=80)
    params: dict[str, Any] = {
        "name": name,
        "definition": _json_text(ctx.inputs["definition"]),
        "roleArn": ctx.inputs["roleArn"],
        "type": ctx.get("type", "STANDARD"),
    }
    logging_config = ctx.get("loggingConfiguration")
    if logging_config:
        params["loggingConfiguration"] = _drop_none(
            level=logging_config.get("level"),
            includeExecutionData=logging_config.get("includeExecutionData"),
            destinations=[{"cloudWatchLogsLogGroup": {"logGroupArn": logging_config["logDestination"]}}]
            if logging_config.get("logDestination")
            else None,
        )
    if ctx.get("tracingConfiguration"):
        params["tracingConfiguration"] = {"enabled": bool(ctx.inputs["tracingConfiguration"].get("enabled"))}
    if ctx.tags():
        params["tags"] = ctx.tags("key", "value")
    created = ctx.client("stepfunctions").create_state_machine(**params)
    arn = str(created["stateMachineArn"])
    return Created(
        arn, {"arn": arn, "name": name, "status": "ACTIVE", "creationDate": _iso(created.get("creationDate"))}
    )


# -- DynamoDB ------------------------------------------------------------------------------------


@handles("aws:dynamodb/table:Table")
def _table(ctx: ResourceContext) -> Created:
    client = ctx.client("dynamodb")
    name = ctx.physical_name(max_length=255)
    schema = [{"AttributeName": ctx.inputs["hashKey"], "KeyType": "HASH"}]
    if ctx.get("rangeKey"):
        schema.append({"AttributeName": ctx.inputs["rangeKey"], "KeyType": "RANGE"})
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": schema,
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in ctx.get("attributes", [])
        ],
        "BillingMode": ctx.get("billingMode", "PROVISIONED"),
    }
    if params["BillingMode"] == "PROVISIONED":
        params["ProvisionedThroughput"] = {
            "ReadCapacityUnits": int(ctx.get("readCapacity", 1)),
            "WriteCapacityUnits": int(ctx.get("writeCapacity", 1)),
        }
    encryption = ctx.get("serverSideEncryption")
    if encryption and encryption.get("enabled"):
        params["SSESpecification"] = _drop_none(
            Enabled=True, SSEType="KMS", KMSMasterKeyId=encryption.get("kmsKeyArn")
        )
    if ctx.get("deletionProtectionEnabled") is not None:
        params["DeletionProtectionEnabled"] = bool(ctx.inputs["deletionProtectionEnabled"])
    if ctx.get("streamEnabled"):
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": ctx.get("streamViewType")}
    if ctx.get("globalSecondaryIndexes"):
        params["GlobalSecondaryIndexes"] = [
            _drop_none(
                IndexName=index["name"],
                KeySchema=[{"AttributeName": index["hashKey"], "KeyType": "HASH"}]
                + (
                    [{"AttributeName": index["rangeKey"], "KeyType": "RANGE"}]
                    if index.get("rangeKey")
                    else []
                ),
                Projection=_drop_none(
                    ProjectionType=index.get("projectionType", "ALL"),
                    NonKeyAttributes=index.get("nonKeyAttributes"),
                ),
            )
            for index in ctx.inputs["globalSecondaryIndexes"]
        ]
    if ctx.tags():
        params["Tags"] = ctx.tags()
    table = client.create_table(**params)["TableDescription"]
    ttl = ctx.get("ttl")
    if ttl and ttl.get("enabled"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]}
        )
    if (ctx.get("pointInTimeRecovery") or {}).get("enabled"):
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return Created(name, {"arn": table["TableArn"], "name": name, "streamArn": table.get("LatestStreamArn")})


# -- KMS ------------------------------------------------------------------------------------------


@handles("aws:kms/key:Key")
def _key(ctx: ResourceContext) -> Created:
    client = ctx.client("kms")
    params = _drop_none(
        Description=ctx.get("description"),
        KeyUsage=ctx.get("keyUsage"),
        KeySpec=ctx.get("customerMasterKeySpec"),
        Policy=_json_text(ctx.inputs["policy"]) if ctx.get("policy") else None,
        MultiRegion=ctx.get("multiRegion"),
    )
    if ctx.tags():
        params["Tags"] = ctx.tags("TagKey", "TagValue")
    key = client.create_key(**params)["KeyMetadata"]
    if ctx.get("enableKeyRotation"):
        client.enable_key_rotation(KeyId=key["KeyId"])
    return Created(key["KeyId"], {"arn": key["Arn"], "keyId": key["KeyId"]})


@handles("aws:kms/alias:Alias")
def _alias(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=256)
    if not name.startswith("alias/"):
        name = f"alias/{name}"
    target = str(ctx.inputs["targetKeyId"])
    ctx.client("kms").create_alias(AliasName=name, TargetKeyId=target)
    key_arn = target if target.startswith("arn:") else ctx.arn("kms", f"key/{target}")
    return Created(name, {"arn": ctx.arn("kms", name), "name": name, "targetKeyArn": key_arn})


@handles("aws:kms/keyPolicy:KeyPolicy")
def _key_policy(ctx: ResourceContext) -> Created:
    key_id = str(ctx.inputs["keyId"])
    ctx.client("kms").put_key_policy(
        KeyId=key_id, PolicyName="default", Policy=_json_text(ctx.inputs["policy"])
    )
    return Created(key_id)


# -- S3 -------------------------------------------------------------------------------------------


@handles("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
def _bucket(ctx: ResourceContext) -> Created:
    client = ctx.client("s3")
    name = ctx.physical_name("bucket", prefix_key="bucketPrefix", max_length=63, lower=True)
    params: dict[str, Any] = {"Bucket": name}
    if ctx.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
    if ctx.get("objectLockEnabled"):
        params["ObjectLockEnabledForBucket"] = True
    client.create_bucket(**params)
    if ctx.tags():
        client.put_bucket_tagging(Bucket=name, Tagging={"TagSet": ctx.tags()})
    return Created(
        name,
        {
            "arn": f"arn:aws:s3:::{name}",
            "bucket": name,
            "bucketDomainName": f"{name}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
            "region": ctx.region,
        },
    )


def _bucket_name(ctx: ResourceContext) -> str:
    return str(ctx.inputs["bucket"])


@handles("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
def _versioning(ctx: ResourceContext) -> Created:
    configuration = ctx.inputs["versioningConfiguration"]
    ctx.client("s3").put_bucket_versioning(
        Bucket=_bucket_name(ctx),
        VersioningConfiguration=_drop_none(
            Status=configuration.get("status"), MFADelete=configuration.get("mfaDelete")
        ),
    )
    return Created(_bucket_name(ctx))


@handles(
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
)
def _object_lock(ctx: ResourceContext) -> Created:
    configuration: dict[str, Any] = {"ObjectLockEnabled": ctx.get("objectLockEnabled", "Enabled")}
    retention = (ctx.get("rule") or {}).get("defaultRetention")
    if retention:
        configuration["Rule"] = {
            "DefaultRetention": _drop_none(
                Mode=retention.get("mode"), Days=retention.get("days"), Years=retention.get("years")
            )
        }
    ctx.client("s3").put_object_lock_configuration(
        Bucket=_bucket_name(ctx), ObjectLockConfiguration=configuration
    )
    return Created(_bucket_name(ctx))


@handles("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
def _public_access_block(ctx: ResourceContext) -> Created:
    ctx.client("s3").put_public_access_block(
        Bucket=_bucket_name(ctx),
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": bool(ctx.get("blockPublicAcls", False)),
            "BlockPublicPolicy": bool(ctx.get("blockPublicPolicy", False)),
            "IgnorePublicAcls": bool(ctx.get("ignorePublicAcls", False)),
            "RestrictPublicBuckets": bool(ctx.get("restrictPublicBuckets", False)),
        },
    )
    return Created(_bucket_name(ctx))


@handles("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
def _ownership_controls(ctx: ResourceContext) -> Created:
    ctx.client("s3").put_bucket_ownership_controls(
        Bucket=_bucket_name(ctx),
        OwnershipControls={"Rules": [{"ObjectOwnership": ctx.inputs["rule"]["objectOwnership"]}]},
    )
    return Created(_bucket_name(ctx))


@handles(
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
def _encryption(ctx: ResourceContext) -> Created:
    rules = _pascal(ctx.inputs["rules"], {"sseAlgorithm": "SSEAlgorithm", "kmsMasterKeyId": "KMSMasterKeyID"})
    ctx.client("s3").put_bucket_encryption(
        Bucket=_bucket_name(ctx), ServerSideEncryptionConfiguration={"Rules": rules}
    )
    return Created(_bucket_name(ctx))


@handles("aws:s3/bucketPolicy:BucketPolicy")
def _bucket_policy(ctx: ResourceContext) -> Created:
    ctx.client("s3").put_bucket_policy(Bucket=_bucket_name(ctx), Policy=_json_text(ctx.inputs["policy"]))
    return Created(_bucket_name(ctx))


@handles(
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)
def _lifecycle(ctx: ResourceContext) -> Created:
    rules = _pascal(ctx.inputs["rules"], {"id": "ID"})
    ctx.client("s3").put_bucket_lifecycle_configuration(
        Bucket=_bucket_name(ctx), LifecycleConfiguration={"Rules": rules}
    )
    return Created(_bucket_name(ctx))


# -- CloudTrail -----------------------------------------------------------------------------------


@handles("aws:cloudtrail/trail:Trail")
def _trail(ctx: ResourceContext) -> Created:
    client = ctx.client("cloudtrail")
    name = ctx.physical_name(max_length=128)
    params = _drop_none(
        Name=name,
        S3BucketName=ctx.inputs["s3BucketName"],
        S3KeyPrefix=ctx.get("s3KeyPrefix"),
        SnsTopicName=ctx.get("snsTopicName"),
        IncludeGlobalServiceEvents=ctx.get("includeGlobalServiceEvents", True),
        IsMultiRegionTrail=ctx.get("isMultiRegionTrail", False),
        EnableLogFileValidation=ctx.get("enableLogFileValidation", False),
        CloudWatchLogsLogGroupArn=ctx.get("cloudWatchLogsGroupArn"),
        CloudWatchLogsRoleArn=ctx.get("cloudWatchLogsRoleArn"),
        KmsKeyId=ctx.get("kmsKeyId"),
        IsOrganizationTrail=ctx.get("isOrganizationTrail"),
    )
    if ctx.tags():
        params["TagsList"] = ctx.tags()
    trail = client.create_trail(**params)
    selectors = ctx.get("eventSelectors")
    if selectors:
        client.put_event_selectors(
            TrailName=name, EventSelectors=_pascal(selectors, {"type": "Type", "values": "Values"})
        )
    if ctx.get("enableLogging", True):
        client.start_logging(Name=name)
    return Created(name, {"arn": trail["TrailARN"], "name": name, "homeRegion": ctx.region})


# -- SNS / SQS ------------------------------------------------------------------------------------


@handles("aws:sns/topic:Topic")
def _topic(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=256)
    attributes = _drop_none(
        DisplayName=ctx.get("displayName"),
        KmsMasterKeyId=ctx.get("kmsMasterKeyId"),
        Policy=_json_text(ctx.inputs["policy"]) if ctx.get("policy") else None,
        FifoTopic="true" if ctx.get("fifoTopic") else None,
    )
    params: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if ctx.tags():
        params["Tags"] = ctx.tags()
    arn = str(ctx.client("sns").create_topic(**params)["TopicArn"])
    return Created(arn, {"arn": arn, "name": name, "owner": ctx.account_id})


@handles("aws:sns/topicPolicy:TopicPolicy")
def _topic_policy(ctx: ResourceContext) -> Created:
    arn = str(ctx.inputs["arn"])
    ctx.client("sns").set_topic_attributes(
        TopicArn=arn, AttributeName="Policy", AttributeValue=_json_text(ctx.inputs["policy"])
    )
    return Created(arn, {"owner": ctx.account_id})


@handles("aws:sns/topicSubscription:TopicSubscription")
def _subscription(ctx: ResourceContext) -> Created:
    arn = ctx.client("sns").subscribe(
        TopicArn=ctx.inputs["topic"],
        Protocol=ctx.inputs["protocol"],
        Endpoint=ctx.inputs["endpoint"],
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return Created(str(arn), {"arn": str(arn), "ownerId": ctx.account_id})


@handles("aws:sqs/queue:Queue")
def _queue(ctx: ResourceContext) -> Created:
    client = ctx.client("sqs")
    name = ctx.physical_name(max_length=80)
    attributes = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in _drop_none(
            SqsManagedSseEnabled=ctx.get("sqsManagedSseEnabled"),
            MessageRetentionPeriod=ctx.get("messageRetentionSeconds"),
            VisibilityTimeout=ctx.get("visibilityTimeoutSeconds"),
            DelaySeconds=ctx.get("delaySeconds"),
            MaximumMessageSize=ctx.get("maxMessageSize"),
            KmsMasterKeyId=ctx.get("kmsMasterKeyId"),
            FifoQueue=ctx.get("fifoQueue"),
            Policy=_json_text(ctx.inputs["policy"]) if ctx.get("policy") else None,
        ).items()
    }
    params: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if ctx.get("tags"):
        params["tags"] = {str(k): str(v) for k, v in ctx.inputs["tags"].items()}
    url = str(client.create_queue(**params)["QueueUrl"])
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Created(url, {"arn": arn, "url": url, "name": name})


@handles("aws:sqs/queuePolicy:QueuePolicy")
def _queue_policy(ctx: ResourceContext) -> Created:
    url = str(ctx.inputs["queueUrl"])
    ctx.client("sqs").set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": _json_text(ctx.inputs["policy"])}
    )
    return Created(url)


# -- EventBridge and CloudWatch -------------------------------------------------------------------


@handles("aws:cloudwatch/eventRule:EventRule")
def _event_rule(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=64)
    state = ctx.get("state") or ("DISABLED" if ctx.get("isEnabled") is False else "ENABLED")
    params = _drop_none(
        Name=name,
        EventPattern=_json_text(ctx.inputs["eventPattern"]) if ctx.get("eventPattern") else None,
        ScheduleExpression=ctx.get("scheduleExpression"),
        State=state,
        Description=ctx.get("description"),
        RoleArn=ctx.get("roleArn"),
        EventBusName=ctx.get("eventBusName"),
    )
    if ctx.tags():
        params["Tags"] = ctx.tags()
    arn = str(ctx.client("events").put_rule(**params)["RuleArn"])
    return Created(name, {"arn": arn, "name": name})


@handles("aws:cloudwatch/eventTarget:EventTarget")
def _event_target(ctx: ResourceContext) -> Created:
    rule = str(ctx.inputs["rule"])
    target_id = ctx.physical_name("targetId", max_length=64)
    target: dict[str, Any] = _drop_none(
        Id=target_id,
        Arn=ctx.inputs["arn"],
        RoleArn=ctx.get("roleArn"),
        Input=ctx.get("input"),
        InputPath=ctx.get("inputPath"),
    )
    transformer = ctx.get("inputTransformer")
    if transformer:
        target["InputTransformer"] = _drop_none(
            InputPathsMap=transformer.get("inputPaths"), InputTemplate=transformer.get("inputTemplate")
        )
    if ctx.get("retryPolicy"):
        target["RetryPolicy"] = _pascal(ctx.inputs["retryPolicy"])
    if ctx.get("deadLetterConfig"):
        target["DeadLetterConfig"] = _pascal(ctx.inputs["deadLetterConfig"])
    if ctx.get("sqsTarget"):
        target["SqsParameters"] = _pascal(ctx.inputs["sqsTarget"])
    result = ctx.client("events").put_targets(
        **_drop_none(Rule=rule, EventBusName=ctx.get("eventBusName"), Targets=[target])
    )
    if result.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the target: {result['FailedEntries']}")
    return Created(f"{rule}-{target_id}", {"targetId": target_id})


@handles("aws:cloudwatch/metricAlarm:MetricAlarm")
def _metric_alarm(ctx: ResourceContext) -> Created:
    client = ctx.client("cloudwatch")
    name = ctx.physical_name(max_length=255)
    params = _drop_none(
        AlarmName=name,
        AlarmDescription=ctx.get("alarmDescription"),
        ActionsEnabled=ctx.get("actionsEnabled", True),
        OKActions=ctx.get("okActions"),
        AlarmActions=ctx.get("alarmActions"),
        InsufficientDataActions=ctx.get("insufficientDataActions"),
        MetricName=ctx.get("metricName"),
        Namespace=ctx.get("namespace"),
        Statistic=ctx.get("statistic"),
        ExtendedStatistic=ctx.get("extendedStatistic"),
        Period=int(ctx.inputs["period"]) if ctx.get("period") is not None else None,
        Unit=ctx.get("unit"),
        EvaluationPeriods=int(ctx.inputs["evaluationPeriods"]),
        DatapointsToAlarm=int(ctx.inputs["datapointsToAlarm"])
        if ctx.get("datapointsToAlarm") is not None
        else None,
        Threshold=float(ctx.inputs["threshold"]) if ctx.get("threshold") is not None else None,
        ComparisonOperator=ctx.inputs["comparisonOperator"],
        TreatMissingData=ctx.get("treatMissingData"),
    )
    if ctx.get("dimensions"):
        params["Dimensions"] = [
            {"Name": str(k), "Value": str(v)} for k, v in ctx.inputs["dimensions"].items()
        ]
    if ctx.tags():
        params["Tags"] = ctx.tags()
    client.put_metric_alarm(**params)
    arn = client.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
    return Created(name, {"arn": arn, "name": name})


@handles("aws:cloudwatch/logGroup:LogGroup")
def _log_group(ctx: ResourceContext) -> Created:
    client = ctx.client("logs")
    name = ctx.physical_name(max_length=512)
    params = _drop_none(logGroupName=name, kmsKeyId=ctx.get("kmsKeyId"))
    if ctx.get("tags"):
        params["tags"] = {str(k): str(v) for k, v in ctx.inputs["tags"].items()}
    client.create_log_group(**params)
    if ctx.get("retentionInDays"):
        client.put_retention_policy(logGroupName=name, retentionInDays=int(ctx.inputs["retentionInDays"]))
    # pulumi-aws reports the ARN without the trailing ":*" the API returns.
    return Created(name, {"arn": ctx.arn("logs", f"log-group:{name}"), "name": name})


@handles("aws:cloudwatch/dashboard:Dashboard")
def _dashboard(ctx: ResourceContext) -> Created:
    name = str(ctx.inputs["dashboardName"])
    ctx.client("cloudwatch").put_dashboard(
        DashboardName=name, DashboardBody=_json_text(ctx.inputs["dashboardBody"])
    )
    arn = f"arn:aws:cloudwatch::{ctx.account_id}:dashboard/{name}"
    return Created(name, {"arn": arn, "dashboardArn": arn})


# -- Secrets Manager, SES, SSM -------------------------------------------------------------------


@handles("aws:secretsmanager/secret:Secret")
def _secret(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=512)
    params = _drop_none(Name=name, Description=ctx.get("description"), KmsKeyId=ctx.get("kmsKeyId"))
    if ctx.tags():
        params["Tags"] = ctx.tags()
    arn = str(ctx.client("secretsmanager").create_secret(**params)["ARN"])
    return Created(arn, {"arn": arn, "name": name})


@handles("aws:secretsmanager/secretVersion:SecretVersion")
def _secret_version(ctx: ResourceContext) -> Created:
    secret_id = str(ctx.inputs["secretId"])
    params = _drop_none(
        SecretId=secret_id,
        SecretString=ctx.get("secretString"),
        SecretBinary=base64.b64decode(ctx.inputs["secretBinary"]) if ctx.get("secretBinary") else None,
        VersionStages=ctx.get("versionStages"),
    )
    result = ctx.client("secretsmanager").put_secret_value(**params)
    return Created(
        f"{secret_id}|{result['VersionId']}", {"arn": result["ARN"], "versionId": result["VersionId"]}
    )


@handles("aws:ses/emailIdentity:EmailIdentity")
def _ses_identity(ctx: ResourceContext) -> Created:
    email = str(ctx.inputs["email"])
    ctx.client("ses").verify_email_identity(EmailAddress=email)
    return Created(email, {"arn": ctx.arn("ses", f"identity/{email}")})


@handles("aws:sesv2/emailIdentity:EmailIdentity")
def _sesv2_identity(ctx: ResourceContext) -> Created:
    identity = str(ctx.inputs["emailIdentity"])
    ctx.client("sesv2").create_email_identity(**_drop_none(EmailIdentity=identity, Tags=ctx.tags() or None))
    return Created(identity, {"arn": ctx.arn("ses", f"identity/{identity}"), "identityType": "EMAIL_ADDRESS"})


@handles("aws:ssm/parameter:Parameter")
def _parameter(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=2048)
    value = ctx.get("value", ctx.get("insecureValue"))
    params = _drop_none(
        Name=name,
        Value=str(value),
        Type=ctx.get("type", "String"),
        Description=ctx.get("description"),
        Tier=ctx.get("tier"),
        KeyId=ctx.get("keyId"),
        AllowedPattern=ctx.get("allowedPattern"),
        DataType=ctx.get("dataType"),
        Overwrite=ctx.get("overwrite"),
    )
    if ctx.tags():
        params["Tags"] = ctx.tags()
    # moto stores any length; SSM refuses a value over its tier's size, so a deployment must too.
    limit = {"Advanced": 8192, "Intelligent-Tiering": 8192}.get(
        str(params.get("Tier", "Standard")), SSM_VALUE_MAX
    )
    if len(params["Value"]) > limit:
        raise ValueError(
            f"SSM parameter {name}: the value is {len(params['Value'])} characters, over the "
            f"{limit} its tier holds (AWS answers ValidationException)"
        )
    version = ctx.client("ssm").put_parameter(**params)["Version"]
    return Created(
        name, {"arn": ctx.arn("ssm", f"parameter/{name.lstrip('/')}"), "name": name, "version": version}
    )


# -- API Gateway v2 -------------------------------------------------------------------------------


@handles("aws:apigatewayv2/api:Api")
def _api(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=128)
    params = _drop_none(
        Name=name,
        ProtocolType=ctx.inputs["protocolType"],
        Description=ctx.get("description"),
        RouteSelectionExpression=ctx.get("routeSelectionExpression"),
        DisableExecuteApiEndpoint=ctx.get("disableExecuteApiEndpoint"),
    )
    if ctx.get("tags"):
        params["Tags"] = {str(k): str(v) for k, v in ctx.inputs["tags"].items()}
    api_id = str(ctx.client("apigatewayv2").create_api(**params)["ApiId"])
    # The endpoint the components put into function environments must reach the emulated API.
    url = ctx.emulator.http_apis.serve(api_id)
    return Created(
        api_id,
        {
            "arn": f"arn:aws:apigateway:{ctx.region}::/apis/{api_id}",
            "apiEndpoint": url,
            "executionArn": ctx.arn("execute-api", api_id),
            "name": name,
        },
    )


@handles("aws:apigatewayv2/integration:Integration")
def _integration(ctx: ResourceContext) -> Created:
    params = _drop_none(
        ApiId=ctx.inputs["apiId"],
        IntegrationType=ctx.inputs["integrationType"],
        IntegrationUri=ctx.get("integrationUri"),
        IntegrationMethod=ctx.get("integrationMethod"),
        PayloadFormatVersion=ctx.get("payloadFormatVersion"),
        TimeoutInMillis=ctx.get("timeoutMilliseconds"),
        Description=ctx.get("description"),
        ConnectionType=ctx.get("connectionType"),
    )
    integration_id = str(ctx.client("apigatewayv2").create_integration(**params)["IntegrationId"])
    return Created(integration_id)


@handles("aws:apigatewayv2/route:Route")
def _route(ctx: ResourceContext) -> Created:
    params = _drop_none(
        ApiId=ctx.inputs["apiId"],
        RouteKey=ctx.inputs["routeKey"],
        Target=ctx.get("target"),
        AuthorizationType=ctx.get("authorizationType", "NONE"),
        AuthorizerId=ctx.get("authorizerId"),
        ApiKeyRequired=ctx.get("apiKeyRequired"),
        OperationName=ctx.get("operationName"),
    )
    route_id = str(ctx.client("apigatewayv2").create_route(**params)["RouteId"])
    return Created(route_id)


@handles("aws:apigatewayv2/stage:Stage")
def _stage(ctx: ResourceContext) -> Created:
    api_id = str(ctx.inputs["apiId"])
    name = str(ctx.inputs["name"])
    params: dict[str, Any] = _drop_none(
        ApiId=api_id, StageName=name, AutoDeploy=ctx.get("autoDeploy"), Description=ctx.get("description")
    )
    if ctx.get("defaultRouteSettings"):
        params["DefaultRouteSettings"] = _pascal(ctx.inputs["defaultRouteSettings"])
    if ctx.get("tags"):
        params["Tags"] = {str(k): str(v) for k, v in ctx.inputs["tags"].items()}
    ctx.client("apigatewayv2").create_stage(**params)
    base = ctx.emulator.http_apis.url(api_id)
    invoke_url = base if name == "$default" else f"{base}/{name}"
    return Created(
        name,
        {
            "arn": f"arn:aws:apigateway:{ctx.region}::/apis/{api_id}/stages/{name}",
            "invokeUrl": invoke_url,
            "executionArn": ctx.arn("execute-api", f"{api_id}/{name}"),
        },
    )


# -- Glue and Athena ----------------------------------------------------------------------------


@handles("aws:glue/catalogDatabase:CatalogDatabase")
def _glue_database(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=255, lower=True)
    database = _drop_none(
        Name=name,
        Description=ctx.get("description"),
        LocationUri=ctx.get("locationUri"),
        Parameters=ctx.get("parameters"),
    )
    ctx.client("glue").create_database(DatabaseInput=database)
    catalog = str(ctx.get("catalogId", ctx.account_id))
    return Created(
        f"{catalog}:{name}", {"arn": ctx.arn("glue", f"database/{name}"), "name": name, "catalogId": catalog}
    )


@handles("aws:glue/catalogTable:CatalogTable")
def _glue_table(ctx: ResourceContext) -> Created:
    database = str(ctx.inputs["databaseName"])
    name = ctx.physical_name(max_length=255, lower=True)
    descriptor = ctx.get("storageDescriptor") or {}
    table: dict[str, Any] = _drop_none(
        Name=name,
        Description=ctx.get("description"),
        TableType=ctx.get("tableType"),
        Parameters=ctx.get("parameters"),
        PartitionKeys=_pascal(ctx.get("partitionKeys")) if ctx.get("partitionKeys") else None,
    )
    if descriptor:
        table["StorageDescriptor"] = _drop_none(
            Location=descriptor.get("location"),
            InputFormat=descriptor.get("inputFormat"),
            OutputFormat=descriptor.get("outputFormat"),
            Columns=_pascal(descriptor.get("columns")) if descriptor.get("columns") else None,
            SerdeInfo=_drop_none(
                SerializationLibrary=(descriptor.get("serDeInfo") or {}).get("serializationLibrary"),
                Parameters=(descriptor.get("serDeInfo") or {}).get("parameters"),
            )
            or None,
        )
    ctx.client("glue").create_table(DatabaseName=database, TableInput=table)
    catalog = str(ctx.get("catalogId", ctx.account_id))
    return Created(
        f"{catalog}:{database}:{name}", {"arn": ctx.arn("glue", f"table/{database}/{name}"), "name": name}
    )


@handles("aws:athena/workgroup:Workgroup")
def _workgroup(ctx: ResourceContext) -> Created:
    name = ctx.physical_name(max_length=128)
    given = ctx.get("configuration") or {}
    configuration: dict[str, Any] = _drop_none(
        EnforceWorkGroupConfiguration=given.get("enforceWorkgroupConfiguration"),
        PublishCloudWatchMetricsEnabled=given.get("publishCloudwatchMetricsEnabled"),
        BytesScannedCutoffPerQuery=given.get("bytesScannedCutoffPerQuery"),
        RequesterPaysEnabled=given.get("requesterPaysEnabled"),
    )
    if given.get("engineVersion"):
        configuration["EngineVersion"] = _drop_none(
            SelectedEngineVersion=given["engineVersion"].get("selectedEngineVersion")
        )
    results = given.get("resultConfiguration") or {}
    if results:
        encryption = results.get("encryptionConfiguration") or {}
        configuration["ResultConfiguration"] = _drop_none(
            OutputLocation=results.get("outputLocation"),
            EncryptionConfiguration=_drop_none(
                EncryptionOption=encryption.get("encryptionOption"), KmsKey=encryption.get("kmsKeyArn")
            )
            or None,
        )
    params: dict[str, Any] = _drop_none(
        Name=name, Description=ctx.get("description"), Configuration=configuration or None
    )
    if ctx.tags():
        params["Tags"] = ctx.tags()
    ctx.client("athena").create_work_group(**params)
    return Created(name, {"arn": ctx.arn("athena", f"workgroup/{name}"), "name": name})


@handles("aws:athena/namedQuery:NamedQuery")
def _named_query(ctx: ResourceContext) -> Created:
    query_id = ctx.client("athena").create_named_query(
        **_drop_none(
            Name=ctx.physical_name(max_length=128),
            Description=ctx.get("description"),
            Database=ctx.inputs["database"],
            QueryString=ctx.inputs["query"],
            WorkGroup=ctx.get("workgroup"),
        )
    )["NamedQueryId"]
    return Created(str(query_id))


__all__ = ["HANDLERS", "NOT_EMULATED", "Created", "Handler", "ResourceContext", "archive_zip", "handles"]
