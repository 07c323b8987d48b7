"""A local stand-in for API Gateway HTTP APIs: HTTP requests in, payload 2.0 events out.

Two ways to use it:

- ``serve(handler)`` runs a small threaded HTTP server on 127.0.0.1 that turns each request into
  the event API Gateway would send a Lambda (payload format 2.0), calls ``handler(event, context)``
  in-process and writes back its response (``statusCode``, ``headers``, ``cookies``, ``body``,
  ``isBase64Encoded``; a response without ``statusCode`` is sent as JSON with 200, as API Gateway
  does). Used by the approval-page browser test and by the drill.
- :class:`HttpApiGateway` serves the HTTP APIs deployed into an emulator (moto's apigatewayv2
  Api, Routes, Integrations and Stages), each on its own local port: ``METHOD /path/{param}``
  routes (``ANY``, ``{proxy+}`` and ``$default`` too) go to the integrated Lambda function, which
  runs through the emulator's Lambda under its own role, if the function's resource policy lets
  ``apigateway.amazonaws.com`` invoke it for that route. ``AWS_IAM`` routes verify the SigV4
  signature (service ``execute-api``) against the emulator's IAM users and STS sessions, authorize
  ``execute-api:Invoke`` on ``arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH`` against
  the caller's identity policies, and give the function ``requestContext.authorizer.iam`` as API
  Gateway does; refusals are 403 ``{"message":"Forbidden"}`` (no signature at all:
  ``{"message":"Missing Authentication Token"}``).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from breakglass.lambdas.runtime import get_logger, log_fields

if TYPE_CHECKING:
    from breakglass.local.emulator import Emulator

Handler = Callable[[dict[str, Any], Any], Any]
# (method, target, headers, body, client ip) -> (status, headers, body)
Dispatch = Callable[[str, str, list[tuple[str, str]], bytes, str], tuple[int, list[tuple[str, str]], bytes]]

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
    route_key: str = "$default",
    path_parameters: Mapping[str, str] | None = None,
    stage: str = "$default",
    api_id: str = "local",
    account_id: str = "123456789012",
    authorizer: Mapping[str, Any] | None = None,
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
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": split.query,
        "headers": merged,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
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
            "routeKey": route_key,
            "stage": stage,
            "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(moment.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if authorizer is not None:
        event["requestContext"]["authorizer"] = dict(authorizer)
    if cookies:
        event["cookies"] = cookies
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
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


_INTERNAL_ERROR: Final = (500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}')


def _handler_dispatch(handler: Handler) -> Dispatch:
    """One in-process handler behind every path, as ``serve`` offers it."""

    def dispatch(
        method: str, target: str, headers: list[tuple[str, str]], body: bytes, client_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        event = build_event(method, target, headers, body, source_ip=client_ip)
        context = LambdaContext(aws_request_id=event["requestContext"]["requestId"])
        try:
            result = handler(event, context)
        except Exception:
            # API Gateway answers 500 when the integration fails; the traceback is logged.
            log.exception("handler failed", extra=log_fields(path=event["rawPath"], method=method))
            return _INTERNAL_ERROR
        return _response_parts(result)

    return dispatch


def _request_handler(dispatch: Dispatch) -> type[BaseHTTPRequestHandler]:
    class _ApiGatewayHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "breakglass-local-http-api"

        def _dispatch(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(413, [("content-type", "text/plain")], b"Request Entity Too Large")
                return
            body = self.rfile.read(length) if length else b""
            started = time.perf_counter()
            status, headers, payload = dispatch(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
            log.debug(
                "request served",
                extra=log_fields(
                    method=self.command,
                    path=self.path,
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
def _serving(dispatch: Dispatch, port: int = 0) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", port), _request_handler(dispatch))
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


@contextmanager
def serve(handler: Handler, port: int = 0) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (``port`` 0 picks a free one); yield the base URL."""
    with _serving(_handler_dispatch(handler), port) as url:
        yield url


# -- the deployed HTTP APIs of an emulator ----------------------------------------------------------

_FORBIDDEN: Final = (403, [("content-type", "application/json")], b'{"message":"Forbidden"}')
_MISSING_TOKEN: Final = (
    403,
    [("content-type", "application/json"), ("x-amzn-errortype", "MissingAuthenticationTokenException")],
    b'{"message":"Missing Authentication Token"}',
)
_NOT_FOUND: Final = (404, [("content-type", "application/json")], b'{"message":"Not Found"}')
APIGATEWAY_PRINCIPAL: Final = "apigateway.amazonaws.com"


@dataclass(frozen=True)
class RouteMatch:
    route: Any  # moto's apigatewayv2 Route
    route_key: str
    route_path: str  # the route's path template, e.g. /requests/{id}
    path_parameters: dict[str, str]


def match_route(routes: Iterable[Any], method: str, path: str) -> RouteMatch | None:
    """The route API Gateway picks: the most specific path (literal segments over parameters over
    greedy ones), an exact method over ANY, and ``$default`` last."""
    best: tuple[tuple[int, ...], RouteMatch] | None = None
    fallback: RouteMatch | None = None
    wanted = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
    for route in routes:
        key = str(route.route_key)
        if key == "$default":
            fallback = RouteMatch(route, key, "", {})
            continue
        route_method, _, template = key.partition(" ")
        if route_method not in (method.upper(), "ANY"):
            continue
        parts = [p for p in template.strip("/").split("/") if p]
        parameters: dict[str, str] = {}
        literal = 0
        matched = True
        for index, part in enumerate(parts):
            if part.startswith("{") and part.endswith("+}"):
                rest = wanted[index:]
                if not rest:
                    matched = False
                    break
                parameters[part[1:-2]] = "/".join(rest)
                wanted_length = index + 1
                break
            if index >= len(wanted):
                matched = False
                break
            if part.startswith("{") and part.endswith("}"):
                parameters[part[1:-1]] = wanted[index]
            elif part == wanted[index]:
                literal += 1
            else:
                matched = False
                break
        else:
            wanted_length = len(parts)
            if len(wanted) != len(parts):
                matched = False
        if not matched:
            continue
        greedy = int(any(p.endswith("+}") for p in parts))
        score = (literal, -greedy, len(parts), int(route_method != "ANY"))
        candidate = RouteMatch(route, key, template, parameters)
        if best is None or score > best[0]:
            best = (score, candidate)
        del wanted_length
    return best[1] if best else fallback


def _function_arn(integration_uri: str) -> str:
    # AWS_PROXY integrations name the function either directly or by its invocation URI.
    match = re.search(r"functions/(arn:[^/]+)/invocations", integration_uri)
    return match.group(1) if match else integration_uri


class HttpApiGateway:
    """The HTTP APIs deployed into one emulator, each served on a local port of its own."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._servers: dict[str, tuple[Any, str]] = {}
        self._lock = threading.Lock()

    def serve(self, api_id: str) -> str:
        """Start serving ``api_id`` (if not yet) and return its base URL (its ``apiEndpoint``)."""
        with self._lock:
            if api_id not in self._servers:
                serving = _serving(self._dispatch_for(api_id))
                url = serving.__enter__()
                self._servers[api_id] = (serving, url)
            return self._servers[api_id][1]

    def url(self, api_id: str) -> str:
        with self._lock:
            if api_id not in self._servers:
                raise LookupError(f"HTTP API {api_id} is not served by this emulator")
            return self._servers[api_id][1]

    def stop(self) -> None:
        with self._lock:
            servers, self._servers = self._servers, {}
        for serving, _ in servers.values():
            serving.__exit__(None, None, None)

    def _dispatch_for(self, api_id: str) -> Dispatch:
        def dispatch(
            method: str, target: str, headers: list[tuple[str, str]], body: bytes, client_ip: str
        ) -> tuple[int, list[tuple[str, str]], bytes]:
            try:
                return self.handle(api_id, method, target, headers, body, client_ip)
            except Exception:
                log.exception("gateway failed", extra=log_fields(api=api_id, method=method, target=target))
                return _INTERNAL_ERROR

        return dispatch

    def handle(
        self,
        api_id: str,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        client_ip: str,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request to ``api_id``, answered as API Gateway would."""
        from moto.apigatewayv2.models import apigatewayv2_backends

        emulator = self.emulator
        api = apigatewayv2_backends[emulator.account_id][emulator.region].apis.get(api_id)
        if api is None:
            return _NOT_FOUND
        path = urlsplit(target).path or "/"
        if "$default" in api.stages:
            stage, route_path = "$default", path
        else:
            first, _, rest = path.lstrip("/").partition("/")
            if first not in api.stages:
                return _NOT_FOUND
            stage, route_path = first, "/" + rest
        found = match_route(list(api.routes.values()), method, route_path)
        if found is None:
            return _NOT_FOUND
        source = (
            f"arn:aws:execute-api:{emulator.region}:{emulator.account_id}:{api_id}/{stage}/{method.upper()}"
        )
        authorizer: dict[str, Any] | None = None
        if str(found.route.authorization_type or "NONE").upper() == "AWS_IAM":
            from breakglass.local.iam_enforcement import RequestRefused, authorize_execute_api

            try:
                caller = authorize_execute_api(
                    account_id=emulator.account_id,
                    region=emulator.region,
                    method=method,
                    path=target,
                    headers=dict(headers),
                    body=body,
                    resource_arn=f"{source}{route_path}",
                )
            except RequestRefused as refused:
                log.info(
                    "request refused",
                    extra=log_fields(api=api_id, reason=refused.reason, detail=str(refused)),
                )
                return _MISSING_TOKEN if refused.reason == "missing" else _FORBIDDEN
            authorizer = {
                "iam": {
                    "accessKey": caller.access_key_id,
                    "accountId": caller.account_id,
                    "callerId": caller.principal_id,
                    "cognitoIdentity": None,
                    "principalOrgId": None,
                    "userArn": caller.arn,
                    "userId": caller.principal_id,
                }
            }
        integration_id = str(found.route.target or "").removeprefix("integrations/")
        integration = api.integrations.get(integration_id)
        if integration is None or str(integration.integration_type).upper() != "AWS_PROXY":
            return _INTERNAL_ERROR
        host = next((v for k, v in headers if k.lower() == "host"), "127.0.0.1")
        event = build_event(
            method,
            target,
            headers,
            body,
            source_ip=client_ip,
            route_key=found.route_key,
            path_parameters=found.path_parameters,
            stage=stage,
            api_id=api_id,
            account_id=emulator.account_id,
            authorizer=authorizer,
        )
        event["requestContext"]["domainName"] = host
        template = found.route_path or route_path
        return self._invoke(_function_arn(str(integration.integration_uri)), event, f"{source}{template}")

    def _invoke(
        self, function_arn: str, event: dict[str, Any], source_arn: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        from moto.awslambda.models import lambda_backends

        from breakglass.local import calls
        from breakglass.local.iam_enforcement import function_admits

        emulator = self.emulator
        try:
            function = lambda_backends[emulator.account_id][emulator.region].get_function(function_arn)
        except Exception:
            return _INTERNAL_ERROR
        if not function_admits(
            function, APIGATEWAY_PRINCIPAL, source_arn=source_arn, source_account=emulator.account_id
        ):
            # API Gateway cannot invoke a function whose policy does not let it: a 500 to the caller.
            log.info("invoke not permitted", extra=log_fields(function=function_arn, source=source_arn))
            return _INTERNAL_ERROR
        response_headers: dict[str, str] = {}
        with calls.working_for(emulator.scope):
            raw = function.invoke(
                json.dumps(event), {"x-amz-invocation-type": "RequestResponse"}, response_headers
            )
        if "x-amz-function-error" in response_headers:
            return _INTERNAL_ERROR
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            result = json.loads(text)
        except ValueError:
            result = text
        return _response_parts(result)
