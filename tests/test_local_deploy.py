"""examples/quickstart deployed into the emulator by the Pulumi mocks adapter, IAM enforced.

One deployment serves the module: every resource is created in moto through boto3 and the
components' Outputs are the deployed values. The tripwire halt runs the way AWS runs it: the
alarm changes state, the deployed EventBridge rule delivers the alarm event to the halt function,
which runs under its own role. A second deployment with one permission taken away shows that
enforcement is real.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from breakglass.components.functions import LAMBDA_TRUST_POLICY
from breakglass.local.deploy import DeployError, Deployment, deploy, deploy_directory
from breakglass.local.emulator import Emulator
from breakglass.local.resources import HANDLERS, NOT_EMULATED

EXAMPLES = Path(__file__).parent.parent / "examples"
QUICKSTART = EXAMPLES / "quickstart"
TRIPWIRE_ALARM = "breakglass-ai-trip-chat-5xx"


def seed_chat_endpoint(emulator: Emulator) -> None:
    """What the quickstart guards: the SageMaker endpoint chat-prod and its invoker role chat-api."""
    iam = emulator.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="chat-api", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sagemaker = emulator.client("sagemaker")
    sagemaker.create_model(
        ModelName="chat-model",
        ExecutionRoleArn=role,
        PrimaryContainer={"Image": f"{emulator.account_id}.dkr.ecr.us-east-1.amazonaws.com/chat:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="chat-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "chat-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="chat-prod", EndpointConfigName="chat-config")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(enforce_iam=True) as emu:
        yield emu


@pytest.fixture(scope="module")
def deployment(emulator: Emulator) -> Deployment:
    deployed = deploy_directory(QUICKSTART, emulator)
    seed_chat_endpoint(emulator)
    return deployed


def trip(emulator: Emulator, deployment: Deployment) -> None:
    alarm = deployment.one("aws:cloudwatch/metricAlarm:MetricAlarm", TRIPWIRE_ALARM)
    emulator.client("cloudwatch").set_alarm_state(
        AlarmName=alarm.output("name"), StateValue="ALARM", StateReason="Threshold Crossed: 3 datapoints >= 5"
    )


def halt_deliveries(emulator: Emulator, deployment: Deployment) -> list[Any]:
    halt_arn = deployment.function_arn("breakglass-ai-halt")
    return [d for d in emulator.event_deliveries() if d.target_arn == halt_arn]


# -- the deployment -------------------------------------------------------------------------------


def test_the_quickstart_deploys_every_resource_with_its_real_arn(deployment: Deployment) -> None:
    listing = deployment.listing()
    print(listing)  # "each resource with its real ARN"
    created = deployment.created
    assert len(created) >= 110 and deployment.not_emulated == []
    assert len(listing.splitlines()) == len(created)
    account = deployment.emulator.account_id
    for resource in created:
        assert resource.id, resource.name
        if resource.arn:
            # In this emulator's account (S3 and API Gateway ARNs name none).
            assert resource.arn.startswith("arn:aws:") and resource.arn.split(":")[4] in (account, "")
    role = deployment.one("aws:iam/role:Role", "breakglass-halt-role")
    assert role.arn == f"arn:aws:iam::{account}:role/breakglass-emergency-halt"
    assert role.arn in listing


@pytest.mark.parametrize("program", sorted(p.parent.name for p in EXAMPLES.glob("*/__main__.py")))
def test_every_example_program_deploys_with_iam_enforced(program: str) -> None:
    with Emulator(enforce_iam=True) as own:
        deployed = deploy_directory(EXAMPLES / program, own)
        assert deployed.created and deployed.not_emulated == []
        functions = own.client("lambda").list_functions()["Functions"]
        roles = {r["Arn"] for r in own.client("iam").list_roles()["Roles"]}
        assert functions and all(f["Role"] in roles for f in functions)
        assert deployed.exports


def test_each_resource_is_created_after_the_resources_whose_outputs_it_uses(deployment: Deployment) -> None:
    created = deployment.created
    # Each ARN belongs to the first resource reporting it (a secret version reports its secret's,
    # a topic policy takes its topic's as an input). The trail's ARN is computed from its fixed
    # name before it exists (the key and bucket policies name it): no sign of a dependency.
    owners: dict[str, int] = {}
    # Alarms likewise: the halt function's policy names its tripwire alarms by their computed ARN,
    # and the await function's policy names the state machine (which needs that function's ARN).
    computed = (
        "aws:cloudtrail/trail:Trail",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:sfn/stateMachine:StateMachine",
    )
    for index, resource in enumerate(created):
        if resource.arn and resource.type not in computed:
            owners.setdefault(resource.arn, index)
    for index, resource in enumerate(created):
        text = json.dumps(resource.inputs, default=str)
        for arn, owner in owners.items():
            if owner != index and arn in text:
                assert owner < index, (created[owner].name, resource.name)
    order = [r.name for r in created]
    # depends_on without a data dependency: the bucket policy comes after the lock it protects.
    assert (
        order.index("breakglass-audit-object-lock")
        < order.index("breakglass-audit-bucket-policy")
        < order.index("breakglass-audit-trail")
    )


def test_the_state_machine_definition_references_the_deployed_functions(
    emulator: Emulator, deployment: Deployment
) -> None:
    machine = emulator.client("stepfunctions").describe_state_machine(
        stateMachineArn=deployment.output("state_machine_arn")
    )
    referenced = set(re.findall(r"arn:aws:lambda:[^\"]+:function:[\w-]+", machine["definition"]))
    functions = {r.arn for r in deployment.by_type("aws:lambda/function:Function")}
    assert referenced and referenced <= functions
    assert deployment.function_arn("breakglass-validate") in referenced


def test_a_functions_environment_holds_the_deployed_table_bucket_and_approval_url(
    emulator: Emulator, deployment: Deployment
) -> None:
    table = deployment.one("aws:dynamodb/table:Table").output("name")
    configuration = emulator.client("lambda").get_function_configuration(FunctionName="breakglass-validate")
    variables = configuration["Environment"]["Variables"]
    assert variables["BREAKGLASS_TABLE"] == table
    assert variables["BREAKGLASS_AUDIT_BUCKET"] == deployment.output("audit_bucket")
    assert variables["BREAKGLASS_APPROVAL_URL"] == deployment.api_url("breakglass-approvals-api")
    emulator.client("dynamodb").describe_table(TableName=table)


def test_the_trail_delivers_to_the_deployed_audit_bucket(emulator: Emulator, deployment: Deployment) -> None:
    (trail,) = emulator.client("cloudtrail").describe_trails()["trailList"]
    assert trail["S3BucketName"] == deployment.output("audit_bucket")
    assert trail["IsMultiRegionTrail"] and trail["LogFileValidationEnabled"]
    assert emulator.client("cloudtrail").get_trail_status(Name=trail["Name"])["IsLogging"]


def test_the_stack_exports_are_the_deployed_values(deployment: Deployment) -> None:
    roles = deployment.output("role_arns")
    assert roles == {
        tier: deployment.one("aws:iam/role:Role", f"breakglass-{tier}-role").arn
        for tier in ("halt", "operator", "admin", "drill")
    }
    assert deployment.output("halt_function") == "breakglass-ai-halt"
    assert deployment.output("access_api_url").startswith("http://127.0.0.1:")
    assert deployment.output("approval_url").startswith("http://127.0.0.1:")
    with pytest.raises(KeyError, match="exports no 'nope'"):
        deployment.output("nope")


def test_the_approval_api_is_served_on_its_local_url(deployment: Deployment) -> None:
    import urllib.error
    import urllib.request

    url = deployment.api_url("breakglass-approvals-api")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/nowhere", timeout=10)
    assert refused.value.code == 404
    # A real route reaches the approval function (a link without a token is its 4xx, not the gateway's).
    with pytest.raises(urllib.error.HTTPError) as answered:
        urllib.request.urlopen(f"{url}/requests/abc", timeout=10)
    assert 400 <= answered.value.code < 500 and answered.value.code != 404


def test_every_component_type_has_a_handler_or_a_reason() -> None:
    from breakglass.local.synth import synth_directory

    types = {r.type for r in synth_directory(QUICKSTART).resources if r.custom}
    # Providers are not created: their region is where what they create is created.
    assert {t for t in types if not t.startswith("pulumi:providers:")} <= set(HANDLERS) | set(NOT_EMULATED)


# -- the tripwire, driven as AWS drives it ----------------------------------------------------------


def test_a_tripwire_alarm_halts_the_endpoint_through_the_deployed_rule(
    emulator: Emulator, deployment: Deployment
) -> None:
    trip(emulator, deployment)
    (delivery,) = halt_deliveries(emulator, deployment)
    assert delivery.outcome == "delivered", delivery.response
    assert (
        delivery.rule_arn
        == deployment.one("aws:cloudwatch/eventRule:EventRule", f"{TRIPWIRE_ALARM}-rule").arn
    )
    # Exactly what the rule sends: the configured targets and mode, and the whole alarm event.
    assert delivery.input["source"] == "breakglass.tripwire" and delivery.input["mode"] == "deny-invoke"
    alarm_event = delivery.input["alarm"]
    assert alarm_event["detail-type"] == "CloudWatch Alarm State Change"
    assert alarm_event["detail"]["state"]["value"] == "ALARM"
    assert alarm_event["resources"] == [
        deployment.one("aws:cloudwatch/metricAlarm:MetricAlarm", TRIPWIRE_ALARM).arn
    ]
    assert delivery.response["status"] == "ok"

    iam = emulator.client("iam")
    (policy_name,) = iam.list_role_policies(RoleName="chat-api")["PolicyNames"]
    document = iam.get_role_policy(RoleName="chat-api", PolicyName=policy_name)["PolicyDocument"]
    statements = document["Statement"] if isinstance(document, dict) else json.loads(document)["Statement"]
    assert any(
        s["Effect"] == "Deny"
        and "sagemaker:InvokeEndpoint*" in s["Action"]
        and "endpoint/chat-prod" in str(s["Resource"])
        for s in statements
    )

    s3 = emulator.client("s3")
    bucket = deployment.output("audit_bucket")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="breakglass-events/")["Contents"]]
    halts = [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys if "-halt-" in k]
    assert [(h["event_type"], h["actor"], h["target"]) for h in halts] == [
        ("halt", "tripwire:chat-5xx", "chat")  # the configured name, never one from the event
    ]


def test_the_halt_function_ran_under_its_own_role(emulator: Emulator, deployment: Deployment) -> None:
    role_name = deployment.one("aws:iam/role:Role", "breakglass-ai-halt-role").output("name")
    put = [
        r
        for r in emulator.cloudtrail.records()
        if r["eventName"] == "PutRolePolicy" and r["requestParameters"]["roleName"] == "chat-api"
    ]
    assert put, "the halt did not run yet"
    identity = put[0]["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert (
        identity["arn"] == f"arn:aws:sts::{emulator.account_id}:assumed-role/{role_name}/breakglass-ai-halt"
    )


def test_enforcement_is_real_a_halt_function_without_put_role_policy_is_refused() -> None:
    """The same program, the halt function's generated policy minus one action: its run fails."""

    def without_put_role_policy(type_token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if type_token == "aws:iam/rolePolicy:RolePolicy" and name == "breakglass-ai-halt-policy":
            document = json.loads(inputs["policy"])
            for statement in document["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                statement["Action"] = [a for a in actions if a != "iam:PutRolePolicy"]
            inputs = {**inputs, "policy": json.dumps(document)}
        return inputs

    with Emulator(enforce_iam=True) as emulator:
        deployed = deploy_directory(QUICKSTART, emulator, transform=without_put_role_policy)
        seed_chat_endpoint(emulator)
        trip(emulator, deployed)
        (delivery,) = halt_deliveries(emulator, deployed)
        # The function ran and reports the target it could not halt (it never hides a failure).
        assert delivery.response["status"] == "failed"
        (result,) = delivery.response["results"]
        assert result["outcome"] == "error" and "AccessDenied" in result["error"]
        assert emulator.client("iam").list_role_policies(RoleName="chat-api")["PolicyNames"] == []
        refused = [
            r
            for r in emulator.cloudtrail.records()
            if r["eventName"] == "PutRolePolicy" and r["requestParameters"]["roleName"] == "chat-api"
        ]
        assert [r.get("errorCode") for r in refused] == ["AccessDenied"]


def test_step_functions_invokes_the_task_functions_with_the_state_machine_role(
    emulator: Emulator, deployment: Deployment
) -> None:
    sfn = emulator.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=deployment.output("state_machine_arn"),
        name="incomplete",
        input=json.dumps({"tier": "halt"}),
    )["executionArn"]
    described = wait_for_end(emulator, execution)
    # The validate function ran (and refused a request the access API never admitted): the
    # invocation was allowed.
    assert (described["status"], described["error"]) == ("FAILED", "RequestRejected")
    invokes = [
        r
        for r in emulator.cloudtrail.records()
        if r["eventName"] == "Invoke" and r["eventSource"] == "lambda.amazonaws.com"
    ]
    machine_role = deployment.one("aws:iam/role:Role", "breakglass-approvals-states-role").output("name")
    assert invokes and {
        r["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] for r in invokes
    } == {machine_role}
    assert {r["sourceIPAddress"] for r in invokes} == {"states.amazonaws.com"}


def wait_for_end(emulator: Emulator, execution_arn: str) -> dict[str, Any]:
    import time

    sfn = emulator.client("stepfunctions")
    deadline = time.monotonic() + 60
    while True:
        described = dict(sfn.describe_execution(executionArn=execution_arn))
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


# -- other programs: coming types, gaps, errors ------------------------------------------------------


def test_the_coming_resource_types_deploy(emulator: Emulator) -> None:
    def program() -> None:
        aws.ssm.Parameter("param", name="/breakglass/demo/version", type="String", value="0.1.0")
        aws.cloudwatch.Dashboard(
            "dashboard", dashboard_name="breakglass-demo", dashboard_body=json.dumps({"widgets": []})
        )
        role = aws.iam.Role(
            "worker",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        policy = aws.iam.Policy(
            "reader",
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}],
                }
            ),
        )
        aws.iam.RolePolicyAttachment("reader-attached", role=role.name, policy_arn=policy.arn)
        api = aws.apigatewayv2.Api("access", protocol_type="HTTP")
        aws.apigatewayv2.Route(
            "access-requests", api_id=api.id, route_key="POST /requests", authorization_type="AWS_IAM"
        )
        aws.cloudwatch.EventRule("nightly", schedule_expression="rate(1 day)")
        pulumi.export("policy_arn", policy.arn)

    deployed = deploy(program, emulator, project="coming-types")
    assert deployed.not_emulated == []
    iam = emulator.client("iam")
    role = deployed.one("aws:iam/role:Role", "worker").output("name")
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [a["PolicyArn"] for a in attached] == [deployed.output("policy_arn")]
    assert (
        emulator.client("ssm").get_parameter(Name="/breakglass/demo/version")["Parameter"]["Value"] == "0.1.0"
    )
    assert emulator.client("cloudwatch").get_dashboard(DashboardName="breakglass-demo")["DashboardName"]
    api_id = deployed.one("aws:apigatewayv2/api:Api").id
    (route,) = emulator.client("apigatewayv2").get_routes(ApiId=api_id)["Items"]
    assert (route["RouteKey"], route["AuthorizationType"]) == ("POST /requests", "AWS_IAM")
    rule = deployed.one("aws:cloudwatch/eventRule:EventRule").output("name")
    assert emulator.client("events").describe_rule(Name=rule)["ScheduleExpression"] == "rate(1 day)"


def test_a_type_moto_cannot_emulate_is_recorded_with_its_inputs_and_the_reason(emulator: Emulator) -> None:
    def program() -> None:
        aws.bedrock.Guardrail(
            "chat-guardrail",
            name="chat-guardrail",
            blocked_input_messaging="blocked",
            blocked_outputs_messaging="blocked",
            content_policy_config={
                "filters_configs": [{"type": "HATE", "input_strength": "HIGH", "output_strength": "HIGH"}]
            },
        )

    deployed = deploy(program, emulator, project="gaps")
    (gap,) = deployed.not_emulated
    assert gap.type == "aws:bedrock/guardrail:Guardrail" and gap.inputs["name"] == "chat-guardrail"
    assert "Bedrock guardrails" in str(gap.reason)
    assert "NOT EMULATED" in deployed.listing()


def test_an_unknown_resource_type_fails_with_an_error_naming_it(emulator: Emulator) -> None:
    def program() -> None:
        aws.ec2.Vpc("network", cidr_block="10.0.0.0/16")

    with pytest.raises(DeployError, match=r"resource 'network' of type aws:ec2/vpc:Vpc: no handler"):
        deploy(program, emulator, project="unknown-type")


def test_an_ssm_parameter_longer_than_its_tier_holds_fails_as_on_aws(emulator: Emulator) -> None:
    def program() -> None:
        aws.ssm.Parameter("fits", name="/t/fits", type="String", value="x" * 4096)
        aws.ssm.Parameter("long", name="/t/long", type="String", value="x" * 4097)

    with pytest.raises(DeployError, match=r"/t/long: the value is 4097 characters, over the 4096"):
        deploy(program, emulator, project="ssm-size")


def test_a_function_whose_environment_exceeds_lambdas_4_kb_fails_as_on_aws(emulator: Emulator) -> None:
    def function(name: str, value_bytes: int) -> None:
        role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps(LAMBDA_TRUST_POLICY))
        aws.lambda_.Function(
            name,
            name=name,
            runtime="python3.12",
            handler="x.handler",
            role=role.arn,
            code=pulumi.AssetArchive({"x.py": pulumi.StringAsset("def handler(e, c): return e\n")}),
            # Lambda counts keys and values: "BIG" is three bytes of the 4,096.
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={"BIG": "x" * value_bytes}),
        )

    def program() -> None:
        function("fits", 4096 - 3)
        function("over", 4096 - 2)

    with pytest.raises(
        DeployError, match=r"Lambda function over: its environment variables total 4097 bytes"
    ):
        deploy(program, emulator, project="env-size")


def test_a_program_that_raises_fails_with_its_error(emulator: Emulator) -> None:
    def program() -> None:
        raise ValueError("tiers: at least one tier is required")

    with pytest.raises(DeployError, match=r"the Pulumi program failed: ValueError: tiers: at least one tier"):
        deploy(program, emulator, project="broken")


def test_what_an_explicit_provider_creates_is_created_in_its_region() -> None:

    from breakglass.local.deploy import deploy

    def program() -> None:
        west = aws.Provider("west", region="eu-west-1")
        aws.sns.Topic("there", name="there", opts=pulumi.ResourceOptions(provider=west))
        aws.sns.Topic("here", name="here")

    with Emulator(enforce_iam=False) as local:
        deployed = deploy(program, local)
        assert (
            deployed.one("aws:sns/topic:Topic", "there").arn
            == f"arn:aws:sns:eu-west-1:{local.account_id}:there"
        )
        assert (
            deployed.one("aws:sns/topic:Topic", "here").arn
            == f"arn:aws:sns:us-east-1:{local.account_id}:here"
        )
        assert local.client("sns", region_name="eu-west-1").list_topics()["Topics"]
