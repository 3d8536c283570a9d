"""A bounded mailbox: the only queue between an actor and the world.

Rules:
- Capacity is fixed at creation; `put_nowait` raises `MailboxFull` instead of growing,
  `put` waits for room (backpressure for local senders).
- One receiver (the actor's loop); any number of senders.
- `get` returns queued items without a scheduling round-trip, but yields to the
  scheduler every `fairness_batch` items so a busy actor cannot starve the others.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class MailboxFull(Exception):
    """The mailbox is at capacity; the message was not queued."""


class MailboxClosed(Exception):
    """The mailbox was closed (its actor stopped for good)."""


class Mailbox(Generic[T]):
    fairness_batch = 64

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._receivers = trio.lowlevel.ParkingLot()
        self._senders = trio.lowlevel.ParkingLot()
        self._since_checkpoint = 0
        self._puts_since_checkpoint = 0
        self._closed = False
        self.received_total = 0
        self.rejected_total = 0

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, item: T) -> None:
        if self._closed:
            raise MailboxClosed("mailbox closed")
        if len(self._items) >= self.capacity:
            self.rejected_total += 1
            raise MailboxFull(f"mailbox full ({self.capacity} messages)")
        self._items.append(item)
        if self._receivers:
            self._receivers.unpark()

    async def put(self, item: T) -> None:
        if len(self._items) >= self.capacity and not self._closed:
            while len(self._items) >= self.capacity and not self._closed:
                await self._senders.park()
            self.put_nowait(item)
            return
        self.put_nowait(item)
        # Yield to the scheduler every `fairness_batch` sends rather than every send:
        # a full scheduling round per message would cap one-way throughput at a few
        # tens of thousands per second; cancellation is still honoured on every call.
        self._puts_since_checkpoint += 1
        if self._puts_since_checkpoint >= self.fairness_batch:
            self._puts_since_checkpoint = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()

    def put_front(self, item: T) -> None:
        """Requeue an item at the head (used when a restarted actor resumes)."""
        self._items.appendleft(item)
        if self._receivers:
            self._receivers.unpark()

    async def get(self) -> T:
        while not self._items:
            if self._closed:
                raise MailboxClosed("mailbox closed")
            self._since_checkpoint = 0
            await self._receivers.park()
        self._since_checkpoint += 1
        if self._since_checkpoint >= self.fairness_batch:
            self._since_checkpoint = 0
            await trio.lowlevel.checkpoint()
        item = self._items.popleft()
        self.received_total += 1
        if self._senders:
            self._senders.unpark()
        return item

    def drain(self) -> list[T]:
        items = list(self._items)
        self._items.clear()
        if self._senders:
            self._senders.unpark_all()
        return items

    def close(self) -> None:
        self._closed = True
        self._receivers.unpark_all()
        self._senders.unpark_all()
