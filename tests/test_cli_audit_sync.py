"""`breakglass audit sync DIR`: a verified, resumable copy of the audit bucket (moto S3)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from cli_world import REGION, files_under, publish, runner, upload_copy
from fixtures.audit.scenario import AUDIT_BUCKET, build_local_bucket
from moto import mock_aws

from breakglass.cli import checksums, context
from breakglass.cli.main import app
from breakglass.cli.sync import MANIFEST, key_day, local_path
from breakglass.local.athena import run_named_query


@dataclass
class Bucket:
    s3: Any
    uploaded: dict[str, bytes]
    gets: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)
    hooks: list[tuple[str, Callable[..., Any]]] = field(default_factory=list)


@pytest.fixture(scope="module")
def fixture_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_local_bucket(tmp_path_factory.mktemp("fixture-copy"))


@pytest.fixture
def bucket(fixture_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    with mock_aws():
        publish(boto3.client("ssm", region_name=REGION), "prod")
        s3 = boto3.client("s3", region_name=REGION)
        world = Bucket(s3, upload_copy(s3, AUDIT_BUCKET, fixture_copy))
        original = context.make_client

        def instrumented(*args: Any, **kwargs: Any) -> Any:
            client = original(*args, **kwargs)
            if client.meta.service_model.service_name == "s3":
                client.meta.events.register("before-parameter-build.s3.GetObject", remember(world.gets))
                client.meta.events.register("before-parameter-build.s3.HeadObject", remember(world.heads))
                for event, handler in world.hooks:
                    client.meta.events.register(event, handler)
            return client

        monkeypatch.setattr(context, "make_client", instrumented)
        yield world


def remember(calls: list[str]) -> Callable[..., None]:
    """Record each call's key, and keep it in the call's context for the before-call hooks."""

    def handler(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        calls.append(params["Key"])
        context["test_key"] = params["Key"]

    return handler


def sync(directory: Path, *args: str) -> Any:
    return runner.invoke(app, ["-d", "prod", "audit", "sync", str(directory), *args])


class _Http:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


def deny(key: str) -> Callable[..., Any]:
    """A before-call hook: S3 answers AccessDenied for ``key`` (as for an object under a KMS key you lack)."""

    def handler(context: dict[str, Any], **_: Any) -> Any:
        if context.get("test_key") == key:
            return _Http(403), {"Error": {"Code": "AccessDenied", "Message": "kms:Decrypt denied"}}
        return None

    return handler


def corrupt(key: str) -> Callable[..., Any]:
    """An after-call hook: the bytes of ``key`` arrive altered (same length), as over a bad link."""

    def handler(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("test_key") == key and "Body" in parsed:
            body = parsed["Body"].read()
            altered = bytes([body[0] ^ 0xFF]) + body[1:]
            parsed["Body"] = StreamingBody(io.BytesIO(altered), len(altered))

    return handler


def test_sync_copies_logs_and_events_byte_for_byte_and_says_how_each_was_verified(
    bucket: Bucket, tmp_path: Path, fixture_copy: Path
) -> None:
    result = sync(tmp_path / "copy", "--json")
    assert result.exit_code == 0, result.output
    assert files_under(tmp_path / "copy") == bucket.uploaded
    report = json.loads(result.stdout)
    assert report["complete"] is True and report["failed"] == [] and report["not_attempted"] == []
    assert report["downloaded"] == len(bucket.uploaded) and report["skipped"] == 0
    events = sum(1 for k in bucket.uploaded if k.startswith("breakglass-events/"))
    # The events carry the SHA-256 checksum they were written with; the logs the CRC32 boto3 added.
    assert report["verified_by"] == {"crc32": len(bucket.uploaded) - events, "sha256": events}
    assert "listed 9 object(s) under AWSLogs/" in result.stderr
    # The copy answers the named queries exactly as the original does.
    for name in ("approvals", "halts", "emergency_sessions", "access_outside_grants"):
        assert run_named_query(name, tmp_path / "copy").rows == run_named_query(name, fixture_copy).rows


def test_a_second_sync_downloads_nothing_that_is_already_verified(bucket: Bucket, tmp_path: Path) -> None:
    assert sync(tmp_path / "copy").exit_code == 0
    bucket.gets.clear()
    again = sync(tmp_path / "copy", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["skipped"] == len(bucket.uploaded)
    assert bucket.gets == [] and bucket.heads == []


def test_a_partial_copy_is_reported_by_file_and_the_rerun_fetches_only_those(
    bucket: Bucket, tmp_path: Path
) -> None:
    log = "AWSLogs/111122223333/CloudTrail/us-east-1/2025/03/15/111122223333_CloudTrail_us-east-1_20250315T0315Z_dGFtcGVyRmlsZTAx.json.gz"
    event = next(
        k for k in bucket.uploaded if k.startswith("breakglass-events/dt=2025-03-14/") and "approval" in k
    )
    bucket.hooks += [("before-call.s3.GetObject", deny(log)), ("after-call.s3.GetObject", corrupt(event))]
    result = sync(tmp_path / "copy")
    assert result.exit_code == 1
    assert "Aborted" not in result.output and "Traceback" not in result.output
    assert f"failed: {log}: AccessDenied: kms:Decrypt denied" in result.stderr
    assert f"failed: {event}: " in result.stderr and "checksum" in result.stderr.lower()
    assert "files not copied" in result.stdout
    assert (
        "error: copy incomplete: 2 of" in result.stderr
        and "rerun the same command to resume" in result.stderr
    )
    copied = files_under(tmp_path / "copy")
    assert log not in copied and event not in copied  # no half-written or unverified file under its name
    assert not list((tmp_path / "copy").rglob("*.part"))
    assert len(copied) == len(bucket.uploaded) - 2

    bucket.hooks.clear()
    bucket.gets.clear()
    rerun = sync(tmp_path / "copy", "--json")
    assert rerun.exit_code == 0, rerun.output
    assert sorted(bucket.gets) == sorted([log, event])
    assert files_under(tmp_path / "copy") == bucket.uploaded


def test_the_json_report_of_a_partial_copy_lists_each_failure(bucket: Bucket, tmp_path: Path) -> None:
    log = next(k for k in bucket.uploaded if k.startswith("AWSLogs/"))
    bucket.hooks.append(("before-call.s3.GetObject", deny(log)))
    result = sync(tmp_path / "copy", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["complete"] is False
    assert report["failed"] == [{"key": log, "reason": "AccessDenied: kms:Decrypt denied"}]


def test_a_file_changed_on_disk_after_the_sync_is_fetched_again(bucket: Bucket, tmp_path: Path) -> None:
    assert sync(tmp_path / "copy").exit_code == 0
    key = next(k for k in bucket.uploaded if k.startswith("breakglass-events/"))
    target = tmp_path / "copy" / key
    target.write_bytes(target.read_bytes()[:-1] + b" ")  # same size, other content
    bucket.gets.clear()
    assert sync(tmp_path / "copy").exit_code == 0
    assert bucket.gets == [key]
    assert target.read_bytes() == bucket.uploaded[key]


def test_files_copied_another_way_are_checked_against_s3_instead_of_downloaded(
    bucket: Bucket, tmp_path: Path, fixture_copy: Path
) -> None:
    import shutil

    shutil.copytree(fixture_copy, tmp_path / "copy")  # e.g. an earlier `aws s3 sync`
    result = sync(tmp_path / "copy", "--json")
    assert result.exit_code == 0, result.output
    assert bucket.gets == []
    assert len(bucket.heads) == len(bucket.uploaded)
    assert json.loads(result.stdout)["skipped"] == len(bucket.uploaded)
    assert (tmp_path / "copy" / MANIFEST).is_file()


def test_since_and_until_copy_only_those_days_listing_only_their_folders(
    bucket: Bucket, tmp_path: Path
) -> None:
    result = sync(tmp_path / "copy", "--since", "2025-03-15", "--until", "2025-03-15", "--json")
    assert result.exit_code == 0, result.output
    copied = files_under(tmp_path / "copy")
    assert copied and all(key_day(k) in (None, "2025-03-15") for k in copied)
    assert {k for k in bucket.uploaded if key_day(k) == "2025-03-15"} == set(copied)
    assert "listed 3 object(s) under AWSLogs/111122223333/CloudTrail/us-east-1/2025/03/15/" in result.stderr
    assert "under AWSLogs/ " not in result.stderr  # never the whole trail


def test_keys_that_would_escape_the_directory_are_refused(bucket: Bucket, tmp_path: Path) -> None:
    bucket.s3.put_object(Bucket=AUDIT_BUCKET, Key="AWSLogs/../../escaped.json", Body=b"{}")
    result = sync(tmp_path / "copy", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["failed"] == [
        {
            "key": "AWSLogs/../../escaped.json",
            "reason": "unsafe key: it would not map to a file inside the directory",
        }
    ]
    assert not (tmp_path / "escaped.json").exists()
    with pytest.raises(ValueError):
        local_path(tmp_path, "/etc/passwd")


def test_an_interrupted_sync_reports_what_was_not_copied(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from breakglass.cli import sync as sync_module

    real = sync_module._one
    calls = 0

    def interrupt_third(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(sync_module, "_one", interrupt_third)
    result = runner.invoke(
        app, ["-d", "prod", "audit", "sync", str(tmp_path / "copy"), "--workers", "1", "--json"]
    )
    assert result.exit_code == 1
    assert "Aborted" not in result.output
    report = json.loads(result.stdout)
    # The downloads under way finish; the one interrupted and those not started are listed.
    assert report["interrupted"] is True and report["downloaded"] >= 2
    assert report["downloaded"] + len(report["not_attempted"]) == len(bucket.uploaded)
    assert "error: copy interrupted" in result.stderr
    monkeypatch.setattr(sync_module, "_one", real)
    bucket.gets.clear()
    assert sync(tmp_path / "copy").exit_code == 0
    assert sorted(bucket.gets) == report["not_attempted"]


def test_a_bucket_that_cannot_be_listed_is_one_line_with_what_to_ask_for(
    bucket: Bucket, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["-d", "prod", "audit", "sync", str(tmp_path / "copy"), "--bucket", "no-such-bucket"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot list s3://no-such-bucket/AWSLogs/: NoSuchBucket")
    assert "s3:ListBucket" in result.stderr


def test_a_copy_of_another_bucket_is_not_mixed_into(bucket: Bucket, tmp_path: Path) -> None:
    assert sync(tmp_path / "copy").exit_code == 0
    bucket.s3.create_bucket(Bucket="other-audit-bucket")
    result = runner.invoke(
        app, ["-d", "prod", "audit", "sync", str(tmp_path / "copy"), "--bucket", "other-audit-bucket"]
    )
    assert result.exit_code == 2
    assert f"holds a copy of bucket '{AUDIT_BUCKET}', not 'other-audit-bucket'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "March"], "--since 'March' is not a date"),
        (
            ["--since", "2025-03-15", "--until", "2025-03-01"],
            "--until 2025-03-01 is before --since 2025-03-15",
        ),
    ],
)
def test_bad_dates_are_bad_usage(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["audit", "sync", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_file_where_the_directory_should_be_is_bad_usage(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["audit", "sync", str(tmp_path / "file")])
    assert result.exit_code == 2
    assert "exists and is not a directory" in result.stderr


# -- the checks themselves ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "check"),
    [("CRC32", 0xCBF43926), ("CRC32C", 0xE3069283), ("CRC64NVME", 0xAE8B14860A799888)],
)
def test_crcs_match_their_published_check_values(algorithm: str, check: int) -> None:
    digest = checksums.new_digest(algorithm)
    digest.update(b"12345")
    digest.update(b"6789")
    assert int.from_bytes(digest.digest(), "big") == check


def test_the_strongest_full_object_check_is_used_and_composite_ones_are_not() -> None:
    both = {"ChecksumCRC32": "AAAAAA==", "ChecksumSHA256": "c2hh", "ETag": '"' + "a" * 32 + '"'}
    assert checksums.expected_from(both) == checksums.Expected("SHA256", "c2hh")
    composite = {"ChecksumSHA256": "c2hh-3", "ETag": '"' + "b" * 32 + '"'}
    assert checksums.expected_from(composite) == checksums.Expected("MD5", "b" * 32)
    kms = {"ETag": '"' + "c" * 32 + '"', "ServerSideEncryption": "aws:kms"}
    assert checksums.expected_from(kms) is None  # a KMS object's ETag is not its MD5
    multipart = {"ETag": '"' + "d" * 32 + '-2"'}
    assert checksums.expected_from(multipart) is None
