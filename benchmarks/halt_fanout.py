"""Halt fan-out over 1, 10, 100 and 500 targets: concurrent versus sequential, in one run.

Runs against moto's ThreadedMotoServer (real HTTP round trips on localhost) rather than the
in-process ``mock_aws`` patch, so each AWS call costs a request like it does against AWS and
concurrent calls go through moto's threaded server. Mode: deny-invoke (each target puts one inline
policy on its invoker role, after a GetRolePolicy, and writes one audit event).

The emulator answers in the same process, so its calls are CPU work under one interpreter lock
and fan-out can hardly overlap them. Against AWS each call is mostly a wait on the network, which
is what the concurrent fan-out overlaps; ``--latency-ms`` models that by adding a fixed wait
before each request is sent (a sleep, which releases the lock like a socket wait does). Both
tables are printed, labelled: 0 ms is the emulator as it is.

    .venv/bin/python benchmarks/halt_fanout.py [--sizes 1,10,100,500] [--workers 16] [--latency-ms 0,30]
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

from breakglass.lambdas.audit.events import AuditWriter
from breakglass.lambdas.halt.service import HaltClients, halt, resume
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


def add_latency(client: Any, seconds: float) -> None:
    """Make every request of ``client`` wait ``seconds`` before it is sent (a modelled round trip)."""

    def wait(**_: Any) -> None:
        time.sleep(seconds)

    client.meta.events.register("before-send", wait)


def clients(endpoint: str, pool: int, latency: float = 0.0) -> tuple[HaltClients, AuditWriter, Any]:
    config = Config(max_pool_connections=pool, retries={"total_max_attempts": 1, "mode": "standard"})
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    iam = session.client("iam", endpoint_url=endpoint, config=config)
    s3 = session.client("s3", endpoint_url=endpoint, config=config)
    sagemaker = session.client("sagemaker", endpoint_url=endpoint, config=config)
    if latency:
        for client in (iam, s3, sagemaker):
            add_latency(client, latency)
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
    halt_clients: HaltClients,
    writer: AuditWriter,
    chosen: tuple[HaltTarget, ...],
    workers: int,
    reset_workers: int = 16,
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
        halt_clients, writer, chosen, "deny-invoke", actor="bench", reason="reset", max_workers=reset_workers
    )
    if back["status"] != "ok":
        raise SystemExit(f"reset after {len(chosen)} targets failed: {back['status']}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,500")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--latency-ms", default="0,30", help="modelled network round trips, comma-separated")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    latencies = [float(ms) for ms in options.latency_ms.split(",")]
    logging.getLogger("breakglass.halt").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        pool = max(10, options.workers * 2)
        halt_clients, writer, iam = clients(endpoint, pool)
        halt_clients.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        everything = targets(max(sizes))
        for target in everything:
            iam.create_role(RoleName=target.invoker_roles[0], AssumeRolePolicyDocument=TRUST)
        for latency_ms in latencies:
            halt_clients, writer, _ = clients(endpoint, pool, latency_ms / 1000)
            # Warm up connections and moto's lazily built backends so size 1 measures a halt.
            timed_halt(halt_clients, writer, everything[:1], 1, options.workers)
            label = "emulator as is" if not latency_ms else f"+{latency_ms:g} ms modelled round trip per call"
            print(f"\nhalt fan-out, deny-invoke, ThreadedMotoServer on {endpoint}, {label}")
            print(f"{'targets':>8} {'sequential s':>13} {'concurrent s':>13} {'workers':>8} {'speed-up':>9}")
            for size in sizes:
                chosen = everything[:size]
                sequential = timed_halt(halt_clients, writer, chosen, 1, options.workers)
                concurrent = timed_halt(halt_clients, writer, chosen, options.workers, options.workers)
                ratio = sequential / concurrent if concurrent else float("inf")
                workers = min(options.workers, size)
                print(f"{size:>8} {sequential:>13.3f} {concurrent:>13.3f} {workers:>8} {ratio:>8.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
