"""Who is calling, as AWS says: the caller of an IAM-authorized API route, mapped to a person.

API Gateway verifies the SigV4 signature of a route with ``AWS_IAM`` authorization and hands the
Lambda the caller in ``requestContext.authorizer.iam``. Nothing a caller writes in a body, a path
or a header names who they are: the person is derived from the verified ARN alone.

Mapping rules (documented in docs/security.md):

- ``arn:aws:iam::A:user/NAME``: the person whose user id is NAME and whose enrolled principal is
  that user ARN.
- ``arn:aws:sts::A:assumed-role/ROLE/SESSION``: the person whose user id is SESSION and whose
  enrolled principal is ``arn:aws:iam::A:role/ROLE`` (a role shared by several people, e.g. an SSO
  permission set: the identity provider sets the session name, so one user cannot claim another's)
  or exactly that session ARN.
- ``assumed-role/breakglass-emergency-TIER/USER``: an emergency session. The grant's trust
  requires ``sts:RoleSessionName`` to equal the person's user id, so SESSION is the person and TIER
  the tier they were granted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from breakglass.lambdas.approvals.store import Enrollment
from breakglass.policies.naming import EMERGENCY_ROLE_PREFIX
from breakglass.validation import USER_ID

_USER_ARN: Final = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):user/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]+)"
)
_ROLE_ARN: Final = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)")
_SESSION_ARN: Final = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[\w+=,.@-]+)/(?P<session>[\w+=,.@-]+)"
)


class NotAuthenticated(PermissionError):
    """The request carries no verified caller (the route is not IAM-authorized, or was bypassed)."""


class UnknownCaller(PermissionError):
    """AWS verified the caller, but no enrolled person matches them (the message says why)."""


@dataclass(frozen=True)
class Caller:
    """The verified caller of an IAM-authorized route."""

    arn: str  # userArn as API Gateway reports it
    account: str
    principal_arn: str  # the IAM user, or the role a session belongs to
    name: str  # the IAM user name, or the role session name
    session: bool  # an assumed-role session

    @property
    def emergency_tier(self) -> str | None:
        """The tier when this is an emergency role session, else None."""
        if not self.session:
            return None
        role = self.principal_arn.rsplit("/", 1)[-1]
        return role[len(EMERGENCY_ROLE_PREFIX) :] if role.startswith(EMERGENCY_ROLE_PREFIX) else None


def parse_caller_arn(arn: str) -> Caller:
    """A Caller from a verified ARN; :class:`NotAuthenticated` if it is no user or role session."""
    if m := _USER_ARN.fullmatch(arn):
        return Caller(arn=arn, account=m["account"], principal_arn=arn, name=m["name"], session=False)
    if m := _SESSION_ARN.fullmatch(arn):
        role_arn = f"arn:{m['partition']}:iam::{m['account']}:role/{m['role']}"
        return Caller(arn=arn, account=m["account"], principal_arn=role_arn, name=m["session"], session=True)
    raise NotAuthenticated(f"callers must be IAM users or role sessions, not {arn[:200]!r}")


def caller_from_event(event: Mapping[str, Any]) -> Caller:
    """The caller API Gateway verified for this request (payload format 2.0)."""
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    iam = authorizer.get("iam") if isinstance(authorizer, Mapping) else None
    arn = iam.get("userArn") if isinstance(iam, Mapping) else None
    if not isinstance(arn, str) or not arn:
        raise NotAuthenticated("this route needs AWS credentials: sign the request (SigV4)")
    return parse_caller_arn(arn)


class EnrollmentLookup(Protocol):
    def get_enrollment(self, user: str) -> Enrollment | None: ...


def person_of(store: EnrollmentLookup, caller: Caller) -> Enrollment:
    """The enrolled person the verified caller is; :class:`UnknownCaller` if there is none."""
    if caller.emergency_tier is not None:
        raise UnknownCaller(
            "an emergency session cannot act as a person here: use your own credentials "
            "(the ones you requested access with)"
        )
    if not re.fullmatch(USER_ID, caller.name):
        raise UnknownCaller(f"{caller.arn} does not name an enrolled person")
    enrollment = store.get_enrollment(caller.name)
    if enrollment is None:
        raise UnknownCaller(
            f"{caller.name!r} is not enrolled: ask security to enroll you (your user id must be your "
            f"{'role session name' if caller.session else 'IAM user name'})"
        )
    if not _same_principal(enrollment.principal_arn, caller):
        raise UnknownCaller(
            f"{caller.name!r} is enrolled with principal {enrollment.principal_arn}, "
            f"but this request was signed by {caller.arn}"
        )
    return enrollment


def _same_principal(enrolled: str, caller: Caller) -> bool:
    """Whether the enrolled principal is the caller's. A session's ARN names its role without
    the role's path (IAM Identity Center roles live under ``aws-reserved/sso.amazonaws.com/``),
    so a role is matched by account and name, which IAM keeps unique within an account."""
    if enrolled in (caller.principal_arn, caller.arn):
        return True
    if not caller.session:
        return False
    m = _ROLE_ARN.fullmatch(enrolled)
    if m is None:
        return False
    return m.group(1) == caller.account and m.group(2) == caller.principal_arn.rsplit("/", 1)[-1]


def emergency_person(caller: Caller) -> tuple[str, str]:
    """(tier, user) of an emergency session; :class:`UnknownCaller` for any other caller."""
    tier = caller.emergency_tier
    if tier is None:
        raise UnknownCaller(
            f"{caller.arn} is not an emergency session: assume the tier's role first "
            "(breakglass assume REQUEST_ID)"
        )
    if not re.fullmatch(USER_ID, caller.name):
        raise UnknownCaller(f"the session name of {caller.arn} is not a user id")
    return tier, caller.name
