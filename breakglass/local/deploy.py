"""Deploy a Pulumi program into the emulator: the components themselves, created for real.

The program runs under the Pulumi SDK's mock runtime, as ``breakglass synth`` runs it
(:mod:`breakglass.local.synth`), with :class:`EmulatorMocks` answering the engine: each resource
the program registers is created in the running :class:`~breakglass.local.emulator.Emulator`
through boto3 (one handler per type, :mod:`breakglass.local.resources`), and the engine gets the
real ids, ARNs and attributes back. Every Output the components compute from them (policy
documents, environment variables, the state machine definition, routes, the approval URL) is
therefore the deployed value. ``aws:index/getCallerIdentity``, ``getRegion`` and
``getPartition`` are answered from the emulator.

Order: the SDK registers a resource only once every Output among its inputs has resolved and
every ``depends_on`` resource has been registered, which with these mocks means created; so
resources are created in the program's dependency order. Registrations are handled one at a time.

A type moto cannot emulate (:data:`~breakglass.local.resources.NOT_EMULATED`) is recorded as not
emulated, with its inputs and the reason; a type nobody handles, a handler's failure, or the
program's own error stops the deployment with a :class:`DeployError` saying which and why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pulumi
from pulumi.runtime import rpc

from breakglass.local.emulator import Emulator
from breakglass.local.resources import HANDLERS, NOT_EMULATED, ResourceContext
from breakglass.local.synth import SynthError, SynthResource, synth, synth_directory

# (type token, logical name, inputs) -> the inputs to create the resource with.
Transform = Callable[[str, str, dict[str, Any]], dict[str, Any]]

CALLER_IDENTITY: Final = "aws:index/getCallerIdentity:getCallerIdentity"
REGION: Final = "aws:index/getRegion:getRegion"
PARTITION: Final = "aws:index/getPartition:getPartition"


class DeployError(SynthError):
    """The program could not be deployed into the emulator; the message says which and why."""


def _plain(value: Any) -> Any:
    """Inputs with Pulumi's secret wrappers removed (the emulator needs the values themselves) and
    whole numbers as integers."""
    if isinstance(value, Mapping):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine's numbers are floats; the APIs want integers where they are
    return value


@dataclass(frozen=True)
class Outcome:
    """What the mocks did with one registration."""

    emulated: bool
    reason: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)


class EmulatorMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that create each registered resource in ``emulator`` and answer with it."""

    def __init__(self, emulator: Emulator, *, transform: Transform | None = None) -> None:
        self.emulator = emulator
        self.transform = transform
        self.outcomes: dict[tuple[str, str, str], Outcome] = {}
        self._clients: dict[str, Any] = {}
        self._clients_in: dict[str, dict[str, Any]] = {}
        # Explicit providers' regions by provider id (``aws.Provider(region=...)``): what they
        # create is created in that region, as the provider would.
        self._provider_regions: dict[str, str] = {}
        # The SDK registers from a thread pool; one registration at a time keeps creation in the
        # order the engine asked for it and the emulator's clients unshared.
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return args.name, dict(args.inputs)  # components exist only in the program
        if args.typ.startswith("pulumi:providers:"):
            provider_id = f"{args.name}-provider"
            region = dict(args.inputs).get("region")
            if isinstance(region, str) and region:
                self._provider_regions[provider_id] = region
            return provider_id, dict(args.inputs)
        if args.resource_id:
            # A read (Resource.get) or an import names a resource that exists already: nothing to create.
            return args.resource_id, dict(args.inputs)
        inputs = _plain(dict(args.inputs))
        if self.transform is not None:
            inputs = self.transform(args.typ, args.name, inputs)
        if args.typ in NOT_EMULATED:
            resource_id = f"not-emulated:{args.name}"
            self.outcomes[(args.typ, args.name, resource_id)] = Outcome(False, NOT_EMULATED[args.typ], inputs)
            return resource_id, dict(args.inputs)
        handler = HANDLERS.get(args.typ)
        if handler is None:
            raise DeployError(
                f"the emulator cannot deploy resource {args.name!r} of type {args.typ}: no handler for that type. "
                f"Add one to breakglass/local/resources.py (or list the type in NOT_EMULATED with the reason)."
            )
        region = self._region_of(args.provider)
        clients = self._clients if region is None else self._clients_in.setdefault(region, {})
        context = ResourceContext(self.emulator, args.typ, args.name, inputs, clients, region_name=region)
        with self._lock:
            try:
                created = handler(context)
            except DeployError:
                raise
            except Exception as exc:
                raise DeployError(
                    f"creating {args.typ} {args.name!r} in the emulator failed: {type(exc).__name__}: {exc}"
                ) from exc
        self.outcomes[(args.typ, args.name, created.id)] = Outcome(True, None, inputs)
        return created.id, {**dict(args.inputs), **dict(created.outputs)}

    def _region_of(self, provider: str | None) -> str | None:
        """The region of an explicit provider reference (``urn::id``), None for the default one."""
        if not provider:
            return None
        region = self._provider_regions.get(provider.rsplit("::", 1)[-1])
        return None if region == self.emulator.region else region

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        emulator = self.emulator
        if args.token == CALLER_IDENTITY:
            with self._lock:
                identity = emulator.client("sts").get_caller_identity()
            return {
                "accountId": identity["Account"],
                "arn": identity["Arn"],
                "userId": identity["UserId"],
                "id": identity["Account"],
            }, []
        if args.token == REGION:
            region = self._region_of(args.provider) or emulator.region
            return {
                "name": region,
                "region": region,
                "id": region,
                "description": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
            }, []
        if args.token == PARTITION:
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }, []
        raise DeployError(
            f"the emulator does not answer the function {args.token}: add it to EmulatorMocks.call"
        )


@dataclass(frozen=True)
class DeployedResource:
    """One registration as deployed: its physical id, ARN and outputs."""

    type: str
    name: str
    parent: str | None
    urn: str
    id: str | None
    arn: str | None
    outputs: Mapping[str, Any]
    inputs: Mapping[str, Any]
    custom: bool
    emulated: bool = True
    reason: str | None = None

    def output(self, key: str) -> Any:
        if key not in self.outputs:
            raise KeyError(f"{self.type} {self.name} has no output {key!r}; it has {sorted(self.outputs)}")
        return self.outputs[key]


@dataclass
class Deployment:
    """A program deployed into an emulator: its resources, its stack exports, and lookups."""

    emulator: Emulator
    project: str
    stack: str
    resources: list[DeployedResource]
    exports: dict[str, Any]
    seconds: float

    def __iter__(self) -> Iterator[DeployedResource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    @property
    def created(self) -> list[DeployedResource]:
        """The cloud resources created in the emulator (no components, nothing left out)."""
        return [r for r in self.resources if r.custom and r.emulated]

    @property
    def not_emulated(self) -> list[DeployedResource]:
        return [r for r in self.resources if r.custom and not r.emulated]

    def by_type(self, type_token: str) -> list[DeployedResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> DeployedResource:
        """The resource with logical name ``name`` (the name the program gave it)."""
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise LookupError(
                f"{len(found)} resources are named {name!r}"
                + (
                    f": {[r.type for r in found]}"
                    if found
                    else "; names start with: " + ", ".join(self._names()[:20])
                )
            )
        return found[0]

    def one(self, type_token: str, name: str | None = None) -> DeployedResource:
        found = [r for r in self.by_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.by_type(type_token)]
            raise LookupError(f"expected one {type_token}{f' named {name}' if name else ''}, found {names}")
        return found[0]

    def output(self, key: str) -> Any:
        """A stack export (``pulumi.export(key, ...)``) as deployed."""
        if key not in self.exports:
            raise KeyError(f"the stack exports no {key!r}; it exports {sorted(self.exports)}")
        return self.exports[key]

    def api_url(self, api: str) -> str:
        """The local base URL serving the HTTP API with logical name ``api`` (its apiEndpoint)."""
        resource = self.one("aws:apigatewayv2/api:Api", api)
        return self.emulator.http_apis.url(str(resource.id))

    def function_arn(self, name: str) -> str:
        """The ARN of the Lambda function with logical name ``name``."""
        return str(self.one("aws:lambda/function:Function", name).arn)

    def listing(self) -> str:
        """Each resource with its real ARN (or id), one per line, in creation order."""
        created = [r for r in self.resources if r.custom]
        width = max((len(r.type) for r in created), default=0)
        name_width = max((len(r.name) for r in created), default=0)
        lines = []
        for r in created:
            where = r.arn or r.id or ""
            if not r.emulated:
                where = f"NOT EMULATED: {r.reason}"
            lines.append(f"{r.type:<{width}}  {r.name:<{name_width}}  {where}")
        return "\n".join(lines)

    def _names(self) -> list[str]:
        return sorted(r.name for r in self.resources)


def _deployment(
    emulator: Emulator,
    mocks: EmulatorMocks,
    recorded: list[SynthResource],
    exports: dict[str, Any],
    project: str,
    stack: str,
    seconds: float,
) -> Deployment:
    resources = []
    for r in recorded:
        outcome = mocks.outcomes.get((r.type, r.name, str(r.id)))
        outputs = _plain(dict(r.outputs))
        resources.append(
            DeployedResource(
                type=r.type,
                name=r.name,
                parent=r.parent,
                urn=r.urn,
                id=r.id if r.custom else None,
                arn=str(outputs["arn"]) if r.custom and outputs.get("arn") else None,
                outputs=outputs,
                inputs=outcome.inputs if outcome else _plain(dict(r.inputs)),
                custom=r.custom,
                emulated=outcome.emulated if outcome else True,
                reason=outcome.reason if outcome else None,
            )
        )
    return Deployment(emulator, project, stack, resources, _plain(exports), seconds)


def deploy(
    program: Callable[[], Any],
    emulator: Emulator,
    *,
    project: str = "breakglass",
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    transform: Transform | None = None,
) -> Deployment:
    """Run ``program`` (a Pulumi program as a callable) and create what it registers in ``emulator``.

    ``transform`` may change a resource's inputs before it is created (tests use it to take a
    permission away from one function).
    """
    mocks = EmulatorMocks(emulator, transform=transform)
    started = time.perf_counter()
    result = _run(lambda: synth(program, project=project, stack=stack, config=config, mocks=mocks))
    return _deployment(
        emulator, mocks, result.resources, result.outputs, project, stack, time.perf_counter() - started
    )


def deploy_directory(
    program_dir: Path | str,
    emulator: Emulator,
    *,
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    transform: Transform | None = None,
) -> Deployment:
    """Deploy the Pulumi Python program in ``program_dir`` (``__main__.py``, e.g. examples/quickstart)."""
    mocks = EmulatorMocks(emulator, transform=transform)
    started = time.perf_counter()
    result = _run(lambda: synth_directory(Path(program_dir), stack=stack, config=config, mocks=mocks))
    project = Path(program_dir).name
    return _deployment(
        emulator, mocks, result.resources, result.outputs, project, stack, time.perf_counter() - started
    )


def _run(run: Callable[[], Any]) -> Any:
    try:
        return run()
    except DeployError:
        _quiet_reported_failures()
        raise
    except SynthError as exc:
        _quiet_reported_failures()
        raise DeployError(f"the Pulumi program failed: {exc}") from exc


def _quiet_reported_failures() -> None:
    """The SDK keeps the failed registrations' futures; when they are collected asyncio would print
    the error (already raised to the caller) once more, with a traceback, at exit."""
    import asyncio

    loop = asyncio.get_event_loop_policy().get_event_loop()
    default = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), SynthError):
            return
        if default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


__all__ = [
    "DeployError",
    "DeployedResource",
    "Deployment",
    "EmulatorMocks",
    "Transform",
    "deploy",
    "deploy_directory",
]
