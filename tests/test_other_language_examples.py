"""The TypeScript and YAML examples use only names the package schema has, and build the quickstart.

No Pulumi CLI here, so neither runs as `pulumi up` would: the YAML program's values are resolved
from its config defaults and constructed through the component provider under mocks; the
TypeScript program's object literal is read for its keys. Either drifting from the schema fails.
"""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from provider_wire import over_the_wire

from breakglass.components.breakglass import SEALED_KEYS
from breakglass.local.synth import synth, synth_directory
from breakglass.provider import BreakGlassProvider, schema

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
SCHEMA = schema()
BREAKGLASS = SCHEMA["resources"]["breakglass:index:BreakGlass"]
TYPES = {token.rsplit(":", 1)[-1]: t["properties"] for token, t in SCHEMA["types"].items()}
# Where each nested object's keys come from: a schema type, or an untyped setting's Python keys.
NESTED: dict[str, set[str] | None] = {
    "haltTargets": set(TYPES["HaltTargetArgs"]),
    "tripwires": set(TYPES["TripwireArgs"]),
    "sealedAccess": set(SEALED_KEYS),
    "tripwires.dimensions": None,  # CloudWatch's own dimension names
}
_TOKEN = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`|[A-Za-z_$][\w$]*|\S', re.S)


def ts_object_keys(source: str, start: str) -> set[str]:
    """Dotted key paths of the object literal that follows ``start`` in TypeScript ``source``.

    Enough TypeScript for the example: comments, string and template literals are skipped whole;
    a key is an identifier or string followed by ``:`` directly inside ``{``; objects passed to a
    call inside a value are not the literal's. No ternaries in the literal.
    """
    tokens = [
        t
        for t in _TOKEN.findall(source[source.index(start) + len(start) :])
        if not t.startswith(("//", "/*"))
    ]
    keys: set[str] = set()
    stack: list[tuple[str, str | None]] = []  # (bracket, dotted path of its key; None inside a call)
    pending = ""
    for i, token in enumerate(tokens):
        path = stack[-1][1] if stack else ""
        if token in ("{", "[", "("):
            inner = None if token == "(" or path is None else f"{path}.{pending}".strip(".")
            stack.append((token, inner))
            pending = ""
        elif token in ("}", "]", ")"):
            stack.pop()
            if not stack:
                break
        elif (
            stack[-1][0] == "{" and path is not None and tokens[i + 1] == ":" and tokens[i - 1] in ("{", ",")
        ):
            pending = token.strip('"')
            keys.add(f"{path}.{pending}".strip("."))
        elif token == ",":
            pending = ""
    return keys


def check_keys(keys: set[str]) -> list[str]:
    """Keys the schema (or the untyped setting they belong to) does not have."""
    unknown = []
    for key in keys:
        parent, _, name = key.rpartition(".")
        if not parent:
            allowed: set[str] | None = set(BREAKGLASS["inputProperties"])
        else:
            allowed = NESTED.get(parent, set())
        if allowed is not None and name not in allowed:
            unknown.append(key)
    return sorted(unknown)


def yaml_keys(value: Any, path: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            dotted = f"{path}.{key}".strip(".")
            found.add(dotted)
            found |= yaml_keys(item, dotted)
    elif isinstance(value, list):
        for item in value:
            found |= yaml_keys(item, path)
    return found


def resolve(value: Any, config: dict[str, Any]) -> Any:
    """The program's value with each ``${name}`` config reference replaced by its default."""
    if isinstance(value, dict):
        return {k: resolve(v, config) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, config) for v in value]
    if isinstance(value, str) and (ref := re.fullmatch(r"\$\{(\w+)\}", value)):
        return config[ref.group(1)]["default"]
    return value


@pytest.fixture(scope="module")
def yaml_program() -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / "yaml" / "Pulumi.yaml").read_text()))


TS_SOURCE = (EXAMPLES / "typescript" / "index.ts").read_text()
TS_START = 'new breakglass.BreakGlass("breakglass", '


def test_the_yaml_example_adds_this_repository_as_the_breakglass_package(
    yaml_program: dict[str, Any],
) -> None:
    assert yaml_program["runtime"] == "yaml"
    assert (EXAMPLES / "yaml" / yaml_program["packages"]["breakglass"] / "PulumiPlugin.yaml").resolve() == (
        ROOT / "PulumiPlugin.yaml"
    )


def test_the_yaml_example_uses_only_resource_types_and_properties_of_the_schema(
    yaml_program: dict[str, Any],
) -> None:
    for name, resource in yaml_program["resources"].items():
        assert resource["type"] in SCHEMA["resources"], name
        assert check_keys(yaml_keys(resource["properties"])) == []
        assert set(BREAKGLASS["requiredInputs"]) <= set(resource["properties"])


def test_the_yaml_example_exports_only_outputs_of_the_schema(yaml_program: dict[str, Any]) -> None:
    used = {m for v in yaml_program["outputs"].values() for m in re.findall(r"\$\{breakglass\.(\w+)\}", v)}
    assert used == set(BREAKGLASS["properties"])


def test_the_yaml_example_builds_the_quickstart_stack_through_the_provider(
    yaml_program: dict[str, Any],
) -> None:
    properties = resolve(yaml_program["resources"]["breakglass"]["properties"], yaml_program["config"])
    provider = BreakGlassProvider()
    wire = over_the_wire(properties)
    built = synth(lambda: provider.construct("breakglass", "breakglass:index:BreakGlass", wire, None))
    quickstart = synth_directory(EXAMPLES / "quickstart")
    assert sorted((r.type, r.name) for r in built.resources) == sorted(
        (r.type, r.name) for r in quickstart.resources
    )


def test_the_typescript_example_uses_only_properties_of_the_schema() -> None:
    keys = ts_object_keys(TS_SOURCE, TS_START)
    assert check_keys(keys) == []
    assert set(BREAKGLASS["requiredInputs"]) <= keys


def test_the_typescript_and_yaml_examples_set_the_same_properties(yaml_program: dict[str, Any]) -> None:
    yaml_set = yaml_keys(yaml_program["resources"]["breakglass"]["properties"])
    assert ts_object_keys(TS_SOURCE, TS_START) == yaml_set


def test_the_typescript_example_exports_only_outputs_of_the_schema() -> None:
    assert set(re.findall(r"\bbg\.(\w+)", TS_SOURCE)) == set(BREAKGLASS["properties"])


def test_the_typescript_example_is_a_nodejs_project_on_the_generated_sdk() -> None:
    project = yaml.safe_load((EXAMPLES / "typescript" / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "nodejs" and project["packages"] == {"breakglass": "../.."}
    assert (
        '"@pulumi/breakglass": "file:sdks/breakglass"'
        in (EXAMPLES / "typescript" / "package.json").read_text()
    )
    assert 'from "@pulumi/breakglass"' in TS_SOURCE


def test_the_key_reader_finds_nested_keys_and_skips_strings() -> None:
    source = 'f("x", { a: 1, // x: 1\n b: [{ c: "d: e", f: g(h, { i: 2 }) }], j: { "k": 3 } });'
    assert ts_object_keys(source, 'f("x", ') == {"a", "b", "b.c", "b.f", "j", "j.k"}


def test_an_unknown_property_in_an_example_would_be_caught() -> None:
    assert check_keys(
        {"senderEmail", "haltTargets", "haltTargets.endpointNmae", "sealedAccess.managedPolicyArns"}
    ) == [
        "haltTargets.endpointNmae",
        "sealedAccess.managedPolicyArns",
    ]
