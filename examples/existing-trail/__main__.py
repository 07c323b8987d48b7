"""Existing trail: break-glass in an account that an organization trail already records.

The organization's security account owns the trail, the locked bucket it delivers to and the KMS
key that encrypts it. This stack creates none of the three: the break-glass events go to that
bucket under ``breakglass-events/``, encrypted with that key, next to the trail's
``AWSLogs/``. It creates everything else BreakGlass does (the alert topic and its rules, the
Athena tables and queries, the tiers, the workflow, the kill switch).

Preview it offline with ``breakglass synth examples/existing-trail``. Stack config:
``existingTrailArn``, ``existingBucketName`` and ``existingKmsKeyArn`` (the organization's, see
the README for what each must allow), ``organizationId`` and ``cloudtrailPrefix`` (where the trail
delivers), and as in the quickstart (all optional) ``deployment``,
``responders``, ``approvers``, ``securityAdmins``, ``senderEmail``, ``alertEmail``,
``endpointName`` and ``invokerRole``.
"""

import pulumi

from breakglass import BreakGlass

config = pulumi.Config()
account = "123456789012"
# The organization's management account (the trail) and log archive (bucket and key) in the
# defaults; name your own in stack config.
org_trail = config.get("existingTrailArn") or "arn:aws:cloudtrail:us-east-1:111122223333:trail/org-trail"
org_bucket = config.get("existingBucketName") or "org-cloudtrail-logs"
org_key = (
    config.get("existingKmsKeyArn")
    or "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)
organization = config.get("organizationId") or "o-a1b2c3d4e5"
endpoint = config.get("endpointName") or "chat-prod"

breakglass = BreakGlass(
    "breakglass",
    {
        "deployment": config.get("deployment") or "existing-trail",
        "requesters": (config.get("responders") or f"arn:aws:iam::{account}:role/oncall-ml").split(","),
        "approvers": (config.get("approvers") or "ann,bob,cat").split(","),
        "security_admins": (config.get("securityAdmins") or f"arn:aws:iam::{account}:role/cloud-admin").split(
            ","
        ),
        "sender_email": config.get("senderEmail") or "breakglass@example.com",
        "alert_emails": [config.get("alertEmail") or "security@example.com"],
        # No trail, no bucket, no key of its own: the organization's are used as they are.
        "audit": {
            "existing_trail_arn": org_trail,
            "existing_bucket_name": org_bucket,
            "existing_kms_key_arn": org_key,
            # Where that trail delivers, for the Athena tables: an organization trail writes each
            # account's logs under [<prefix>/]AWSLogs/<organization id>/<account>/.
            "organization_id": organization,
            "cloudtrail_prefix": config.get("cloudtrailPrefix") or "",
        },
        "halt_targets": [
            {
                "id": "chat",
                "endpoint_name": endpoint,
                "invoker_roles": [config.get("invokerRole") or "chat-api"],
                "modes": ["deny-invoke", "delete-endpoint"],
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
