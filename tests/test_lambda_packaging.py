"""Every function ships the Lambda-side code only, with its own role, policy and log group."""

from __future__ import annotations

import json

import pulumi
import pytest

from breakglass.components.functions import lambda_code, python_function
from breakglass.contracts import ENV_ALERT_TOPIC, ENV_AUDIT_BUCKET
from breakglass.lambdas.runtime import audit_writer_from_env, required_env
from breakglass.local.synth import synth


def test_the_code_zip_holds_handlers_and_policies_but_no_pulumi_side_code() -> None:
    names = set(lambda_code().assets)
    assert "breakglass/lambdas/audit/events.py" in names
    assert "breakglass/validation.py" in names
    assert "pyotp" in names
    assert not any(
        n.startswith(("breakglass/cli/", "breakglass/components/", "breakglass/local/")) for n in names
    )
    assert not any("__pycache__" in n for n in names)


class _Parent(pulumi.ComponentResource):
    def __init__(self) -> None:
        super().__init__("breakglass:index:Test", "parent")
        python_function(
            "parent-halt",
            handler="breakglass.lambdas.halt.handler.halt_handler",
            description="halts models",
            statements=[{"Effect": "Allow", "Action": "sagemaker:DeleteEndpoint", "Resource": "arn:x"}],
            environment={"A": "b"},
            parent=self,
        )
        self.register_outputs({})


def test_a_function_gets_its_own_role_policy_and_log_group() -> None:
    result = synth(_Parent)
    function = result.one("aws:lambda/function:Function")
    assert function.parent == "parent"
    assert function.inputs["handler"] == "breakglass.lambdas.halt.handler.halt_handler"
    assert function.inputs["environment"] == {"variables": {"A": "b"}}
    policy = json.loads(result.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    statements = {
        s.get("Sid", s["Action"] if isinstance(s["Action"], str) else "x"): s for s in policy["Statement"]
    }
    # Logging only to its own group, then exactly the statements it was given.
    assert statements["WriteOwnLogs"]["Resource"].endswith("/aws/lambda/parent-halt:*")
    assert statements["sagemaker:DeleteEndpoint"]["Resource"] == "arn:x"
    trust = json.loads(result.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    log_group = result.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["retentionInDays"] == 365


def test_a_function_without_its_audit_bucket_is_a_clear_configuration_error() -> None:
    with pytest.raises(RuntimeError, match=f"{ENV_AUDIT_BUCKET} is not set"):
        audit_writer_from_env({})
    with pytest.raises(RuntimeError, match="X is not set"):
        required_env("X", {})


def test_the_audit_writer_is_configured_from_the_environment() -> None:
    writer = audit_writer_from_env({ENV_AUDIT_BUCKET: "audit", ENV_ALERT_TOPIC: "arn:aws:sns:us-east-1:1:t"})
    assert writer.bucket == "audit"
    assert writer.topic_arn == "arn:aws:sns:us-east-1:1:t"
    assert writer.sns is not None


def test_every_import_of_the_shipped_code_is_shipped_the_stdlib_or_provided_by_the_runtime() -> None:
    import ast
    import sys

    from breakglass.lambdas import archive

    shipped = archive.shipped_files()
    modules = {n.removesuffix("/__init__.py").removesuffix(".py").replace("/", ".") for n in shipped}
    allowed_roots = set(archive.VENDORED) | set(archive.RUNTIME_PROVIDED) | set(sys.stdlib_module_names)
    missing = []
    for name, path in shipped.items():
        if not name.endswith(".py"):
            continue
        tree = ast.parse(path.read_text())
        # A module __getattr__ imports lazily, only when asked for a name no Lambda asks for.
        lazy = {
            id(n)
            for f in tree.body
            if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            for n in ast.walk(f)
        }
        for node in ast.walk(tree):
            if id(node) in lazy:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                root = target.split(".")[0]
                if root == "breakglass":
                    if target not in modules and f"{target}" not in {m.rsplit(".", 1)[0] for m in modules}:
                        missing.append(f"{name} imports {target}")
                elif root not in allowed_roots:
                    missing.append(f"{name} imports {target}")
    assert missing == []


def test_importing_the_package_root_does_not_import_pulumi() -> None:
    import subprocess
    import sys

    code = "import sys, breakglass.lambdas.approvals.workflow; print('pulumi' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
