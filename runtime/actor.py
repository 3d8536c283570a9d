"""Actors, their addresses, and the envelope a message travels in.

An actor is a Trio task that owns a bounded mailbox and handles one message at a time:

    class Counter(Actor):
        def __init__(self) -> None:
            self.count = 0

        async def receive(self, message):
            match message:
                case Increment(by):
                    self.count += by
                case Get():
                    return Count(self.count)      # the reply, when the sender asked

Senders hold a `Ref` — the address `(node, name)` — and call `await ref.tell(msg)`
(fire and forget), `ref.tell_nowait(msg)` (raises when the mailbox is full) or
`await ref.ask(msg, timeout=...)` (waits for the reply or raises `AskTimeout`).
A `Ref` resolves through the node of the actor that uses it (a context variable set for
every actor task), or through the node it was bound to with `node.ref(...)`.

A handler that raises `ReplyError` answers the asker with an error and carries on; any
other exception crashes the actor: the asker gets `ActorCrashed` at once and the
actor's supervisor restarts it (see supervision.py).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import trio

from runtime.codec import converter

if TYPE_CHECKING:
    from runtime.host import Host
    from runtime.node import Node

_log = logging.getLogger("flotta.runtime")

current_node: contextvars.ContextVar[Node] = contextvars.ContextVar("flotta_current_node")

ask_timeout_seconds_default = 10.0


@attrs.frozen
class Ref:
    """The address of an actor: the node it lives on and its name there."""

    node: str
    name: str
    via: Node | None = attrs.field(default=None, eq=False, repr=False, hash=False)

    def _node(self) -> Node:
        if self.via is not None:
            return self.via
        try:
            return current_node.get()
        except LookupError:
            raise RuntimeError(
                f"{self}: not inside an actor; bind the ref with node.ref(...)"
            ) from None

    def bound(self, node: Node) -> Ref:
        return Ref(self.node, self.name, node)

    async def tell(self, message: Any) -> None:
        await self._node().tell(self, message)

    def tell_nowait(self, message: Any) -> None:
        self._node().tell_nowait(self, message)

    async def ask(self, message: Any, timeout: float = ask_timeout_seconds_default) -> Any:
        return await self._node().ask(self, message, timeout)

    def __str__(self) -> str:
        return f"{self.name}@{self.node}"


# Refs travel inside messages as [node, name].
converter.register_unstructure_hook_func(lambda tp: tp is Ref, lambda ref: [ref.node, ref.name])


def _structure_ref(value: Any, _: Any) -> Ref:
    from runtime.codec import DecodeError

    if (
        type(value) is not list
        or len(value) != 2
        or type(value[0]) is not str
        or type(value[1]) is not str
    ):
        raise DecodeError("expected a ref [node, name]")
    return Ref(value[0], value[1])


converter.register_structure_hook_func(lambda tp: tp is Ref, _structure_ref)


@attrs.define(slots=True)
class ReplyTo:
    """Where the reply to an ask goes: the asking node and its correlation number."""

    node: str
    correlation: int


@attrs.define(slots=True)
class Envelope:
    message: Any
    reply_to: ReplyTo | None = None
    sender: Ref | None = None
    deferred: bool = False


class Actor:
    """Base class of every actor. Subclasses implement `receive` and maybe the hooks.

    The runtime sets `node`, `host`, `ref` and `name` before `started()` runs, and runs
    `self.nursery` for background tasks the actor owns: they are cancelled when the
    actor stops, and an exception in one crashes the actor like a failed message.
    """

    mailbox_capacity: ClassVar[int] = 1024

    node: Node
    host: Host
    ref: Ref
    name: str
    nursery: trio.Nursery

    async def started(self) -> None:
        """Runs before the first message (again after every restart)."""

    async def receive(self, message: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} handles no messages")

    async def stopping(self) -> None:
        """Runs when the actor stops normally (not after a crash)."""

    # --- conveniences ---------------------------------------------------------------

    def ref_to(self, name: str, node: str | None = None) -> Ref:
        return Ref(node if node is not None else self.node.node_id, name)

    async def spawn(
        self,
        factory: Callable[[], Actor],
        name: str,
        restart: Any = None,
    ) -> Ref:
        """Start a child actor supervised by this one (stopped when this one stops)."""
        return await self.node.spawn(factory, name, restart=restart, parent=self)

    def defer_reply(self) -> Any:
        """Answer the message being handled later: returns a `DeferredReply`.

        The handler's return value is then ignored; call `.send(value)` or
        `.fail(kind, text)` on the handle when the answer is known.
        """
        return self.node._defer_reply(self.name)

    def reply_later(self, function: Callable[..., Any], *arguments: Any) -> None:
        """Run `await function(*arguments)` in the background and reply with its result.

        For slow work (a pull, a load, a container stop) that must not hold up the
        actor's next messages. A `ReplyError` becomes an error reply; any other exception
        is logged and answered as a system error (it does not crash the actor).
        """
        reply = self.defer_reply()

        async def run() -> None:
            from runtime.errors import ReplyError

            try:
                value = await function(*arguments)
            except ReplyError as error:
                reply.fail(error.kind, str(error))
                return
            except Exception as error:
                _log.exception("%s: background work failed", self.name)
                reply.fail("system", f"{type(error).__name__}: {error}")
                return
            reply.send(value)

        self.nursery.start_soon(run)

    def stop(self) -> None:
        """Stop this actor after the current message; its supervisor does not restart it."""
        self.node._request_stop(self.name)
