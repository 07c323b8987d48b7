"""Halt fan-out over 1, 10, 100 and 500 targets: concurrent versus sequential, in one run.

Runs against moto's ThreadedMotoServer (real HTTP round trips on localhost) rather than the
in-process ``mock_aws`` patch, so each AWS call costs a request like it does against AWS and
concurrent calls go through moto's threaded server. Mode: deny-invoke (each target puts one inline
policy on its invoker role, after a GetRolePolicy, and writes one audit event).

    .venv/bin/python benchmarks/halt_fanout.py [--sizes 1,10,100,500] [--workers 16]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import time
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from breakglass.lambdas.events import AuditWriter
from breakglass.lambdas.halt import HaltClients, halt, resume
from breakglass.policies.halt import HaltTarget, parse_targets

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "audit-bucket"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clients(endpoint: str, pool: int) -> tuple[HaltClients, AuditWriter, Any]:
    config = Config(max_pool_connections=pool, retries={"total_max_attempts": 1, "mode": "standard"})
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    iam = session.client("iam", endpoint_url=endpoint, config=config)
    s3 = session.client("s3", endpoint_url=endpoint, config=config)
    sagemaker = session.client("sagemaker", endpoint_url=endpoint, config=config)
    return (
        HaltClients(iam=iam, sagemaker=sagemaker, s3=s3, account_id=ACCOUNT, region=REGION),
        AuditWriter(s3=s3, bucket=BUCKET),
        iam,
    )


def targets(count: int) -> tuple[HaltTarget, ...]:
    return parse_targets(
        "targets",
        [
            {"id": f"model-{i}", "endpoint_name": f"endpoint-{i}", "invoker_roles": [f"invoker-{i}"]}
            for i in range(count)
        ],
    )


def timed_halt(
    halt_clients: HaltClients, writer: AuditWriter, chosen: tuple[HaltTarget, ...], workers: int
) -> float:
    started = time.perf_counter()
    result = halt(
        halt_clients, writer, chosen, "deny-invoke", actor="bench", reason="benchmark", max_workers=workers
    )
    seconds = time.perf_counter() - started
    if result["status"] != "ok" or {r["outcome"] for r in result["results"]} != {"halted"}:
        raise SystemExit(f"halt of {len(chosen)} targets did not succeed: {result['status']}")
    # Put things back so the next run halts for real (not a no-op).
    back = resume(
        halt_clients, writer, chosen, "deny-invoke", actor="bench", reason="reset", max_workers=workers
    )
    if back["status"] != "ok":
        raise SystemExit(f"reset after {len(chosen)} targets failed: {back['status']}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,500")
    parser.add_argument("--workers", type=int, default=16)
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    logging.getLogger("breakglass.halt").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        halt_clients, writer, iam = clients(endpoint, pool=max(10, options.workers * 2))
        halt_clients.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        everything = targets(max(sizes))
        for target in everything:
            iam.create_role(RoleName=target.invoker_roles[0], AssumeRolePolicyDocument=TRUST)
        # Warm up connections and moto's lazily built backends so size 1 measures a halt, not setup.
        timed_halt(halt_clients, writer, everything[:1], 1)
        print(f"halt fan-out, deny-invoke, against ThreadedMotoServer on {endpoint}")
        print(f"{'targets':>8} {'sequential s':>13} {'concurrent s':>13} {'workers':>8} {'speed-up':>9}")
        for size in sizes:
            chosen = everything[:size]
            sequential = timed_halt(halt_clients, writer, chosen, 1)
            concurrent = timed_halt(halt_clients, writer, chosen, options.workers)
            ratio = sequential / concurrent if concurrent else float("inf")
            workers = min(options.workers, size)
            print(f"{size:>8} {sequential:>13.3f} {concurrent:>13.3f} {workers:>8} {ratio:>8.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
