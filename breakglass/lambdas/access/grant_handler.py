"""Lambda entry points for grant and revoke: parse the event, call the service, return its result.

Events carry the :class:`~breakglass.lambdas.access.grants.Grant` fields as JSON strings (times as
ISO 8601 with ``Z``); grant may add ``actor``, revoke requires ``early`` and ``actor``. The tiers
come from ``BREAKGLASS_TIERS``, the audit writer from the function's environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3

from breakglass.contracts import utc_now
from breakglass.lambdas import runtime
from breakglass.lambdas.access.grants import Grant, grant, load_tiers, revoke
from breakglass.validation import require_bool, require_mapping, require_str

logger = runtime.get_logger("breakglass.grants")


def grant_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    event = require_mapping("event", event)
    g = Grant.from_event(event)
    actor = require_str("actor", event.get("actor", "system"), max_length=128)
    tiers = load_tiers()
    writer = runtime.audit_writer_from_env()
    result = grant(boto3.client("iam"), writer, tiers, g, now=utc_now(), actor=actor)
    logger.info(
        "grant",
        extra=runtime.log_fields(
            request_id=g.request_id, tier=g.tier, outcome=result["outcome"], actor=actor
        ),
    )
    return result


def revoke_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    event = require_mapping("event", event)
    g = Grant.from_event(event)
    early = require_bool("early", event.get("early"))
    actor = require_str("actor", event.get("actor"), max_length=128)
    tiers = load_tiers()
    writer = runtime.audit_writer_from_env()
    result = revoke(boto3.client("iam"), writer, tiers, g, early=early, actor=actor, now=utc_now())
    logger.info(
        "revoke",
        extra=runtime.log_fields(
            request_id=g.request_id, tier=g.tier, outcome=result["outcome"], early=early, actor=actor
        ),
    )
    return result
