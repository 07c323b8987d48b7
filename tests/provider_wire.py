"""Values as the Pulumi engine hands them to a component provider (tests of other languages)."""

import asyncio
from typing import Any

from pulumi.runtime import rpc


def over_the_wire(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` serialized to protobuf and decoded again: every number becomes a float."""
    loop = asyncio.new_event_loop()  # not asyncio.run: it unsets the loop the mocked runtime uses
    try:
        struct = loop.run_until_complete(rpc.serialize_properties(values, {}))
    finally:
        loop.close()
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True))
