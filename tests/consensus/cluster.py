"""A whole Raft cluster in one process, for tests: cores, a network we control, crashes.

Every node is a `Raft` core plus what its driver would keep: the persisted state (exactly
what the handled Ready batches persisted — nothing else survives a crash) and a toy state
machine (the list of applied payloads). The network is a list of messages in flight that a
test delivers, drops, duplicates or reorders one at a time. A `SafetyChecker` watches every
step unless told not to.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import attrs
import msgpack

from consensus.checker import SafetyChecker
from consensus.messages import (
    Configuration,
    Entry,
    EntryKind,
    HardState,
    Message,
    PersistedState,
    ReadState,
    Ready,
    Role,
    Snapshot,
)
from consensus.raft import Raft, RaftConfig
from runtime.codec import decode, encode


@attrs.define
class Persisted:
    hard_state: HardState = attrs.field(factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = attrs.field(factory=list)

    def base(self) -> int:
        return self.snapshot.meta.index if self.snapshot is not None else 0

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """As the WAL replays it: later entries survive only if the log matched there."""
        meta = snapshot.meta
        keep = [e for e in self.entries if e.index > meta.index]
        at = [e for e in self.entries if e.index == meta.index]
        self.snapshot = snapshot
        self.entries = keep if at and at[0].term == meta.term else []

    def append(self, entries: list[Entry]) -> None:
        first = entries[0].index
        del self.entries[max(0, first - self.base() - 1) :]
        self.entries.extend(entries)


class App:
    """The state machine: the payloads of NORMAL entries, in index order."""

    def __init__(self) -> None:
        self.items: list[tuple[int, bytes]] = []
        self.applied = 0

    def apply(self, entry: Entry) -> None:
        if entry.kind is EntryKind.NORMAL:
            self.items.append((entry.index, entry.data))
        self.applied = entry.index

    def snapshot_data(self) -> bytes:
        return msgpack.packb([self.applied, [list(item) for item in self.items]])

    def restore(self, data: bytes) -> None:
        applied, items = msgpack.unpackb(data)
        self.applied = applied
        self.items = [(index, payload) for index, payload in items]


class Node:
    def __init__(self, cluster: Cluster, node_id: str, config: RaftConfig) -> None:
        self.cluster = cluster
        self.id = node_id
        self.config = config
        self.persisted = Persisted()
        self.app = App()
        self.restarts = 0
        self.alive = True
        self.read_states: list[ReadState] = []
        self.raft = Raft(config, self._random())

    def _random(self) -> random.Random:
        return random.Random(f"{self.cluster.seed}/{self.id}/{self.restarts}")

    def crash(self) -> None:
        self.alive = False

    def restart(self) -> None:
        self.restarts += 1
        self.alive = True
        state = self.cluster.recover(self)
        self.app = App()
        if state.snapshot is not None:
            self.app.restore(state.snapshot.data)
        self.raft = Raft(self.config, self._random(), state)
        if self.cluster.checker is not None:
            self.cluster.checker.node_restarted(self.raft)


class Cluster:
    def __init__(
        self,
        ids: Iterable[str] = ("n1", "n2", "n3"),
        voters: Iterable[str] | None = None,
        seed: int | str = 0,
        check: bool = True,
        wire: bool = False,
        **options: object,
    ) -> None:
        self.seed = seed
        ids = list(ids)
        voters = list(voters) if voters is not None else ids
        self.initial = Configuration(voters=tuple(sorted(voters)))
        self.checker: SafetyChecker | None = SafetyChecker() if check else None
        self.wire = wire
        self.in_flight: list[Message] = []
        self.cut: set[tuple[str, str]] = set()
        self.delivered = 0
        self.trace: list[Message] = []
        self.tracing = False
        self.options = options
        self.nodes: dict[str, Node] = {}
        for node_id in ids:
            self.add_node(node_id, founding=node_id in voters)

    def add_node(self, node_id: str, founding: bool = False) -> Node:
        config = RaftConfig(
            node_id=node_id,
            initial_configuration=self.initial if founding else None,
            **self.options,  # type: ignore[arg-type]
        )
        node = Node(self, node_id, config)
        self.nodes[node_id] = node
        return node

    # --- access ----------------------------------------------------------------------------

    def __getitem__(self, node_id: str) -> Raft:
        return self.nodes[node_id].raft

    def leaders(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.alive and n.raft.role is Role.LEADER]

    def leader(self) -> str:
        """The leader of the highest term among live nodes."""
        best = max(
            (n for n in self.nodes.values() if n.alive and n.raft.role is Role.LEADER),
            key=lambda n: n.raft.term,
            default=None,
        )
        assert best is not None, "no leader"
        return best.id

    def observe(self, node_id: str) -> None:
        if self.checker is not None:
            self.checker.observe(self.nodes[node_id].raft)

    # --- inputs ----------------------------------------------------------------------------

    def tick(self, node_id: str, times: int = 1) -> None:
        node = self.nodes[node_id]
        if not node.alive:
            return
        for _ in range(times):
            node.raft.tick()
            self.observe(node_id)

    def tick_all(self, times: int = 1) -> None:
        for _ in range(times):
            for node_id in self.nodes:
                self.tick(node_id)

    def campaign(self, node_id: str) -> None:
        self.nodes[node_id].raft.campaign()
        self.observe(node_id)

    def propose(self, node_id: str, data: bytes | list[bytes]) -> object:
        receipt = self.nodes[node_id].raft.propose(data)
        self.observe(node_id)
        return receipt

    def read(self, node_id: str, context: bytes) -> None:
        if self.checker is not None:
            self.checker.read_requested(context)
        self.nodes[node_id].raft.read_index(context)
        self.observe(node_id)

    def compact(self, node_id: str, retain_entries: int = 0) -> Snapshot | None:
        node = self.nodes[node_id]
        raft = node.raft
        index = raft.applied_index
        current = raft.latest_snapshot.meta.index if raft.latest_snapshot else 0
        if index <= current:
            return None
        snapshot = raft.compact(index, node.app.snapshot_data(), retain_entries)
        self.save_snapshot(node, snapshot)
        return snapshot

    # --- persistence (overridden to go through the real WAL) --------------------------------

    def persist(self, node: Node, ready: Ready) -> None:
        """Make the Ready's snapshot, entries and hard state durable: a model of the WAL."""
        persisted = node.persisted
        if ready.snapshot is not None:
            persisted.save_snapshot(ready.snapshot)
        if ready.entries:
            persisted.append(ready.entries)
        if ready.hard_state is not None:
            persisted.hard_state = ready.hard_state

    def save_snapshot(self, node: Node, snapshot: Snapshot) -> None:
        node.persisted.save_snapshot(snapshot)

    def recover(self, node: Node) -> PersistedState:
        """What a crashed node finds on restart."""
        persisted = node.persisted
        return PersistedState(persisted.hard_state, persisted.snapshot, list(persisted.entries))

    # --- driver ----------------------------------------------------------------------------

    def process(self, node_id: str) -> int:
        """Handle every Ready the node has, as its driver would; return how many."""
        node = self.nodes[node_id]
        if not node.alive:
            return 0
        handled = 0
        raft = node.raft
        while raft.has_ready():
            ready = raft.ready()
            if ready is None:
                break
            self.handle_ready(node, ready)
            handled += 1
        return handled

    def handle_ready(self, node: Node, ready: Ready) -> None:
        raft = node.raft
        if self.checker is not None:
            self.checker.observe_ready(raft, ready)
        self.persist(node, ready)
        if ready.snapshot is not None:
            node.app.restore(ready.snapshot.data)
        for message in ready.messages:
            self.in_flight.append(decode(encode(message)) if self.wire else message)
        for entry in ready.committed_entries:
            node.app.apply(entry)
        node.read_states.extend(ready.read_states)
        raft.advance(ready)
        self.observe(node.id)

    def process_all(self) -> int:
        return sum(self.process(node_id) for node_id in self.nodes)

    # --- network ---------------------------------------------------------------------------

    def deliver(self, position: int = 0, process: bool = True) -> Message | None:
        """Deliver the message at `position` in flight (0 is the oldest)."""
        message = self.in_flight.pop(position)
        self.delivered += 1
        if self.tracing:
            self.trace.append(message)
        node = self.nodes.get(message.to)
        if node is None or not node.alive or (message.sender, message.to) in self.cut:
            return None
        node.raft.step(message)
        self.observe(node.id)
        if process:
            self.process(node.id)
        return message

    def drop(self, position: int) -> Message:
        return self.in_flight.pop(position)

    def duplicate(self, position: int) -> None:
        self.in_flight.append(self.in_flight[position])

    def isolate(self, node_id: str) -> None:
        for other in self.nodes:
            if other != node_id:
                self.cut.add((node_id, other))
                self.cut.add((other, node_id))

    def partition(self, *groups: Iterable[str]) -> None:
        sets = [set(group) for group in groups]
        for a in self.nodes:
            for b in self.nodes:
                if a != b and not any(a in s and b in s for s in sets):
                    self.cut.add((a, b))

    def heal(self) -> None:
        self.cut.clear()

    def stabilize(
        self, max_messages: int = 100_000, only: Callable[[Message], bool] | None = None
    ) -> None:
        """Process and deliver until nothing is left in flight (dropping cut links)."""
        self.process_all()
        while self.in_flight and max_messages > 0:
            if only is not None:
                position = next((i for i, m in enumerate(self.in_flight) if only(m)), None)
                if position is None:
                    return
                self.deliver(position)
            else:
                self.deliver(0)
            max_messages -= 1
            if not self.in_flight:
                self.process_all()
        assert max_messages > 0, "the cluster did not stabilize"

    def crash(self, node_id: str) -> None:
        self.nodes[node_id].crash()

    def restart(self, node_id: str) -> None:
        self.nodes[node_id].restart()
        self.observe(node_id)

    def elect(self, node_id: str) -> None:
        """Make `node_id` leader through a normal election and let things settle."""
        self.campaign(node_id)
        self.stabilize()
        assert self.nodes[node_id].raft.role is Role.LEADER, f"{node_id} did not win"

    def applied(self, node_id: str) -> list[bytes]:
        return [payload for _, payload in self.nodes[node_id].app.items]
