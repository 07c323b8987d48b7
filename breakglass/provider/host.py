"""The schema and the provider that hosts the components for other Pulumi languages."""

import json
from collections.abc import Mapping
from typing import Any, Final

import pulumi
from pulumi.provider import main
from pulumi.provider.experimental.analyzer import Analyzer, AnalyzeResult, ComponentDefinition
from pulumi.provider.experimental.component import ComponentProvider

from breakglass import __version__
from breakglass.components import (
    ApprovalWorkflow,
    AuditQueries,
    AuditTrail,
    BreakGlass,
    EmergencyRole,
    HaltActions,
    SealedAccess,
)

# The package name other languages import (`@pulumi/breakglass`-style SDKs, `breakglass:index:*` tokens).
PACKAGE: Final = "breakglass"
# Every public component, the umbrella first: the schema, the docs tables and the provider list them.
COMPONENTS: Final[tuple[type[pulumi.ComponentResource], ...]] = (
    BreakGlass,
    AuditTrail,
    AuditQueries,
    EmergencyRole,
    ApprovalWorkflow,
    HaltActions,
    SealedAccess,
)


def analyze() -> AnalyzeResult:
    """What Pulumi's analyzer infers from the components' annotations and docstrings."""
    return Analyzer(PACKAGE).analyze(list(COMPONENTS))


class BreakGlassProvider(ComponentProvider):
    """Pulumi's component provider, with numbers as the components expect them.

    Every number reaches a provider as a float (the wire format is protobuf's Struct), and the stock
    mapping (pulumi 3.272) writes the float back over its own int conversion. The components
    validate whole numbers strictly (``retention_days`` 30.0 is refused), so whole floats become
    ints before the mapping, also inside untyped settings such as ``tiers`` and ``audit``.
    """

    def __init__(self) -> None:
        super().__init__(list(COMPONENTS), PACKAGE, version=__version__)

    def map_inputs(self, inputs: Any, component_def: ComponentDefinition) -> Any:
        return super().map_inputs(_whole_numbers(inputs), component_def)


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value  # strings, bools, Outputs (secret or dependent inputs stay as they came)


def schema() -> dict[str, Any]:
    """The Pulumi package schema the provider serves, built offline (no CLI, no engine)."""
    provider = BreakGlassProvider()
    return dict(json.loads(provider.schema or "{}"))


def serve(args: list[str]) -> None:
    """Run the provider for the Pulumi engine (the plugin's entry point, ``__main__.py``).

    This is what ``component_provider_host`` does, with :class:`BreakGlassProvider` in place of
    the stock provider it builds.
    """
    main(BreakGlassProvider(), args)
