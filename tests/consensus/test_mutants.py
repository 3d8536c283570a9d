"""Every mutant (a known Raft bug switched on in the real code) must be caught.

Each is hunted by the sweep that reaches its failure fastest, within a fixed seed budget;
the budgets leave a wide margin over the seed that first catches it today. A mutant that
survives means the checks, or the nemesis, got weaker.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from consensus import mutants
from tests.consensus import test_receiver
from tests.consensus.sweeps import describe, first_violation

# mutant -> (sweep, seed budget)
HUNTS = {
    "M1": ("terms", 400),
    "M2": ("crashy", 400),
    "M3": ("swarm", 100),
    "M4": ("terms", 300),
    "M5": ("episodes", 100),
    "M7": ("terms", 300),
    "M8": ("terms", 100),
    "M10": ("membership", 300),
}
# Mutants the AppendEntries receiver property catches directly (see test_receiver.py).
RECEIVER = ("M4", "M5", "M14")


def test_every_catalogued_mutant_is_hunted() -> None:
    assert set(mutants.CATALOGUE) == set(HUNTS) | set(RECEIVER)


def test_mutant_switches_parse_and_reject_unknown_names() -> None:
    assert mutants.parse(" M1, M8 ,") == {"M1", "M8"}
    with pytest.raises(ValueError, match=r"unknown mutant.*M99"):
        mutants.parse("M1,M99")
    assert mutants.configure_from_environment({"FLOTTA_RAFT_MUTANT": "M3"}) == {"M3"}
    assert mutants.switches.M3 and not mutants.switches.M1
    mutants.disable_all()
    assert mutants.enabled() == frozenset()


@pytest.mark.parametrize("mutant", sorted(HUNTS, key=lambda m: int(m[1:])))
def test_the_mutant_is_caught_by_a_sweep(mutant: str) -> None:
    sweep, budget = HUNTS[mutant]
    with mutants.active(mutant):
        found = first_violation(sweep, range(budget))
    assert found is not None, f"{mutant} survived {budget} seeds of sweep {sweep!r}"
    assert found.violation is not None
    print(describe(sweep, found))


@pytest.mark.parametrize("mutant", RECEIVER)
def test_the_mutant_is_caught_by_the_receiver_property(mutant: str) -> None:
    with mutants.active(mutant), pytest.raises((AssertionError, ExceptionGroup)) as caught:
        receiver_property()
    # Hypothesis may report several distinct failures at once: all must be assertions.
    if isinstance(caught.value, ExceptionGroup):
        assert caught.value.split(AssertionError)[1] is None


def test_the_correct_build_passes_the_receiver_property() -> None:
    with mutants.active():
        receiver_property()


# Derandomized, so whether a mutant is caught never depends on luck.
receiver_property = given(test_receiver.histories())(
    settings(max_examples=1000, derandomize=True, database=None, deadline=None)(
        test_receiver.check_receiver
    )
)
