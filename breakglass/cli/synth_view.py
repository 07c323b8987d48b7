"""What ``breakglass synth`` prints: the resource tree with the stack's exports, or a summary.

Everything shown goes through :func:`~breakglass.local.synth.to_plain` (secrets as ``[secret]``)
and is escaped for rich, so a value can never be read as markup; keys and counts are sorted so
the same program prints the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from breakglass.local.synth import SynthResource, SynthResult, to_plain


def render_tree(result: SynthResult, *, title: str) -> Tree:
    """Each resource under its parent, its inputs sorted by name; then the stack's exports.

    A resource whose parent is not shown (``--filter``) hangs at the top, saying where it lives.
    """
    tree = Tree(f"[bold]{escape(title)}[/] ({len(result.resources)} resources)")
    nodes: dict[str, Tree] = {}
    for resource in result.resources:
        parent = nodes.get(resource.parent) if resource.parent else None
        label = f"[cyan]{escape(resource.type)}[/] [bold]{escape(resource.name)}[/]"
        if resource.parent and parent is None:
            label += f" [dim](in {escape(resource.parent)})[/]"
        if resource.ignore_changes:
            label += f" [dim](a later pulumi up keeps: {escape(', '.join(resource.ignore_changes))})[/]"
        node = (parent or tree).add(label)
        for key, value in sorted(resource.inputs.items()):
            node.add(f"[dim]{escape(key)}[/] = {escape(_short(value))}", highlight=False)
        nodes[resource.name] = node
    exports = tree.add(f"[bold]Outputs[/] ({len(result.outputs)})")
    for key, value in sorted(result.outputs.items()):
        exports.add(f"[dim]{escape(key)}[/] = {escape(_short(value))}", highlight=False)
    return tree


def _short(value: Any) -> str:
    plain = to_plain(value)
    if isinstance(plain, str):
        # Policy documents are JSON strings: print them expanded so reviewers can read them.
        try:
            return json.dumps(json.loads(plain), indent=2)
        except ValueError:
            return plain
    return json.dumps(plain, indent=2, sort_keys=True)


def summary(result: SynthResult) -> dict[str, Any]:
    """Counts per type, every policy document with its statement count, and the exports."""
    return {
        "count": len(result.resources),
        "types": dict(sorted(Counter(r.type for r in result.resources).items())),
        "policies": [
            {"resource": r.name, "type": r.type, "input": where, "statements": count}
            for r in result.resources
            for where, count in policy_documents(r)
        ],
        "outputs": to_plain(dict(sorted(result.outputs.items()))),
    }


def policy_documents(resource: SynthResource) -> Iterator[tuple[str, int]]:
    """(where in the inputs, statement count) of each policy document among ``resource``'s inputs:
    a JSON string holding a ``Statement`` (IAM, key, bucket and topic policies alike)."""
    yield from _documents(to_plain(resource.inputs), "")


def _documents(value: Any, where: str) -> Iterator[tuple[str, int]]:
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _documents(value[key], f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _documents(item, f"{where}[{index}]")
    elif isinstance(value, str) and '"Statement"' in value:
        try:
            document = json.loads(value)
        except ValueError:
            return
        if isinstance(document, dict) and "Statement" in document:
            statements = document["Statement"]
            yield where, len(statements) if isinstance(statements, list) else 1


def summary_lines(found: dict[str, Any], *, title: str) -> list[str]:
    """:func:`summary` as text, one fact a line."""
    lines = [
        f"{title}: {found['count']} resources, {len(found['outputs'])} outputs",
        "",
        "Resources by type",
    ]
    lines += [f"  {count:4d}  {type_token}" for type_token, count in found["types"].items()]
    policies = found["policies"]
    statements = sum(p["statements"] for p in policies)
    lines += ["", f"Policies: {len(policies)} documents, {statements} statements"]
    lines += [
        f"  {p['statements']:4d}  {p['resource']}  {p['input']}  ({p['type'].rsplit(':', 1)[-1]})"
        for p in policies
    ]
    lines += ["", "Outputs"]
    lines += [f"  {key} = {json.dumps(value, sort_keys=True)}" for key, value in found["outputs"].items()]
    return lines
