"""Asks whose progress is a JSON stream (pull, push, load, bootstrap, build).

Docker's rule: an error before any output is a plain HTTP error (`404 pull access
denied...`), an error after output started is reported in the stream as
`{"errorDetail": {...}, "error": "..."}`. `ask_with_progress` implements it: the component
tells `Progress` messages to an inbox while it works; the 200 response starts with the
first one; when the ask ends, a sentinel closes the inbox's stream of messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors.images.messages import Progress
from runtime.actor import Ref
from runtime.codec import message
from runtime.errors import ActorError, RemoteError
from runtime.httpserver import Request, ResponseStream

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext


@message("daemon.stream_end")
@attrs.frozen
class StreamEnd:
    pass


def error_message(text: str, code: int | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": text}
    if code is not None:
        detail["code"] = code
    return {"errorDetail": detail, "error": text}


@attrs.define
class StreamedAsk:
    """How an ask with progress ended: its reply, or the error already sent in-band."""

    value: Any = None
    stream: ResponseStream | None = None
    failed: bool = False

    async def ensure_stream(self, request: Request) -> ResponseStream:
        if self.stream is None:
            self.stream = await request.start_stream()
        return self.stream


async def ask_with_progress(
    context: DaemonContext,
    request: Request,
    target: Ref,
    make_message: Callable[[Ref], Any],
    *,
    quiet: bool = False,
    timeout: float = 3600.0,
    render: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
) -> StreamedAsk:
    """Ask `target` with an inbox for progress and stream the progress as JSON lines.

    Raises the ask's error when nothing was streamed yet (so it becomes an HTTP error);
    after that, sends the error in-band and returns with `failed` set.
    """
    result = StreamedAsk()
    async with context.node.open_inbox(capacity=8192, prefix="progress") as inbox:
        outcome: dict[str, Any] = {}

        async def asker() -> None:
            try:
                outcome["value"] = await target.ask(make_message(inbox.ref), timeout=timeout)
            except (ActorError, OSError) as error:
                outcome["error"] = error
            finally:
                inbox.ref.tell_nowait(StreamEnd())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(asker)
            while True:
                item = await inbox.receive()
                if isinstance(item, StreamEnd):
                    break
                if isinstance(item, Progress) and not quiet:
                    body = render(item.body) if render is not None else item.body
                    if body is not None:
                        stream = await result.ensure_stream(request)
                        await stream.send_json(body)
        error = outcome.get("error")
        if error is None:
            result.value = outcome.get("value")
            return result
        if result.stream is None:
            raise error
        text = error.message if isinstance(error, RemoteError) else str(error)
        await result.stream.send_json(error_message(text))
        result.failed = True
        return result
