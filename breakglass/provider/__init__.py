"""The component provider: every breakglass component, usable from TypeScript, Go, .NET, Java and YAML.

``PulumiPlugin.yaml`` and ``__main__.py`` at the repository root make this repository a Pulumi
plugin; ``pulumi package add <repo>`` runs :func:`serve`, which asks for the schema (inferred from
the components' TypedDict args and annotated outputs by Pulumi's analyzer) and then constructs
components on request. See docs/other-languages.md.
"""

from breakglass.provider.host import COMPONENTS, PACKAGE, BreakGlassProvider, analyze, schema, serve

__all__ = ["COMPONENTS", "PACKAGE", "BreakGlassProvider", "analyze", "schema", "serve"]
