"""How the command reports a failure: one clear line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

stderr = Console(stderr=True)


def fail(message: str, *, hint: str | None = None, code: int = 1) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if hint:
        stderr.print(f"[dim]{hint}[/]", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
