"""Run a Pulumi program offline under the SDK's mock runtime and record what it would create.

No CLI, no provider plugins, no credentials: every resource registration is answered by
:class:`RecordingMocks`, which echoes the inputs back as outputs (plus the ``id``/``arn`` a
provider would compute) and remembers each registration with its parent.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"


class SynthError(RuntimeError):
    """The program could not be synthesized; the message says why."""


@dataclass
class SynthResource:
    """One registration: what ``pulumi up`` would ask the provider to create."""

    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    urn: str
    custom: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "parent": self.parent, "inputs": to_plain(self.inputs)}


def to_plain(value: Any) -> Any:
    """Make registered inputs JSON-safe: assets and archives become a description of their source."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"path": str(value.path)}
    if isinstance(value, pulumi.StringAsset):
        return {"text": value.text}
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {k: to_plain(v) for k, v in value.assets.items()}}
    if isinstance(value, pulumi.Resource):
        return f"<resource {type(value).__name__}>"
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def fake_arn(type_token: str, name: str, inputs: Mapping[str, Any]) -> str:
    """The ARN a provider would return, so programs that wire ARNs together get real-looking values."""
    module = type_token.split(":")[1].split("/")[0] if ":" in type_token else "unknown"
    resource = type_token.rsplit(":", 1)[-1]
    physical = str(inputs.get("name") or inputs.get("bucket") or name)
    if module == "s3":
        return f"arn:{PARTITION}:s3:::{inputs.get('bucket') or name}"
    if module == "iam":
        kind = {"Role": "role", "User": "user", "Policy": "policy", "Group": "group"}.get(
            resource, "resource"
        )
        return f"arn:{PARTITION}:iam::{ACCOUNT_ID}:{kind}/{physical}"
    if module == "sns":
        return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT_ID}:{physical}"
    if module == "lambda":
        return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{physical}"
    if module == "sfn":
        return f"arn:{PARTITION}:states:{REGION}:{ACCOUNT_ID}:stateMachine:{physical}"
    if type_token == "aws:cloudwatch/logGroup:LogGroup":
        return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:{physical}"
    if module == "kms":
        return f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT_ID}:key/{name}-id"
    return f"arn:{PARTITION}:{module}:{REGION}:{ACCOUNT_ID}:{resource.lower()}/{physical}"


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers the engine like a provider would, for offline runs."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        physical = str(args.inputs.get("name") or args.inputs.get("bucket") or args.name)
        outputs.setdefault("arn", fake_arn(args.typ, args.name, args.inputs))
        if args.typ == "aws:s3/bucket:Bucket":
            outputs.setdefault("bucket", physical)
            outputs.setdefault("bucketDomainName", f"{physical}.s3.amazonaws.com")
        if args.typ in {"aws:iam/role:Role", "aws:lambda/function:Function", "aws:sns/topic:Topic"}:
            outputs.setdefault("name", physical)
        if args.typ == "aws:kms/key:Key":
            outputs.setdefault("keyId", f"{args.name}-id")
        if args.typ == "aws:apigatewayv2/api:Api":
            outputs.setdefault("apiEndpoint", f"https://{args.name}.execute-api.{REGION}.amazonaws.com")
        resource_id = args.resource_id or f"{physical}"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:root",
                "userId": ACCOUNT_ID,
            }, []
        if args.token in {"aws:index/getRegion:getRegion"}:
            return {"name": REGION, "region": REGION, "id": REGION}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": PARTITION, "dnsSuffix": "amazonaws.com", "id": PARTITION}, []
        return dict(args.args), []


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, remembering each registration's parent and inputs in order."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[SynthResource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        registration = self.resources.get(response.urn)
        inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
        parent = request.parent or None
        self.recorded.append(
            SynthResource(
                type=request.type,
                name=request.name,
                parent=parent,
                inputs=dict(inputs),
                urn=response.urn,
                custom=bool(request.custom),
                outputs=dict(registration.state) if registration else {},
                id=registration.id if registration else None,
            )
        )
        return response


@dataclass
class SynthResult:
    resources: list[SynthResource]
    outputs: dict[str, Any]

    def by_type(self, type_token: str) -> list[SynthResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> SynthResource:
        found = [r for r in self.by_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.by_type(type_token)]
            raise LookupError(f"expected one {type_token}{f' named {name}' if name else ''}, found {names}")
        return found[0]

    def as_json(self) -> list[dict[str, Any]]:
        return [r.as_json() for r in self.resources]


@contextmanager
def _quiet_deprecations() -> Iterator[None]:
    # pulumi_aws.s3 emits many DeprecationWarnings on import; they are noise for a reader.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@contextmanager
def _pulumi_config(config: Mapping[str, str], project: str) -> Iterator[None]:
    previous = os.environ.get("PULUMI_CONFIG")
    qualified = {k if ":" in k else f"{project}:{k}": v for k, v in config.items()}
    os.environ["PULUMI_CONFIG"] = json.dumps(qualified)
    token = pulumi.runtime.config.CONFIG.set(dict(qualified))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PULUMI_CONFIG", None)
        else:
            os.environ["PULUMI_CONFIG"] = previous
        pulumi.runtime.config.CONFIG.reset(token)


def synth(
    program: Callable[[], Any],
    *,
    project: str = "breakglass",
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    mocks: pulumi.runtime.Mocks | None = None,
) -> SynthResult:
    """Run ``program`` under mocks and return every resource it registered, in order.

    ``mocks`` answers the registrations (default :class:`RecordingMocks`, which echoes inputs;
    the emulator's deploy passes mocks that create each resource).
    """
    monitor = RecordingMonitor(mocks or RecordingMocks())
    stack_outputs: dict[str, Any] = {}
    with _quiet_deprecations(), _pulumi_config(config or {}, project):
        pulumi.runtime.settings.reset_options()
        pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
        root = pulumi.runtime.get_root_resource()
        try:
            _sync_await(run_pulumi_func(program))
        except SynthError:
            raise
        except Exception as exc:  # the program's own error, reported to a person
            raise SynthError(f"{type(exc).__name__}: {exc}") from exc
        if root is not None:
            stack_outputs = _resolve_outputs(getattr(root, "outputs", {}) or {})
    urn_to_name = {r.urn: r.name for r in monitor.recorded}
    for resource in monitor.recorded:
        if resource.parent is not None:
            resource.parent = urn_to_name.get(resource.parent)
    return SynthResult(resources=monitor.recorded, outputs=stack_outputs)


def _resolve_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in outputs.items():
        # from_input resolves Outputs nested in lists and dicts too (e.g. a list of role ARNs).
        resolved[key] = _sync_await(pulumi.Output.from_input(value).future())
    return resolved


def program_entry(program_dir: Path) -> Path:
    """The file Pulumi would run for ``program_dir``: ``main:`` in Pulumi.yaml, else ``__main__.py``."""
    directory = Path(program_dir)
    if not directory.is_dir():
        raise SynthError(f"PROGRAM_DIR {directory} is not a directory")
    project_file = directory / "Pulumi.yaml"
    if project_file.exists():
        for line in project_file.read_text().splitlines():
            if line.startswith("main:"):
                directory = (directory / line.split(":", 1)[1].strip()).resolve()
                break
    entry = directory if directory.is_file() else directory / "__main__.py"
    if not entry.exists():
        raise SynthError(f"no Pulumi program in {program_dir}: expected {entry}")
    return entry


def synth_directory(
    program_dir: Path,
    *,
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    mocks: pulumi.runtime.Mocks | None = None,
) -> SynthResult:
    """Synthesize the Pulumi Python program in ``program_dir`` as ``pulumi up`` would run it."""
    entry = program_entry(program_dir)
    project = _project_name(Path(program_dir)) or entry.parent.name
    sys.path.insert(0, str(entry.parent))
    try:
        return synth(
            lambda: runpy.run_path(str(entry), run_name="__main__"),
            project=project,
            stack=stack,
            config=config,
            mocks=mocks,
        )
    finally:
        sys.path.remove(str(entry.parent))


def _project_name(program_dir: Path) -> str | None:
    for candidate in (program_dir / "Pulumi.yaml", program_dir.parent / "Pulumi.yaml"):
        if candidate.exists():
            for line in candidate.read_text().splitlines():
                if line.startswith("name:"):
                    return line.split(":", 1)[1].strip()
    return None
