"""The ``breakglass`` command: one entry point for responders, approvers and auditors.

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import typer

from breakglass.cli import audit, synth

app = typer.Typer(
    name="breakglass",
    help="Governed emergency access to AI systems on AWS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("synth")(synth.synth_command)
app.add_typer(audit.app, name="audit")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
