"""Copy the audit bucket's logs and events to a directory, verifying every file; resumable.

What is copied: the CloudTrail logs (``[<prefix>/]AWSLogs/``) and the break-glass events (the
deployment's events prefix), into the same relative paths, which is the layout
``breakglass audit query --local`` and ``audit report --local`` read.

Each file is downloaded to a temporary name next to its place, checked, then renamed, so a file
under its real name is always a verified copy. The check is the size S3 listed plus the strongest
full-object check S3 reports: a checksum (``ChecksumMode=ENABLED``; the events are written with
SHA-256) or else the ETag when it is an MD5; ``verified_by`` says which (``size`` when S3 offered
neither). A manifest (``.breakglass-sync.json``) remembers each verified file's ETag and the
SHA-256 of the local copy, so a rerun skips files still present and unchanged and fetches only what
is missing, changed or failed before. A failure never stops the others: the result lists every file
that failed and why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError

from breakglass.cli.checksums import expected_from, file_digest, new_digest
from breakglass.cli.errors import BadInput, CliError

MANIFEST: Final = ".breakglass-sync.json"
MANIFEST_VERSION: Final = 1
CHUNK: Final = 1 << 20

Status = Literal["downloaded", "skipped", "failed"]


@dataclass(frozen=True)
class RemoteObject:
    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class FileResult:
    key: str
    status: Status
    size: int
    verified_by: str | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "size": self.size,
            "verified_by": self.verified_by,
            "reason": self.reason,
        }


@dataclass
class SyncResult:
    bucket: str
    directory: Path
    prefixes: tuple[str, ...]
    files: list[FileResult] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    interrupted: bool = False

    def of(self, status: Status) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def ok(self) -> bool:
        return not self.of("failed") and not self.not_attempted and not self.interrupted

    def as_json(self) -> dict[str, Any]:
        verified: dict[str, int] = {}
        for f in self.files:
            if f.status != "failed" and f.verified_by:
                verified[f.verified_by] = verified.get(f.verified_by, 0) + 1
        return {
            "bucket": self.bucket,
            "directory": str(self.directory),
            "prefixes": list(self.prefixes),
            "complete": self.ok,
            "interrupted": self.interrupted,
            "downloaded": len(self.of("downloaded")),
            "skipped": len(self.of("skipped")),
            "failed": [{"key": f.key, "reason": f.reason} for f in self.of("failed")],
            "not_attempted": list(self.not_attempted),
            "verified_by": dict(sorted(verified.items())),
            "bytes_downloaded": sum(f.size for f in self.of("downloaded")),
        }


# -- keys, days and local paths -------------------------------------------------------------------

_CLOUDTRAIL_DAY = re.compile(r"/CloudTrail(?:-Digest|-Insight)?/[^/]+/(\d{4})/(\d{2})/(\d{2})/")
_EVENTS_DAY = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})/")


def key_day(key: str) -> str | None:
    """``YYYY-MM-DD`` of a CloudTrail log or event key; None for keys without a day (snapshots)."""
    if match := _CLOUDTRAIL_DAY.search(key):
        return "-".join(match.groups())
    if match := _EVENTS_DAY.search(key):
        return match.group(1)
    return None


def day_filter(since: str | None, until: str | None) -> Callable[[str], bool] | None:
    """Keep keys whose day is in [since, until] (inclusive); keys without a day are always kept."""
    if since is None and until is None:
        return None

    def keep(key: str) -> bool:
        day = key_day(key)
        if day is None:
            return True
        return (since is None or day >= since) and (until is None or day <= until)

    return keep


def local_path(root: Path, key: str) -> Path:
    """Where ``key`` goes under ``root``; a key that would land outside it is refused."""
    parts = key.split("/")
    if key.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in key or "\0" in key:
        raise ValueError("unsafe key: it would not map to a file inside the directory")
    return root.joinpath(*parts)


def list_objects(
    s3: Any, bucket: str, prefixes: Iterable[str], keep: Callable[[str], bool] | None = None
) -> Iterator[RemoteObject]:
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if key.endswith("/"):
                    continue  # a "folder" marker, not a file
                if keep is None or keep(key):
                    yield RemoteObject(key, int(item.get("Size", 0)), str(item.get("ETag", "")))


def _common_prefixes(s3: Any, bucket: str, prefix: str) -> list[str]:
    paginator = s3.get_paginator("list_objects_v2")
    found: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        found += [str(p["Prefix"]) for p in page.get("CommonPrefixes", [])]
    return found


def cloudtrail_day_prefixes(s3: Any, bucket: str, base: str, first: date, last: date) -> list[str]:
    """The ``.../CloudTrail[-Digest]/<region>/YYYY/MM/DD/`` prefixes of the days first..last.

    Listing a trail's whole ``AWSLogs/`` to keep a few days would read every key of every day;
    walking account, (organization,) region and day folders lists only what is needed.
    """
    accounts: list[str] = []
    for entry in _common_prefixes(s3, bucket, base):
        name = entry[len(base) :].strip("/")
        if name.startswith("o-"):  # an organization trail: AWSLogs/<org id>/<account>/
            accounts += _common_prefixes(s3, bucket, entry)
        else:
            accounts.append(entry)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    prefixes: list[str] = []
    for account in accounts:
        for kind in ("CloudTrail/", "CloudTrail-Digest/"):
            for region in _common_prefixes(s3, bucket, account + kind):
                prefixes += [f"{region}{day:%Y/%m/%d}/" for day in days]
    return prefixes


# -- the manifest -----------------------------------------------------------------------------------


@dataclass
class Manifest:
    path: Path
    bucket: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path, bucket: str) -> Manifest:
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, bucket)
        except (OSError, ValueError):
            return cls(path, bucket)  # unreadable: start over, every file will be re-checked
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            return cls(path, bucket)
        if data.get("bucket") != bucket:
            raise BadInput(
                f"{directory} holds a copy of bucket {data.get('bucket')!r}, not {bucket!r}",
                hint="sync each bucket into its own directory",
            )
        files = data.get("files")
        return cls(path, bucket, dict(files) if isinstance(files, dict) else {})

    def save(self) -> None:
        document = {
            "version": MANIFEST_VERSION,
            "bucket": self.bucket,
            "files": dict(sorted(self.files.items())),
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)


# -- one file ------------------------------------------------------------------------------------


class _Failed(Exception):
    pass


def _client_reason(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")


def _check_present(
    s3: Any, bucket: str, obj: RemoteObject, path: Path, known: Mapping[str, Any] | None
) -> FileResult | None:
    """A skip result if ``path`` already is a verified copy of ``obj``; None to download it."""
    if not path.is_file() or path.stat().st_size != obj.size:
        return None
    if known and known.get("etag") == obj.etag and known.get("size") == obj.size:
        if file_digest(path, "SHA256").hex() == known.get("sha256"):
            return FileResult(
                obj.key, "skipped", obj.size, known.get("verified_by"), "unchanged since verified"
            )
        return None
    # Present but not (or differently) recorded, e.g. copied by `aws s3 sync`: check it against S3.
    head = s3.head_object(Bucket=bucket, Key=obj.key, ChecksumMode="ENABLED")
    if str(head.get("ETag", obj.etag)) != obj.etag:
        return None
    expected = expected_from(head, obj.etag)
    if expected is None:
        return FileResult(obj.key, "skipped", obj.size, "size", "present; S3 reports no checksum")
    if expected.matches(file_digest(path, expected.algorithm)):
        return FileResult(obj.key, "skipped", obj.size, expected.label, "present and matches S3")
    return None


def _download(s3: Any, bucket: str, obj: RemoteObject, path: Path) -> tuple[FileResult, str]:
    """Download ``obj`` to ``path`` through a temporary file; return the result and local SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    try:
        request: dict[str, Any] = {"Bucket": bucket, "Key": obj.key, "ChecksumMode": "ENABLED"}
        if obj.etag:
            request["IfMatch"] = obj.etag  # the object we listed, not a newer version
        response = s3.get_object(**request)
        expected = expected_from(response, obj.etag)
        sha256 = new_digest("SHA256")
        other = new_digest(expected.algorithm) if expected and expected.algorithm != "SHA256" else None
        size = 0
        body = response["Body"]
        with temporary.open("wb") as handle:
            while block := body.read(CHUNK):
                handle.write(block)
                sha256.update(block)
                if other is not None:
                    other.update(block)
                size += len(block)
        if size != obj.size:
            raise _Failed(f"size mismatch: S3 listed {obj.size} bytes, received {size}")
        if expected is not None:
            digest = sha256.digest() if other is None else other.digest()
            if not expected.matches(digest):
                raise _Failed(
                    f"checksum mismatch: S3 reports {expected.label} {expected.value}, the file does not match"
                )
        os.replace(temporary, path)
        verified_by = expected.label if expected else "size"
        return FileResult(obj.key, "downloaded", obj.size, verified_by), sha256.digest().hex()
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _one(
    s3: Any, bucket: str, root: Path, obj: RemoteObject, known: Mapping[str, Any] | None
) -> tuple[FileResult, dict[str, Any] | None]:
    try:
        path = local_path(root, obj.key)
    except ValueError as exc:
        return FileResult(obj.key, "failed", obj.size, reason=str(exc)), None
    try:
        present = _check_present(s3, bucket, obj, path, known)
        if present is not None:
            entry = dict(known) if known and present.reason == "unchanged since verified" else None
            if entry is None:
                entry = {
                    "size": obj.size,
                    "etag": obj.etag,
                    "verified_by": present.verified_by,
                    "sha256": file_digest(path, "SHA256").hex(),
                }
            return present, entry
        result, sha256 = _download(s3, bucket, obj, path)
        return result, {
            "size": obj.size,
            "etag": obj.etag,
            "verified_by": result.verified_by,
            "sha256": sha256,
        }
    except _Failed as exc:
        return FileResult(obj.key, "failed", obj.size, reason=str(exc)), None
    except ClientError as exc:
        return FileResult(obj.key, "failed", obj.size, reason=_client_reason(exc)), None
    except BotoCoreError as exc:  # connection reset, checksum error raised while reading, ...
        return FileResult(obj.key, "failed", obj.size, reason=f"{type(exc).__name__}: {exc}"), None
    except OSError as exc:
        return FileResult(
            obj.key, "failed", obj.size, reason=f"cannot write {path}: {exc.strerror or exc}"
        ), None


# -- the whole copy ----------------------------------------------------------------------------------

Progress = Callable[[FileResult, int, int], None]


def sync_bucket(
    s3: Any,
    bucket: str,
    directory: Path,
    prefixes: Iterable[str],
    *,
    keep: Callable[[str], bool] | None = None,
    workers: int = 8,
    on_listed: Callable[[str, int], None] | None = None,
    on_file: Progress | None = None,
) -> SyncResult:
    """Copy every object under ``prefixes`` (that ``keep`` accepts) into ``directory``."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BadInput(f"{directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create {directory}: {exc.strerror or exc}") from None
    if not os.access(directory, os.W_OK):
        raise BadInput(f"{directory} is not writable")
    prefix_list = tuple(dict.fromkeys(prefixes))
    objects: list[RemoteObject] = []
    for prefix in prefix_list:
        try:
            found = list(list_objects(s3, bucket, [prefix], keep))
        except ClientError as exc:
            raise CliError(
                f"cannot list s3://{bucket}/{prefix}: {_client_reason(exc)}",
                hint="an auditor needs s3:ListBucket on the audit bucket (and kms:Decrypt on its key to read)",
            ) from None
        if on_listed is not None:
            on_listed(prefix, len(found))
        objects.extend(found)
    manifest = Manifest.load(directory, bucket)
    result = SyncResult(bucket, directory, prefix_list)
    lock = threading.Lock()
    done = 0

    def record(outcome: tuple[FileResult, dict[str, Any] | None]) -> None:
        nonlocal done
        file_result, entry = outcome
        with lock:
            done += 1
            result.files.append(file_result)
            if entry is not None:
                manifest.files[file_result.key] = entry
            else:
                manifest.files.pop(file_result.key, None)
            if on_file is not None:
                on_file(file_result, done, len(objects))

    executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="breakglass-sync")
    futures: dict[Future[tuple[FileResult, dict[str, Any] | None]], RemoteObject] = {}
    recorded: set[str] = set()

    def collect(future: Future[tuple[FileResult, dict[str, Any] | None]]) -> None:
        outcome = future.result()
        recorded.add(outcome[0].key)
        record(outcome)

    try:
        for obj in objects:
            futures[executor.submit(_one, s3, bucket, directory, obj, manifest.files.get(obj.key))] = obj
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                collect(future)
    except KeyboardInterrupt:
        # Ctrl-C: let the downloads under way finish (each is one small file), start no new one,
        # and report the rest as not attempted; the manifest keeps what did arrive.
        result.interrupted = True
        executor.shutdown(wait=True, cancel_futures=True)
        for future, obj in futures.items():
            if obj.key in recorded:
                continue
            if future.cancelled() or future.exception() is not None:
                result.not_attempted.append(obj.key)
            else:
                collect(future)
    finally:
        executor.shutdown(wait=True)
        manifest.save()
    result.files.sort(key=lambda f: f.key)
    result.not_attempted.sort()
    return result
