"""AuditTrail under the Pulumi mock runtime: what it would create, with which settings."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from breakglass.components.audit_trail import AuditTrail, AuditTrailArgs, AuditTrailConfig
from breakglass.components.functions import python_function
from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    EVENTS_PREFIX,
)
from breakglass.local.synth import ACCOUNT_ID, SynthError, SynthResult, synth
from breakglass.policies.audit_trail import ALERT_CLASSES, alert_event_patterns
from breakglass.policies.naming import EMERGENCY_ROLE_PREFIX, PROTECTED_TAG
from breakglass.validation import ConfigError

BUCKET = "aws:s3/bucket:Bucket"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KEY = "aws:kms/key:Key"
TRAIL = "aws:cloudtrail/trail:Trail"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE = "aws:sqs/queue:Queue"

OUTPUTS = (
    "bucket_name",
    "bucket_arn",
    "kms_key_arn",
    "trail_arn",
    "alert_topic_arn",
    "events_prefix",
    "emergency_role_prefix",
)
EXISTING_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EXISTING_TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_ID}:trail/org-trail"


def build(args: AuditTrailArgs | None = None) -> SynthResult:
    def program() -> None:
        trail = AuditTrail("audit", args or {})
        for output in OUTPUTS:
            pulumi.export(output, getattr(trail, output))
        pulumi.export("environment", pulumi.Output.all(**trail.audit_environment()))
        pulumi.export("writer_statements", trail.writer_statements())

    return synth(program)


@pytest.fixture(scope="module")
def default() -> SynthResult:
    return build()


def policy_of(result: SynthResult, type_token: str, name: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.one(type_token, name).inputs["policy"])
    return document


def test_bucket_is_locked_in_compliance_mode_for_365_days_by_default(default: SynthResult) -> None:
    assert default.one(BUCKET).inputs["objectLockEnabled"] is True
    lock = default.one(LOCK).inputs
    assert lock["objectLockEnabled"] == "Enabled"
    assert lock["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 365}


@pytest.mark.parametrize("days", [1, 400, 2555, 36500])
def test_retention_asked_for_is_used_exactly(days: int) -> None:
    lock = build({"retention_days": days}).one(LOCK).inputs
    assert lock["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": days}


def test_governance_mode_only_with_the_explicit_opt_in() -> None:
    lock = build({"governance_mode_opt_in": True}).one(LOCK).inputs
    assert lock["rule"]["defaultRetention"]["mode"] == "GOVERNANCE"
    assert build({"governance_mode_opt_in": False}).one(LOCK).inputs["rule"]["defaultRetention"]["mode"] == (
        "COMPLIANCE"
    )


def test_bucket_is_versioned_private_owner_enforced_and_kms_encrypted(default: SynthResult) -> None:
    assert default.one(VERSIONING).inputs["versioningConfiguration"] == {"status": "Enabled"}
    public = default.one(PUBLIC_ACCESS).inputs
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert public[flag] is True, flag
    assert default.one(OWNERSHIP).inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (rule,) = default.one(ENCRYPTION).inputs["rules"]
    assert rule["bucketKeyEnabled"] is True
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": default.outputs["kms_key_arn"],
    }


def test_bucket_policy_denies_plain_http_and_deletes_to_everyone(default: SynthResult) -> None:
    document = policy_of(default, BUCKET_POLICY)
    bucket_arn = default.outputs["bucket_arn"]
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    tls = by_sid["DenyInsecureTransport"]
    assert (tls["Effect"], tls["Principal"], tls["Action"]) == ("Deny", "*", "s3:*")
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert bucket_arn in tls["Resource"]
    deletes = by_sid["DenyDeletingAuditRecords"]
    assert (deletes["Effect"], deletes["Principal"], deletes["Resource"]) == ("Deny", "*", f"{bucket_arn}/*")
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(deletes["Action"])
    assert "s3:PutBucketObjectLockConfiguration" in by_sid["DenyDeletingOrUnlockingTheBucket"]["Action"]
    assert (
        by_sid["AWSCloudTrailWrite"]["Condition"]["StringEquals"]["aws:SourceArn"]
        == default.outputs["trail_arn"]
    )


def test_bucket_policy_is_applied_after_the_lock_it_protects(default: SynthResult) -> None:
    order = [r.type for r in default.resources]
    assert order.index(LOCK) < order.index(BUCKET_POLICY) < order.index(TRAIL)


def test_key_rotates_and_waits_30_days_before_deletion(default: SynthResult) -> None:
    key = default.one(KEY).inputs
    assert key["enableKeyRotation"] is True
    assert key["deletionWindowInDays"] == 30
    statements = {s["Sid"] for s in json.loads(key["policy"])["Statement"]}
    assert {"EnableIamPoliciesOfThisAccount", "AllowCloudTrailToEncryptLogs"} <= statements


def test_trail_is_multi_region_validated_encrypted_and_delivers_to_the_bucket(default: SynthResult) -> None:
    trail = default.one(TRAIL).inputs
    assert trail["isMultiRegionTrail"] is True
    assert trail["includeGlobalServiceEvents"] is True
    assert trail["enableLogFileValidation"] is True
    assert trail["enableLogging"] is True
    assert trail["kmsKeyId"] == default.outputs["kms_key_arn"]
    assert trail["s3BucketName"] == default.outputs["bucket_name"]
    assert trail["eventSelectors"] == [{"includeManagementEvents": True, "readWriteType": "All"}]


def test_lifecycle_moves_records_to_cold_storage_and_never_expires_by_default(default: SynthResult) -> None:
    (rule,) = default.one(LIFECYCLE).inputs["rules"]
    assert rule["status"] == "Enabled"
    assert [t["storageClass"] for t in rule["transitions"]] == ["GLACIER_IR", "DEEP_ARCHIVE"]
    assert [t["storageClass"] for t in rule["noncurrentVersionTransitions"]] == ["GLACIER_IR", "DEEP_ARCHIVE"]
    assert "expiration" not in rule
    assert "noncurrentVersionExpiration" not in rule


def test_expiry_when_asked_is_applied_to_current_and_noncurrent_versions() -> None:
    args: AuditTrailArgs = {"retention_days": 2555, "deep_archive_days": 730, "expire_after_days": 2555}
    (rule,) = build(args).one(LIFECYCLE).inputs["rules"]
    assert rule["expiration"] == {"days": 2555}
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 2555}


def test_alert_topic_is_encrypted_with_the_audit_key(default: SynthResult) -> None:
    assert default.one(TOPIC).inputs["kmsMasterKeyId"] == default.outputs["kms_key_arn"]


def test_one_rule_per_alert_class_with_its_pattern_and_a_retrying_target_to_the_topic(
    default: SynthResult,
) -> None:
    expected = alert_event_patterns(
        bucket_name=default.outputs["bucket_name"], kms_key_arn=default.outputs["kms_key_arn"]
    )
    rules = default.by_type(RULE)
    assert sorted(r.name for r in rules) == sorted(f"audit-{c}" for c in ALERT_CLASSES)
    dlq_arn = default.one(QUEUE).outputs["arn"]
    for alert_class in ALERT_CLASSES:
        rule = default.one(RULE, f"audit-{alert_class}").inputs
        assert json.loads(rule["eventPattern"]) == expected[alert_class]
        assert rule["state"] == "ENABLED"
        target = default.one(TARGET, f"audit-{alert_class}-target").inputs
        assert target["rule"] == rule["name"]
        assert target["arn"] == default.outputs["alert_topic_arn"]
        assert target["deadLetterConfig"] == {"arn": dlq_arn}
        assert target["retryPolicy"]["maximumRetryAttempts"] > 0


def test_assume_rule_matches_the_emergency_role_prefix_it_exports(default: SynthResult) -> None:
    pattern = json.loads(default.one(RULE, "audit-emergency-assume").inputs["eventPattern"])
    wildcards = [f["wildcard"] for f in pattern["detail"]["requestParameters"]["roleArn"]]
    assert all(w.endswith(f"{default.outputs['emergency_role_prefix']}*") for w in wildcards)
    assert default.outputs["emergency_role_prefix"] == EMERGENCY_ROLE_PREFIX


def test_bucket_rule_watches_the_audit_bucket(default: SynthResult) -> None:
    pattern = json.loads(default.one(RULE, "audit-bucket-tampering").inputs["eventPattern"])
    assert pattern["detail"]["requestParameters"]["bucketName"] == [default.outputs["bucket_name"]]
    assert {"PutBucketPolicy", "PutBucketLifecycle", "PutObjectLockConfiguration"} <= set(
        pattern["detail"]["eventName"]
    )


def test_alert_emails_are_subscribed() -> None:
    result = build({"alert_emails": ["sec@example.com", "oncall@example.org"]})
    subscriptions = result.by_type(SUBSCRIPTION)
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == ["oncall@example.org", "sec@example.com"]
    assert {s.inputs["protocol"] for s in subscriptions} == {"email"}
    assert build().by_type(SUBSCRIPTION) == []


def test_outputs_are_what_writers_need(default: SynthResult) -> None:
    out = default.outputs
    assert out["events_prefix"] == EVENTS_PREFIX
    assert out["bucket_arn"] == f"arn:aws:s3:::{out['bucket_name']}"
    assert out["trail_arn"].endswith(":trail/breakglass-audit")
    assert out["environment"] == {
        ENV_AUDIT_BUCKET: out["bucket_name"],
        ENV_AUDIT_PREFIX: EVENTS_PREFIX,
        ENV_AUDIT_KMS_KEY: out["kms_key_arn"],
        ENV_ALERT_TOPIC: out["alert_topic_arn"],
    }
    resources = {s["Sid"]: s["Resource"] for s in out["writer_statements"]}
    assert resources["WriteAuditEvents"] == f"{out['bucket_arn']}/{EVENTS_PREFIX}/*"
    assert resources["PublishAuditAlerts"] == out["alert_topic_arn"]


def test_every_child_is_parented_named_after_the_component_and_tagged_protected(default: SynthResult) -> None:
    component = default.one("breakglass:index:AuditTrail")
    assert component.name == "audit"
    for resource in default.resources:
        if resource is component:
            continue
        assert resource.parent == "audit", resource.name
        assert resource.name.startswith("audit-"), resource.name
        if "tags" in resource.inputs:
            assert resource.inputs["tags"][PROTECTED_TAG] == "true", resource.name


def test_name_prefix_and_bucket_name_set_physical_names() -> None:
    result = build({"name_prefix": "acme-bg", "bucket_name": "acme-audit-records", "tags": {"team": "sec"}})
    assert result.one(BUCKET).inputs["bucket"] == "acme-audit-records"
    assert result.one(TRAIL).inputs["name"] == "acme-bg-audit"
    assert result.one(TOPIC).inputs["name"] == "acme-bg-alerts"
    assert result.one(RULE, "audit-trail-tampering").inputs["name"] == "acme-bg-trail-tampering"
    assert result.one(BUCKET).inputs["tags"] == {"team": "sec", PROTECTED_TAG: "true"}


# --- existing organization trail / bucket / key ----------------------------------------------


def test_existing_bucket_mode_creates_no_bucket_but_a_trail_topic_and_rules_for_it() -> None:
    result = build({"existing_bucket_name": "org-audit-logs"})
    created = {r.type for r in result.resources}
    for absent in (BUCKET, LOCK, VERSIONING, PUBLIC_ACCESS, ENCRYPTION, LIFECYCLE, BUCKET_POLICY):
        assert absent not in created, absent
    assert result.outputs["bucket_name"] == "org-audit-logs"
    assert result.outputs["bucket_arn"] == "arn:aws:s3:::org-audit-logs"
    assert result.one(TRAIL).inputs["s3BucketName"] == "org-audit-logs"
    assert KEY in created
    pattern = json.loads(result.one(RULE, "audit-bucket-tampering").inputs["eventPattern"])
    assert pattern["detail"]["requestParameters"]["bucketName"] == ["org-audit-logs"]


def test_existing_trail_bucket_and_key_leave_only_alerts_to_create() -> None:
    result = build(
        {
            "existing_bucket_name": "org-audit-logs",
            "existing_trail_arn": EXISTING_TRAIL,
            "existing_kms_key_arn": EXISTING_KEY,
        }
    )
    assert sorted({r.type for r in result.resources} - {"breakglass:index:AuditTrail"}) == sorted(
        {
            TOPIC,
            "aws:sns/topicPolicy:TopicPolicy",
            RULE,
            TARGET,
            QUEUE,
            "aws:sqs/queuePolicy:QueuePolicy",
        }
    )
    assert result.outputs["trail_arn"] == EXISTING_TRAIL
    assert result.outputs["kms_key_arn"] == EXISTING_KEY
    assert result.one(TOPIC).inputs["kmsMasterKeyId"] == EXISTING_KEY
    # An existing key is watched where it is managed; the other classes remain.
    assert sorted(r.name for r in result.by_type(RULE)) == sorted(
        f"audit-{c}" for c in ALERT_CLASSES if c != "key-tampering"
    )


def test_existing_trail_with_a_new_bucket_grants_cloudtrail_nothing() -> None:
    result = build({"existing_trail_arn": EXISTING_TRAIL})
    assert result.by_type(TRAIL) == []
    assert "cloudtrail" not in result.one(BUCKET_POLICY).inputs["policy"]
    assert "cloudtrail.amazonaws.com" not in result.one(KEY).inputs["policy"]
    assert result.one(LOCK).inputs["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 365}


def test_existing_key_is_used_for_a_new_bucket_and_trail_without_creating_a_key() -> None:
    result = build({"existing_kms_key_arn": EXISTING_KEY})
    assert result.by_type(KEY) == []
    assert result.one(TRAIL).inputs["kmsKeyId"] == EXISTING_KEY
    (rule,) = result.one(ENCRYPTION).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == EXISTING_KEY


# --- validation ------------------------------------------------------------------------------

BAD_ARGS = [
    pytest.param({"retention_days": 0}, "retention_days", id="retention-zero"),
    pytest.param({"retention_days": -5}, "retention_days", id="retention-negative"),
    pytest.param({"retention_days": 36501}, "retention_days", id="retention-too-long"),
    pytest.param({"retention_days": "365"}, "retention_days", id="retention-string"),
    pytest.param({"retention_days": True}, "retention_days", id="retention-bool"),
    pytest.param({"retention_days": 365.0}, "retention_days", id="retention-float"),
    pytest.param({"governance_mode_opt_in": "yes"}, "governance_mode_opt_in", id="governance-string"),
    pytest.param({"retension_days": 30}, "retension_days", id="typo-unknown-key"),
    pytest.param({"name_prefix": "Break_Glass"}, "name_prefix", id="prefix-uppercase"),
    pytest.param({"name_prefix": ""}, "name_prefix", id="prefix-empty"),
    pytest.param({"name_prefix": "1team"}, "name_prefix", id="prefix-digit-first"),
    pytest.param({"name_prefix": "a" * 31}, "name_prefix", id="prefix-too-long"),
    pytest.param({"bucket_name": "Audit_Bucket"}, "bucket_name", id="bucket-uppercase"),
    pytest.param({"bucket_name": "ab"}, "bucket_name", id="bucket-too-short"),
    pytest.param({"bucket_name": "audit..logs"}, "bucket_name", id="bucket-double-dot"),
    pytest.param({"alert_emails": ["not-an-email"]}, "alert_emails[0]", id="email-malformed"),
    pytest.param({"alert_emails": ["a@example.com", "b@ex ample.com"]}, "alert_emails[1]", id="email-space"),
    pytest.param({"alert_emails": "sec@example.com"}, "alert_emails", id="emails-not-a-list"),
    pytest.param({"alert_emails": ["a@example.com", "a@example.com"]}, "alert_emails[1]", id="email-twice"),
    pytest.param({"cold_storage_days": 0}, "cold_storage_days", id="cold-zero"),
    pytest.param({"cold_storage_class": "STANDARD_IA"}, "cold_storage_class", id="cold-class"),
    pytest.param(
        {"cold_storage_days": 200, "deep_archive_days": 250}, "deep_archive_days", id="deep-too-soon"
    ),
    pytest.param({"deep_archive_days": 30}, "deep_archive_days", id="deep-before-cold"),
    pytest.param({"expire_after_days": 100}, "expire_after_days", id="expire-before-retention"),
    pytest.param(
        {"retention_days": 400, "expire_after_days": 399}, "expire_after_days", id="expire-one-day-early"
    ),
    pytest.param(
        {"retention_days": 30, "expire_after_days": 500}, "expire_after_days", id="expire-before-deep-archive"
    ),
    pytest.param({"existing_bucket_name": "Org Logs"}, "existing_bucket_name", id="existing-bucket-bad"),
    pytest.param({"existing_kms_key_arn": "alias/audit"}, "existing_kms_key_arn", id="key-alias"),
    pytest.param(
        {"existing_kms_key_arn": f"arn:aws:s3:::{ACCOUNT_ID}"}, "existing_kms_key_arn", id="key-wrong-service"
    ),
    pytest.param({"existing_trail_arn": "org-trail"}, "existing_trail_arn", id="trail-not-arn"),
    pytest.param(
        {"existing_bucket_name": "org-logs", "retention_days": 365},
        "retention_days",
        id="retention-on-existing",
    ),
    pytest.param(
        {"existing_bucket_name": "org-logs", "governance_mode_opt_in": False},
        "governance_mode_opt_in",
        id="lock-mode-on-existing",
    ),
    pytest.param(
        {"existing_bucket_name": "org-logs", "bucket_name": "mine"}, "bucket_name", id="two-bucket-names"
    ),
    pytest.param({"tags": {"aws:owner": "x"}}, "tags.aws:owner", id="tag-reserved"),
    pytest.param({"tags": {"team": 5}}, "tags.team", id="tag-value-not-string"),
    pytest.param({"tags": ["team"]}, "tags", id="tags-not-mapping"),
]


@pytest.mark.parametrize(("args", "field"), BAD_ARGS)
def test_bad_args_are_refused_naming_the_field(args: dict[str, Any], field: str) -> None:
    with pytest.raises(SynthError) as raised:
        build(args)  # type: ignore[arg-type]
    message = str(raised.value)
    assert f"ConfigError: {field}:" in message, message


def test_args_must_be_a_mapping() -> None:
    with pytest.raises(SynthError, match="ConfigError: args: must be a mapping"):
        synth(lambda: AuditTrail("audit", ["retention_days"]))  # type: ignore[arg-type]


def test_defaults_are_the_secure_choice_and_checked_without_pulumi() -> None:
    config = AuditTrailConfig.from_args({})
    assert (config.lock_mode, config.retention_days, config.expire_after_days) == ("COMPLIANCE", 365, None)
    assert (config.creates_bucket, config.creates_key, config.creates_trail) == (True, True, True)
    with pytest.raises(ConfigError) as raised:
        AuditTrailConfig.from_args({"retention_days": 0})
    assert raised.value.field == "retention_days"


def test_pulumi_infers_a_documented_schema_from_the_args_and_outputs() -> None:
    (definition,) = Analyzer("breakglass").analyze([AuditTrail])["component_definitions"].values()
    assert set(definition.inputs_mapping.values()) == set(AuditTrailArgs.__annotations__)
    assert all(p.optional and p.description for p in definition.inputs.values())
    assert set(OUTPUTS) <= set(definition.outputs_mapping.values())
    assert all(p.description for p in definition.outputs.values())


def test_a_function_wired_with_the_helpers_gets_the_writer_environment_and_least_privilege() -> None:
    def program() -> None:
        audit = AuditTrail("audit", {})
        python_function(
            "audit-writer-fn",
            handler="breakglass.lambdas.audit.events.handler",
            description="writes audit events",
            statements=audit.writer_statements(),
            environment=audit.audit_environment(),
            parent=audit,
        )

    result = synth(program)
    bucket_arn = result.one(BUCKET).outputs["arn"]
    variables = result.one("aws:lambda/function:Function").inputs["environment"]["variables"]
    assert variables[ENV_AUDIT_BUCKET] == result.one(BUCKET).outputs["bucket"]
    assert variables[ENV_AUDIT_PREFIX] == EVENTS_PREFIX
    statements = json.loads(result.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
    granted = {(s["Sid"], json.dumps(s["Action"]), s["Resource"]) for s in statements}
    assert ("WriteAuditEvents", '"s3:PutObject"', f"{bucket_arn}/{EVENTS_PREFIX}/*") in granted
    assert not any("Delete" in action or "GetObject" in action for _, action, _ in granted)
