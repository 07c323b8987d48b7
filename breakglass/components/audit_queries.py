"""``AuditQueries``: the Glue tables, the Athena workgroup and the auditor's named queries.

Auditors query the audit bucket (CloudTrail logs and break-glass events) through an Athena
workgroup that enforces its own settings: results encrypted with the audit KMS key, written to
a locked-down results bucket that forgets them after a while, and a per-query scan cutoff so a
careless query cannot read years of logs. Both tables use partition projection, so no crawler
and no ``MSCK REPAIR`` are needed and queries that filter on the date read only those days.
"""

# No `from __future__ import annotations`: Pulumi's component schema analyzer reads the
# annotations of the args TypedDict and of the outputs at runtime.

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Required, TypedDict

import pulumi
import pulumi_aws as aws

from breakglass.components.buckets import encrypt_with_kms, make_private
from breakglass.components.wiring import Where, existing_or_new
from breakglass.contracts import EVENT_COLUMNS, EVENTS_PREFIX
from breakglass.policies.queries import (
    ALL_REGIONS,
    CLOUDTRAIL_COLUMNS,
    CLOUDTRAIL_PARTITIONS,
    EVENTS_PARTITIONS,
    NAMED_QUERIES,
    TableDefinition,
    cloudtrail_table,
    events_table,
    results_bucket_policy,
)
from breakglass.validation import (
    ConfigError,
    reject_unknown_keys,
    require_int,
    require_mapping,
    require_str,
    require_str_list,
    require_tags,
)

GIB = 1024**3
DEFAULT_BYTES_SCANNED_CUTOFF = 10 * GIB
# Athena refuses a per-query cutoff below 10 MB.
MIN_BYTES_SCANNED_CUTOFF = 10_000_000
ATHENA_ENGINE = "Athena engine version 3"

_BUCKET_NAME = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_KMS_KEY_ARN = r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+"
_PREFIX = r"[A-Za-z0-9!_.*'()/-]*"
_REGION = r"[a-z]{2}(-[a-z]+)+-\d"
_ORGANIZATION_ID = r"(o-[a-z0-9]{10,32})?"


class AuditQueriesArgs(TypedDict, total=False):
    """Inputs of :class:`AuditQueries`."""

    audit_bucket: Required[pulumi.Input[str]]
    """Name of the audit bucket holding the CloudTrail logs and the break-glass events (required)."""
    kms_key_arn: Required[pulumi.Input[str]]
    """ARN of the KMS key that encrypts query results (normally the audit trail's key; required)."""
    account_id: pulumi.Input[str]
    """Account whose CloudTrail logs the table reads (``AWSLogs/<account>/``); default: this stack's account."""
    cloudtrail_prefix: str
    """S3 key prefix the trail delivers under (before ``AWSLogs/``); default: none."""
    organization_id: str
    """The organization id (``o-...``) when an organization trail delivers the logs, under
    ``AWSLogs/<organization id>/<account>/``; default: none (a trail of the account)."""
    events_prefix: str
    """S3 key prefix of the break-glass events; default ``breakglass-events``."""
    regions: Sequence[str]
    """Regions the CloudTrail table projects; default: every commercial region (a region left out is invisible)."""
    first_day: str
    """Earliest day (``YYYY-MM-DD``) the tables project partitions for; default ``2024-01-01``."""
    database_name: str
    """Glue database name; default ``breakglass_audit``."""
    workgroup_name: str
    """Athena workgroup name; default ``breakglass-audit``."""
    results_bucket: pulumi.Input[str]
    """An existing bucket for query results; default: a new encrypted, private, TLS-only bucket."""
    results_prefix: str
    """Key prefix for query results in the results bucket; default ``athena-results``."""
    results_expiration_days: int
    """Days after which query results in a bucket this component creates are deleted (1-3650); default 30."""
    bytes_scanned_cutoff_per_query: int
    """Athena cancels a query that scans more bytes than this (at least 10 MB); default 10 GiB."""
    tags: Mapping[str, str]
    """Tags for every taggable resource."""


def _is_plain(value: Any) -> bool:
    return not isinstance(value, pulumi.Output)


@dataclass(frozen=True)
class AuditQueriesConfig:
    audit_bucket: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str] | None
    cloudtrail_prefix: str
    organization_id: str
    events_prefix: str
    regions: tuple[str, ...]
    first_day: str
    database_name: str
    workgroup_name: str
    results_bucket: pulumi.Input[str] | None
    results_prefix: str
    results_expiration_days: int
    bytes_scanned_cutoff_per_query: int
    tags: Mapping[str, str]

    @classmethod
    def from_args(cls, args: AuditQueriesArgs | Mapping[str, Any] | None) -> "AuditQueriesConfig":
        values = require_mapping("args", args if args is not None else {})
        reject_unknown_keys("", values, AuditQueriesArgs.__annotations__)
        for required in ("audit_bucket", "kms_key_arn"):
            if values.get(required) is None:
                raise ConfigError(required, "is required")
        audit_bucket = values["audit_bucket"]
        if _is_plain(audit_bucket):
            require_str("audit_bucket", audit_bucket, pattern=_BUCKET_NAME, hint="must be an S3 bucket name")
        kms_key_arn = values["kms_key_arn"]
        if _is_plain(kms_key_arn):
            require_str(
                "kms_key_arn", kms_key_arn, pattern=_KMS_KEY_ARN, hint="must be a KMS key ARN (…:key/<id>)"
            )
        account_id = values.get("account_id")
        if account_id is not None and _is_plain(account_id):
            require_str("account_id", account_id, pattern=r"\d{12}", hint="must be a 12-digit account id")
        results_bucket = values.get("results_bucket")
        if results_bucket is not None and _is_plain(results_bucket):
            require_str(
                "results_bucket", results_bucket, pattern=_BUCKET_NAME, hint="must be an S3 bucket name"
            )
        first_day = require_str(
            "first_day",
            values.get("first_day", "2024-01-01"),
            pattern=r"\d{4}-\d{2}-\d{2}",
            hint="use YYYY-MM-DD",
        )
        try:
            date.fromisoformat(first_day)
        except ValueError:
            raise ConfigError("first_day", f"{first_day!r} is not a calendar date") from None
        tags = require_tags("tags", values.get("tags", {}))
        return cls(
            audit_bucket=audit_bucket,
            kms_key_arn=kms_key_arn,
            account_id=account_id,
            cloudtrail_prefix=_prefix("cloudtrail_prefix", values.get("cloudtrail_prefix", "")),
            organization_id=require_str(
                "organization_id",
                values.get("organization_id", ""),
                min_length=0,
                pattern=_ORGANIZATION_ID,
                hint="use the organization's id (o- and 10-32 lower-case letters or digits)",
            ),
            events_prefix=_prefix("events_prefix", values.get("events_prefix", EVENTS_PREFIX), required=True),
            regions=require_str_list(
                "regions",
                list(values.get("regions", ALL_REGIONS)),
                pattern=_REGION,
                allow_empty=False,
                hint="must be a region name such as us-east-1",
            ),
            first_day=first_day,
            database_name=require_str(
                "database_name",
                values.get("database_name", "breakglass_audit"),
                pattern=r"[a-z0-9_]{1,255}",
                hint="use lower-case letters, digits and '_' (Glue/Athena database names)",
            ),
            workgroup_name=require_str(
                "workgroup_name",
                values.get("workgroup_name", "breakglass-audit"),
                pattern=r"[A-Za-z0-9._-]{1,128}",
                hint="use 1-128 letters, digits, '.', '_' or '-'",
            ),
            results_bucket=results_bucket,
            results_prefix=_prefix(
                "results_prefix", values.get("results_prefix", "athena-results"), required=True
            ),
            results_expiration_days=require_int(
                "results_expiration_days", values.get("results_expiration_days", 30), minimum=1, maximum=3650
            ),
            bytes_scanned_cutoff_per_query=require_int(
                "bytes_scanned_cutoff_per_query",
                values.get("bytes_scanned_cutoff_per_query", DEFAULT_BYTES_SCANNED_CUTOFF),
                minimum=MIN_BYTES_SCANNED_CUTOFF,
            ),
            tags=dict(tags),
        )


def _prefix(field: str, value: Any, *, required: bool = False) -> str:
    text = require_str(
        field,
        value,
        min_length=1 if required else 0,
        pattern=_PREFIX,
        hint="use an S3 key prefix such as 'logs/trail'",
    )
    if text.startswith("s3://") or ".." in text.split("/"):
        raise ConfigError(field, "must be a key prefix inside the bucket, not a URL or a relative path")
    return text.strip("/")


class AuditQueries(pulumi.ComponentResource):
    """Glue database and tables, an enforced and encrypted Athena workgroup, and the named queries."""

    database_name: pulumi.Output[str]
    """Glue database holding both tables; pass it as the query context."""
    workgroup_name: pulumi.Output[str]
    """Athena workgroup auditors must use (results location, encryption and cutoff enforced)."""
    results_bucket: pulumi.Output[str]
    """Bucket receiving the encrypted query results (created, or ``results_bucket``)."""
    cloudtrail_table: pulumi.Output[str]
    """Name of the CloudTrail table (partitions: region, date)."""
    events_table: pulumi.Output[str]
    """Name of the break-glass events table (partition: dt)."""
    named_query_ids: pulumi.Output[dict[str, str]]
    """Athena named query id by query name."""

    def __init__(
        self,
        name: str,
        args: AuditQueriesArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("breakglass:index:AuditQueries", name, None, opts)
        self.config = AuditQueriesConfig.from_args(args)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        self._tags = {"breakglass:component": "AuditQueries", **self.config.tags}
        self._account_id: pulumi.Input[str] = (
            self.config.account_id if self.config.account_id is not None else Where.of(self).account
        )

        self.database = self._create_database()
        self.tables = self._create_tables()
        _, results_bucket = existing_or_new(self.config.results_bucket, self._create_results_bucket)
        self.workgroup = self._create_workgroup(results_bucket)
        named_ids = self._create_named_queries()

        self.database_name = self.database.name
        self.workgroup_name = self.workgroup.name
        self.results_bucket = results_bucket
        self.cloudtrail_table = self.tables["cloudtrail"].name
        self.events_table = self.tables["events"].name
        self.named_query_ids = pulumi.Output.all(**named_ids).apply(dict)
        self.register_outputs(
            {
                "database_name": self.database_name,
                "workgroup_name": self.workgroup_name,
                "results_bucket": self.results_bucket,
                "cloudtrail_table": self.cloudtrail_table,
                "events_table": self.events_table,
                "named_query_ids": self.named_query_ids,
            }
        )

    def _create_database(self) -> aws.glue.CatalogDatabase:
        return aws.glue.CatalogDatabase(
            f"{self._name}-database",
            name=self.config.database_name,
            description="Break-glass audit trail: CloudTrail logs and break-glass events",
            tags=self._tags,
            opts=self._child,
        )

    def _create_tables(self) -> dict[str, aws.glue.CatalogTable]:
        """The CloudTrail and events tables, both with partition projection (no crawler)."""
        cfg = self.config
        trail_def = pulumi.Output.all(cfg.audit_bucket, self._account_id).apply(
            lambda v: cloudtrail_table(
                bucket=v[0],
                account_id=v[1],
                cloudtrail_prefix=cfg.cloudtrail_prefix,
                organization_id=cfg.organization_id,
                regions=cfg.regions,
                first_day=cfg.first_day,
            )
        )
        events_def = pulumi.Output.from_input(cfg.audit_bucket).apply(
            lambda bucket: events_table(
                bucket=bucket, events_prefix=cfg.events_prefix, first_day=cfg.first_day
            )
        )
        return {
            "cloudtrail": self._table(
                f"{self._name}-cloudtrail",
                self.database,
                trail_def,
                CLOUDTRAIL_COLUMNS,
                CLOUDTRAIL_PARTITIONS,
                self._child,
            ),
            "events": self._table(
                f"{self._name}-events",
                self.database,
                events_def,
                EVENT_COLUMNS,
                EVENTS_PARTITIONS,
                self._child,
            ),
        }

    def _create_workgroup(self, results_bucket: pulumi.Output[str]) -> aws.athena.Workgroup:
        cfg = self.config
        return aws.athena.Workgroup(
            f"{self._name}-workgroup",
            name=cfg.workgroup_name,
            description="Break-glass auditors: enforced, KMS-encrypted results and a per-query scan cutoff",
            state="ENABLED",
            force_destroy=False,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                # Users cannot override the output location or the encryption per query.
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=cfg.bytes_scanned_cutoff_per_query,
                engine_version=aws.athena.WorkgroupConfigurationEngineVersionArgs(
                    selected_engine_version=ATHENA_ENGINE
                ),
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=pulumi.Output.concat(
                        "s3://", results_bucket, "/", cfg.results_prefix, "/"
                    ),
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS",
                        kms_key_arn=cfg.kms_key_arn,
                    ),
                    expected_bucket_owner=self._account_id,
                ),
            ),
            tags=self._tags,
            opts=self._child,
        )

    def _create_named_queries(self) -> dict[str, pulumi.Output[str]]:
        """One Athena named query per definition; returns their ids by query name."""
        named_ids: dict[str, pulumi.Output[str]] = {}
        for query in NAMED_QUERIES.values():
            named = aws.athena.NamedQuery(
                f"{self._name}-{query.name.replace('_', '-')}",
                name=query.name,
                description=query.athena_description(),
                database=self.database.name,
                workgroup=self.workgroup.name,
                query=query.sql,
                opts=self._child,
            )
            named_ids[query.name] = named.id
        return named_ids

    @staticmethod
    def _table(
        resource_name: str,
        database: aws.glue.CatalogDatabase,
        definition: pulumi.Output[TableDefinition],
        columns: Sequence[tuple[str, str]],
        partitions: Sequence[tuple[str, str]],
        opts: pulumi.ResourceOptions,
    ) -> aws.glue.CatalogTable:
        # The columns and partition keys are static; the locations depend on the bucket's name.
        return aws.glue.CatalogTable(
            resource_name,
            name=definition.apply(lambda d: d.name),
            description=definition.apply(lambda d: d.description),
            database_name=database.name,
            table_type="EXTERNAL_TABLE",
            parameters=definition.apply(lambda d: dict(d.parameters)),
            partition_keys=[aws.glue.CatalogTablePartitionKeyArgs(name=n, type=t) for n, t in partitions],
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=definition.apply(lambda d: d.location),
                input_format=definition.apply(lambda d: d.input_format),
                output_format=definition.apply(lambda d: d.output_format),
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library=definition.apply(lambda d: d.serde),
                    parameters=definition.apply(lambda d: dict(d.serde_parameters)),
                ),
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(name=n, type=t) for n, t in columns
                ],
            ),
            opts=opts,
        )

    def _create_results_bucket(self) -> tuple[aws.s3.Bucket, pulumi.Output[str]]:
        """A private, encrypted bucket for query results that forgets them after a while."""
        name, cfg, opts = self._name, self.config, self._child
        bucket = aws.s3.Bucket(f"{name}-results", force_destroy=False, tags=dict(self._tags), opts=opts)
        make_private(f"{name}-results", bucket.id, parent=self)
        encrypt_with_kms(f"{name}-results", bucket.id, cfg.kms_key_arn, parent=self)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-results-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-query-results",
                    "status": "Enabled",
                    "filter": {"prefix": f"{cfg.results_prefix}/"},
                    "expiration": {"days": cfg.results_expiration_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=opts,
        )
        aws.s3.BucketPolicy(
            f"{name}-results-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(results_bucket_policy(arn))),
            opts=opts,
        )
        return bucket, bucket.bucket


__all__ = ["AuditQueries", "AuditQueriesArgs", "AuditQueriesConfig"]
