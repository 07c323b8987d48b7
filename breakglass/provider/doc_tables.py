"""Inputs/Outputs tables of every component in the docs, generated from the provider's schema.

The schema is what Pulumi's analyzer reads from the TypedDict field docstrings and the annotated
outputs, so the docs, the other languages' SDKs and the Python API describe each field once.
Each table sits between markers in its component's guide::

    <!-- inputs:BreakGlass start -->  ...  <!-- inputs:BreakGlass end -->

``make docs-tables`` (``python -m breakglass.provider.doc_tables``) rewrites them; ``--check`` only reports stale ones
(tests/test_doc_tables.py fails on a stale table and names this command).
"""

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from breakglass.provider.host import PACKAGE, analyze, schema

FIX_COMMAND: Final = "make docs-tables"
# Which guide documents which component (inputs and outputs) or nested type.
GUIDES: Final[Mapping[str, str]] = {
    "BreakGlass": "docs/cloud-team.md",
    "AuditTrail": "docs/audit-trail.md",
    "AuditQueries": "docs/audit-trail.md",
    "EmergencyRole": "docs/emergency-roles.md",
    "ApprovalWorkflow": "docs/approvals.md",
    "HaltActions": "docs/halt-actions.md",
    "HaltTargetArgs": "docs/halt-actions.md",
    "TripwireArgs": "docs/halt-actions.md",
    "SealedAccess": "docs/sealed-access.md",
}
_MARKER: Final = re.compile(r"<!-- (inputs|outputs|type):(\w+) start -->\n.*?<!-- \1:\2 end -->", re.S)
# A default the docstring states: "... Default X." as a sentence, or "(default X)" ending it.
_DEFAULTS: Final = (
    re.compile(r"(?:^|[.!]\s)Default:?\s+(.+?)(?=\s\(|[.;:](?:\s|$)|$)"),
    re.compile(r"\((?:[^()]*;\s*)?default:?\s+([^();:]+?)(?::[^()]*)?\)\.?$"),
)


def type_label(prop: Mapping[str, Any]) -> str:
    """A schema property's type as the tables show it: ``string``, ``list[string]``, ``map[any]``..."""
    ref = prop.get("$ref")
    if ref:
        return "any" if ref == "pulumi.json#/Any" else ref.rsplit(":", 1)[-1]
    kind = str(prop.get("type"))
    if kind == "array":
        return f"list[{type_label(prop['items'])}]"
    if kind == "object" and "additionalProperties" in prop:
        return f"map[{type_label(prop['additionalProperties'])}]"
    return kind


def _text(description: str | None) -> str:
    # reStructuredText roles and literals as Markdown; one line; pipes escaped for the table.
    text = re.sub(r":\w+:`~?([^`]+)`", r"``\1``", description or "")
    text = text.replace("``", "`")
    return " ".join(text.split()).replace("|", "\\|")


def _default(description: str) -> str:
    for pattern in _DEFAULTS:
        found = list(pattern.finditer(description))
        if found:  # the last: "Default Object Lock retention ... Default 365." states 365
            return found[-1].group(1).strip()
    return ""


def _rows(
    properties: Mapping[str, Any], mapping: Mapping[str, str], required: set[str], *, inputs: bool
) -> list[str]:
    if inputs:
        rows = [
            "| Python | other languages | type | required | default | description |",
            "|---|---|---|---|---|---|",
        ]
    else:
        rows = ["| Python | other languages | type | description |", "|---|---|---|---|"]
    for name, prop in properties.items():
        text = _text(prop.get("description"))
        cells = [f"`{mapping[name]}`", f"`{name}`", f"`{type_label(prop)}`"]
        if inputs:
            cells += ["yes" if name in required else "", _default(text)]
        rows.append("| " + " | ".join([*cells, text]) + " |")
    return rows


def tables() -> dict[tuple[str, str], str]:
    """Every table, keyed by (``inputs``/``outputs``/``type``, name), as Markdown."""
    package = schema()
    analysis = analyze()
    out: dict[tuple[str, str], str] = {}
    for name, component in analysis["component_definitions"].items():
        resource = package["resources"][f"{PACKAGE}:index:{name}"]
        required = set(resource.get("requiredInputs", []))
        out[("inputs", name)] = "\n".join(
            _rows(resource.get("inputProperties", {}), component.inputs_mapping, required, inputs=True)
        )
        out[("outputs", name)] = "\n".join(
            _rows(resource.get("properties", {}), component.outputs_mapping, set(), inputs=False)
        )
    for name, definition in analysis["type_definitions"].items():
        declared = package["types"][f"{PACKAGE}:index:{name}"]
        out[("type", name)] = "\n".join(
            _rows(
                declared.get("properties", {}),
                definition.properties_mapping,
                set(declared.get("required", [])),
                inputs=True,
            )
        )
    return out


def render(text: str, generated: Mapping[tuple[str, str], str]) -> str:
    """``text`` with every marked table replaced by its generated version."""

    def replace(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        table = generated.get((kind, name))
        if table is None:
            raise KeyError(f"<!-- {kind}:{name} --> names no component or type of the schema")
        return f"<!-- {kind}:{name} start -->\n{table}\n<!-- {kind}:{name} end -->"

    return _MARKER.sub(replace, text)


def stale(root: Path) -> list[str]:
    """Guides whose tables differ from the schema, or that lack a table they should hold."""
    generated = tables()
    found: list[str] = []
    for guide in sorted(set(GUIDES.values())):
        text = (root / guide).read_text()
        missing = [
            f"{kind}:{name}"
            for (kind, name) in generated
            if GUIDES.get(name) == guide and f"<!-- {kind}:{name} start -->" not in text
        ]
        if missing or render(text, generated) != text:
            found.append(guide + (f" (no table for {', '.join(missing)})" if missing else ""))
    return found


def write(root: Path) -> list[str]:
    """Rewrite the marked tables of every guide; returns the guides changed."""
    generated = tables()
    changed: list[str] = []
    for guide in sorted(set(GUIDES.values())):
        path = root / guide
        text = path.read_text()
        new = render(text, generated)
        if new != text:
            path.write_text(new)
            changed.append(guide)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    parser.add_argument("--check", action="store_true", help="only report stale guides; exit 1 if any")
    options = parser.parse_args(argv)
    if options.check:
        found = stale(options.root)
        for guide in found:
            print(f"stale: {guide}; run {FIX_COMMAND}")
        return 1 if found else 0
    for guide in write(options.root):
        print(f"rewrote {guide}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
