"""Where the command's settings come from, and in which order.

Each setting is taken from the first place that has it:

| setting | 1. option | 2. environment | 3. config file | 4. otherwise |
|---|---|---|---|---|
| deployment | ``--deployment`` | ``BREAKGLASS_DEPLOYMENT`` | ``deployment`` | error listing the deployments |
| profile | ``--profile`` | ``AWS_PROFILE`` | ``profile`` | boto3's default credential chain |
| region | ``--region`` | ``AWS_REGION``, ``AWS_DEFAULT_REGION`` | ``region`` | the profile's region |
| endpoint URL | ``--endpoint-url`` | ``AWS_ENDPOINT_URL`` (read by boto3) | ``endpoint_url`` | AWS |

The config file is ``$BREAKGLASS_CONFIG`` if set, else ``$XDG_CONFIG_HOME/breakglass/config.toml``
(``~/.config/breakglass/config.toml``). It is optional; a file that is not valid TOML, or holds a
key this version does not know, is an error (a typo must not silently pick another account).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from breakglass.cli.errors import BadInput
from breakglass.contracts import DEPLOYMENT_NAME

ENV_DEPLOYMENT: Final = "BREAKGLASS_DEPLOYMENT"
ENV_CONFIG: Final = "BREAKGLASS_CONFIG"
CONFIG_KEYS: Final = ("deployment", "profile", "region", "endpoint_url")


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "breakglass" / "config.toml"


def read_config(path: Path) -> dict[str, str]:
    """The config file's settings ({} when there is no file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BadInput(f"cannot read the config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"the config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise BadInput(
            f"the config file {path} has an unknown key {unknown[0]!r}",
            hint=f"known keys: {', '.join(CONFIG_KEYS)}",
        )
    settings: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str) or not value:
            raise BadInput(f"the config file {path}: {key} must be a non-empty string, got {value!r}")
        settings[key] = value
    return settings


@dataclass(frozen=True)
class Setting:
    value: str | None
    source: str  # where it came from, for error messages: "--deployment", "BREAKGLASS_DEPLOYMENT", ...


@dataclass(frozen=True)
class Settings:
    """The resolved global settings of one invocation."""

    deployment: Setting
    profile: Setting
    region: Setting
    endpoint_url: Setting
    config_file: Path


def _first(*candidates: tuple[str | None, str]) -> Setting:
    for value, source in candidates:
        if value:
            return Setting(value, source)
    return Setting(None, "default")


def check_deployment_name(name: str, source: str) -> str:
    if not re.fullmatch(DEPLOYMENT_NAME, name):
        raise BadInput(
            f"{source}: {name!r} is not a deployment name",
            hint="a deployment name is 1-40 lower-case letters, digits and hyphens, starting with a letter",
        )
    return name


def resolve(
    *,
    deployment: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Apply the precedence above to the options given on the command line."""
    env = os.environ if environ is None else environ
    path = config_path(env)
    file = read_config(path)
    in_file = f"{path} ({{}})"
    chosen = Settings(
        deployment=_first(
            (deployment, "--deployment"),
            (env.get(ENV_DEPLOYMENT), ENV_DEPLOYMENT),
            (file.get("deployment"), in_file.format("deployment")),
        ),
        profile=_first(
            (profile, "--profile"),
            (env.get("AWS_PROFILE"), "AWS_PROFILE"),
            (file.get("profile"), in_file.format("profile")),
        ),
        region=_first(
            (region, "--region"),
            (env.get("AWS_REGION"), "AWS_REGION"),
            (env.get("AWS_DEFAULT_REGION"), "AWS_DEFAULT_REGION"),
            (file.get("region"), in_file.format("region")),
        ),
        # AWS_ENDPOINT_URL is left to boto3 (it also knows the per-service variants).
        endpoint_url=_first(
            (endpoint_url, "--endpoint-url"), (file.get("endpoint_url"), in_file.format("endpoint_url"))
        ),
        config_file=path,
    )
    if chosen.deployment.value is not None:
        check_deployment_name(chosen.deployment.value, chosen.deployment.source)
    return chosen
