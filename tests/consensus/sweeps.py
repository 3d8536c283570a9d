"""Named sweeps over the two nemeses, so tests and humans run the same thing."""

from __future__ import annotations

from collections.abc import Callable

from tests.consensus import nemesis

Sweep = Callable[[int], nemesis.Outcome]

SWEEPS: dict[str, Sweep] = {
    # Message-level faults with swarm-sampled parameters.
    "swarm": lambda seed: nemesis.run(seed, steps=1500),
    "crashy": lambda seed: nemesis.run(seed, steps=1500, profile="crashy"),
    # Episodes on random groups of nodes.
    "episodes": lambda seed: nemesis.run_episodes(seed, rounds=60),
    "terms": lambda seed: nemesis.run_episodes(seed, rounds=60, profile="terms"),
    "membership": lambda seed: nemesis.run_episodes(seed, rounds=60, profile="membership"),
}


def describe(name: str, outcome: nemesis.Outcome) -> str:
    return (
        f"sweep {name!r} seed {outcome.seed} step {outcome.steps}: {outcome.violation}\n"
        f"  params: {outcome.params}"
    )


def first_violation(name: str, seeds: range) -> nemesis.Outcome | None:
    sweep = SWEEPS[name]
    for seed in seeds:
        outcome = sweep(seed)
        if outcome.violation is not None:
            return outcome
    return None
