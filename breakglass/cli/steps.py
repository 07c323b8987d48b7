"""A drill's timeline: named steps, each checked, each saying what it expected and what it saw.

Shared by the drill on the embedded emulator (:mod:`breakglass.local.drill`) and the rehearsal
against a real deployment (:mod:`breakglass.cli.rehearsal`); nothing here needs the emulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any


class DrillFailed(Exception):
    """A step did not do what it should: which, what was expected, what happened."""

    def __init__(self, step: str, expected: str, observed: str) -> None:
        self.step = step
        self.expected = expected
        self.observed = observed
        super().__init__(f"{step}: expected {expected}; observed {observed}")


@dataclass
class Step:
    name: str
    title: str
    ok: bool
    detail: str
    started: float  # seconds since the drill began
    seconds: float
    expected: str | None = None
    observed: str | None = None


@dataclass
class DrillResult:
    ok: bool
    seconds: float
    deployment: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    report: str | None = None
    request_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [asdict(s) for s in self.steps]
        return data


def check(step: str, condition: bool, expected: str, observed: Any) -> None:
    if not condition:
        raise DrillFailed(step, expected, str(observed)[:500])


class Timeline:
    """Runs steps in order; a step that fails (a check or any error) is recorded and ends the run."""

    def __init__(self, *, on_step: Callable[[Step], None], pause: float = 0.0) -> None:
        self.on_step = on_step
        self.pause = pause
        self.began = time.perf_counter()
        self.steps: list[Step] = []

    @contextmanager
    def step(self, name: str, title: str) -> Iterator[dict[str, str]]:
        """``with timeline.step(...) as note: ...; note["detail"] = "what happened"``."""
        started = time.perf_counter()
        note: dict[str, str] = {"detail": ""}

        def failed(expected: str, observed: str) -> Step:
            return Step(
                name,
                title,
                False,
                observed,
                started - self.began,
                time.perf_counter() - started,
                expected,
                observed,
            )

        try:
            yield note
        except DrillFailed as failure:
            self._record(failed(failure.expected, failure.observed))
            raise
        except Exception as exc:
            observed = f"{type(exc).__name__}: {exc}"
            self._record(failed("no error", observed))
            raise DrillFailed(name, "no error", observed) from exc
        self._record(
            Step(name, title, True, note["detail"], started - self.began, time.perf_counter() - started)
        )
        if self.pause:
            time.sleep(self.pause)

    def _record(self, step: Step) -> None:
        self.steps.append(step)
        self.on_step(step)
