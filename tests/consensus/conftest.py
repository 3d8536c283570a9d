"""Consensus tests: mutants come from FLOTTA_RAFT_MUTANT once, and each test starts clean."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from consensus import mutants

FROM_ENVIRONMENT = mutants.configure_from_environment(os.environ)


@pytest.fixture(autouse=True)
def restore_mutants() -> Iterator[None]:
    """A test may switch mutants on; the next one sees the environment's choice again."""
    yield
    mutants.enable(*FROM_ENVIRONMENT)
