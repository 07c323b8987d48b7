"""Revocation lag at expiry and after an early revoke: zero by construction, shown by evaluation.

examples/quickstart is deployed into the emulator (IAM enforced). A responder is granted the
auto-approved ``halt`` tier, assumes the emergency role through ``breakglass assume`` (the
session is issued before anything ends) and makes an STS call with it. Then the role's documents
as IAM holds them (trust policy, inline and attached policies, permission boundary) are
evaluated with the emulator's IAM evaluator (:mod:`breakglass.local.iam_conditions`, on the
request context :mod:`breakglass.local.iam_enforcement` builds for that very session), at:

- expiry - 1 s and expiry + 1 s, with the documents as the grant wrote them (nothing has run at
  expiry yet: the trust's ``DateLessThan`` and the guard's ``DateGreaterThan`` do the work);
- for a second grant revoked early: revoke - 1 s with the documents before ``breakglass revoke``
  and revoke + 1 s with the documents after it (the guard rewritten into its ``TokenIssueTime``
  form, the trust statements removed).

Two questions each time: may the responder assume the role again (``sts:AssumeRole`` against the
trust policy), and may the session issued before act (``--action`` on ``--resource``)? The lag is
the time between the moment and the first second at which both answers are *denied*; a row that
says allowed at +1 s would be a lag of at least a second. It is deterministic: no waiting, no
timing; the figure is the evaluation itself.

    .venv/bin/python benchmarks/revocation_lag.py [--action sagemaker:DescribeEndpoint]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from breakglass.contracts import iso, parse_iso, utc_now
from breakglass.local.iam_conditions import Decision, policy_decision
from breakglass.local.iam_enforcement import principal_for, request_context
from breakglass.local.world import World, open_world
from breakglass.policies.naming import REQUEST_ID_SESSION_TAG

TIER = "halt"
ROLE = f"breakglass-emergency-{TIER}"
REASON = "benchmark: revocation lag at expiry and after early revoke"
MFA = ["--mfa-serial", "arn:aws:iam::000000000000:mfa/responder", "--mfa-code", "123456"]
SECOND = timedelta(seconds=1)


def _document(value: Any) -> dict[str, Any]:
    return dict(json.loads(value) if isinstance(value, str) else value)


def role_documents(world: World) -> dict[str, Any]:
    """The role's trust, identity policies (inline and attached) and boundary, as IAM holds them now."""
    iam = world.emulator.client("iam")
    role = iam.get_role(RoleName=ROLE)["Role"]
    identity = [
        _document(iam.get_role_policy(RoleName=ROLE, PolicyName=name)["PolicyDocument"])
        for name in iam.list_role_policies(RoleName=ROLE)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        found = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)
        identity.append(_document(found["PolicyVersion"]["Document"]))
    boundary = None
    if role.get("PermissionsBoundary"):
        arn = role["PermissionsBoundary"]["PermissionsBoundaryArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        boundary = _document(
            iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        )
    return {
        "arn": role["Arn"],
        "trust": _document(role["AssumeRolePolicyDocument"]),
        "identity": identity,
        "boundary": boundary,
    }


def _at(context: Mapping[str, list[str]], moment: datetime) -> dict[str, list[str]]:
    moved = dict(context)
    moved["aws:currenttime"] = [iso(moment)]
    moved["aws:epochtime"] = [str(int(moment.timestamp()))]
    return moved


def may_assume(
    documents: Mapping[str, Any], world: World, user: str, request_id: str, moment: datetime
) -> bool:
    """``sts:AssumeRole`` as ``breakglass assume`` sends it (source identity, session name, request tag, MFA)."""
    person = world.people[user]
    caller = principal_for(person.access_key_id)
    request = {
        "RoleSessionName": user,
        "SourceIdentity": user,
        "Tags": {REQUEST_ID_SESSION_TAG: request_id},
        "SerialNumber": MFA[1],
        "TokenCode": MFA[3],
    }
    context = _at(request_context(caller, region=world.emulator.region, assume_role=request), moment)
    decision = policy_decision(
        documents["trust"],
        "sts:AssumeRole",
        documents["arn"],
        context,
        every_key,
        principal=person.arn,
    )
    return decision is Decision.ALLOW


def every_key(_: str) -> bool:
    return True


def session_may_act(
    documents: Mapping[str, Any],
    world: World,
    access_key_id: str,
    action: str,
    resource: str,
    moment: datetime,
) -> bool:
    """IAM's order for the session: any explicit deny wins; else an identity allow inside the boundary."""
    context = _at(request_context(principal_for(access_key_id), region=world.emulator.region), moment)
    # IAM knows the whole context of a real call; here a key the context lacks is absent (the
    # endpoint carries no tags), not "unknown and taken to hold" as the emulator's enforcement
    # conservatively treats keys it cannot see.
    known = every_key
    answers = [policy_decision(d, action, resource, context, known) for d in documents["identity"]]
    boundary = documents["boundary"]
    bounded = policy_decision(boundary, action, resource, context, known) if boundary else Decision.ALLOW
    if Decision.DENY in answers or bounded is Decision.DENY:
        return False
    return Decision.ALLOW in answers and bounded is Decision.ALLOW


def grant_and_assume(world: World, user: str) -> tuple[str, datetime, str]:
    """A granted halt request, a session of it (used once for an STS call): id, expiry, access key."""
    made = world.request(user, TIER, REASON, "--duration", "30m")
    if made.exit_code != 0 or made.json()["status"] != "granted":
        raise SystemExit(f"the {TIER} request was not granted: {made.stdout or made.stderr}")
    request_id = made.json()["request_id"]
    assumed = world.cli(user, "assume", request_id, "--format", "json", *MFA)
    if assumed.exit_code != 0:
        raise SystemExit(f"breakglass assume failed: {assumed.stderr}")
    credentials = assumed.json()
    sts = world.emulator.client_as(
        "sts",
        {
            "AccessKeyId": credentials["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": credentials["AWS_SECRET_ACCESS_KEY"],
            "SessionToken": credentials["AWS_SESSION_TOKEN"],
        },
    )
    if f":assumed-role/{ROLE}/{user}" not in sts.get_caller_identity()["Arn"]:
        raise SystemExit("the session is not the emergency role's")
    status = world.cli("sec", "status", request_id, "--json").json()
    return request_id, parse_iso(str(status["expires_at"])), credentials["AWS_ACCESS_KEY_ID"]


def issued_at(access_key_id: str) -> str:
    """The session's ``aws:TokenIssueTime``, as the emulator recorded it."""
    session = principal_for(access_key_id)
    if session is None or session.facts is None:
        raise SystemExit("the emulator has no record of the session")
    return iso(session.facts.issued_at)


def row(label: str, assume: bool, act: bool) -> str:
    word = {True: "allowed", False: "denied"}
    return f"  {label:<28} assume again: {word[assume]:<8} session issued before: {word[act]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--action",
        default="sagemaker:DescribeEndpoint",
        help="what the session asks to do (default: %(default)s)",
    )
    parser.add_argument(
        "--resource",
        default=None,
        help="on what ARN (default: the quickstart's endpoint chat-prod in the emulator's account)",
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)
    people = {
        "rita": ("responder",),
        "sam": ("responder",),
        "ann": ("approver",),
        "bob": ("approver",),
        "sec": ("security",),
    }
    lags: list[bool] = []
    with open_world(name="bench", people=people) as world:
        # At expiry: the documents the grant wrote, one second either side of its end.
        if args.resource is None:
            account, region = world.emulator.account_id, world.emulator.region
            args.resource = f"arn:aws:sagemaker:{region}:{account}:endpoint/chat-prod"
        request_id, expires_at, key = grant_and_assume(world, "rita")
        documents = role_documents(world)
        print(f"tier {TIER}, action {args.action} on {args.resource}")
        print(f"expiry of {request_id}: {iso(expires_at)} (session issued {issued_at(key)})")
        before = (
            may_assume(documents, world, "rita", request_id, expires_at - SECOND),
            session_may_act(documents, world, key, args.action, args.resource, expires_at - SECOND),
        )
        after = (
            may_assume(documents, world, "rita", request_id, expires_at + SECOND),
            session_may_act(documents, world, key, args.action, args.resource, expires_at + SECOND),
        )
        print(row("expiry - 1 s", *before))
        print(row("expiry + 1 s", *after))
        lags.append(before == (True, True) and after == (False, False))

        # Early revoke: the documents before the revoke at -1 s, after it at +1 s.
        request_id, _, key = grant_and_assume(world, "sam")
        documents = role_documents(world)
        revoked_at = utc_now()
        before = (
            may_assume(documents, world, "sam", request_id, revoked_at - SECOND),
            session_may_act(documents, world, key, args.action, args.resource, revoked_at - SECOND),
        )
        revoke = world.cli(
            "sam", "revoke", request_id, "--totp", world.code("sam"), "--reason", "done", "--json"
        )
        if revoke.exit_code != 0:
            raise SystemExit(f"breakglass revoke failed: {revoke.stderr}")
        revoked_at = max(revoked_at, utc_now())
        documents = role_documents(world)
        after = (
            may_assume(documents, world, "sam", request_id, revoked_at + SECOND),
            session_may_act(documents, world, key, args.action, args.resource, revoked_at + SECOND),
        )
        print(f"early revoke of {request_id}: {iso(revoked_at)} (session issued {issued_at(key)})")
        print(row("revoke - 1 s (before it)", *before))
        print(row("revoke + 1 s (after it)", *after))
        lags.append(before == (True, True) and after == (False, False))
    zero = all(lags)
    print(
        f"revocation lag: {'0 s at expiry and after early revoke' if zero else 'NOT zero (see rows above)'}"
    )
    return 0 if zero else 1


if __name__ == "__main__":
    sys.exit(main())
