"""Time to deploy examples/quickstart into the emulator (IAM enforced), median of a few runs.

Each run starts a fresh emulator (an account of its own), runs the Pulumi program under the mock
runtime and creates every resource it registers in moto through boto3. The first run also pays
for importing moto's services and botocore's models once per process; it is reported apart.

    .venv/bin/python benchmarks/deploy_quickstart.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

from breakglass.local.deploy import deploy_directory
from breakglass.local.emulator import Emulator

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart"


def one_run() -> tuple[float, int]:
    with Emulator(enforce_iam=True) as emulator:
        started = time.perf_counter()
        deployment = deploy_directory(QUICKSTART, emulator)
        return time.perf_counter() - started, len(deployment.created)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs after the warm-up (default 5)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    first, count = one_run()
    timed = [one_run()[0] for _ in range(args.runs)]
    print(f"deploy examples/quickstart into the emulator (IAM enforced): {count} resources")
    print(f"  first run in the process (imports)  {first:6.2f} s")
    print(
        f"  next {args.runs} runs                         median {statistics.median(timed):6.2f} s"
        f"   min {min(timed):6.2f} s   max {max(timed):6.2f} s"
    )


if __name__ == "__main__":
    main()
