"""Quickstart: the break-glass stack for one account. `breakglass synth examples/quickstart` shows it."""
