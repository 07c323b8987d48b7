"""The ``breakglass`` command: one entry point for responders, approvers and auditors.

The root callback resolves the global options (deployment, profile, region, endpoint URL; see
:mod:`breakglass.cli.config` for the precedence) into a :class:`~breakglass.cli.context.CliContext`
that every command reaches with ``get_context(ctx)``. Each command group lives in its own module
and is registered here. Errors end as one line and an exit code (:mod:`breakglass.cli.errors`).
"""

from __future__ import annotations

from typing import Annotated

import typer

import breakglass
from breakglass.cli import access, audit, config, deployments, drill, synth
from breakglass.cli.context import CliContext
from breakglass.cli.errors import BreakglassGroup

HELP = """\
Governed emergency access to AI systems on AWS.

The command finds a deployment by name (what the BreakGlass component published to SSM under
/breakglass/NAME/); AWS credentials and region follow the AWS conventions.

[bold]Examples[/]

  $ breakglass deployments

  $ breakglass --deployment prod audit query tampering --athena --fail-on-rows

  $ breakglass audit query approvals --local ./audit-copy --json
"""

EPILOG = (
    "Settings: option, then environment (BREAKGLASS_DEPLOYMENT, AWS_PROFILE, AWS_REGION), then "
    "~/.config/breakglass/config.toml. Exit codes: 0 ok, 1 failed or refused, 2 bad usage or input."
)

app = typer.Typer(
    name="breakglass",
    help=HELP,
    epilog=EPILOG,
    cls=BreakglassGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"breakglass {breakglass.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            "-d",
            metavar="NAME",
            help=f"Deployment to use (else ${config.ENV_DEPLOYMENT}, else the config file).",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", metavar="PROFILE", help="AWS profile (else $AWS_PROFILE).", show_default=False
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            metavar="REGION",
            help="AWS region (else $AWS_REGION, $AWS_DEFAULT_REGION).",
            show_default=False,
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            metavar="URL",
            help="Send AWS calls here (the embedded emulator; $AWS_ENDPOINT_URL works too).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    ctx.obj = CliContext(deployment, profile, region, endpoint_url)


app.command("synth")(synth.synth_command)
app.command("deployments")(deployments.deployments_command)
app.command("drill")(drill.drill_command)
access.register(app)
audit.app.command("review")(access.review_command)
audit.app.command("waive")(access.waive_command)
app.add_typer(audit.app, name="audit")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
