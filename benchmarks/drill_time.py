"""Drill time: ``breakglass drill --json`` wall time and the drill's own step times.

Runs the drill as a person does (``make demo`` runs the same command), in a fresh process each
time: deploy examples/quickstart into a fresh emulator (IAM enforced), seed an AI system, a
tripwire halt, a request approved by two approvers from email, the AWS CLI as the emergency
role, a resume, the window's end, and the audit (sync, named queries, report). Prints the
process's wall time (interpreter start and imports included), the drill's own total and each
step's seconds, median over ``--runs`` (each step's median on its own). Exits non-zero if a
drill fails.

    .venv/bin/python benchmarks/drill_time.py [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def one_drill() -> tuple[float, dict[str, Any]]:
    command = [str(Path(sys.executable).parent / "breakglass"), "drill", "--json"]
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"breakglass drill failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return wall, dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="drills, each in a fresh process (default 1)")
    args = parser.parse_args()
    runs = [one_drill() for _ in range(args.runs)]
    walls = [wall for wall, _ in runs]
    totals = [float(result["seconds"]) for _, result in runs]
    print(f"breakglass drill --json: {args.runs} run(s), every step passed")
    print(
        f"  wall time of the process  median {statistics.median(walls):6.1f} s  (min {min(walls):.1f}, max {max(walls):.1f})"
    )
    print(f"  the drill's own total     median {statistics.median(totals):6.1f} s")
    # The deployment and the people's enrolment come before the steps' timeline starts: the
    # drill's total less the time from its first step's start to its last step's end.
    setup = [
        float(result["seconds"])
        - float(result["steps"][-1]["started"])
        - float(result["steps"][-1]["seconds"])
        for _, result in runs
    ]
    print(
        f"    {'(setup)':<12} median {statistics.median(setup):6.2f} s  deploy examples/quickstart, enrol the people"
    )
    names = [step["name"] for step in runs[0][1]["steps"]]
    for name in names:
        seconds = [s["seconds"] for _, result in runs for s in result["steps"] if s["name"] == name]
        title = next(s["title"] for s in runs[0][1]["steps"] if s["name"] == name)
        print(f"    {name:<12} median {statistics.median(seconds):6.2f} s  {title}")


if __name__ == "__main__":
    main()
