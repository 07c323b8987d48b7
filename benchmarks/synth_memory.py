"""Time to synth examples/quickstart, and memory over repeated synths in one process (no leak).

Three figures:

- ``breakglass synth examples/quickstart`` as a person runs it: wall time of a fresh process
  (interpreter start, imports, the program under the mock runtime, the printed tree), median of
  ``--cli-runs``;
- in one process: the first synth (pays for importing pulumi, pulumi_aws and the program once),
  then the median of ``--runs`` more;
- memory: ``--repeats`` further synths under tracemalloc, the traced memory still held after the
  first of them and after the last, and the process's resident set (RSS) over the same synths.
  Each synth registers the same resources into a fresh mock runtime, so memory that keeps
  growing with the count of synths is a leak; a flat line is not. The largest growth by source
  line is printed so a leak names where it is.

    .venv/bin/python benchmarks/synth_memory.py [--runs 5] [--repeats 10] [--cli-runs 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from breakglass.local.synth import synth_directory

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart"
MIB = 1024 * 1024


def rss_bytes() -> int:
    """The process's resident set now (Linux: /proc/self/statm, in pages)."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def one_synth() -> tuple[float, int]:
    started = time.perf_counter()
    result = synth_directory(QUICKSTART)
    return time.perf_counter() - started, len(result.resources)


def cli_synth() -> float:
    command = [str(Path(sys.executable).parent / "breakglass"), "synth", str(QUICKSTART)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed synths after the first (default 5)")
    parser.add_argument("--repeats", type=int, default=10, help="synths traced for memory (default 10)")
    parser.add_argument(
        "--cli-runs", type=int, default=3, help="fresh `breakglass synth` processes (default 3)"
    )
    args = parser.parse_args()

    if args.cli_runs:
        cli = [cli_synth() for _ in range(args.cli_runs)]
        print(
            f"breakglass synth examples/quickstart (fresh process): median {statistics.median(cli):.2f} s"
            f" (min {min(cli):.2f}, max {max(cli):.2f}; {args.cli_runs} runs)"
        )

    first, count = one_synth()
    if args.runs:
        timed = [one_synth()[0] for _ in range(args.runs)]
        print(
            f"in one process, {count} resources: first synth {first:.2f} s (imports),"
            f" next {args.runs} median {statistics.median(timed):.2f} s"
            f" (min {min(timed):.2f}, max {max(timed):.2f})"
        )

    tracemalloc.start()
    one_synth()
    gc.collect()
    after_first = tracemalloc.take_snapshot()
    traced_first, rss_first = tracemalloc.get_traced_memory()[0], rss_bytes()
    rss_each, traced_each = [rss_first], [traced_first]
    for _ in range(args.repeats - 1):
        one_synth()
        gc.collect()
        rss_each.append(rss_bytes())
        traced_each.append(tracemalloc.get_traced_memory()[0])
    traced_last = tracemalloc.get_traced_memory()[0]
    after_last = tracemalloc.take_snapshot()
    tracemalloc.stop()
    synths = max(args.repeats - 1, 1)
    growth = traced_last - traced_first
    print(f"memory over {args.repeats} traced synths in the same process:")
    print(
        f"  traced (tracemalloc) after the first {traced_first / MIB:7.1f} MiB, after the last"
        f" {traced_last / MIB:7.1f} MiB: {growth / MIB:+.2f} MiB, {growth / synths / 1024:+.1f} KiB per synth"
    )
    # Growth that stops (a cache or table filled once) is not a leak; growth with every synth is.
    half = len(traced_each) // 2
    late = (traced_each[-1] - traced_each[half]) / max(len(traced_each) - 1 - half, 1)
    print(
        f"  traced over the second half only: {late / 1024:+.1f} KiB per synth  (after each, MiB: "
        + " ".join(f"{t / MIB:.1f}" for t in traced_each)
        + ")"
    )
    print(
        f"  RSS after the first {rss_first / MIB:7.1f} MiB, after the last {rss_each[-1] / MIB:7.1f} MiB:"
        f" {(rss_each[-1] - rss_first) / MIB:+.1f} MiB  (each: "
        + " ".join(f"{r / MIB:.0f}" for r in rss_each)
        + ")"
    )
    print("  largest growth by line (first -> last traced synth):")
    for stat in after_last.compare_to(after_first, "lineno")[:3]:
        frame = stat.traceback[0]
        where = (
            os.path.relpath(frame.filename, ROOT) if frame.filename.startswith(str(ROOT)) else frame.filename
        )
        print(
            f"    {stat.size_diff / 1024:+9.1f} KiB in {stat.count_diff:+6d} blocks  {where}:{frame.lineno}"
        )


if __name__ == "__main__":
    main()
