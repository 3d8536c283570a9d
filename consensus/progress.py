"""What a leader knows about each follower, and the flow control built on it.

Each follower is in one of three states (etcd's design):

    PROBE      we do not know where its log matches ours: send one AppendEntries, then wait
               for its answer (or the next heartbeat answer) before sending another.
    REPLICATE  its log matches up to `match`: stream batches optimistically, moving `next`
               ahead as they are sent, with at most `max_inflight_messages` unacknowledged.
    SNAPSHOT   the entries it needs are compacted away: stream the snapshot in chunks,
               nothing else, until it reports the snapshot installed.

    PROBE --success--> REPLICATE --rejection--> PROBE
      ^                    |
      |                (next entries compacted)
      +--installed-- SNAPSHOT <--+
"""

from __future__ import annotations

import enum
from collections import deque

import attrs

from consensus.messages import Snapshot


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class SnapshotTransfer:
    """A snapshot being streamed to one follower in chunks; resumable from `acked_bytes`."""

    __slots__ = ("acked_bytes", "final_sent", "sent_bytes", "snapshot", "stalled_heartbeats")

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.final_sent = False
        self.sent_bytes = 0
        self.acked_bytes = 0
        self.stalled_heartbeats = 0


class Progress:
    __slots__ = (
        "inflight",
        "match",
        "next",
        "probe_sent",
        "recent_active",
        "state",
        "transfer",
    )

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        # Last index carried by each unacknowledged batch, oldest first.
        self.inflight: deque[int] = deque()
        self.recent_active = False
        self.transfer: SnapshotTransfer | None = None

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT and self.transfer is not None:
            self.next = max(self.match + 1, self.transfer.snapshot.meta.index + 1)
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight.clear()
        self.transfer = None

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()
        self.transfer = None

    def become_snapshot(self, snapshot: Snapshot) -> None:
        self.state = ProgressState.SNAPSHOT
        self.probe_sent = False
        self.inflight.clear()
        self.transfer = SnapshotTransfer(snapshot)

    def is_paused(self, max_inflight: int) -> bool:
        state = self.state
        if state is ProgressState.REPLICATE:
            return len(self.inflight) >= max_inflight
        if state is ProgressState.PROBE:
            return self.probe_sent
        return True

    def maybe_update(self, index: int) -> bool:
        """A success up to `index` arrived; report whether it told us something new."""
        updated = False
        if index > self.match:
            self.match = index
            updated = True
            self.probe_sent = False
        if index + 1 > self.next:
            self.next = index + 1
        inflight = self.inflight
        while inflight and inflight[0] <= index:
            inflight.popleft()
        return updated

    def maybe_decrease_to(self, rejected: int, hinted_next: int) -> bool:
        """A rejection of `rejected` (a prev_index we sent) arrived; back `next` off.

        Returns False for a stale rejection: one for a batch we no longer care about.
        """
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = max(self.match + 1, min(rejected, hinted_next))
            self.state = ProgressState.PROBE
            self.probe_sent = False
            self.inflight.clear()
            return True
        if self.state is ProgressState.SNAPSHOT:
            return False
        if self.next - 1 != rejected:
            return False
        self.next = max(self.match + 1, min(rejected, hinted_next))
        self.probe_sent = False
        return True

    def sent_entries(self, last_index: int) -> None:
        """Record a batch ending at `last_index` as sent."""
        if self.state is ProgressState.REPLICATE:
            self.next = last_index + 1
            self.inflight.append(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True


@attrs.frozen
class ProgressView:
    """A read-only copy of one follower's progress, for drivers and checkers."""

    match: int
    next: int
    state: ProgressState
    recent_active: bool
    inflight_messages: int
    snapshot_index: int | None


def view(progress: Progress) -> ProgressView:
    transfer = progress.transfer
    return ProgressView(
        match=progress.match,
        next=progress.next,
        state=progress.state,
        recent_active=progress.recent_active,
        inflight_messages=len(progress.inflight),
        snapshot_index=transfer.snapshot.meta.index if transfer is not None else None,
    )


def committed_index(matches: list[int]) -> int:
    """The highest index a majority of `matches` holds (a non-empty list of voters' matches)."""
    ordered = sorted(matches, reverse=True)
    return ordered[len(ordered) // 2]
