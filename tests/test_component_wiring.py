"""The small pieces every component wires the same way (breakglass/components/wiring.py)."""

from __future__ import annotations

import pulumi

from breakglass.components.wiring import existing_or_new, rate
from breakglass.local.synth import synth


def test_a_given_part_is_used_as_given_and_nothing_is_created() -> None:
    def create() -> tuple[object, pulumi.Output[str]]:
        raise AssertionError("a given part must not be created")

    seen: dict[str, object] = {}

    def program() -> None:
        resource, value = existing_or_new("org-audit-logs", create)
        seen["resource"] = resource
        pulumi.export("value", value)

    result = synth(program)
    assert seen["resource"] is None
    assert result.outputs["value"] == "org-audit-logs"
    assert result.resources == []


def test_a_part_not_given_is_created_and_referred_to_by_what_create_returns() -> None:
    made = object()

    def program() -> None:
        resource, value = existing_or_new(None, lambda: (made, pulumi.Output.from_input("created")))
        assert resource is made
        pulumi.export("value", value)

    assert synth(program).outputs["value"] == "created"


def test_a_one_minute_schedule_is_singular_as_eventbridge_requires() -> None:
    assert rate(1) == "rate(1 minute)"
    assert rate(5) == "rate(5 minutes)"
