"""The commands people type during an incident: request, assume, revoke, halt, resume, vote, enroll.

Every one of them talks to the deployment's IAM-authorized access API with the caller's own AWS
credentials: AWS tells the API who is asking, the TOTP code proves it is really them. Codes are
asked for without echo unless ``--totp`` is given (scripts, the drill).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console

from breakglass.cli import sessions
from breakglass.cli.api import AccessApi, ApiError
from breakglass.cli.context import CliContext, get_context
from breakglass.cli.errors import BadInput, CliError
from breakglass.cli.output import Column, Format, FormatOption, JsonOption, Output, WideOption, note
from breakglass.contracts import parse_iso, utc_now
from breakglass.lambdas.approvals.requests import parse_duration, parse_start_at
from breakglass.validation import REQUEST_ID, ConfigError

FINAL: Final = ("granted", "denied", "revoked", "expired")
REQUEST_COLUMNS: Final = (
    Column("request_id", "request", no_wrap=True),
    Column("tier"),
    Column("requester"),
    Column("status"),
    Column("approvals_text", "approvals"),
    Column("starts_at", "opens"),
    Column("expires_at", "expires"),
    Column("reason", max_width=40),
    Column("ticket", wide=True),
    Column("requested_at", "requested", wide=True),
    Column("approvers", wide=True),
    Column("extends", wide=True),
    Column("extended_by", "extended by", wide=True),
)
RESULT_COLUMNS: Final = (
    Column("target", no_wrap=True),
    Column("mode"),
    Column("outcome"),
    Column("changed"),
    Column("error", max_width=50),
    Column("seconds", wide=True),
)

MfaSerialOption = Annotated[
    str | None,
    typer.Option(
        "--mfa-serial", help="Your MFA device ARN, for tiers requiring MFA (else the profile's mfa_serial)."
    ),
]
MfaCodeOption = Annotated[
    str | None, typer.Option("--mfa-code", help="The MFA device's current code (asked for if absent).")
]
# How long the halt tier is asked for when `halt` has to ask: room for a session of AWS's
# shortest length (15 minutes) and the time to get it.
AUTO_HALT_SECONDS: Final = 30 * 60
NoWaitOption = Annotated[
    bool, typer.Option("--no-wait", help="Return once the request is in; do not wait for the decision.")
]
WaitSecondsOption = Annotated[
    int, typer.Option("--wait-seconds", help="Give up waiting after this long (the request stays).")
]
PollSecondsOption = Annotated[float, typer.Option("--poll-seconds", hidden=True)]
TotpOption = Annotated[
    str | None,
    typer.Option("--totp", metavar="CODE", help="Your 6-digit TOTP code (asked for without echo if absent)."),
]


def _now() -> datetime:
    # The package's clock (the emulator moves it forward; in AWS it is the system clock).
    return utc_now()


def _request_id(value: str) -> str:
    import re

    if not re.fullmatch(REQUEST_ID, value):
        raise BadInput(
            f"{value!r} is not a request id",
            hint="use the id break-glass printed, e.g. r2611300213004f1c9a2b7e",
        )
    return value


def read_totp(code: str | None, who: str = "your") -> str:
    if code is None:
        code = str(typer.prompt(f"TOTP code ({who} authenticator)", hide_input=True, err=True))
    code = code.replace(" ", "")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        raise BadInput(
            "the TOTP code must be 6 digits from your authenticator app", hint="try the current code"
        )
    return code


def _row(request: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(request)
    quorum = int(request.get("quorum") or 0)
    approvals = list(request.get("approvals") or [])
    row["approvals_text"] = "auto" if quorum == 0 else f"{len(approvals)} of {quorum}"
    row["approvers"] = ", ".join(request.get("approvers") or [])
    return row


def _api(cli: CliContext) -> AccessApi:
    return cli.access_api()


# -- who am I ------------------------------------------------------------------------------------


def whoami_command(
    ctx: typer.Context, output_format: FormatOption = None, as_json: JsonOption = False
) -> None:
    """Who AWS says you are, and your enrollment, as the access API sees you.

    [bold]Examples[/]

      $ breakglass whoami

      $ breakglass --profile oncall whoami --json
    """
    out = Output.of(output_format, as_json)
    answer = _api(get_context(ctx)).get("/whoami")
    out.record(answer)


# -- requesting ---------------------------------------------------------------------------------


def request_command(
    ctx: typer.Context,
    tier: Annotated[
        str,
        typer.Option("--tier", "-t", help="The tier to ask for (breakglass deployments NAME lists them)."),
    ],
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why, in at least 10 characters: approvers read it.")
    ],
    ticket: Annotated[
        str | None, typer.Option("--ticket", help="The incident ticket (some tiers require one).")
    ] = None,
    duration: Annotated[
        str, typer.Option("--duration", help="How long: 30m, 1h, 1h30m (at most the tier's window).")
    ] = "30m",
    totp: TotpOption = None,
    start_at: Annotated[
        str | None,
        typer.Option(
            "--start-at",
            help="Open the window later: a UTC time (2026-12-01T09:00:00Z) or +2h; approvals happen now.",
        ),
    ] = None,
    no_wait: NoWaitOption = False,
    wait_seconds: WaitSecondsOption = 3600,
    poll_seconds: PollSecondsOption = 2.0,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Ask for emergency access to a tier, then wait for the decision.

    AWS says who you are; your TOTP code proves it. Auto-approved tiers are granted in seconds;
    others wait for their approvers (they get an email). Exit 0 when granted, 1 when denied.

    [bold]Examples[/]

      $ breakglass request --tier halt --reason "chat model leaks customer data" --duration 30m

      $ breakglass request --tier admin --reason "rotate the leaked model key" --ticket INC-4242 --no-wait

      $ breakglass request --tier operator --reason "planned model key rotation" --start-at +2h --no-wait
    """
    out = Output.of(output_format, as_json, wide)
    try:
        parse_duration("duration", duration)
        if start_at is not None:
            parse_start_at("--start-at", start_at, _now())
    except ConfigError as exc:
        raise BadInput(str(exc)) from exc
    cli = get_context(ctx)
    api = _api(cli)
    body: dict[str, Any] = {"tier": tier, "reason": reason, "duration": duration, "totp": read_totp(totp)}
    if ticket:
        body["ticket"] = ticket
    if start_at is not None:
        body["start_at"] = start_at
    made = api.post("/requests", body)
    request_id = made["request_id"]
    note(f"request {request_id} submitted for tier {tier}")
    if made.get("start_at"):
        note(f"its window opens at {made['start_at']} once approved")
    final = made if no_wait else wait_for_decision(api, request_id, wait_seconds, poll_seconds)
    out.record(_row(final), REQUEST_COLUMNS, title=f"Request {request_id}")
    _tell_outcome(final)


def _tell_outcome(final: Mapping[str, Any]) -> None:
    request_id = final.get("request_id")
    if final.get("status") == "granted":
        opens = final.get("starts_at")
        if opens and parse_iso(str(opens)) > _now():
            note(f"granted from {opens} until {final.get('expires_at')}: then breakglass assume {request_id}")
        else:
            note(f"granted until {final.get('expires_at')}: breakglass assume {request_id}")
    elif final.get("status") in ("denied", "revoked", "expired"):
        raise CliError(
            f"request {request_id} is {final.get('status')}",
            hint="a denial is final; ask again with more detail",
        )


def extend_command(
    ctx: typer.Context,
    request_id: Annotated[
        str, typer.Argument(metavar="ID", help="Your granted request (or its latest extension).")
    ],
    by: Annotated[str, typer.Option("--by", help="How much longer: 30m, 1h (at most the tier's window).")],
    reason: Annotated[
        str,
        typer.Option("--reason", "-r", help="Why more time, in at least 10 characters: approvers read it."),
    ],
    totp: TotpOption = None,
    no_wait: NoWaitOption = False,
    wait_seconds: WaitSecondsOption = 3600,
    poll_seconds: PollSecondsOption = 2.0,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Extend your granted window: a new request, approved again by the tier's rules.

    The new window begins where the old one ends; the old sessions still end at the old expiry, so
    assume the new request once its window opens. The tier caps the total from the first window's
    start. Exit 0 when granted, 1 when denied.

    [bold]Examples[/]

      $ breakglass extend r2611300213004f1c9a2b7e --by 30m --reason "the key rotation needs another half hour"

      $ breakglass extend r2611300213004f1c9a2b7e --by 1h --reason "still rolling back the model" --no-wait --json
    """
    out = Output.of(output_format, as_json, wide)
    rid = _request_id(request_id)
    try:
        parse_duration("--by", by)
    except ConfigError as exc:
        raise BadInput(str(exc)) from exc
    api = _api(get_context(ctx))
    made = api.post(f"/requests/{rid}/extensions", {"by": by, "reason": reason, "totp": read_totp(totp)})
    extension = made["request_id"]
    note(f"extension {extension} of {rid} submitted: its window would run from {made.get('start_at')}")
    final = made if no_wait else wait_for_decision(api, extension, wait_seconds, poll_seconds)
    out.record(_row(final), REQUEST_COLUMNS, title=f"Extension {extension} of {rid}")
    _tell_outcome(final)


def wait_for_decision(
    api: AccessApi, request_id: str, wait_seconds: float, poll_seconds: float
) -> dict[str, Any]:
    """Poll the request until it is decided, showing approvals and time left on one live line."""
    deadline = time.monotonic() + wait_seconds
    console = Console(stderr=True, highlight=False)
    with console.status(f"waiting for request {request_id}") as status:
        while True:
            current = api.get(f"/requests/{request_id}")
            if current.get("status") in FINAL:
                return dict(current)
            left = int(deadline - time.monotonic())
            status.update(
                f"request {request_id}: {current.get('status')}, approvals {_row(current)['approvals_text']}"
                f" · giving up in {max(left, 0) // 60}m{max(left, 0) % 60:02d}s"
            )
            if left <= 0:
                raise CliError(
                    f"request {request_id} is still {current.get('status')}",
                    hint=f"it goes on without you: breakglass status {request_id}",
                )
            time.sleep(poll_seconds)


def status_command(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(metavar="ID", help="The request id.")],
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Show one request: status, approvals, window.

    [bold]Examples[/]

      $ breakglass status r2611300213004f1c9a2b7e

      $ breakglass status r2611300213004f1c9a2b7e --json
    """
    out = Output.of(output_format, as_json, wide)
    answer = _api(get_context(ctx)).get(f"/requests/{_request_id(request_id)}")
    out.record(_row(answer), REQUEST_COLUMNS)


class Scope(StrEnum):
    mine = "mine"
    pending = "pending"
    active = "active"
    all = "all"


def list_command(
    ctx: typer.Context,
    scope: Annotated[
        Scope, typer.Option("--scope", help="mine, pending (for you to decide), active, all (security).")
    ] = Scope.mine,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List requests of the last 30 days.

    [bold]Examples[/]

      $ breakglass list

      $ breakglass list --scope active --wide
    """
    out = Output.of(output_format, as_json, wide)
    answer = _api(get_context(ctx)).get("/requests", {"scope": scope.value})
    out.rows(
        [_row(r) for r in answer["requests"]],
        REQUEST_COLUMNS,
        title=f"Requests ({scope.value})",
        document=answer,
    )


def pending_command(
    ctx: typer.Context,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List the requests waiting for your decision.

    [bold]Examples[/]

      $ breakglass pending

      $ breakglass pending --json
    """
    list_command(ctx, Scope.pending, output_format, as_json, wide)


# -- using a grant ---------------------------------------------------------------------------------


class CredentialFormat(StrEnum):
    env = "env"
    json = "json"
    credential_process = "credential-process"


def _profile_mfa_serial(cli: CliContext) -> str | None:
    """``mfa_serial`` of the AWS profile in use, as the AWS CLI reads it."""
    try:
        value = cli.session()._session.get_scoped_config().get("mfa_serial")
    except Exception:
        return None
    return str(value) if value else None


def granted_credentials(
    cli: CliContext, request_id: str, *, mfa_serial: str | None, mfa_code: str | None, fresh: bool = False
) -> sessions.Credentials:
    deployment = cli.deployment()
    now = _now()
    if not fresh:
        cached = sessions.load(deployment.name, request_id, now=now)
        if cached is not None:
            return cached
    request = _api(cli).get(f"/requests/{request_id}")
    tier = deployment.tier(str(request.get("tier")))
    serial = mfa_serial or _profile_mfa_serial(cli)
    if tier.require_mfa and serial and not mfa_code:
        mfa_code = str(typer.prompt(f"MFA code ({serial})", hide_input=True, err=True))
    # The duration is counted from the moment of the call, not from before the API read and the
    # MFA prompt: STS counts from when it issues, so a stale `now` ends the session past expiry.
    credentials = sessions.assume(
        cli.client("sts"), request=request, tier=tier, now=_now(), mfa_serial=serial, mfa_code=mfa_code
    )
    sessions.save(deployment.name, credentials)
    return credentials


def assume_command(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(metavar="ID", help="Your granted request.")],
    credential_format: Annotated[
        CredentialFormat, typer.Option("--format", help="env (export lines), json, or credential-process.")
    ] = CredentialFormat.env,
    as_json: JsonOption = False,
    mfa_serial: MfaSerialOption = None,
    mfa_code: MfaCodeOption = None,
) -> None:
    """Get credentials of the emergency role for your granted request.

    The session's name and source identity are your user id and it carries the request id tag, as
    the grant requires; it ends by the window's expiry. Credentials are cached (0600) for
    credential_process; see configure-profile.

    [bold]Examples[/]

      $ breakglass assume r2611300213004f1c9a2b7e

      $ breakglass assume r2611300213004f1c9a2b7e --format credential-process
    """
    cli = get_context(ctx)
    chosen = CredentialFormat.json if as_json else credential_format
    rid = _request_id(request_id)
    credentials = granted_credentials(
        cli,
        rid,
        mfa_serial=mfa_serial,
        mfa_code=mfa_code,
        fresh=chosen is not CredentialFormat.credential_process,
    )
    if chosen is CredentialFormat.credential_process:
        Output(Format.json).json(credentials.as_credential_process())
    elif chosen is CredentialFormat.json:
        Output(Format.json).json(credentials.as_json())
    else:
        for name, value in credentials.as_env().items():
            typer.echo(f"export {name}={shlex.quote(value)}")
        note(f"session of {credentials.role_arn} until {credentials.expiration:%Y-%m-%d %H:%M:%S} UTC")


def _breakglass_executable() -> str:
    """This installation's ``breakglass`` script, so the AWS CLI runs the same version."""
    import shutil

    beside = Path(sys.executable).parent / "breakglass"
    return str(beside) if beside.exists() else shutil.which("breakglass") or "breakglass"


def _aws_config_file() -> Path:
    import os

    return Path(os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config")


def configure_profile_command(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(metavar="ID", help="Your granted request.")],
    profile_name: Annotated[
        str | None, typer.Option("--profile-name", help="Default: breakglass-ID.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write an AWS CLI profile that gets its credentials from this request (credential_process).

    Every AWS tool then works unchanged: aws --profile breakglass-ID ... The profile stops working
    at the window's expiry, like every session of the grant.

    [bold]Examples[/]

      $ breakglass configure-profile r2611300213004f1c9a2b7e

      $ breakglass configure-profile r2611300213004f1c9a2b7e --profile-name incident
    """
    import configparser

    cli = get_context(ctx)
    rid = _request_id(request_id)
    deployment = cli.deployment()
    name = profile_name or f"breakglass-{rid}"
    command = [_breakglass_executable()]
    command += ["--deployment", deployment.name]
    if cli.settings.endpoint_url.value:
        command += ["--endpoint-url", cli.settings.endpoint_url.value]
    if cli.settings.profile.value:
        command += ["--profile", cli.settings.profile.value]
    command += ["assume", rid, "--format", "credential-process"]
    path = _aws_config_file()
    config = configparser.RawConfigParser()
    config.read(path)
    section = f"profile {name}"
    if not config.has_section(section):
        config.add_section(section)
    config.set(section, "credential_process", shlex.join(command))
    if cli.region:
        config.set(section, "region", cli.region)
    if cli.settings.endpoint_url.value:
        config.set(section, "endpoint_url", cli.settings.endpoint_url.value)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        config.write(handle)
    written = {"profile": name, "config_file": str(path), "credential_process": shlex.join(command)}
    if as_json:
        Output(Format.json).json(written)
    else:
        typer.echo(f"profile {name} written to {path}")
        note(f"use it: aws --profile {name} sts get-caller-identity")


def revoke_command(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(metavar="ID", help="The request to end now.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the record.")] = None,
    totp: TotpOption = None,
    as_json: JsonOption = False,
) -> None:
    """End a grant now: its sessions stop working at once (requester, its approvers, security).

    [bold]Examples[/]

      $ breakglass revoke r2611300213004f1c9a2b7e

      $ breakglass revoke r2611300213004f1c9a2b7e --reason "incident closed" --json
    """
    cli = get_context(ctx)
    rid = _request_id(request_id)
    body: dict[str, Any] = {"totp": read_totp(totp)}
    if reason:
        body["reason"] = reason
    answer = _api(cli).post(f"/requests/{rid}/revoke", body)
    ended = [str(e) for e in (*answer.get("extensions_revoked", ()), *answer.get("extensions_withdrawn", ()))]
    for revoked in (rid, *ended):
        sessions.forget(cli.deployment().name, revoked)
    if as_json:
        Output(Format.json).json(answer)
        return
    if answer.get("original_status"):
        typer.echo(f"request {rid} had already {answer['original_status']}; its extensions are ended")
    else:
        typer.echo(f"request {rid} revoked ({answer.get('outcome')}); its sessions no longer work")
    if ended:
        typer.echo(f"extensions ended with it: {', '.join(ended)}")


# -- halting and resuming ------------------------------------------------------------------------------


def _active_grant(cli: CliContext, capability: str, tier: str | None) -> dict[str, Any] | None:
    deployment = cli.deployment()
    now = _now()
    mine = _api(cli).get("/requests", {"scope": "mine"})["requests"]
    for request in mine:
        info = deployment.tiers.get(str(request.get("tier")))
        if (
            request.get("status") == "granted"
            and request.get("expires_at")
            and parse_iso(str(request["expires_at"])) > now
            and (not request.get("starts_at") or parse_iso(str(request["starts_at"])) <= now)
            and info is not None
            and bool(info.extra.get(capability))
            and (tier is None or request.get("tier") == tier)
        ):
            return dict(request)
    return None


def _halt_or_resume(
    ctx: typer.Context,
    targets: Sequence[str],
    mode: str,
    reason: str,
    *,
    halting: bool,
    tier: str | None,
    totp: str | None,
    mfa_serial: str | None,
    mfa_code: str | None,
    output_format: Format | None,
    as_json: bool,
    wide: bool,
) -> None:
    out = Output.of(output_format, as_json, wide)
    cli = get_context(ctx)
    deployment = cli.deployment()
    capability = "may_halt" if halting else "may_resume"
    grant = _active_grant(cli, capability, tier)
    if grant is None and halting:
        # The auto-approved tier: ask for it now (a halt must never wait for people).
        auto = tier or next(
            (t.name for t in deployment.tiers.values() if t.quorum == 0 and t.extra.get("may_halt")), None
        )
        if auto is None or deployment.tier(auto).quorum != 0:
            raise CliError(
                "no active grant may halt, and no auto-approved tier exists",
                hint="breakglass request --tier ...",
            )
        note(f"no active grant may halt: requesting tier {auto} (auto-approved)")
        api = _api(cli)
        # At least AWS's shortest session plus the time to get it, at most the tier's window.
        window = deployment.tier(auto).max_window_seconds or AUTO_HALT_SECONDS
        duration = f"{min(AUTO_HALT_SECONDS, window)}s"
        made = api.post(
            "/requests", {"tier": auto, "reason": reason, "duration": duration, "totp": read_totp(totp)}
        )
        grant = wait_for_decision(api, made["request_id"], 120, 1.0)
        if grant.get("status") != "granted":
            raise CliError(f"request {made['request_id']} is {grant.get('status')}")
    if grant is None:
        raise CliError(
            "no active grant of a tier that may resume",
            hint="resuming is a decision: breakglass request --tier operator --reason ...",
        )
    credentials = granted_credentials(cli, str(grant["request_id"]), mfa_serial=mfa_serial, mfa_code=mfa_code)
    session_api = AccessApi(
        credentials.session(cli.region), deployment.need("access_api_url"), cli.region or ""
    )
    action = "halts" if halting else "resumes"
    note(
        f"{'halting' if halting else 'resuming'} {', '.join(targets)} ({mode}) as request {grant['request_id']}"
    )
    with Console(stderr=True).status(f"{action[:-1]} in progress"):
        answer = session_api.post(
            f"/{action}",
            {"targets": list(targets) if targets != ["all"] else "all", "mode": mode, "reason": reason},
        )
    rows = [_result_row(r) for r in answer.get("results", [])]
    out.rows(
        rows, RESULT_COLUMNS, title=f"{action[:-1].capitalize()} {answer.get('status')}", document=answer
    )
    if answer.get("status") != "ok":
        raise CliError(
            f"{action[:-1]} {answer.get('status')}: see the table", hint="every target's outcome is on record"
        )


def _result_row(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "target": result.get("target"),
        "mode": result.get("mode"),
        "outcome": result.get("outcome"),
        "changed": result.get("changed"),
        "error": result.get("error"),
        "seconds": result.get("seconds"),
    }


TargetsArgument = Annotated[list[str], typer.Argument(metavar="TARGET...", help="Target ids, or all.")]
ModeOption = Annotated[str, typer.Option("--mode", help="deny-invoke, delete-endpoint or scp.")]


def halt_command(
    ctx: typer.Context,
    targets: TargetsArgument,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why, for the record and the alert.")],
    mode: ModeOption = "deny-invoke",
    tier: Annotated[str | None, typer.Option("--tier", help="Use your grant of this tier.")] = None,
    totp: TotpOption = None,
    mfa_serial: MfaSerialOption = None,
    mfa_code: MfaCodeOption = None,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Stop AI targets now. Without an active grant that may halt, asks for the auto-approved tier.

    [bold]Examples[/]

      $ breakglass halt chat --reason "leaking customer data"

      $ breakglass halt all --mode delete-endpoint --reason "model exfiltration" --json
    """
    _halt_or_resume(
        ctx,
        targets,
        mode,
        reason,
        halting=True,
        tier=tier,
        totp=totp,
        mfa_serial=mfa_serial,
        mfa_code=mfa_code,
        output_format=output_format,
        as_json=as_json,
        wide=wide,
    )


def resume_command(
    ctx: typer.Context,
    targets: TargetsArgument,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why it is safe again.")],
    mode: ModeOption = "deny-invoke",
    tier: Annotated[str | None, typer.Option("--tier", help="Use your grant of this tier.")] = None,
    mfa_serial: MfaSerialOption = None,
    mfa_code: MfaCodeOption = None,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Resume halted targets: needs your grant of a tier approved by people (e.g. operator).

    [bold]Examples[/]

      $ breakglass resume chat --reason "guardrail fixed and tested"

      $ breakglass resume chat --mode delete-endpoint --reason "fixed" --tier operator
    """
    _halt_or_resume(
        ctx,
        targets,
        mode,
        reason,
        halting=False,
        tier=tier,
        totp=None,
        mfa_serial=mfa_serial,
        mfa_code=mfa_code,
        output_format=output_format,
        as_json=as_json,
        wide=wide,
    )


# -- approvers ---------------------------------------------------------------------------------------


def _vote(ctx: typer.Context, request_id: str, decision: str, totp: str | None, as_json: bool) -> None:
    cli = get_context(ctx)
    rid = _request_id(request_id)
    answer = _api(cli).post(f"/requests/{rid}/votes", {"decision": decision, "totp": read_totp(totp)})
    if as_json:
        Output(Format.json).json(answer)
        return
    done = "approved" if decision == "approve" else "denied"
    typer.echo(f"{done}: request {rid} is {answer.get('status')} ({_row(answer)['approvals_text']})")
    if answer.get("note"):
        note(str(answer["note"]))


def approve_command(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(metavar="ID", help="The request to approve.")],
    totp: TotpOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a request you were asked to decide (never your own).

    [bold]Examples[/]

      $ breakglass approve r2611300213004f1c9a2b7e

      $ breakglass approve r2611300213004f1c9a2b7e --json
    """
    _vote(ctx, request_id, "approve", totp, as_json)


def deny_command(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(metavar="ID", help="The request to deny (final).")],
    totp: TotpOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deny a request; a denial is final.

    [bold]Examples[/]

      $ breakglass deny r2611300213004f1c9a2b7e

      $ breakglass deny r2611300213004f1c9a2b7e --json
    """
    _vote(ctx, request_id, "deny", totp, as_json)


# -- security ------------------------------------------------------------------------------------------


class Role(StrEnum):
    responder = "responder"
    approver = "approver"
    security = "security"


def enroll_command(
    ctx: typer.Context,
    user: Annotated[
        str, typer.Argument(help="The person's user id: their IAM user name or SSO session name.")
    ],
    role: Annotated[
        list[Role], typer.Option("--role", help="responder, approver, security (repeat for several).")
    ],
    principal: Annotated[str, typer.Option("--principal", help="Their IAM user or role ARN.")],
    email: Annotated[str, typer.Option("--email", help="Where approval emails and notices go.")],
    png: Annotated[
        Path | None, typer.Option("--png", help="Also write the QR code to this PNG file.")
    ] = None,
    totp: TotpOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enroll a person: prints their authenticator's otpauth URI and a QR code to scan once.

    Security enrolls (with their TOTP code), or a bootstrap admin named in the stack.

    [bold]Examples[/]

      $ breakglass enroll alice --role responder --principal arn:aws:iam::123456789012:user/alice --email alice@example.com

      $ breakglass enroll ann --role approver --role responder --principal arn:aws:iam::123456789012:user/ann --email ann@example.com --png ann.png
    """
    cli = get_context(ctx)
    api = _api(cli)
    me = api.get("/whoami")
    body: dict[str, Any] = {
        "user": user,
        "principal_arn": principal,
        "email": email,
        "roles": [r.value for r in role],
    }
    if "security" in (me.get("roles") or []):
        body["totp"] = read_totp(totp)
    answer = api.post("/enrollments", body)
    uri = str(answer["otpauth_uri"])
    if png is not None:
        import qrcode
        from qrcode.image.pure import PyPNGImage

        qrcode.make(uri, image_factory=PyPNGImage).save(str(png))
    if as_json:
        Output(Format.json).json({**answer, "png": str(png) if png else None})
        return
    typer.echo(uri)
    _print_qr(uri)
    note(f"{user} is enrolled; they scan the code once (it is shown only now)")


def _print_qr(uri: str) -> None:
    import io

    import qrcode

    code = qrcode.QRCode(border=1)
    code.add_data(uri)
    buffer = io.StringIO()
    code.print_ascii(out=buffer, invert=True)
    sys.stderr.write(buffer.getvalue())


def unenroll_command(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The person's user id.")],
    totp: TotpOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove a person's enrollment (their authenticator stops working here).

    [bold]Examples[/]

      $ breakglass unenroll mallory

      $ breakglass unenroll mallory --json
    """
    cli = get_context(ctx)
    api = _api(cli)
    me = api.get("/whoami")
    body = {"totp": read_totp(totp)} if "security" in (me.get("roles") or []) else None
    answer = api.delete(f"/enrollments/{user}", body)
    if as_json:
        Output(Format.json).json(answer)
    else:
        typer.echo(f"{user} is no longer enrolled")


def review_command(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(metavar="ID", help="The request reviewed.")],
    verdict: Annotated[str, typer.Option("--verdict", help="accepted or flagged.")],
    notes: Annotated[str, typer.Option("--notes", help="What you found (required when flagging).")] = "",
    totp: TotpOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record the post-event review of a request (security).

    [bold]Examples[/]

      $ breakglass audit review r2611300213004f1c9a2b7e --verdict accepted

      $ breakglass audit review r2611300213004f1c9a2b7e --verdict flagged --notes "calls outside the ticket's scope"
    """
    if verdict not in ("accepted", "flagged"):
        raise BadInput("--verdict must be accepted or flagged")
    cli = get_context(ctx)
    rid = _request_id(request_id)
    answer = _api(cli).post(
        f"/requests/{rid}/review", {"verdict": verdict, "notes": notes, "totp": read_totp(totp)}
    )
    if as_json:
        Output(Format.json).json(answer)
    else:
        typer.echo(f"review of {rid} recorded: {verdict}")


def waive_command(
    ctx: typer.Context,
    person: Annotated[str, typer.Option("--person", help="Whose next request may pass (their user id).")],
    tier: Annotated[str, typer.Option("--tier", help="The review-gated tier (e.g. admin).")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why this cannot wait for the review, in at least 10 characters.")
    ],
    totp: TotpOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let a person's next request of a review-gated tier through while their ended grants await
    their review (security; never for yourself). One request, within 24 hours, on the record.

    [bold]Examples[/]

      $ breakglass audit waive --person rita --tier admin --reason "second incident, INC-4243, review of the first is booked"

      $ breakglass audit waive --person rita --tier admin --reason "database outage, on call alone" --json
    """
    cli = get_context(ctx)
    answer = _api(cli).post(
        "/waivers", {"user": person, "tier": tier, "reason": reason, "totp": read_totp(totp)}
    )
    if as_json:
        Output(Format.json).json(answer)
    else:
        typer.echo(
            f"{answer.get('user')} may make one request of tier {answer.get('tier')} until "
            f"{answer.get('expires_at')} (still awaiting review: "
            f"{', '.join(answer.get('unreviewed_requests') or [str(answer.get('unreviewed_request'))])})"
        )


def register(app: typer.Typer) -> None:
    """Add the access-API commands to the root command."""
    for name, command in (
        ("whoami", whoami_command),
        ("request", request_command),
        ("extend", extend_command),
        ("status", status_command),
        ("list", list_command),
        ("assume", assume_command),
        ("configure-profile", configure_profile_command),
        ("revoke", revoke_command),
        ("halt", halt_command),
        ("resume", resume_command),
        ("approve", approve_command),
        ("deny", deny_command),
        ("pending", pending_command),
        ("enroll", enroll_command),
        ("unenroll", unenroll_command),
    ):
        app.command(name)(command)


__all__ = ["ApiError", "register", "review_command", "waive_command"]
