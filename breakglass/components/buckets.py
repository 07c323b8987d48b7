"""The controls every bucket this package creates carries: private, owner-enforced, KMS-encrypted."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def make_private(name: str, bucket_id: pulumi.Input[str], *, parent: pulumi.Resource) -> pulumi.Resource:
    """Owner-enforced ownership (no ACLs) and all four public-access blocks; returns the last one."""
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket_id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket_id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        # S3 refuses concurrent configuration changes to one bucket.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[ownership]),
    )


def encrypt_with_kms(
    name: str,
    bucket_id: pulumi.Input[str],
    kms_key_arn: pulumi.Input[str],
    *,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource] | None = None,
) -> aws.s3.BucketServerSideEncryptionConfiguration:
    """SSE-KMS by default with a bucket key (fewer KMS calls, same key)."""
    return aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket_id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": kms_key_arn,
                },
                "bucket_key_enabled": True,
            }
        ],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or []),
    )
