"""Run a Pulumi program offline under the SDK's mock runtime and record what it would create.

No CLI, no provider plugins, no credentials: every resource registration is answered by
:class:`RecordingMocks`, which echoes the inputs back as outputs (plus the ``id``/``arn`` a
provider would compute, in the configured region and account) and remembers each registration
with its parent. A string output only the provider could know (an API's execution ARN, a key's
id) is answered with a visible ``<unknown: NAME.PROPERTY>`` marker, never with ``None`` or a
value that looks real.

Same program, same result: the SDK registers resources from several threads, in an order that
changes from run to run, so the recorded resources are put back in the order the program
constructed them (a stack transformation sees each construction, synchronously, in program
order). :func:`to_plain` prints a secret as ``[secret]``: the program's secrets (the approval
link key is random on every run) never reach a reader and never make two runs differ.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import sys
import threading
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any, Final

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import get_project, get_stack
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

# Defaults when the stack config names no region (``aws:region``) and no account (``--account``
# or a single ``aws:allowedAccountIds``): the region Pulumi's AWS provider is most often set to,
# and the account id AWS's own documentation uses as an example.
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
REGION_KEY: Final = "aws:region"
ACCOUNTS_KEY: Final = "aws:allowedAccountIds"
ACCOUNT_PATTERN: Final = re.compile(r"^[0-9]{12}$")

STACK_TYPE: Final = "pulumi:pulumi:Stack"
PROGRAM_HINT: Final = "name a directory holding a Pulumi Python program (__main__.py)"
ACCOUNT_HINT: Final = "a 12-digit AWS account id, e.g. --account 111122223333"
ACCOUNTS_HINT: Final = (
    """a JSON list of 12-digit account ids, e.g. --config 'aws:allowedAccountIds=["111122223333"]'"""
)
SECRET: Final = "[secret]"
KNOWN_AFTER_DEPLOY: Final = "(known after deploy)"
# Archive paths are shown relative to the directory holding the breakglass package, so two
# checkouts of the same program give the same bytes.
_PACKAGE_ROOT: Final = Path(__file__).resolve().parents[2]


class SynthError(RuntimeError):
    """The program could not be synthesized; the message says why."""


class SynthInputError(SynthError):
    """What synth was given is wrong (no readable program there, a malformed account), not the program."""

    def __init__(self, message: str, *, hint: str = PROGRAM_HINT) -> None:
        super().__init__(message)
        self.hint = hint


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
    # Inputs a later `pulumi up` keeps from the state rather than from the program.
    ignore_changes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = {"type": self.type, "name": self.name, "parent": self.parent, "inputs": to_plain(self.inputs)}
        if self.ignore_changes:
            data["ignore_changes"] = list(self.ignore_changes)
        return data

    def shipped_json(self, file_name: str) -> Any:
        """A Lambda function's configuration file ``file_name``, from its archive (``files=``)."""
        return json.loads(self.inputs["code"].assets[file_name].text)

    def matches(self, pattern: str) -> bool:
        """``pattern`` (a shell glob) matches the type token, the type's name or the resource name."""
        return any(
            fnmatchcase(candidate, pattern)
            for candidate in (self.type, self.type.rsplit(":", 1)[-1], self.name)
        )


def to_plain(value: Any) -> Any:
    """Make registered inputs JSON-safe and fit to show: a secret becomes ``[secret]``, a value
    not known before deploy ``(known after deploy)``, assets and archives a description of their source."""
    if isinstance(value, Mapping):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if is_unknown(value):
        return KNOWN_AFTER_DEPLOY
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine carries every number as a float; the program wrote 3600
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"path": _shown_path(str(value.path))}
    if isinstance(value, pulumi.StringAsset):
        return {"text": value.text}
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {k: to_plain(v) for k, v in value.assets.items()}}
    if isinstance(value, pulumi.Resource):
        return f"<resource {type(value).__name__}>"
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def is_unknown(value: Any) -> bool:
    """A value only known after deploy (the engine's marker, or the SDK's ``Unknown`` kept by
    :class:`RecordingMonitor`)."""
    return isinstance(value, pulumi.output.Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN)


def _shown_path(path: str) -> str:
    resolved = Path(path).resolve()
    return str(resolved.relative_to(_PACKAGE_ROOT)) if resolved.is_relative_to(_PACKAGE_ROOT) else path


def fake_arn(
    type_token: str,
    name: str,
    inputs: Mapping[str, Any],
    *,
    region: str = REGION,
    account: str = ACCOUNT_ID,
) -> str:
    """The ARN a provider would return, in ``region`` and ``account``, so programs that wire ARNs
    together get well-formed values."""
    module = type_token.split(":")[1].split("/")[0] if ":" in type_token else "unknown"
    resource = type_token.rsplit(":", 1)[-1]
    physical = str(inputs.get("name") or inputs.get("bucket") or name)
    if module == "s3":
        return f"arn:{PARTITION}:s3:::{inputs.get('bucket') or name}"
    if module == "iam":
        kind = {"Role": "role", "User": "user", "Policy": "policy", "Group": "group"}.get(
            resource, "resource"
        )
        return f"arn:{PARTITION}:iam::{account}:{kind}/{physical}"
    if module == "sns":
        return f"arn:{PARTITION}:sns:{region}:{account}:{physical}"
    if module == "lambda":
        return f"arn:{PARTITION}:lambda:{region}:{account}:function:{physical}"
    if module == "sfn":
        return f"arn:{PARTITION}:states:{region}:{account}:stateMachine:{physical}"
    if type_token == "aws:cloudwatch/logGroup:LogGroup":
        return f"arn:{PARTITION}:logs:{region}:{account}:log-group:{physical}"
    if module == "kms":
        return f"arn:{PARTITION}:kms:{region}:{account}:key/{name}-id"
    return f"arn:{PARTITION}:{module}:{region}:{account}:{resource.lower()}/{physical}"


@cache
def _string_outputs(cls: type) -> tuple[str, ...]:
    """The engine names of the string properties a resource class reads back from its provider."""
    names = set()
    for klass in cls.__mro__:
        for prop in vars(klass).values():
            getter = getattr(prop, "fget", None)
            engine_name = getattr(getter, "_pulumi_name", None)
            returns = getattr(getter, "__annotations__", {}).get("return")
            if engine_name and typing.get_args(returns) == (str,):
                names.add(engine_name)
    return tuple(sorted(names))


def unknown(name: str, prop: str) -> str:
    """The marker for the ``prop`` of resource ``name``, which only the provider knows."""
    return f"<unknown: {name}.{prop}>"


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers the engine like a provider would, for offline runs, in ``region`` and ``account``.

    ``classes`` (type token -> resource class, filled by :func:`synth` as the program constructs
    resources) lets a string output the mocks cannot know be answered with an :func:`unknown`
    marker rather than ``None``, which a program would format into a real-looking value
    (``None/*/POST/requests``).
    """

    def __init__(self, *, region: str = REGION, account: str = ACCOUNT_ID) -> None:
        self.region = region
        self.account = account
        self.classes: dict[str, type] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        physical = str(args.inputs.get("name") or args.inputs.get("bucket") or args.name)
        outputs.setdefault(
            "arn", fake_arn(args.typ, args.name, args.inputs, region=self.region, account=self.account)
        )
        if args.typ == "aws:s3/bucket:Bucket":
            outputs.setdefault("bucket", physical)
            outputs.setdefault("bucketDomainName", f"{physical}.s3.amazonaws.com")
        if args.typ in {"aws:iam/role:Role", "aws:lambda/function:Function", "aws:sns/topic:Topic"}:
            outputs.setdefault("name", physical)
        if args.typ == "aws:kms/key:Key":
            outputs.setdefault("keyId", f"{args.name}-id")
        if args.typ == "aws:apigatewayv2/api:Api":
            outputs.setdefault("apiEndpoint", f"https://{args.name}.execute-api.{self.region}.amazonaws.com")
        cls = self.classes.get(args.typ)
        for prop in _string_outputs(cls) if cls is not None else ():
            outputs.setdefault(prop, unknown(args.name, prop))
        return args.resource_id or physical, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account,
                "arn": f"arn:{PARTITION}:iam::{self.account}:root",
                "userId": self.account,
            }, []
        if args.token in {"aws:index/getRegion:getRegion"}:
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": PARTITION, "dnsSuffix": "amazonaws.com", "id": PARTITION}, []
        return dict(args.args), []


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, remembering each registration's parent and inputs in order."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[SynthResource] = []
        self._taken: set[str] = set()
        self._lock = threading.Lock()  # the SDK registers from several threads

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN as the engine makes it: the whole chain of parent types, not the stack's.

        The SDK's mock names only the parent's own type, so two components of one type under
        parents of different types would share their children's URNs, which the engine keeps apart.
        """
        qualified = parent.split("::")[2] if parent else STACK_TYPE
        chain = type_ if qualified == STACK_TYPE else f"{qualified}${type_}"
        return f"urn:pulumi:{get_stack()}::{get_project()}::{chain}::{name}"

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        with self._lock:
            if urn in self._taken:
                # The engine refuses a program that registers one URN twice; so does synth.
                raise SynthError(
                    f"duplicate resource URN {urn}: pulumi up refuses it; give the resource a unique name"
                )
            self._taken.add(urn)
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            return response
        registration = self.resources.get(response.urn)
        # Keep unknown inputs (shown "(known after deploy)"): dropped, a checker would read an
        # unknown trust policy as no trust policy at all.
        inputs = pulumi.runtime.rpc.deserialize_properties(request.object, keep_unknowns=True)
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
                ignore_changes=list(request.ignoreChanges),
            )
        )
        return response


@dataclass
class SynthResult:
    resources: list[SynthResource]
    # The stack's exports; a secret one is kept wrapped as the engine wraps it (see to_plain).
    outputs: dict[str, Any]

    def by_type(self, type_token: str) -> list[SynthResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> SynthResource:
        found = [r for r in self.by_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.by_type(type_token)]
            raise LookupError(f"expected one {type_token}{f' named {name}' if name else ''}, found {names}")
        return found[0]

    def select(self, patterns: Sequence[str]) -> SynthResult:
        """The resources any of ``patterns`` matches (:meth:`SynthResource.matches`), with every
        resource inside a matching component; the exports unchanged."""
        chosen: set[str] = set()
        for resource in self.resources:  # parents come before their children (program order)
            if resource.parent in chosen or any(resource.matches(p) for p in patterns):
                chosen.add(resource.name)
        return SynthResult([r for r in self.resources if r.name in chosen], self.outputs)

    def as_json(self) -> dict[str, Any]:
        return {"resources": [r.as_json() for r in self.resources], "outputs": to_plain(self.outputs)}


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
    account: str | None = None,
) -> SynthResult:
    """Run ``program`` under mocks and return every resource it registered, in program order.

    ``mocks`` answers the registrations (default :class:`RecordingMocks` in the region and account
    of :func:`target`, ``account`` overriding the config's; the emulator's deploy passes mocks that
    create each resource, in the emulator's own account, and ``account`` is then unused).
    """
    settings = dict(config or {})
    if mocks is None:
        region, account = target(settings, account)
        mocks = RecordingMocks(region=region, account=account)
    order = _ProgramOrder(mocks.classes if isinstance(mocks, RecordingMocks) else {})
    monitor = RecordingMonitor(mocks)
    stack_outputs: dict[str, Any] = {}

    def run() -> Any:
        pulumi.runtime.register_stack_transformation(order.remember)
        return program()

    with _quiet_deprecations(), _pulumi_config(settings, project):
        pulumi.runtime.settings.reset_options()
        pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
        root = pulumi.runtime.get_root_resource()
        try:
            _sync_await(run_pulumi_func(run))
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
    return SynthResult(resources=order.sorted(monitor.recorded), outputs=stack_outputs)


def target(config: Mapping[str, str], account: str | None = None) -> tuple[str, str]:
    """The region and account fake ARNs name: ``aws:region`` of the stack config, else
    :data:`REGION`; ``account``, else the one ``aws:allowedAccountIds`` of the stack config (the
    AWS provider's own settings), else :data:`ACCOUNT_ID`."""
    region = config.get(REGION_KEY) or REGION
    if account is not None:
        if not ACCOUNT_PATTERN.match(account):
            raise SynthInputError(f"account: expected 12 digits, got {account!r}", hint=ACCOUNT_HINT)
        return region, account
    allowed = config.get(ACCOUNTS_KEY)
    if not allowed:
        return region, ACCOUNT_ID
    try:
        accounts = json.loads(allowed) if allowed.lstrip().startswith("[") else [allowed]
    except ValueError as exc:
        raise SynthInputError(
            f"{ACCOUNTS_KEY}: not a JSON list of account ids: {allowed!r}", hint=ACCOUNTS_HINT
        ) from exc
    if not isinstance(accounts, list) or not all(
        isinstance(a, str) and ACCOUNT_PATTERN.match(a) for a in accounts
    ):
        raise SynthInputError(
            f"{ACCOUNTS_KEY}: expected 12-digit account ids, got {allowed!r}", hint=ACCOUNTS_HINT
        )
    # Several allowed accounts: the program may deploy to any of them, so none is "the" account.
    return region, accounts[0] if len(accounts) == 1 else ACCOUNT_ID


class _ProgramOrder:
    """The order the program constructed its resources in, seen by a stack transformation.

    The SDK serializes and registers resources on several threads, so registrations arrive in an
    order that changes from run to run; construction happens on the program's one thread, in the
    program's order. The transformation also notes each type's Python class for
    :class:`RecordingMocks` (which output properties it has).
    """

    def __init__(self, classes: dict[str, type]) -> None:
        self.classes = classes
        self.constructed: dict[tuple[str, str], list[int]] = {}
        self.count = 0

    def remember(self, args: pulumi.ResourceTransformationArgs) -> None:
        self.constructed.setdefault((args.type_, args.name), []).append(self.count)
        self.count += 1
        self.classes.setdefault(args.type_, type(args.resource))
        return None  # the resource is left exactly as the program made it

    def sorted(self, recorded: list[SynthResource]) -> list[SynthResource]:
        rank: dict[str, int] = {}
        # Two resources of one type and name (under parents of different types) share a key:
        # give them that key's construction slots in URN order, which is stable too.
        for resource in sorted(recorded, key=lambda r: r.urn):
            slots = self.constructed.get((resource.type, resource.name))
            rank[resource.urn] = slots.pop(0) if slots else self.count  # e.g. a provider: last
        return sorted(recorded, key=lambda r: (rank[r.urn], r.urn))


def _resolve_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in outputs.items():
        # from_input resolves Outputs nested in lists and dicts too (e.g. a list of role ARNs).
        output = pulumi.Output.from_input(value)
        plain = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            plain = {rpc._special_sig_key: rpc._special_secret_sig, "value": plain}
        resolved[key] = plain
    return resolved


def program_entry(program_dir: Path) -> Path:
    """The file Pulumi would run for ``program_dir``: ``main:`` in Pulumi.yaml, else ``__main__.py``."""
    directory = Path(program_dir)
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise SynthInputError(f"PROGRAM_DIR {directory} {what}")
    project_file = directory / "Pulumi.yaml"
    if project_file.exists():
        for line in _read(project_file).splitlines():
            if line.startswith("main:"):
                directory = (directory / line.split(":", 1)[1].strip()).resolve()
                break
    entry = directory if directory.is_file() else directory / "__main__.py"
    if not entry.exists():
        raise SynthInputError(f"no Pulumi program in {program_dir}: expected {entry}")
    _read(entry)  # unreadable: say so here, not as the program's own failure
    return entry


def _read(path: Path) -> str:
    try:
        # Bytes: a program may declare its own encoding; the project file's lines are ASCII.
        return path.read_bytes().decode(errors="replace")
    except OSError as exc:
        raise SynthInputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def synth_directory(
    program_dir: Path,
    *,
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    mocks: pulumi.runtime.Mocks | None = None,
    account: str | None = None,
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
            account=account,
        )
    finally:
        sys.path.remove(str(entry.parent))


def _project_name(program_dir: Path) -> str | None:
    for candidate in (program_dir / "Pulumi.yaml", program_dir.parent / "Pulumi.yaml"):
        if candidate.exists():
            for line in _read(candidate).splitlines():
                if line.startswith("name:"):
                    return line.split(":", 1)[1].strip()
    return None
