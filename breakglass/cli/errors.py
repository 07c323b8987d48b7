"""How the command reports a failure: one clear line on stderr and a non-zero exit, no traceback.

Exit codes (the contract scripts rely on, documented in docs/cli.md):

- ``0`` the command did what was asked;
- ``1`` it ran and failed or was refused: AWS said no, a download failed, a query failed,
  ``--fail-on-rows`` found rows;
- ``2`` the command line or its input is wrong: unknown option, malformed value, unknown query,
  missing directory, no deployment chosen or an unknown one.

A command fails by raising :class:`CliError` (exit 1) or :class:`BadInput` (exit 2), or by calling
:func:`fail`. :class:`BreakglassGroup` (the root command's class) turns those, boto errors, click's
usage errors and Ctrl-C into that one line; any other exception too, with a hint to rerun with
``BREAKGLASS_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
)
from rich.console import Console
from typer.core import TyperGroup

from breakglass.validation import ConfigError

# Typer >= 0.25 carries its own copy of click (typer._click); older ones use click itself. The
# exceptions it raises come from whichever it uses, so catch those.
try:
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

OK = 0
FAILURE = 1
BAD_INPUT = 2
DEBUG_ENV = "BREAKGLASS_DEBUG"


def stderr() -> Console:
    # Created per call: tests (and `CliRunner`) swap sys.stderr between invocations.
    return Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(Exception):
    """A failure the person can act on: ``message`` says what, ``hint`` what to do next."""

    exit_code = FAILURE

    def __init__(self, message: str, *, hint: str | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.exit_code = code


class BadInput(CliError):
    """The command line or its input is wrong (exit 2)."""

    exit_code = BAD_INPUT


def print_error(message: str, hint: str | None = None) -> None:
    console = stderr()
    # markup=False for the message: it may hold user text or AWS messages with brackets.
    console.print("[bold red]error:[/] ", end="")
    console.print(message, markup=False)
    if hint:
        console.print(hint, style="dim", markup=False)


def fail(message: str, *, hint: str | None = None, code: int = FAILURE) -> NoReturn:
    """Print ``error: message`` (and a hint) on stderr and exit with ``code``."""
    print_error(message, hint)
    raise typer.Exit(code)


def from_config_error(exc: ConfigError, hint: str | None = None) -> BadInput:
    return BadInput(str(exc), hint=hint)


_CREDENTIALS_HINT = (
    "sign in (e.g. `aws sso login --profile NAME`) or pass --profile; "
    "AWS_PROFILE and the usual AWS variables are honoured"
)


def translate(exc: BaseException) -> CliError | None:
    """The one-line error for an exception from boto3/botocore (None: not one of those)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ProfileNotFound):
        return BadInput(
            f"AWS profile not found: {exc.kwargs.get('profile')}",
            hint="`aws configure list-profiles` lists them",
        )
    if isinstance(exc, NoRegionError):
        return BadInput(
            "no AWS region", hint='pass --region, set AWS_REGION, or put region = "..." in the config file'
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | TokenRetrievalError):
        return CliError(f"no usable AWS credentials ({exc})", hint=_CREDENTIALS_HINT)
    if isinstance(exc, EndpointConnectionError):
        return CliError(f"cannot reach AWS: {exc}", hint="check the network, --region and AWS_ENDPOINT_URL")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        operation = getattr(exc, "operation_name", "the call")
        text = f"AWS refused {operation}: {code}: {error.get('Message', '')}".rstrip(": ")
        hint = None
        if code in {
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
        }:
            hint = _CREDENTIALS_HINT
        elif "AccessDenied" in code:
            hint = (
                "your identity lacks the permission for this call; ask your security team which role to use"
            )
        return CliError(text, hint=hint)
    if isinstance(exc, BotoCoreError):
        return CliError(str(exc))
    return None


def _usage_hint(ctx: Any) -> str:
    path = ctx.command_path if ctx is not None else "breakglass"
    return f"see `{path} --help`"


class BreakglassGroup(TyperGroup):
    """The root command: every error below it ends as one line on stderr and an exit code."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Any = None,
        **extra: Any,
    ) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click_exceptions.NoArgsIsHelpError as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            raise typer.Exit(BAD_INPUT) from None
        except click_exceptions.UsageError as exc:
            # Root options (e.g. `breakglass --bogus`) are parsed here, before invoke.
            print_error(exc.format_message(), _usage_hint(exc.ctx))
            raise typer.Exit(BAD_INPUT) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except click_exceptions.NoArgsIsHelpError as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            raise typer.Exit(BAD_INPUT) from None
        except click_exceptions.ClickException as exc:
            hint = (
                _usage_hint(getattr(exc, "ctx", None))
                if isinstance(exc, click_exceptions.UsageError)
                else None
            )
            print_error(exc.format_message(), hint)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print_error("interrupted", "nothing after the interruption was done; rerun the command")
            raise typer.Exit(FAILURE) from None
        except Exception as exc:
            error = translate(exc)
            if error is None:
                if os.environ.get(DEBUG_ENV):
                    raise
                error = CliError(
                    f"unexpected {type(exc).__name__}: {exc}",
                    hint=f"this is a bug; rerun with {DEBUG_ENV}=1 for the traceback and report it",
                )
            print_error(error.message, error.hint)
            raise typer.Exit(error.exit_code) from None


def join_names(names: Sequence[str], empty: str = "none") -> str:
    return ", ".join(names) if names else empty
