"""What the CLI tests share: a deployment published to (moto's) SSM, an audit bucket holding the
fixture incidents, and a runner that keeps tables on one line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fixtures.audit.scenario import ACCOUNT_ID, AUDIT_BUCKET, EMERGENCY_ROLE_ARN
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.contracts import EVENTS_PREFIX, ssm_parameter_name

runner = CliRunner()
WIDE = {"COLUMNS": "250"}  # rich sizes tables to the terminal; keep rows on one line
REGION = "us-east-1"

TIERS: dict[str, Any] = {
    "halt": {
        "role_arn": f"arn:aws:iam::{ACCOUNT_ID}:role/breakglass-emergency-halt",
        "max_session_seconds": 900,
        "max_window_seconds": 1800,
        "require_mfa": False,
        "quorum": 0,
    },
    "ops": {
        "role_arn": EMERGENCY_ROLE_ARN,
        "max_session_seconds": 3600,
        "max_window_seconds": 3600,
        "require_mfa": True,
        "quorum": 1,
    },
    "admin": {
        "role_arn": f"arn:aws:iam::{ACCOUNT_ID}:role/breakglass-emergency-admin",
        "max_session_seconds": 3600,
        "max_window_seconds": 3600,
        "require_mfa": True,
        "quorum": 2,
        "review_gate": True,
        "boundary": "arn:aws:iam::111122223333:policy/breakglass-boundary",
    },
}
HALT_TARGETS = [{"id": "endpoint/fraud-model", "modes": ["deny-invoke", "delete-endpoint"]}]


def deployment_parameters(name: str, **overrides: Any) -> dict[str, str]:
    values: dict[str, Any] = {
        "version": "0.1.0",
        "region": REGION,
        "access_api_url": f"https://abc123.execute-api.{REGION}.amazonaws.com",
        "approval_url": f"https://def456.execute-api.{REGION}.amazonaws.com",
        "state_machine_arn": f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}-approval",
        "audit_bucket": AUDIT_BUCKET,
        "audit_events_prefix": EVENTS_PREFIX,
        "athena_workgroup": f"{name}-audit",
        "glue_database": "breakglass_audit",
        "alert_topic_arn": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}-alerts",
        "tiers": TIERS,
        "halt_targets": HALT_TARGETS,
    }
    values.update(overrides)
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in values.items()
        if value is not None
    }


def publish(ssm: Any, name: str, **overrides: Any) -> None:
    """Publish deployment ``name`` as the BreakGlass component does (None drops a key)."""
    for key, value in deployment_parameters(name, **overrides).items():
        ssm.put_parameter(Name=ssm_parameter_name(name, key), Value=value, Type="String", Overwrite=True)


def upload_copy(s3: Any, bucket: str, local: Path, *, object_lock: bool = True) -> dict[str, bytes]:
    """Create ``bucket`` and upload the local copy as CloudTrail and the writer do; return key -> bytes."""
    if object_lock:
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    else:
        s3.create_bucket(Bucket=bucket)
    uploaded: dict[str, bytes] = {}
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        key = path.relative_to(local).as_posix()
        body = path.read_bytes()
        extra: Mapping[str, Any] = (
            {"ChecksumAlgorithm": "SHA256", "ServerSideEncryption": "aws:kms"}
            if key.startswith(EVENTS_PREFIX)
            else {"ServerSideEncryption": "aws:kms"}
        )
        s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        uploaded[key] = body
    return uploaded


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def parses(argv: list[str]) -> None:
    """Parse ``argv`` (after ``breakglass``) down to its leaf command without running anything."""
    import typer.main

    command: Any = typer.main.get_command(app)
    ctx = command.make_context("breakglass", list(argv), resilient_parsing=False)
    while getattr(command, "commands", None):
        args = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
        name, sub, rest = command.resolve_command(ctx, args)
        assert sub is not None, f"no command {name!r} in {argv}"
        command = sub
        ctx = command.make_context(name, rest, parent=ctx)
