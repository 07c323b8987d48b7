"""``breakglass synth``: read every resource (and every policy) a program would create, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.tree import Tree

from breakglass.cli.errors import fail
from breakglass.cli.synth_check import run_check
from breakglass.local.synth import SynthError, SynthResult, synth_directory


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
) -> None:
    """Run a Pulumi program under the SDK's mock runtime and print every resource it would create.

    Offline: no Pulumi CLI, no cloud account. Policies are printed expanded so reviewers can read them.

    [bold]Examples[/]

      $ breakglass synth examples/quickstart

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
    try:
        result = synth_directory(program_dir, stack=stack, config=settings)
    except SynthError as exc:
        fail(f"the program in {program_dir} failed: {exc}", hint="fix the program or its config and rerun")
    if json_file is not None:
        text = json.dumps(result.as_json(), indent=2, sort_keys=True)
        if str(json_file) == "-":
            typer.echo(text)
        else:
            json_file.write_text(text + "\n")
            Console(stderr=True).print(f"wrote {len(result.resources)} resources to {json_file}")
        return
    Console().print(render_tree(result, title=str(program_dir)))


def render_tree(result: SynthResult, *, title: str) -> Tree:
    tree = Tree(f"[bold]{title}[/] ({len(result.resources)} resources)")
    nodes: dict[str, Tree] = {}
    for resource in result.resources:
        branch = nodes.get(resource.parent or "", tree) if resource.parent else tree
        label = f"[cyan]{resource.type}[/] [bold]{resource.name}[/]"
        node = branch.add(label)
        for key, value in sorted(resource.inputs.items()):
            node.add(f"[dim]{key}[/] = {_short(value)}", highlight=False)
        nodes[resource.name] = node
    return tree


def _short(value: Any) -> str:
    from breakglass.local.synth import to_plain

    plain = to_plain(value)
    if isinstance(plain, str):
        # Policy documents are JSON strings: print them expanded so reviewers can read them.
        try:
            return json.dumps(json.loads(plain), indent=2)
        except ValueError:
            return plain
    return json.dumps(plain, indent=2, sort_keys=True)
