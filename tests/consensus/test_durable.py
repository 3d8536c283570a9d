"""Whole clusters whose nodes persist through the real WAL and snapshot files.

Every Ready goes through `DurableState.persist` onto an in-memory disk that, on a crash,
loses what was not synced and may tear the last write; a restarted node is rebuilt from
the WAL's replay alone. The safety checker must stay silent.
"""

from __future__ import annotations

import random

from consensus.durable import DurableState
from consensus.messages import PersistedState, Ready, Snapshot
from tests.consensus import nemesis
from tests.consensus.cluster import Cluster, Node
from tests.consensus.memdisk import CrashDisk, run


class DurableCluster(Cluster):
    def __init__(self, *args: object, **kwargs: object) -> None:
        self.disks: dict[str, CrashDisk] = {}
        self.durables: dict[str, DurableState] = {}
        self.crash_random = random.Random(f"crash/{kwargs.get('seed', 0)}")
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def durable(self, node: Node) -> DurableState:
        if node.id not in self.durables:
            self.disks[node.id] = CrashDisk()
            self.durables[node.id] = run(DurableState.open(self.disks[node.id], segment_bytes_max=2048))
        return self.durables[node.id]

    def persist(self, node: Node, ready: Ready) -> None:
        run(self.durable(node).persist(ready))
        super().persist(node, ready)

    def save_snapshot(self, node: Node, snapshot: Snapshot) -> None:
        run(self.durable(node).save_snapshot(snapshot))
        super().save_snapshot(node, snapshot)

    def recover(self, node: Node) -> PersistedState:
        self.durable(node)
        self.disks[node.id].crash(self.crash_random)
        durable = run(DurableState.open(self.disks[node.id], segment_bytes_max=2048))
        self.durables[node.id] = durable
        recovered = durable.recovered
        # The WAL must give back exactly what the model of persistence holds.
        model = super().recover(node)
        assert recovered.hard_state.term == model.hard_state.term
        assert recovered.hard_state.vote == model.hard_state.vote
        assert recovered.snapshot == model.snapshot
        assert recovered.entries == model.entries
        return recovered


def test_clusters_on_the_real_wal_stay_safe_through_crashes() -> None:
    restarts = 0
    for seed in range(16):
        outcome = nemesis.run(seed, steps=1200, profile="crashy", cluster_class=DurableCluster)
        assert outcome.violation is None, f"seed {seed}: {outcome.violation}"
        assert outcome.cluster is not None and outcome.cluster.checker is not None
        restarts += outcome.cluster.checker.coverage["restart"]
    assert restarts >= 50, "the crashes must really exercise recovery"


def test_a_node_comes_back_from_its_wal_with_its_vote_log_and_snapshot() -> None:
    cluster = DurableCluster(seed=3)
    cluster.elect("n1")
    cluster.propose("n1", [b"%d" % i for i in range(30)])
    cluster.stabilize()
    cluster.compact("n2")
    cluster.propose("n1", b"after")
    cluster.stabilize()
    before = cluster["n2"].status()
    cluster.crash("n2")
    cluster.restart("n2")
    after = cluster["n2"]
    assert (after.term, after.vote) == (before.term, before.vote)
    assert after.latest_snapshot is not None and after.latest_snapshot.meta.index == 31
    assert after.last_index == before.last_index
    assert cluster.nodes["n2"].app.items[-1] == (31, b"29")
