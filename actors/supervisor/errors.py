"""Errors shared by the executor's modules."""

from __future__ import annotations


class SpecError(ValueError):
    """A container spec that cannot be turned into a valid config; names the bad field."""
