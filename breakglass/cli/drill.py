"""``breakglass drill``: a whole break-glass incident on the embedded emulator, every step checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from breakglass.cli.errors import CliError
from breakglass.cli.output import Format, JsonOption, Output

# Where the repository keeps the quickstart (the drill's default program).
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def _approvers(quorum: int) -> str:
    return f"{quorum} approver{'s' if quorum != 1 else ''}"


def drill_command(
    program: Annotated[
        Path,
        typer.Option(
            "--program", metavar="DIR", help="The Pulumi program to deploy (default: the quickstart)."
        ),
    ] = QUICKSTART,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="DIR", help="Keep the audit copy and the incident report here."),
    ] = None,
    as_json: JsonOption = False,
    speed: Annotated[
        float,
        typer.Option(
            "--speed", help="Pace the timeline for people watching: N steps a second (0: no pause)."
        ),
    ] = 0.0,
) -> None:
    """Run a whole incident on the embedded emulator (no AWS account) and check every step.

    The program is deployed with IAM enforced; a SageMaker endpoint is seeded and people enrolled;
    the tripwire halts the model, a responder asks for admin, two approvers approve from their
    emails, the AWS CLI works through credential_process, the model is resumed, the window ends
    and a later call is refused, and security audits it offline, reports and reviews. Exit 0 only
    when every step did what it should.

    [bold]Examples[/]

      $ breakglass drill

      $ breakglass drill --report ./drill-report --json
    """
    from breakglass.local.drill import run_drill

    if not (program / "__main__.py").exists():
        raise CliError(f"--program {program}: no __main__.py there", code=2)
    console = Console(highlight=False, soft_wrap=True)
    quiet = as_json

    def started(summary: dict[str, Any]) -> None:
        if quiet:
            return
        kinds = ", ".join(f"{n} {k}" for k, n in list(summary["by_kind"].items())[:8])
        tiers = ", ".join(
            f"{name} ({'auto' if t['approval'] == 'auto' else _approvers(int(t['approval']))}"
            f"{', may resume' if t['may_resume'] else ''})"
            for name, t in summary["tiers"].items()
        )
        targets = ", ".join(f"{t['id']} ({'/'.join(t['modes'])})" for t in summary["targets"])
        console.print(f"[bold]breakglass drill[/]: {program.name} on the embedded emulator, IAM enforced")
        console.print(f"deployed {summary['resources']} resources: {kinds}, ...")
        console.print(f"tiers: {tiers}")
        console.print(f"halt targets: {targets}\n")

    def stepped(step: Any) -> None:
        if quiet:
            return
        mark = "[green]✓[/]" if step.ok else "[red]✗[/]"
        console.print(
            f"{step.started:6.1f}s {mark} [bold]{step.name:<11}[/] {step.title} [dim]({step.seconds:.1f}s)[/]"
        )
        if step.detail:
            console.print(f"          {step.detail}", markup=False, style="dim" if step.ok else None)
        if not step.ok:
            console.print(f"          expected: {step.expected}", markup=False)

    result = run_drill(
        program, report_dir=report, on_start=started, on_step=stepped, pause=1 / speed if speed else 0.0
    )
    if as_json:
        Output(Format.json).json(result.as_json())
    else:
        passed = sum(1 for s in result.steps if s.ok)
        verdict = "[green]drill passed[/]" if result.ok else "[red]drill failed[/]"
        console.print(f"\n{verdict}: {passed} of {len(result.steps)} steps in {result.seconds:.1f} s")
        if result.report:
            console.print(f"incident report: {result.report}")
    if not result.ok:
        failed = next(s for s in result.steps if not s.ok)
        raise CliError(
            f"the drill failed at {failed.name}: expected {failed.expected}; observed {failed.observed}"
        )
