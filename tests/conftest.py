"""Shared fixtures: every test is offline, with fake credentials that cannot reach AWS."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

# pulumi_aws.s3 emits many DeprecationWarnings at import; importing it once here keeps them out.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_aws  # noqa: F401


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may use real credentials or a real account."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture(autouse=True)
def known_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--show-completion`` writes the script of the shell it detects from the process tree; under
    make or a CI runner there may be none to detect. The tests' shell is bash, whatever runs them."""
    import typer.completion

    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")


_DYNAMODB_WRITE_LOCK = threading.RLock()


@pytest.fixture(autouse=True)
def atomic_dynamodb_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give moto's DynamoDB the guarantee real DynamoDB has: a conditional write is atomic.

    moto checks a ConditionExpression and then writes, with no lock between the two, so two
    threads can both pass the same condition. The store's race-safety (single-use links, one
    vote each, TOTP replay) rests on that atomicity, so the concurrency tests need it to hold.
    """
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        original = getattr(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _DYNAMODB_WRITE_LOCK:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium (``make browser``): the browser tests fail, never skip, without it."""
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: run `make browser` (CI installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        yield launched
        launched.close()
