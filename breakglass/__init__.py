"""Governed, audited emergency ("break glass") access to AI systems on AWS, as Pulumi components."""

__version__ = "0.1.0"
