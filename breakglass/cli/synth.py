"""``breakglass synth``: read every resource (and every policy) a program would create, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from breakglass.cli.errors import BAD_INPUT, fail
from breakglass.cli.synth_check import run_check
from breakglass.cli.synth_view import render_tree, summary, summary_lines
from breakglass.local.synth import ACCOUNT_HINT, ACCOUNT_PATTERN, SynthError, SynthInputError, synth_directory


def synth_command(
    program_dir: Annotated[Path, typer.Argument(help="Directory of a Pulumi Python program.")],
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the resources as JSON to this file ('-' for stdout).")
    ] = None,
    stack: Annotated[str, typer.Option(help="Stack name the program sees.")] = "dev",
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="Stack config as key=value (repeatable).")
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Run the guardrail policy pack and parliament over every resource; exit 1 on any finding.",
        ),
    ] = False,
    policy_config: Annotated[
        Path | None,
        typer.Option(
            help="With --check: the pack's config, a JSON file as `pulumi --policy-pack-config` takes."
        ),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            help="Account id in the ARNs the mocks make up"
            " (default: the one aws:allowedAccountIds, else 123456789012)."
        ),
    ] = None,
    summary_only: Annotated[
        bool,
        typer.Option(
            "--summary", help="Counts per type, each policy with its statement count, and the outputs."
        ),
    ] = False,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            help="Only resources whose type, type name or resource name matches this glob, with everything"
            " inside a matching component (repeatable: any may match).",
        ),
    ] = None,
) -> None:
    """Run a Pulumi program under the SDK's mock runtime and print every resource it would create.

    Offline: no Pulumi CLI, no cloud account. Policies are printed expanded so reviewers can read them.

    Secrets show as \\[secret], values only AWS knows as <unknown: NAME.PROPERTY>.

    The same program prints the same bytes, so two runs can be diffed.

    [bold]Examples[/]

      $ breakglass synth examples/quickstart

      $ breakglass synth examples/quickstart --summary

      $ breakglass synth examples/quickstart --filter 'aws:iam/*' --filter breakglass-audit

      $ breakglass synth examples/quickstart --json - --config alertEmail=sec@example.com

      $ breakglass synth examples/quickstart --check
    """
    settings: dict[str, str] = {}
    for item in config or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--config {item!r} is not key=value", hint="example: --config alertEmail=sec@example.com")
        settings[key] = value
    if check:
        run_check(program_dir, stack=stack, config=settings, policy_config=policy_config)
        return
    if account is not None and not ACCOUNT_PATTERN.match(account):
        fail(
            f"--account {account!r} is not a 12-digit account id",
            hint=ACCOUNT_HINT,
            code=BAD_INPUT,
        )
    try:
        result = synth_directory(program_dir, stack=stack, config=settings, account=account)
    except SynthInputError as exc:
        fail(str(exc), hint=exc.hint, code=BAD_INPUT)
    except SynthError as exc:
        fail(f"the program in {program_dir} failed: {exc}", hint="fix the program or its config and rerun")
    if filters:
        result = result.select(filters)
        if not result.resources:
            fail(
                f"no resource matches --filter {' --filter '.join(filters)}",
                hint="a glob on the type (aws:iam/role:Role), its name (Role) or the resource name;"
                " --summary lists the types",
                code=BAD_INPUT,
            )
    if json_file is not None:
        document = summary(result) if summary_only else result.as_json()
        _write_json(json_file, json.dumps(document, indent=2, sort_keys=True), len(result.resources))
        return
    if summary_only:
        for line in summary_lines(summary(result), title=str(program_dir)):
            typer.echo(line)
        return
    Console().print(render_tree(result, title=str(program_dir)))


def _write_json(json_file: Path, text: str, count: int) -> None:
    if str(json_file) == "-":
        typer.echo(text)
        return
    try:
        json_file.write_text(text + "\n")
    except OSError as exc:  # a directory, a missing parent, no permission: one line, no traceback
        fail(
            f"cannot write --json {json_file}: {exc.strerror or exc}",
            hint="name a file in a writable directory",
            code=BAD_INPUT,
        )
    Console(stderr=True).print(f"wrote {count} resources to {json_file}", markup=False, highlight=False)
