"""Hostile input never crashes a handler's parsing, the approval API or the access API (review finding 12).

Property-based: each target's strategy (``fuzz_harness``) generates inputs, deterministic in this
fast profile (a few hundred examples in all); ``benchmarks/fuzz_handlers.py`` runs the long profile
(10,000+ per target) and prints the counts.
"""

from __future__ import annotations

from typing import Any

import pytest
from fuzz_harness import TARGETS, run

from breakglass.lambdas.approvals import requests
from breakglass.validation import ConfigError

API = "approval API (make_handler)"
ACCESS = "access API (handle)"
# Examples per target in `make test` (the long profile runs 10,000+ per target).
FAST_EXAMPLES = 100
FAST_API_EXAMPLES = 150


@pytest.mark.parametrize("name", sorted(set(TARGETS) - {API, ACCESS}))
def test_no_generated_event_makes_a_parser_raise_anything_but_its_refusal(name: str) -> None:
    tally = run(TARGETS[name], examples=FAST_EXAMPLES)
    assert tally.examples > 0 and sum(tally.outcomes.values()) == tally.examples


def test_no_generated_request_crashes_the_approval_api_grants_anything_or_loses_a_record() -> None:
    tally = run(TARGETS[API], examples=FAST_API_EXAMPLES)
    assert tally.invariants["grants (workflow resumed with approved)"] == 0
    assert tally.invariants["votes counted on req1"] == 0 and tally.invariants["votes counted on req2"] == 0
    assert tally.invariants["audit records lost"] == 0
    assert tally.invariants["records naming a request id no link was signed for"] == 0
    # The run reached the deep paths, not only the front door.
    reasons = {kind for kind in tally.outcomes if kind.startswith("LinkRefusals:")}
    assert {"LinkRefusals:self-approval", "LinkRefusals:cross-request"} <= reasons


# Everything that needs a correct TOTP code; the generator never sends one.
NEEDS_A_CODE = (
    "requests stored besides the seeded ones",
    "requests whose status changed",
    "votes counted",
    "workflow executions started",
    "grants (workflow resumed with approved)",
    "early revokes invoked",
    "review verdicts recorded",
    "enrollments by a person (each needs a code)",
)


def test_no_generated_request_crashes_the_access_api_acts_without_a_code_or_loses_a_record() -> None:
    tally = run(TARGETS[ACCESS], examples=FAST_API_EXAMPLES)
    assert {name: tally.invariants[name] for name in NEEDS_A_CODE} == dict.fromkeys(NEEDS_A_CODE, 0)
    assert tally.invariants["audit records lost"] == 0
    assert tally.invariants["audited refusals without their record"] == 0
    # The run reached the deep paths: the code check, the vote rules, a halt by a live grant.
    assert {"401 not-authenticated", "403 unknown-caller", "403 totp-wrong", "200 POST /halts"} <= set(
        tally.outcomes
    )


ABSURD_DURATIONS = {
    "superscript two": "²",
    "circled one": "①",
    "arabic-indic digits": "\u0661\u0662\u0663\u0664",
    "hours then superscript": "1h²",
    "5000 digits": "9" * 5000,
    "41 digits": "1" + "0" * 40,
    "an int of 5001 digits": 10**5000,
    "a negative int of 5001 digits": -(10**5000),
    "too many hours": "99999999999h",
    "repeated units": "900s" * 10,
}


@pytest.mark.parametrize("value", list(ABSURD_DURATIONS.values()), ids=list(ABSURD_DURATIONS))
def test_a_duration_in_non_ascii_digits_or_absurd_length_is_refused_by_name(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^duration: "):
        requests.parse_duration("duration", value)


def test_the_longest_duration_is_the_longest_window_a_tier_may_have() -> None:
    assert requests.parse_duration("duration", "168h") == requests.MAX_WINDOW_SECONDS
    with pytest.raises(ConfigError, match="at most 7 days"):
        requests.parse_duration("duration", "168h1s")


def test_a_ticket_pattern_with_a_huge_repetition_count_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ticket_pattern"):
        requests.TierApproval.from_dict("tiers.t", {"approval": "auto", "ticket_pattern": "a{4294967296}"})


def test_an_int_too_long_to_print_is_still_refused_with_a_clear_error() -> None:
    from breakglass.validation import require_int

    with pytest.raises(ConfigError, match="must be at most 10, got a number hundreds of digits long"):
        require_int("quorum", 10**5000, maximum=10)
