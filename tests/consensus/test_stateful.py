"""Raft's safety properties under an adversarial network, explored by Hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.consensus.stateful import RaftMachine

SETTINGS = settings(
    settings.default,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
RaftMachine.TestCase.settings = SETTINGS
TestRaftStateMachine = RaftMachine.TestCase


@pytest.mark.slow
def test_two_thousand_examples() -> None:
    RaftMachine.TestCase.settings = settings(
        RaftMachine.TestCase.settings, max_examples=2000, database=None
    )
    try:
        RaftMachine.TestCase("runTest").runTest()
    finally:
        RaftMachine.TestCase.settings = SETTINGS
