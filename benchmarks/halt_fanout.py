"""Halt fan-out over 1, 10, 100 and 500 deny-invoke targets: sequential, per-target and batched, in one run.

Three ways to halt the same targets, side by side against one emulator:

- ``sequential``: the per-target deny-invoke that batching replaced (a GetRolePolicy, a GetRole and
  a PutRolePolicy per target per invoker role, then its audit event), one target at a time;
- ``per-target``: the same code on its concurrent pool (16 workers), the figure the issue quotes;
- ``batched``: today's service: per invoker role one ListRolePolicies and one PutRolePolicy per
  page of targets, the roles concurrently, then one audit event per target, concurrently.

The per-target code is not kept in the package: it is loaded from git, as it was at
``PER_TARGET_COMMIT`` (the last version of ``breakglass/lambdas/halt/service.py`` before batching),
so the comparison is with the code that ran, not a re-creation of it.

Targets share invoker roles, as endpoints of one application do (``--targets-per-role``, 20 by
default: a role holds at most about 50 endpoint denies in IAM's 10,240 characters). With one role
per target (``--targets-per-role 1``) batching has nothing to batch and the figures say so.

Runs against moto's ThreadedMotoServer (real HTTP round trips on localhost). The emulator answers
in the same process, so its calls are CPU work under one interpreter lock; against AWS each call
is mostly a wait on the network, which ``--latency-ms`` models by waiting before each request is
sent (a sleep, which releases the lock like a socket wait does). Each row also gives the ideal,
calls x latency / workers, and how far from it the measured time is.

    .venv/bin/python benchmarks/halt_fanout.py [--sizes 1,10,100,500] [--workers 16] \\
        [--latency-ms 0,30] [--targets-per-role 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
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
PER_TARGET_COMMIT = "c2b82d1b733a767bd7d841e3dd7e295c6743a7d7"
SERVICE_PATH = "breakglass/lambdas/halt/service.py"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


class Calls:
    """Counts the requests every client sends (thread-safe: the fan-out sends from many threads)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, **_: Any) -> None:
        with self._lock:
            self.count += 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def per_target_halt() -> Callable[..., dict[str, Any]]:
    """``halt`` of the per-target service, loaded from git at ``PER_TARGET_COMMIT``."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{PER_TARGET_COMMIT}:{SERVICE_PATH}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("halt_service_per_target")
    sys.modules[module.__name__] = module  # dataclasses look their module up while it loads
    exec(compile(source, f"{PER_TARGET_COMMIT[:7]}:{SERVICE_PATH}", "exec"), module.__dict__)
    found: Callable[..., dict[str, Any]] = module.halt
    return found


def clients(endpoint: str, pool: int, calls: Calls, latency: float) -> tuple[HaltClients, AuditWriter]:
    config = Config(max_pool_connections=pool, retries={"total_max_attempts": 1, "mode": "standard"})
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    iam = session.client("iam", endpoint_url=endpoint, config=config)
    s3 = session.client("s3", endpoint_url=endpoint, config=config)
    sagemaker = session.client("sagemaker", endpoint_url=endpoint, config=config)
    for client in (iam, s3, sagemaker):
        client.meta.events.register("before-send", calls)
        if latency:
            # A modelled network round trip: every request waits before it is sent.
            client.meta.events.register("before-send", lambda **_: time.sleep(latency))
    return HaltClients(iam=iam, sagemaker=sagemaker, s3=s3, account_id=ACCOUNT, region=REGION), AuditWriter(
        s3=s3, bucket=BUCKET
    )


def targets(count: int, per_role: int) -> tuple[HaltTarget, ...]:
    return parse_targets(
        "targets",
        [
            {
                "id": f"model-{i}",
                "endpoint_name": f"endpoint-{i}",
                "invoker_roles": [f"invoker-{i // per_role}"],
            }
            for i in range(count)
        ],
    )


def timed(
    action: Callable[..., dict[str, Any]],
    halt_clients: HaltClients,
    writer: AuditWriter,
    calls: Calls,
    chosen: tuple[HaltTarget, ...],
    workers: int,
) -> tuple[float, int]:
    """Seconds and requests of one halt of ``chosen``; then a resume puts things back."""
    before = calls.count
    started = time.perf_counter()
    result = action(
        halt_clients, writer, chosen, "deny-invoke", actor="bench", reason="benchmark", max_workers=workers
    )
    seconds = time.perf_counter() - started
    made = calls.count - before
    if result["status"] != "ok" or {r["outcome"] for r in result["results"]} != {"halted"}:
        raise SystemExit(f"halt of {len(chosen)} targets did not succeed: {result['status']}")
    # Put things back so the next run halts for real (not a no-op); the resume also removes the
    # per-target policies (one target each, named breakglass-halt-<id>).
    back = resume(halt_clients, writer, chosen, "deny-invoke", actor="bench", reason="reset", max_workers=16)
    if back["status"] != "ok" or {r["outcome"] for r in back["results"]} != {"resumed"}:
        raise SystemExit(f"reset after {len(chosen)} targets failed: {back['status']}")
    return seconds, made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,500")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--latency-ms", default="0,30", help="modelled network round trips, comma-separated")
    parser.add_argument("--targets-per-role", type=int, default=20)
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    latencies = [float(ms) for ms in options.latency_ms.split(",")]
    per_target = per_target_halt()
    # After loading it: both services log through the "breakglass.halt" logger, set up on import.
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
        calls = Calls()
        halt_clients, _ = clients(endpoint, pool, calls, 0.0)
        halt_clients.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        everything = targets(max(sizes), options.targets_per_role)
        for role in sorted({r for t in everything for r in t.invoker_roles}):
            halt_clients.iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
        for latency_ms in latencies:
            halt_clients, writer = clients(endpoint, pool, calls, latency_ms / 1000)
            run = (halt_clients, writer, calls)
            # Warm up connections and moto's lazily built backends so size 1 measures a halt.
            timed(per_target, *run, everything[:1], 1)
            timed(halt, *run, everything[:1], 1)
            label = "emulator as is" if not latency_ms else f"+{latency_ms:g} ms modelled round trip per call"
            print(
                f"\nhalt, deny-invoke, {options.targets_per_role} targets per invoker role, "
                f"ThreadedMotoServer, {label}, {options.workers} workers"
            )
            print(
                f"{'targets':>7} {'sequential s':>13} {'per-target s':>13} {'batched s':>10} "
                f"{'calls seq/batch':>16} {'vs seq':>7} {'vs per-t':>8} {'ideal s':>8} {'/ideal':>7}"
            )
            for size in sizes:
                chosen = everything[:size]
                sequential, sequential_calls = timed(per_target, *run, chosen, 1)
                concurrent, _ = timed(per_target, *run, chosen, options.workers)
                batched, batched_calls = timed(halt, *run, chosen, options.workers)
                workers = min(options.workers, size)
                ideal = batched_calls * latency_ms / 1000 / workers
                print(
                    f"{size:>7} {sequential:>13.3f} {concurrent:>13.3f} {batched:>10.3f} "
                    f"{f'{sequential_calls}/{batched_calls}':>16} {sequential / batched:>6.1f}x "
                    f"{concurrent / batched:>7.1f}x {ideal:>8.3f} "
                    + (f"{batched / ideal:>6.1f}x" if ideal else f"{'-':>7}")
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
