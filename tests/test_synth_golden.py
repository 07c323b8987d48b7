"""The examples synthesize to exactly the resources recorded in tests/fixtures/synth_golden/.

A guard for refactoring the components: the set of resources (type, name, parent, inputs) that
``examples/quickstart``, ``examples/many-targets`` and the less common paths of
``tests/fixtures/synth_golden/variants`` register must not change by accident.
When a change means to alter the resources, regenerate the goldens and review their diff:

    .venv/bin/python tests/test_synth_golden.py

Each golden is one JSON line per resource, sorted by type and name, with the resource options
that change what a deployment does (dependencies, ignored changes, retain on delete, protect,
provider). Short values are kept as they are (readable in a diff); long ones (policies,
definitions) as a digest and their length.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from breakglass.local.synth import RecordingMonitor, SynthResource, synth_directory

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "synth_golden"
PROGRAMS = {
    "quickstart": ROOT / "examples" / "quickstart",
    "many-targets": ROOT / "examples" / "many-targets",
    "variants": GOLDEN / "variants",
}
REGENERATE = ".venv/bin/python tests/test_synth_golden.py"
# Pulumi's marker for a secret value (pulumi.runtime.rpc), as the mock runtime records it.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
# Values up to this many characters of JSON are stored as they are.
INLINE = 120


def normalise(value: Any) -> Any:
    """The part of a recorded input that a refactor must keep, independent of run and checkout."""
    if isinstance(value, Mapping):
        if SECRET_SIG in value or value.get("secret") is True:
            # The approval link key is fresh random bytes on each run: only its presence counts.
            return "[secret]"
        if set(value) == {"archive"}:
            # The shipped source files are archive.py's contract (tests/test_lambda_packaging.py);
            # what a component adds to an archive (its generated config files) is kept.
            return {"archive": {k: normalise(v) for k, v in value["archive"].items() if set(v) != {"path"}}}
        if set(value) == {"path"}:
            return {"path": _relative(str(value["path"]))}
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        return _relative(value) if value.startswith(str(ROOT)) else value
    return value


def _relative(path: str) -> str:
    return path.replace(str(ROOT), "<repo>")


def compact(value: Any) -> Any:
    text = json.dumps(value, sort_keys=True)
    if len(text) <= INLINE:
        return value
    return f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:16]} ({len(text)} chars)"


@contextlib.contextmanager
def recorded_options() -> Iterator[dict[str, Any]]:
    """The options of each registration by URN (the synth records inputs and parent only)."""
    seen: dict[str, Any] = {}
    register = RecordingMonitor.RegisterResource

    def remember(self: RecordingMonitor, request: Any) -> Any:
        response = register(self, request)
        seen[response.urn] = request
        return response

    with mock.patch.object(RecordingMonitor, "RegisterResource", remember):
        yield seen


def options(request: Any, names: Mapping[str, str]) -> dict[str, Any]:
    """What the deployment does beyond the inputs; URNs become names, defaults are left out."""
    found = {
        "dependsOn": sorted(names.get(urn, urn) for urn in request.dependencies),
        "ignoreChanges": sorted(request.ignoreChanges),
        "retainOnDelete": request.retainOnDelete,
        "protect": request.protect,
        "provider": names.get(request.provider.rsplit("::", 1)[0], request.provider),
    }
    return {key: compact(value) for key, value in found.items() if value}


def record(resource: SynthResource, request: Any, names: Mapping[str, str]) -> dict[str, Any]:
    inputs = normalise(resource.as_json()["inputs"])
    return {
        "type": resource.type,
        "name": resource.name,
        "parent": resource.parent,
        "inputs": {key: compact(inputs[key]) for key in sorted(inputs)},
        "options": options(request, names),
    }


def current(example: str) -> list[dict[str, Any]]:
    with recorded_options() as requests:
        result = synth_directory(PROGRAMS[example])
    names = {r.urn: r.name for r in result.resources}
    return sorted(
        (record(r, requests[r.urn], names) for r in result.resources), key=lambda r: (r["type"], r["name"])
    )


def golden_path(example: str) -> Path:
    return GOLDEN / f"{example}.jsonl"


def load_golden(example: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in golden_path(example).read_text().splitlines()]


def write_golden(example: str) -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in current(example)]
    golden_path(example).write_text("\n".join(lines) + "\n")


def test_the_normalisation_keeps_what_a_refactor_could_change() -> None:
    kept = normalise({"policy": "x", "code": {"archive": {"a.json": {"text": "{}"}, "m.py": {"path": "/x"}}}})
    assert kept == {"policy": "x", "code": {"archive": {"a.json": {"text": "{}"}}}}
    assert normalise({"value": {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "value": "k1"}}) == {
        "value": "[secret]"
    }
    assert compact("p" * 200) != compact("q" * 200)


@pytest.mark.parametrize("example", PROGRAMS)
def test_each_example_synthesizes_to_its_golden_resources(example: str) -> None:
    want = {(r["type"], r["name"]): r for r in load_golden(example)}
    got = {(r["type"], r["name"]): r for r in current(example)}
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    changed = [
        f"{key}: {field} {want[key][field]!r} -> {got[key][field]!r}"
        if field == "parent"
        else f"{key}: {field} {_diff(want[key][field], got[key][field])}"
        for key in sorted(set(want) & set(got))
        for field in ("parent", "inputs", "options")
        if want[key][field] != got[key][field]
    ]
    assert not (missing or extra or changed), (
        f"{example} no longer synthesizes to its golden (if meant, run `{REGENERATE}` and review the diff)\n"
        f"missing: {missing}\nextra: {extra}\nchanged:\n" + "\n".join(changed)
    )


def _diff(want: Mapping[str, Any], got: Mapping[str, Any]) -> str:
    keys = sorted(set(want) | set(got))
    return ", ".join(f"{k}: {want.get(k)!r} -> {got.get(k)!r}" for k in keys if want.get(k) != got.get(k))


if __name__ == "__main__":
    for name in sys.argv[1:] or PROGRAMS:
        write_golden(name)
        print(f"wrote {golden_path(name).relative_to(ROOT)}")
