"""Long fuzzing profile: every handler's event parsing and the approval API, 10,000+ inputs each.

The targets and their strategies are those of ``tests/test_fuzz_handlers.py`` (``tests/fuzz_harness.py``);
this runs them with many more examples and prints, per target, the examples run, the handled
refusals by type, the unhandled exceptions (must be 0) and, for the approval API, the grants
(must be 0) and the audit records lost (must be 0). Exit status 1 if any of those is not 0.

Run: ``.venv/bin/python benchmarks/fuzz_handlers.py [--examples 10000] [--seed 1] [--only NAME]``.
Offline (the approval API runs against moto in-process); expect a few minutes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from pathlib import Path

# The harness is test code (strategies, the emulated account); it lives beside the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_harness import TARGETS, Tally, run

MUST_BE_ZERO = ("grants (workflow resumed with approved)", "audit records lost")


def _quiet() -> None:
    """The handlers print one JSON line per refusal; the counts are what this prints. The lines
    still reach the harness's own handler (it counts the metrics), just not stdout."""
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("breakglass") and isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setLevel(logging.CRITICAL + 1)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[key] = value


def _report(name: str, tally: Tally, unhandled: int, seconds: float) -> None:
    print(f"== {name}")
    print(f"   examples: {tally.examples}   unhandled exceptions: {unhandled}   time: {seconds:.1f} s")
    for outcome, n in sorted(tally.outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"   {n:>7}  {outcome}")
    for invariant, n in tally.invariants.items():
        print(f"   {invariant}: {n}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples per target (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="hypothesis seed (the run is reproducible)")
    parser.add_argument("--only", choices=sorted(TARGETS), help="run one target")
    args = parser.parse_args()
    _quiet()
    failures = 0
    names = [args.only] if args.only else list(TARGETS)
    for name in names:
        started = time.perf_counter()
        unhandled = 0
        try:
            tally = run(TARGETS[name], examples=args.examples, random_seed=args.seed)
        except Exception as exc:
            # hypothesis re-raises the smallest failing input's exception: an unhandled one.
            unhandled = 1
            tally = Tally()
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"UNHANDLED {type(exc).__name__}: {str(exc)[:500]} at {where.filename}:{where.lineno}")
            for note in getattr(exc, "__notes__", []):
                print(f"  {note[:2000]}")
        _report(name, tally, unhandled, time.perf_counter() - started)
        broken = [k for k in MUST_BE_ZERO if tally.invariants.get(k, 0)]
        if unhandled or broken or tally.examples < args.examples:
            failures += 1
    print(f"targets: {len(names)}   failing: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
