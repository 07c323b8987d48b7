"""``breakglass deployments [NAME]``: the deployments published in this account and region."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from breakglass.cli.config import check_deployment_name
from breakglass.cli.context import get_context
from breakglass.cli.deployment import from_parameters, list_deployments, load_deployment
from breakglass.cli.output import Column, Format, FormatOption, JsonOption, Output, WideOption, note

LIST_COLUMNS = (
    Column("name", no_wrap=True),
    Column("version"),
    Column("region"),
    Column("tiers"),
    Column("audit_bucket", "audit bucket"),
    Column("athena_workgroup", "workgroup", wide=True),
    Column("access_api_url", "access API", wide=True),
)
TIER_COLUMNS = (
    Column("name", "tier", no_wrap=True),
    Column("approval"),
    Column("max_session", "max session"),
    Column("max_window", "max window"),
    Column("require_mfa", "MFA"),
    Column("role_arn", "role", wide=True),
)


def deployments_command(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            help="Show this deployment's settings and tiers instead of the list.", show_default=False
        ),
    ] = None,
    output_format: FormatOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List the break-glass deployments in this account and region, or show one.

    A deployment publishes itself to SSM Parameter Store under /breakglass/NAME/; this reads them
    with the current credentials (--profile, --region).

    [bold]Examples[/]

      $ breakglass deployments

      $ breakglass --region eu-west-1 deployments prod --json
    """
    cli = get_context(ctx)
    out = Output.of(output_format, as_json, wide)
    ssm = cli.client("ssm")
    if name is not None:
        deployment = load_deployment(ssm, check_deployment_name(name, "NAME"), region=cli.region)
        if out.format is Format.json:
            out.json(deployment.as_json())
            return
        if out.format is Format.csv:
            out.rows([_summary(deployment.name, deployment.as_json())], LIST_COLUMNS)
            return
        settings = {k: v for k, v in deployment.as_json().items() if k not in ("tiers", "halt_targets")}
        out.record(settings, title=f"deployment {deployment.name}")
        tiers = [
            {
                "name": t.name,
                # A review-gated tier refuses a person until their last grant of it is reviewed.
                "approval": t.approval + (", review-gated" if t.extra.get("review_gate") else ""),
                "max_session": _duration(t.max_session_seconds),
                "max_window": _duration(t.max_window_seconds),
                "require_mfa": t.require_mfa,
                "role_arn": t.role_arn,
            }
            for t in deployment.tiers.values()
        ]
        out.rows(tiers, TIER_COLUMNS, title="tiers")
        if deployment.halt_targets:
            out.rows(
                [{"id": t.id, "modes": ", ".join(t.modes)} for t in deployment.halt_targets],
                [Column("id", "halt target"), Column("modes")],
            )
        return
    found = list_deployments(ssm)
    rows = [_summary(n, from_parameters(n, values).as_json()) for n, values in found.items()]
    if out.format is Format.json:
        out.json([from_parameters(n, values).as_json() for n, values in found.items()])
    else:
        out.rows(rows, LIST_COLUMNS, title=f"deployments in {cli.region}")
    if not found:
        note(f"no deployments in {cli.region} (nothing under /breakglass/); try --region or --profile")


def _summary(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "version": data.get("version"),
        "region": data.get("region"),
        "tiers": ", ".join(data.get("tiers", {})),
        "audit_bucket": data.get("audit_bucket"),
        "athena_workgroup": data.get("athena_workgroup"),
        "access_api_url": data.get("access_api_url"),
    }


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
