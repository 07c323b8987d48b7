"""The Inputs/Outputs tables in the guides are the schema's, so they cannot drift from the code."""

from pathlib import Path

from breakglass.provider import COMPONENTS
from breakglass.provider.doc_tables import FIX_COMMAND, GUIDES, render, stale, tables, type_label

ROOT = Path(__file__).parent.parent


def test_no_guide_holds_a_stale_or_missing_table() -> None:
    found = stale(ROOT)
    assert not found, f"stale Inputs/Outputs tables in {', '.join(found)}: run `{FIX_COMMAND}`"


def test_every_component_has_its_inputs_and_outputs_tables_in_its_guide() -> None:
    generated = tables()
    for component in COMPONENTS:
        text = (ROOT / GUIDES[component.__name__]).read_text()
        for kind in ("inputs", "outputs"):
            assert (
                f"<!-- {kind}:{component.__name__} start -->\n{generated[(kind, component.__name__)]}\n"
                in text
            )


def test_a_changed_docstring_makes_the_guide_stale(tmp_path: Path) -> None:
    for guide in set(GUIDES.values()):
        (tmp_path / guide).parent.mkdir(parents=True, exist_ok=True)
        text = (ROOT / guide).read_text()
        (tmp_path / guide).write_text(
            text.replace("Tags added to every resource.", "Tags, as they were once.")
        )
    assert stale(tmp_path) == ["docs/cloud-team.md"]


def test_a_table_is_rendered_between_its_markers_only() -> None:
    text = "before\n<!-- outputs:BreakGlass start -->\nold\n<!-- outputs:BreakGlass end -->\nafter\n"
    rendered = render(text, {("outputs", "BreakGlass"): "| new |"})
    assert (
        rendered
        == "before\n<!-- outputs:BreakGlass start -->\n| new |\n<!-- outputs:BreakGlass end -->\nafter\n"
    )


def test_a_row_shows_the_python_name_the_schema_name_type_requirement_and_stated_default() -> None:
    rows = tables()[("inputs", "EmergencyRole")].splitlines()
    assert rows[0] == "| Python | other languages | type | required | default | description |"
    row = next(r for r in rows if r.startswith("| `max_session_duration` "))
    assert row.startswith(
        "| `max_session_duration` | `maxSessionDuration` | `integer` |  | 3600 | Longest session"
    )
    assert next(r for r in rows if r.startswith("| `tier` ")).startswith(
        "| `tier` | `tier` | `string` | yes |"
    )


def test_types_are_labelled_by_their_shape() -> None:
    assert type_label({"type": "array", "items": {"$ref": "#/types/breakglass:index:TripwireArgs"}}) == (
        "list[TripwireArgs]"
    )
    assert type_label({"type": "object", "additionalProperties": {"$ref": "pulumi.json#/Any"}}) == "map[any]"
