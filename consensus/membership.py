"""Membership: single-server changes and the configuration history of a log.

A configuration takes effect as soon as its entry is appended to a log (the scheme of
Ongaro's thesis §4.1), so the configuration of a node is a pure function of its log: the
last CONFIGURATION entry in it, or the snapshot's configuration when the log holds none.
When a follower's log loses a suffix to a conflict, the configuration rolls back with it;
`ConfigurationHistory` keeps the configuration entries of the log so that this is a pop.
"""

from __future__ import annotations

from consensus.errors import ConfChangeRefused
from consensus.messages import ConfChange, ConfChangeKind, Configuration
from runtime.codec import DecodeError, decode, encode


def encode_configuration(configuration: Configuration) -> bytes:
    return encode(configuration)


def decode_configuration(data: bytes) -> Configuration:
    """The configuration a CONFIGURATION entry carries; ValueError if it is not one."""
    try:
        value = decode(data)
    except DecodeError as error:
        raise ValueError(f"configuration entry does not decode: {error}") from None
    if not isinstance(value, Configuration):
        raise ValueError(f"configuration entry holds a {type(value).__name__}")
    return value


def normalized(voters: tuple[str, ...] | list[str], learners: tuple[str, ...] | list[str] = ()) -> Configuration:
    """A configuration with sorted, distinct members; ValueError if a node is in both sets."""
    voter_set = set(voters)
    learner_set = set(learners)
    overlap = voter_set & learner_set
    if overlap:
        raise ValueError(f"nodes {sorted(overlap)} cannot be both voter and learner")
    if any(not node for node in voter_set | learner_set):
        raise ValueError("a node id cannot be empty")
    return Configuration(voters=tuple(sorted(voter_set)), learners=tuple(sorted(learner_set)))


def apply_change(configuration: Configuration, change: ConfChange) -> Configuration:
    """The configuration after `change`; ConfChangeRefused when it makes no sense here."""
    node = change.node
    if not node:
        raise ConfChangeRefused("a node id cannot be empty")
    voters = list(configuration.voters)
    learners = list(configuration.learners)
    if change.kind is ConfChangeKind.ADD_LEARNER:
        if configuration.contains(node):
            raise ConfChangeRefused(f"{node} is already a member")
        learners.append(node)
    elif change.kind is ConfChangeKind.PROMOTE:
        if node in configuration.voters:
            raise ConfChangeRefused(f"{node} is already a voter")
        if node not in configuration.learners:
            raise ConfChangeRefused(f"{node} is not a learner: add it as a learner first")
        learners.remove(node)
        voters.append(node)
    elif change.kind is ConfChangeKind.REMOVE:
        if node in voters:
            if len(voters) == 1:
                raise ConfChangeRefused(f"{node} is the last voter")
            voters.remove(node)
        elif node in learners:
            learners.remove(node)
        else:
            raise ConfChangeRefused(f"{node} is not a member")
    else:  # pragma: no cover - the enum is closed
        raise ConfChangeRefused(f"unknown change {change.kind!r}")
    return normalized(voters, learners)


class ConfigurationHistory:
    """The configuration entries of a log, above the configuration its snapshot carries."""

    __slots__ = ("base", "base_index", "changes")

    def __init__(self, base: Configuration, base_index: int = 0) -> None:
        self.base = base
        self.base_index = base_index
        self.changes: list[tuple[int, Configuration]] = []

    def current(self) -> Configuration:
        return self.changes[-1][1] if self.changes else self.base

    def current_index(self) -> int:
        """Index of the entry that set the current configuration (the snapshot's if none)."""
        return self.changes[-1][0] if self.changes else self.base_index

    def at(self, index: int) -> Configuration:
        """The configuration in force at `index`."""
        for change_index, configuration in reversed(self.changes):
            if change_index <= index:
                return configuration
        return self.base

    def add(self, index: int, configuration: Configuration) -> None:
        if self.changes and index <= self.changes[-1][0]:
            raise ValueError(f"configuration at {index} does not follow {self.changes[-1][0]}")
        self.changes.append((index, configuration))

    def truncate_from(self, index: int) -> bool:
        """Forget configuration entries at or above `index`; report whether any went."""
        changed = False
        while self.changes and self.changes[-1][0] >= index:
            self.changes.pop()
            changed = True
        return changed

    def compact_to(self, index: int) -> None:
        """A snapshot at `index` now carries the configuration in force there."""
        self.base = self.at(index)
        self.base_index = index
        self.changes = [(i, c) for i, c in self.changes if i > index]

    def reset(self, configuration: Configuration, index: int) -> None:
        self.base = configuration
        self.base_index = index
        self.changes = []
