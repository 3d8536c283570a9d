"""A client of the replicated store: finds the leader, retries, and records a history.

`StoreClient` is one client session (one client id): it sends one request at a time.
Each write gets the next sequence number and keeps it through every retry, so however
often it is retried the store applies it at most once. The client:

- sends writes to the node it believes leads; a `Redirect(leader)` moves it there (or to
  the next member when no leader is named); a timeout or an unreachable node moves it to
  the next member after a jittered backoff;
- holds a node that timed out or was unreachable as *suspect* for two ask timeouts (or
  until it answers): a `Redirect` naming a suspect counts as naming no leader, and the
  next member picked skips suspects. After a leader dies its followers name it until
  they elect another; chasing it would cost an ask timeout each time, while asking the
  followers finds the new leader as soon as it is elected;
- retries after `Retry` answers and timeouts until it gets a definite answer, or until
  `give_up_seconds` (None: never) have passed, when it raises `OutcomeUnknown` for a write
  (it may or may not have been applied) and `StoreUnavailable` for a read;
- records every operation in a `History` when given one: invoke time, return time and
  output, or no return (indeterminate) for an operation that gave up. The times come from
  the history's own `now` (the simulator passes its true virtual time; node clocks drift).

Sleeps and timeouts use the host's clock (`clock.sleep`), never a wall clock.
"""

from __future__ import annotations

import random as random_module
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs

from consensus.peer import PEER_NAME, Redirect, Retry
from consensus.storeapi import (
    Create,
    Delete,
    Get,
    List,
    ListResult,
    ReadResult,
    StoredObject,
    Unwatch,
    Update,
    Watch,
    WatchCancelled,
    WatchEvents,
    WatchStarted,
    WriteResult,
)
from runtime.errors import ActorError, AskTimeout, RemoteError

if TYPE_CHECKING:
    from runtime.host import Clock
    from runtime.node import Inbox, Node


SUSPECT_ASK_TIMEOUTS = 2
"""A node that did not answer is suspect for this many ask timeouts (or until it answers)."""


class StoreUnavailable(Exception):
    """No definite answer within the client's patience (no leader reachable)."""


class OutcomeUnknown(StoreUnavailable):
    """A write got no definite answer: it may or may not have been applied."""


class StoreRequestError(Exception):
    """The store refused the request as malformed (a bug in the caller)."""


# --- history ------------------------------------------------------------------------------------


@attrs.define
class Operation:
    """One client operation as the linearizability checker sees it."""

    id: int
    client: str
    op: str
    """create, update, delete, get"""
    kind: str
    key: str
    value: bytes | None
    expected_version: int
    invoke_seconds: float
    seq: int = 0
    return_seconds: float | None = None
    """None: no definite answer (indeterminate, 'info')."""
    output: Any = None
    """WriteResult for writes; StoredObject | None for reads."""
    attempts: int = 0

    @property
    def done(self) -> bool:
        return self.return_seconds is not None


class History:
    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.operations: list[Operation] = []

    def invoke(
        self,
        client: str,
        op: str,
        kind: str,
        key: str,
        value: bytes | None = None,
        expected_version: int = 0,
        seq: int = 0,
    ) -> Operation:
        operation = Operation(
            len(self.operations), client, op, kind, key, value, expected_version, self.now(), seq
        )
        self.operations.append(operation)
        return operation

    def complete(self, operation: Operation, output: Any) -> None:
        operation.return_seconds = self.now()
        operation.output = output

    def pending(self) -> list[Operation]:
        return [operation for operation in self.operations if not operation.done]


# --- the client -----------------------------------------------------------------------------------


class StoreClient:
    def __init__(
        self,
        node: Node,
        client_id: str,
        members: Sequence[str] | Callable[[], Sequence[str]],
        *,
        clock: Clock | None = None,
        random: random_module.Random | None = None,
        ask_timeout_seconds: float = 2.0,
        backoff_seconds: float = 0.05,
        backoff_max_seconds: float = 1.0,
        give_up_seconds: float | None = 30.0,
        history: History | None = None,
        name: str = PEER_NAME,
    ) -> None:
        if not client_id:
            raise ValueError("client_id must be non-empty")
        self.node = node
        self.client_id = client_id
        self._members = members
        self.clock = clock if clock is not None else node.host.clock
        self.random = random if random is not None else node.host.derived_random(f"client/{client_id}")
        self.ask_timeout_seconds = ask_timeout_seconds
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.give_up_seconds = give_up_seconds
        self.history = history
        self.name = name
        self.leader = ""
        self.seq = 0
        self.busy = False
        self.retries = 0
        self.redirects = 0
        self.timeouts = 0
        self.last_answered = ""
        """The node that gave the last definite answer."""
        self._suspects: dict[str, float] = {}
        """Nodes that timed out or were unreachable, until when (host clock) a `Redirect`
        naming them is not followed at once: after a leader dies its followers keep naming
        it until they elect another, and chasing it costs an ask timeout each time."""

    def members(self) -> list[str]:
        members = self._members() if callable(self._members) else self._members
        return list(members)

    # --- the API -----------------------------------------------------------------------------

    async def create(self, kind: str, object_id: str, data: bytes) -> WriteResult:
        seq = self.seq + 1
        return await self._write(Create(self.client_id, seq, kind, object_id, data), "create", data, 0)

    async def update(
        self, kind: str, object_id: str, data: bytes, expected_version: int = 0
    ) -> WriteResult:
        seq = self.seq + 1
        request = Update(self.client_id, seq, kind, object_id, data, expected_version)
        return await self._write(request, "update", data, expected_version)

    async def delete(self, kind: str, object_id: str, expected_version: int = 0) -> WriteResult:
        seq = self.seq + 1
        request = Delete(self.client_id, seq, kind, object_id, expected_version)
        return await self._write(request, "delete", None, expected_version)

    async def get(self, kind: str, object_id: str) -> StoredObject | None:
        operation = self._invoke("get", kind, object_id, None, 0, 0)
        reply = await self._call(Get(kind, object_id), read=True, operation=operation)
        assert isinstance(reply, ReadResult)
        self._complete(operation, reply.object)
        return reply.object

    async def list(self, kind: str) -> list[StoredObject]:
        reply = await self._call(List(kind), read=True, operation=None)
        assert isinstance(reply, ListResult)
        return reply.objects

    @asynccontextmanager
    async def watch(self, kind: str, from_index: int = 0) -> AsyncIterator[WatchStream]:
        """Stream changes of `kind` from `from_index` (served by the leader, or any node)."""
        async with self.node.open_inbox(prefix="watch") as inbox:
            started = await self._call(Watch(kind, from_index, inbox.ref), read=True, operation=None)
            assert isinstance(started, WatchStarted)
            target = self.last_answered
            stream = WatchStream(inbox, started.watch_id, started.index)
            try:
                yield stream
            finally:
                try:
                    await self.node.ref(self.name, target).ask(
                        Unwatch(started.watch_id), timeout=self.ask_timeout_seconds
                    )
                except (ActorError, AskTimeout):
                    pass

    # --- machinery ---------------------------------------------------------------------------

    def _invoke(
        self, op: str, kind: str, key: str, value: bytes | None, expected_version: int, seq: int
    ) -> Any:
        if self.busy:
            raise RuntimeError(f"client {self.client_id} sends one request at a time")
        if self.history is None:
            return None
        return self.history.invoke(self.client_id, op, kind, key, value, expected_version, seq)

    def _complete(self, operation: Operation | None, output: Any) -> None:
        if operation is not None and self.history is not None:
            self.history.complete(operation, output)

    async def _write(
        self, request: Create | Update | Delete, op: str, value: bytes | None, expected_version: int
    ) -> WriteResult:
        operation = self._invoke(op, request.kind, request.id, value, expected_version, request.seq)
        self.seq = request.seq
        reply = await self._call(request, read=False, operation=operation)
        assert isinstance(reply, WriteResult)
        self._complete(operation, reply)
        return reply

    def _next_target(self, after: str) -> str:
        members = self.members()
        if not members:
            raise StoreUnavailable("no store members are known")
        if after in members:
            start = members.index(after) + 1
            candidates = [members[(start + offset) % len(members)] for offset in range(len(members))]
            for candidate in candidates:
                if not self._suspected(candidate):
                    return candidate
            return candidates[0]
        return self.random.choice(members)

    def _suspected(self, node: str) -> bool:
        until = self._suspects.get(node)
        if until is None:
            return False
        if self.clock.now() >= until:
            del self._suspects[node]
            return False
        return True

    async def _backoff(self, attempt: int) -> None:
        base = min(self.backoff_max_seconds, self.backoff_seconds * (2 ** min(attempt, 10)))
        await self.clock.sleep(base * (0.5 + self.random.random() / 2))

    async def _call(self, request: Any, *, read: bool, operation: Operation | None) -> Any:
        self.busy = True
        try:
            return await self._call_until_answered(request, read, operation)
        finally:
            self.busy = False

    async def _call_until_answered(self, request: Any, read: bool, operation: Operation | None) -> Any:
        start = self.clock.now()
        target = self.leader or self._next_target("")
        attempt = 0
        while True:
            if operation is not None:
                operation.attempts += 1
            try:
                reply = await self.node.ref(self.name, target).ask(
                    request, timeout=self.ask_timeout_seconds
                )
            except AskTimeout:
                self.timeouts += 1
                reply = None
            except RemoteError as error:
                if error.kind == "invalid":
                    raise StoreRequestError(str(error)) from None
                if error.kind == "compacted":
                    raise StoreUnavailable(str(error)) from None
                reply = None
            except ActorError:
                reply = None
            if reply is None:
                if self.leader == target:
                    self.leader = ""
                self._suspects[target] = self.clock.now() + SUSPECT_ASK_TIMEOUTS * self.ask_timeout_seconds
                target = self._next_target(target)
                waited = True
            elif isinstance(reply, Redirect):
                self.redirects += 1
                self._suspects.pop(target, None)
                if reply.leader and reply.leader != target and not self._suspected(reply.leader):
                    target = self.leader = reply.leader
                    waited = False
                else:
                    if self.leader == target:
                        self.leader = ""
                    target = self._next_target(target)
                    waited = True
            elif isinstance(reply, Retry):
                self._suspects.pop(target, None)
                waited = True
            else:
                self._suspects.pop(target, None)
                if not read:
                    self.leader = target
                self.last_answered = target
                return reply
            self.retries += 1
            attempt += 1
            if self.give_up_seconds is not None and self.clock.now() - start >= self.give_up_seconds:
                kind = StoreUnavailable if read else OutcomeUnknown
                raise kind(
                    f"client {self.client_id}: no definite answer to {type(request).__name__} "
                    f"within {self.give_up_seconds:g}s ({attempt} attempts)"
                )
            if waited:
                await self._backoff(attempt)


class WatchStream:
    """The changes a watch delivers, as an async iterator of `Change` lists."""

    def __init__(self, inbox: Inbox, watch_id: int, index: int) -> None:
        self.inbox = inbox
        self.watch_id = watch_id
        self.index = index

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> list[Any]:
        while True:
            received = await self.inbox.receive()
            if isinstance(received, WatchEvents) and received.watch_id == self.watch_id:
                return list(received.changes)
            if isinstance(received, WatchCancelled) and received.watch_id == self.watch_id:
                raise StopAsyncIteration
