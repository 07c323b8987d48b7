"""What every function's deployment archive holds: stated once for the component and the emulator.

The Lambda side of this package (handlers, their services, the policy builders they use, the
shared contracts and validation) and the pure-Python dependencies the Lambda runtime lacks.
boto3 and botocore come with the runtime. Nothing here imports pulumi, and nothing that imports
pulumi (components, cli, local) is shipped.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Final

import breakglass

PACKAGE_ROOT: Final = Path(breakglass.__file__).parent
SHIPPED_MODULES: Final = ("__init__.py", "contracts.py", "validation.py")
SHIPPED_SUBPACKAGES: Final = ("lambdas", "policies")
SHIPPED_SUFFIXES: Final = frozenset({".py", ".html", ".json"})
# Inside the shipped subpackages but never run by a function: the CrossGuard policy pack (its
# __main__ imports pulumi_policy).
NOT_SHIPPED: Final = ("policies/pack",)
# Runtime dependencies the Lambda Python runtime does not provide.
VENDORED: Final = ("pyotp",)
# What shipped code may import besides itself and the standard library.
RUNTIME_PROVIDED: Final = ("boto3", "botocore")


def shipped_files() -> dict[str, Path]:
    """Archive path -> file on disk, for this package's own code."""
    files = {f"breakglass/{module}": PACKAGE_ROOT / module for module in SHIPPED_MODULES}
    for sub in SHIPPED_SUBPACKAGES:
        for path in sorted((PACKAGE_ROOT / sub).rglob("*")):
            inside = path.relative_to(PACKAGE_ROOT).as_posix()
            if any(inside.startswith(f"{folder}/") for folder in NOT_SHIPPED):
                continue
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in SHIPPED_SUFFIXES:
                files[path.relative_to(PACKAGE_ROOT.parent).as_posix()] = path
    return files


def vendored_packages() -> dict[str, Path]:
    """Archive folder -> installed package folder, for each vendored dependency."""
    found: dict[str, Path] = {}
    for name in VENDORED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} must be installed to package the Lambda code")
        found[name] = Path(spec.origin).parent
    return found
