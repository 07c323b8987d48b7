"""`breakglass synth` runs a program offline and shows every resource it would create."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.local.synth import SynthError, synth, synth_directory

runner = CliRunner()

PROGRAM = textwrap.dedent(
    """
    import json
    import pulumi
    import pulumi_aws as aws

    class Box(pulumi.ComponentResource):
        def __init__(self, name):
            super().__init__("breakglass:index:Box", name, None, None)
            bucket = aws.s3.Bucket(f"{name}-bucket", opts=pulumi.ResourceOptions(parent=self))
            aws.s3.BucketPolicy(
                f"{name}-policy",
                bucket=bucket.id,
                policy=bucket.arn.apply(lambda arn: json.dumps({"Resource": arn})),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.register_outputs({})

    cfg = pulumi.Config()
    Box(cfg.get("boxName") or "box")
    pulumi.export("answer", 42)
    """
)


@pytest.fixture
def program_dir(tmp_path: Path) -> Path:
    (tmp_path / "__main__.py").write_text(PROGRAM)
    return tmp_path


def test_synth_records_every_resource_with_its_parent_and_inputs(program_dir: Path) -> None:
    result = synth_directory(program_dir)
    assert [(r.type, r.name, r.parent) for r in result.resources] == [
        ("breakglass:index:Box", "box", None),
        ("aws:s3/bucket:Bucket", "box-bucket", "box"),
        ("aws:s3/bucketPolicy:BucketPolicy", "box-policy", "box"),
    ]
    policy = result.one("aws:s3/bucketPolicy:BucketPolicy")
    assert json.loads(policy.inputs["policy"]) == {"Resource": "arn:aws:s3:::box-bucket"}
    assert result.outputs == {"answer": 42}


def test_synth_passes_stack_config_to_the_program(program_dir: Path) -> None:
    result = synth_directory(program_dir, config={"boxName": "audit"})
    assert result.resources[0].name == "audit"


def test_synth_can_run_twice_in_one_process(program_dir: Path) -> None:
    assert len(synth_directory(program_dir).resources) == len(synth_directory(program_dir).resources) == 3


def test_a_failing_program_raises_synth_error_with_its_message() -> None:
    def broken() -> None:
        raise ValueError("retention_days: must be at least 1")

    with pytest.raises(SynthError, match="retention_days: must be at least 1"):
        synth(broken)


def test_cli_prints_a_tree(program_dir: Path) -> None:
    result = runner.invoke(app, ["synth", str(program_dir)])
    assert result.exit_code == 0, result.output
    assert "aws:s3/bucketPolicy:BucketPolicy" in result.output
    assert "box-policy" in result.output


def test_cli_writes_json_with_type_name_parent_and_inputs_and_the_outputs(
    program_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "resources.json"
    result = runner.invoke(app, ["synth", str(program_dir), "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["resources"][1] == {
        "type": "aws:s3/bucket:Bucket",
        "name": "box-bucket",
        "parent": "box",
        "inputs": {},
    }
    assert document["outputs"] == {"answer": 42}


def test_cli_reports_a_broken_program_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text("raise RuntimeError('alertEmail is required')\n")
    result = runner.invoke(app, ["synth", str(tmp_path)])
    assert result.exit_code == 1
    assert "alertEmail is required" in result.output
    assert "Traceback" not in result.output


def test_cli_rejects_a_directory_without_a_program(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", str(tmp_path)])
    assert result.exit_code == 2
    assert "no Pulumi program" in result.output


def test_cli_rejects_malformed_config(program_dir: Path) -> None:
    result = runner.invoke(app, ["synth", str(program_dir), "--config", "novalue"])
    assert result.exit_code == 1
    assert "key=value" in result.output
