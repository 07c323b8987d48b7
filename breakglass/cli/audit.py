"""``breakglass audit ...``: the auditor's commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Auditor commands: named queries over the audit trail.", no_args_is_help=True)
