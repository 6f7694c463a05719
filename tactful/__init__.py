"""Tactful: support-aware marketing."""

__version__ = "0.1.0"
