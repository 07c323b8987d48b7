"""How many grants per hour one tier sustains: guard storage measured, not only computed.

Each grant keeps one guard on its tier's role until expiry + the role's longest session + the prune
margin (an early revoke rewrites that guard in place, so revokes cost nothing). Guards live in the
role's inline guard policy and then in managed guard pages; a grant is refused only when every one
is full of live guards. This drives :func:`breakglass.lambdas.access.grants.grant` and ``revoke``
against moto's IAM, behind ``tests/iam_quotas.QuotaIam`` (AWS's size and attachment quotas, which
moto does not enforce), on a simulated clock, and prints per tier setting:

- guards held inline and with overflow pages: fill a fresh role (grant + early revoke, one second
  apart) until the first refusal, then count the statements on the role;
- guard lifetime: the longest time a guard was seen on the role, from the write that added it to
  the write that pruned it, during the sustained run;
- sustained grants + early revokes per hour: evenly spaced at the rate ``guard_capacity`` gives,
  for one guard lifetime and a little more (after one lifetime every later moment looks the same),
  never refused; at one more per hour, refused (both runs shown);
- safe per-tier hourly limit: the whole allowance at one instant, every hour on the hour (the worst
  timing a sliding one-hour limit allows) for as many hours as a guard lives, plus one: never
  refused; one more per hour: refused.

It also prints the trust policy characters one grant takes, per principal and id length, and
whether two concurrent grants fit the default 2,048-character trust quota.

Ids are the worst case unless ``--ids typical``: 40-character request ids and 64-character user
ids (typical: 20 and 12). Every figure the computation gives is checked against the measurement.

    .venv/bin/python benchmarks/grant_capacity.py [--ids worst|typical]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

# The quota-enforcing IAM wrapper is a test helper: the benchmark measures what the tests assume.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from iam_quotas import QuotaIam

from breakglass.contracts import iso
from breakglass.lambdas.access.grants import Grant, GrantError, Tier, grant, revoke
from breakglass.lambdas.audit.events import AuditWriter
from breakglass.policies.documents import policy_size
from breakglass.policies.emergency_role import (
    GUARD_POLICY_NAME,
    TRUST_POLICY_MAX_CHARS,
    GuardCapacity,
    grant_trust_statements,
    guard_capacity,
    guard_page_arn,
    locked_trust_policy,
    trust_policy,
)
from breakglass.policies.naming import emergency_role_name

ACCOUNT = "123456789012"
REQUESTER = f"arn:aws:iam::{ACCOUNT}:role/oncall"
BUCKET = "audit"
START = datetime(2030, 1, 1, tzinfo=UTC)
SSO_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Oncall_0123456789abcdef"
IAM_USER = f"arn:aws:iam::{ACCOUNT}:user/alice"


@dataclass(frozen=True)
class Setting:
    label: str
    window_seconds: int
    session_seconds: int
    own_inline_chars: int  # the tier's own inline policies
    own_managed: int  # managed policies the tier attaches itself


SETTINGS = (
    Setting("window 1 h, session 1 h, 1 own managed policy", 3600, 3600, 0, 1),
    Setting("window 4 h, session 1 h, 1 own managed policy", 4 * 3600, 3600, 0, 1),
    Setting("window 1 h, session 1 h, 6,144 chars own inline, 3 own managed", 3600, 3600, 6144, 3),
)


@dataclass
class Ids:
    request_id_chars: int
    user_id_chars: int

    def request_id(self, k: int) -> str:
        return f"{k:0{self.request_id_chars}d}"

    def user(self) -> str:
        return "u" * self.user_id_chars


class Role:
    """One tier's role in a fresh moto account, and a simulated clock to drive it with."""

    def __init__(self, setting: Setting, ids: Ids) -> None:
        self.setting = setting
        self.ids = ids
        name = emergency_role_name("bench")
        self.tier = Tier(
            name="bench",
            role_name=name,
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
            max_session_seconds=setting.session_seconds,
            max_window_seconds=setting.window_seconds,
            require_mfa=False,
            allowed_requesters=(REQUESTER,),
        )
        self.tiers = {"bench": self.tier}
        self.iam = QuotaIam(boto3.client("iam", region_name="us-east-1"))
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        self.writer = AuditWriter(s3=s3, bucket=BUCKET)
        self.iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(locked_trust_policy()),
            MaxSessionDuration=setting.session_seconds,
        )
        if setting.own_inline_chars:
            self._own_inline(setting.own_inline_chars)
        for i in range(setting.own_managed):
            arn = self.iam.create_policy(
                PolicyName=f"own-{i}",
                PolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                    }
                ),
            )["Policy"]["Arn"]
            self.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        self.next_id = 0
        self.first_seen: dict[str, datetime] = {}
        self.longest_seen = timedelta(0)

    def _own_inline(self, chars: int) -> None:
        document: dict[str, Any] = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": ""}],
        }
        document["Statement"][0]["Resource"] = "arn:aws:s3:::" + "x" * (chars - policy_size(document) - 13)
        self.iam.put_role_policy(
            RoleName=self.tier.role_name, PolicyName="own", PolicyDocument=json.dumps(document)
        )

    def cycle(self, at: datetime, *, observe: bool = False) -> bool:
        """A request for the longest window, granted and revoked early at ``at``; False if refused."""
        g = Grant(
            request_id=self.ids.request_id(self.next_id),
            tier="bench",
            requester_arn=REQUESTER,
            source_identity=self.ids.user(),
            starts_at=at,
            expires_at=at + timedelta(seconds=self.setting.window_seconds),
        )
        self.next_id += 1
        try:
            grant(self.iam, self.writer, self.tiers, g, now=at)
        except GrantError as exc:
            if exc.field != "guards":
                raise
            return False
        revoke(self.iam, self.writer, self.tiers, g, early=True, actor="bench", now=at)
        if observe:
            self._observe(at)
        return True

    def guards(self) -> tuple[list[str], list[str]]:
        """(inline guard Sids, guard page Sids) on the role now."""
        inline: list[str] = []
        if GUARD_POLICY_NAME in self.iam.list_role_policies(RoleName=self.tier.role_name)["PolicyNames"]:
            document = self.iam.get_role_policy(RoleName=self.tier.role_name, PolicyName=GUARD_POLICY_NAME)
            inline = [s["Sid"] for s in document["PolicyDocument"]["Statement"]]
        prefix = guard_page_arn(self.tier.role_arn, 1)[:-1]
        paged = [
            s["Sid"]
            for arn in self.iam.attached(self.tier.role_name)
            if arn.startswith(prefix)
            for s in self.iam.managed_document(arn)["Statement"]
        ]
        return inline, paged

    def pages(self) -> int:
        prefix = guard_page_arn(self.tier.role_arn, 1)[:-1]
        return sum(1 for arn in self.iam.attached(self.tier.role_name) if arn.startswith(prefix))

    def _observe(self, at: datetime) -> None:
        inline, paged = self.guards()
        present = set(inline) | set(paged)
        for sid in present:
            self.first_seen.setdefault(sid, at)
        for sid, since in list(self.first_seen.items()):
            if sid not in present:
                self.longest_seen = max(self.longest_seen, at - since)
                del self.first_seen[sid]


@contextmanager
def fresh_role(setting: Setting, ids: Ids) -> Iterator[Role]:
    with mock_aws():
        yield Role(setting, ids)


def fill(setting: Setting, ids: Ids) -> tuple[int, int, int, int]:
    """(inline guards, page guards, pages, the attached managed policies) when the role refuses."""
    with fresh_role(setting, ids) as role:
        at = START
        while role.cycle(at):
            at += timedelta(seconds=1)
        inline, paged = role.guards()
        return len(inline), len(paged), role.pages(), len(role.iam.attached(role.tier.role_name))


def sustained(
    setting: Setting, ids: Ids, per_hour: int, lifetime: int, *, observe: bool
) -> tuple[int, int, timedelta]:
    """(grants, refusals, longest guard life seen) for evenly spaced grants: one lifetime and two
    more grants, so that some guard is pruned by a later write."""
    with fresh_role(setting, ids) as role:
        count = lifetime * per_hour // 3600 + 3
        times = [START + timedelta(seconds=k * 3600 / per_hour) for k in range(count)]
        refused = sum(0 if role.cycle(at, observe=observe) else 1 for at in times)
        return count, refused, role.longest_seen


def bunched(setting: Setting, ids: Ids, per_hour: int, lifetime: int) -> tuple[int, int]:
    """(grants, refusals) for ``per_hour`` grants at one instant, every hour on the hour, for every
    hour one guard's life touches."""
    with fresh_role(setting, ids) as role:
        times = [START + timedelta(hours=h) for h in range(lifetime // 3600 + 2) for _ in range(per_hour)]
        refused = sum(0 if role.cycle(at) else 1 for at in times)
        return len(times), refused


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def capacity_of(setting: Setting, ids: Ids) -> GuardCapacity:
    return guard_capacity(
        max_window_seconds=setting.window_seconds,
        max_session_seconds=setting.session_seconds,
        other_inline_chars=setting.own_inline_chars,
        tier_managed_policies=setting.own_managed,
        request_id_chars=ids.request_id_chars,
        source_identity_chars=ids.user_id_chars,
    )


def measure(setting: Setting, ids: Ids) -> list[str]:
    computed = capacity_of(setting, ids)
    inline, paged, pages, attached = fill(setting, ids)
    if (inline, inline + paged) != (computed.inline, computed.total):
        raise SystemExit(f"{setting.label}: measured {inline}+{paged} guards, computed {computed}")
    rate = computed.sustainable_grants_per_hour
    lifetime = computed.lifetime_seconds
    grants_ok, refused_ok, longest = sustained(setting, ids, rate, lifetime, observe=True)
    grants_over, refused_over, _ = sustained(setting, ids, rate + 1, lifetime, observe=False)
    limit = computed.safe_grants_per_hour
    bunch_ok, bunch_refused_ok = bunched(setting, ids, limit, lifetime)
    bunch_over, bunch_refused_over = bunched(setting, ids, limit + 1, lifetime)
    if refused_ok or not refused_over or bunch_refused_ok or not bunch_refused_over:
        raise SystemExit(f"{setting.label}: the computed rates do not match the measurement")
    return [
        setting.label,
        f"  guards held: {inline} inline, {inline + paged} with overflow ({pages} pages; "
        f"{attached} of 10 managed policies attached when full)",
        f"  guard lifetime: {hours(computed.lifetime_seconds)} computed, longest seen "
        f"{hours(longest.total_seconds())} (writes every {3600 / rate:.0f} s)",
        f"  sustained grants + early revokes per hour: {rate} ({grants_ok} in a row, "
        f"{refused_ok} refused); {rate + 1}/h: {refused_over} of {grants_over} refused",
        f"  safe per-tier limit in any sliding hour: {limit} ({bunch_ok} bunched on the hour, "
        f"{bunch_refused_ok} refused); {limit + 1}: {bunch_refused_over} of {bunch_over} refused",
    ]


def trust_table() -> list[str]:
    """Characters one grant's two trust statements take (MFA with a maximum age: the longest)."""
    rows = [
        "trust policy per grant (two statements, MFA and MFA age; default quota 2,048, 39 for the document):"
    ]
    for principal, label in (
        (IAM_USER, "IAM user ARN (36 chars)"),
        (SSO_ROLE, f"SSO role ARN ({len(SSO_ROLE)} chars)"),
    ):
        for request_chars, user_chars in ((20, 12), (40, 27), (40, 64)):
            first, second = (
                grant_trust_statements(
                    request_id=letter * request_chars,
                    requester_arn=principal,
                    source_identity="u" * user_chars,
                    starts_at=START,
                    expires_at=START + timedelta(hours=1),
                    require_mfa=True,
                    max_mfa_age_seconds=3600,
                )
                for letter in "rs"
            )
            one = sum(policy_size(s) + 1 for s in first)
            two = policy_size(trust_policy([*first, *second]))
            fits = "fits" if two <= TRUST_POLICY_MAX_CHARS else "needs the 4,096 quota"
            rows.append(
                f"  {label}, request id {request_chars}, user id {user_chars}: {one} per grant; "
                f"two grants {two}: {fits}"
            )
    return rows


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", choices=("worst", "typical"), default="worst")
    args = parser.parse_args()
    ids = Ids(40, 64) if args.ids == "worst" else Ids(20, 12)
    started = time.monotonic()
    print(
        f"guard capacity per tier ({args.ids} ids: {ids.request_id_chars}-character request ids, "
        f"{ids.user_id_chars}-character user ids; measured in moto with AWS's quotas, simulated clock "
        f"from {iso(START)})"
    )
    for setting in SETTINGS:
        for line in measure(setting, ids):
            print(line)
    for line in trust_table():
        print(line)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
