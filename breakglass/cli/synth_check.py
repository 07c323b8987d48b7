"""``breakglass synth --check``: print every guardrail finding of a program, exit 1 on any."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import typer

from breakglass.cli.errors import BAD_INPUT, FAILURE, fail
from breakglass.local.synth import SynthError, SynthInputError
from breakglass.local.synth_check import MissingDependency, check_directory, report
from breakglass.policies.pack.rules import PackConfig
from breakglass.validation import ConfigError


def read_policy_config(path: Path | None) -> PackConfig:
    """The pack's config from a Pulumi policy config file (defaults without one)."""
    if path is None:
        return PackConfig()
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        fail(f"--policy-config {path}: cannot read it ({exc.strerror})", code=BAD_INPUT)
    except ValueError as exc:
        fail(f"--policy-config {path}: not JSON ({exc})", code=BAD_INPUT)
    try:
        return PackConfig.from_policy_config(raw)
    except ConfigError as exc:
        fail(
            f"--policy-config {path}: {exc}",
            hint='example: {"emergency-role-session-limit": {"maxSessionSeconds": 3600}}',
            code=BAD_INPUT,
        )


def run_check(
    program_dir: Path, *, stack: str, config: Mapping[str, str], policy_config: Path | None
) -> None:
    """Synthesize, check, print one line per finding (or one OK line); exit 1 on any finding."""
    pack_config = read_policy_config(policy_config)
    try:
        findings = check_directory(program_dir, stack=stack, config=config, pack_config=pack_config)
    except SynthInputError as exc:
        fail(str(exc), hint=exc.hint, code=BAD_INPUT)
    except SynthError as exc:
        fail(f"the program in {program_dir} failed: {exc}", hint="fix the program or its config and rerun")
    except MissingDependency as exc:
        fail(str(exc))
    typer.echo(report(findings, title=str(program_dir)))
    if findings:
        raise typer.Exit(FAILURE)
