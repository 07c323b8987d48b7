"""The local API Gateway HTTP API adapter speaks payload format 2.0 both ways."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
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


# -- the HTTP APIs deployed into the emulator ------------------------------------------------------

PROBE = """
import json


def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
"""
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def api_program() -> None:
    """An HTTP API like the access API: IAM-authorized routes, a public one, and one whose
    function does not let API Gateway invoke it."""
    import pulumi
    import pulumi_aws as aws

    role = aws.iam.Role("probe-role", assume_role_policy=json.dumps(LAMBDA_TRUST))
    code = pulumi.AssetArchive({"probe.py": pulumi.StringAsset(PROBE)})

    def function(name: str) -> Any:
        return aws.lambda_.Function(
            name, code=code, handler="probe.handler", runtime="python3.12", role=role.arn
        )

    probe, orphan = function("probe"), function("orphan")
    api = aws.apigatewayv2.Api("access", protocol_type="HTTP")
    routes = {
        "POST /requests": ("AWS_IAM", probe),
        "GET /requests/{id}": ("AWS_IAM", probe),
        "GET /public/{proxy+}": ("NONE", probe),
        "GET /orphan": ("NONE", orphan),
    }
    for index, (key, (authorization, target)) in enumerate(routes.items()):
        integration = aws.apigatewayv2.Integration(
            f"integration-{index}",
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_uri=target.arn,
            payload_format_version="2.0",
        )
        aws.apigatewayv2.Route(
            f"route-{index}",
            api_id=api.id,
            route_key=key,
            authorization_type=authorization,
            target=integration.id.apply(lambda i: f"integrations/{i}"),
        )
    aws.apigatewayv2.Stage("stage", api_id=api.id, name="$default", auto_deploy=True)
    aws.lambda_.Permission(
        "probe-invoke",
        action="lambda:InvokeFunction",
        function=probe.name,
        principal="apigateway.amazonaws.com",
        source_arn=api.execution_arn.apply(lambda arn: f"{arn}/*/*"),
    )


@pytest.fixture(scope="module")
def gateway() -> Iterator[dict[str, Any]]:
    """The deployed API, its URL, and credentials: an allowed user, a user without
    execute-api:Invoke, and a session of a role that may invoke."""
    from breakglass.local.deploy import deploy
    from breakglass.local.emulator import Emulator

    with Emulator(enforce_iam=True) as emulator:
        deployment = deploy(api_program, emulator, project="http-api")
        account = emulator.account_id
        api_id = str(deployment.one("aws:apigatewayv2/api:Api").id)
        invoke = f"arn:aws:execute-api:us-east-1:{account}:{api_id}/*/*/requests*"
        iam = emulator.client("iam")

        def user(name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
            iam.create_user(UserName=name)
            if statements:
                iam.put_user_policy(
                    UserName=name,
                    PolicyName="p",
                    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
                )
            return dict(iam.create_access_key(UserName=name)["AccessKey"])

        responder_role = f"arn:aws:iam::{account}:role/responder"
        allowed = user(
            "alice",
            [
                {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": invoke},
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": responder_role},
            ],
        )
        nobody = user(
            "mallory",
            [
                {
                    "Effect": "Allow",
                    "Action": "execute-api:Invoke",
                    "Resource": "arn:aws:execute-api:*:*:other/*",
                }
            ],
        )
        iam.create_role(
            RoleName="responder",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": f"arn:aws:iam::{account}:user/alice"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        iam.put_role_policy(
            RoleName="responder",
            PolicyName="invoke",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": invoke}],
                }
            ),
        )
        session = emulator.client_as("sts", allowed).assume_role(
            RoleArn=responder_role, RoleSessionName="alice-oncall"
        )
        yield {
            "emulator": emulator,
            "url": deployment.api_url("access"),
            "api_id": api_id,
            "allowed": allowed,
            "nobody": nobody,
            "session": session,
        }


def signed_call(
    url: str,
    credentials: dict[str, str],
    *,
    method: str = "POST",
    body: bytes = b"",
    sent_body: bytes | None = None,
) -> Any:
    """A request signed with SigV4 for execute-api, as botocore signs it (``sent_body`` tampers)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body, headers={"content-type": "application/json"})
    keys = Credentials(
        credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials.get("SessionToken")
    )
    SigV4Auth(keys, "execute-api", "us-east-1").add_auth(request)
    prepared = request.prepare()
    return call(
        prepared.url,
        method=method,
        body=body if sent_body is None else sent_body,
        headers=dict(prepared.headers),
    )


def test_a_signed_request_of_an_allowed_user_reaches_the_function_with_its_iam_identity(
    gateway: dict[str, Any],
) -> None:
    allowed = gateway["allowed"]
    response = signed_call(f"{gateway['url']}/requests", allowed, body=b'{"tier": "halt"}')
    assert response.status == 200
    event = json.loads(response.read())
    assert event["routeKey"] == "POST /requests" and event["body"] == '{"tier": "halt"}'
    context = event["requestContext"]
    assert (context["apiId"], context["accountId"], context["stage"]) == (
        gateway["api_id"],
        gateway["emulator"].account_id,
        "$default",
    )
    user_id = gateway["emulator"].client("iam").get_user(UserName="alice")["User"]["UserId"]
    assert context["authorizer"] == {
        "iam": {
            "accessKey": allowed["AccessKeyId"],
            "accountId": gateway["emulator"].account_id,
            "callerId": user_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": f"arn:aws:iam::{gateway['emulator'].account_id}:user/alice",
            "userId": user_id,
        }
    }


def test_a_routes_path_parameters_reach_the_function(gateway: dict[str, Any]) -> None:
    response = signed_call(f"{gateway['url']}/requests/r42", gateway["allowed"], method="GET")
    event = json.loads(response.read())
    assert (event["routeKey"], event["pathParameters"]) == ("GET /requests/{id}", {"id": "r42"})


def test_an_assumed_role_caller_is_named_by_its_session(gateway: dict[str, Any]) -> None:
    session = gateway["session"]
    response = signed_call(f"{gateway['url']}/requests", session["Credentials"], body=b"{}")
    iam = json.loads(response.read())["requestContext"]["authorizer"]["iam"]
    account = gateway["emulator"].account_id
    assert iam["userArn"] == f"arn:aws:sts::{account}:assumed-role/responder/alice-oncall"
    assert iam["userId"] == iam["callerId"] == session["AssumedRoleUser"]["AssumedRoleId"]
    assert iam["accessKey"] == session["Credentials"]["AccessKeyId"]


def test_an_unsigned_request_is_refused_as_missing_authentication_token(gateway: dict[str, Any]) -> None:
    response = call(f"{gateway['url']}/requests", method="POST", body=b"{}")
    assert response.status == 403
    assert json.loads(response.read()) == {"message": "Missing Authentication Token"}


def test_a_request_signed_with_a_wrong_secret_is_forbidden(gateway: dict[str, Any]) -> None:
    forged = {**gateway["allowed"], "SecretAccessKey": "not-the-secret"}
    response = signed_call(f"{gateway['url']}/requests", forged, body=b"{}")
    assert (response.status, json.loads(response.read())) == (403, {"message": "Forbidden"})


def test_a_tampered_body_is_forbidden(gateway: dict[str, Any]) -> None:
    response = signed_call(
        f"{gateway['url']}/requests",
        gateway["allowed"],
        body=b'{"tier": "halt"}',
        sent_body=b'{"tier": "root"}',
    )
    assert (response.status, json.loads(response.read())) == (403, {"message": "Forbidden"})


def test_a_principal_without_execute_api_invoke_is_forbidden(gateway: dict[str, Any]) -> None:
    response = signed_call(f"{gateway['url']}/requests", gateway["nobody"], body=b"{}")
    assert (response.status, json.loads(response.read())) == (403, {"message": "Forbidden"})


def test_a_route_without_authorization_needs_no_signature(gateway: dict[str, Any]) -> None:
    event = json.loads(call(f"{gateway['url']}/public/docs/index.html").read())
    assert event["routeKey"] == "GET /public/{proxy+}" and event["pathParameters"] == {
        "proxy": "docs/index.html"
    }
    assert "authorizer" not in event["requestContext"]


def test_a_path_no_route_matches_is_not_found(gateway: dict[str, Any]) -> None:
    response = call(f"{gateway['url']}/nowhere")
    assert (response.status, json.loads(response.read())) == (404, {"message": "Not Found"})


def test_a_function_api_gateway_may_not_invoke_is_an_internal_error(gateway: dict[str, Any]) -> None:
    response = call(f"{gateway['url']}/orphan")
    assert (response.status, json.loads(response.read())) == (500, {"message": "Internal Server Error"})


def test_the_most_specific_route_wins() -> None:
    from types import SimpleNamespace

    from breakglass.local.http_api import match_route

    routes = [
        SimpleNamespace(route_key=key)
        for key in (
            "ANY /requests/{id}",
            "GET /requests/{id}",
            "GET /requests/mine",
            "GET /{proxy+}",
            "$default",
        )
    ]
    assert match_route(routes, "GET", "/requests/mine").route_key == "GET /requests/mine"
    assert match_route(routes, "GET", "/requests/r1").route_key == "GET /requests/{id}"
    assert match_route(routes, "DELETE", "/requests/r1").route_key == "ANY /requests/{id}"
    assert match_route(routes, "GET", "/a/b/c").route_key == "GET /{proxy+}"
    assert match_route(routes, "POST", "/a").route_key == "$default"
