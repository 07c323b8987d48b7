"""Approval latency on examples/quickstart deployed into the emulator (IAM enforced).

Two figures, median over several requests for the ``operator`` tier (quorum 1):

- request → approval email: from the responder's ``breakglass request`` (the access API checks
  and stores it, starts the execution) to the approver's email being accepted by SES;
- approval POST → grant done: from the approver's POST to the approval page until the request
  is ``granted`` (vote, audit, task resumed, grant on the role, its audit event).

Run: ``.venv/bin/python benchmarks/approval_latency.py [--runs 7]``. Everything runs in this
process (moto server, Step Functions interpreter, Lambda handlers under their own roles), so the
figures are the code's own cost plus the emulator's, without network latency or cold starts.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from breakglass.local.world import World, open_world

REASON = "benchmark: approval latency of the operator tier"


def one_run(world: World, requester: str) -> tuple[float, float]:
    started = time.perf_counter()
    run = world.cli(
        requester,
        "request",
        "--tier",
        "operator",
        "--reason",
        REASON,
        "--no-wait",
        "--json",
        "--totp",
        world.code(requester),
    )
    if run.exit_code != 0:
        raise RuntimeError(run.stderr)
    request_id = run.json()["request_id"]
    while not world.approval_links("ann", request_id):
        time.sleep(0.002)
    emailed = time.perf_counter()
    (link,) = world.approval_links("ann", request_id)
    code = world.code("ann")
    posted = time.perf_counter()
    status, _ = world.decide("ann", link, "approve", code=code)
    if status != 200:
        raise RuntimeError(f"approval refused: HTTP {status}")
    world.wait_for(request_id, ["granted"])
    granted = time.perf_counter()
    world.cli(requester, "revoke", request_id, "--totp", world.code(requester))
    return emailed - started, granted - posted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    logging.disable(logging.INFO)  # the Lambdas' own log lines are not figures
    responders = {f"r{i}": ("responder",) for i in range(runs)}
    people = {**responders, "ann": ("approver",), "bob": ("approver",), "sec": ("security",)}
    with open_world(name="bench", people=people) as world:
        results = [one_run(world, requester) for requester in responders]
    to_email = [r[0] for r in results]
    to_grant = [r[1] for r in results]
    print(f"runs: {runs} (examples/quickstart in the emulator, IAM enforced, operator tier, quorum 1)")
    print(
        f"request -> approval email: median {statistics.median(to_email) * 1000:.0f} ms (min {min(to_email) * 1000:.0f}, max {max(to_email) * 1000:.0f})"
    )
    print(
        f"approval POST -> granted:  median {statistics.median(to_grant) * 1000:.0f} ms (min {min(to_grant) * 1000:.0f}, max {max(to_grant) * 1000:.0f})"
    )


if __name__ == "__main__":
    main()
