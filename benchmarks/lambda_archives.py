"""Each Lambda's deployment archive: zipped and unzipped size, and its handler's cold import time.

examples/quickstart is synthesized offline and every ``aws:lambda/function:Function`` it
registers is read back: its handler and its code, the ``AssetArchive`` the components build
(:func:`breakglass.components.functions.lambda_code`, listed by :mod:`breakglass.lambdas.archive`).
Each archive is zipped the way the emulator's deploy does it
(:func:`breakglass.local.resources.archive_zip`, what the provider would upload), then unpacked
into a temporary directory; for each function, a fresh interpreter with that directory first on
its path imports the handler module and looks the handler up, timed inside the process, with no
bytecode cache (``PYTHONDONTWRITEBYTECODE``, nothing shipped precompiled): what a Lambda cold
start pays for the code, before the handler runs. boto3 and botocore come from this environment,
as the Lambda runtime provides them. Median of ``--runs`` fresh processes per function.

This interpreter is not the Lambda runtime (Python 3.12 on Amazon Linux): figures compare
handlers with one another and show the import cost of the shipped code, not a Lambda's INIT.

    .venv/bin/python benchmarks/lambda_archives.py [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from breakglass.local.resources import archive_zip
from breakglass.local.synth import synth_directory

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart"
FUNCTION = "aws:lambda/function:Function"
# What every handler imports that the runtime provides: timed alone, it shows the code's own share.
BASELINE = "boto3.client"
# Runs in the fresh interpreter: import the handler's module from the unpacked archive, time it,
# and say where the module came from (it must be the archive, not this checkout).
PROBE = """
import importlib, json, sys, time
root, handler = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
module_name, _, attribute = handler.rpartition(".")
started = time.perf_counter()
module = importlib.import_module(module_name)
getattr(module, attribute)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "file": module.__file__, "modules": len(sys.modules)}))
"""


def deflated_size(zipped: bytes) -> int:
    """The archive's size with every entry deflated (what Pulumi's provider uploads; the emulator's
    zip stores entries uncompressed: its ZipInfo entries keep ZIP_STORED)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(zipped)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for entry in source.infolist():
            out.writestr(entry.filename, source.read(entry), compress_type=zipfile.ZIP_DEFLATED)
    return len(buffer.getvalue())


def cold_import(root: Path, handler: str) -> tuple[float, int]:
    """Seconds to import ``handler`` in a fresh interpreter, and how many modules it then holds."""
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(root), handler],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=root,
    )
    found = json.loads(done.stdout)
    if handler != BASELINE and not str(found["file"]).startswith(str(root)):
        raise SystemExit(f"{handler} was imported from {found['file']}, not from the archive")
    return float(found["seconds"]), int(found["modules"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per handler (default 5)")
    args = parser.parse_args()
    functions = synth_directory(QUICKSTART).by_type(FUNCTION)
    archives: dict[str, bytes] = {}
    handlers: dict[str, list[tuple[str, str]]] = {}
    for function in functions:
        zipped = archive_zip(function.inputs["code"])
        digest = hashlib.sha256(zipped).hexdigest()[:12]
        archives[digest] = zipped
        handlers.setdefault(digest, []).append((function.name, str(function.inputs["handler"])))
    print(f"examples/quickstart: {len(functions)} functions, {len(archives)} distinct archive(s)")
    for digest, zipped in archives.items():
        with zipfile.ZipFile(io.BytesIO(zipped)) as archive, tempfile.TemporaryDirectory() as tmp:
            entries = archive.infolist()
            unzipped = sum(e.file_size for e in entries)
            print(
                f"archive {digest}: {deflated_size(zipped) / 1024:.0f} KiB zipped (deflated),"
                f" {unzipped / 1024:.0f} KiB unzipped, {len(entries)} files,"
                f" used by {len(handlers[digest])} functions"
            )
            archive.extractall(tmp)
            root = Path(tmp).resolve()
            print(
                f"  cold import of each handler, median of {args.runs} fresh processes (no bytecode cache):"
            )
            for name, handler in [("(boto3 alone, for reference)", BASELINE), *sorted(handlers[digest])]:
                timed = [cold_import(root, handler) for _ in range(args.runs)]
                seconds = [t[0] for t in timed]
                print(
                    f"    {name:<30} {handler:<62} {statistics.median(seconds) * 1000:6.0f} ms"
                    f"  (min {min(seconds) * 1000:.0f}, max {max(seconds) * 1000:.0f}; {timed[0][1]} modules)"
                )


if __name__ == "__main__":
    main()
