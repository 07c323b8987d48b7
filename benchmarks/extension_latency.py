"""Extension latency on examples/quickstart deployed into the emulator (IAM enforced).

One figure, median over several responders: from ``breakglass extend ID --by 30m`` on the
auto-approved ``halt`` tier (the access API checks the extension, stores it, links it to the
grant and starts its execution) until the extension is ``granted`` (auto-approval, approvers'
notice, the new trust statements and guard on the role, their audit events). Each responder first
holds a granted ``halt`` window, and revokes it (with its extension) afterwards.

Run: ``.venv/bin/python benchmarks/extension_latency.py [--runs 5]``. Everything runs in this
process, so the figure is the code's own cost plus the emulator's, without network latency.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from breakglass.local.world import World, open_world

REASON = "benchmark: extension latency of the halt tier"


def one_run(world: World, requester: str) -> float:
    made = world.request(requester, "halt", REASON, "--duration", "30m")
    if made.exit_code != 0:
        raise RuntimeError(made.stderr)
    request_id = made.json()["request_id"]
    started = time.perf_counter()
    run = world.cli(
        requester,
        "extend",
        request_id,
        "--by",
        "30m",
        "--reason",
        REASON,
        "--json",
        "--poll-seconds",
        "0.005",
        "--totp",
        world.code(requester),
    )
    if run.exit_code != 0 or run.json()["status"] != "granted":
        raise RuntimeError(run.stderr)
    granted = time.perf_counter()
    world.cli(requester, "revoke", request_id, "--totp", world.code(requester))
    return granted - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    logging.disable(logging.INFO)  # the Lambdas' own log lines are not figures
    responders = {f"r{i}": ("responder",) for i in range(runs)}
    people = {**responders, "ann": ("approver",), "bob": ("approver",), "sec": ("security",)}
    with open_world(name="bench", people=people) as world:
        results = [one_run(world, requester) for requester in responders]
    print(f"runs: {runs} (examples/quickstart in the emulator, IAM enforced, halt tier, auto)")
    print(
        f"extend -> granted: median {statistics.median(results) * 1000:.0f} ms "
        f"(min {min(results) * 1000:.0f}, max {max(results) * 1000:.0f})"
    )


if __name__ == "__main__":
    main()
