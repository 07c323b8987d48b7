"""EventBridge deliveries moto does not make: rule targets that are Lambda functions or SNS topics,
and the events CloudWatch alarms emit when they change state.

moto matches events against rules but delivers only to log groups, SQS queues, archives, other
buses and API destinations; a rule targeting a Lambda function or an SNS topic raises
NotImplementedError, and an alarm changing state emits nothing. :func:`install` replaces
``moto.events.models.Rule.send_to_targets`` with :func:`send_to_targets` (moto's pattern
matching, then delivery by this module) and makes ``Alarm.update_state`` put the
``CloudWatch Alarm State Change`` event AWS puts on the default bus (and publish to the alarm's
SNS actions on ALARM), so ``SetAlarmState`` drives a tripwire the way AWS does.

Deliveries run synchronously, in the thread that put the event (AWS delivers asynchronously and
retries), so a test can look at the outcome as soon as the call returns; each one is kept
(:func:`deliveries`). A Lambda target runs only if the function's resource policy lets
``events.amazonaws.com`` invoke it for that rule (``aws:SourceArn``), under its own role.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from breakglass.contracts import iso, utc_now
from breakglass.local import calls
from breakglass.local.iam_enforcement import function_admits

ALARM_DETAIL_TYPE: Final = "CloudWatch Alarm State Change"
EVENTS_PRINCIPAL: Final = "events.amazonaws.com"


@dataclass(frozen=True)
class Delivery:
    """One event delivered (or not) to one rule target."""

    account_id: str
    rule_arn: str
    target_id: str
    target_arn: str
    input: Any
    outcome: str  # "delivered", "failed" (the target ran and failed), "refused", "not emulated"
    detail: str = ""
    response: Any = None


_DELIVERIES: list[Delivery] = []
_LOCK = threading.Lock()


def deliveries(account_id: str | None = None) -> list[Delivery]:
    """Every delivery made so far (of one account), oldest first."""
    with _LOCK:
        return [d for d in _DELIVERIES if account_id is None or d.account_id == account_id]


def _record(delivery: Delivery) -> Delivery:
    with _LOCK:
        _DELIVERIES.append(delivery)
    return delivery


# -- the event as a target receives it -------------------------------------------------------


def aws_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """moto's event message in AWS's shape: ``time`` as ISO 8601, no ``ingestion-time``."""
    shaped = {k: v for k, v in event.items() if k != "ingestion-time"}
    moment = shaped.get("time")
    if isinstance(moment, int | float):
        shaped["time"] = iso(datetime.fromtimestamp(moment, UTC))
    return shaped


def _json_path(document: Any, path: str) -> Any:
    from jsonpath_ng.ext import parse

    matches = parse(path).find(document)
    return matches[0].value if matches else None


def _render(template: str, values: Mapping[str, Any]) -> Any:
    """An input template with ``<name>`` filled: quoted placeholders get the text, others JSON."""

    def fill(match: re.Match[str]) -> str:
        quoted, name = match.group(1), match.group(2)
        if name not in values:
            return match.group(0)
        value = values[name]
        if quoted:
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            return '"' + json.dumps(text)[1:-1] + '"'
        return json.dumps(value, separators=(",", ":"))

    rendered = re.sub(r'("?)<([\w.-]+)>\1', fill, template)
    try:
        return json.loads(rendered)
    except ValueError:
        return rendered


def target_input(target: Mapping[str, Any], event: Mapping[str, Any], rule_arn: str, rule_name: str) -> Any:
    """What the target receives: Input, InputPath, InputTransformer, or the whole event."""
    if target.get("Input") is not None:
        return json.loads(str(target["Input"]))
    if target.get("InputPath"):
        return _json_path(event, str(target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer:
        values = {
            name: _json_path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()
        }
        values.update(
            {
                "aws.events.event.json": dict(event),
                "aws.events.rule-arn": rule_arn,
                "aws.events.rule-name": rule_name,
                "aws.events.event.ingestion-time": event.get("time"),
            }
        )
        return _render(str(transformer.get("InputTemplate") or ""), values)
    return dict(event)


# -- delivery ------------------------------------------------------------------------------------


def _deliver_to_lambda(rule: Any, target: Mapping[str, Any], payload: Any) -> Delivery:
    from moto.awslambda.models import lambda_backends

    arn = str(target["Arn"])
    base = dict(
        account_id=rule.account_id,
        rule_arn=rule.arn,
        target_id=str(target.get("Id")),
        target_arn=arn,
        input=payload,
    )
    try:
        function = lambda_backends[rule.account_id][rule.region_name].get_function(arn)
    except Exception as exc:
        return _record(Delivery(**base, outcome="failed", detail=f"no such function: {exc}"))
    if not function_admits(function, EVENTS_PRINCIPAL, source_arn=rule.arn, source_account=rule.account_id):
        return _record(
            Delivery(
                **base,
                outcome="refused",
                detail=f"the function's policy does not let {EVENTS_PRINCIPAL} invoke it for {rule.arn}",
            )
        )
    response_headers: dict[str, str] = {}
    result = function.invoke(json.dumps(payload), {"x-amz-invocation-type": "Event"}, response_headers)
    text = result.decode() if isinstance(result, bytes) else str(result)
    try:
        response = json.loads(text)
    except ValueError:
        response = text
    failed = "x-amz-function-error" in response_headers
    return _record(Delivery(**base, outcome="failed" if failed else "delivered", response=response))


def _deliver_to_topic(rule: Any, target: Mapping[str, Any], payload: Any) -> Delivery:
    from moto.sns.models import sns_backends

    arn = str(target["Arn"])
    base = dict(
        account_id=rule.account_id,
        rule_arn=rule.arn,
        target_id=str(target.get("Id")),
        target_arn=arn,
        input=payload,
    )
    region = arn.split(":")[3]
    topic = sns_backends[rule.account_id][region].topics.get(arn)
    if topic is None:
        return _record(Delivery(**base, outcome="failed", detail="no such topic"))
    message = payload if isinstance(payload, str) else json.dumps(payload)
    return _record(Delivery(**base, outcome="delivered", response=topic.publish(message=message)))


def _deliver_to_queue(rule: Any, target: Mapping[str, Any], payload: Any) -> Delivery:
    from moto.sqs.models import sqs_backends

    arn = str(target["Arn"])
    base = dict(
        account_id=rule.account_id,
        rule_arn=rule.arn,
        target_id=str(target.get("Id")),
        target_arn=arn,
        input=payload,
    )
    parts = arn.split(":")
    message = payload if isinstance(payload, str) else json.dumps(payload)
    sqs_backends[parts[4]][parts[3]].send_message(parts[5], message)
    return _record(Delivery(**base, outcome="delivered"))


_DELIVER: Final = {"lambda": _deliver_to_lambda, "sns": _deliver_to_topic, "sqs": _deliver_to_queue}


def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
    """``Rule.send_to_targets``: moto's matching, then this module's delivery to each target."""
    if calls.current() is None:
        _ORIGINALS["send_to_targets"](self, original_event, transform_input)
        return
    if self.state != "ENABLED" or not self.event_pattern.matches_event(original_event):
        return
    if getattr(self, "scheduled_expression", None) and not getattr(self.event_pattern, "_raw_pattern", None):
        return  # a schedule, not a pattern: AWS matches no event against it
    event = aws_event(original_event)
    for target in self.targets:
        service = str(target.get("Arn", "")).split(":")[2] if ":" in str(target.get("Arn", "")) else ""
        payload = target_input(target, event, self.arn, self.name) if transform_input else event
        deliver = _DELIVER.get(service)
        if deliver is None:
            _record(
                Delivery(
                    account_id=self.account_id,
                    rule_arn=self.arn,
                    target_id=str(target.get("Id")),
                    target_arn=str(target.get("Arn")),
                    input=payload,
                    outcome="not emulated",
                    detail=f"the emulator delivers to Lambda, SNS and SQS targets, not {service or 'this'}",
                )
            )
            continue
        try:
            deliver(self, target, payload)
        except Exception as exc:  # a failed delivery is EventBridge's to retry, never the caller's error
            _record(
                Delivery(
                    account_id=self.account_id,
                    rule_arn=self.arn,
                    target_id=str(target.get("Id")),
                    target_arn=str(target.get("Arn")),
                    input=payload,
                    outcome="failed",
                    detail=f"{type(exc).__name__}: {exc}",
                )
            )


# -- CloudWatch alarms ---------------------------------------------------------------------------


def _alarm_time(moment: datetime | None) -> str:
    # CloudWatch's own format in alarm events: milliseconds and a +0000 offset.
    when = (moment or utc_now()).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def alarm_state_change_detail(alarm: Any, previous: Mapping[str, Any]) -> dict[str, Any]:
    """The ``detail`` of the event CloudWatch puts on the default bus when an alarm changes state."""
    metric: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "metricStat": {
            "metric": {
                "namespace": alarm.namespace,
                "name": alarm.metric_name,
                "dimensions": {d.name: d.value for d in alarm.dimensions or []},
            },
            "period": int(alarm.period or 60),
            "stat": alarm.statistic or alarm.extended_statistic,
        },
        "returnData": True,
    }
    return {
        "alarmName": alarm.name,
        "state": {
            "value": alarm.state_value,
            "reason": alarm.state_reason,
            "reasonData": alarm.state_reason_data or "",
            "timestamp": _alarm_time(utc_now()),
        },
        "previousState": {
            "value": previous.get("value"),
            "reason": previous.get("reason") or "",
            "timestamp": _alarm_time(previous.get("timestamp")),
        },
        "configuration": {"description": alarm.description or "", "metrics": [metric]},
    }


def _update_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
    assert _ORIGINALS["update_state"] is not None
    previous = {
        "value": self.state_value,
        "reason": self.state_reason,
        "timestamp": self.state_updated_timestamp,
    }
    _ORIGINALS["update_state"](self, reason, reason_data, state_value)
    # Only emulators' alarms emit; other moto users keep moto's behaviour.
    if calls.current() is None or previous["value"] == state_value:
        return
    from moto.events.models import events_backends
    from moto.sns.models import sns_backends

    account_id = str(self.alarm_arn).split(":")[4]
    events_backends[account_id][self.region_name].put_events(
        [
            {
                "Source": "aws.cloudwatch",
                "DetailType": ALARM_DETAIL_TYPE,
                "Detail": json.dumps(alarm_state_change_detail(self, previous)),
                "Resources": [self.alarm_arn],
                "Time": iso(utc_now()),
            }
        ]
    )
    actions = {"ALARM": self.alarm_actions, "OK": self.ok_actions}.get(state_value) or []
    if self.actions_enabled:
        for arn in actions:
            if str(arn).split(":")[2:3] == ["sns"]:
                topic = sns_backends[account_id][str(arn).split(":")[3]].topics.get(arn)
                if topic is not None:
                    topic.publish(message=json.dumps({"AlarmName": self.name, "NewStateValue": state_value}))


_ORIGINALS: dict[str, Any] = {"send_to_targets": None, "update_state": None, "users": 0}
_INSTALL_LOCK = threading.Lock()


def install() -> None:
    """Deliver to Lambda/SNS/SQS targets and emit alarm events (counted; see :func:`uninstall`)."""
    from moto.cloudwatch.models import Alarm
    from moto.events.models import Rule

    with _INSTALL_LOCK:
        if _ORIGINALS["users"] == 0:
            _ORIGINALS["send_to_targets"] = Rule.send_to_targets
            _ORIGINALS["update_state"] = Alarm.update_state
            Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
            Alarm.update_state = _update_state  # type: ignore[method-assign]
        _ORIGINALS["users"] += 1


def uninstall() -> None:
    from moto.cloudwatch.models import Alarm
    from moto.events.models import Rule

    with _INSTALL_LOCK:
        if _ORIGINALS["users"] == 0:
            return
        _ORIGINALS["users"] -= 1
        if _ORIGINALS["users"] == 0:
            Rule.send_to_targets = _ORIGINALS["send_to_targets"]  # type: ignore[method-assign]
            Alarm.update_state = _ORIGINALS["update_state"]  # type: ignore[method-assign]


__all__ = [
    "ALARM_DETAIL_TYPE",
    "Delivery",
    "aws_event",
    "deliveries",
    "install",
    "send_to_targets",
    "target_input",
    "uninstall",
]
