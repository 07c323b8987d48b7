"""Every `breakglass` command the guides tell people to type exists and works.

Each command line in the ``sh``, ``console`` and ``bash`` blocks of the README and every guide in
docs/ (a ``$`` prompt and a ``.venv/bin/`` path dropped) is parsed against
the command tree; those of docs/cli.md and docs/auditor.md are also run, in a world with a deployment ``prod`` (moto: SSM, S3, Athena),
the fixture incidents in its bucket and a copy of them in ``./audit-copy``. A line that ends with
a comment saying it exits 1 must exit 1; every other must exit 0.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import typer
from cli_world import REGION, parses, publish, runner, upload_copy
from fixtures.audit.scenario import AUDIT_BUCKET, build_local_bucket
from moto import mock_aws

from breakglass.cli.main import app

DOCS = Path(__file__).parent.parent / "docs"
GUIDES = ("cli.md", "auditor.md")
EVERY_GUIDE = ("../README.md", *sorted(p.name for p in DOCS.glob("*.md")))
# changes the shell's rc files / needs the repo's examples / deploys a whole emulator (tests/test_drill.py)
NOT_RUN = ("--install-completion", " synth ", " drill")


def command_lines(name: str) -> list[tuple[str, list[str], int]]:
    """(line, argv after `breakglass`, expected exit) for each command in the guide's shell blocks."""
    text = (DOCS / name).read_text()
    found = []
    for block in re.findall(r"```(?:sh|console|bash)\n(.*?)```", text, flags=re.S):
        for raw in block.replace("\\\n", " ").splitlines():  # join continued lines
            line = raw.strip().removeprefix("$ ").removeprefix(".venv/bin/")  # prompt, the venv's copy
            if not line.startswith("breakglass"):
                continue
            command, _, comment = line.partition("#")
            expected = 1 if re.search(r"\bexits 1\b", comment) else 0
            words = shlex.split(command.split(" > ")[0].split(" | ")[0])
            found.append((line, words[1:], expected))
    return found


ALL = [(name, *item) for name in GUIDES for item in command_lines(name)]
PARSED = [(name, *item) for name in EVERY_GUIDE for item in command_lines(name)]


def test_the_guides_show_every_auditor_command() -> None:
    shown = {" ".join(w for w in argv if not w.startswith("-"))[:40] for _, _, argv, _ in ALL}
    for command in ("deployments", "audit queries", "audit query", "audit sync", "audit report"):
        assert any(s.startswith(command) or f" {command}" in f" {s}" for s in shown), command


@pytest.mark.parametrize(
    ("guide", "line", "argv", "expected"), PARSED, ids=[f"{g}: {line}" for g, line, _, _ in PARSED]
)
def test_each_command_in_the_guides_parses(guide: str, line: str, argv: list[str], expected: int) -> None:
    if "--install-completion" in argv:
        return  # parsing it would install it
    try:
        parses(argv)
    except typer.Exit as exit_:  # --version: eager, and done
        assert exit_.exit_code == 0
    except SystemExit as exit_:  # --show-completion
        assert exit_.code == 0


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    copy = build_local_bucket(tmp_path / "fixture")
    shutil.copytree(copy, tmp_path / "work" / "audit-copy")
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("BREAKGLASS_DEPLOYMENT", "prod")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with mock_aws():
        publish(boto3.client("ssm", region_name=REGION), "prod", athena_workgroup="breakglass-audit")
        boto3.client("athena", region_name=REGION).create_work_group(Name="breakglass-audit")
        upload_copy(boto3.client("s3", region_name=REGION), AUDIT_BUCKET, copy)
        yield tmp_path / "work"


def test_the_commands_in_the_guides_run(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.athena.models import QueryResults, athena_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = athena_backends[DEFAULT_ACCOUNT_ID][REGION]
    ran = 0
    for guide, line, argv, expected in ALL:
        if any(skip in f" {line} " for skip in NOT_RUN):
            continue
        if "--fail-on-rows" in argv and expected == 1:
            # Athena finds something: one row after the header row.
            header = [{"VarCharValue": "event_time"}]
            backend.query_results_queue.append(
                QueryResults(
                    rows=[{"Data": header}, {"Data": [{"VarCharValue": "2025-03-14T09:50:12Z"}]}],
                    column_info=[{"Name": "event_time", "Label": "event_time", "Type": "varchar"}],
                )
            )
        result = runner.invoke(app, argv)
        assert result.exit_code == expected, f"{guide}: {line}\n{result.output}"
        assert "unexpected" not in result.stderr and "Traceback" not in result.output
        ran += 1
    assert ran >= 15
    assert (world / "reports" / "breakglass-report-req-0001.html").is_file()
