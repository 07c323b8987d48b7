"""Quickstart: governed break-glass access for the AI systems of one account, in one component.

Preview it offline with ``breakglass synth examples/quickstart`` (no AWS account, no Pulumi CLI),
run the whole incident drill with ``make demo``; deploy it with ``pulumi up`` from the repository
root (Pulumi.yaml points here).

Stack config (all optional): ``deployment`` (the name the command finds it by), ``alertEmail``,
``senderEmail`` (the approval emails' sender), ``responders`` (comma-separated principal ARNs),
``approvers`` (comma-separated enrolled user ids), ``securityAdmins`` (principal ARNs that may
enroll the first people), ``endpointName`` and ``invokerRole`` (the SageMaker endpoint to guard
and the role that calls it), ``sealedUsers`` (comma-separated names of the break-glass IAM users of
the sealed last resort; each needs a hardware MFA device and a password added by hand, see
docs/sealed-access.md) and ``sealedAlertEmails`` (the approvers' addresses, alerted with security
on every sealed use).
"""

import pulumi

from breakglass import BreakGlass

config = pulumi.Config()
account = "123456789012"
endpoint = config.get("endpointName") or "chat-prod"

breakglass = BreakGlass(
    "breakglass",
    {
        "deployment": config.get("deployment") or "quickstart",
        # Who may ask (their own everyday principals) and who approves (enrolled user ids).
        "requesters": (config.get("responders") or f"arn:aws:iam::{account}:role/oncall-ml").split(","),
        "approvers": (config.get("approvers") or "ann,bob,cat").split(","),
        "security_admins": (config.get("securityAdmins") or f"arn:aws:iam::{account}:role/cloud-admin").split(
            ","
        ),
        "sender_email": config.get("senderEmail") or "breakglass@example.com",
        "alert_emails": [config.get("alertEmail") or "security@example.com"],
        # The kill switch: stop the model by hand, or when its 5xx rate trips the alarm.
        "halt_targets": [
            {
                "id": "chat",
                "endpoint_name": endpoint,
                "invoker_roles": [config.get("invokerRole") or "chat-api"],
                "modes": ["deny-invoke", "delete-endpoint"],
            }
        ],
        # The last resort when the workflow, SES, the identity provider or the region is down:
        # named IAM users with hardware MFA, no approval, every use alerted and reviewed.
        "sealed_access": {
            "users": (config.get("sealedUsers") or "breakglass-sealed").split(","),
            "managed_policy_arns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
            "alert_emails": [e for e in (config.get("sealedAlertEmails") or "").split(",") if e],
        },
        "tripwires": [
            {
                "name": "chat-5xx",
                "namespace": "AWS/SageMaker",
                "metric_name": "Invocation5XXErrors",
                "dimensions": {"EndpointName": endpoint, "VariantName": "AllTraffic"},
                "threshold": 5,
                "evaluation_periods": 3,
                "datapoints_to_alarm": 2,
                "mode": "deny-invoke",
                "targets": ["chat"],
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
