"""The command's framework: global options, settings precedence, exit codes, errors, output."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_world import WIDE, parses, runner
from fixtures.audit.scenario import build_local_bucket

import breakglass
from breakglass.cli import config, deployments
from breakglass.cli.errors import BadInput, translate
from breakglass.cli.main import app
from breakglass.cli.output import Column, Format, Output

# -- the command tree -------------------------------------------------------------------------------


def _commands() -> Iterator[tuple[list[str], Any]]:
    """Every leaf command as (path, click command)."""
    import typer.main

    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, command

    yield from walk(typer.main.get_command(app), [])


LEAVES = [path for path, _ in _commands()]


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"breakglass {breakglass.__version__}"


def test_shell_completion_can_be_shown_and_installed() -> None:
    shown = runner.invoke(app, ["--show-completion"])
    assert shown.exit_code == 0, shown.output
    assert "_BREAKGLASS_COMPLETE" in shown.stdout
    assert "--install-completion" in runner.invoke(app, ["--help"], env=WIDE).stdout


def test_the_query_name_completes_from_the_named_queries() -> None:
    from breakglass.cli.audit import _query_names

    assert _query_names("ses") == ["session_actions"]
    assert "tampering" in _query_names("")


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "Examples" in result.stdout
    assert "$ breakglass" in result.stdout


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_every_command_can_print_json(path: list[str]) -> None:
    command = dict((" ".join(p), c) for p, c in _commands())[" ".join(path)]
    assert any("--json" in getattr(param, "opts", []) for param in command.params)


def _example_lines(text: str) -> list[list[str]]:
    return [shlex.split(line.split("$ ", 1)[1]) for line in text.splitlines() if "$ breakglass " in line]


def test_every_example_in_the_help_is_a_valid_command_line() -> None:
    examples = []
    for path in [[], ["audit"], *LEAVES]:
        examples += _example_lines(runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"}).stdout)
    assert len(examples) >= 8
    for argv in examples:
        assert argv[0] == "breakglass"
        parses(argv[1:])


# -- exit codes and one-line errors ------------------------------------------------------------------


def test_an_unknown_option_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["--bogus", "deployments"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: No such option: --bogus"
    assert "Traceback" not in result.output and "Usage:" not in result.stderr


def test_a_missing_argument_names_it_and_points_at_the_help() -> None:
    result = runner.invoke(app, ["audit", "report"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: Missing argument 'ID'.",
        "see `breakglass audit report --help`",
    ]


def test_an_unknown_command_is_exit_2() -> None:
    result = runner.invoke(app, ["audit", "nope"])
    assert result.exit_code == 2
    assert "No such command 'nope'" in result.stderr


def test_no_command_prints_the_help() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "Governed emergency access" in result.stdout


def test_an_unexpected_error_is_one_line_and_says_how_to_get_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(deployments, "list_deployments", boom)
    result = runner.invoke(app, ["deployments"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: unexpected RuntimeError: boom",
        "this is a bug; rerun with BREAKGLASS_DEBUG=1 for the traceback and report it",
    ]
    debug = runner.invoke(app, ["deployments"], env={"BREAKGLASS_DEBUG": "1"})
    assert isinstance(debug.exception, RuntimeError)


def test_missing_credentials_are_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = runner.invoke(app, ["deployments"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no usable AWS credentials")
    assert "aws sso login" in result.stderr


def test_no_region_anywhere_is_bad_usage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("BREAKGLASS_CONFIG", str(tmp_path / "none.toml"))
    result = runner.invoke(app, ["deployments"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: no AWS region"


def test_an_unknown_profile_is_bad_usage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = runner.invoke(app, ["--profile", "nobody", "deployments"])
    assert result.exit_code == 2
    assert "AWS profile not found: nobody" in result.stderr


def test_aws_refusals_are_translated_into_one_line_with_a_hint() -> None:
    from botocore.exceptions import ClientError

    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "GetParametersByPath"
    )
    error = translate(denied)
    assert error is not None and error.exit_code == 1
    assert error.message == "AWS refused GetParametersByPath: AccessDeniedException: not allowed"
    assert error.hint is not None and "permission" in error.hint
    assert translate(ValueError("x")) is None


# -- settings and their precedence ------------------------------------------------------------------


def _config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return {"BREAKGLASS_CONFIG": str(path)}


def test_an_option_beats_the_environment_which_beats_the_config_file(tmp_path: Path) -> None:
    environ = _config(tmp_path, 'deployment = "from-file"\nprofile = "file-profile"\nregion = "eu-west-1"\n')
    from_file = config.resolve(environ=environ)
    assert (from_file.deployment.value, from_file.profile.value, from_file.region.value) == (
        "from-file",
        "file-profile",
        "eu-west-1",
    )
    assert from_file.deployment.source == f"{tmp_path / 'config.toml'} (deployment)"
    environ |= {
        "BREAKGLASS_DEPLOYMENT": "from-env",
        "AWS_PROFILE": "env-profile",
        "AWS_DEFAULT_REGION": "us-west-2",
    }
    from_env = config.resolve(environ=environ)
    assert (from_env.deployment.value, from_env.profile.value, from_env.region.value) == (
        "from-env",
        "env-profile",
        "us-west-2",
    )
    environ["AWS_REGION"] = "us-east-2"
    assert config.resolve(environ=environ).region.value == "us-east-2"  # AWS_REGION before AWS_DEFAULT_REGION
    from_options = config.resolve(
        deployment="opt", profile="opt-profile", region="ap-south-1", environ=environ
    )
    assert (from_options.deployment.value, from_options.profile.value, from_options.region.value) == (
        "opt",
        "opt-profile",
        "ap-south-1",
    )
    assert from_options.deployment.source == "--deployment"


def test_the_config_file_lives_under_xdg_config_home_by_default(tmp_path: Path) -> None:
    assert config.config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "breakglass" / "config.toml"
    assert config.config_path({"HOME": "/h"}).name == "config.toml"
    assert config.resolve(environ={"XDG_CONFIG_HOME": str(tmp_path)}).deployment.value is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('deployment = "prod', "is not valid TOML"),
        ('deploymnet = "prod"\n', "has an unknown key 'deploymnet'"),
        ("region = 3\n", "region must be a non-empty string"),
        ('deployment = "Prod_1"\n', "'Prod_1' is not a deployment name"),
    ],
)
def test_a_bad_config_file_is_bad_usage_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    environ = _config(tmp_path, text)
    with pytest.raises(BadInput, match=re.escape(message)):
        config.resolve(environ=environ)
    result = runner.invoke(app, ["deployments"], env=environ)
    assert result.exit_code == 2
    assert message in result.stderr and str(tmp_path / "config.toml") in result.stderr


def test_a_broken_config_file_does_not_break_help_or_offline_commands(tmp_path: Path) -> None:
    environ = _config(tmp_path, "not toml at all [")
    assert runner.invoke(app, ["audit", "query", "--help"], env=environ).exit_code == 0
    assert runner.invoke(app, ["audit", "queries"], env=environ).exit_code == 0


def test_a_malformed_deployment_option_is_bad_usage() -> None:
    result = runner.invoke(app, ["--deployment", "../etc", "audit", "sync", "x"])
    assert result.exit_code == 2
    assert "--deployment: '../etc' is not a deployment name" in result.stderr


# -- output ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_local_bucket(tmp_path_factory.mktemp("audit-bucket"))


SESSION = [
    "-p",
    "source_identity=alice",
    "-p",
    "start=2025-03-14T09:00:00Z",
    "-p",
    "end=2025-03-14T10:00:00Z",
]


def test_tables_fit_in_100_columns_and_keep_the_columns_that_matter(local_copy: Path) -> None:
    for name, params in (
        ("session_actions", SESSION),
        ("emergency_sessions", []),
        ("approvals", []),
        ("access_outside_grants", []),
        ("tampering", ["-p", "audit_bucket=breakglass-audit-111122223333"]),
    ):
        result = runner.invoke(
            app, ["audit", "query", name, "--local", str(local_copy), *params], env={"COLUMNS": "100"}
        )
        assert result.exit_code == 0, result.output
        assert max(len(line) for line in result.stdout.splitlines()) <= 100, result.stdout
        assert "more column(s) with --wide" in result.stdout or name == "approvals"
    narrow = runner.invoke(
        app, ["audit", "query", "session_actions", "--local", str(local_copy), *SESSION], env=WIDE
    )
    assert "user_agent" not in narrow.stdout and "event_name" in narrow.stdout
    wide = runner.invoke(
        app,
        ["audit", "query", "session_actions", "--local", str(local_copy), *SESSION, "--wide"],
        env={"COLUMNS": "400"},
    )
    assert "user_agent" in wide.stdout and "request_parameters" in wide.stdout


def test_csv_carries_every_column_and_one_line_per_row(local_copy: Path) -> None:
    result = runner.invoke(
        app, ["audit", "query", "session_actions", "--local", str(local_copy), *SESSION, "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["event_name"] for r in rows] == [
        "InvokeEndpoint",
        "DeleteEndpoint",
        "InvokeModel",
        "InvokeModel",
    ]
    assert json.loads(rows[0]["request_parameters"])["endpointName"] == "fraud-model"
    assert rows[0]["error_code"] == ""
    approvals = runner.invoke(
        app, ["audit", "query", "approvals", "--local", str(local_copy), "--format", "csv"]
    )
    assert [r["self_approval"] for r in csv.DictReader(io.StringIO(approvals.stdout))] == [
        "false",
        "true",
        "false",
        "false",
    ]


def test_json_is_the_only_thing_on_stdout(local_copy: Path) -> None:
    result = runner.invoke(app, ["audit", "query", "halts", "--local", str(local_copy), "--json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert set(document) == {"query", "params", "columns", "rows", "scanned"}
    assert "3 row(s)" in result.stderr


def test_json_and_another_format_at_once_are_refused(local_copy: Path) -> None:
    result = runner.invoke(
        app, ["audit", "query", "halts", "--local", str(local_copy), "--json", "--format", "csv"]
    )
    assert result.exit_code == 2
    assert "--json and --format csv disagree" in result.stderr


def test_table_cells_show_values_as_text_never_as_markup(capsys: pytest.CaptureFixture[str]) -> None:
    Output(Format.table).rows([{"reason": "[red]not markup[/red]", "ok": True, "n": None}], None)
    printed = capsys.readouterr().out
    assert "[red]not markup[/red]" in printed
    assert "true" in printed


def test_a_record_prints_field_and_value_or_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    fields = [Column("request_id", "request"), Column("status"), Column("role_arn", wide=True)]
    record = {"request_id": "abc123", "status": "granted", "role_arn": "arn:aws:iam::1:role/r"}
    Output(Format.table).record(record, fields, title="request abc123")
    table = capsys.readouterr().out
    assert "request abc123" in table and "granted" in table and "arn:aws" not in table
    Output(Format.json).record(record, fields)
    assert json.loads(capsys.readouterr().out) == record
