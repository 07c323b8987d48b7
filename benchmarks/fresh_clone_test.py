"""Time the Makefile's promise on a fresh clone: ``make env`` (a new venv, everything installed)
and then ``make test`` (lint, the browser check, the whole suite).

Clones this repository's current commit (``HEAD``, committed work only) into a temporary
directory with ``git clone --no-local`` (a real copy, no hard links or shared objects) and runs
``make`` there with a clean environment (no virtualenv of this checkout on the path). pip's cache
is whatever this machine has: on a machine that has never installed the packages, ``make env``
also pays for downloading them.

By default only ``make env`` is timed, so ``make bench`` stays within minutes; the figure the
performance report quotes is the full run (about ten minutes on two cores; run it when the
machine is otherwise quiet, as timings of the suite move with load):

    .venv/bin/python benchmarks/fresh_clone_test.py [--target test] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed_make(clone: Path, target: str, environment: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run(
        ["make", target], cwd=clone, env=environment, capture_output=True, text=True, check=False
    )
    return time.perf_counter() - started, done.returncode, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target",
        choices=["env", "test"],
        default="env",
        help="time `make env` only, or then `make test` too",
    )
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    # A clean environment: nothing of this checkout's venv leaks into the clone's make.
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    venv_bin = str(Path(sys.executable).parent)
    environment["PATH"] = os.pathsep.join(
        p for p in environment.get("PATH", "").split(os.pathsep) if p != venv_bin
    )
    load = os.getloadavg()
    print(
        f"commit {commit[:12]}, {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="breakglass-clone-"))
    clone = workdir / "breakglass"
    failed = 0
    try:
        started = time.perf_counter()
        subprocess.run(["git", "clone", "--quiet", "--no-local", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "checkout", "--quiet", commit], cwd=clone, check=True)
        print(f"  git clone                  {time.perf_counter() - started:7.1f} s")
        targets = ["env"] if args.target == "env" else ["env", "test"]
        for target in targets:
            seconds, code, output = timed_make(clone, target, environment)
            print(f"  make {target:<21} {seconds:7.1f} s  (exit {code})")
            if code != 0:
                print(output[-4000:])
                failed = code
                break
            if target == "test":
                summary = [line for line in output.splitlines() if " passed" in line or " failed" in line]
                if summary:
                    print(f"  pytest: {summary[-1].strip()}")
        load = os.getloadavg()
        print(f"  load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finally:
        if args.keep:
            print(f"  clone kept in {clone}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
