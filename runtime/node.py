"""A node: the actors of one host, their supervision, and message routing.

A node owns a root nursery. Actors are spawned into it (or into a parent actor's
nursery), each under a supervisor task (supervision.py). Messages to actors on the same
node go straight into their mailbox as Python objects; messages to other nodes are
encoded (codec.py), framed, and handed to the host's transport. Wire frames are msgpack
arrays:

    [0, to_name, message, sender_node, sender_name]   tell
    [1, to_name, message, reply_node, correlation]    ask
    [2, correlation, ok, value_or_error]              reply

A frame that does not decode is dropped and counted, never raised into an actor.
An ask waits for its reply up to its timeout; a dead or partitioned peer is a timeout.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import outcome
import trio

from runtime.actor import Actor, Envelope, Ref, ReplyTo, ask_timeout_seconds_default, current_node
from runtime.codec import DecodeError, EncodeError, decode, encode, from_wire, pack, to_wire, unpack
from runtime.errors import (
    ActorBusy,
    ActorCrashed,
    AskTimeout,
    Escalation,
    NoSuchActor,
    RemoteError,
    ReplyError,
)
from runtime.mailbox import Mailbox, MailboxClosed, MailboxFull
from runtime.supervision import RestartBudget, RestartPolicy

if TYPE_CHECKING:
    from runtime.host import Host

TELL, ASK, REPLY = 0, 1, 2

_ERROR_KINDS: dict[str, type[Exception]] = {
    "crashed": ActorCrashed,
    "no_such_actor": NoSuchActor,
    "busy": ActorBusy,
}

log = logging.getLogger("flotta.runtime")


@attrs.define
class NodeStatistics:
    frames_malformed: int = 0
    messages_dropped_full: int = 0
    messages_dropped_unknown_actor: int = 0
    replies_unmatched: int = 0
    replies_unencodable: int = 0
    crashes: int = 0
    restarts: int = 0


class _PendingReply:
    """An ask waiting for its reply. The asking task parks in `wait_task_rescheduled`
    and is woken by the reply, by the node's ask timer, or by its own cancellation —
    no cancel scope or Event per ask, which is most of an ask's cost otherwise."""

    __slots__ = ("deadline", "done", "message_type", "outcome", "target", "task", "timeout", "waiting")

    def __init__(
        self, task: trio.lowlevel.Task, deadline: float, target: Ref, message_type: type, timeout: float
    ) -> None:
        self.task = task
        self.deadline = deadline
        # What the timeout error will say, formatted only if it is ever raised.
        self.target = target
        self.message_type = message_type
        self.timeout = timeout
        self.done = False
        self.waiting = False
        self.outcome: outcome.Outcome[Any] | None = None

    @property
    def description(self) -> str:
        return f"no reply from {self.target} to {self.message_type.__name__} within {self.timeout:g}s"

    def _finish(self, result: outcome.Outcome[Any]) -> None:
        if self.done:
            return
        self.done = True
        if self.waiting:
            self.waiting = False
            trio.lowlevel.reschedule(self.task, result)
        else:
            self.outcome = result

    def resolve(self, value: Any) -> None:
        self._finish(outcome.Value(value))

    def fail(self, error: Exception) -> None:
        self._finish(outcome.Error(error))


class _Cell:
    """What the node keeps per actor name across restarts."""

    def __init__(self, name: str, capacity: int, policy: RestartPolicy) -> None:
        self.name = name
        self.mailbox: Mailbox[Envelope] = Mailbox(capacity)
        self.policy = policy
        self.instance: Actor | None = None
        self.current: Envelope | None = None
        self.stop_requested = False


_STOP = Envelope(message=None)


class Inbox:
    """A mailbox with an address but no actor: the caller reads it directly.

    Used where a request's answer is a stream of messages (pull progress, log lines,
    watch events): the caller opens an inbox, sends its `ref` along with the request,
    and iterates the messages as they arrive, local or remote.
    """

    def __init__(self, node: Node, cell: _Cell) -> None:
        self.node = node
        self.ref = Ref(node.node_id, cell.name, node)
        self._cell = cell

    async def receive(self) -> Any:
        envelope = await self._cell.mailbox.get()
        return envelope.message

    def receive_nowait(self) -> Any:
        """The next queued message, or raise trio.WouldBlock."""
        if not len(self._cell.mailbox):
            raise trio.WouldBlock
        return self._cell.mailbox._items.popleft().message

    def __aiter__(self) -> Inbox:
        return self

    async def __anext__(self) -> Any:
        return await self.receive()


class DeferredReply:
    """The reply to an ask, to be sent later (after the handler returned).

    A tell has no reply: `send` and `fail` then do nothing.
    """

    def __init__(self, node: Node, reply_to: ReplyTo | None) -> None:
        self._node = node
        self._reply_to = reply_to
        self.sent = False

    @property
    def expected(self) -> bool:
        return self._reply_to is not None

    def send(self, value: Any) -> None:
        if self._reply_to is not None and not self.sent:
            self.sent = True
            self._node._send_reply(self._reply_to, value)

    def fail(self, kind: str, text: str) -> None:
        if self._reply_to is not None and not self.sent:
            self.sent = True
            self._node._send_error(self._reply_to, kind, text)


def _error_from_wire(kind: str, message: str) -> Exception:
    error_type = _ERROR_KINDS.get(kind)
    if error_type is not None:
        return error_type(message)
    return RemoteError(kind, message)


class Node:
    remote_tell_batch = 64
    sender_refs_max = 4096

    def __init__(self, host: Host) -> None:
        self.host = host
        self.node_id = host.node_id
        self.statistics = NodeStatistics()
        self.encode_local = os.environ.get("FLOTTA_ENCODE_LOCAL") == "1"
        self._cells: dict[str, _Cell] = {}
        self._pending: dict[int, _PendingReply] = {}
        self._correlations = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self._remote_tells = 0
        self._ask_deadlines: list[tuple[float, int]] = []
        self._ask_timer_scope: trio.CancelScope | None = None
        self._sender_refs: dict[tuple[str, str], Ref] = {}

    # --- lifetime ---------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Node]:
        """Run the node (transport and root nursery) for the body of the `async with`."""
        token = current_node.set(self)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._ask_timer)
                if self.host.transport is not None:
                    await nursery.start(self.host.transport.run, self._on_frame)
                try:
                    yield self
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            for pending in self._pending.values():
                pending.fail(AskTimeout(f"node {self.node_id} stopped"))
            current_node.reset(token)

    async def run_forever(self, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.running():
            task_status.started(self)
            await trio.sleep_forever()

    def ref(self, name: str, node: str | None = None) -> Ref:
        """A ref usable from outside actors (tests, the CLI entry points)."""
        return Ref(node if node is not None else self.node_id, name, self)

    @asynccontextmanager
    async def open_inbox(self, capacity: int = 1024, prefix: str = "inbox") -> AsyncIterator[Inbox]:
        """A temporary addressable mailbox for the body of the `async with`."""
        name = f"{prefix}-{next(self._correlations)}"
        cell = _Cell(name, capacity, RestartPolicy(restart=False))
        self._cells[name] = cell
        try:
            yield Inbox(self, cell)
        finally:
            if self._cells.get(name) is cell:
                del self._cells[name]
            cell.mailbox.close()

    def actor(self, name: str) -> Actor | None:
        """The current incarnation of a local actor (for checkers and tests)."""
        cell = self._cells.get(name)
        return cell.instance if cell is not None else None

    def actor_names(self) -> list[str]:
        return sorted(self._cells)

    # --- spawning and supervision -------------------------------------------------------

    async def spawn(
        self,
        factory: Callable[[], Actor],
        name: str,
        restart: RestartPolicy | None = None,
        parent: Actor | None = None,
    ) -> Ref:
        if name in self._cells:
            raise ValueError(f"an actor named {name!r} already runs on node {self.node_id}")
        nursery = parent.nursery if parent is not None else self._nursery
        if nursery is None:
            raise RuntimeError(f"node {self.node_id} is not running")
        policy = restart if restart is not None else RestartPolicy()
        probe = factory()
        cell = _Cell(name, type(probe).mailbox_capacity, policy)
        self._cells[name] = cell
        first = [probe]

        def make() -> Actor:
            return first.pop() if first else factory()

        try:
            return await nursery.start(self._supervise, cell, make)
        except BaseException:
            self._cells.pop(name, None)
            raise

    async def _supervise(
        self, cell: _Cell, factory: Callable[[], Actor], *, task_status: trio.TaskStatus[Ref]
    ) -> None:
        # Tasks inherit the context of whoever spawned them, which may be another
        # node's actor (in the simulator many nodes share one Trio run): pin ours.
        current_node.set(self)
        budget = RestartBudget(cell.policy)
        started = False

        def on_started(ref: Ref) -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started(ref)

        try:
            while True:
                try:
                    await self._incarnate(cell, factory, on_started)
                    return
                except Exception as error:
                    if not started:
                        leaf = _unwrap(error)
                        if isinstance(leaf, Exception) and leaf is not error:
                            raise leaf from None
                        raise
                    self.statistics.crashes += 1
                    cause = _unwrap(error)
                    self._answer_crashed(cell, cause)
                    message = cell.current.message if cell.current is not None else None
                    cell.current = None
                    log.error(
                        "actor %s on node %s crashed while handling %s: %s: %s",
                        cell.name,
                        self.node_id,
                        type(message).__name__ if message is not None else "no message",
                        type(cause).__name__,
                        cause,
                        exc_info=cause,
                    )
                    if not budget.record_crash(trio.current_time()):
                        raise Escalation(
                            f"actor {cell.name} on node {self.node_id} crashed "
                            f"{budget.attempt} times within {cell.policy.window_seconds:g}s"
                        ) from cause
                    await trio.sleep(
                        cell.policy.backoff_seconds(budget.attempt, self.host.random.random())
                    )
                    self.statistics.restarts += 1
        finally:
            cell.instance = None
            if self._cells.get(cell.name) is cell:
                del self._cells[cell.name]
            cell.mailbox.close()
            for envelope in cell.mailbox.drain():
                if envelope.reply_to is not None:
                    self._send_error(envelope.reply_to, "no_such_actor", f"actor {cell.name} stopped")

    async def _incarnate(
        self, cell: _Cell, factory: Callable[[], Actor], on_started: Callable[[Ref], None]
    ) -> None:
        actor = factory()
        actor.node = self
        actor.host = self.host
        actor.name = cell.name
        actor.ref = Ref(self.node_id, cell.name, self)
        cell.instance = actor
        cell.stop_requested = False
        async with trio.open_nursery() as nursery:
            actor.nursery = nursery
            await actor.started()
            on_started(actor.ref)
            await self._message_loop(cell, actor)
            await actor.stopping()
            nursery.cancel_scope.cancel()

    async def _message_loop(self, cell: _Cell, actor: Actor) -> None:
        mailbox = cell.mailbox
        receive = actor.receive
        while not cell.stop_requested:
            envelope = await mailbox.get()
            if envelope is _STOP:
                continue
            cell.current = envelope
            try:
                result = await receive(envelope.message)
            except ReplyError as error:
                cell.current = None
                if envelope.reply_to is not None:
                    self._send_error(envelope.reply_to, error.kind, str(error))
                continue
            cell.current = None
            if envelope.reply_to is not None and not envelope.deferred:
                self._send_reply(envelope.reply_to, result)

    def _answer_crashed(self, cell: _Cell, cause: BaseException) -> None:
        envelope = cell.current
        if envelope is not None and envelope.reply_to is not None:
            self._send_error(
                envelope.reply_to,
                "crashed",
                f"actor {cell.name} crashed handling {type(envelope.message).__name__}: "
                f"{type(cause).__name__}: {cause}",
            )

    def _defer_reply(self, name: str) -> DeferredReply:
        cell = self._cells.get(name)
        envelope = cell.current if cell is not None else None
        if envelope is None:
            raise RuntimeError("defer_reply() outside of handling a message")
        envelope.deferred = True
        return DeferredReply(self, envelope.reply_to)

    def _request_stop(self, name: str) -> None:
        cell = self._cells.get(name)
        if cell is not None and not cell.stop_requested:
            cell.stop_requested = True
            cell.mailbox.put_front(_STOP)

    def stop_actor(self, name: str) -> None:
        """Stop an actor for good after its current message."""
        self._request_stop(name)

    # --- sending --------------------------------------------------------------------------

    def _local_cell(self, ref: Ref) -> _Cell:
        cell = self._cells.get(ref.name)
        if cell is None:
            raise NoSuchActor(f"no actor {ref.name!r} on node {self.node_id}")
        return cell

    def _maybe_roundtrip(self, message: Any) -> Any:
        return decode(encode(message)) if self.encode_local else message

    def tell_nowait(self, ref: Ref, message: Any, sender: Ref | None = None) -> None:
        if ref.node == self.node_id:
            cell = self._local_cell(ref)
            try:
                cell.mailbox.put_nowait(Envelope(self._maybe_roundtrip(message), None, sender))
            except (MailboxFull, MailboxClosed) as error:
                raise ActorBusy(f"{ref}: {error}") from None
            return
        frame = pack(
            [TELL, ref.name, to_wire(message), self.node_id, sender.name if sender else ""]
        )
        self.host.transport.send_nowait(ref.node, frame)

    async def tell(self, ref: Ref, message: Any, sender: Ref | None = None) -> None:
        if ref.node == self.node_id:
            cell = self._local_cell(ref)
            try:
                await cell.mailbox.put(Envelope(self._maybe_roundtrip(message), None, sender))
            except MailboxClosed:
                raise NoSuchActor(f"actor {ref} stopped") from None
            return
        self.tell_nowait(ref, message, sender)
        # A scheduling round per remote tell would hand the transport one frame per
        # write; yielding every `remote_tell_batch` tells lets frames queue up and go out
        # in one write, which is most of the throughput of a socket transport.
        self._remote_tells += 1
        if self._remote_tells >= self.remote_tell_batch:
            self._remote_tells = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()

    async def ask(
        self, ref: Ref, message: Any, timeout: float = ask_timeout_seconds_default
    ) -> Any:
        correlation = next(self._correlations)
        deadline = trio.current_time() + timeout
        pending = _PendingReply(trio.lowlevel.current_task(), deadline, ref, type(message), timeout)
        self._pending[correlation] = pending
        self._arm_ask_timer(deadline, correlation)
        try:
            if ref.node == self.node_id:
                cell = self._local_cell(ref)
                envelope = Envelope(self._maybe_roundtrip(message), ReplyTo(self.node_id, correlation), None)
                try:
                    cell.mailbox.put_nowait(envelope)
                except MailboxFull:
                    with trio.move_on_after(max(0.0, deadline - trio.current_time())):
                        await cell.mailbox.put(envelope)
                except MailboxClosed:
                    raise NoSuchActor(f"actor {ref} stopped") from None
            else:
                frame = pack([ASK, ref.name, to_wire(message), self.node_id, correlation])
                self.host.transport.send_nowait(ref.node, frame)
            if pending.outcome is None and not pending.done:
                pending.waiting = True

                def abort(_: Any) -> trio.lowlevel.Abort:
                    pending.waiting = False
                    pending.done = True
                    return trio.lowlevel.Abort.SUCCEEDED

                return await trio.lowlevel.wait_task_rescheduled(abort)
            await trio.lowlevel.checkpoint()
            assert pending.outcome is not None
            return pending.outcome.unwrap()
        finally:
            del self._pending[correlation]

    def _arm_ask_timer(self, deadline: float, correlation: int) -> None:
        deadlines = self._ask_deadlines
        # Entries of answered asks stay until their deadline passes (lazy deletion);
        # compact when they outnumber the live ones, so memory stays bounded.
        if len(deadlines) > 4 * len(self._pending) + 1024:
            deadlines[:] = [entry for entry in deadlines if entry[1] in self._pending]
            heapq.heapify(deadlines)
        heapq.heappush(deadlines, (deadline, correlation))
        scope = self._ask_timer_scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

    async def _ask_timer(self) -> None:
        """Fails asks whose deadline passed; sleeps until the earliest deadline."""
        deadlines = self._ask_deadlines
        while True:
            with trio.CancelScope() as scope:
                scope.deadline = deadlines[0][0] if deadlines else math.inf
                self._ask_timer_scope = scope
                await trio.sleep_forever()
            self._ask_timer_scope = None
            now = trio.current_time()
            while deadlines and deadlines[0][0] <= now:
                _, correlation = heapq.heappop(deadlines)
                pending = self._pending.get(correlation)
                if pending is not None and not pending.done:
                    pending.fail(AskTimeout(pending.description))

    def _send_reply(self, reply_to: ReplyTo, value: Any) -> None:
        if reply_to.node == self.node_id:
            pending = self._pending.get(reply_to.correlation)
            if pending is not None:
                pending.resolve(self._maybe_roundtrip(value))
            return
        try:
            payload = to_wire(value)
        except EncodeError as error:
            self.statistics.replies_unencodable += 1
            log.error("reply to %s not encodable: %s", reply_to.node, error)
            self._send_error(reply_to, "error", f"reply not encodable: {error}")
            return
        self.host.transport.send_nowait(reply_to.node, pack([REPLY, reply_to.correlation, True, payload]))

    def _send_error(self, reply_to: ReplyTo, kind: str, text: str) -> None:
        if reply_to.node == self.node_id:
            pending = self._pending.get(reply_to.correlation)
            if pending is not None:
                pending.fail(_error_from_wire(kind, text))
            return
        self.host.transport.send_nowait(
            reply_to.node, pack([REPLY, reply_to.correlation, False, [kind, text]])
        )

    # --- receiving from the transport --------------------------------------------------------

    def _on_frame(self, from_node: str, frame: bytes) -> None:
        """Called by the transport for every frame that arrives; never raises."""
        try:
            data = unpack(frame)
            if type(data) is not list or not data:
                raise DecodeError("unknown frame kind")
            kind = data[0]
            if kind == TELL and len(data) == 5:
                _, name, wire, sender_node, sender_name = data
                message = from_wire(wire)
                cell = self._cells.get(name) if type(name) is str else None
                if cell is None:
                    self.statistics.messages_dropped_unknown_actor += 1
                    return
                sender = (
                    self._sender_ref(sender_node, sender_name)
                    if type(sender_node) is str and type(sender_name) is str and sender_name
                    else None
                )
                try:
                    cell.mailbox.put_nowait(Envelope(message, None, sender))
                except (MailboxFull, MailboxClosed):
                    self.statistics.messages_dropped_full += 1
            elif kind == REPLY and len(data) == 4:
                _, correlation, ok, payload = data
                pending = self._pending.get(correlation) if type(correlation) is int else None
                if pending is None:
                    self.statistics.replies_unmatched += 1
                    return
                if ok is True:
                    pending.resolve(from_wire(payload))
                elif (
                    ok is False
                    and type(payload) is list
                    and len(payload) == 2
                    and type(payload[0]) is str
                    and type(payload[1]) is str
                ):
                    pending.fail(_error_from_wire(payload[0], payload[1]))
                else:
                    raise DecodeError("malformed reply")
            elif kind == ASK and len(data) == 5:
                _, name, wire, reply_node, correlation = data
                if type(reply_node) is not str or type(correlation) is not int:
                    raise DecodeError("malformed ask header")
                reply_to = ReplyTo(reply_node, correlation)
                message = from_wire(wire)
                cell = self._cells.get(name) if type(name) is str else None
                if cell is None:
                    self._send_error(reply_to, "no_such_actor", f"no actor {name!r} on node {self.node_id}")
                    return
                try:
                    cell.mailbox.put_nowait(Envelope(message, reply_to, None))
                except (MailboxFull, MailboxClosed) as error:
                    self._send_error(reply_to, "busy", f"{name}@{self.node_id}: {error}")
            else:
                raise DecodeError("unknown frame kind")
        except DecodeError as error:
            self.statistics.frames_malformed += 1
            log.debug("dropped a malformed frame from %s: %s", from_node, error)

    def _sender_ref(self, node: str, name: str) -> Ref:
        """The sender of a remote tell, shared between the frames of one sender (a Ref is
        immutable): building one per frame was a visible part of receiving it."""
        key = (node, name)
        ref = self._sender_refs.get(key)
        if ref is None:
            if len(self._sender_refs) >= self.sender_refs_max:
                self._sender_refs.clear()
            ref = self._sender_refs[key] = Ref(node, name)
        return ref


def _unwrap(error: BaseException) -> BaseException:
    """The first leaf of a (nested) exception group, for logs and crash replies."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error
