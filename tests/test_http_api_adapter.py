"""The local API Gateway HTTP API adapter speaks payload format 2.0 both ways."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from breakglass.local.http_api import build_event, serve


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"event": event, "request_id": context.aws_request_id}),
    }


def call(
    url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> Any:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        return urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as err:
        return err


def test_a_get_becomes_a_v2_event_with_lower_cased_headers_query_and_context() -> None:
    with serve(echo) as base:
        assert base.startswith("http://127.0.0.1:")
        response = call(
            f"{base}/requests/r1?token=abc&x=1&x=2", headers={"X-Custom": "Yes", "User-Agent": "ua/1"}
        )
        payload = json.loads(response.read())
    event = payload["event"]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert (event["rawPath"], event["rawQueryString"]) == ("/requests/r1", "token=abc&x=1&x=2")
    assert event["queryStringParameters"] == {"token": "abc", "x": "1,2"}
    assert event["headers"]["x-custom"] == "Yes" and all(k == k.lower() for k in event["headers"])
    http = event["requestContext"]["http"]
    assert http == {
        "method": "GET",
        "path": "/requests/r1",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "ua/1",
    }
    assert event["requestContext"]["requestId"] == payload["request_id"]
    assert event["isBase64Encoded"] is False and "body" not in event


def test_a_form_post_arrives_base64_encoded_as_api_gateway_sends_it() -> None:
    with serve(echo) as base:
        form = b"token=t&totp=123456&decision=approve"
        event = json.loads(
            call(
                f"{base}/requests/r1",
                method="POST",
                body=form,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ).read()
        )["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == form
    assert event["requestContext"]["http"]["method"] == "POST"


def test_a_json_post_arrives_as_text() -> None:
    with serve(echo) as base:
        body = json.dumps({"a": 1}).encode()
        event = json.loads(
            call(base + "/x", method="POST", body=body, headers={"Content-Type": "application/json"}).read()
        )["event"]
    assert event["isBase64Encoded"] is False and json.loads(event["body"]) == {"a": 1}


def test_cookies_are_passed_as_the_cookies_list() -> None:
    with serve(echo) as base:
        event = json.loads(call(base + "/", headers={"Cookie": "a=1; b=2"}).read())["event"]
    assert event["cookies"] == ["a=1", "b=2"] and "cookie" not in event["headers"]


def test_the_handlers_status_headers_cookies_and_binary_body_are_written_back() -> None:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "statusCode": 418,
            "headers": {"x-frame-options": "DENY", "content-type": "application/octet-stream"},
            "cookies": ["s=1; Secure"],
            "body": base64.b64encode(b"\x00\x01binary").decode(),
            "isBase64Encoded": True,
        }

    with serve(handler) as base:
        response = call(base + "/teapot")
        assert response.status == 418
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["set-cookie"] == "s=1; Secure"
        assert response.read() == b"\x00\x01binary"


def test_a_result_without_status_code_is_sent_as_json_with_200() -> None:
    with serve(lambda event, context: {"ok": True}) as base:
        response = call(base + "/")
        assert response.status == 200 and response.headers["content-type"] == "application/json"
        assert json.loads(response.read()) == {"ok": True}


def test_a_failing_handler_is_a_500_like_api_gateway() -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    with serve(broken) as base:
        response = call(base + "/")
        assert response.status == 500 and json.loads(response.read()) == {"message": "Internal Server Error"}


def test_head_gets_headers_but_no_body() -> None:
    with serve(
        lambda e, c: {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "hello"}
    ) as base:
        response = call(base + "/", method="HEAD")
        assert response.status == 200 and response.headers["content-length"] == "5" and response.read() == b""


def test_the_server_stops_when_the_context_exits() -> None:
    with serve(echo) as base:
        pass
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base + "/", timeout=2)


def test_build_event_joins_repeated_headers_like_api_gateway() -> None:
    event = build_event("get", "/p?q=1", [("X-A", "1"), ("x-a", "2")], b"")
    assert event["headers"] == {"x-a": "1,2"} and event["requestContext"]["http"]["method"] == "GET"
