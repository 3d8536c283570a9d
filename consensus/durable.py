"""A node's durable Raft state: the WAL and the snapshot files, driven by Ready batches.

The peer actor does, per Ready:

    await durable.persist(ready)      # snapshot file, then one WAL batch, then one fsync
    ... send ready.messages, apply ready.committed_entries ...
    raft.advance(ready)

and after the state machine hands in a snapshot (`snapshot = raft.compact(...)`):

    await durable.save_snapshot(snapshot)   # file, WAL marker + fsync, then drop old segments

On start, `await DurableState.open(disk)` replays everything and `durable.recovered` is the
`PersistedState` to build the core from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consensus.messages import PersistedState, Ready, Snapshot
from consensus.snapshot import SnapshotStore
from consensus.wal import SEGMENT_BYTES_MAX, WriteAheadLog

if TYPE_CHECKING:
    from runtime.disk import Disk  # the protocol only: consensus/ does no I/O itself


class DurableState:
    def __init__(
        self,
        wal: WriteAheadLog,
        snapshots: SnapshotStore,
        recovered: PersistedState,
        keep_old_snapshots: int,
    ) -> None:
        self.wal = wal
        self.snapshots = snapshots
        self.recovered = recovered
        self.keep_old_snapshots = keep_old_snapshots
        self.fsyncs = 0

    @classmethod
    async def open(
        cls,
        disk: Disk,
        directory: str = "raft",
        segment_bytes_max: int = SEGMENT_BYTES_MAX,
        keep_old_snapshots: int = 0,
    ) -> DurableState:
        wal, recovered = await WriteAheadLog.open(disk, f"{directory}/wal", segment_bytes_max)
        snapshots = SnapshotStore(disk, f"{directory}/snap")
        snapshot = None
        if recovered.snapshot is not None and recovered.snapshot.index > 0:
            snapshot = await snapshots.load(recovered.snapshot.index, recovered.snapshot.term)
        state = PersistedState(recovered.hard_state, snapshot, recovered.entries)
        return cls(wal, snapshots, state, keep_old_snapshots)

    async def persist(self, ready: Ready) -> None:
        """Make the Ready's snapshot, entries and hard state durable (fsync when needed)."""
        snapshot = ready.snapshot
        if snapshot is not None:
            await self.snapshots.save(snapshot)
        await self.wal.save(
            ready.hard_state,
            ready.entries,
            snapshot.meta if snapshot is not None else None,
            reset=snapshot is not None,
        )
        if ready.must_sync:
            await self.wal.sync()
            self.fsyncs += 1

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Persist a snapshot the state machine made, then release what it covers."""
        await self.snapshots.save(snapshot)
        await self.wal.save(None, [], snapshot.meta, reset=False)
        await self.wal.sync()
        self.fsyncs += 1
        await self.wal.release_to(snapshot.meta.index)
        await self.snapshots.remove_older_than(snapshot.meta.index, self.keep_old_snapshots)
