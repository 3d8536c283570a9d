"""Raft's safety properties under an adversarial network, explored by Hypothesis."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.consensus.stateful import RaftMachine

RaftMachine.TestCase.settings = settings(
    settings.default,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRaftStateMachine = RaftMachine.TestCase
