"""Finding a deployment by name in SSM: `breakglass deployments` and the CliContext every command uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from cli_world import REGION, TIERS, WIDE, publish, runner
from moto import mock_aws

from breakglass.cli.context import CliContext, get_context
from breakglass.cli.deployment import Deployment, from_parameters, parse_tiers
from breakglass.cli.errors import BadInput, CliError
from breakglass.cli.main import app


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ssm", region_name=REGION)
        publish(client, "prod")
        publish(client, "staging", tiers={"ops": TIERS["ops"]}, version="0.0.9")
        # Not a deployment's key: something else under the root must not confuse the listing.
        client.put_parameter(Name="/breakglass/notes", Value="x", Type="String")
        yield client


def test_deployments_lists_each_with_version_region_and_tiers(ssm: Any) -> None:
    result = runner.invoke(app, ["deployments"], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "prod" in line or "staging" in line]
    assert len(lines) == 2
    assert "0.1.0" in lines[0] and "halt, ops, admin" in lines[0]
    assert "0.0.9" in lines[1] and "us-east-1" in lines[1]


def test_deployments_as_json_give_every_published_setting(ssm: Any) -> None:
    result = runner.invoke(app, ["deployments", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert [d["name"] for d in listing] == ["prod", "staging"]
    prod = listing[0]
    assert prod["athena_workgroup"] == "prod-audit"
    assert prod["tiers"]["admin"] == {"name": "admin", **TIERS["admin"]}
    assert prod["halt_targets"] == [
        {"id": "endpoint/fraud-model", "modes": ["deny-invoke", "delete-endpoint"]}
    ]


def test_one_deployment_shows_its_settings_and_tiers(ssm: Any) -> None:
    result = runner.invoke(app, ["deployments", "prod"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "deployment prod" in result.stdout
    assert "prod-audit" in result.stdout
    tier_lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ ")}
    assert "auto" in tier_lines["halt"] and "15 min" in tier_lines["halt"]
    assert "2 approvers" in tier_lines["admin"] and "1 h" in tier_lines["admin"]
    assert "review-gated" in tier_lines["admin"] and "review-gated" not in tier_lines["ops"]
    assert "endpoint/fraud-model" in result.stdout


def test_a_missing_deployment_lists_the_existing_ones(ssm: Any) -> None:
    result = runner.invoke(app, ["deployments", "prdo"])
    assert result.exit_code == 2
    assert (
        result.stderr.splitlines()[0]
        == "error: no deployment 'prdo' in us-east-1; deployments here: prod, staging"
    )
    assert "`breakglass deployments` lists them" in result.stderr
    via_option = runner.invoke(app, ["--deployment", "prdo", "audit", "sync", "copy"])
    assert via_option.exit_code == 2
    assert "deployments here: prod, staging" in via_option.stderr


def test_without_a_deployment_the_error_lists_them_and_says_how_to_choose(ssm: Any, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["audit", "sync", str(tmp_path / "copy")], env={"BREAKGLASS_CONFIG": str(tmp_path / "none")}
    )
    assert result.exit_code == 2
    assert "no deployment chosen; deployments in us-east-1: prod, staging" in result.stderr
    assert "--deployment NAME, set BREAKGLASS_DEPLOYMENT" in result.stderr


def test_the_deployment_comes_from_the_environment_or_the_config_file(ssm: Any, tmp_path: Path) -> None:
    seen: list[str] = []

    @app.command("_probe", hidden=True)
    def probe(ctx: typer.Context) -> None:
        seen.append(get_context(ctx).deployment().name)

    try:
        config = tmp_path / "config.toml"
        config.write_text('deployment = "staging"\n')
        assert runner.invoke(app, ["_probe"], env={"BREAKGLASS_CONFIG": str(config)}).exit_code == 0
        env = {"BREAKGLASS_CONFIG": str(config), "BREAKGLASS_DEPLOYMENT": "prod"}
        assert runner.invoke(app, ["_probe"], env=env).exit_code == 0
        assert runner.invoke(app, ["-d", "staging", "_probe"], env=env).exit_code == 0
    finally:
        app.registered_commands.pop()
    assert seen == ["staging", "prod", "staging"]


def test_a_key_the_deployment_did_not_publish_is_named_in_the_error(ssm: Any) -> None:
    publish(ssm, "old", athena_workgroup=None, tiers=None, halt_targets=None)
    result = runner.invoke(app, ["-d", "old", "audit", "query", "halts", "--athena"])
    assert result.exit_code == 1
    assert "deployment 'old' does not publish /breakglass/old/athena_workgroup" in result.stderr
    assert "update the stack" in result.stderr


def test_a_deployment_with_unreadable_tiers_is_a_clear_error(ssm: Any) -> None:
    publish(ssm, "broken", tiers="{not json")
    result = runner.invoke(app, ["deployments", "broken"])
    assert result.exit_code == 1
    assert "/breakglass/broken/tiers is not valid JSON" in result.stderr


def test_tiers_parse_quorum_or_approval_and_keep_unknown_settings() -> None:
    tiers = parse_tiers("prod", json.dumps({"halt": {"approval": "auto"}, "ops": {"approval": 2, "new": 1}}))
    assert tiers["halt"].quorum == 0 and tiers["halt"].approval == "auto"
    assert tiers["ops"].quorum == 2 and tiers["ops"].extra == {"new": 1}
    with pytest.raises(CliError, match="require_mfa must be true or false"):
        parse_tiers("prod", json.dumps({"ops": {"require_mfa": "yes"}}))
    deployment = from_parameters("prod", {"region": "us-east-1", "tiers": json.dumps(TIERS)})
    assert deployment.tier("ops").require_mfa is True
    with pytest.raises(BadInput, match="has no tier 'root'; its tiers: halt, ops, admin"):
        deployment.tier("root")


def test_the_context_sends_clients_to_the_deployments_region(ssm: Any) -> None:
    context = CliContext(region_option="eu-west-1")
    assert context.region == "eu-west-1"
    context.use_deployment(Deployment(name="prod", region="us-east-1"))
    assert context.client("s3").meta.region_name == "us-east-1"
    assert context.client("s3", region="ap-south-1").meta.region_name == "ap-south-1"


def test_aws_endpoint_url_from_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.server import ThreadedMotoServer

    from breakglass.local.emulator import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        publish(boto3.client("ssm", region_name=REGION, endpoint_url=url), "emulated")
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        from_env = runner.invoke(app, ["deployments", "--json"])
        assert from_env.exit_code == 0, from_env.output
        assert [d["name"] for d in json.loads(from_env.stdout)] == ["emulated"]
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        from_option = runner.invoke(app, ["--endpoint-url", url, "deployments", "emulated", "--json"])
        assert from_option.exit_code == 0, from_option.output
        assert json.loads(from_option.stdout)["name"] == "emulated"
    finally:
        server.stop()


def test_no_deployments_at_all_says_where_it_looked() -> None:
    with mock_aws():
        result = runner.invoke(app, ["deployments"])
    assert result.exit_code == 0
    assert "no deployments in us-east-1 (nothing under /breakglass/)" in result.stderr
