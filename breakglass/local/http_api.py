"""A local stand-in for an API Gateway HTTP API: HTTP requests in, payload 2.0 events out.

``serve(handler)`` runs a small threaded HTTP server on 127.0.0.1, turns each request into the
event API Gateway would send a Lambda (payload format 2.0), calls ``handler(event, context)``
in-process and writes back its response (``statusCode``, ``headers``, ``cookies``, ``body``,
``isBase64Encoded``; a response without ``statusCode`` is sent as JSON with 200, as API
Gateway does). Used by the approval-page browser test and by the drill.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from breakglass.lambdas.runtime import get_logger, log_fields

Handler = Callable[[dict[str, Any], Any], Any]

log = get_logger("breakglass.local.http_api")

MAX_BODY_BYTES: Final = 10 * 1024 * 1024  # API Gateway's payload limit
# Content types API Gateway passes as text; everything else arrives base64-encoded (forms too).
_TEXT_TYPES: Final = ("text/", "application/json", "application/xml", "application/javascript")


@dataclass(frozen=True)
class LambdaContext:
    """The few context attributes handlers commonly read."""

    aws_request_id: str
    function_name: str = "local-http-api"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local-http-api"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _is_text(content_type: str) -> bool:
    lowered = content_type.lower()
    return any(lowered.startswith(t) for t in _TEXT_TYPES) or lowered.split(";")[0].endswith("+json")


def build_event(
    method: str,
    target: str,
    headers: Mapping[str, str] | list[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The payload 2.0 event for one HTTP request (``target`` is the path plus query string)."""
    moment = now or datetime.now(UTC)
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    split = urlsplit(target)
    query: dict[str, str] = {}
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    path = split.path or "/"
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": split.query,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": merged.get("host", "127.0.0.1"),
            "domainPrefix": merged.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(moment.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        if _is_text(merged.get("content-type", "")):
            event["body"] = body.decode("utf-8", errors="replace")
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def _response_parts(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a handler's result, interpreted as API Gateway does."""
    if not (isinstance(result, Mapping) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return 200, [("content-type", "application/json")], text.encode()
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or ())
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return int(result["statusCode"]), headers, body


def _request_handler(handler: Handler) -> type[BaseHTTPRequestHandler]:
    class _ApiGatewayHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "breakglass-local-http-api"

        def _dispatch(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(413, [("content-type", "text/plain")], b"Request Entity Too Large")
                return
            body = self.rfile.read(length) if length else b""
            event = build_event(
                self.command, self.path, list(self.headers.items()), body, source_ip=self.client_address[0]
            )
            context = LambdaContext(aws_request_id=event["requestContext"]["requestId"])
            started = time.perf_counter()
            try:
                result = handler(event, context)
            except Exception:
                # API Gateway answers 500 when the integration fails; the traceback is logged.
                log.exception("handler failed", extra=log_fields(path=event["rawPath"], method=self.command))
                self._send(
                    500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'
                )
                return
            status, headers, payload = _response_parts(result)
            log.debug(
                "request served",
                extra=log_fields(
                    method=self.command,
                    path=event["rawPath"],
                    status=status,
                    ms=(time.perf_counter() - started) * 1000,
                ),
            )
            self._send(status, headers, b"" if self.command == "HEAD" else payload, length=len(payload))

        def _send(
            self, status: int, headers: list[tuple[str, str]], body: bytes, *, length: int | None = None
        ) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(body) if length is None else length))
            self.end_headers()
            if body:
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            # Access lines go through the JSON logger at debug level, not to stderr.
            pass

    return _ApiGatewayHandler


@contextmanager
def serve(handler: Handler, port: int = 0) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (``port`` 0 picks a free one); yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _request_handler(handler))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="local-http-api", daemon=True)
    thread.start()
    try:
        host, bound_port = server.server_address[:2]
        yield f"http://{host!s}:{bound_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
