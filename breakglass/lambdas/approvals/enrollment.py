"""Enrollment: give a person a TOTP secret and record who they are and what they may do.

The secret is generated here, stored KMS-encrypted through the store, and returned once as an
``otpauth://`` URI for the person's authenticator app (the CLI shows it as a QR code). It is
never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pyotp

from breakglass.lambdas.approvals.store import ROLES, Enrollment, Store
from breakglass.lambdas.approvals.totp import DIGITS, STEP_SECONDS
from breakglass.validation import (
    EMAIL,
    EMAIL_HINT,
    IAM_ROLE_OR_USER_ARN,
    USER_ID,
    USER_ID_HINT,
    require_choice,
    require_str,
    require_str_list,
)

ISSUER_PATTERN: Final = r"[\w .-]{1,64}"


def validate_enrollment(user: Any, principal_arn: Any, email: Any, roles: Any) -> Enrollment:
    """The enrollment these inputs describe; :class:`ConfigError` names the first bad field."""
    checked_user = require_str("user", user, pattern=USER_ID, hint=USER_ID_HINT)
    checked_arn = require_str(
        "principal_arn",
        principal_arn,
        pattern=IAM_ROLE_OR_USER_ARN,
        max_length=2048,
        hint="must be an IAM user or role ARN, e.g. arn:aws:iam::123456789012:user/alice",
    )
    checked_email = require_str(
        "email",
        email,
        pattern=EMAIL,
        max_length=254,
        hint=EMAIL_HINT,
    )
    checked_roles = require_str_list("roles", roles, allow_empty=False)
    for i, role in enumerate(checked_roles):
        require_choice(f"roles[{i}]", role, ROLES)
    return Enrollment(user=checked_user, principal_arn=checked_arn, email=checked_email, roles=checked_roles)


def enroll(
    store: Store,
    user: str,
    principal_arn: str,
    email: str,
    roles: Sequence[str],
    *,
    issuer: str = "breakglass",
) -> str:
    """Enroll (or re-enroll, with a new secret) ``user``; return the otpauth URI to scan."""
    enrollment = validate_enrollment(user, principal_arn, email, roles)
    require_str(
        "issuer", issuer, pattern=ISSUER_PATTERN, hint="use 1-64 letters, digits, spaces, '.', '_' or '-'"
    )
    secret = pyotp.random_base32()
    store.put_enrollment(enrollment, secret)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    return totp.provisioning_uri(name=enrollment.user, issuer_name=issuer)
