"""The quickstart program (`make demo`) synthesizes offline and keeps its secure defaults."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.contracts import TIERS_CONFIG_FILE
from breakglass.local.synth import SynthResult, synth_directory

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart"
ROOT = QUICKSTART.parents[1]


def quickstart() -> SynthResult:
    return synth_directory(QUICKSTART)


def test_the_root_project_file_points_at_the_quickstart() -> None:
    from breakglass.local.synth import program_entry

    assert program_entry(ROOT) == QUICKSTART / "__main__.py"


def test_every_emergency_role_is_created_locked() -> None:
    tiers = {f"breakglass-{t}" for t in ("halt", "operator", "admin", "drill")}
    roles = [r for r in quickstart().by_type("aws:iam/role:Role") if r.parent in tiers]
    assert sorted(r.inputs["name"] for r in roles) == [
        "breakglass-emergency-admin",
        "breakglass-emergency-drill",
        "breakglass-emergency-halt",
        "breakglass-emergency-operator",
    ]
    for role in roles:
        trust = json.loads(role.inputs["assumeRolePolicy"])
        assert [s["Effect"] for s in trust["Statement"]] == ["Deny"], role.name
        assert role.inputs["permissionsBoundary"], role.name


def test_the_audit_bucket_is_locked_in_compliance_mode() -> None:
    lock = quickstart().one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    retention = lock.inputs["rule"]["defaultRetention"]
    assert retention == {"mode": "COMPLIANCE", "days": 365}


def test_the_kill_switch_and_its_tripwire_are_deployed() -> None:
    result = quickstart()
    assert {f.inputs["name"] for f in result.by_type("aws:lambda/function:Function")} >= {
        "breakglass-ai-halt",
        "breakglass-ai-resume",
    }
    alarms = [
        a for a in result.by_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.parent == "breakglass-ai"
    ]
    assert [a.inputs["metricName"] for a in alarms] == ["Invocation5XXErrors"]


def test_make_demo_command_prints_the_tree() -> None:
    result = CliRunner().invoke(app, ["synth", str(QUICKSTART)])
    assert result.exit_code == 0, result.output
    assert "LockedNoActiveGrant" in result.output
    assert "COMPLIANCE" in result.output


def test_the_approval_workflow_serves_every_emergency_tier() -> None:
    result = quickstart()
    machine = result.one("aws:sfn/stateMachine:StateMachine")
    assert machine.parent == "breakglass-approvals"
    assert json.loads(machine.inputs["definition"])["StartAt"]
    tiers = result.one("aws:lambda/function:Function", "breakglass-access").shipped_json(TIERS_CONFIG_FILE)
    assert sorted(tiers) == ["admin", "drill", "halt", "operator"]


def test_the_readme_first_stack_synthesizes(tmp_path: Path) -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## A first stack\n\n```python\n(.*?)```", readme, re.S)
    assert code is not None, "README lost its first-stack example"
    (tmp_path / "__main__.py").write_text(code.group(1))
    types = {r.type for r in synth_directory(tmp_path).resources}
    assert {
        "breakglass:index:AuditTrail",
        "breakglass:index:EmergencyRole",
        "breakglass:index:HaltActions",
    } <= types
