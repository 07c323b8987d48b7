"""Entry points of the halt and resume Lambdas (thin: parse, validate, build clients, call the service).

The declared targets reach the functions through ``BREAKGLASS_HALT_TARGETS`` (set by the
``HaltActions`` component); an event can only name targets from that list and a mode each allows.

Events::

    halt / resume: {"targets": ["chat-endpoint"] | "all", "mode": "deny-invoke",
                    "actor": "alice", "reason": "prompt-injection incident", "request_id": "..."}
    tripwire:      {"source": "breakglass.tripwire", "tripwire": "errors", "mode": "deny-invoke",
                    "targets": [...], "alarm": <the CloudWatch Alarm State Change event>}

The tripwire's EventBridge rule targets the halt function, so ``halt_handler`` hands events whose
``source`` is the tripwire's to :func:`tripwire_handler`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config

from breakglass.contracts import ENV_HALT_TARGETS
from breakglass.lambdas.halt.service import HaltClients, WaitSettings, halt, resume
from breakglass.lambdas.runtime import audit_writer_from_env, get_logger, log_fields, required_env
from breakglass.policies.halt import (
    ALARM_DETAIL_TYPE,
    MODES,
    TRIPWIRE_SOURCE,
    HaltTarget,
    parse_targets,
)
from breakglass.validation import (
    REQUEST_ID,
    REQUEST_ID_HINT,
    USER_ID,
    USER_ID_HINT,
    ConfigError,
    reject_unknown_keys,
    require_choice,
    require_mapping,
    require_str,
    require_str_list,
)

# Seconds left for the audit write and the reply after resume stops waiting for InService.
RESUME_MARGIN_SECONDS: Final = 30.0

logger = get_logger("breakglass.halt")


@dataclass(frozen=True)
class HaltRequest:
    targets: tuple[HaltTarget, ...]
    mode: str
    actor: str
    reason: str
    request_id: str | None = None
    trigger: Mapping[str, Any] | None = None


def load_targets(environ: Mapping[str, str] | None = None) -> dict[str, HaltTarget]:
    """The declared targets, by id (a misconfigured function fails loudly, never halts nothing)."""
    raw = required_env(ENV_HALT_TARGETS, os.environ if environ is None else environ)
    try:
        specs = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"environment variable {ENV_HALT_TARGETS} is not JSON: {exc}") from exc
    return {t.id: t for t in parse_targets(ENV_HALT_TARGETS, specs)}


def _select(field: str, value: Any, mode: str, catalog: Mapping[str, HaltTarget]) -> tuple[HaltTarget, ...]:
    if value == "all":
        chosen = [t for t in catalog.values() if mode in t.modes]
        if not chosen:
            raise ConfigError(field, f"no declared target allows mode {mode}")
        return tuple(chosen)
    ids = require_str_list(field, value, allow_empty=False)
    targets: list[HaltTarget] = []
    for i, target_id in enumerate(ids):
        if target_id not in catalog:
            raise ConfigError(
                f"{field}[{i}]", f"{target_id!r} is not a declared target; known: {', '.join(catalog)}"
            )
        target = catalog[target_id]
        if mode not in target.modes:
            raise ConfigError(
                f"{field}[{i}]",
                f"target {target_id!r} does not allow mode {mode}; allowed: {', '.join(target.modes)}",
            )
        targets.append(target)
    return tuple(targets)


def parse_request(event: Any, catalog: Mapping[str, HaltTarget]) -> HaltRequest:
    """A responder's (or the workflow's) halt / resume request."""
    body = require_mapping("event", event)
    reject_unknown_keys("", body, ("targets", "mode", "actor", "reason", "request_id"))
    for name in ("targets", "mode", "actor", "reason"):
        if name not in body:
            raise ConfigError(name, "is required")
    mode = require_choice("mode", body["mode"], MODES)
    request_id = body.get("request_id")
    return HaltRequest(
        targets=_select("targets", body["targets"], mode, catalog),
        mode=mode,
        # A person's id: "tripwire:<alarm>" is only ever set by parse_tripwire, never claimed.
        actor=require_str("actor", body["actor"], pattern=USER_ID, hint=USER_ID_HINT),
        reason=require_str("reason", body["reason"], max_length=1000),
        request_id=None
        if request_id is None
        else require_str("request_id", request_id, pattern=REQUEST_ID, hint=REQUEST_ID_HINT),
    )


def parse_tripwire(event: Any, catalog: Mapping[str, HaltTarget]) -> HaltRequest:
    """The tripwire rule's input: configured targets and mode, and the alarm event that fired."""
    body = require_mapping("event", event)
    reject_unknown_keys("", body, ("source", "tripwire", "mode", "targets", "alarm"))
    if body.get("source") != TRIPWIRE_SOURCE:
        raise ConfigError("source", f"must be {TRIPWIRE_SOURCE!r}, got {body.get('source')!r}")
    tripwire = require_str("tripwire", body.get("tripwire"), max_length=128)
    mode = require_choice("mode", body.get("mode"), MODES)
    alarm = require_mapping("alarm", body.get("alarm"))
    if alarm.get("source") != "aws.cloudwatch" or alarm.get("detail-type") != ALARM_DETAIL_TYPE:
        raise ConfigError("alarm", f"must be a {ALARM_DETAIL_TYPE!r} event from aws.cloudwatch")
    detail = require_mapping("alarm.detail", alarm.get("detail"))
    alarm_name = require_str("alarm.detail.alarmName", detail.get("alarmName"), max_length=255)
    state = require_mapping("alarm.detail.state", detail.get("state"))
    if state.get("value") != "ALARM":
        # The rule only forwards ALARM; anything else reaching here is a wiring mistake, not a halt.
        raise ConfigError("alarm.detail.state.value", f"must be 'ALARM' to halt, got {state.get('value')!r}")
    reason = f"tripwire {tripwire}: alarm {alarm_name} is in ALARM: {state.get('reason', '')}"
    return HaltRequest(
        targets=_select("targets", body.get("targets"), mode, catalog),
        mode=mode,
        actor=f"tripwire:{alarm_name}",
        reason=reason[:1000],
        trigger=dict(alarm),
    )


def location(context: Any) -> tuple[str, str, str]:
    """(partition, region, account) of the running function, from its own ARN (no extra API call)."""
    arn = str(getattr(context, "invoked_function_arn", ""))
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda":
        raise RuntimeError(f"cannot tell the account and region from the function ARN {arn!r}")
    return parts[1], parts[3], parts[4]


def build_clients(context: Any, mode: str, *, session: Any = None) -> HaltClients:
    partition, region, account = location(context)
    boto = session or boto3
    # The service retries throttling itself (backoff with jitter, bounded); botocore's own retries
    # would multiply that bound.
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return HaltClients(
        iam=boto.client("iam", config=config),
        sagemaker=boto.client("sagemaker", region_name=region, config=config),
        s3=boto.client("s3", config=config),
        account_id=account,
        region=region,
        partition=partition,
        # Organizations is a global service served from us-east-1 (aws partition).
        organizations=boto.client("organizations", region_name="us-east-1", config=config)
        if mode == "scp"
        else None,
    )


def _wait_settings(context: Any) -> WaitSettings:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return WaitSettings()
    return WaitSettings(max_wait=max(0.0, remaining() / 1000.0 - RESUME_MARGIN_SECONDS))


def _run(request: HaltRequest, context: Any, *, halting: bool) -> dict[str, Any]:
    clients = build_clients(context, request.mode)
    writer = audit_writer_from_env()
    action = halt if halting else resume
    logger.info(
        "halt requested" if halting else "resume requested",
        extra=log_fields(
            mode=request.mode,
            targets=[t.id for t in request.targets],
            actor=request.actor,
            request_id=request.request_id,
        ),
    )
    result = action(
        clients,
        writer,
        request.targets,
        request.mode,
        actor=request.actor,
        reason=request.reason,
        trigger=request.trigger,
        request_id=request.request_id,
        wait=_wait_settings(context),
    )
    logger.info("done", extra=log_fields(status=result["status"], seconds=result["seconds"]))
    return result


def halt_handler(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, Mapping) and event.get("source") == TRIPWIRE_SOURCE:
        return tripwire_handler(event, context)
    return _run(parse_request(event, load_targets()), context, halting=True)


def resume_handler(event: Any, context: Any) -> dict[str, Any]:
    return _run(parse_request(event, load_targets()), context, halting=False)


def tripwire_handler(event: Any, context: Any) -> dict[str, Any]:
    return _run(parse_tripwire(event, load_targets()), context, halting=True)
