"""Approval workflow latency over the embedded emulator (machine time, not human time).

Two figures, median over several requests on a quorum-1 tier:

- request → approval email: from ``StartExecution`` to the approver's email being accepted by SES
  (validation, TOTP check, request record, audit events, task token stored, link signed, mail);
- approval POST → grant done: from the approver's POST to the approval API until the Grant
  state has finished (vote, audit, task resumed, grant on the role, its audit event).

Run: ``.venv/bin/python benchmarks/approval_latency.py [--runs 7]``. Everything runs in this
process (moto server, Step Functions interpreter, Lambda handlers), so the figures are the
code's own cost plus moto's, without network latency or Lambda cold starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pyotp

from breakglass.lambdas.approvals.enrollment import enroll
from breakglass.lambdas.approvals.requests import TierApproval
from breakglass.local.emulator import Emulator, TierSpec, WorkflowDeployment, deploy_workflow

ACCOUNT = "123456789012"
LINK = re.compile(r"https://approvals\.example\.com/approve/requests/[^\s?\"<]+\?token=[^\s\"<&]+")


def arn(user: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{user}"


def wait_for_link(dep: WorkflowDeployment, user: str, request_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in dep.emulator.sent_emails():
            if (
                f"{user}@example.com" in message.destinations.get("ToAddresses", [])
                and request_id in message.body
            ):
                found = LINK.search(message.body)
                if found:
                    return found.group(0)
        time.sleep(0.002)
    raise TimeoutError(f"no approval email for {request_id}")


def grant_finished_at(dep: WorkflowDeployment, execution_arn: str, timeout: float = 30) -> datetime:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in dep.history(execution_arn):
            details = event.get("stateExitedEventDetails") or {}
            if event["type"] == "TaskStateExited" and details.get("name") == "Grant":
                return event["timestamp"].astimezone(UTC)  # type: ignore[no-any-return]
        time.sleep(0.01)
    raise TimeoutError(f"{execution_arn} never finished its grant")


def one_run(dep: WorkflowDeployment, i: int, secrets: dict[str, str]) -> tuple[float, float]:
    requester, approver, request_id = f"req{i}", f"app{i}", f"bench-{i}-{int(time.time())}"
    body = {
        "tier": "bench",
        "requester": requester,
        "reason": "benchmark: latency of the approval workflow",
        "duration": "15m",
        "totp": pyotp.TOTP(secrets[requester]).now(),
    }
    started = time.perf_counter()
    execution = dep.start_request(body, request_id=request_id)
    link = wait_for_link(dep, approver, request_id)
    to_email = time.perf_counter() - started

    url = urlsplit(link)
    event: dict[str, Any] = {
        "version": "2.0",
        "rawPath": url.path,
        "requestContext": {"http": {"method": "POST", "path": url.path}},
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "body": urlencode(
            {
                "token": parse_qs(url.query)["token"][0],
                "totp": pyotp.TOTP(secrets[approver]).now(),
                "decision": "approve",
            }
        ),
    }
    posted = datetime.now(UTC)
    page = dep.call_approval_api(event)
    if page["statusCode"] != 200:
        raise RuntimeError(f"approval refused: {page['statusCode']}")
    to_grant = (grant_finished_at(dep, execution) - posted).total_seconds()
    final = dep.wait_for(execution, timeout=60)
    if final["status"] != "SUCCEEDED":
        raise RuntimeError(json.dumps(final, default=str))
    return to_email, to_grant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    # The handlers' JSON logs would bury the figures; warnings and errors still show.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("breakglass"):
            logging.getLogger(name).setLevel(logging.WARNING)
    with Emulator(max_wait_seconds=0.05) as emulator:
        requesters = [arn(f"req{i}") for i in range(runs)]
        approvers = tuple(f"app{i}" for i in range(runs))
        dep = deploy_workflow(
            emulator,
            [
                TierSpec(
                    "bench",
                    TierApproval(quorum=1, approvers=approvers, approval_timeout_seconds=300),
                    allowed_requesters=tuple(requesters),
                    trust_policy_max_chars=4096,
                )
            ],
            name="bench",
        )
        table = dep.store()
        secrets = {}
        for i in range(runs):
            for user, roles in ((f"req{i}", ["responder"]), (f"app{i}", ["approver"])):
                uri = enroll(table, user, arn(user), f"{user}@example.com", roles)
                secrets[user] = pyotp.parse_uri(uri).secret
        results = [one_run(dep, i, secrets) for i in range(runs)]
    emails = [r[0] * 1000 for r in results]
    grants = [r[1] * 1000 for r in results]
    print(f"approval workflow latency over the emulator, {runs} requests (milliseconds)")
    for label, values in (("request -> approval email", emails), ("approval POST -> grant done", grants)):
        print(
            f"  {label:<28} median {statistics.median(values):7.1f}"
            f"   min {min(values):7.1f}   max {max(values):7.1f}"
        )


if __name__ == "__main__":
    main()
