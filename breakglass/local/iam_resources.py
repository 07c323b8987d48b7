"""Which resource (and IAM action) each call to the emulator is authorized on.

moto names a resource only for S3, SQS, IAM role operations and AssumeRole, and checks every other
call against ``*``, which a statement naming ARNs never matches. :func:`resources_of` resolves the
resource from the call's parameters for the services this package's functions use (one small
resolver per service, :data:`RESOLVERS`), and the IAM action where it differs from the API
operation (Lambda's ``Invoke`` is ``lambda:InvokeFunction``; a DynamoDB transaction is authorized
as the item actions it contains, each on its table). When the resource cannot be told, the action
alone decides (:data:`~breakglass.local.iam_conditions.ANY_RESOURCE`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from breakglass.local.iam_conditions import ANY_RESOURCE


@dataclass(frozen=True)
class CallView:
    """One call as the resource resolvers see it."""

    service: str  # boto3's service name (e.g. "stepfunctions", "lambda")
    operation: str  # the API operation (e.g. "SendTaskSuccess")
    params: Mapping[str, Any]
    uri_params: Mapping[str, str]
    path: str
    account: str
    region: str
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, region: str | None = None) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region is None else region}:{self.account}:{resource}"


Resolver = Callable[[CallView], list[tuple[str, str]] | None]
RESOLVERS: dict[str, Resolver] = {}
# API operations whose IAM action has another name.
_IAM_ACTION_NAMES: Final = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeAsync"): "InvokeFunction",
}


def _resolver(service: str) -> Callable[[Resolver], Resolver]:
    def register(function: Resolver) -> Resolver:
        RESOLVERS[service] = function
        return function

    return register


def _one(view: CallView, action: str, arn: str | None) -> list[tuple[str, str]] | None:
    return None if arn is None else [(action, arn)]


def _action(view: CallView, prefix: str) -> str:
    return f"{prefix}:{_IAM_ACTION_NAMES.get((view.service, view.operation), view.operation)}"


@_resolver("dynamodb")
def _dynamodb(view: CallView) -> list[tuple[str, str]] | None:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else view.arn("dynamodb", f"table/{name}")

    # A transaction is authorized as the item actions it contains, each on its table.
    item_actions = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "Get": "GetItem"}
    item_actions["ConditionCheck"] = "ConditionCheckItem"
    if view.operation in ("TransactWriteItems", "TransactGetItems"):
        found = []
        for item in view.params.get("TransactItems") or []:
            for kind, body in item.items():
                if kind in item_actions and isinstance(body, Mapping) and body.get("TableName"):
                    found.append((f"dynamodb:{item_actions[kind]}", table(str(body["TableName"]))))
        return found or None
    if view.operation in ("BatchWriteItem", "BatchGetItem"):
        names = list((view.params.get("RequestItems") or {}).keys())
        return [(_action(view, "dynamodb"), table(n)) for n in names] or None
    name = view.params.get("TableName")
    return _one(view, _action(view, "dynamodb"), table(str(name)) if name else None)


def _kms_key_arn(view: CallView, key_id: str) -> str | None:
    from moto.kms.models import kms_backends

    if key_id.startswith("arn:") and ":key/" in key_id:
        return key_id
    backend = kms_backends[view.account][view.region]
    try:
        resolved = backend.any_id_to_key_id(key_id.split(":")[-1] if key_id.startswith("arn:") else key_id)
    except Exception:
        return None
    return view.arn("kms", f"key/{resolved}") if resolved else None


@_resolver("kms")
def _kms(view: CallView) -> list[tuple[str, str]] | None:
    key_id = view.params.get("KeyId") or view.params.get("DestinationKeyId")
    if not key_id and view.params.get("CiphertextBlob"):
        # moto's ciphertext starts with the key id (36 characters), as KMS's names its key.
        try:
            key_id = base64.b64decode(str(view.params["CiphertextBlob"]))[:36].decode()
        except (ValueError, UnicodeDecodeError):
            key_id = None
    arn = _kms_key_arn(view, str(key_id)) if key_id else None
    return _one(view, _action(view, "kms"), arn)


@_resolver("secretsmanager")
def _secretsmanager(view: CallView) -> list[tuple[str, str]] | None:
    from moto.secretsmanager.models import secretsmanager_backends

    secret_id = view.params.get("SecretId")
    if not secret_id:
        return None
    arn: str | None
    try:
        secret = secretsmanager_backends[view.account][view.region].secrets[str(secret_id)]
        arn = str(secret.arn)
    except Exception:
        arn = str(secret_id) if str(secret_id).startswith("arn:") else None
    return _one(view, _action(view, "secretsmanager"), arn)


@_resolver("sns")
def _sns(view: CallView) -> list[tuple[str, str]] | None:
    arn = view.params.get("TopicArn") or view.params.get("TargetArn")
    return _one(view, _action(view, "sns"), str(arn) if arn else None)


def _address(text: str) -> str:
    match = re.search(r"<([^>]+)>", text)
    return (match.group(1) if match else text).strip()


@_resolver("ses")
def _ses(view: CallView) -> list[tuple[str, str]] | None:
    source = view.params.get("Source") or view.params.get("FromArn") or view.params.get("Identity")
    if not source:
        return None
    source = str(source)
    arn = source if source.startswith("arn:") else view.arn("ses", f"identity/{_address(source)}")
    return _one(view, _action(view, "ses"), arn)


@_resolver("sesv2")
def _sesv2(view: CallView) -> list[tuple[str, str]] | None:
    source = view.params.get("FromEmailAddressIdentityArn") or view.params.get("FromEmailAddress")
    if not source:
        return None
    source = str(source)
    arn = source if source.startswith("arn:") else view.arn("ses", f"identity/{_address(source)}")
    return _one(view, f"ses:{view.operation}", arn)


def _state_machine_of_token(view: CallView, token: str) -> str | None:
    # The emulator runs state machines on moto's interpreter, whose backend is its own.
    from moto.stepfunctions.responses import get_backend

    backend = get_backend(view.account, view.region)
    for machine in list(getattr(backend, "state_machines", [])):
        for execution in list(getattr(machine, "executions", [])):
            worker = getattr(execution, "exec_worker", None)
            pool = getattr(getattr(worker, "env", None), "callback_pool_manager", None)
            if pool is not None and pool.get(token) is not None:
                return str(machine.arn)
    return None


@_resolver("stepfunctions")
def _stepfunctions(view: CallView) -> list[tuple[str, str]] | None:
    for key in ("stateMachineArn", "executionArn", "mapRunArn", "activityArn"):
        if view.params.get(key):
            return [(_action(view, "states"), str(view.params[key]))]
    token = view.params.get("taskToken")
    if token:
        return _one(view, _action(view, "states"), _state_machine_of_token(view, str(token)))
    return None


@_resolver("lambda")
def _lambda(view: CallView) -> list[tuple[str, str]] | None:
    name = view.uri_params.get("FunctionName")
    if not name:
        match = re.search(r"/functions/([^/]+)", view.path)
        name = unquote(match.group(1)) if match else None
    if not name:
        return None
    qualifier = view.params.get("Qualifier")
    arn = name if name.startswith("arn:") else view.arn("lambda", f"function:{name}")
    if qualifier and not name.startswith("arn:"):
        arn = f"{arn}:{qualifier}"
    return [(_action(view, "lambda"), arn)]


@_resolver("sagemaker")
def _sagemaker(view: CallView) -> list[tuple[str, str]] | None:
    if view.params.get("ResourceArn"):
        return [(_action(view, "sagemaker"), str(view.params["ResourceArn"]))]
    found = []
    # SageMaker ARNs carry names in lower case.
    for key, kind in (("EndpointName", "endpoint"), ("EndpointConfigName", "endpoint-config")):
        if view.params.get(key):
            found.append(
                (_action(view, "sagemaker"), view.arn("sagemaker", f"{kind}/{str(view.params[key]).lower()}"))
            )
    if view.params.get("ModelName") and not found:
        found.append(
            (
                _action(view, "sagemaker"),
                view.arn("sagemaker", f"model/{str(view.params['ModelName']).lower()}"),
            )
        )
    return found or None


@_resolver("iam")
def _iam(view: CallView) -> list[tuple[str, str]] | None:
    if view.params.get("PolicyArn") and not view.params.get("RoleName"):
        return [(_action(view, "iam"), str(view.params["PolicyArn"]))]
    if view.params.get("UserName"):
        return [
            (_action(view, "iam"), f"arn:{view.partition}:iam::{view.account}:user/{view.params['UserName']}")
        ]
    return None


@_resolver("events")
def _events(view: CallView) -> list[tuple[str, str]] | None:
    name = view.params.get("Name") or view.params.get("Rule")
    return _one(view, _action(view, "events"), view.arn("events", f"rule/{name}") if name else None)


@_resolver("cloudwatch")
def _cloudwatch(view: CallView) -> list[tuple[str, str]] | None:
    # One alarm (AlarmName), or several (DescribeAlarms' AlarmNames, a list or query members).
    names = [view.params["AlarmName"]] if view.params.get("AlarmName") else []
    listed = view.params.get("AlarmNames")
    if isinstance(listed, list):
        names += [str(n) for n in listed]
    names += [str(v) for k, v in sorted(view.params.items()) if k.startswith("AlarmNames.member.")]
    if not names:
        return None
    action = _action(view, "cloudwatch")
    return [(action, view.arn("cloudwatch", f"alarm:{name}")) for name in names]


@_resolver("ssm")
def _ssm(view: CallView) -> list[tuple[str, str]] | None:
    name = view.params.get("Name")
    if not name:
        return None
    return [(_action(view, "ssm"), view.arn("ssm", f"parameter/{str(name).lstrip('/')}"))]


def call_params(response: Any) -> dict[str, Any]:
    """The request's parameters, whatever the protocol: query string or form, then a JSON body."""
    params: dict[str, Any] = {}
    for key, value in (getattr(response, "querystring", None) or {}).items():
        params[key] = value[0] if isinstance(value, list) and len(value) == 1 else value
    body = getattr(response, "body", None)
    if isinstance(body, Mapping):  # some services (DynamoDB) keep the JSON body parsed
        params.update(body)
        return params
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body.lstrip().startswith("{"):
        try:
            loaded = json.loads(body)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            params.update(loaded)
    return params


def resources_of(response: Any, action: str, moto_resource: str) -> list[tuple[str, str]]:
    """(IAM action, resource ARN) pairs one call is authorized as.

    moto's own resource wins where it names one; else the service's resolver; else the action
    alone decides (:data:`ANY_RESOURCE`).
    """
    # moto's names differ from boto3's for some services (awslambda); resolvers use boto3's.
    service = str(getattr(response, "boto3_service_name", "") or getattr(response, "service_name", "") or "")
    signing = _signing_prefix(response)
    # A signing name is the IAM prefix except where AWS differs (CloudWatch signs as "monitoring").
    prefix = _IAM_PREFIX_BY_SIGNING_NAME.get(signing or "", signing) or service
    default_action = f"{prefix}:{_IAM_ACTION_NAMES.get((service, action), action)}"
    if moto_resource != "*":
        return [(default_action, moto_resource)]
    resolver = RESOLVERS.get(service)
    if resolver is None:
        return [(default_action, ANY_RESOURCE)]
    view = CallView(
        service=service,
        operation=action,
        params=call_params(response),
        uri_params={str(k): str(v) for k, v in (getattr(response, "uri_match", None) or {}).items()},
        path=str(getattr(response, "path", "") or ""),
        account=str(response.current_account),
        region=str(response.region),
    )
    try:
        found = resolver(view)
    except Exception:
        found = None
    return found or [(default_action, ANY_RESOURCE)]


_IAM_PREFIX_BY_SIGNING_NAME: Final = {"monitoring": "cloudwatch"}


def _signing_prefix(response: Any) -> str | None:
    authorization = str(response.headers.get("Authorization") or "")
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", authorization)
    return match.group(1) if match else None


__all__ = ["RESOLVERS", "CallView", "call_params", "resources_of"]
