"""The approval workflow's state: one DynamoDB table (KMS-encrypted at rest, TTL on ``ttl``).

Items (``pk`` / ``sk``):

- ``USER#<user>`` / ``ENROLLMENT``: who a person is, their roles, their TOTP secret encrypted
  with KMS (bound to the user by the encryption context) and the last TOTP time step they used;
- ``USER#<user>`` / ``TOTP_FAILURES#<window>``: wrong TOTP codes in one lockout window (TTL);
- ``TOKEN#<jti>`` / ``USED``: a spent approval link (expires through TTL once the link would
  be rejected as expired anyway);
- ``TOKEN#<jti>`` / ``REFUSED#<reason>``: a refusal of that link already audited (each (link,
  reason) is audited once, so even a leaked link cannot flood the locked bucket; TTL as above);
- ``REQUEST#<id>`` / ``REQUEST``: a request, its approvers, votes, status and task token.

Every state change is a conditional write, so two Lambdas (or two approvers clicking at once)
can never both win: a TOTP step is claimed once, a link is used once, a vote is counted once.
Spending a link and counting its vote is one transaction (TransactWriteItems): both or neither.
The store takes boto3 clients (``dynamodb`` and ``kms``), never creates them at import time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Protocol

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from breakglass.contracts import ENV_KMS_KEY, ENV_TABLE, STATUSES

# The component creates the table from these (one table, string hash + range keys).
TABLE_KEY_SCHEMA: Final[tuple[dict[str, str], ...]] = (
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
)
TABLE_ATTRIBUTE_DEFINITIONS: Final[tuple[dict[str, str], ...]] = (
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
)
TTL_ATTRIBUTE: Final = "ttl"


ROLES: Final = ("responder", "approver", "security")
DECISIONS: Final = ("approve", "deny")
# What votes make of a pending request: quorum reached, or any denial (final).
DECIDED_BY_VOTES: Final = ("approved", "denied")

# Encryption context binding a TOTP secret's ciphertext to its owner: a ciphertext copied onto
# another user's item fails to decrypt.
_CONTEXT_KEY: Final = "breakglass:user"
# Optimistic-concurrency retries for votes; each retry means another writer won a race.
_VOTE_ATTEMPTS: Final = 8


def same_person(a: str, b: str) -> bool:
    """Whether two user ids name one person: IAM user and role names are unique ignoring case,
    so ``Bob`` must never approve ``bob``'s request."""
    return a.casefold() == b.casefold()


class Enrollments(Protocol):
    def get_enrollment(self, user: str) -> Enrollment | None: ...


def one_person(store: Enrollments, a: str, b: str, *, b_arns: Iterable[str] = ()) -> bool:
    """Whether the enrolled user ``a`` is the person ``b`` under any name: the same user id (any
    case), or enrollments sharing an IAM principal or an email address (one person enrolled as
    an IAM user and as an SSO session, or with a second, admin identity). ``b_arns`` are further
    principals known to be ``b``'s, such as a request's ``requester_arn`` (kept when ``b``'s
    enrollment is gone). The one check behind every "not your own" rule: votes, reviews,
    waivers and the roles of an early revoke.
    """
    if same_person(a, b):
        return True
    mine = store.get_enrollment(a)
    if mine is None:
        return False
    theirs = store.get_enrollment(b)
    if theirs is not None and same_identity(mine, theirs):
        return True
    return mine.principal_arn.casefold() in {arn.casefold() for arn in b_arns}


def same_identity(a: Enrollment, b: Enrollment) -> bool:
    """Whether two enrollments (one perhaps not stored yet) are one person: the same user id,
    IAM principal or email address, in any case (what :func:`one_person` compares)."""
    return (
        same_person(a.user, b.user)
        or a.principal_arn.casefold() == b.principal_arn.casefold()
        or a.email.casefold() == b.email.casefold()
    )


def _names(user: str, people: Sequence[str]) -> bool:
    return any(same_person(user, p) for p in people)


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StoreError(RuntimeError):
    """The store could not do what was asked (the message says why)."""


class RequestNotFound(StoreError, LookupError):
    """No request with that id."""


class NotEnrolled(StoreError, LookupError):
    """No enrollment (or no TOTP secret) for that user."""


class StatusConflict(StoreError):
    """The request is not in the status the caller expected (someone else moved it)."""


class VoteRefused(StoreError):
    """A vote that does not count. ``reason`` is one of: ``not-found``, ``self-approval``,
    ``not-an-approver``, ``already-voted``, ``already-decided``, ``bad-decision``."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason)


@dataclass(frozen=True)
class Enrollment:
    user: str  # the person's id, also their sts:SourceIdentity
    principal_arn: str  # IAM principal they assume roles from
    email: str
    roles: tuple[str, ...]  # subset of ("responder", "approver", "security")


@dataclass
class RequestRecord:
    request_id: str
    requester: str
    requester_arn: str
    tier: str
    reason: str
    ticket: str | None
    duration_seconds: int
    requested_at: str  # ISO Z
    status: str  # "pending" | "approved" | "denied" | "granted" | "revoked" | "expired"
    quorum: int  # 0 = auto
    approvers: tuple[str, ...]  # who may vote (never includes the requester)
    approvals: tuple[str, ...] = ()
    denials: tuple[str, ...] = ()
    task_token: str | None = None  # the waiting Step Functions task token
    execution_arn: str | None = None
    starts_at: str | None = None  # the granted window (ISO Z), once granted
    expires_at: str | None = None
    review_opened: bool = False  # the post-event review was opened (the reconciler checks)
    review_verdict: str | None = None  # security's verdict, once recorded (the review gate reads it)
    # The window's planned start (ISO Z): a scheduled start, or for an extension the end of the
    # window it extends. None: the window opens when granted.
    start_at: str | None = None
    extends: str | None = None  # the request whose window this one extends
    extends_starts_at: str | None = None  # when the extended window opened (both windows shown)
    # For an extension, what its approvers are told of the chain (how long access already lasted):
    # when its first window opened, which window of the chain this one is, the tier's total cap.
    chain_starts_at: str | None = None
    chain_window: int | None = None
    chain_cap_seconds: int | None = None
    extended_by: str | None = None  # the latest extension asked of this request
    mailed: bool = False  # a sealed use's email was sent (a retry after an SES failure sends it)
    version: int = field(default=0, compare=False)  # optimistic-concurrency counter

    @property
    def granted_once(self) -> bool:
        """Whether a grant was ever issued for it (the window is recorded at grant time)."""
        return self.starts_at is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists instead of tuples), e.g. for a Step Functions state."""
        data = asdict(self)
        for name in ("approvers", "approvals", "denials"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestRecord:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        for name in ("approvers", "approvals", "denials"):
            values[name] = tuple(values.get(name) or ())
        values.setdefault("ticket", None)
        values["duration_seconds"] = int(values["duration_seconds"])
        values["quorum"] = int(values["quorum"])
        values["version"] = int(values.get("version") or 0)
        for name in ("chain_window", "chain_cap_seconds"):
            if values.get(name) is not None:
                values[name] = int(values[name])
        return cls(**values)


def _user_key(user: str) -> dict[str, Any]:
    return {"pk": {"S": f"USER#{user}"}, "sk": {"S": "ENROLLMENT"}}


def _failures_key(user: str, window: int) -> dict[str, Any]:
    return {"pk": {"S": f"USER#{user}"}, "sk": {"S": f"TOTP_FAILURES#{int(window)}"}}


def _token_key(jti: str) -> dict[str, Any]:
    return {"pk": {"S": f"TOKEN#{jti}"}, "sk": {"S": "USED"}}


def _refusal_key(jti: str, reason: str) -> dict[str, Any]:
    return {"pk": {"S": f"TOKEN#{jti}"}, "sk": {"S": f"REFUSED#{reason}"}}


def _request_key(request_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"REQUEST#{request_id}"}, "sk": {"S": "REQUEST"}}


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _cancelled_by_condition(exc: ClientError) -> list[bool] | None:
    """For a cancelled transaction, which of its items failed their condition; None otherwise."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    return [r.get("Code") == "ConditionalCheckFailed" for r in reasons]


# A marker item (spent link, audited refusal) may be claimed when absent or released.
_CLAIMABLE: Final = "attribute_not_exists(pk) OR released = :yes"


@dataclass(frozen=True)
class SpentLink:
    """The link a vote spends, in the same transaction that counts the vote."""

    jti: str
    ttl: int  # epoch second after which DynamoDB may delete the marker (see Store.claim_link)


def create_table(dynamodb: Any, table: str) -> None:
    """Create the table with TTL on (the emulator and tests; deployed stacks use the component)."""
    dynamodb.create_table(
        TableName=table,
        KeySchema=list(TABLE_KEY_SCHEMA),
        AttributeDefinitions=list(TABLE_ATTRIBUTE_DEFINITIONS),
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True, "SSEType": "KMS"},
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


class Store:
    """The table behind enrollments, TOTP replay state, spent links and requests.

    ``dynamodb`` is a boto3 DynamoDB client, ``kms`` a boto3 KMS client; ``kms_key_id`` is the
    key that encrypts TOTP secrets (the table itself is also encrypted at rest).
    """

    def __init__(self, dynamodb: Any, table: str, kms: Any, kms_key_id: str) -> None:
        if not table:
            raise ValueError("table: the store needs a DynamoDB table name")
        if not kms_key_id:
            raise ValueError("kms_key_id: the store needs a KMS key to encrypt TOTP secrets")
        self.dynamodb = dynamodb
        self.table = table
        self.kms = kms
        self.kms_key_id = kms_key_id

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, session: Any = None) -> Store:
        """The store a deployed function uses (table and key named by the component)."""
        env = os.environ if environ is None else environ
        table = env.get(ENV_TABLE, "")
        key = env.get(ENV_KMS_KEY, "")
        if not table or not key:
            missing = ENV_TABLE if not table else ENV_KMS_KEY
            raise RuntimeError(f"environment variable {missing} is not set: the function is misconfigured")
        boto = session or boto3
        return cls(boto.client("dynamodb"), table, boto.client("kms"), key)

    # -- enrollments -------------------------------------------------------------------------

    def put_enrollment(self, e: Enrollment, totp_secret: str) -> None:
        """Create or replace a person's enrollment; the TOTP secret is stored KMS-encrypted.

        The last used TOTP step survives re-enrollment so a code seen before stays spent.
        """
        if not totp_secret:
            raise ValueError("totp_secret: must not be empty")
        ciphertext = self.kms.encrypt(
            KeyId=self.kms_key_id,
            Plaintext=totp_secret.encode(),
            EncryptionContext={_CONTEXT_KEY: e.user},
        )["CiphertextBlob"]
        self.dynamodb.update_item(
            TableName=self.table,
            Key=_user_key(e.user),
            UpdateExpression=(
                "SET #user = :user, principal_arn = :arn, email = :email, #roles = :roles, "
                "totp_secret = :secret, enrolled_at = :now"
            ),
            ExpressionAttributeNames={"#user": "user", "#roles": "roles"},
            ExpressionAttributeValues={
                ":user": {"S": e.user},
                ":arn": {"S": e.principal_arn},
                ":email": {"S": e.email},
                ":roles": {"L": [{"S": r} for r in e.roles]},
                ":secret": {"B": ciphertext},
                ":now": {"N": str(int(time.time()))},
            },
        )

    def _enrollment_item(self, user: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=_user_key(user), ConsistentRead=True).get(
            "Item"
        )
        return dict(item) if item else None

    def get_enrollment(self, user: str) -> Enrollment | None:
        item = self._enrollment_item(user)
        if item is None:
            return None
        values = _from_item(item)
        return Enrollment(
            user=values["user"],
            principal_arn=values["principal_arn"],
            email=values["email"],
            roles=tuple(values.get("roles") or ()),
        )

    def totp_secret(self, user: str) -> str:
        """The decrypted TOTP secret; raises :class:`NotEnrolled` if the user is not enrolled."""
        item = self._enrollment_item(user)
        if item is None or "totp_secret" not in item:
            raise NotEnrolled(f"{user!r} is not enrolled")
        plaintext = self.kms.decrypt(
            CiphertextBlob=item["totp_secret"]["B"],
            KeyId=self.kms_key_id,
            EncryptionContext={_CONTEXT_KEY: user},
        )["Plaintext"]
        return bytes(plaintext).decode()

    def claim_totp_step(self, user: str, step: int) -> bool:
        """Atomically mark TOTP time step ``step`` used; True only if it is later than the last.

        Monotonic, not a set of used steps: with ``valid_window`` 1 an older code that is still
        inside the window must not be accepted after a newer one.
        """
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_user_key(user),
                UpdateExpression="SET last_totp_step = :step",
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(last_totp_step) OR last_totp_step < :step)"
                ),
                ExpressionAttributeValues={":step": {"N": str(int(step))}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def reserve_totp_attempt(self, user: str, window: int, *, limit: int, ttl: int) -> bool:
        """Atomically take one of ``limit`` attempts of lockout window ``window``; False when none
        is left. A right code gives its attempt back (:meth:`release_totp_attempt`), so only
        wrong codes use them up. Reserving before checking means concurrent guesses cannot all
        slip past the limit."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_failures_key(user, window),
                UpdateExpression="ADD failures :one SET #ttl = :ttl",
                ConditionExpression="attribute_not_exists(failures) OR failures < :limit",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(int(limit))},
                    ":ttl": {"N": str(int(ttl))},
                },
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def release_totp_attempt(self, user: str, window: int) -> None:
        """Give back an attempt taken by :meth:`reserve_totp_attempt` (the code was right)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_failures_key(user, window),
                UpdateExpression="ADD failures :minus",
                ConditionExpression="failures > :zero",
                ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    # -- approval links ------------------------------------------------------------------------

    def _claim_once(self, key: dict[str, Any], ttl: int, *, stamp: str) -> bool:
        """Put the marker ``key`` unless it exists unreleased; True only for the one writer that does."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={**key, TTL_ATTRIBUTE: {"N": str(int(ttl))}, stamp: {"N": str(int(time.time()))}},
                ConditionExpression=_CLAIMABLE,
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def claim_link(self, jti: str, ttl: int) -> bool:
        """Atomically spend link ``jti``; True the first time only.

        ``ttl`` is the epoch second after which DynamoDB may delete the marker: pass a moment
        at or after the link's own expiry, when the link is refused as expired anyway.
        """
        if not jti:
            raise ValueError("jti: must not be empty")
        return self._claim_once(_token_key(jti), ttl, stamp="used_at")

    def release_link(self, jti: str) -> None:
        """Make a spent link usable again: only when the vote it carried was taken back.

        Flagged rather than deleted: the functions' roles may put and update items, not delete.
        """
        self.dynamodb.update_item(
            TableName=self.table,
            Key=_token_key(jti),
            UpdateExpression="SET released = :yes",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

    def is_link_used(self, jti: str) -> bool:
        """Whether ``jti`` was spent (read-only: opening a link must not spend it)."""
        item = self.dynamodb.get_item(TableName=self.table, Key=_token_key(jti), ConsistentRead=True).get(
            "Item"
        )
        return bool(item) and not item.get("released", {}).get("BOOL", False)

    def claim_refusal_record(self, jti: str, reason: str, ttl: int) -> bool:
        """True the first time link ``jti`` is refused for ``reason``: only then is the refusal
        audited. ``reason`` is the package's own vocabulary, never text from a request."""
        if not jti or not reason:
            raise ValueError("jti and reason: must not be empty")
        return self._claim_once(_refusal_key(jti, reason), ttl, stamp="refused_at")

    def release_refusal_record(self, jti: str, reason: str) -> None:
        """Let the refusal be audited again: its audit write failed, so it is not on record."""
        self.dynamodb.update_item(
            TableName=self.table,
            Key=_refusal_key(jti, reason),
            UpdateExpression="SET released = :yes",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

    # -- requests ------------------------------------------------------------------------------

    def put_request(self, r: RequestRecord) -> None:
        """Store a new request; raises :class:`StoreError` if the id exists already."""
        if r.status not in STATUSES:
            raise ValueError(f"status: must be one of {', '.join(STATUSES)}, got {r.status!r}")
        if _names(r.requester, r.approvers):
            raise VoteRefused("self-approval", f"{r.requester!r} cannot approve their own request")
        values = r.to_dict()
        values["version"] = 0
        item = {**_request_key(r.request_id), **_to_item(values)}
        try:
            self.dynamodb.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise StoreError(f"request {r.request_id!r} exists already") from exc
            raise

    def get_request(self, request_id: str) -> RequestRecord | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=_request_key(request_id), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        values = _from_item(item)
        return RequestRecord.from_dict(values)

    def _require_request(self, request_id: str) -> RequestRecord:
        record = self.get_request(request_id)
        if record is None:
            raise RequestNotFound(f"request {request_id!r} not found")
        return record

    def _request_put(self, before: RequestRecord, after: RequestRecord) -> dict[str, Any]:
        """The conditional put of ``after`` over ``before`` (optimistic concurrency on version)."""
        values = after.to_dict()
        values["version"] = before.version + 1
        return {
            "TableName": self.table,
            "Item": {**_request_key(after.request_id), **_to_item(values)},
            "ConditionExpression": "#version = :version",
            "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": {":version": {"N": str(before.version)}},
        }

    def _replace_request(self, before: RequestRecord, after: RequestRecord) -> bool:
        """Write ``after`` if nobody changed the item since ``before`` was read."""
        try:
            self.dynamodb.put_item(**self._request_put(before, after))
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        after.version = before.version + 1
        return True

    def _replace_request_and_link(
        self, before: RequestRecord, after: RequestRecord, link: Mapping[str, Any]
    ) -> bool | None:
        """One transaction: ``after`` over ``before`` and the link marker ``link`` (a Put or an
        Update). True if both were written; False if the request changed meanwhile (nothing was
        written); None if the link's condition failed (nothing was written)."""
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[{"Put": self._request_put(before, after)}, link]
            )
        except ClientError as exc:
            failed = _cancelled_by_condition(exc)
            if failed is None or not any(failed):
                raise
            if len(failed) > 1 and failed[1]:
                return None
            return False
        after.version = before.version + 1
        return True

    def set_waiting(
        self,
        request_id: str,
        task_token: str,
        approvers: Sequence[str],
        *,
        execution_arn: str | None = None,
    ) -> RequestRecord:
        """Record the task token the workflow waits on and who may answer (replaces both); return
        the request as stored.

        Only a pending request can wait; the requester is never an approver. A request that votes
        already decided (approved or denied before any task waited for them) is returned as it is,
        for the caller to hand its decision to the new task.
        """
        if not task_token:
            raise ValueError("task_token: must not be empty")
        for _ in range(_VOTE_ATTEMPTS):
            record = self._require_request(request_id)
            if record.status in DECIDED_BY_VOTES:
                return record
            if record.status != "pending":
                raise StatusConflict(f"request {request_id!r} is {record.status}, not pending")
            if _names(record.requester, approvers):
                raise VoteRefused("self-approval", f"{record.requester!r} cannot approve their own request")
            updated = replace(
                record,
                task_token=task_token,
                approvers=tuple(dict.fromkeys(approvers)),
                execution_arn=execution_arn or record.execution_arn,
            )
            if self._replace_request(record, updated):
                return updated
        raise StoreError(f"request {request_id!r} kept changing; try again")

    def record_vote(
        self, request_id: str, approver: str, decision: str, *, link: SpentLink | None = None
    ) -> RequestRecord:
        """Count one vote, atomically; return the request as stored after it.

        Refused (:class:`VoteRefused`) unless the approver is one of the request's approvers, is
        not the requester, has not voted, and the request is still pending. The request becomes
        ``approved`` when the approvals reach the quorum and ``denied`` on any denial.

        With ``link``, the link is spent in the same transaction that counts the vote: both are
        written or neither (a link already spent refuses the vote with reason ``used``).
        """
        if decision not in DECISIONS:
            raise VoteRefused(
                "bad-decision", f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}"
            )
        for _ in range(_VOTE_ATTEMPTS):
            record = self.get_request(request_id)
            if record is None:
                raise VoteRefused("not-found", f"request {request_id!r} not found")
            # Checked before membership so a misconfigured approver list cannot let it through.
            if same_person(approver, record.requester):
                raise VoteRefused("self-approval", "the requester can never approve their own request")
            if approver not in record.approvers:
                raise VoteRefused("not-an-approver", f"{approver!r} is not an approver of this request")
            if approver in record.approvals or approver in record.denials:
                raise VoteRefused("already-voted", f"{approver!r} has already voted on this request")
            if record.status != "pending":
                raise VoteRefused("already-decided", f"the request is already {record.status}")
            if decision == "approve":
                approvals = (*record.approvals, approver)
                status = "approved" if len(approvals) >= record.quorum else "pending"
                updated = replace(record, approvals=approvals, status=status)
            else:
                updated = replace(record, denials=(*record.denials, approver), status="denied")
            if link is None:
                if self._replace_request(record, updated):
                    return updated
                continue
            written = self._replace_request_and_link(record, updated, self._spend(link))
            if written is None:
                raise VoteRefused("used", "this link was already used")
            if written:
                return updated
        raise StoreError(f"request {request_id!r} kept changing; try again")

    def _spend(self, link: SpentLink) -> dict[str, Any]:
        if not link.jti:
            raise ValueError("jti: must not be empty")
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **_token_key(link.jti),
                    TTL_ATTRIBUTE: {"N": str(int(link.ttl))},
                    "used_at": {"N": str(int(time.time()))},
                },
                "ConditionExpression": _CLAIMABLE,
                "ExpressionAttributeValues": {":yes": {"BOOL": True}},
            }
        }

    def retract_vote(self, after: RequestRecord, approver: str, *, link: str | None = None) -> bool:
        """Undo ``approver``'s vote, which produced ``after``, if nothing changed the request
        since; False otherwise (a later vote was counted on top of it and stands).

        For a vote whose audit record could not be written: it must not count unrecorded. With
        ``link`` (the jti the vote spent), the link is made usable again in the same transaction.
        """
        reverted = replace(
            after,
            approvals=tuple(a for a in after.approvals if a != approver),
            denials=tuple(d for d in after.denials if d != approver),
            status="pending",
        )
        if link is None:
            return self._replace_request(after, reverted)
        release = {
            "Update": {
                "TableName": self.table,
                "Key": _token_key(link),
                "UpdateExpression": "SET released = :yes",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":yes": {"BOOL": True}},
            }
        }
        written = self._replace_request_and_link(after, reverted, release)
        if written is None:
            raise StoreError(f"link {link!r} was never spent: there is no vote of it to take back")
        return written

    def set_status(self, request_id: str, status: str, *, expected: str | None = None) -> None:
        """Move a request to ``status``; with ``expected``, only from that status
        (:class:`StatusConflict` otherwise)."""
        if status not in STATUSES:
            raise ValueError(f"status: must be one of {', '.join(STATUSES)}, got {status!r}")
        names = {"#status": "status"}
        values: dict[str, Any] = {":status": {"S": status}, ":one": {"N": "1"}}
        condition = "attribute_exists(pk)"
        if expected is not None:
            condition += " AND #status = :expected"
            values[":expected"] = {"S": expected}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_request_key(request_id),
                UpdateExpression="SET #status = :status ADD #version :one",
                ConditionExpression=condition,
                ExpressionAttributeNames={**names, "#version": "version"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            current = self.get_request(request_id)
            if current is None:
                raise RequestNotFound(f"request {request_id!r} not found") from exc
            raise StatusConflict(f"request {request_id!r} is {current.status}, expected {expected}") from exc

    # -- what the workflow, the access API and the reconciler record besides votes --------------

    def _update_request(
        self,
        request_id: str,
        expression: str,
        values: dict[str, Any],
        condition: str,
        names: Mapping[str, str] | None = None,
    ) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=_request_key(request_id),
                UpdateExpression=f"{expression} ADD #version :one",
                ConditionExpression=condition,
                ExpressionAttributeNames={**(names or {}), "#version": "version"},
                ExpressionAttributeValues={**values, ":one": {"N": "1"}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def bind_execution(self, request_id: str, execution_arn: str) -> bool:
        """Tie a stored request to the one execution that runs it; False if another holds it."""
        if self._update_request(
            request_id,
            "SET execution_arn = :arn",
            {":arn": {"S": execution_arn}},
            "attribute_exists(pk) AND attribute_not_exists(execution_arn)",
        ):
            return True
        current = self.get_request(request_id)
        return current is not None and current.execution_arn == execution_arn

    def set_grant_window(self, request_id: str, starts_at: str, expires_at: str) -> None:
        """Record the window IAM enforces, for ``assume``, listings and the reconciler."""
        if not self._update_request(
            request_id,
            "SET starts_at = :start, expires_at = :end",
            {":start": {"S": starts_at}, ":end": {"S": expires_at}},
            "attribute_exists(pk)",
        ):
            raise RequestNotFound(f"request {request_id!r} not found")

    def link_extension(self, request_id: str, extension_id: str, *, replaces: str | None) -> bool:
        """Name ``extension_id`` as the extension of granted ``request_id``; False if the request
        is no longer granted or another extension was linked since ``replaces`` was read (one
        live extension per grant: two concurrent extends cannot both be linked)."""
        condition = "attribute_exists(pk) AND #status = :granted AND "
        values: dict[str, Any] = {":ext": {"S": extension_id}, ":granted": {"S": "granted"}}
        if replaces is None:
            condition += "attribute_not_exists(extended_by)"
        else:
            condition += "extended_by = :replaces"
            values[":replaces"] = {"S": replaces}
        return self._update_request(
            request_id, "SET extended_by = :ext", values, condition, names={"#status": "status"}
        )

    def mark_review_opened(self, request_id: str) -> None:
        if not self._update_request(
            request_id, "SET review_opened = :yes", {":yes": {"BOOL": True}}, "attribute_exists(pk)"
        ):
            raise RequestNotFound(f"request {request_id!r} not found")

    def mark_mailed(self, request_id: str) -> None:
        """Note that the request's notice email was sent (set only after SES accepted it)."""
        if not self._update_request(
            request_id, "SET mailed = :yes", {":yes": {"BOOL": True}}, "attribute_exists(pk)"
        ):
            raise RequestNotFound(f"request {request_id!r} not found")

    def record_review(self, request_id: str, verdict: str) -> None:
        """Note security's verdict on the request (its audit event is the record; this is what
        the review gate reads). A later verdict replaces an earlier one. Only once the review
        was opened (the grant ended): a verdict given before could not know what was done."""
        if not self._update_request(
            request_id,
            "SET review_verdict = :verdict",
            {":verdict": {"S": verdict}, ":yes": {"BOOL": True}},
            "attribute_exists(pk) AND review_opened = :yes",
        ):
            raise RequestNotFound(f"request {request_id!r} not found or its review is not open")

    def get_requests(self, request_ids: Sequence[str]) -> list[RequestRecord]:
        """Several requests at once (missing ones are left out), in the order asked."""
        found: dict[str, RequestRecord] = {}
        wanted = list(dict.fromkeys(request_ids))
        for start in range(0, len(wanted), 100):
            keys = [_request_key(i) for i in wanted[start : start + 100]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                page = self.dynamodb.batch_get_item(RequestItems=request)
                for item in page.get("Responses", {}).get(self.table, []):
                    record = RequestRecord.from_dict(_from_item(item))
                    found[record.request_id] = record
                request = page.get("UnprocessedKeys") or {}
        return [found[i] for i in wanted if i in found]

    def delete_enrollment(self, user: str) -> bool:
        """Remove a person's enrollment (their TOTP secret with it); False if there was none."""
        try:
            self.dynamodb.delete_item(
                TableName=self.table, Key=_user_key(user), ConditionExpression="attribute_exists(pk)"
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True
