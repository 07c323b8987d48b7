"""``breakglass drill``: a whole break-glass incident on the embedded emulator, every step checked;
with ``--against NAME``, a harmless rehearsal on a real deployment (:mod:`breakglass.cli.rehearsal`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from breakglass.cli.access import MfaCodeOption, MfaSerialOption
from breakglass.cli.context import get_context
from breakglass.cli.deployment import load_deployment
from breakglass.cli.errors import BadInput, CliError
from breakglass.cli.output import Format, JsonOption, Output, note
from breakglass.cli.steps import DrillResult, Step
from breakglass.contracts import DRILL_TIER

# Where the repository keeps the quickstart (the drill's default program).
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def _approvers(quorum: int) -> str:
    return f"{quorum} approver{'s' if quorum != 1 else ''}"


def drill_command(
    ctx: typer.Context,
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
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            metavar="NAME",
            help="Rehearse on this real deployment instead, with its drill tier (no access, nothing changed).",
        ),
    ] = None,
    cloudtrail_wait: Annotated[
        float,
        typer.Option(
            "--cloudtrail-wait",
            metavar="SECONDS",
            help="With --against: how long to wait for CloudTrail's delivery (0: do not check it).",
        ),
    ] = 1200.0,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", hidden=True)] = 5.0,
    mfa_serial: MfaSerialOption = None,
    mfa_code: MfaCodeOption = None,
) -> None:
    """Run a whole incident on the embedded emulator (no AWS account) and check every step.

    The program is deployed with IAM enforced; a SageMaker endpoint is seeded and people enrolled;
    the tripwire halts the model, a responder asks for admin, two approvers approve from their
    emails, the AWS CLI works through credential_process, the model is resumed, the window ends
    and a later call is refused, and security audits it offline, reports and reviews. Exit 0 only
    when every step did what it should.

    With [bold]--against NAME[/], rehearse on a real deployment as yourself (enrolled as responder
    and security): ask for its drill tier (auto-approved; it may only call sts:GetCallerIdentity)
    with your TOTP, assume it, check a call outside it is refused, revoke with the next TOTP code,
    and check the audit events and CloudTrail's records arrived in the audit bucket.

    [bold]Examples[/]

      $ breakglass drill

      $ breakglass drill --report ./drill-report --json

      $ breakglass drill --against prod
    """
    console = Console(highlight=False, soft_wrap=True)
    quiet = as_json

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

    if against is not None:
        result = _rehearse(ctx, against, cloudtrail_wait, poll_seconds, mfa_serial, mfa_code, stepped, quiet)
    else:
        result = _drill(program, report, speed, stepped, quiet, console)
    if as_json:
        Output(Format.json).json(result.as_json())
    else:
        passed = sum(1 for s in result.steps if s.ok)
        verdict = "[green]drill passed[/]" if result.ok else "[red]drill failed[/]"
        console.print(f"\n{verdict}: {passed} of {len(result.steps)} steps in {result.seconds:.1f} s")
        if result.report:
            console.print(f"incident report: {result.report}")
        if against is not None and result.request_id:
            console.print(
                f"its review stays open for another security person: breakglass audit review "
                f"{result.request_id} --verdict accepted --notes drill"
            )
    if not result.ok:
        failed = next(s for s in result.steps if not s.ok)
        raise CliError(
            f"the drill failed at {failed.name}: expected {failed.expected}; observed {failed.observed}"
        )


def _rehearse(
    ctx: typer.Context,
    name: str,
    cloudtrail_wait: float,
    poll_seconds: float,
    mfa_serial: str | None,
    mfa_code: str | None,
    stepped: Callable[[Step], None],
    quiet: bool,
) -> DrillResult:
    from breakglass.cli.rehearsal import rehearse

    if cloudtrail_wait < 0:
        raise BadInput("--cloudtrail-wait must be 0 or more seconds")
    cli = get_context(ctx)
    cli.use_deployment(load_deployment(cli.client("ssm"), name, region=cli.session().region_name))
    if not quiet:
        note(f"breakglass drill --against {name}: a rehearsal with tier {DRILL_TIER} (it can do nothing)")
    return rehearse(
        cli,
        cloudtrail_wait=cloudtrail_wait,
        poll_seconds=poll_seconds,
        mfa_serial=mfa_serial,
        mfa_code=mfa_code,
        on_step=stepped,
    )


def _drill(
    program: Path,
    report: Path | None,
    speed: float,
    stepped: Callable[[Step], None],
    quiet: bool,
    console: Console,
) -> DrillResult:
    from breakglass.local.drill import run_drill

    if not (program / "__main__.py").exists():
        raise CliError(f"--program {program}: no __main__.py there", code=2)

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

    return run_drill(
        program, report_dir=report, on_start=started, on_step=stepped, pause=1 / speed if speed else 0.0
    )
