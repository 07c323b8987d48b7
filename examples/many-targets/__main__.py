"""Many targets: the quickstart's break-glass deployment guarding 500 SageMaker endpoints.

The fleet is ``model-000`` ... ``model-499`` (``targetCount`` changes how many), invoked through
25 roles ``fleet-invoker-0`` ... ``fleet-invoker-24`` (endpoint *i* through role *i mod 25*), each
target halted by denying invoke. Twenty targets per role keep each role's deny pages (about
3,700 characters) inside IAM's 10,240-character inline-policy quota per role; a hundred would not. One ``breakglass halt all`` stops the whole fleet. Used by
``tests/test_load.py`` and ``benchmarks/load.py``; stack config otherwise as the quickstart's.
"""

import pulumi

from breakglass import BreakGlass

config = pulumi.Config()
account = "123456789012"
count = int(config.get("targetCount") or 500)
INVOKER_ROLES = 25

breakglass = BreakGlass(
    "breakglass",
    {
        "deployment": config.get("deployment") or "many-targets",
        "requesters": (config.get("responders") or f"arn:aws:iam::{account}:role/oncall-ml").split(","),
        "approvers": (config.get("approvers") or "ann,bob,cat").split(","),
        "security_admins": (config.get("securityAdmins") or f"arn:aws:iam::{account}:role/cloud-admin").split(
            ","
        ),
        "sender_email": config.get("senderEmail") or "breakglass@example.com",
        "alert_emails": [config.get("alertEmail") or "security@example.com"],
        "halt_targets": [
            {
                "id": f"model-{i:03d}",
                "endpoint_name": f"model-{i:03d}",
                "invoker_roles": [f"fleet-invoker-{i % INVOKER_ROLES}"],
            }
            for i in range(count)
        ],
    },
)

pulumi.export("access_api_url", breakglass.access_api_url)
pulumi.export("approval_url", breakglass.approval_url)
pulumi.export("state_machine_arn", breakglass.state_machine_arn)
pulumi.export("role_arns", breakglass.role_arns)
pulumi.export("audit_bucket", breakglass.audit_bucket)
pulumi.export("alert_topic_arn", breakglass.alert_topic_arn)
pulumi.export("halt_function", breakglass.halt_function)
pulumi.export("resume_function", breakglass.resume_function)
