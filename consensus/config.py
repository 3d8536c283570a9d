"""How a Raft node is tuned, and the read-only picture of its state."""

from __future__ import annotations

import attrs

from consensus.membership import normalized
from consensus.messages import Configuration, Role
from consensus.progress import ProgressView


@attrs.frozen
class RaftConfig:
    node_id: str
    election_tick: int = 10
    heartbeat_tick: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_size_per_message_bytes: int = 1 << 20
    """AppendEntries carries entries up to this many bytes (always at least one entry)."""
    max_inflight_messages: int = 256
    """Unacknowledged AppendEntries per follower in the replicate state."""
    snapshot_chunk_bytes: int = 1 << 20
    snapshot_inflight_chunks: int = 4
    max_apply_bytes_per_ready: int = 16 << 20
    """Committed entries handed out by one Ready (always at least one)."""
    promotion_lag_entries_max: int = 64
    """A learner is promoted only when its log is within this many entries of the leader's."""
    initial_configuration: Configuration | None = None
    """The founding membership; used only when the node has no snapshot yet."""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.node_id, str) or not self.node_id:
            raise ValueError("node_id must be a non-empty string")
        if self.heartbeat_tick < 1:
            raise ValueError(f"heartbeat_tick must be ≥ 1, got {self.heartbeat_tick}")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError(
                f"election_tick ({self.election_tick}) must exceed heartbeat_tick ({self.heartbeat_tick})"
            )
        for name in (
            "max_size_per_message_bytes",
            "max_inflight_messages",
            "snapshot_chunk_bytes",
            "snapshot_inflight_chunks",
            "max_apply_bytes_per_ready",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.promotion_lag_entries_max < 0:
            raise ValueError("promotion_lag_entries_max must be ≥ 0")
        if self.initial_configuration is not None:
            initial = self.initial_configuration
            if normalized(initial.voters, initial.learners) != initial:
                raise ValueError("initial_configuration must have sorted, distinct members")


@attrs.frozen
class Status:
    """A read-only picture of one node, for drivers, checkers and humans."""

    id: str
    term: int
    vote: str
    role: Role
    leader: str
    commit: int
    applied: int
    first_index: int
    last_index: int
    last_term: int
    configuration: Configuration
    snapshot_index: int
    progress: dict[str, ProgressView]
