"""How much partition pruning saves a one-day ``session_actions`` query over a year of CloudTrail logs.

Builds 365 days of synthetic CloudTrail log files in the standard layout
(``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz``) in a temporary directory, then runs
the named query ``session_actions`` for one day offline, once with partition pruning (what Athena's
partition projection does) and once as a full scan, and prints files and bytes read, their ratio,
and the median query time of a few runs.

    .venv/bin/python benchmarks/partition_pruning.py [--days 365] [--files-per-day 2] [--records 25] [--runs 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from breakglass.local.athena import LocalBucket, QueryResult

ACCOUNT = "111122223333"
REGIONS = ("us-east-1", "us-west-2")
ROLE = "breakglass-emergency-ops"
CALLS = (
    ("sagemaker.amazonaws.com", "InvokeEndpoint"),
    ("sagemaker.amazonaws.com", "DescribeEndpoint"),
    ("bedrock.amazonaws.com", "InvokeModel"),
    ("s3.amazonaws.com", "GetObject"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
)


def record(moment: datetime, region: str, n: int) -> dict[str, Any]:
    """A CloudTrail record; every seventh one is made by alice's emergency session."""
    emergency = n % 7 == 0
    role, who = (ROLE, "alice") if emergency else ("ml-dev", None)
    source, name = CALLS[n % len(CALLS)]
    context: dict[str, Any] = {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAEXAMPLE000000001",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
            "accountId": ACCOUNT,
            "userName": role,
        },
        "attributes": {"creationDate": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "mfaAuthenticated": "false"},
    }
    if who:
        context["sourceIdentity"] = who
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE000000001:{role}-session",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{role}-session",
            "accountId": ACCOUNT,
            "accessKeyId": "ASIAEXAMPLE000000001",
            "sessionContext": context,
        },
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.10",
        "userAgent": "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux lang/python#3.11.8",
        "requestParameters": {"endpointName": f"model-{n % 5}", "contentType": "application/json"},
        "responseElements": None,
        "requestID": f"req-{moment:%Y%m%d%H%M%S}-{n}",
        "eventID": f"evt-{moment:%Y%m%d%H%M%S}-{region}-{n}",
        "readOnly": name.startswith(("Describe", "Get")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


def build(root: Path, days: int, files_per_day: int, records_per_file: int) -> int:
    """Write the logs; return the number of records."""
    first = date(2024, 1, 1)
    count = 0
    for d in range(days):
        day = first + timedelta(days=d)
        for f in range(files_per_day):
            region = REGIONS[f % len(REGIONS)]
            folder = root / "AWSLogs" / ACCOUNT / "CloudTrail" / region / f"{day:%Y/%m/%d}"
            folder.mkdir(parents=True, exist_ok=True)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                hours=24 * f / files_per_day
            )
            records = [
                record(start + timedelta(seconds=37 * n), region, d * 1000 + f * 100 + n)
                for n in range(records_per_file)
            ]
            name = f"{ACCOUNT}_CloudTrail_{region}_{start:%Y%m%dT%H%MZ}_{d:04d}{f:02d}.json.gz"
            (folder / name).write_bytes(gzip.compress(json.dumps({"Records": records}).encode(), mtime=0))
            count += len(records)
    return count


def timed(bucket: LocalBucket, params: dict[str, str], prune: bool, runs: int) -> tuple[QueryResult, float]:
    durations = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = bucket.run_named("session_actions", params, prune=prune)
        durations.append(time.perf_counter() - started)
    assert result is not None
    return result, statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--files-per-day", type=int, default=2)
    parser.add_argument("--records", type=int, default=25, help="records per log file")
    parser.add_argument("--runs", type=int, default=3, help="runs per mode; the median time is reported")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="breakglass-bench-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        records = build(root, options.days, options.files_per_day, options.records)
        built_in = time.perf_counter() - started
        bucket = LocalBucket(root)
        day = date(2024, 1, 1) + timedelta(days=options.days // 2)
        params = {"source_identity": "alice", "start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z"}
        pruned, pruned_time = timed(bucket, params, True, options.runs)
        full, full_time = timed(bucket, params, False, options.runs)
        if pruned.rows != full.rows:
            raise SystemExit("pruned and full scans returned different rows: pruning is wrong")

        total_bytes = full.scans["cloudtrail_logs"].bytes_total
        print(
            f"logs: {options.days} days, {len(bucket.tables['cloudtrail_logs'].files)} files, "
            f"{records} records, {total_bytes / 1e6:.1f} MB gzipped (built in {built_in:.1f} s)"
        )
        print(f"query: session_actions source_identity=alice {params['start']} .. {params['end']}")
        print(f"rows returned (both modes): {len(pruned.rows)}")
        print(f"{'mode':<12}{'files read':>12}{'bytes read':>14}{'median time':>14}")
        for label, result, seconds in (("pruned", pruned, pruned_time), ("full scan", full, full_time)):
            scan = result.scans["cloudtrail_logs"]
            print(f"{label:<12}{scan.files_read:>12}{scan.bytes_read:>14}{seconds:>13.3f}s")
        ratio_bytes = full.bytes_read / max(pruned.bytes_read, 1)
        print(
            f"full scan reads {ratio_bytes:.0f}x the bytes ({full.files_read / max(pruned.files_read, 1):.0f}x the "
            f"files) and takes {full_time / pruned_time:.0f}x as long (median of {options.runs} runs)"
        )


if __name__ == "__main__":
    main()
