"""Mutation switches of the store layer, read like the core's (consensus/mutants.py).

The core's catalogue is closed (its `parse` rejects unknown names, and that module belongs
to the core), so the store keeps its own switches here and shares the same environment
variable: `FLOTTA_RAFT_MUTANT=M1,M11` turns on M1 in the core and M11 in the store.
`configure_from_environment(os.environ)` splits the names between the two.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from consensus import mutants as core_mutants

CATALOGUE: dict[str, str] = {
    "M11": "no client-session dedup: a retried request is applied again",
}


class _Switches:
    __slots__ = tuple(CATALOGUE)
    M11: bool

    def __init__(self) -> None:
        for name in CATALOGUE:
            setattr(self, name, False)

    def enabled(self) -> frozenset[str]:
        return frozenset(name for name in CATALOGUE if getattr(self, name))


switches = _Switches()


def known() -> dict[str, str]:
    """Every mutant of the core and the store."""
    return {**core_mutants.CATALOGUE, **CATALOGUE}


def parse(specification: str) -> tuple[frozenset[str], frozenset[str]]:
    """'M1, M11' → ({'M1'}, {'M11'}): (core names, store names); ValueError for unknown ones."""
    names = frozenset(part.strip() for part in specification.split(",") if part.strip())
    unknown = sorted(names - known().keys())
    if unknown:
        raise ValueError(
            f"{core_mutants.ENVIRONMENT_VARIABLE}: unknown mutant(s) {', '.join(unknown)}; "
            f"known: {', '.join(known())}"
        )
    store = names & CATALOGUE.keys()
    return names - store, store


def enable(*names: str) -> None:
    """Turn exactly these mutants on, core and store alike (all others off)."""
    core, store = parse(",".join(names))
    core_mutants.enable(*sorted(core))
    for name in CATALOGUE:
        setattr(switches, name, name in store)


def enabled() -> frozenset[str]:
    return core_mutants.enabled() | switches.enabled()


def configure_from_environment(environment: Mapping[str, str]) -> frozenset[str]:
    """Read FLOTTA_RAFT_MUTANT once (pass os.environ) and apply it to core and store."""
    core, store = parse(environment.get(core_mutants.ENVIRONMENT_VARIABLE, ""))
    enable(*core, *store)
    return core | store


@contextmanager
def active(*names: str) -> Iterator[None]:
    """Run a block with exactly these mutants on (core and store), then restore."""
    previous = enabled()
    enable(*names)
    try:
        yield
    finally:
        enable(*previous)
