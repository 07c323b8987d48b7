"""The AI kill switch: halt and resume declared targets, concurrently, every step audited.

``halt`` and ``resume`` take their boto3 clients as arguments (see :class:`HaltClients`), fan out
over the targets on a bounded thread pool, retry throttled calls with exponential backoff and full
jitter, and return one result per target plus an overall status. A target's result lists every
action as soon as it is done, then the error that stopped the rest: a partial success (an
endpoint recreated whose resume marker failed, one invoker role of two denied, an SCP created but
not attached) is never reported as "nothing happened", and the overall status is ``failed`` only
when nothing changed anywhere. Each target's audit event is written before its result is reported;
a failed audit write raises :class:`HaltAuditError` (after every target has been acted on, so one
bad write never leaves other models running), which carries the full result.

Modes (see ``breakglass.policies.halt``):

- ``deny-invoke``: batched per invoker role: one halt reads the role's ``breakglass-halt-*``
  pages once and adds the targets not yet denied there in as few pages as fit (see
  :func:`breakglass.policies.halt.deny_pages`), one PutRolePolicy per page, roles concurrently.
  Each statement's Sid names its target, so resume removes exactly the resumed targets' statements
  (rewriting a page still-halted targets share, deleting a page left empty).
- ``delete-endpoint``: snapshot the endpoint into the audit bucket, then DeleteEndpoint; resume
  recreates it from the latest snapshot and waits until it is InService.
- ``scp``: batched too: the organization's ``breakglass-halt-*`` SCPs are listed and read once;
  targets sharing the same accounts / OUs / roots go into one SCP (as few as fit), attached with
  one call per account; resume rewrites an SCP still-halted targets share and detaches an emptied
  one. A target already denied everywhere is ``noop`` and nothing is written for it.

Every target named is acted on once and gets one result and one audit event, whatever the mode.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from botocore.exceptions import ClientError

from breakglass.lambdas.audit.events import AuditEvent, AuditWriteError, AuditWriter
from breakglass.lambdas.runtime import get_logger, log_fields
from breakglass.policies.halt import (
    HALT_POLICY_PREFIX,
    HALT_TAG_KEY,
    RESOURCE_NAME,
    SCP_PAGE_MAX_CHARS,
    HaltTarget,
    deny_invoke_statements,
    deny_pages,
    deny_sid_owner,
    scp_document,
    snapshot_prefix,
)

OUTCOMES: Final = ("halted", "resumed", "noop", "error")
THROTTLING_CODES: Final = frozenset(
    # SlowDown is S3's throttling answer (snapshot writes and reads).
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "Throttling",
        "RequestLimitExceeded",
        "SlowDown",
        "429",
    }
)
DEFAULT_MAX_WORKERS: Final = 16
SCP_TYPE: Final = "SERVICE_CONTROL_POLICY"

logger = get_logger("breakglass.halt")


class HaltAuditError(AuditWriteError):
    """Targets were acted on but not every audit event was stored or alerted.

    The call fails (a missing record must never read as success), and it still says what happened:
    ``result`` is the full result (every target's actions, outcome and error, plus its
    ``audit_error``), and the message is that result as JSON with the summary under ``"error"``,
    so a caller that only sees the Lambda's ``errorMessage`` (the access API) can parse it.
    """

    def __init__(self, summary: str, result: Mapping[str, Any]) -> None:
        self.summary = summary
        self.result = dict(result)
        super().__init__(json.dumps({"error": summary, **self.result}, sort_keys=True, default=str))


class TargetMissing(RuntimeError):
    """The target (endpoint, role, account) does not exist: a per-target error, not a crash."""


def is_throttling(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(error.get("Code", "")) in THROTTLING_CODES or status == 429


def is_transient(exc: BaseException) -> bool:
    """Throttled, or a server-side failure (HTTP 5xx): what botocore itself would retry. Every call
    the service retries is idempotent (policy puts and deletes, endpoint deletes, audit puts)."""
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return is_throttling(exc) or (isinstance(status, int) and status >= 500)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries throttled and 5xx-failed calls: exponential backoff, capped, with full jitter.

    Handlers build their clients with botocore's own retries off, so this is the one retry policy
    and its bound is the real bound.
    """

    max_attempts: int = 8
    base_delay: float = 0.1
    max_delay: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return self.jitter() * min(self.max_delay, self.base_delay * 2 ** (attempt - 1))

    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        attempt = 1
        while True:
            try:
                return fn(**kwargs)
            except ClientError as exc:
                if not is_transient(exc) or attempt >= self.max_attempts:
                    raise
                wait = self.delay(attempt)
                logger.info(
                    "throttled or failed server-side; retrying",
                    extra=log_fields(operation=getattr(fn, "__name__", str(fn)), attempt=attempt, wait=wait),
                )
                self.sleep(wait)
                attempt += 1


@dataclass(frozen=True)
class HaltClients:
    """The boto3 clients the halt service uses, and where it runs (for ARNs in policies)."""

    iam: Any
    sagemaker: Any
    s3: Any
    account_id: str
    region: str
    partition: str = "aws"
    organizations: Any = None


@dataclass(frozen=True)
class WaitSettings:
    """How resume waits for a recreated endpoint (injectable so tests do not sleep)."""

    poll_interval: float = 15.0
    max_wait: float = 780.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


@dataclass
class TargetResult:
    """What happened to one target: its actions in order (``details["actions"]``), whether any of
    them changed something, then the error that stopped the rest, if any. An ``error`` outcome with
    ``changed`` true is a partial success (e.g. an endpoint recreated whose resume marker failed)."""

    target: str
    mode: str
    outcome: str
    error: str | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    audit_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        result = {
            "target": self.target,
            "mode": self.mode,
            "outcome": self.outcome,
            "changed": self.changed,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "details": self.details,
        }
        if self.audit_error is not None:
            result["audit_error"] = self.audit_error
        return result


def overall_status(results: Sequence[TargetResult]) -> str:
    """``ok`` when no target had an error; ``failed`` when every target had one and nothing was
    changed anywhere; else ``partial`` (never ``failed`` while something was done)."""
    errors = sum(1 for r in results if r.outcome == "error")
    if errors == 0:
        return "ok"
    if errors == len(results) and not any(r.changed for r in results):
        return "failed"
    return "partial"


@dataclass
class _Context:
    clients: HaltClients
    writer: AuditWriter
    actor: str
    reason: str
    request_id: str | None
    trigger: Mapping[str, Any] | None
    retry: RetryPolicy
    wait: WaitSettings


class _Step:
    """What happened to one target: a list of actions and an outcome decided from them."""

    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def did(self, action: str, **fields: Any) -> dict[str, Any]:
        """Record an action as soon as it is done; the returned entry may be completed later."""
        entry = {"action": action, **fields}
        self.actions.append(entry)
        return entry

    @property
    def changed(self) -> bool:
        return any(a.get("changed") for a in self.actions)

    def failed(self, message: str) -> None:
        self.errors.append(message)

    def outcome(self, done: str) -> str:
        if self.errors:
            return "error"
        return done if any(a.get("changed") for a in self.actions) else "noop"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def _explain(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return f"{_code(exc)}: {_message(exc)}"
    return f"{type(exc).__name__}: {exc}"


# ----- deny-invoke ----------------------------------------------------------------------------


@dataclass
class _RoleDone:
    """What one invoker role's batch did, by target id: its actions, and its error if any."""

    actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement", [])
    return [dict(found)] if isinstance(found, Mapping) else [dict(s) for s in found]


def _owner(statement: Mapping[str, Any], page: str) -> str | None:
    """The target a statement of page ``page`` denies. A page written before batching holds one
    target, ``breakglass-halt-<id>``, with Sids that name none: its statements are that target's."""
    owner = deny_sid_owner(statement.get("Sid"))
    legacy = page[len(HALT_POLICY_PREFIX) :]
    if owner is None and re.fullmatch(RESOURCE_NAME, legacy):
        return legacy
    return owner


def _read_pages(ctx: _Context, role: str) -> dict[str, list[dict[str, Any]]]:
    """The statements of every ``breakglass-halt-*`` inline policy of ``role``, by policy name.

    Raises :class:`TargetMissing` when the role does not exist (ListRolePolicies says so without
    ambiguity, unlike GetRolePolicy's NoSuchEntity)."""
    iam = ctx.clients.iam
    names: list[str] = []
    marker: str | None = None
    while True:
        params: dict[str, Any] = {"RoleName": role}
        if marker:
            params["Marker"] = marker
        try:
            listed = ctx.retry.call(iam.list_role_policies, **params)
        except ClientError as exc:
            if _code(exc) == "NoSuchEntity":
                raise TargetMissing(f"invoker role {role} does not exist") from exc
            raise
        names.extend(n for n in listed.get("PolicyNames", []) if n.startswith(HALT_POLICY_PREFIX))
        marker = listed.get("Marker")
        if not listed.get("IsTruncated") or not marker:
            break
    pages: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(names):
        try:
            document = ctx.retry.call(iam.get_role_policy, RoleName=role, PolicyName=name)["PolicyDocument"]
        except ClientError as exc:
            if _code(exc) == "NoSuchEntity":
                continue  # removed since the list (a concurrent resume): nothing of it is left
            raise
        pages[name] = _statements(json.loads(document) if isinstance(document, str) else document)
    return pages


def _deny_role(
    ctx: _Context, role: str, targets: Sequence[HaltTarget], *, halting: bool, started: float
) -> _RoleDone:
    """One invoker role's share of a deny-invoke halt or resume, for all its targets at once."""
    done = _RoleDone()
    try:
        pages = _read_pages(ctx, role)
        (_halt_role if halting else _resume_role)(ctx, role, targets, pages, done)
    except TargetMissing as exc:
        for target in targets:
            done.errors[target.id] = str(exc)
    except ClientError as exc:
        for target in targets:
            done.errors.setdefault(target.id, f"{role}: {_code(exc)}: {_message(exc)}")
    except Exception as exc:
        logger.exception("deny-invoke on a role failed", extra=log_fields(role=role))
        for target in targets:
            done.errors.setdefault(target.id, f"{role}: {type(exc).__name__}: {exc}")
    done.seconds = time.perf_counter() - started
    return done


def _halt_role(
    ctx: _Context,
    role: str,
    targets: Sequence[HaltTarget],
    pages: Mapping[str, list[dict[str, Any]]],
    done: _RoleDone,
) -> None:
    c = ctx.clients
    where = {"partition": c.partition, "region": c.region, "account": c.account_id}
    wanted = {t.id: deny_invoke_statements(t, **where) for t in targets}
    holding: dict[str, str] = {}  # statement (as JSON) -> the page that holds it
    for name, statements in pages.items():
        for statement in statements:
            holding.setdefault(json.dumps(statement, sort_keys=True), name)
    missing: list[str] = []
    for target_id in sorted(wanted):
        keys = [json.dumps(s, sort_keys=True) for s in wanted[target_id]]
        if all(k in holding for k in keys):
            # Already denied, exactly as declared: a retried halt writes nothing.
            done.actions[target_id] = [
                {"action": "put-deny", "role": role, "policy": holding[keys[0]], "changed": False}
            ]
        else:
            missing.append(target_id)
    # Only new pages are written, never a page that holds other targets: two halts racing on one
    # role cannot drop each other's denies (a page's name is a function of the targets it holds).
    for page in deny_pages([(t, wanted[t]) for t in missing]):
        try:
            ctx.retry.call(
                c.iam.put_role_policy,
                RoleName=role,
                PolicyName=page.name,
                PolicyDocument=json.dumps(page.document, separators=(",", ":")),
            )
        except ClientError as exc:
            # Keep going: the role's other pages (and every other role) must still be written.
            for target_id in page.target_ids:
                done.errors[target_id] = f"{role}: {_code(exc)}: {_message(exc)}"
            continue
        for target_id in page.target_ids:
            done.actions[target_id] = [
                {"action": "put-deny", "role": role, "policy": page.name, "changed": True}
            ]


def _resume_role(
    ctx: _Context,
    role: str,
    targets: Sequence[HaltTarget],
    pages: Mapping[str, list[dict[str, Any]]],
    done: _RoleDone,
) -> None:
    iam = ctx.clients.iam
    resuming = {t.id for t in targets}
    for name, statements in pages.items():
        keep = [s for s in statements if _owner(s, name) not in resuming]
        released = sorted({owner for s in statements if (owner := _owner(s, name)) in resuming})
        if not released:
            continue
        try:
            if keep:
                # Still-halted targets share this page: rewrite it without the resumed ones.
                ctx.retry.call(
                    iam.put_role_policy,
                    RoleName=role,
                    PolicyName=name,
                    PolicyDocument=json.dumps(
                        {"Version": "2012-10-17", "Statement": keep}, separators=(",", ":")
                    ),
                )
            else:
                try:
                    ctx.retry.call(iam.delete_role_policy, RoleName=role, PolicyName=name)
                except ClientError as exc:
                    if _code(exc) != "NoSuchEntity":
                        raise
        except ClientError as exc:
            for target_id in released:
                done.errors[target_id] = f"{role}: {_code(exc)}: {_message(exc)}"
            continue
        for target_id in released:
            done.actions.setdefault(target_id, []).append(
                {"action": "delete-deny", "role": role, "policy": name, "changed": True}
            )
    for target_id in resuming:
        if target_id not in done.actions and target_id not in done.errors:
            done.actions[target_id] = [{"action": "delete-deny", "role": role, "changed": False}]


def _deny_invoke_all(
    ctx: _Context, targets: Sequence[HaltTarget], *, halting: bool, workers: int
) -> dict[str, tuple[_Step, float]]:
    """deny-invoke for every target: one batch per invoker role, the roles concurrently, then each
    target's step assembled in the order of its invoker roles."""
    started = time.perf_counter()
    by_role: dict[str, list[HaltTarget]] = {}
    for target in targets:
        for role in target.invoker_roles:
            by_role.setdefault(role, []).append(target)
    roles = sorted(by_role)
    finished = _map(
        lambda role: _deny_role(ctx, role, by_role[role], halting=halting, started=started), roles, workers
    )
    outcome = dict(zip(roles, finished, strict=True))
    steps: dict[str, tuple[_Step, float]] = {}
    for target in targets:
        step = _Step()
        for role in target.invoker_roles:
            done = outcome[role]
            for action in done.actions.get(target.id, []):
                step.did(**action)
            if target.id in done.errors:
                step.failed(done.errors[target.id])
        seconds = max((outcome[r].seconds for r in target.invoker_roles), default=0.0)
        steps[target.id] = (step, seconds)
    return steps


# ----- delete-endpoint ------------------------------------------------------------------------


def _is_missing_endpoint(exc: ClientError) -> bool:
    return _code(exc) == "ValidationException" and "Could not find endpoint" in _message(exc)


def _describe(ctx: _Context, name: str) -> dict[str, Any] | None:
    try:
        return dict(ctx.retry.call(ctx.clients.sagemaker.describe_endpoint, EndpointName=name))
    except ClientError as exc:
        if _is_missing_endpoint(exc):
            return None
        raise


def _stamp() -> str:
    # Microseconds keep keys in time order even for two halts within one second.
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _snapshot_keys(ctx: _Context, target: HaltTarget) -> dict[str, list[str]]:
    """Every snapshot / resume-marker key under the target's prefix, by endpoint name, oldest first."""
    prefix = snapshot_prefix(target.id)
    keys: dict[str, list[str]] = {}
    token: str | None = None
    while True:
        params: dict[str, Any] = {"Bucket": ctx.writer.bucket, "Prefix": prefix}
        if token:
            params["ContinuationToken"] = token
        page = ctx.retry.call(ctx.clients.s3.list_objects_v2, **params)
        for item in page.get("Contents", []):
            endpoint, _, leaf = item["Key"][len(prefix) :].partition("/")
            if leaf:
                keys.setdefault(endpoint, []).append(item["Key"])
        if not page.get("IsTruncated"):
            break
        token = page.get("NextContinuationToken")
    return {name: sorted(found) for name, found in keys.items()}


def _pending_snapshot(keys: Sequence[str]) -> str | None:
    """The snapshot to resume from: the newest object, if it is a snapshot (not a resume marker)."""
    if keys and keys[-1].endswith("-snapshot.json"):
        return keys[-1]
    return None


def _put_json(ctx: _Context, key: str, body: Mapping[str, Any]) -> None:
    params: dict[str, Any] = {
        "Bucket": ctx.writer.bucket,
        "Key": key,
        "Body": json.dumps(body, sort_keys=True, default=str).encode(),
        "ContentType": "application/json",
        # The audit bucket is under Object Lock, which refuses writes without a checksum.
        "ChecksumAlgorithm": "SHA256",
    }
    if ctx.writer.kms_key_id:
        params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=ctx.writer.kms_key_id)
    ctx.retry.call(ctx.clients.s3.put_object, **params)


def _list_tags(ctx: _Context, arn: str) -> list[dict[str, str]]:
    tags: list[dict[str, str]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"ResourceArn": arn}
        if token:
            params["NextToken"] = token
        page = ctx.retry.call(ctx.clients.sagemaker.list_tags, **params)
        tags.extend(page.get("Tags", []))
        token = page.get("NextToken")
        if not token:
            return tags


def _endpoints_with_tags(ctx: _Context, target: HaltTarget) -> list[str]:
    wanted = dict(target.endpoint_tags)
    names: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"MaxResults": 100}
        if token:
            params["NextToken"] = token
        page = ctx.retry.call(ctx.clients.sagemaker.list_endpoints, **params)
        for summary in page.get("Endpoints", []):
            try:
                tags = {t["Key"]: t["Value"] for t in _list_tags(ctx, summary["EndpointArn"])}
            except ClientError as exc:
                # Deleted between ListEndpoints and ListTags (another halt, or its owner): not ours.
                if _code(exc) == "ValidationException":
                    continue
                raise
            if all(tags.get(k) == v for k, v in wanted.items()):
                names.append(summary["EndpointName"])
        token = page.get("NextToken")
        if not token:
            return sorted(names)


def _halt_endpoint(
    ctx: _Context, target: HaltTarget, name: str, snapshots: Sequence[str], step: _Step
) -> None:
    description = _describe(ctx, name)
    if description is None:
        pending = _pending_snapshot(snapshots)
        if pending is None:
            raise TargetMissing(f"endpoint {name} does not exist and there is no snapshot of it")
        step.did("delete-endpoint", endpoint=name, changed=False, snapshot=pending, note="already deleted")
        return
    if description.get("EndpointStatus") == "Deleting":
        step.did("delete-endpoint", endpoint=name, changed=False, note="already deleting")
        return
    tags = [
        t for t in _list_tags(ctx, description["EndpointArn"]) if not t["Key"].startswith("aws:")
    ]  # aws: tags are AWS-managed and cannot be set again on CreateEndpoint
    snapshot = {
        "kind": "breakglass-endpoint-snapshot",
        "schema_version": "1",
        "target": target.id,
        "endpoint_name": description["EndpointName"],
        "endpoint_arn": description["EndpointArn"],
        "endpoint_config_name": description["EndpointConfigName"],
        "endpoint_status": description.get("EndpointStatus"),
        "production_variants": description.get("ProductionVariants", []),
        "data_capture_config": description.get("DataCaptureConfig"),
        "tags": tags,
        "taken_at": datetime.now(UTC).isoformat(),
        "actor": ctx.actor,
        "reason": ctx.reason,
        "request_id": ctx.request_id,
    }
    key = f"{snapshot_prefix(target.id)}{name}/{_stamp()}-snapshot.json"
    # The snapshot is stored before the delete: without it the endpoint could not be recreated.
    _put_json(ctx, key, snapshot)
    # Recorded before the delete, so a failed delete still reports the stored snapshot.
    action = step.did("delete-endpoint", endpoint=name, changed=False, snapshot=key)
    ctx.retry.call(ctx.clients.sagemaker.delete_endpoint, EndpointName=name)
    action["changed"] = True


def _wait_until_gone(ctx: _Context, name: str) -> None:
    deadline = ctx.wait.clock() + ctx.wait.max_wait
    while _describe(ctx, name) is not None:
        if ctx.wait.clock() >= deadline:
            raise RuntimeError(f"endpoint {name} is still deleting after {ctx.wait.max_wait:.0f}s")
        ctx.wait.sleep(ctx.wait.poll_interval)


def _resume_endpoint(
    ctx: _Context, target: HaltTarget, name: str, snapshots: Sequence[str], step: _Step
) -> None:
    description = _describe(ctx, name)
    if description is not None and description.get("EndpointStatus") != "Deleting":
        step.did("recreate-endpoint", endpoint=name, changed=False, status=description.get("EndpointStatus"))
        return
    pending = _pending_snapshot(snapshots)
    if pending is None:
        if description is None and target.endpoint_name:
            raise TargetMissing(
                f"endpoint {name} does not exist and there is no snapshot to recreate it from"
            )
        step.did("recreate-endpoint", endpoint=name, changed=False, note="nothing to resume")
        return
    if description is not None:
        _wait_until_gone(ctx, name)
    body = ctx.retry.call(ctx.clients.s3.get_object, Bucket=ctx.writer.bucket, Key=pending)["Body"].read()
    snapshot = json.loads(body)
    params: dict[str, Any] = {
        "EndpointName": snapshot["endpoint_name"],
        "EndpointConfigName": snapshot["endpoint_config_name"],
    }
    if snapshot.get("tags"):
        params["Tags"] = snapshot["tags"]
    try:
        ctx.retry.call(ctx.clients.sagemaker.create_endpoint, **params)
    except ClientError as exc:
        if _code(exc) == "ValidationException" and "endpoint config" in _message(exc).lower():
            raise TargetMissing(
                f"endpoint config {snapshot['endpoint_config_name']} of {name} no longer exists: {_message(exc)}"
            ) from exc
        raise
    # From here the endpoint is coming back: record it at once, so no later failure (the marker,
    # the wait) can make the result say nothing happened while the endpoint is live.
    action = step.did("recreate-endpoint", endpoint=name, changed=True, snapshot=pending, status="Creating")
    # The marker retires the snapshot, so a second resume (or a later, intentional delete of the
    # endpoint) never recreates it again from stale state.
    marker = f"{snapshot_prefix(target.id)}{name}/{_stamp()}-resumed.json"
    try:
        _put_json(
            ctx, marker, {"kind": "breakglass-endpoint-resumed", "snapshot": pending, "actor": ctx.actor}
        )
        action["marker"] = marker
    except Exception as exc:  # recorded as this target's error; the wait below still reports status
        step.failed(
            f"{name}: recreated, but its resume marker was not written ({_explain(exc)}); "
            f"the snapshot {pending} stays pending, so a resume after a deliberate delete would "
            "recreate the endpoint again"
        )
    status = _wait_in_service(ctx, name)
    action["status"] = status
    if status != "InService":
        step.failed(f"endpoint {name} was recreated but is {status} after waiting {ctx.wait.max_wait:.0f}s")


def _wait_in_service(ctx: _Context, name: str) -> str:
    deadline = ctx.wait.clock() + ctx.wait.max_wait
    while True:
        description = _describe(ctx, name) or {}
        status = str(description.get("EndpointStatus", "Missing"))
        if status in ("InService", "Failed", "Missing"):
            if status == "Failed":
                return f"Failed ({description.get('FailureReason', 'no reason given')})"
            return status
        if ctx.wait.clock() >= deadline:
            return status
        ctx.wait.sleep(ctx.wait.poll_interval)


def _delete_endpoint_mode(ctx: _Context, target: HaltTarget, step: _Step, *, halting: bool) -> None:
    snapshots = _snapshot_keys(ctx, target)
    if target.endpoint_name:
        names = [target.endpoint_name]
    elif halting:
        running = _endpoints_with_tags(ctx, target)
        # Endpoints of the selector that an earlier halt already deleted are part of it too.
        names = sorted(set(running) | {n for n, keys in snapshots.items() if _pending_snapshot(keys)})
        if not names:
            raise TargetMissing(f"no endpoint has the tags {dict(target.endpoint_tags)}")
    else:
        names = sorted(snapshots)
    act = _halt_endpoint if halting else _resume_endpoint
    for name in names:
        try:
            act(ctx, target, name, snapshots.get(name, []), step)
        except (ClientError, TargetMissing, RuntimeError) as exc:
            step.failed(str(exc) if not isinstance(exc, ClientError) else f"{name}: {exc}")


# ----- scp ------------------------------------------------------------------------------------


def _halt_scp_ids(ctx: _Context) -> dict[str, str]:
    """Every ``breakglass-halt-*`` SCP of the organization, ``{name: id}``: one listing per halt."""
    org = ctx.clients.organizations
    found: dict[str, str] = {}
    token: str | None = None
    while True:
        params: dict[str, Any] = {"Filter": SCP_TYPE}
        if token:
            params["NextToken"] = token
        page = ctx.retry.call(org.list_policies, **params)
        for summary in page.get("Policies", []):
            if str(summary["Name"]).startswith(HALT_POLICY_PREFIX):
                found[str(summary["Name"])] = str(summary["Id"])
        token = page.get("NextToken")
        if not token:
            return found


def _scp_attachments(ctx: _Context, policy_id: str) -> set[str]:
    attached: set[str] = set()
    token: str | None = None
    while True:
        params: dict[str, Any] = {"PolicyId": policy_id}
        if token:
            params["NextToken"] = token
        page = ctx.retry.call(ctx.clients.organizations.list_targets_for_policy, **params)
        attached.update(t["TargetId"] for t in page.get("Targets", []))
        token = page.get("NextToken")
        if not token:
            return attached


_MISSING_ORG_TARGET = {
    "TargetNotFoundException",
    "AccountNotFoundException",
    "OrganizationalUnitNotFoundException",
}


_Steps = dict[str, _Step]


@dataclass
class _Scp:
    """A halt SCP as read: its statements, the targets they deny and where it is attached."""

    name: str
    policy_id: str
    statements: list[dict[str, Any]]
    attached: set[str]

    def owners(self) -> set[str]:
        return {o for s in self.statements if (o := _owner(s, self.name)) is not None}


def _read_scp(ctx: _Context, name: str, policy_id: str) -> _Scp | None:
    org = ctx.clients.organizations
    try:
        content = ctx.retry.call(org.describe_policy, PolicyId=policy_id)["Policy"]["Content"]
        attached = _scp_attachments(ctx, policy_id)
    except ClientError as exc:
        # The functions may read only SCPs tagged with one of their targets: another kill
        # switch's SCP in the same organization is not ours to count or change.
        if _code(exc) in ("AccessDeniedException", "AccessDenied", "PolicyNotFoundException"):
            return None
        raise
    return _Scp(name, policy_id, _statements(json.loads(content)), attached)


def _scp_error(target_id: str, exc: ClientError) -> str:
    if _code(exc) in _MISSING_ORG_TARGET:
        return f"organization target {target_id} does not exist"
    return f"{target_id}: {_code(exc)}: {_message(exc)}"


def _attach_all(
    ctx: _Context, scp: _Scp, wanted: Sequence[str], owners: Sequence[str], steps: _Steps
) -> None:
    """Attach ``scp`` to each of ``wanted`` it is not attached to: one call per account / OU / root."""
    for target_id in wanted:
        changed = target_id not in scp.attached
        try:
            if changed:
                ctx.retry.call(
                    ctx.clients.organizations.attach_policy, PolicyId=scp.policy_id, TargetId=target_id
                )
                scp.attached.add(target_id)
        except ClientError as exc:
            for owner in owners:
                steps[owner].failed(_scp_error(target_id, exc))
            continue
        for owner in owners:
            steps[owner].did("attach-scp", policy_id=scp.policy_id, target_id=target_id, changed=changed)


def _scp_halt(ctx: _Context, targets: Sequence[HaltTarget], scps: list[_Scp], steps: _Steps) -> None:
    org = ctx.clients.organizations
    wanted = {t.id: scp_document(t, partition=ctx.clients.partition)["Statement"] for t in targets}
    where_of = {t.id: set(t.scp_target_ids) for t in targets}
    missing: dict[tuple[str, ...], list[str]] = {}
    handled: set[str] = set()
    for target in targets:
        if target.id in handled:
            continue
        handled.add(target.id)
        keys = {json.dumps(s, sort_keys=True) for s in wanted[target.id]}
        holders = [p for p in scps if keys <= {json.dumps(s, sort_keys=True) for s in p.statements}]
        covered = set().union(*(p.attached for p in holders))
        if where_of[target.id] <= covered:
            # Denied everywhere it should be, exactly as declared: a retried halt writes nothing.
            scp = max(holders, key=lambda p: len(p.attached & where_of[target.id]))
            _attach_all(ctx, scp, target.scp_target_ids, [target.id], steps)
            continue
        # Attaching an SCP extends every target it holds to the new place, so one is reused only
        # if each of its targets is being halted now for exactly the same places (a resumed SCP
        # keeps its content, detached, until a halt of all its targets attaches it again).
        reusable = [p for p in holders if all(where_of.get(o) == where_of[target.id] for o in p.owners())]
        if reusable:
            scp = max(reusable, key=lambda p: len(p.attached))
            # Its other targets not yet seen are halted by the same attachments: reported for each.
            along = sorted(o for o in scp.owners() if o in where_of and o not in handled)
            handled.update(along)
            _attach_all(ctx, scp, target.scp_target_ids, [target.id, *along], steps)
        else:
            missing.setdefault(tuple(sorted(target.scp_target_ids)), []).append(target.id)
    existing = {p.name: p for p in scps}
    for where, ids in sorted(missing.items()):
        for page in deny_pages([(i, wanted[i]) for i in sorted(ids)], max_chars=SCP_PAGE_MAX_CHARS):
            content = json.dumps(page.document, separators=(",", ":"), sort_keys=True)
            try:
                found = existing.get(page.name)
                if found is None:
                    created = ctx.retry.call(
                        org.create_policy,
                        Content=content,
                        Description=f"break-glass halt of {', '.join(page.target_ids)}: deny AI invoke actions"[
                            :512
                        ],
                        Name=page.name,
                        Type=SCP_TYPE,
                        # The Lambdas may only read, change, attach or detach SCPs carrying this tag
                        # (its value: a declared target, the page's first).
                        Tags=[{"Key": HALT_TAG_KEY, "Value": page.target_ids[0]}],
                    )
                    scp = _Scp(page.name, str(created["Policy"]["PolicySummary"]["Id"]), [], set())
                    action = "create-scp"
                else:
                    # This page's SCP, from an earlier halt of these targets: bring it up to date.
                    scp = found
                    ctx.retry.call(org.update_policy, PolicyId=scp.policy_id, Content=content)
                    action = "update-scp"
            except ClientError as exc:
                for target_id in page.target_ids:
                    steps[target_id].failed(f"{_code(exc)}: {_message(exc)}")
                continue
            for target_id in page.target_ids:
                steps[target_id].did(action, policy=page.name, policy_id=scp.policy_id, changed=True)
            _attach_all(ctx, scp, where, page.target_ids, steps)


def _scp_resume(ctx: _Context, targets: Sequence[HaltTarget], scps: list[_Scp], steps: _Steps) -> None:
    org = ctx.clients.organizations
    resuming = {t.id for t in targets}
    for scp in scps:
        keep = [s for s in scp.statements if _owner(s, scp.name) not in resuming]
        released = sorted(scp.owners() & resuming)
        if not released:
            continue
        if keep:
            # Still-halted targets share this SCP: it stays attached, without the resumed ones.
            content = json.dumps(
                {"Version": "2012-10-17", "Statement": keep}, separators=(",", ":"), sort_keys=True
            )
            try:
                ctx.retry.call(org.update_policy, PolicyId=scp.policy_id, Content=content)
            except ClientError as exc:
                for target_id in released:
                    steps[target_id].failed(f"{_code(exc)}: {_message(exc)}")
                continue
            for target_id in released:
                steps[target_id].did("update-scp", policy=scp.name, policy_id=scp.policy_id, changed=True)
            continue
        for where in sorted(scp.attached):
            try:
                ctx.retry.call(org.detach_policy, PolicyId=scp.policy_id, TargetId=where)
            except ClientError as exc:
                for target_id in released:
                    steps[target_id].failed(_scp_error(where, exc))
                continue
            for target_id in released:
                steps[target_id].did("detach-scp", policy_id=scp.policy_id, target_id=where, changed=True)
    for target in targets:
        if not steps[target.id].actions and not steps[target.id].errors:
            steps[target.id].did("detach-scp", policy=target.policy_name, changed=False, note="not attached")


def _scp_all(
    ctx: _Context, targets: Sequence[HaltTarget], *, halting: bool, workers: int
) -> dict[str, tuple[_Step, float]]:
    """scp for every target at once: the organization's halt SCPs are listed and read once, the
    targets that share their accounts / OUs go into one SCP (as few as fit), and each SCP is
    attached with one call per account / OU / root."""
    started = time.perf_counter()
    steps: _Steps = {t.id: _Step() for t in targets}
    try:
        if ctx.clients.organizations is None:
            raise RuntimeError("scp mode needs an Organizations client (run it in the management account)")
        ids = _halt_scp_ids(ctx)
        read = _map(lambda item: _read_scp(ctx, *item), sorted(ids.items()), workers)
        scps = [p for p in read if p is not None]
        (_scp_halt if halting else _scp_resume)(ctx, targets, scps, steps)
    except ClientError as exc:
        for step in steps.values():
            step.failed(f"{_code(exc)}: {_message(exc)}")
    except Exception as exc:
        logger.exception("scp halt failed")
        for step in steps.values():
            step.failed(f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    return {target_id: (step, seconds) for target_id, step in steps.items()}


# ----- fan-out --------------------------------------------------------------------------------

_MODES: dict[str, Callable[..., None]] = {
    "delete-endpoint": _delete_endpoint_mode,
}
# Modes batched across targets (one call covers many): each acts on all its targets at once.
_BATCHED: dict[str, Callable[..., dict[str, tuple[_Step, float]]]] = {
    "deny-invoke": _deny_invoke_all,
    "scp": _scp_all,
}

_Item = TypeVar("_Item")
_Out = TypeVar("_Out")


def _map(fn: Callable[[_Item], _Out], items: Sequence[_Item], workers: int) -> list[_Out]:
    """``fn`` over ``items`` in order, on a bounded pool (in this thread when one worker will do)."""
    workers = min(workers, len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="breakglass-halt") as pool:
        return list(pool.map(fn, items))


def _not_allowed(target: HaltTarget, mode: str) -> str:
    return f"mode {mode} is not allowed for target {target.id} (allowed: {list(target.modes)})"


def _act(ctx: _Context, target: HaltTarget, mode: str, *, halting: bool) -> tuple[_Step, float]:
    """One target in a per-target mode (delete-endpoint)."""
    started = time.perf_counter()
    step = _Step()
    try:
        if mode not in target.modes:
            raise RuntimeError(_not_allowed(target, mode))
        _MODES[mode](ctx, target, step, halting=halting)
    except TargetMissing as exc:
        step.failed(str(exc))
    except ClientError as exc:
        step.failed(f"{_code(exc)}: {_message(exc)}")
    except Exception as exc:
        # An unexpected error still gets its per-target result and audit record; it is logged with
        # its traceback so it is never lost.
        logger.exception("halt step failed", extra=log_fields(target=target.id, mode=mode))
        step.failed(f"{type(exc).__name__}: {exc}")
    return step, time.perf_counter() - started


def _record(
    ctx: _Context, target: HaltTarget, mode: str, step: _Step, seconds: float, *, halting: bool
) -> tuple[TargetResult, Exception | None]:
    """The target's result and its one audit event of this halt (or resume)."""
    outcome = step.outcome("halted" if halting else "resumed")
    error = "; ".join(step.errors) or None
    result = TargetResult(
        target=target.id,
        mode=mode,
        outcome=outcome,
        error=error,
        seconds=seconds,
        details={"actions": step.actions},
        changed=step.changed,
    )
    details: dict[str, Any] = {
        "actions": step.actions,
        "changed": step.changed,
        "seconds": round(result.seconds, 3),
    }
    if error:
        details["error"] = error
    if ctx.trigger is not None:
        details["trigger"] = dict(ctx.trigger)
    try:
        event = AuditEvent(
            event_type="halt" if halting else "resume",
            actor=ctx.actor,
            outcome={"error": "failed", "noop": "noop"}.get(outcome, "succeeded"),
            request_id=ctx.request_id,
            target=target.id,
            mode=mode,
            reason=ctx.reason,
            details=details,
        )
        result.details["audit_key"] = ctx.writer.write(event)
    except Exception as exc:
        # Any failure here (the put, or the alert publish after it) must neither stop the other
        # targets (in a sequential run it would) nor lose what was done to this one: the audit
        # trail may lack it, so the outcome goes to the log before the fan-out fails loudly.
        result.audit_error = f"{type(exc).__name__}: {exc}"
        logger.error(
            "audit record failed", extra=log_fields(result=result.to_dict(), error=result.audit_error)
        )
        return result, exc
    logger.info(
        "target done", extra=log_fields(target=target.id, mode=mode, outcome=outcome, seconds=result.seconds)
    )
    return result, None


def _distinct(targets: Iterable[HaltTarget]) -> list[HaltTarget]:
    """The targets once each, in order: a target named twice is acted on and recorded once."""
    seen: dict[str, HaltTarget] = {}
    for target in targets:
        seen.setdefault(target.id, target)
    return list(seen.values())


def _fan_out(
    ctx: _Context, targets: Sequence[HaltTarget], mode: str, *, halting: bool, max_workers: int
) -> dict[str, Any]:
    if not targets:
        raise ValueError("targets: name at least one target")
    if max_workers < 1:
        raise ValueError("max_workers: must be at least 1")
    started = time.perf_counter()
    chosen = _distinct(targets)
    steps: dict[str, tuple[_Step, float]]
    if mode in _BATCHED:
        allowed = [t for t in chosen if mode in t.modes]
        steps = _BATCHED[mode](ctx, allowed, halting=halting, workers=max_workers) if allowed else {}
        for target in chosen:
            if target.id not in steps:
                refused = _Step()
                refused.failed(_not_allowed(target, mode))
                steps[target.id] = (refused, 0.0)
    else:
        acted = _map(lambda t: _act(ctx, t, mode, halting=halting), chosen, max_workers)
        steps = {t.id: done for t, done in zip(chosen, acted, strict=True)}
    # Every target's record, one each, written concurrently once every role has been acted on.
    pairs = _map(lambda t: _record(ctx, t, mode, *steps[t.id], halting=halting), chosen, max_workers)
    results = [r for r, _ in pairs]
    report = {
        "action": "halt" if halting else "resume",
        "mode": mode,
        "status": overall_status(results),
        "seconds": round(time.perf_counter() - started, 3),
        "results": [r.to_dict() for r in results],
    }
    failed_writes = [(r.target, e) for r, e in pairs if e is not None]
    if failed_writes:
        # The actions happened but their records did not: that must fail loudly, not report
        # success, and still say what was done to each target.
        names = ", ".join(t for t, _ in failed_writes)
        summary = f"audit events not stored or not alerted for {names}: {failed_writes[0][1]}"
        raise HaltAuditError(summary, {**report, "audit_error": summary}) from failed_writes[0][1]
    return report


def halt(
    clients: HaltClients,
    writer: AuditWriter,
    targets: Sequence[HaltTarget],
    mode: str,
    *,
    actor: str,
    reason: str,
    trigger: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    retry: RetryPolicy | None = None,
    wait: WaitSettings | None = None,
) -> dict[str, Any]:
    """Halt every target in ``mode``; return ``{action, mode, status, seconds, results}``.

    ``trigger`` is the alarm event when a tripwire pulled the switch; it goes into every audit event.
    """
    ctx = _Context(
        clients, writer, actor, reason, request_id, trigger, retry or RetryPolicy(), wait or WaitSettings()
    )
    return _fan_out(ctx, targets, mode, halting=True, max_workers=max_workers)


def resume(
    clients: HaltClients,
    writer: AuditWriter,
    targets: Sequence[HaltTarget],
    mode: str,
    *,
    actor: str,
    reason: str,
    trigger: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    retry: RetryPolicy | None = None,
    wait: WaitSettings | None = None,
) -> dict[str, Any]:
    """Undo :func:`halt` for every target in ``mode`` (the exact inverse); same result shape."""
    ctx = _Context(
        clients, writer, actor, reason, request_id, trigger, retry or RetryPolicy(), wait or WaitSettings()
    )
    return _fan_out(ctx, targets, mode, halting=False, max_workers=max_workers)
