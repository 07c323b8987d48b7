"""Reading the metrics a test caused: every ``runtime.count`` line, as CloudWatch would see it."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from breakglass.lambdas import runtime


class MetricLines(logging.Handler):
    """Keeps each metric log line as the JSON object the Lambda would print."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(runtime._JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def counts(self, metric: str | None = None) -> Counter[tuple[str, str]]:
        """(metric, reason) -> how many data points, as the per-reason dimension would sum them."""
        found: Counter[tuple[str, str]] = Counter()
        for line in self.lines:
            for directive in line["_aws"]["CloudWatchMetrics"]:
                for m in directive["Metrics"]:
                    if metric is None or m["Name"] == metric:
                        found[(m["Name"], line[runtime.DIMENSION_REASON])] += int(line[m["Name"]])
        return found

    def total(self, metric: str) -> int:
        return sum(self.counts(metric).values())


@contextmanager
def captured_metrics() -> Iterator[MetricLines]:
    logger = logging.getLogger("breakglass.metrics")
    handler = MetricLines()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
