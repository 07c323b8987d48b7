"""Entry point of the breakglass Pulumi plugin (PulumiPlugin.yaml, runtime python).

``pulumi package add <this repository>`` runs this file to serve the components' schema and to
construct them for TypeScript, Go, .NET, Java and YAML programs. The quickstart program that the
root Pulumi.yaml names lives in examples/quickstart/; this file is not it. See docs/other-languages.md.
"""

import sys

from breakglass.provider import serve

if __name__ == "__main__":
    serve(sys.argv[1:])
