"""Approval latency on examples/quickstart deployed into the emulator (IAM enforced).

Three figures, median over several requests for the ``operator`` tier (quorum 1):

- request → approval email: from the responder's ``breakglass request`` (the access API checks
  and stores it, starts the execution) to the approver's email being accepted by SES;
- approval POST → grant done: from the approver's POST to the approval page until the request
  is ``granted`` (vote, audit, task resumed, grant on the role, its audit event), as seen by
  polling ``breakglass status`` every 50 ms;
- approval POST → usable credentials: the same, then the responder's ``breakglass assume``
  (credentials of the emergency role) and an STS ``GetCallerIdentity`` made with them that
  answers as the emergency role's session.

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
MFA = ("--mfa-serial", "arn:aws:iam::000000000000:mfa/responder", "--mfa-code", "123456")


def usable_credentials(world: World, requester: str, request_id: str) -> None:
    """``breakglass assume`` as the requester, then one STS call with what it printed."""
    assumed = world.cli(requester, "assume", request_id, "--format", "json", *MFA)
    if assumed.exit_code != 0:
        raise RuntimeError(f"breakglass assume failed: {assumed.stderr}")
    credentials = assumed.json()
    sts = world.emulator.client_as(
        "sts",
        {
            "AccessKeyId": credentials["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": credentials["AWS_SECRET_ACCESS_KEY"],
            "SessionToken": credentials["AWS_SESSION_TOKEN"],
        },
    )
    if ":assumed-role/breakglass-emergency-operator/" not in sts.get_caller_identity()["Arn"]:
        raise RuntimeError("the credentials are not the emergency role's")


def one_run(world: World, requester: str) -> tuple[float, float, float]:
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
    usable_credentials(world, requester, request_id)
    usable = time.perf_counter()
    world.cli(requester, "revoke", request_id, "--totp", world.code(requester))
    return emailed - started, granted - posted, usable - posted


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
    to_usable = [r[2] for r in results]
    print(f"runs: {runs} (examples/quickstart in the emulator, IAM enforced, operator tier, quorum 1)")
    print(
        f"request -> approval email: median {statistics.median(to_email) * 1000:.0f} ms (min {min(to_email) * 1000:.0f}, max {max(to_email) * 1000:.0f})"
    )
    print(
        f"approval POST -> granted:  median {statistics.median(to_grant) * 1000:.0f} ms (min {min(to_grant) * 1000:.0f}, max {max(to_grant) * 1000:.0f})"
    )
    print(
        f"approval POST -> usable credentials (breakglass assume + an STS call): median {statistics.median(to_usable) * 1000:.0f} ms"
        f" (min {min(to_usable) * 1000:.0f}, max {max(to_usable) * 1000:.0f})"
    )


if __name__ == "__main__":
    main()
