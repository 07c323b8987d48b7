"""What the component provider costs a TypeScript, Go, .NET, Java or YAML program.

Two figures, median over several runs:

- plugin start → schema: from starting the plugin as the engine does (``python __main__.py
  ENGINE``) to its answer to ``GetSchema`` over gRPC (imports, Pulumi's analyzer, the schema);
  every ``pulumi preview`` and ``pulumi up`` pays the start, ``pulumi package add`` the schema;
- construct through the provider vs. in Python: ``BreakGlass`` from the quickstart's settings,
  built under Pulumi's mocks from values as the engine delivers them, against the same settings
  given to the Python class (the mapping's cost; the resources are the same).

Run: ``.venv/bin/python benchmarks/plugin_startup.py [--runs 5]``. Offline; no Pulumi CLI.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import grpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from provider_wire import over_the_wire  # noqa: E402
from test_component_provider import PYTHON_ARGS, WIRE_ARGS  # noqa: E402

from breakglass import BreakGlass  # noqa: E402
from breakglass.local.synth import synth  # noqa: E402
from breakglass.provider import BreakGlassProvider  # noqa: E402


def plugin_to_schema() -> tuple[float, int]:
    """Seconds from starting the plugin to its schema, and the schema's size in bytes."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-W", "ignore", str(ROOT / "__main__.py"), "127.0.0.1:1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = provider_pb2_grpc.ResourceProviderStub(channel).GetSchema(
                provider_pb2.GetSchemaRequest()
            )
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)
    return elapsed, len(json.dumps(json.loads(answer.schema)).encode())


def construct_times(provider: BreakGlassProvider) -> tuple[float, float, int]:
    """Seconds to synthesize BreakGlass through the provider and directly, and the resource count."""
    wire = over_the_wire(WIRE_ARGS)
    started = time.perf_counter()
    built = synth(lambda: provider.construct("breakglass", "breakglass:index:BreakGlass", wire, None))
    through = time.perf_counter() - started
    started = time.perf_counter()
    synth(lambda: BreakGlass("breakglass", PYTHON_ARGS))  # type: ignore[arg-type]
    direct = time.perf_counter() - started
    return through, direct, len(built.resources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    starts = [plugin_to_schema() for _ in range(runs)]
    provider = BreakGlassProvider()
    constructs = [construct_times(provider) for _ in range(runs)]
    figures = {
        "plugin start -> schema": [s for s, _ in starts],
        f"BreakGlass ({constructs[0][2]} resources) through the provider": [t for t, _, _ in constructs],
        "the same settings in Python": [d for _, d, _ in constructs],
    }
    print(f"schema: {starts[0][1]} bytes")
    for name, values in figures.items():
        print(
            f"{name}: median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"
        )


if __name__ == "__main__":
    main()
