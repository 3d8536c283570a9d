"""What the Raft core raises: refusals of a request (RaftError) and broken invariants (bugs)."""

from __future__ import annotations


class RaftError(Exception):
    """A request the core cannot carry out in its current state."""


class NotLeader(RaftError):
    """Only the leader does this; `leader` is the leader this node knows of ("" if none)."""

    def __init__(self, node: str, leader: str) -> None:
        hint = f"; the leader is {leader}" if leader else "; no leader is known"
        super().__init__(f"{node} is not the leader{hint}")
        self.leader = leader


class ProposalDropped(RaftError):
    """The leader refuses new entries for now (a leadership transfer is under way)."""


class ConfChangeRefused(ProposalDropped):
    """A membership change the leader will not propose; the message says why."""


class RaftInvariantError(AssertionError):
    """The core found its own state broken: a bug (or a mutant), never bad input."""
