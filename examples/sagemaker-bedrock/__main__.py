"""SageMaker and Bedrock: one kill switch for a SageMaker endpoint and a Bedrock model, and a
tripwire on the guardrail in front of both.

- ``chat``: a SageMaker endpoint; halted by denying ``sagemaker:InvokeEndpoint`` to the role that
  calls it (capacity stays warm), or by deleting the endpoint (a snapshot of its description goes
  to the audit bucket first; resume recreates it from there).
- ``assistant``: a Bedrock foundation model and its cross-region inference profile; halted by
  denying ``bedrock:InvokeModel*`` and ``bedrock:Converse*`` on them to the role that calls them.
- tripwire ``guardrail``: the Bedrock guardrail both applications use intervenes 20 times or more
  in 5 minutes (metric ``InvocationsIntervened``: someone is probing them); the halt function
  denies invocation of both at once, before anyone is awake.

Preview it offline with ``breakglass synth examples/sagemaker-bedrock``. Stack config (all
optional): ``endpointName``, ``invokerRole``, ``bedrockModelId``, ``bedrockInvokerRole``,
``guardrailArn``, ``guardrailVersion``, ``interventionsThreshold``, and as in the quickstart
``deployment``, ``responders``, ``approvers``, ``securityAdmins``, ``senderEmail`` and
``alertEmail``.
"""

import pulumi

from breakglass import BreakGlass

config = pulumi.Config()
account = "123456789012"
region = "us-east-1"
endpoint = config.get("endpointName") or "chat-prod"
model_id = config.get("bedrockModelId") or "anthropic.claude-3-haiku-20240307-v1:0"
guardrail = config.get("guardrailArn") or f"arn:aws:bedrock:{region}:{account}:guardrail/abcd1234efgh"
threshold = config.get_int("interventionsThreshold")

breakglass = BreakGlass(
    "breakglass",
    {
        "deployment": config.get("deployment") or "sagemaker-bedrock",
        "requesters": (config.get("responders") or f"arn:aws:iam::{account}:role/oncall-ml").split(","),
        "approvers": (config.get("approvers") or "ann,bob,cat").split(","),
        "security_admins": (config.get("securityAdmins") or f"arn:aws:iam::{account}:role/cloud-admin").split(
            ","
        ),
        "sender_email": config.get("senderEmail") or "breakglass@example.com",
        "alert_emails": [config.get("alertEmail") or "security@example.com"],
        "halt_targets": [
            {
                "id": "chat",
                "endpoint_name": endpoint,
                "invoker_roles": [config.get("invokerRole") or "chat-api"],
                "modes": ["deny-invoke", "delete-endpoint"],
            },
            {
                "id": "assistant",
                "bedrock_arns": [
                    f"arn:aws:bedrock:{region}::foundation-model/{model_id}",
                    f"arn:aws:bedrock:{region}:{account}:inference-profile/us.{model_id}",
                ],
                "invoker_roles": [config.get("bedrockInvokerRole") or "bedrock-invoker"],
                "modes": ["deny-invoke"],
            },
        ],
        "tripwires": [
            {
                "name": "guardrail",
                "namespace": "AWS/Bedrock/Guardrails",
                "metric_name": "InvocationsIntervened",
                "dimensions": {
                    "GuardrailArn": guardrail,
                    "GuardrailVersion": config.get("guardrailVersion") or "1",
                },
                "statistic": "Sum",
                "threshold": 20 if threshold is None else threshold,
                "period": 300,
                "mode": "deny-invoke",
                "targets": ["chat", "assistant"],
            }
        ],
    },
)

pulumi.export("access_api_url", breakglass.access_api_url)
pulumi.export("approval_url", breakglass.approval_url)
pulumi.export("state_machine_arn", breakglass.state_machine_arn)
pulumi.export("role_arns", breakglass.role_arns)
pulumi.export("audit_bucket", breakglass.audit_bucket)
pulumi.export("athena_workgroup", breakglass.athena_workgroup)
pulumi.export("alert_topic_arn", breakglass.alert_topic_arn)
pulumi.export("halt_function", breakglass.halt_function)
pulumi.export("resume_function", breakglass.resume_function)
