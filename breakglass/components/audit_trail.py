"""The immutable audit trail: a KMS key, an Object Lock bucket, a CloudTrail trail and live alerts.

Nobody can erase what lands in the bucket: Object Lock in COMPLIANCE mode keeps every version for
the retention period (not even the root user can shorten it), and the bucket policy denies deletes
and lock changes to every principal. EventBridge rules publish to an encrypted SNS topic whenever
an emergency role is assumed or someone touches the trail, the bucket, the key or a guardrail.
"""

# No `from __future__ import annotations` here: Pulumi's component schema analyzer reads the
# real annotation objects of AuditTrailArgs and of the outputs declared on AuditTrail.
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

import pulumi
import pulumi_aws as aws

from breakglass.components.buckets import encrypt_with_kms, make_private
from breakglass.components.wiring import Where, existing_or_new
from breakglass.contracts import (
    ENV_ALERT_TOPIC,
    ENV_AUDIT_BUCKET,
    ENV_AUDIT_KMS_KEY,
    ENV_AUDIT_PREFIX,
    EVENTS_PREFIX,
)
from breakglass.policies import audit_trail as policies
from breakglass.policies.naming import EMERGENCY_ROLE_PREFIX, PROTECTED_TAG
from breakglass.validation import (
    EMAIL,
    EMAIL_HINT,
    ConfigError,
    reject_unknown_keys,
    require_bool,
    require_choice,
    require_int,
    require_mapping,
    require_str,
    require_str_list,
    require_tags,
)

DEFAULT_RETENTION_DAYS: Final = 365
MAX_RETENTION_DAYS: Final = 36500  # S3's limit for a default retention expressed in days
KEY_DELETION_WINDOW_DAYS: Final = 30
# S3 refuses a lifecycle that moves objects to DEEP_ARCHIVE less than 90 days after the earlier
# cold-storage transition; checking it here gives the error at preview instead of mid-deploy.
MIN_DAYS_BETWEEN_TRANSITIONS: Final = 90
COLD_STORAGE_CLASSES: Final = ("GLACIER_IR", "GLACIER")
DLQ_RETENTION_SECONDS: Final = 14 * 24 * 3600
TARGET_MAX_EVENT_AGE_SECONDS: Final = 24 * 3600
TARGET_MAX_RETRY_ATTEMPTS: Final = 185  # EventBridge's maximum

NAME_PREFIX_PATTERN: Final = r"[a-z][a-z0-9-]{0,29}"
NAME_PREFIX_HINT: Final = "use 1-30 lower-case letters, digits or '-', starting with a letter"
BUCKET_NAME_PATTERN: Final = r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
BUCKET_NAME_HINT: Final = "use an S3 bucket name: 3-63 lower-case letters, digits, '.' or '-'"
KMS_KEY_ARN_PATTERN: Final = r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-zA-Z0-9-]+"
TRAIL_ARN_PATTERN: Final = r"arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:trail/[\w.-]{3,128}"

# Settings that only describe a bucket this component creates; given with an existing bucket they
# would be silently ignored, so they are refused instead.
_NEW_BUCKET_ONLY: Final = (
    "bucket_name",
    "retention_days",
    "governance_mode_opt_in",
    "cold_storage_days",
    "cold_storage_class",
    "deep_archive_days",
    "expire_after_days",
)


class AuditTrailArgs(TypedDict, total=False):
    """Settings of :class:`AuditTrail`. Every field is optional; defaults are the secure choice."""

    name_prefix: str
    """Prefix of every physical name (trail, topic, rules, bucket); 1-30 chars. Default ``breakglass``."""

    bucket_name: str
    """Exact name of the audit bucket. Default: generated from ``name_prefix``."""

    retention_days: int
    """Default Object Lock retention of every object, in days (1-36500). Default 365. Used exactly."""

    governance_mode_opt_in: bool
    """Use GOVERNANCE instead of COMPLIANCE lock mode (weaker: removable with a special permission)."""

    cold_storage_days: int
    """Days after which objects (and noncurrent versions) move to ``cold_storage_class``. Default 90."""

    cold_storage_class: str
    """``GLACIER_IR`` (default; Athena can still read it) or ``GLACIER`` (must be restored to query)."""

    deep_archive_days: int
    """Days after which objects move to DEEP_ARCHIVE; at least cold_storage_days + 90. Default 730."""

    expire_after_days: int
    """Days after which objects expire; must not be less than ``retention_days``. Default: never."""

    alert_emails: list[str]
    """Email addresses subscribed to the alert topic (each must confirm the subscription)."""

    existing_bucket_name: str
    """Use this existing bucket (e.g. an organization trail's) instead of creating one."""

    existing_kms_key_arn: str
    """Use this existing KMS key ARN instead of creating one; its policy must admit the services."""

    existing_trail_arn: str
    """An existing trail (e.g. an organization trail) already records this account: create none."""

    tags: dict[str, str]
    """Tags added to every resource created (the protected tag is always added)."""


@dataclass(frozen=True)
class AuditTrailConfig:
    """Validated :class:`AuditTrailArgs` with every default filled in."""

    name_prefix: str = "breakglass"
    bucket_name: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    governance_mode_opt_in: bool = False
    cold_storage_days: int = 90
    cold_storage_class: str = "GLACIER_IR"
    deep_archive_days: int = 730
    expire_after_days: int | None = None
    alert_emails: tuple[str, ...] = ()
    existing_bucket_name: str | None = None
    existing_kms_key_arn: str | None = None
    existing_trail_arn: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def lock_mode(self) -> str:
        return "GOVERNANCE" if self.governance_mode_opt_in else "COMPLIANCE"

    @property
    def creates_bucket(self) -> bool:
        return self.existing_bucket_name is None

    @property
    def creates_key(self) -> bool:
        return self.existing_kms_key_arn is None

    @property
    def creates_trail(self) -> bool:
        return self.existing_trail_arn is None

    @property
    def trail_name(self) -> str:
        return f"{self.name_prefix}-audit"

    @classmethod
    def from_args(cls, args: Mapping[str, Any] | None) -> "AuditTrailConfig":
        raw = require_mapping("args", {} if args is None else args)
        reject_unknown_keys("", raw, AuditTrailArgs.__annotations__)
        values: dict[str, Any] = {}
        if "name_prefix" in raw:
            values["name_prefix"] = require_str(
                "name_prefix", raw["name_prefix"], pattern=NAME_PREFIX_PATTERN, hint=NAME_PREFIX_HINT
            )
        for key in ("bucket_name", "existing_bucket_name"):
            if key in raw:
                values[key] = require_str(key, raw[key], pattern=BUCKET_NAME_PATTERN, hint=BUCKET_NAME_HINT)
        if "existing_kms_key_arn" in raw:
            values["existing_kms_key_arn"] = require_str(
                "existing_kms_key_arn",
                raw["existing_kms_key_arn"],
                pattern=KMS_KEY_ARN_PATTERN,
                hint="use a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); aliases cannot be checked",
            )
        if "existing_trail_arn" in raw:
            values["existing_trail_arn"] = require_str(
                "existing_trail_arn",
                raw["existing_trail_arn"],
                pattern=TRAIL_ARN_PATTERN,
                hint="use a trail ARN (arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME)",
            )
        if "retention_days" in raw:
            values["retention_days"] = require_int(
                "retention_days", raw["retention_days"], minimum=1, maximum=MAX_RETENTION_DAYS
            )
        if "governance_mode_opt_in" in raw:
            values["governance_mode_opt_in"] = require_bool(
                "governance_mode_opt_in", raw["governance_mode_opt_in"]
            )
        for key in ("cold_storage_days", "deep_archive_days", "expire_after_days"):
            if key in raw:
                values[key] = require_int(key, raw[key], minimum=1, maximum=MAX_RETENTION_DAYS * 2)
        if "cold_storage_class" in raw:
            values["cold_storage_class"] = require_choice(
                "cold_storage_class", raw["cold_storage_class"], COLD_STORAGE_CLASSES
            )
        if "alert_emails" in raw:
            values["alert_emails"] = require_str_list(
                "alert_emails",
                raw["alert_emails"],
                pattern=EMAIL,
                hint=EMAIL_HINT,
            )
        if "tags" in raw:
            values["tags"] = require_tags("tags", raw["tags"])
        if "existing_bucket_name" in raw:
            for key in _NEW_BUCKET_ONLY:
                if key in raw:
                    raise ConfigError(
                        key,
                        "applies only to a bucket this component creates; it cannot be applied to "
                        "existing_bucket_name (configure that bucket where it is managed)",
                    )
        config = cls(**values)
        config._check_lifecycle()
        return config

    def _check_lifecycle(self) -> None:
        if self.deep_archive_days < self.cold_storage_days + MIN_DAYS_BETWEEN_TRANSITIONS:
            raise ConfigError(
                "deep_archive_days",
                f"must be at least cold_storage_days + {MIN_DAYS_BETWEEN_TRANSITIONS} "
                f"({self.cold_storage_days + MIN_DAYS_BETWEEN_TRANSITIONS}), got {self.deep_archive_days}",
            )
        if self.expire_after_days is not None:
            if self.expire_after_days < self.retention_days:
                raise ConfigError(
                    "expire_after_days",
                    f"must not be less than retention_days ({self.retention_days}): records may not "
                    f"expire while they are meant to be kept, got {self.expire_after_days}",
                )
            if self.expire_after_days <= self.deep_archive_days:
                raise ConfigError(
                    "expire_after_days",
                    f"must be after deep_archive_days ({self.deep_archive_days}), got {self.expire_after_days}",
                )


class AuditTrail(pulumi.ComponentResource):
    """KMS key, Object Lock bucket, CloudTrail trail, alert topic and the rules that feed it.

    With ``existing_bucket_name`` / ``existing_kms_key_arn`` / ``existing_trail_arn`` it creates
    only what is missing; see docs/audit-trail.md for exactly what each mode creates.
    """

    bucket_name: pulumi.Output[str]
    """The audit bucket (created, or ``existing_bucket_name``)."""
    bucket_arn: pulumi.Output[str]
    """ARN of the audit bucket."""
    kms_key_arn: pulumi.Output[str]
    """The key encrypting logs, events and alerts (created, or ``existing_kms_key_arn``)."""
    trail_arn: pulumi.Output[str]
    """The trail recording this account (created, or ``existing_trail_arn``)."""
    alert_topic_arn: pulumi.Output[str]
    """SNS topic receiving every alert; subscribe responders and security here."""
    dead_letter_queue_arn: pulumi.Output[str]
    """SQS queue holding alerts EventBridge could not deliver to the topic."""
    events_prefix: pulumi.Output[str]
    """Key prefix of the break-glass events in the bucket (``<prefix>/dt=YYYY-MM-DD/``)."""
    emergency_role_prefix: pulumi.Output[str]
    """Name prefix of emergency roles; the assume alert matches it."""

    def __init__(
        self,
        name: str,
        args: AuditTrailArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        config = AuditTrailConfig.from_args(args)
        super().__init__("breakglass:index:AuditTrail", name, None, opts)
        self.config = config
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        # Losing the key or the bucket would lose the record; `pulumi destroy` leaves them in place.
        self._keep = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        self._tags = {**config.tags, PROTECTED_TAG: "true"}
        self._where = Where.of(self)
        self._own_trail_arn = self._planned_trail_arn()
        self.bucket_policy: aws.s3.BucketPolicy | None = None  # set when the bucket is created here

        self.key, self.kms_key_arn = existing_or_new(config.existing_kms_key_arn, self._create_key)
        self.bucket, self.bucket_name = existing_or_new(config.existing_bucket_name, self._create_bucket)
        self.bucket_arn = self.bucket.arn if self.bucket else self._given_bucket_arn()
        self.trail, self.trail_arn = existing_or_new(config.existing_trail_arn, self._create_trail)
        self._create_alert_topic()
        self._create_alert_rules()

        self.alert_topic_arn = self.topic.arn
        self.dead_letter_queue_arn = self.dead_letter_queue.arn
        self.events_prefix = pulumi.Output.from_input(EVENTS_PREFIX)
        self.emergency_role_prefix = pulumi.Output.from_input(EMERGENCY_ROLE_PREFIX)
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "kms_key_arn": self.kms_key_arn,
                "trail_arn": self.trail_arn,
                "alert_topic_arn": self.alert_topic_arn,
                "dead_letter_queue_arn": self.dead_letter_queue_arn,
                "events_prefix": self.events_prefix,
                "emergency_role_prefix": self.emergency_role_prefix,
            }
        )

    def _planned_trail_arn(self) -> pulumi.Output[str] | None:
        """The ARN of the trail this component will create (None if it creates none).

        The key and bucket policies name the trail before it exists; its fixed name makes the ARN
        computable.
        """
        if not self.config.creates_trail:
            return None
        where, trail_name = self._where, self.config.trail_name
        return pulumi.Output.all(where.partition, where.region, where.account).apply(
            lambda p: policies.trail_arn(partition=p[0], region=p[1], account_id=p[2], trail_name=trail_name)
        )

    def _create_key(self) -> tuple[aws.kms.Key, pulumi.Output[str]]:
        where, prefix = self._where, self.config.name_prefix
        key_policy = pulumi.Output.all(
            where.partition, where.region, where.account, self._own_trail_arn
        ).apply(
            lambda p: json.dumps(
                policies.audit_key_policy(partition=p[0], region=p[1], account_id=p[2], trail_arn=p[3])
            )
        )
        key = aws.kms.Key(
            f"{self._name}-key",
            description=f"{prefix} audit trail: CloudTrail logs, audit events, alerts",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=key_policy,
            tags=self._tags,
            opts=self._keep,
        )
        aws.kms.Alias(
            f"{self._name}-key-alias",
            name=f"alias/{prefix}-audit",
            target_key_id=key.key_id,
            opts=self._child,
        )
        return key, key.arn

    def _create_bucket(self) -> tuple[aws.s3.Bucket, pulumi.Output[str]]:
        """The Object Lock bucket, each setting applied after the one it must not race."""
        config, name = self.config, self._name
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=config.bucket_name,
            bucket_prefix=None if config.bucket_name else f"{config.name_prefix}-audit-",
            object_lock_enabled=True,
            force_destroy=False,
            tags=self._tags,
            opts=self._keep,
        )
        public_access = make_private(name, bucket.id, parent=self)
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        self.object_lock = aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock",
            bucket=bucket.id,
            object_lock_enabled="Enabled",
            rule={"default_retention": {"mode": config.lock_mode, "days": config.retention_days}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        encryption = encrypt_with_kms(
            name, bucket.id, self.kms_key_arn, parent=self, depends_on=[self.object_lock]
        )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[_lifecycle_rule(config)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[encryption]),
        )
        bucket_policy = pulumi.Output.all(bucket.arn, self._where.account, self._own_trail_arn).apply(
            lambda p: json.dumps(
                policies.audit_bucket_policy(bucket_arn=p[0], account_id=p[1], trail_arn=p[2])
            )
        )
        # Last: the policy denies changing the lock, so the lock must be in place before it.
        self.bucket_policy = aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=bucket.id,
            policy=bucket_policy,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[lifecycle, self.object_lock]),
        )
        return bucket, bucket.bucket

    def _given_bucket_arn(self) -> pulumi.Output[str]:
        existing = self.config.existing_bucket_name or ""
        return self._where.partition.apply(lambda p: f"arn:{p}:s3:::{existing}")

    def _create_trail(self) -> tuple[aws.cloudtrail.Trail, pulumi.Output[str]]:
        # After the bucket policy (CloudTrail checks it may write) and the key (it encrypts with it).
        ready = [r for r in (self.bucket_policy, self.key) if r is not None]
        trail = aws.cloudtrail.Trail(
            f"{self._name}-trail",
            name=self.config.trail_name,
            s3_bucket_name=self.bucket_name,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            kms_key_id=self.kms_key_arn,
            event_selectors=[{"read_write_type": "All", "include_management_events": True}],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )
        return trail, trail.arn

    def _create_alert_topic(self) -> None:
        """The encrypted topic every alert goes to, its subscribers, and the queue of undelivered alerts."""
        config, name, child, where = self.config, self._name, self._child, self._where
        self.topic = aws.sns.Topic(
            f"{name}-alerts",
            name=f"{config.name_prefix}-alerts",
            display_name="Break-glass alerts",
            kms_master_key_id=self.kms_key_arn,
            tags=self._tags,
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{name}-alerts-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, where.partition, where.account).apply(
                lambda p: json.dumps(
                    policies.alert_topic_policy(topic_arn=p[0], partition=p[1], account_id=p[2])
                )
            ),
            opts=child,
        )
        for index, email in enumerate(config.alert_emails):
            aws.sns.TopicSubscription(
                f"{name}-alert-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-alerts-dlq",
            name=f"{config.name_prefix}-alerts-dlq",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            tags=self._tags,
            opts=child,
        )

    def _create_alert_rules(self) -> None:
        """One EventBridge rule per alert class to the topic, and the queue's policy admitting them."""
        config, name, child = self.config, self._name, self._child
        # The key rule watches only a key this component knows; an existing key is watched where
        # it is managed. Pattern values are Outputs, so each class's pattern is built per rule.
        watched_key_arn = self.kms_key_arn if config.creates_key else None
        classes = [
            c
            for c in policies.ALERT_CLASSES
            if watched_key_arn is not None or c != policies.ALERT_KEY_TAMPERING
        ]
        self.alert_rules: dict[str, aws.cloudwatch.EventRule] = {}
        for alert_class in classes:
            pattern = pulumi.Output.all(self.bucket_name, watched_key_arn).apply(_pattern_json(alert_class))
            rule = aws.cloudwatch.EventRule(
                f"{name}-{alert_class}",
                name=f"{config.name_prefix}-{alert_class}",
                description=f"Break-glass alert: {alert_class.replace('-', ' ')}",
                event_pattern=pattern,
                state="ENABLED",
                tags=self._tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{alert_class}-target",
                rule=rule.name,
                arn=self.topic.arn,
                retry_policy={
                    "maximum_event_age_in_seconds": TARGET_MAX_EVENT_AGE_SECONDS,
                    "maximum_retry_attempts": TARGET_MAX_RETRY_ATTEMPTS,
                },
                dead_letter_config={"arn": self.dead_letter_queue.arn},
                opts=child,
            )
            self.alert_rules[alert_class] = rule
        aws.sqs.QueuePolicy(
            f"{name}-alerts-dlq-policy",
            queue_url=self.dead_letter_queue.id,
            policy=pulumi.Output.all(
                self.dead_letter_queue.arn, *[r.arn for r in self.alert_rules.values()]
            ).apply(
                lambda p: json.dumps(policies.dead_letter_queue_policy(queue_arn=p[0], rule_arns=list(p[1:])))
            ),
            opts=child,
        )

    def audit_environment(self, *, alerts: bool = True) -> dict[str, pulumi.Output[str]]:
        """Environment variables for a function that writes audit events (``audit_writer_from_env``)."""
        environment = {
            ENV_AUDIT_BUCKET: self.bucket_name,
            ENV_AUDIT_PREFIX: self.events_prefix,
            ENV_AUDIT_KMS_KEY: self.kms_key_arn,
        }
        if alerts:
            environment[ENV_ALERT_TOPIC] = self.alert_topic_arn
        return environment

    def writer_statements(self, *, alerts: bool = True) -> pulumi.Output[list[dict[str, Any]]]:
        """The IAM statements such a function needs: put under the events prefix, the key, the topic."""
        topic: pulumi.Output[str] | None = self.alert_topic_arn if alerts else None
        return pulumi.Output.all(self.bucket_arn, self.kms_key_arn, topic).apply(
            lambda p: policies.audit_writer_statements(
                bucket_arn=p[0], prefix=EVENTS_PREFIX, kms_key_arn=p[1], topic_arn=p[2]
            )
        )


def _lifecycle_rule(config: AuditTrailConfig) -> aws.s3.BucketLifecycleConfigurationRuleArgsDict:
    """Move records to cold storage; expire them only if asked, and never before retention ends."""
    rule: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
        "id": "audit-cold-storage",
        "status": "Enabled",
        "filter": {"prefix": ""},
        "transitions": [
            {"days": config.cold_storage_days, "storage_class": config.cold_storage_class},
            {"days": config.deep_archive_days, "storage_class": "DEEP_ARCHIVE"},
        ],
        "noncurrent_version_transitions": [
            {"noncurrent_days": config.cold_storage_days, "storage_class": config.cold_storage_class},
            {"noncurrent_days": config.deep_archive_days, "storage_class": "DEEP_ARCHIVE"},
        ],
        "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
    }
    if config.expire_after_days is not None:
        rule["expiration"] = {"days": config.expire_after_days}
        rule["noncurrent_version_expiration"] = {"noncurrent_days": config.expire_after_days}
    return rule


def _pattern_json(alert_class: str) -> Callable[[list[Any]], str]:
    """The apply callback rendering one class's pattern from (bucket name, watched key ARN)."""

    def render(values: list[Any]) -> str:
        patterns = policies.alert_event_patterns(bucket_name=values[0], kms_key_arn=values[1])
        return json.dumps(patterns[alert_class], sort_keys=True)

    return render
