"""The package schema other languages get (`pulumi package add`), built offline from the code.

Pulumi's analyzer reads it from the components' TypedDict args and annotated outputs; these tests
hold it to what a TypeScript, Go, .NET, Java or YAML user needs: every component, every field
described, the types and requirements the Python side enforces, and nothing tying the SDKs to
another package.
"""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from breakglass.provider import COMPONENTS, PACKAGE, schema
from breakglass.provider.doc_tables import type_label

ROOT = Path(__file__).parent.parent
SCHEMA = schema()
RESOURCES: dict[str, dict[str, Any]] = SCHEMA["resources"]

# (component, "in" or "out", schema name): expected type. The fields a program wires by hand.
EXPECTED_TYPES = {
    ("BreakGlass", "in", "deployment"): "string",
    ("BreakGlass", "in", "requesters"): "list[string]",
    ("BreakGlass", "in", "approvers"): "list[string]",
    ("BreakGlass", "in", "senderEmail"): "string",
    ("BreakGlass", "in", "alertEmails"): "list[string]",
    ("BreakGlass", "in", "tiers"): "map[map[any]]",
    ("BreakGlass", "in", "haltTargets"): "list[HaltTargetArgs]",
    ("BreakGlass", "in", "tripwires"): "list[TripwireArgs]",
    ("BreakGlass", "in", "audit"): "map[any]",
    ("BreakGlass", "in", "sealedAccess"): "map[any]",
    ("BreakGlass", "in", "adminSingleApproverOptIn"): "boolean",
    ("BreakGlass", "in", "dashboard"): "boolean",
    ("BreakGlass", "in", "tags"): "map[string]",
    ("BreakGlass", "out", "accessApiUrl"): "string",
    ("BreakGlass", "out", "approvalUrl"): "string",
    ("BreakGlass", "out", "roleArns"): "map[string]",
    ("BreakGlass", "out", "auditBucket"): "string",
    ("BreakGlass", "out", "haltFunction"): "string",
    ("AuditTrail", "in", "retentionDays"): "integer",
    ("AuditTrail", "in", "governanceModeOptIn"): "boolean",
    ("AuditTrail", "in", "existingTrailArn"): "string",
    ("AuditTrail", "out", "bucketArn"): "string",
    ("AuditTrail", "out", "kmsKeyArn"): "string",
    ("AuditQueries", "in", "auditBucket"): "string",
    ("AuditQueries", "in", "regions"): "list[string]",
    ("AuditQueries", "out", "namedQueryIds"): "map[string]",
    ("EmergencyRole", "in", "maxSessionDuration"): "integer",
    ("EmergencyRole", "in", "inlinePolicies"): "map[map[any]]",
    ("EmergencyRole", "in", "protectedArns"): "list[string]",
    ("EmergencyRole", "in", "roleChainingOptIn"): "list[string]",
    ("EmergencyRole", "out", "roleArn"): "string",
    ("EmergencyRole", "out", "tier"): "map[any]",
    ("ApprovalWorkflow", "in", "tiers"): "map[map[any]]",
    ("ApprovalWorkflow", "in", "tiersJson"): "string",
    ("ApprovalWorkflow", "in", "emergencyRoleArns"): "list[string]",
    ("ApprovalWorkflow", "in", "emergencyRoles"): "list[any]",
    ("ApprovalWorkflow", "out", "personaPolicyArns"): "map[string]",
    ("HaltActions", "in", "targets"): "list[HaltTargetArgs]",
    ("HaltActions", "in", "tripwires"): "list[TripwireArgs]",
    ("HaltActions", "out", "haltFunctionName"): "string",
    ("HaltActions", "out", "tripwireAlarmArns"): "map[string]",
    ("HaltActions", "out", "protectedArns"): "list[string]",
    ("SealedAccess", "in", "users"): "list[string]",
    ("SealedAccess", "in", "maxSessionSeconds"): "integer",
    ("SealedAccess", "out", "topicArns"): "map[string]",
    ("SealedAccess", "out", "userArns"): "list[string]",
    ("HaltTargetArgs", "in", "endpointTags"): "map[string]",
    ("HaltTargetArgs", "in", "invokerRoles"): "list[string]",
    ("TripwireArgs", "in", "threshold"): "number",
    ("TripwireArgs", "in", "evaluationPeriods"): "integer",
    ("TripwireArgs", "in", "dimensions"): "map[string]",
}
# What each component refuses to construct without (its from_args), as the SDKs will require it.
EXPECTED_REQUIRED = {
    "BreakGlass": {"requesters", "approvers", "senderEmail"},
    "AuditTrail": set(),
    "AuditQueries": {"auditBucket", "kmsKeyArn"},
    "EmergencyRole": {"tier", "allowedRequesters"},
    "ApprovalWorkflow": {
        "tiers",
        "senderEmail",
        "auditBucketName",
        "auditBucketArn",
        "auditKmsKeyArn",
        "alertTopicArn",
    },
    "HaltActions": {"targets", "auditBucketName"},
    "SealedAccess": {"users", "managedPolicyArns", "alertTopicArn", "alertEmails", "auditBucketName"},
    "HaltTargetArgs": {"id"},
    "TripwireArgs": {"name", "metricName", "namespace", "threshold"},
}


def _properties(name: str, direction: str) -> dict[str, Any]:
    if f"{PACKAGE}:index:{name}" in SCHEMA["types"]:
        return dict(SCHEMA["types"][f"{PACKAGE}:index:{name}"]["properties"])
    resource = RESOURCES[f"{PACKAGE}:index:{name}"]
    return dict(resource["inputProperties" if direction == "in" else "properties"])


def _every_property() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for token, resource in RESOURCES.items():
        for direction, key in (("in", "inputProperties"), ("out", "properties")):
            for name, prop in resource.get(key, {}).items():
                yield token, direction, name, prop
    for token, declared in SCHEMA["types"].items():
        for name, prop in declared["properties"].items():
            yield token, "in", name, prop


def test_every_public_component_is_in_the_schema_under_its_type_token() -> None:
    assert sorted(RESOURCES) == sorted(f"breakglass:index:{c.__name__}" for c in COMPONENTS)
    assert all(resource["isComponent"] for resource in RESOURCES.values())
    import breakglass.components as public

    exported = {n for n in dir(public) if isinstance(getattr(public, n), type)} - {
        n for n in dir(public) if n.endswith("Args")
    }
    assert exported == {c.__name__ for c in COMPONENTS}


def test_every_component_and_nested_type_has_a_description() -> None:
    for token, resource in [*RESOURCES.items(), *SCHEMA["types"].items()]:
        assert (resource.get("description") or "").strip(), token


def test_every_input_and_output_of_every_component_has_a_description() -> None:
    undescribed = [
        f"{t} {d} {n}" for t, d, n, p in _every_property() if not (p.get("description") or "").strip()
    ]
    assert not undescribed, "no docstring: " + ", ".join(undescribed)


def test_every_component_has_inputs_and_outputs() -> None:
    for token, resource in RESOURCES.items():
        assert resource["inputProperties"], token
        assert resource["properties"], token


@pytest.mark.parametrize(("where", "expected"), EXPECTED_TYPES.items(), ids=lambda v: str(v))
def test_the_key_fields_have_the_expected_types(where: tuple[str, str, str], expected: str) -> None:
    name, direction, field = where
    assert type_label(_properties(name, direction)[field]) == expected


def test_inputs_are_plain_values_except_the_outputs_a_program_wires() -> None:
    # A field the component validates at construction must be a plain value in every SDK: an
    # Output there would reach the checks unresolved. Only fields typed Input[...] take Outputs.
    takes_outputs = {
        (token.rsplit(":", 1)[-1], name)
        for token, resource in RESOURCES.items()
        for name, prop in resource["inputProperties"].items()
        if not prop.get("plain")
    }
    assert ("BreakGlass", "requesters") not in takes_outputs
    assert {("AuditQueries", "auditBucket"), ("HaltActions", "auditBucketName")} <= takes_outputs
    assert not any(component == "BreakGlass" for component, _ in takes_outputs)


def test_every_output_is_an_output_never_a_plain_value() -> None:
    for token, resource in RESOURCES.items():
        for name, prop in resource["properties"].items():
            assert not prop.get("plain"), f"{token}.{name}"


@pytest.mark.parametrize("name", EXPECTED_REQUIRED)
def test_required_inputs_are_the_ones_the_component_refuses_to_go_without(name: str) -> None:
    if name in ("HaltTargetArgs", "TripwireArgs"):
        required = SCHEMA["types"][f"{PACKAGE}:index:{name}"].get("required", [])
    else:
        required = RESOURCES[f"{PACKAGE}:index:{name}"].get("requiredInputs", [])
    assert set(required) == EXPECTED_REQUIRED[name]


def test_the_schema_ties_the_sdks_to_no_other_package() -> None:
    # A resource reference (e.g. an aws.lambda_.Function output) would make every SDK depend on
    # pulumi-aws at the analyzer's version.
    assert SCHEMA["dependencies"] == []
    assert not [t for t, _, n, p in _every_property() if p.get("$ref", "").startswith("/")]


def test_the_schema_is_the_package_named_and_versioned_as_the_python_one() -> None:
    from breakglass import __version__

    assert (SCHEMA["name"], SCHEMA["version"]) == ("breakglass", __version__)


def test_the_plugin_manifest_runs_python_next_to_the_quickstart_project_without_clashing() -> None:
    plugin = (ROOT / "PulumiPlugin.yaml").read_text()
    project = (ROOT / "Pulumi.yaml").read_text()
    assert "  name: python" in plugin
    assert "virtualenv: venv" in plugin and "virtualenv: .venv" in project  # two environments
    assert "main: examples/quickstart/" in project  # `pulumi up` here never runs the plugin's __main__.py
    assert (ROOT / "__main__.py").is_file() and (ROOT / "requirements.txt").read_text().splitlines()[
        -1
    ] == "."


def test_the_plugin_entry_point_serves_this_schema_over_grpc_as_the_engine_asks_for_it() -> None:
    # What `pulumi package add` does first: start the plugin, read its port, ask for the schema.
    process = subprocess.Popen(
        [sys.executable, "-W", "ignore", str(ROOT / "__main__.py"), "127.0.0.1:1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            served = json.loads(stub.GetSchema(provider_pb2.GetSchemaRequest(version=0)).schema)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert served == SCHEMA
