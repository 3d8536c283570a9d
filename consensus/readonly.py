"""The leader's ReadIndex queue.

A read arrives (locally or forwarded by a follower) with a unique context. The leader
records its commit index as the read's index and sends a heartbeat round carrying the
context; once a quorum of voters has answered that round, no other leader can have
committed anything the read should see, so every read queued up to and including it is
released. Reads that arrive before the leader has committed an entry of its own term wait
in `waiting`: until then its commit index may lag what earlier leaders committed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


class PendingRead:
    __slots__ = ("acks", "index", "requester")

    def __init__(self, index: int, requester: str, leader: str) -> None:
        self.index = index
        self.requester = requester
        self.acks = {leader}


class ReadQueue:
    __slots__ = ("pending", "waiting")

    def __init__(self) -> None:
        self.pending: OrderedDict[bytes, PendingRead] = OrderedDict()
        # Reads held back until the leader commits in its term: (context, requester).
        self.waiting: list[tuple[bytes, str]] = []

    def knows(self, context: bytes) -> bool:
        return context in self.pending or any(c == context for c, _ in self.waiting)

    def add(self, context: bytes, index: int, requester: str, leader: str) -> None:
        self.pending[context] = PendingRead(index, requester, leader)

    def acknowledge(
        self, context: bytes, node: str, quorum_reached: Callable[[set[str]], bool]
    ) -> list[tuple[bytes, PendingRead]]:
        """Record `node`'s answer to the round for `context`; return the reads now released."""
        read = self.pending.get(context)
        if read is None:
            return []
        read.acks.add(node)
        if not quorum_reached(read.acks):
            return []
        released = []
        while self.pending:
            key, value = self.pending.popitem(last=False)
            released.append((key, value))
            if key == context:
                break
        return released

    def clear(self) -> None:
        self.pending.clear()
        self.waiting.clear()
