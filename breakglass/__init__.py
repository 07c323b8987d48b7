"""Governed, audited emergency ("break glass") access to AI systems on AWS, as Pulumi components.

``from breakglass import BreakGlass`` gives the whole system in one component; the parts are in
:mod:`breakglass.components`. The import is lazy: every Lambda ships this package's root too, and
nothing a Lambda loads may import pulumi.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["BreakGlass", "BreakGlassArgs", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("BreakGlass", "BreakGlassArgs"):
        from breakglass.components import breakglass as umbrella

        return getattr(umbrella, name)
    raise AttributeError(f"module 'breakglass' has no attribute {name!r}")
