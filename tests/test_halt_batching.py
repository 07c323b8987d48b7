"""deny-invoke batched per invoker role: one write per page, not per target, and every guarantee kept.

Runs against moto through :class:`iam_quotas.QuotaIam`, which refuses what IAM refuses (a role's
inline policies over 10,240 characters together) and counts every call, so a test can say how many
writes a halt made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from iam_quotas import QuotaIam
from moto import mock_aws

from breakglass.lambdas.audit.events import AuditEvent, AuditWriter, parse_record
from breakglass.lambdas.halt.service import HaltClients, halt, resume
from breakglass.policies.documents import policy_size
from breakglass.policies.halt import (
    DENY_PAGE_MAX_CHARS,
    HALT_POLICY_PREFIX,
    HaltTarget,
    deny_invoke_statements,
    deny_page_name,
    deny_pages,
    deny_sid,
    deny_sid_owner,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "audit-bucket"
WHERE = {"partition": "aws", "region": REGION, "account": ACCOUNT}
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
APP_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": "*"}],
}


def endpoint_targets(prefix: str, count: int, *roles: str) -> list[HaltTarget]:
    return [
        HaltTarget.parse(
            "target",
            {
                "id": f"{prefix}-{i:03d}",
                "endpoint_name": f"{prefix}-endpoint-{i}",
                "invoker_roles": list(roles),
            },
        )
        for i in range(count)
    ]


@dataclass
class World:
    iam: QuotaIam
    s3: Any
    clients: HaltClients
    writer: AuditWriter

    def role(self, name: str, app_policy: dict[str, Any] = APP_POLICY) -> None:
        self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
        self.iam.put_role_policy(
            RoleName=name, PolicyName="app-access", PolicyDocument=json.dumps(app_policy)
        )
        self.iam.calls.clear()  # count only what the halt and resume do

    def pages(self, role: str) -> dict[str, list[dict[str, Any]]]:
        names = self.iam.list_role_policies(RoleName=role)["PolicyNames"]
        return {
            n: self.iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]["Statement"]
            for n in sorted(names)
            if n.startswith(HALT_POLICY_PREFIX)
        }

    def denied(self, role: str) -> list[str]:
        """The target ids the role's halt pages deny, sorted (duplicates kept, to see them)."""
        return sorted(
            owner
            for statements in self.pages(role).values()
            for s in statements
            if (owner := deny_sid_owner(s["Sid"])) is not None
        )

    def puts(self) -> int:
        return self.iam.calls.get("put_role_policy", 0)

    def events(self) -> list[AuditEvent]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="breakglass-events/").get("Contents", [])
        return [
            parse_record(json.loads(self.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()))
            for o in listed
        ]


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        iam = QuotaIam(boto3.client("iam"))
        clients = HaltClients(iam=iam, sagemaker=None, s3=s3, account_id=ACCOUNT, region=REGION)
        yield World(iam, s3, clients, AuditWriter(s3=s3, bucket=BUCKET))


def outcomes(result: dict[str, Any]) -> dict[str, str]:
    return {r["target"]: r["outcome"] for r in result["results"]}


def run(world: World, action: Callable[..., dict[str, Any]], targets: list[HaltTarget], **kw: Any) -> Any:
    return action(world.clients, world.writer, targets, "deny-invoke", actor="alice", reason="r", **kw)


# ----- batching -------------------------------------------------------------------------------


def test_twelve_targets_on_one_invoker_role_are_denied_with_one_policy_write(world: World) -> None:
    world.role("app")
    targets = endpoint_targets("chat", 12, "app")

    result = run(world, halt, targets)

    assert set(outcomes(result).values()) == {"halted"}
    assert world.puts() == 1
    (page,) = world.pages("app")
    assert page == deny_page_name([t.id for t in targets])
    assert world.denied("app") == [t.id for t in targets]
    assert sorted(world.iam.list_role_policies(RoleName="app")["PolicyNames"]) == ["app-access", page]
    # Each target still reports its own action, naming the page that denies it.
    assert {r["details"]["actions"][0]["policy"] for r in result["results"]} == {page}
    # And each target still gets its own audit event, once.
    assert sorted(e.target or "" for e in world.events()) == [t.id for t in targets]


def test_a_target_denied_alone_keeps_the_policy_name_it_always_had(world: World) -> None:
    world.role("app")
    (chat,) = endpoint_targets("chat", 1, "app")
    run(world, halt, [chat])
    assert list(world.pages("app")) == [f"breakglass-halt-{chat.id}"]


def test_targets_beyond_a_page_are_split_into_pages_named_the_same_whatever_the_order(world: World) -> None:
    world.role("forward")
    world.role("backward")
    targets = endpoint_targets("model", 40, "forward")
    backwards = [HaltTarget.parse("t", {**t.to_spec(), "invoker_roles": ["backward"]}) for t in targets][::-1]

    run(world, halt, targets)
    run(world, halt, backwards)

    pages = world.pages("forward")
    assert len(pages) >= 2
    assert world.puts() == 2 * len(pages)  # one write per page, per role
    assert list(world.pages("backward")) == list(pages)
    for statements in pages.values():
        assert policy_size({"Version": "2012-10-17", "Statement": statements}) <= DENY_PAGE_MAX_CHARS
    assert world.denied("forward") == sorted(t.id for t in targets)


def test_pages_pack_whole_targets_in_order_and_a_target_larger_than_a_page_gets_its_own() -> None:
    big = HaltTarget.parse(
        "t",
        {
            "id": "big",
            "bedrock_arns": [
                f"arn:aws:bedrock:us-east-1::foundation-model/vendor.model-{i}" for i in range(80)
            ],
            "invoker_roles": ["r"],
        },
    )
    small = endpoint_targets("small", 3, "r")
    chosen = [small[0], big, small[1], small[2]]

    pages = deny_pages([(t.id, deny_invoke_statements(t, **WHERE)) for t in chosen])

    assert [p.target_ids for p in pages] == [(small[0].id,), ("big",), (small[1].id, small[2].id)]
    assert policy_size(pages[1].document) > DENY_PAGE_MAX_CHARS  # IAM has the last word on it
    assert [p.name for p in pages] == [
        f"breakglass-halt-{small[0].id}",
        "breakglass-halt-big",
        deny_page_name([small[1].id, small[2].id]),
    ]


def test_the_roles_are_written_concurrently_one_batch_each(world: World) -> None:
    roles = [f"app-{i}" for i in range(20)]
    for role in roles:
        world.role(role)
    targets = [t for i, role in enumerate(roles) for t in endpoint_targets(f"m{i}", 5, role)]

    result = run(world, halt, targets, max_workers=8)

    assert result["status"] == "ok" and len(result["results"]) == 100
    assert world.puts() == 20
    assert all(
        world.denied(role) == sorted(t.id for t in targets[i * 5 : i * 5 + 5]) for i, role in enumerate(roles)
    )


def test_a_target_on_two_roles_reports_both_and_is_recorded_once(world: World) -> None:
    world.role("api")
    world.role("batch")
    targets = endpoint_targets("chat", 3, "api", "batch")

    result = run(world, halt, targets)

    assert world.puts() == 2
    for target in result["results"]:
        assert [(a["role"], a["changed"]) for a in target["details"]["actions"]] == [
            ("api", True),
            ("batch", True),
        ]
    assert len(world.events()) == 3


# ----- resume ---------------------------------------------------------------------------------


def test_resuming_some_targets_of_a_shared_page_removes_only_theirs(world: World) -> None:
    world.role("app")
    targets = endpoint_targets("chat", 6, "app")
    run(world, halt, targets)
    (page,) = world.pages("app")

    back = run(world, resume, targets[:2])

    assert outcomes(back) == {targets[0].id: "resumed", targets[1].id: "resumed"}
    assert world.denied("app") == [t.id for t in targets[2:]]
    assert list(world.pages("app")) == [page]  # rewritten in place, the others still denied
    assert world.iam.get_role_policy(RoleName="app", PolicyName="app-access")["PolicyDocument"] == APP_POLICY

    rest = run(world, resume, targets)
    assert outcomes(rest) == {**{t.id: "noop" for t in targets[:2]}, **{t.id: "resumed" for t in targets[2:]}}
    assert world.iam.list_role_policies(RoleName="app")["PolicyNames"] == ["app-access"]


def test_resume_after_two_halts_removes_the_target_from_every_page_that_denies_it(world: World) -> None:
    world.role("app")
    first = endpoint_targets("chat", 3, "app")
    run(world, halt, first[:2])
    run(world, halt, first)  # first[2] goes to a page of its own; the others are already denied

    assert len(world.pages("app")) == 2
    run(world, resume, first[1:])

    assert world.denied("app") == [first[0].id]


def test_a_statement_in_a_halt_page_that_names_no_resumed_target_is_never_removed(world: World) -> None:
    world.role("app")
    targets = endpoint_targets("chat", 2, "app")
    run(world, halt, targets)
    (page,) = world.pages("app")
    foreign = {"Sid": "SomebodyElses", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    statements = [*world.pages("app")[page], foreign]
    world.iam.put_role_policy(
        RoleName="app",
        PolicyName=page,
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )

    run(world, resume, targets)

    assert world.pages("app") == {page: [foreign]}


def test_a_page_written_before_batching_is_resumed_and_rewritten_as_its_target(world: World) -> None:
    world.role("app")
    (chat,) = endpoint_targets("chat", 1, "app")
    legacy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BreakGlassHaltSageMakerEndpoint",
                "Effect": "Deny",
                "Action": ["sagemaker:InvokeEndpoint*"],
                "Resource": "*",
            }
        ],
    }
    name = f"breakglass-halt-{chat.id}"
    world.iam.put_role_policy(RoleName="app", PolicyName=name, PolicyDocument=json.dumps(legacy))

    assert outcomes(run(world, halt, [chat])) == {chat.id: "halted"}  # now with its marked Sid
    assert world.denied("app") == [chat.id]
    world.iam.put_role_policy(RoleName="app", PolicyName=name, PolicyDocument=json.dumps(legacy))

    assert outcomes(run(world, resume, [chat])) == {chat.id: "resumed"}
    assert world.pages("app") == {}


# ----- failures, retries, records -------------------------------------------------------------


class RefusingPuts:
    """IAM whose PutRolePolicy on one role is refused (AccessDenied)."""

    def __init__(self, iam: Any, role: str) -> None:
        self._iam = iam
        self._role = role

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iam, name)

    def put_role_policy(self, **kwargs: Any) -> Any:
        if kwargs["RoleName"] == self._role:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "PutRolePolicy")
        return self._iam.put_role_policy(**kwargs)


def test_a_failed_write_for_one_role_fails_its_targets_and_halts_the_others(world: World) -> None:
    world.role("api")
    world.role("batch")
    api = endpoint_targets("api", 3, "api")
    batch = endpoint_targets("batch", 2, "batch")
    clients = HaltClients(
        iam=RefusingPuts(world.iam, "batch"), sagemaker=None, s3=world.s3, account_id=ACCOUNT, region=REGION
    )

    result = halt(clients, world.writer, [*api, *batch], "deny-invoke", actor="a", reason="r")

    assert result["status"] == "partial"
    assert outcomes(result) == {**{t.id: "halted" for t in api}, **{t.id: "error" for t in batch}}
    for failed in result["results"][3:]:
        assert failed["error"] == "batch: AccessDenied: not allowed"
        assert failed["changed"] is False
    assert sorted((e.target, e.outcome) for e in world.events()) == sorted(
        [*((t.id, "succeeded") for t in api), *((t.id, "failed") for t in batch)]
    )
    assert world.denied("api") == [t.id for t in api]


def test_a_role_near_its_inline_quota_halts_the_pages_that_fit_and_reports_the_rest(world: World) -> None:
    bulky = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::bucket-{i:04d}/*"}
            for i in range(40)
        ],
    }
    world.role("app", bulky)  # about 3,800 of the role's 10,240 characters
    targets = endpoint_targets("model", 40, "app")

    result = run(world, halt, targets)

    halted = [r["target"] for r in result["results"] if r["outcome"] == "halted"]
    refused = [r for r in result["results"] if r["outcome"] == "error"]
    assert halted and refused and result["status"] == "partial"
    assert world.denied("app") == sorted(halted)
    assert all(r["error"].startswith("app: LimitExceeded") for r in refused)


def test_a_retried_halt_writes_nothing_and_records_each_target_once_per_call(world: World) -> None:
    world.role("app")
    targets = endpoint_targets("chat", 5, "app")
    run(world, halt, targets)
    writes = world.puts()

    again = run(world, halt, [*targets, targets[0]])  # a retry, naming one target twice

    assert world.puts() == writes
    assert outcomes(again) == {t.id: "noop" for t in targets}
    assert len(again["results"]) == 5
    events = [(e.target, e.outcome) for e in world.events()]
    assert sorted(events) == sorted(
        [*((t.id, "succeeded") for t in targets), *((t.id, "noop") for t in targets)]
    )


def test_two_halts_racing_on_one_role_keep_both_denies(world: World) -> None:
    world.role("app")
    targets = endpoint_targets("chat", 3, "app")
    racing = {"done": False}

    class Racing:
        """The second halt reads and writes between the first halt's read and its write."""

        def __getattr__(self, name: str) -> Any:
            return getattr(world.iam, name)

        def put_role_policy(self, **kwargs: Any) -> Any:
            if not racing["done"]:
                racing["done"] = True
                run(world, halt, targets[:1])
            return world.iam.put_role_policy(**kwargs)

    clients = HaltClients(iam=Racing(), sagemaker=None, s3=world.s3, account_id=ACCOUNT, region=REGION)
    halt(clients, world.writer, targets, "deny-invoke", actor="a", reason="r")

    assert sorted(set(world.denied("app"))) == [t.id for t in targets]


# ----- names come from the declared ids, never from caller text --------------------------------


def test_sids_and_page_names_come_only_from_declared_ids() -> None:
    assert (
        deny_sid("BreakGlassHaltSageMakerEndpoint", "chat-eu-1")
        == "BreakGlassHaltSageMakerEndpointOfchatXeuX1"
    )
    assert deny_sid_owner("BreakGlassHaltSageMakerEndpointOfchatXeuX1") == "chat-eu-1"
    for text in ("Chat", "chat.x", "chat*", "", "a" * 41):
        with pytest.raises(ValueError):
            deny_sid("BreakGlassHaltSageMakerEndpoint", text)
    for sid in ("BreakGlassHaltSageMakerEndpoint", "AllowAll", None, "BreakGlassHaltOfX"):
        assert deny_sid_owner(sid) is None
    # A shared page's name holds a '.', which no target id can: it never names a single target's page.
    assert "." in deny_page_name(["a", "b"]).removeprefix(HALT_POLICY_PREFIX)
    assert deny_page_name(["a", "b"]) == deny_page_name(["a", "b"]) != deny_page_name(["a", "c"])


def test_halt_and_resume_touch_no_inline_policy_of_the_role_but_their_pages(world: World) -> None:
    world.role("app")
    own = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:*", "Resource": "*"}]}
    world.iam.put_role_policy(RoleName="app", PolicyName="breakglass-halted", PolicyDocument=json.dumps(own))
    targets = endpoint_targets("chat", 4, "app")

    run(world, halt, targets)
    run(world, resume, targets)

    assert sorted(world.iam.list_role_policies(RoleName="app")["PolicyNames"]) == [
        "app-access",
        "breakglass-halted",
    ]
    assert world.iam.get_role_policy(RoleName="app", PolicyName="breakglass-halted")["PolicyDocument"] == own


# ----- scp: one SCP per set of accounts, one attach per account ---------------------------------


class Counting:
    """A client that counts its calls by operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def counted(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(**kwargs)

        return counted

    def writes(self) -> dict[str, int]:
        kinds = ("create_policy", "update_policy", "attach_policy", "detach_policy")
        return {k: v for k, v in self.calls.items() if k in kinds}


@dataclass
class Org:
    world: World
    client: Counting
    clients: HaltClients
    ou: str
    account: str

    def attached(self, where: str) -> dict[str, list[str]]:
        """The halt SCPs attached to ``where``: their names and the targets their Sids name."""
        found: dict[str, list[str]] = {}
        listed = self.client._client.list_policies_for_target(TargetId=where, Filter="SERVICE_CONTROL_POLICY")
        for summary in listed["Policies"]:
            if summary["Name"].startswith(HALT_POLICY_PREFIX):
                content = json.loads(
                    self.client._client.describe_policy(PolicyId=summary["Id"])["Policy"]["Content"]
                )
                found[summary["Name"]] = sorted(
                    o for s in content["Statement"] if (o := deny_sid_owner(s["Sid"])) is not None
                )
        return found


@pytest.fixture
def org(world: World) -> Org:
    raw = boto3.client("organizations", region_name=REGION)
    raw.create_organization(FeatureSet="ALL")
    root = raw.list_roots()["Roots"][0]["Id"]
    ou = raw.create_organizational_unit(ParentId=root, Name="ai")["OrganizationalUnit"]["Id"]
    account = raw.create_account(AccountName="ml", Email="ml@example.com")["CreateAccountStatus"]["AccountId"]
    client = Counting(raw)
    clients = HaltClients(
        iam=world.iam, sagemaker=None, s3=world.s3, account_id=ACCOUNT, region=REGION, organizations=client
    )
    return Org(world, client, clients, ou, account)


def scp_targets(prefix: str, count: int, *where: str) -> list[HaltTarget]:
    return [
        HaltTarget.parse(
            "t",
            {
                "id": f"{prefix}-{i}",
                "bedrock_arns": [f"arn:aws:bedrock:us-east-1::foundation-model/vendor.{prefix}-{i}"],
                "modes": ["scp"],
                "scp_target_ids": list(where),
            },
        )
        for i in range(count)
    ]


def scp(org: Org, action: Callable[..., dict[str, Any]], targets: list[HaltTarget]) -> dict[str, Any]:
    return action(org.clients, org.world.writer, targets, "scp", actor="sec", reason="r")


def test_scp_targets_of_the_same_accounts_share_one_scp_attached_once_per_account(org: Org) -> None:
    targets = scp_targets("m", 6, org.ou, org.account)

    result = scp(org, halt, targets)

    assert set(outcomes(result).values()) == {"halted"}
    assert org.client.writes() == {"create_policy": 1, "attach_policy": 2}
    name = deny_page_name([t.id for t in targets])
    assert org.attached(org.ou) == org.attached(org.account) == {name: [t.id for t in targets]}
    for target in result["results"]:
        assert [a["action"] for a in target["details"]["actions"]] == [
            "create-scp",
            "attach-scp",
            "attach-scp",
        ]


def test_scp_targets_of_other_accounts_get_their_own_scp(org: Org) -> None:
    both = scp_targets("both", 2, org.ou, org.account)
    ou_only = scp_targets("ou", 2, org.ou)

    scp(org, halt, [*both, *ou_only])

    assert org.client.writes() == {"create_policy": 2, "attach_policy": 3}
    assert sorted(o for owners in org.attached(org.ou).values() for o in owners) == sorted(
        t.id for t in [*both, *ou_only]
    )
    assert [o for owners in org.attached(org.account).values() for o in owners] == [t.id for t in both]


def test_a_retried_scp_halt_writes_nothing(org: Org) -> None:
    targets = scp_targets("m", 3, org.ou, org.account)
    scp(org, halt, targets)
    before = org.client.writes()

    again = scp(org, halt, targets)

    assert org.client.writes() == before
    assert outcomes(again) == {t.id: "noop" for t in targets}


def test_resuming_some_scp_targets_rewrites_their_scp_and_the_rest_stay_denied(org: Org) -> None:
    targets = scp_targets("m", 4, org.ou, org.account)
    scp(org, halt, targets)
    name = deny_page_name([t.id for t in targets])

    back = scp(org, resume, targets[:1])

    assert outcomes(back) == {targets[0].id: "resumed"}
    assert org.attached(org.ou) == {name: [t.id for t in targets[1:]]}

    rest = scp(org, resume, targets)
    assert outcomes(rest) == {targets[0].id: "noop", **{t.id: "resumed" for t in targets[1:]}}
    assert org.attached(org.ou) == org.attached(org.account) == {}


def test_a_resumed_scp_is_reattached_only_when_every_target_it_holds_is_halted_again(org: Org) -> None:
    targets = scp_targets("m", 2, org.ou)
    scp(org, halt, targets)
    scp(org, resume, targets)

    scp(org, halt, targets[:1])  # the old SCP still holds both: a new one, for this target only

    assert org.attached(org.ou) == {f"breakglass-halt-{targets[0].id}": [targets[0].id]}
    scp(org, halt, targets)
    assert sorted(o for owners in org.attached(org.ou).values() for o in owners) == [
        targets[0].id,
        targets[0].id,
        targets[1].id,
    ]


def test_an_scp_shared_with_another_target_is_never_attached_where_that_target_was_not_declared(
    org: Org,
) -> None:
    first, other = scp_targets("m", 2, org.ou)
    scp(org, halt, [first, other])
    # The stack now declares the first target for the account too (a redeploy between halts).
    (wider,) = [HaltTarget.parse("t", {**first.to_spec(), "scp_target_ids": [org.ou, org.account]})]

    result = scp(org, halt, [wider])

    assert outcomes(result) == {first.id: "halted"}
    assert org.attached(org.account) == {f"breakglass-halt-{first.id}": [first.id]}  # not the other
