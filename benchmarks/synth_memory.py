"""Time to synth examples/quickstart, memory over repeated synths in one process (no leak), and
how synth scales with the count of BreakGlass deployments in one program.

Four figures:

- ``breakglass synth examples/quickstart`` as a person runs it: wall time of a fresh process
  (interpreter start, imports, the program under the mock runtime, the printed tree), median of
  ``--cli-runs``;
- in one process: the first synth (pays for importing pulumi, pulumi_aws and the program once),
  then the median of ``--runs`` more;
- memory: ``--repeats`` further synths under tracemalloc, the traced memory still held after the
  first of them and after the last, and the process's resident set (RSS) over the same synths.
  Each synth registers the same resources into a fresh mock runtime, so memory that keeps
  growing with the count of synths is a leak; a flat line is not. The largest growth by source
  line is printed so a leak names where it is;
- scaling: for each count in ``--deployments`` (e.g. 1,10,50; none by default, so ``make bench``
  stays short), a fresh process synthesizes a program with that many BreakGlass deployments (one
  per account, each with its own AWS provider and the quickstart's settings less the sealed
  access) and reports the resources, the synth time (after a one-deployment warm-up synth that
  pays the imports) and the peak memory: the process's peak RSS over the synth and, with
  ``--traced``, tracemalloc's peak (tracing slows the synth about twofold, so its time is not
  reported). ``--no-gc`` turns Python's cyclic garbage collector off for the timed synth, to tell
  the synth's own time from the collector's. Each deployment sits in its own component whose
  *type* names the account: a URN holds the chain of parent types, not their names, and the
  components name their children from a fixed prefix, so two deployments under parents of one
  type would register one URN twice, which ``pulumi up`` (and synth) refuse.

    .venv/bin/python benchmarks/synth_memory.py [--runs 5] [--repeats 10] [--cli-runs 3]
    .venv/bin/python benchmarks/synth_memory.py --runs 0 --repeats 0 --cli-runs 0 --deployments 1,10,50
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from breakglass.local.synth import synth, synth_directory

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


def deployments_program(count: int) -> None:
    """A Pulumi program with ``count`` BreakGlass deployments, one per account."""
    import pulumi
    import pulumi_aws as aws

    from breakglass import BreakGlass

    for index in range(count):
        account = f"{100000000000 + index:012d}"

        parent = pulumi.ComponentResource(f"bench:index:Account{account}", f"account-{account}")
        provider = aws.Provider(
            f"aws-{account}",
            region="us-east-1",
            allowed_account_ids=[account],
            opts=pulumi.ResourceOptions(parent=parent),
        )
        oncall = f"arn:aws:iam::{account}:role/oncall-ml"
        BreakGlass(
            "breakglass",
            {
                "deployment": f"prod-{account}",
                "requesters": [oncall],
                "approvers": ["ann", "bob", "cat"],
                "security_admins": [f"arn:aws:iam::{account}:role/cloud-admin"],
                "sender_email": "breakglass@example.com",
                "alert_emails": ["security@example.com"],
                "halt_targets": [
                    {
                        "id": "chat",
                        "endpoint_name": "chat-prod",
                        "invoker_roles": ["chat-api"],
                        "modes": ["deny-invoke", "delete-endpoint"],
                    }
                ],
                "tripwires": [
                    {
                        "name": "chat-5xx",
                        "namespace": "AWS/SageMaker",
                        "metric_name": "Invocation5XXErrors",
                        "dimensions": {"EndpointName": "chat-prod", "VariantName": "AllTraffic"},
                        "threshold": 5,
                        "evaluation_periods": 3,
                        "datapoints_to_alarm": 2,
                        "mode": "deny-invoke",
                        "targets": ["chat"],
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=parent, providers={"aws": provider}),
        )


def scaling_run(count: int, traced: bool, no_gc: bool = False) -> dict[str, Any]:
    """One program of ``count`` deployments, synthesized in this (fresh) process."""
    # A one-deployment synth first: it imports every module the program and the SDK load lazily,
    # so the figures below are the synth's own.
    synth(lambda: deployments_program(1))
    gc.collect()
    if no_gc:
        gc.disable()  # to tell the synth's own time from the cyclic collector's
    before = rss_bytes()
    started = time.perf_counter()
    result = synth(lambda: deployments_program(count))
    seconds = time.perf_counter() - started
    # ru_maxrss is in KiB on Linux: the process's peak resident set so far, reached in this synth
    # for any count of at least one (the warm-up synth is the smallest program).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    found: dict[str, Any] = {
        "deployments": count,
        "resources": len(result.resources),
        "seconds": seconds,
        "rss_before": before,
        "rss_peak": peak,
    }
    if traced:
        del result
        gc.collect()
        tracemalloc.start()
        synth(lambda: deployments_program(count))
        found["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return found


def scaling(counts: list[int], traced: bool, no_gc: bool = False) -> None:
    print(
        "synth of a program with N BreakGlass deployments (fresh process each, after a warm-up synth"
        + (", cyclic GC off" if no_gc else "")
        + "):"
    )
    for count in counts:
        options = [*(["--traced"] if traced else []), *(["--no-gc"] if no_gc else [])]
        command = [sys.executable, __file__, "--scaling-run", str(count), *options]
        done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        run = json.loads(done.stdout.splitlines()[-1])
        line = (
            f"  {count:3d} deployments, {run['resources']:6d} resources: {run['seconds']:7.2f} s"
            f" ({run['seconds'] / count:.2f} s per deployment), peak RSS {run['rss_peak'] / MIB:7.1f} MiB"
            f" (+{(run['rss_peak'] - run['rss_before']) / MIB:.1f} MiB over the synth)"
        )
        if "traced_peak" in run:
            line += f", tracemalloc peak {run['traced_peak'] / MIB:.1f} MiB"
        print(line, flush=True)


def memory(repeats: int) -> None:
    tracemalloc.start()
    one_synth()
    gc.collect()
    after_first = tracemalloc.take_snapshot()
    traced_first, rss_first = tracemalloc.get_traced_memory()[0], rss_bytes()
    rss_each, traced_each = [rss_first], [traced_first]
    for _ in range(repeats - 1):
        one_synth()
        gc.collect()
        rss_each.append(rss_bytes())
        traced_each.append(tracemalloc.get_traced_memory()[0])
    traced_last = tracemalloc.get_traced_memory()[0]
    after_last = tracemalloc.take_snapshot()
    tracemalloc.stop()
    synths = max(repeats - 1, 1)
    growth = traced_last - traced_first
    print(f"memory over {repeats} traced synths in the same process:")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed synths after the first (default 5)")
    parser.add_argument("--repeats", type=int, default=10, help="synths traced for memory (default 10)")
    parser.add_argument(
        "--cli-runs", type=int, default=3, help="fresh `breakglass synth` processes (default 3)"
    )
    parser.add_argument(
        "--deployments",
        default="",
        help="comma-separated counts of BreakGlass deployments per program, e.g. 1,10,50 (default: none)",
    )
    parser.add_argument("--traced", action="store_true", help="also trace the scaling runs' peak memory")
    parser.add_argument("--no-gc", action="store_true", help="scaling runs with Python's cyclic GC off")
    parser.add_argument("--scaling-run", type=int, help=argparse.SUPPRESS)  # the child of --deployments
    args = parser.parse_args()
    if args.scaling_run is not None:
        print(json.dumps(scaling_run(args.scaling_run, args.traced, args.no_gc)))
        return

    if args.cli_runs:
        cli = [cli_synth() for _ in range(args.cli_runs)]
        print(
            f"breakglass synth examples/quickstart (fresh process): median {statistics.median(cli):.2f} s"
            f" (min {min(cli):.2f}, max {max(cli):.2f}; {args.cli_runs} runs)"
        )

    if args.runs or args.repeats:
        # Also the warm-up of the memory figures: imports traced would read as held memory.
        first, count = one_synth()
    if args.runs:
        timed = [one_synth()[0] for _ in range(args.runs)]
        print(
            f"in one process, {count} resources: first synth {first:.2f} s (imports),"
            f" next {args.runs} median {statistics.median(timed):.2f} s"
            f" (min {min(timed):.2f}, max {max(timed):.2f})"
        )

    if args.repeats:
        memory(args.repeats)
    if args.deployments:
        scaling([int(n) for n in args.deployments.split(",")], args.traced, args.no_gc)


if __name__ == "__main__":
    main()
