"""The access API client: every request signed for execute-api, answers mapped onto exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cli_world import REGION

from breakglass.cli.api import AccessApi, ApiError
from breakglass.cli.context import CliContext
from breakglass.cli.deployment import Deployment
from breakglass.cli.errors import CliError
from breakglass.local.http_api import serve

seen: list[dict[str, Any]] = []


def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
    seen.append(event)
    path = event["rawPath"]
    if path == "/requests/abc123":
        return {"statusCode": 200, "body": json.dumps({"request_id": "abc123", "status": "granted"})}
    if path == "/requests" and event["requestContext"]["http"]["method"] == "POST":
        return {"statusCode": 201, "body": event["body"]}
    statuses = {"/bad": 400, "/denied": 403, "/gone": 404, "/slow": 429, "/broken": 502}
    body = {"error": f"{path[1:]} said no"}
    if path == "/denied":
        body["hint"] = "ask an approver"
    return {"statusCode": statuses.get(path, 404), "body": json.dumps(body)}


@pytest.fixture
def api() -> Iterator[AccessApi]:
    seen.clear()
    with serve(handler) as url:
        yield AccessApi(boto3.Session(region_name=REGION), url + "/", REGION)


def test_requests_are_signed_for_execute_api_in_the_deployments_region(api: AccessApi) -> None:
    assert api.get("/requests/abc123") == {"request_id": "abc123", "status": "granted"}
    headers = seen[0]["headers"]
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert f"/{REGION}/execute-api/aws4_request" in headers["authorization"]
    assert "x-amz-date" in headers


def test_a_post_sends_json_and_returns_the_answer(api: AccessApi) -> None:
    answer = api.post("requests", {"tier": "ops", "reason": "model down", "duration": "30m"})
    assert answer == {"tier": "ops", "reason": "model down", "duration": "30m"}
    assert seen[0]["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "code", "message", "hint"),
    [
        ("/bad", 2, "bad said no", None),
        ("/denied", 1, "denied said no", "ask an approver"),
        ("/gone", 1, "gone said no", None),
        ("/slow", 1, "slow said no", "too many requests; wait a minute and retry"),
        ("/broken", 1, "the access API failed (HTTP 502): broken said no", None),
    ],
)
def test_error_answers_become_one_line_errors_with_exit_codes(
    api: AccessApi, path: str, code: int, message: str, hint: str | None
) -> None:
    with pytest.raises(ApiError) as raised:
        api.get(path)
    assert (raised.value.exit_code, raised.value.message) == (code, message)
    if hint:
        assert raised.value.hint == hint
    assert raised.value.body == {
        "error": f"{path[1:]} said no",
        **({"hint": hint} if path == "/denied" else {}),
    }


def test_an_unreachable_api_is_a_one_line_failure() -> None:
    from breakglass.local.emulator import free_port

    api = AccessApi(boto3.Session(region_name=REGION), f"http://127.0.0.1:{free_port()}", REGION, timeout=5)
    with pytest.raises(CliError, match=r"cannot reach the access API at http://127\.0\.0\.1:"):
        api.get("/requests")


def test_the_context_builds_the_client_from_the_deployment() -> None:
    context = CliContext()
    context.use_deployment(Deployment(name="prod", region="eu-west-1", access_api_url="https://x.example/"))
    api = context.access_api()
    assert (api.base_url, api.region) == ("https://x.example", "eu-west-1")
    context.use_deployment(Deployment(name="old", region="eu-west-1"))
    with pytest.raises(CliError, match="does not publish /breakglass/old/access_api_url"):
        context.access_api()
    with pytest.raises(CliError, match="is not a URL"):
        AccessApi(boto3.Session(), "ftp:/nowhere", REGION)
