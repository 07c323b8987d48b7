"""Finding a deployment by name: what it published under ``/breakglass/<name>/`` in SSM.

The ``BreakGlass`` component publishes one String parameter per key of
:data:`breakglass.contracts.SSM_KEYS`; ``tiers`` and ``halt_targets`` hold JSON. This module reads
them into a :class:`Deployment`. A deployment that published nothing is an error listing the
deployments that exist (so a typo is a one-line fix).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from breakglass.cli.errors import BadInput, CliError
from breakglass.contracts import SSM_KEYS, SSM_ROOT, ssm_page_key, ssm_parameter_name

#: The keys a command may ask for with :meth:`Deployment.need` (``tiers``/``halt_targets`` are parsed).
TEXT_KEYS = tuple(k for k in SSM_KEYS if k not in ("tiers", "halt_targets"))


@dataclass(frozen=True)
class TierInfo:
    """What a deployment says about one tier (``quorum`` 0 means auto-approved)."""

    name: str
    role_arn: str | None = None
    max_session_seconds: int | None = None
    max_window_seconds: int | None = None
    require_mfa: bool | None = None
    quorum: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def approval(self) -> str:
        if self.quorum is None:
            return "?"
        return "auto" if self.quorum == 0 else f"{self.quorum} approver{'s' if self.quorum > 1 else ''}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role_arn": self.role_arn,
            "max_session_seconds": self.max_session_seconds,
            "max_window_seconds": self.max_window_seconds,
            "require_mfa": self.require_mfa,
            "quorum": self.quorum,
            **dict(self.extra),
        }


@dataclass(frozen=True)
class HaltTarget:
    id: str
    modes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "modes": list(self.modes), **dict(self.extra)}


@dataclass(frozen=True)
class Deployment:
    """One deployment's published settings. Text keys a deployment did not publish are None."""

    name: str
    version: str | None = None
    region: str | None = None
    access_api_url: str | None = None
    approval_url: str | None = None
    state_machine_arn: str | None = None
    audit_bucket: str | None = None
    audit_events_prefix: str | None = None
    athena_workgroup: str | None = None
    glue_database: str | None = None
    alert_topic_arn: str | None = None
    tiers: Mapping[str, TierInfo] = field(default_factory=dict)
    halt_targets: tuple[HaltTarget, ...] = ()

    def need(self, key: str) -> str:
        """The value of text key ``key``; a clear error when this deployment did not publish it."""
        if key not in TEXT_KEYS:
            raise ValueError(f"{key!r} is not a text key of a deployment ({', '.join(TEXT_KEYS)})")
        value = getattr(self, key)
        if not value:
            raise CliError(
                f"deployment {self.name!r} does not publish {ssm_parameter_name(self.name, key)}",
                hint="it was deployed by an older breakglass; update the stack (`pulumi up`) and retry",
            )
        return str(value)

    def tier(self, name: str) -> TierInfo:
        try:
            return self.tiers[name]
        except KeyError:
            known = ", ".join(self.tiers) or "none"
            raise BadInput(f"deployment {self.name!r} has no tier {name!r}; its tiers: {known}") from None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        data.update({key: getattr(self, key) for key in TEXT_KEYS})
        data["tiers"] = {name: tier.as_json() for name, tier in self.tiers.items()}
        data["halt_targets"] = [t.as_json() for t in self.halt_targets]
        return data


# -- parsing what SSM holds ----------------------------------------------------------------------


def _optional_int(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CliError(f"{where} must be a whole number, got {value!r}")
    return value


def parse_tiers(deployment: str, text: str) -> dict[str, TierInfo]:
    """``{tier: {role_arn, max_session_seconds, max_window_seconds, require_mfa, quorum, ...}}``.

    Unknown keys are kept in ``extra`` (a newer stack may publish more than this version reads).
    ``quorum`` may also be given as ``approval`` = ``"auto"`` or a number, as the tier settings are.
    """
    where = ssm_parameter_name(deployment, "tiers")
    data = _json(where, text)
    if not isinstance(data, dict):
        raise CliError(f"{where} must hold a JSON object of tiers, got {type(data).__name__}")
    tiers: dict[str, TierInfo] = {}
    for name, raw in data.items():
        if not isinstance(raw, dict):
            raise CliError(f"{where}: tier {name!r} must be a JSON object")
        values = dict(raw)
        quorum = values.pop("quorum", None)
        approval = values.pop("approval", None)
        if quorum is None and approval is not None:
            quorum = 0 if approval == "auto" else approval
        role_arn = values.pop("role_arn", None)
        require_mfa = values.pop("require_mfa", None)
        if require_mfa is not None and not isinstance(require_mfa, bool):
            raise CliError(f"{where}: tier {name!r}: require_mfa must be true or false")
        tiers[str(name)] = TierInfo(
            name=str(name),
            role_arn=None if role_arn is None else str(role_arn),
            max_session_seconds=_optional_int(
                f"{where}: {name}.max_session_seconds", values.pop("max_session_seconds", None)
            ),
            max_window_seconds=_optional_int(
                f"{where}: {name}.max_window_seconds", values.pop("max_window_seconds", None)
            ),
            require_mfa=require_mfa,
            quorum=_optional_int(f"{where}: {name}.quorum", quorum),
            extra=values,
        )
    return tiers


def parse_halt_targets(deployment: str, text: str) -> tuple[HaltTarget, ...]:
    """``[{id, modes}, ...]``; unknown keys kept in ``extra``."""
    where = ssm_parameter_name(deployment, "halt_targets")
    data = _json(where, text)
    if not isinstance(data, list):
        raise CliError(f"{where} must hold a JSON list of targets, got {type(data).__name__}")
    targets = []
    for index, raw in enumerate(data):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise CliError(f"{where}: item {index} must be an object with a string id")
        values = dict(raw)
        target_id = values.pop("id")
        modes = values.pop("modes", [])
        if not isinstance(modes, list) or not all(isinstance(m, str) for m in modes):
            raise CliError(f"{where}: target {target_id!r}: modes must be a list of strings")
        targets.append(HaltTarget(target_id, tuple(modes), values))
    return tuple(targets)


def _json(where: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"{where} is not valid JSON: {exc}") from None


def from_parameters(name: str, values: Mapping[str, str]) -> Deployment:
    """A :class:`Deployment` from ``{key: value}`` as read from ``/breakglass/<name>/<key>``."""
    text = {key: values[key] for key in TEXT_KEYS if values.get(key)}
    return Deployment(
        name=name,
        tiers=parse_tiers(name, values["tiers"]) if values.get("tiers") else {},
        halt_targets=tuple(
            target for page in _pages(values, "halt_targets") for target in parse_halt_targets(name, page)
        ),
        **text,
    )


def _pages(values: Mapping[str, str], key: str) -> list[str]:
    """The pages of a list published in pages (``key``, ``key.2``, ...), up to the first missing."""
    pages: list[str] = []
    while values.get(ssm_page_key(key, len(pages) + 1)):
        pages.append(values[ssm_page_key(key, len(pages) + 1)])
    return pages


# -- reading SSM -----------------------------------------------------------------------------------


def _parameters(ssm: Any, path: str, *, recursive: bool) -> Iterable[Mapping[str, Any]]:
    paginator = ssm.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=path, Recursive=recursive, WithDecryption=False):
        yield from page.get("Parameters", [])


def list_deployments(ssm: Any) -> dict[str, dict[str, str]]:
    """Every deployment published in this account and region: ``{name: {key: value}}``, sorted."""
    found: dict[str, dict[str, str]] = {}
    root = SSM_ROOT.rstrip("/") + "/"
    for parameter in _parameters(ssm, root, recursive=True):
        parts = str(parameter["Name"])[len(root) :].split("/")
        if len(parts) != 2:
            continue  # not <deployment>/<key>: something else lives under the root
        name, key = parts
        found.setdefault(name, {})[key] = str(parameter.get("Value", ""))
    return dict(sorted(found.items()))


def load_deployment(ssm: Any, name: str, *, region: str | None = None) -> Deployment:
    """The deployment ``name``; :class:`BadInput` listing the existing ones if it published nothing."""
    prefix = f"{SSM_ROOT}/{name}/"
    values = {
        str(p["Name"])[len(prefix) :]: str(p.get("Value", ""))
        for p in _parameters(ssm, prefix, recursive=False)
    }
    if not values:
        existing = list(list_deployments(ssm))
        where = f" in {region}" if region else ""
        listed = ", ".join(existing) if existing else "none"
        raise BadInput(
            f"no deployment {name!r}{where}; deployments here: {listed}",
            hint="pass --deployment NAME (or --region if it lives in another region); "
            "`breakglass deployments` lists them",
        )
    return from_parameters(name, values)
