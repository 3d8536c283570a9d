"""Mutation switches: known Raft bugs that can be turned on in the real code paths.

The test suite and the simulator turn a mutant on and must then find a safety violation;
a mutant that survives means the checks are too weak. Each switch is a plain attribute of
`switches`, read in the hot paths as `switches.M1`, and is False in production.

The switches come from the environment variable FLOTTA_RAFT_MUTANT (comma-separated names,
e.g. "M1,M8"). consensus/ does not touch the process environment itself (it is sans-IO), so
the process entry point calls `configure_from_environment(os.environ)` once at start; tests
call `enable(...)` / `disable_all()` or use `active(...)` as a context manager.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

ENVIRONMENT_VARIABLE = "FLOTTA_RAFT_MUTANT"

CATALOGUE: dict[str, str] = {
    "M1": "the leader commits a previous-term entry by counting replicas (Raft Figure 8)",
    "M2": "the vote is not persisted before replying: the Ready's hard state omits it",
    "M3": "votes are granted without the candidate's-log-is-up-to-date check",
    "M4": "a follower truncates its log after prev_index even when the entries match",
    "M5": "a follower appends without checking prev_index/prev_term",
    "M7": "a leader ignores higher terms in responses; a follower accepts stale AppendEntries",
    "M8": "the leader serves ReadIndex at once, without confirming its leadership",
    "M10": "membership-change safety off: no own-term commit first, no one-at-a-time rule",
    "M14": "a follower sets commit = leader commit, not capped by the last new entry",
}


class _Switches:
    """One boolean per catalogued mutant (declared for type checkers, kept in step by a test)."""

    __slots__ = tuple(CATALOGUE)
    M1: bool
    M2: bool
    M3: bool
    M4: bool
    M5: bool
    M7: bool
    M8: bool
    M10: bool
    M14: bool

    def __init__(self) -> None:
        for name in CATALOGUE:
            setattr(self, name, False)

    def enabled(self) -> frozenset[str]:
        return frozenset(name for name in CATALOGUE if getattr(self, name))


switches = _Switches()


def parse(specification: str) -> frozenset[str]:
    """'M1, M8' → {'M1', 'M8'}; ValueError naming any unknown mutant."""
    names = frozenset(part.strip() for part in specification.split(",") if part.strip())
    unknown = sorted(names - CATALOGUE.keys())
    if unknown:
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE}: unknown mutant(s) {', '.join(unknown)}; "
            f"known: {', '.join(CATALOGUE)}"
        )
    return names


def enable(*names: str) -> None:
    """Turn exactly these mutants on (all others off)."""
    chosen = parse(",".join(names))
    for name in CATALOGUE:
        setattr(switches, name, name in chosen)


def disable_all() -> None:
    enable()


def enabled() -> frozenset[str]:
    return switches.enabled()


def configure_from_environment(environment: Mapping[str, str]) -> frozenset[str]:
    """Read FLOTTA_RAFT_MUTANT once from `environment` (pass os.environ) and apply it."""
    names = parse(environment.get(ENVIRONMENT_VARIABLE, ""))
    enable(*names)
    return names


@contextmanager
def active(*names: str) -> Iterator[None]:
    """Run a block with exactly these mutants on, restoring the previous set afterwards."""
    previous = enabled()
    enable(*names)
    try:
        yield
    finally:
        enable(*previous)
