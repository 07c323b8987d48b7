"""Quickstart: break-glass access for the AI systems of one account.

Preview it offline with ``breakglass synth examples/quickstart`` (no AWS account, no Pulumi CLI);
deploy it with ``pulumi up`` from the repository root (Pulumi.yaml points here).

Stack config (all optional): ``alertEmail``, ``senderEmail`` (the approval emails' sender),
``responders`` (comma-separated principal ARNs), ``approvers`` (comma-separated enrolled user
ids), ``endpointName`` and ``invokerRole`` (the SageMaker endpoint to guard and its caller).
"""

import pulumi

from breakglass.components import ApprovalWorkflow, AuditQueries, AuditTrail, EmergencyRole, HaltActions

config = pulumi.Config()
responders = (config.get("responders") or "arn:aws:iam::123456789012:role/oncall-ml").split(",")
endpoint = config.get("endpointName") or "chat-prod"
invoker_role = config.get("invokerRole") or "chat-api"
approvers = (config.get("approvers") or "ann,bob,cat").split(",")

# 1. The record nobody can erase: CloudTrail + break-glass events in an Object Lock bucket.
audit = AuditTrail("audit", {"alert_emails": [config.get("alertEmail") or "security@example.com"]})

# 2. What auditors run: Glue tables with partition projection, an Athena workgroup, named queries.
AuditQueries("audit-queries", {"audit_bucket": audit.bucket_name, "kms_key_arn": audit.kms_key_arn})

# 3. One emergency role per tier, locked until a grant opens it for one person and one window.
protected = [audit.bucket_arn, audit.kms_key_arn]
halt_tier = EmergencyRole(
    "halt",
    {
        "tier": "halt",
        "allowed_requesters": responders,
        # Looking is all this tier does itself; it halts through the access API (breakglass halt).
        "managed_policy_arns": ["arn:aws:iam::aws:policy/AmazonSageMakerReadOnly"],
        "max_window_seconds": 3600,
        "protected_arns": protected,
    },
)
operator_tier = EmergencyRole(
    "operator",
    {
        "tier": "operator",
        "allowed_requesters": responders,
        "managed_policy_arns": ["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"],
        "max_window_seconds": 2 * 3600,
        "protected_arns": protected,
    },
)
admin_tier = EmergencyRole(
    "admin",
    {
        "tier": "admin",
        "allowed_requesters": responders,
        "managed_policy_arns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "max_window_seconds": 4 * 3600,
        "max_mfa_age_seconds": 900,
        "protected_arns": protected,
    },
)

# 4. The kill switch: stop the model by hand or when its 5xx rate trips the alarm.
kill_switch = HaltActions(
    "ai",
    {
        "targets": [
            {
                "id": "chat",
                "endpoint_name": endpoint,
                "invoker_roles": [invoker_role],
                "modes": ["deny-invoke", "delete-endpoint"],
            }
        ],
        "audit_bucket_name": audit.bucket_name,
        "audit_kms_key_arn": audit.kms_key_arn,
        "alert_topic_arn": audit.alert_topic_arn,
        "tripwires": [
            {
                "name": "chat-5xx",
                "namespace": "AWS/SageMaker",
                "metric_name": "Invocation5XXErrors",
                "dimensions": {"EndpointName": endpoint, "VariantName": "AllTraffic"},
                "statistic": "Sum",
                "threshold": 5,
                "period": 60,
                "evaluation_periods": 3,
                "datapoints_to_alarm": 2,
                "mode": "deny-invoke",
                "targets": ["chat"],
            }
        ],
    },
)

# 5. The approval workflow: halting is auto-approved; anything more needs a quorum of two, and only
#    a tier approved by people may resume a halted model.
workflow = ApprovalWorkflow(
    "approvals",
    {
        "tiers": {
            "halt": {"approval": "auto", "approvers": approvers},
            "operator": {
                "approval": 2,
                "approvers": approvers,
                "ticket_required": True,
                "ticket_pattern": r"INC-\d+",
                "approval_timeout_seconds": 1800,
            },
            "admin": {"approval": 2, "approvers": approvers, "ticket_required": True},
        },
        "emergency_roles": [halt_tier, operator_tier, admin_tier],
        "audit_bucket_name": audit.bucket_name,
        "audit_bucket_arn": audit.bucket_arn,
        "audit_kms_key_arn": audit.kms_key_arn,
        "alert_topic_arn": audit.alert_topic_arn,
        "sender_email": config.get("senderEmail") or "breakglass@example.com",
        "halt_actions": kill_switch,
    },
)

pulumi.export("audit_bucket", audit.bucket_name)
pulumi.export("alert_topic", audit.alert_topic_arn)
pulumi.export("emergency_roles", [halt_tier.role_arn, operator_tier.role_arn, admin_tier.role_arn])
pulumi.export("halt_function", kill_switch.halt_function.name)
pulumi.export("approval_url", workflow.approval_url)
pulumi.export("access_api_url", workflow.access_api_url)
pulumi.export("state_machine_arn", workflow.state_machine_arn)
