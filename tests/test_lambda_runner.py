"""The in-process Lambda runner gives a handler its function's variables without racing anyone."""

from __future__ import annotations

import os
import threading

from breakglass.local.lambda_runner import function_environment


def test_a_functions_variables_are_seen_by_its_thread_only_and_gone_afterwards() -> None:
    inside, ready, done = {}, threading.Event(), threading.Event()

    def handler_thread() -> None:
        with function_environment({"BREAKGLASS_PROBE": "function-value"}):
            inside["value"] = os.environ.get("BREAKGLASS_PROBE")
            ready.set()
            done.wait(5)

    thread = threading.Thread(target=handler_thread)
    thread.start()
    ready.wait(5)
    try:
        assert inside["value"] == "function-value"
        assert "BREAKGLASS_PROBE" not in os.environ  # another thread, meanwhile
    finally:
        done.set()
        thread.join()
    assert "BREAKGLASS_PROBE" not in os.environ


def test_other_threads_can_iterate_the_environment_while_handlers_come_and_go() -> None:
    # botocore iterates os.environ whenever it creates a client; a variable added or removed
    # mid-iteration used to raise in the reading thread.
    stop = threading.Event()
    errors: list[BaseException] = []

    def handlers() -> None:
        n = 0
        while not stop.is_set():
            with function_environment({f"BREAKGLASS_CHURN_{n % 7}": str(n)}):
                n += 1

    churn = threading.Thread(target=handlers)
    churn.start()
    try:
        for _ in range(3000):
            try:
                dict(os.environ.items())
            except (KeyError, RuntimeError) as exc:
                errors.append(exc)
                break
    finally:
        stop.set()
        churn.join()
    assert errors == []
    assert not any(name.startswith("BREAKGLASS_CHURN_") for name in os.environ)
