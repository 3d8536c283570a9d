"""The raft scenario replays bit for bit: same seed, same digest, in two fresh processes."""

from __future__ import annotations

from pathlib import Path

from sim.rafthunt import raft_options
from sim.scenario import run_scenario, scenarios
from tests.sim import helpers

REPOSITORY = Path(__file__).resolve().parents[2]
RUN = ["raft", "--nodes", "5", "--duration", "12", "--faults", "all"]


def digest_in_subprocess(seed: int, hash_seed: str) -> str:
    return helpers.digest_in_subprocess(RUN, seed, hash_seed, timeout=600)


def test_same_seed_same_digest_in_two_processes() -> None:
    first = digest_in_subprocess(9, "0")
    assert digest_in_subprocess(9, "4242") == first
    options = raft_options([*RUN[1:], "--seed", "9"])
    assert run_scenario(scenarios()["raft"], options, 9).digest == first


def test_different_seeds_give_different_runs() -> None:
    digests = set()
    for seed in (1, 2):
        options = raft_options([*RUN[1:], "--seed", str(seed)])
        digests.add(run_scenario(scenarios()["raft"], options, seed).digest)
    assert len(digests) == 2
