"""Errors an actor's callers see. Each says whose fault it is."""

from __future__ import annotations


class ActorError(Exception):
    """Base class of the runtime's errors."""


class AskTimeout(ActorError, TimeoutError):
    """No reply arrived in time: the target is slow, gone, or unreachable."""


class NoSuchActor(ActorError):
    """The address names no actor on that node."""


class ActorCrashed(ActorError):
    """The target raised while handling this very message; its supervisor restarts it."""


class ActorBusy(ActorError):
    """The target's mailbox was full; the message was not queued."""


class RemoteError(ActorError):
    """The handler answered with an error (a `ReplyError` it raised)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class ReplyError(Exception):
    """Raised by a handler to answer an ask with an error, without crashing the actor.

    The caller gets `RemoteError(kind, message)`; subclasses set `kind` so callers can
    branch on it (`"not_found"`, `"conflict"`, ...) across process boundaries.
    """

    kind = "error"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class Escalation(ActorError):
    """A child crashed more often than its restart budget allows."""
