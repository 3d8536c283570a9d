"""Seeded random runs of whole clusters under faults: the correct build violates nothing.

CI runs a fixed slice of seeds per sweep; FLOTTA_SLOW=1 runs thousands. A failure prints
the sweep, the seed and the sampled parameters: `sweeps.SWEEPS[name](seed)` replays it.
"""

from __future__ import annotations

import pytest

from tests.consensus.sweeps import SWEEPS, describe, first_violation

CI_SEEDS = {"swarm": 150, "crashy": 100, "episodes": 200, "terms": 150, "membership": 200}


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_no_safety_violation_in_the_ci_seeds(name: str) -> None:
    found = first_violation(name, range(CI_SEEDS[name]))
    assert found is None, describe(name, found)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_no_safety_violation_in_two_thousand_seeds(name: str) -> None:
    found = first_violation(name, range(10_000, 12_000))
    assert found is None, describe(name, found)


def fingerprint(name: str, seed: int) -> tuple[object, ...]:
    outcome = SWEEPS[name](seed)
    cluster = outcome.cluster
    assert cluster is not None
    logs = tuple(
        (node_id, node.raft.term, node.raft.commit_index, tuple(node.persisted.entries))
        for node_id, node in sorted(cluster.nodes.items())
    )
    return outcome.steps, cluster.delivered, logs, tuple(sorted(cluster.checker.coverage.items()))


@pytest.mark.parametrize("name", ["swarm", "episodes"])
def test_a_seed_replays_identically(name: str) -> None:
    assert fingerprint(name, 7) == fingerprint(name, 7)


def test_the_sweeps_reach_the_interesting_places() -> None:
    """"Sometimes" coverage: a sweep too gentle to reach these would prove little."""
    from collections import Counter

    seen: Counter[str] = Counter()
    for name in ("swarm", "episodes", "terms"):
        for seed in range(20):
            outcome = SWEEPS[name](seed)
            assert outcome.cluster is not None and outcome.cluster.checker is not None
            seen.update(outcome.cluster.checker.coverage)
    for event in (
        "leader elected with uncommitted entries",
        "follower log truncated",
        "snapshot installed",
        "commit moved across terms",
        "read released",
        "restart",
    ):
        assert seen[event] >= 5, (event, dict(seen))
