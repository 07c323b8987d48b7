"""Tiers: access tiers and quorums shaped to a team, on top of the quickstart's defaults.

- ``observer``: approved automatically, sees configuration and nothing else (ViewOnlyAccess
  reads no data), for the first minutes of an incident; 1 h windows, 4 requests per person an hour.
- ``data-fix``: two approvers and a ``DATA-<n>`` ticket; writes to the feature-store table only;
  2 h windows, MFA no older than 30 minutes. It may neither halt nor resume models. Its sessions
  may assume the warehouse writer role: the one named opt-in of this program (see its README).
- ``admin``: three approvers instead of two; 30-minute windows; MFA no older than 10 minutes.
- ``halt``, ``operator`` and ``drill`` stay as the defaults.

Preview it offline with ``breakglass synth examples/tiers``. Stack config (all optional):
``deployment``, ``responders``, ``approvers``, ``dataApprovers`` (who approves ``data-fix``;
default: ``approvers``), ``securityAdmins``, ``senderEmail``, ``alertEmail``,
``featureStoreTableArn`` and ``warehouseWriterRoleArn``.
"""

import pulumi

from breakglass import BreakGlass

config = pulumi.Config()
account = "123456789012"
approvers = (config.get("approvers") or "ann,bob,cat,dan").split(",")
feature_store = (
    config.get("featureStoreTableArn") or f"arn:aws:dynamodb:us-east-1:{account}:table/feature-store"
)
warehouse_writer = config.get("warehouseWriterRoleArn") or f"arn:aws:iam::{account}:role/warehouse-writer"

breakglass = BreakGlass(
    "breakglass",
    {
        "deployment": config.get("deployment") or "tiers",
        "requesters": (config.get("responders") or f"arn:aws:iam::{account}:role/oncall-ml").split(","),
        "approvers": approvers,
        "security_admins": (config.get("securityAdmins") or f"arn:aws:iam::{account}:role/cloud-admin").split(
            ","
        ),
        "sender_email": config.get("senderEmail") or "breakglass@example.com",
        "alert_emails": [config.get("alertEmail") or "security@example.com"],
        "tiers": {
            # Look, do not touch: list and describe every service, read no data, change nothing.
            "observer": {
                "approval": "auto",
                "managed_policy_arns": ["arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"],
                "max_window_seconds": 3600,
                "may_halt": False,
                "may_resume": False,
                "max_requests_per_person_per_hour": 4,
            },
            # Repair bad rows the model learned from: two people agree, a ticket names the fix.
            "data-fix": {
                "approval": 2,
                "approvers": (config.get("dataApprovers") or ",".join(approvers)).split(","),
                "ticket_required": True,
                "ticket_pattern": r"DATA-\d+",
                "inline_policies": {
                    "feature-store-write": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "FixFeatureRows",
                                "Effect": "Allow",
                                "Action": [
                                    "dynamodb:GetItem",
                                    "dynamodb:Query",
                                    "dynamodb:PutItem",
                                    "dynamodb:UpdateItem",
                                    "dynamodb:DeleteItem",
                                ],
                                "Resource": feature_store,
                            },
                            {
                                # Used only because role_chaining_opt_in names the role below.
                                "Sid": "WriteTheWarehouse",
                                "Effect": "Allow",
                                "Action": "sts:AssumeRole",
                                "Resource": warehouse_writer,
                            },
                        ],
                    }
                },
                "max_window_seconds": 2 * 3600,
                "max_total_seconds": 4 * 3600,
                "max_mfa_age_seconds": 1800,
                "may_halt": False,
                "may_resume": False,
                # The named opt-in: these sessions may assume the warehouse writer role. A chained
                # session lasts up to an hour and is not an emergency-role session, so the grant's
                # expiry and an early revoke do not end it (docs/emergency-roles.md).
                "role_chaining_opt_in": [warehouse_writer],
            },
            # Stricter than the default admin tier: three approvers, half-hour windows, fresh MFA.
            "admin": {
                "approval": 3,
                "max_window_seconds": 1800,
                "max_mfa_age_seconds": 600,
            },
        },
    },
)

pulumi.export("access_api_url", breakglass.access_api_url)
pulumi.export("approval_url", breakglass.approval_url)
pulumi.export("state_machine_arn", breakglass.state_machine_arn)
pulumi.export("role_arns", breakglass.role_arns)
pulumi.export("audit_bucket", breakglass.audit_bucket)
pulumi.export("athena_workgroup", breakglass.athena_workgroup)
pulumi.export("alert_topic_arn", breakglass.alert_topic_arn)
