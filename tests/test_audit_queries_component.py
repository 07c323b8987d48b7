"""AuditQueries under the Pulumi mock runtime: tables, workgroup, results bucket, named queries."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from breakglass.components import AuditQueries, AuditQueriesArgs
from breakglass.components.audit_queries import AuditQueriesConfig
from breakglass.contracts import EVENT_COLUMNS
from breakglass.local.synth import ACCOUNT_ID, SynthError, SynthResult, synth
from breakglass.policies.queries import CLOUDTRAIL_COLUMNS, NAMED_QUERIES
from breakglass.validation import ConfigError

TABLE = "aws:glue/catalogTable:CatalogTable"
DATABASE = "aws:glue/catalogDatabase:CatalogDatabase"
WORKGROUP = "aws:athena/workgroup:Workgroup"
NAMED_QUERY = "aws:athena/namedQuery:NamedQuery"
BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"

AUDIT_BUCKET = "breakglass-audit-111122223333"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BASE: dict[str, Any] = {"audit_bucket": AUDIT_BUCKET, "kms_key_arn": KEY_ARN}


def _synth(**extra: Any) -> SynthResult:
    return synth(lambda: AuditQueries("audit", {**BASE, **extra}))  # type: ignore[typeddict-item]


@pytest.fixture(scope="module")
def default() -> SynthResult:
    return _synth()


def test_every_child_is_parented_to_the_component_and_named_after_it(default: SynthResult) -> None:
    component = default.one("breakglass:index:AuditQueries")
    children = [r for r in default.resources if r is not component]
    assert children
    assert all(r.parent == "audit" and r.name.startswith("audit-") for r in children)


def test_the_cloudtrail_table_projects_region_and_date_onto_the_trail_layout(default: SynthResult) -> None:
    table = default.one(TABLE, "audit-cloudtrail").inputs
    assert table["name"] == "cloudtrail_logs"
    assert table["databaseName"] == "breakglass_audit"
    assert table["tableType"] == "EXTERNAL_TABLE"
    assert table["partitionKeys"] == [
        {"name": "region", "type": "string"},
        {"name": "date", "type": "string"},
    ]
    base = f"s3://{AUDIT_BUCKET}/AWSLogs/{ACCOUNT_ID}/CloudTrail"
    params = table["parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.region.type"] == "enum"
    assert "us-east-1" in params["projection.region.values"].split(",")
    assert params["projection.date.type"] == "date"
    assert params["projection.date.format"] == "yyyy/MM/dd"
    assert params["projection.date.range"] == "2024/01/01,NOW"
    assert params["storage.location.template"] == base + "/${region}/${date}"
    storage = table["storageDescriptor"]
    assert storage["location"] == base + "/"
    assert storage["inputFormat"] == "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
    assert storage["serDeInfo"]["serializationLibrary"] == "org.apache.hive.hcatalog.data.JsonSerDe"
    assert [(c["name"], c["type"]) for c in storage["columns"]] == list(CLOUDTRAIL_COLUMNS)


def test_the_events_table_has_the_event_schema_projected_by_day(default: SynthResult) -> None:
    table = default.one(TABLE, "audit-events").inputs
    assert table["name"] == "breakglass_events"
    assert table["partitionKeys"] == [{"name": "dt", "type": "string"}]
    params = table["parameters"]
    assert params["projection.dt.type"] == "date"
    assert params["projection.dt.format"] == "yyyy-MM-dd"
    assert params["storage.location.template"] == f"s3://{AUDIT_BUCKET}/breakglass-events/dt=${{dt}}/"
    assert [(c["name"], c["type"]) for c in table["storageDescriptor"]["columns"]] == list(EVENT_COLUMNS)


def test_prefixes_account_regions_and_first_day_reach_the_projection() -> None:
    result = _synth(
        cloudtrail_prefix="org-trail/",
        events_prefix="bg/events",
        account_id="444455556666",
        regions=["eu-west-1", "us-east-1"],
        first_day="2025-01-01",
    )
    trail = result.one(TABLE, "audit-cloudtrail").inputs["parameters"]
    assert trail["storage.location.template"] == (
        f"s3://{AUDIT_BUCKET}/org-trail/AWSLogs/444455556666/CloudTrail/${{region}}/${{date}}"
    )
    assert trail["projection.region.values"] == "eu-west-1,us-east-1"
    assert trail["projection.date.range"] == "2025/01/01,NOW"
    events = result.one(TABLE, "audit-events").inputs["parameters"]
    assert events["storage.location.template"] == f"s3://{AUDIT_BUCKET}/bg/events/dt=${{dt}}/"
    assert events["projection.dt.range"] == "2025-01-01,NOW"


def test_the_workgroup_enforces_kms_encrypted_results_and_a_scan_cutoff(default: SynthResult) -> None:
    workgroup = default.one(WORKGROUP).inputs
    assert workgroup["name"] == "breakglass-audit"
    assert workgroup["state"] == "ENABLED"
    config = workgroup["configuration"]
    assert config["enforceWorkgroupConfiguration"] is True
    assert config["bytesScannedCutoffPerQuery"] == 10 * 1024**3
    assert config["publishCloudwatchMetricsEnabled"] is True
    results = config["resultConfiguration"]
    assert results["encryptionConfiguration"] == {"encryptionOption": "SSE_KMS", "kmsKeyArn": KEY_ARN}
    results_bucket = default.one(BUCKET, "audit-results").outputs["bucket"]
    assert results["outputLocation"] == f"s3://{results_bucket}/athena-results/"
    assert results["expectedBucketOwner"] == ACCOUNT_ID


def test_the_results_bucket_is_private_kms_encrypted_tls_only_and_expires_results(
    default: SynthResult,
) -> None:
    block = default.one(PUBLIC_ACCESS, "audit-results-public-access").inputs
    assert all(
        block[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    (rule,) = default.one(ENCRYPTION, "audit-results-encryption").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": KEY_ARN,
    }
    policy = json.loads(default.one(BUCKET_POLICY, "audit-results-policy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (lifecycle,) = default.one(LIFECYCLE, "audit-results-lifecycle").inputs["rules"]
    assert lifecycle["status"] == "Enabled"
    assert lifecycle["expiration"] == {"days": 30}
    assert lifecycle["filter"] == {"prefix": "athena-results/"}


def test_a_given_results_bucket_is_used_and_no_bucket_is_created() -> None:
    result = _synth(
        results_bucket="org-athena-results", results_prefix="audit", bytes_scanned_cutoff_per_query=10**9
    )
    assert result.by_type(BUCKET) == []
    assert result.by_type(BUCKET_POLICY) == []
    config = result.one(WORKGROUP).inputs["configuration"]
    assert config["resultConfiguration"]["outputLocation"] == "s3://org-athena-results/audit/"
    assert config["bytesScannedCutoffPerQuery"] == 10**9


def test_one_named_query_per_query_with_its_exact_sql_in_the_database_and_workgroup(
    default: SynthResult,
) -> None:
    named = {r.inputs["name"]: r.inputs for r in default.by_type(NAMED_QUERY)}
    assert set(named) == set(NAMED_QUERIES)
    for name, query in NAMED_QUERIES.items():
        assert named[name]["query"] == query.sql
        assert named[name]["database"] == "breakglass_audit"
        assert named[name]["workgroup"] == "breakglass-audit"
        assert named[name]["description"] == query.athena_description()


def test_outputs_name_the_database_workgroup_tables_and_queries() -> None:
    captured: dict[str, Any] = {}

    def program() -> None:
        component = AuditQueries("audit", BASE)  # type: ignore[arg-type]
        pulumi.export("db", component.database_name)
        pulumi.export("wg", component.workgroup_name)
        pulumi.export("tables", pulumi.Output.all(component.cloudtrail_table, component.events_table))
        pulumi.export("ids", component.named_query_ids)
        captured["component"] = component

    outputs = synth(program).outputs
    assert outputs["db"] == "breakglass_audit"
    assert outputs["wg"] == "breakglass-audit"
    assert outputs["tables"] == ["cloudtrail_logs", "breakglass_events"]
    assert set(outputs["ids"]) == set(NAMED_QUERIES)


def test_an_organization_trail_s_logs_are_read_under_its_organization_id() -> None:
    result = _synth(cloudtrail_prefix="central", organization_id="o-a1b2c3d4e5", account_id="444455556666")
    trail = result.one(TABLE, "audit-cloudtrail").inputs
    base = f"s3://{AUDIT_BUCKET}/central/AWSLogs/o-a1b2c3d4e5/444455556666/CloudTrail"
    assert trail["storageDescriptor"]["location"] == f"{base}/"
    assert trail["parameters"]["storage.location.template"] == f"{base}/${{region}}/${{date}}"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"kms_key_arn": KEY_ARN}, "audit_bucket"),
        ({**BASE, "organization_id": "r-ab12"}, "organization_id"),
        ({**BASE, "organization_id": "o-../x"}, "organization_id"),
        ({"audit_bucket": AUDIT_BUCKET}, "kms_key_arn"),
        ({**BASE, "audit_bucket": "Not_A_Bucket"}, "audit_bucket"),
        ({**BASE, "kms_key_arn": "alias/audit"}, "kms_key_arn"),
        ({**BASE, "account_id": "12345"}, "account_id"),
        ({**BASE, "bytes_scanned_cutoff_per_query": 1000}, "bytes_scanned_cutoff_per_query"),
        ({**BASE, "bytes_scanned_cutoff_per_query": "10GB"}, "bytes_scanned_cutoff_per_query"),
        ({**BASE, "results_expiration_days": 0}, "results_expiration_days"),
        ({**BASE, "regions": []}, "regions"),
        ({**BASE, "regions": ["us-east-1", "mars-1"]}, "regions[1]"),
        ({**BASE, "first_day": "2024-02-30"}, "first_day"),
        ({**BASE, "first_day": "2024/01/01"}, "first_day"),
        ({**BASE, "database_name": "Audit-DB"}, "database_name"),
        ({**BASE, "workgroup_name": "bad name"}, "workgroup_name"),
        ({**BASE, "events_prefix": ""}, "events_prefix"),
        ({**BASE, "cloudtrail_prefix": "s3://other/"}, "cloudtrail_prefix"),
        ({**BASE, "results_prefix": "../up"}, "results_prefix"),
        ({**BASE, "results_bucket": "s3://x"}, "results_bucket"),
        ({**BASE, "byte_cutoff": 10**9}, "byte_cutoff"),
    ],
)
def test_bad_args_raise_an_error_naming_the_field(args: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AuditQueriesConfig.from_args(args)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_a_bad_arg_fails_the_program_under_the_mock_runtime_with_the_field_name() -> None:
    with pytest.raises(SynthError, match="bytes_scanned_cutoff_per_query: must be at least 10000000"):
        _synth(bytes_scanned_cutoff_per_query=5)


def test_defaults_are_the_secure_ones() -> None:
    config = AuditQueriesConfig.from_args(BASE)
    assert config.bytes_scanned_cutoff_per_query == 10 * 1024**3
    assert config.results_expiration_days == 30
    assert config.events_prefix == "breakglass-events"
    assert len(config.regions) > 30


def test_the_component_schema_is_inferred_with_a_description_for_every_input_and_output() -> None:
    (definition,) = Analyzer("breakglass").analyze([AuditQueries])["component_definitions"].values()
    assert set(definition.inputs_mapping.values()) == set(AuditQueriesArgs.__annotations__)
    assert all(p.description for p in definition.inputs.values())
    assert {"database_name", "workgroup_name", "results_bucket", "named_query_ids"} <= set(
        definition.outputs_mapping.values()
    )
    assert all(p.description for p in definition.outputs.values())
