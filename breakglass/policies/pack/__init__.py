"""The guardrail policy pack: rules that keep a stack using these components honest.

The rules are plain functions in :mod:`breakglass.policies.pack.rules` (no pulumi, no
pulumi_policy), run two ways: by Pulumi CrossGuard (``pulumi preview --policy-pack
breakglass/policies/pack``, whose ``__main__.py`` is the only module importing pulumi_policy) and
by ``breakglass synth --check`` over a program synthesized offline. Not shipped in Lambda archives
(``breakglass.lambdas.archive``). See docs/policy-pack.md.
"""
