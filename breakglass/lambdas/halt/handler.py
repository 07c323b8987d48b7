"""Entry points of the halt and resume Lambdas (thin: parse, validate, build clients, call the service).

The declared targets and the tripwires (``{alarm ARN: tripwire name}``) reach the functions in a
file of their own archive, ``breakglass-halt.json`` (``HALT_CONFIG_FILE``) under
``LAMBDA_TASK_ROOT``, written by the ``HaltActions`` component (fixed per deployment, with room for
its 1,000 targets); an event can only name targets from that list and a mode each allows.

Who may invoke: only the access API function (IAM-authorized ``POST /halts`` / ``POST /resumes``)
and, for halt, the tripwire rules. Emergency sessions cannot invoke these functions directly.

Events::

    halt / resume (the access API): all five keys required
        {"targets": ["chat"] | "all", "mode": "deny-invoke", "reason": "prompt-injection incident",
         "actor": "alice",           # the verified caller (USER_ID), resolved by the access API
         "request_id": "k3x9..."}    # the caller's active request (REQUEST_ID)
    tripwire (its EventBridge rule's input template):
        {"source": "breakglass.tripwire", "tripwire": "errors", "mode": "deny-invoke",
         "targets": [...], "alarm": <the CloudWatch Alarm State Change event>}

A tripwire event is believed only when its alarm ARN (``alarm.resources[0]``) is a configured
tripwire, its ``tripwire`` name is that alarm's configured name, and CloudWatch's DescribeAlarms
shows that alarm in ALARM *now*. State now, not history: it is the one fact a replayed or forged
event cannot supply, and a genuine trip stays in ALARM for at least one evaluation period while
EventBridge delivers in seconds; a trip that has already cleared when the function runs is refused
(logged; the alarm's own notification to the alert topic went out regardless, and a condition that
persists trips the alarm again). The actor recorded is ``tripwire:<configured name>``; the reason
is CloudWatch's state reason, never text from the event. A refusal halts nothing, is logged
(``tripwire refused``) and raises :class:`TripwireRefused`.

When a halt or resume acted but its audit records failed, the function fails with
``HaltAuditError``; its ``errorMessage`` is the full result as JSON (see the service).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from breakglass.contracts import HALT_CONFIG_FILE
from breakglass.lambdas.halt.service import HaltClients, RetryPolicy, WaitSettings, halt, resume
from breakglass.lambdas.runtime import (
    archive_json,
    audit_writer_from_env,
    get_logger,
    log_fields,
)
from breakglass.policies.halt import (
    ALARM_DETAIL_TYPE,
    MODES,
    TRIPWIRE_SOURCE,
    HaltTarget,
    alarm_name,
    parse_halt_config,
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

REQUEST_KEYS: Final = ("targets", "mode", "reason", "actor", "request_id")
# The client config of every call the handler makes itself (the service retries throttling).
NO_BOTOCORE_RETRIES: Final = Config(retries={"total_max_attempts": 1, "mode": "standard"})

logger = get_logger("breakglass.halt")


class TripwireRefused(Exception):
    """A tripwire event that could not be verified as its alarm's: nothing is halted."""


@dataclass(frozen=True)
class HaltRequest:
    targets: tuple[HaltTarget, ...]
    mode: str
    actor: str
    reason: str
    request_id: str | None = None
    trigger: Mapping[str, Any] | None = None
    alarm_arn: str | None = None


def load_config(environ: Mapping[str, str] | None = None) -> tuple[dict[str, HaltTarget], dict[str, str]]:
    """The declared targets by id and the configured tripwires ``{alarm ARN: name}``, from the
    function's own archive (a misconfigured function fails loudly, never halts nothing)."""
    targets, tripwires = parse_halt_config(HALT_CONFIG_FILE, archive_json(HALT_CONFIG_FILE, environ))
    return {t.id: t for t in targets}, tripwires


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
    """A halt / resume request from the access API: the verified caller and their active request.

    ``actor`` and ``request_id`` are required: the access API resolves the caller from the
    IAM-authenticated request context, never from a body, and names the request that gave them
    access. A person's id can never be ``tripwire:...`` (only a verified tripwire records that).
    """
    body = require_mapping("event", event)
    reject_unknown_keys("", body, REQUEST_KEYS)
    for name in REQUEST_KEYS:
        if name not in body:
            raise ConfigError(name, "is required")
    mode = require_choice("mode", body["mode"], MODES)
    return HaltRequest(
        targets=_select("targets", body["targets"], mode, catalog),
        mode=mode,
        actor=require_str("actor", body["actor"], pattern=USER_ID, hint=USER_ID_HINT),
        reason=require_str("reason", body["reason"], max_length=1000),
        request_id=require_str("request_id", body["request_id"], pattern=REQUEST_ID, hint=REQUEST_ID_HINT),
    )


def parse_tripwire(
    event: Any, catalog: Mapping[str, HaltTarget], tripwires: Mapping[str, str]
) -> HaltRequest:
    """The tripwire rule's input, checked against the configured tripwires (not yet against
    CloudWatch: see :func:`verify_alarm`). Raises :class:`TripwireRefused` for an alarm that is
    not a configured tripwire, ``ConfigError`` for a malformed event."""
    body = require_mapping("event", event)
    reject_unknown_keys("", body, ("source", "tripwire", "mode", "targets", "alarm"))
    if body.get("source") != TRIPWIRE_SOURCE:
        raise ConfigError("source", f"must be {TRIPWIRE_SOURCE!r}, got {body.get('source')!r}")
    claimed = require_str("tripwire", body.get("tripwire"), max_length=128)
    mode = require_choice("mode", body.get("mode"), MODES)
    alarm = require_mapping("alarm", body.get("alarm"))
    if alarm.get("source") != "aws.cloudwatch" or alarm.get("detail-type") != ALARM_DETAIL_TYPE:
        raise ConfigError("alarm", f"must be a {ALARM_DETAIL_TYPE!r} event from aws.cloudwatch")
    resources = alarm.get("resources")
    if not isinstance(resources, list) or len(resources) != 1 or not isinstance(resources[0], str):
        raise ConfigError("alarm.resources", "must hold exactly the ARN of the alarm that changed state")
    alarm_arn = resources[0]
    if alarm_arn not in tripwires:
        raise TripwireRefused(f"alarm {alarm_arn[:300]!r} is not a configured tripwire; nothing was halted")
    name = tripwires[alarm_arn]
    if claimed != name:
        raise TripwireRefused(
            f"the event names tripwire {claimed!r} but alarm {alarm_arn} is tripwire {name!r}; nothing was halted"
        )
    detail = require_mapping("alarm.detail", alarm.get("detail"))
    state = require_mapping("alarm.detail.state", detail.get("state"))
    if state.get("value") != "ALARM":
        # The rule only forwards ALARM; anything else reaching here is a wiring mistake, not a halt.
        raise ConfigError("alarm.detail.state.value", f"must be 'ALARM' to halt, got {state.get('value')!r}")
    return HaltRequest(
        targets=_select("targets", body.get("targets"), mode, catalog),
        mode=mode,
        actor=f"tripwire:{name}",
        reason=f"tripwire {name}: alarm {alarm_name(alarm_arn)} is in ALARM",
        trigger=dict(alarm),
        alarm_arn=alarm_arn,
    )


def verify_alarm(
    cloudwatch: Any, alarm_arn: str, *, region: str, account: str, retry: RetryPolicy | None = None
) -> Mapping[str, Any]:
    """CloudWatch's own description of ``alarm_arn``, which must be in this account and region and
    in ALARM now; raises :class:`TripwireRefused` otherwise."""
    parts = alarm_arn.split(":")
    if len(parts) < 7 or parts[3] != region or parts[4] != account:
        raise TripwireRefused(f"alarm {alarm_arn} is not in this function's account and region")
    try:
        found = (retry or RetryPolicy()).call(cloudwatch.describe_alarms, AlarmNames=[alarm_name(alarm_arn)])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise TripwireRefused(
            f"cannot read the state of alarm {alarm_arn} ({code}); nothing was halted"
        ) from exc
    alarms = [a for a in found.get("MetricAlarms", []) if a.get("AlarmArn") == alarm_arn]
    if not alarms:
        raise TripwireRefused(f"alarm {alarm_arn} does not exist; nothing was halted")
    state = alarms[0].get("StateValue")
    if state != "ALARM":
        raise TripwireRefused(f"alarm {alarm_arn} is {state}, not in ALARM; nothing was halted")
    return dict(alarms[0])


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
    config = NO_BOTOCORE_RETRIES
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
    return _run(parse_request(event, load_config()[0]), context, halting=True)


def resume_handler(event: Any, context: Any) -> dict[str, Any]:
    return _run(parse_request(event, load_config()[0]), context, halting=False)


def tripwire_handler(event: Any, context: Any) -> dict[str, Any]:
    """Halt for a verified tripwire; a refusal is logged and raised, and halts nothing."""
    catalog, tripwires = load_config()
    try:
        request = parse_tripwire(event, catalog, tripwires)
        _, region, account = location(context)
        cloudwatch = boto3.client("cloudwatch", region_name=region, config=NO_BOTOCORE_RETRIES)
        alarm = verify_alarm(cloudwatch, request.alarm_arn or "", region=region, account=account)
    except (TripwireRefused, ConfigError) as exc:
        alarm_event = event.get("alarm") if isinstance(event, Mapping) else None
        claimed = alarm_event.get("resources") if isinstance(alarm_event, Mapping) else None
        logger.warning(
            "tripwire refused",
            extra=log_fields(error=str(exc)[:1000], claimed_alarm=str(claimed)[:300]),
        )
        raise
    verified = replace(
        request,
        # CloudWatch's words, not the event's.
        reason=f"{request.reason}: {alarm.get('StateReason', '')}"[:1000],
        trigger={
            **(request.trigger or {}),
            "verified": {
                "alarm_arn": alarm.get("AlarmArn"),
                "state": alarm.get("StateValue"),
                "state_reason": alarm.get("StateReason"),
                "state_updated": str(alarm.get("StateUpdatedTimestamp", "")),
            },
        },
    )
    return _run(verified, context, halting=True)
