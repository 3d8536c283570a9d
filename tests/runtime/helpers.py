"""Small actors and hosts shared by the runtime tests."""

from __future__ import annotations

import random
from pathlib import Path

import attrs
import trio

from runtime.actor import Actor
from runtime.codec import message
from runtime.disk import RealDisk
from runtime.host import Host
from runtime.transport import NullTransport, Transport


@message("test.runtime.ping")
@attrs.frozen
class Ping:
    number: int


@message("test.runtime.pong")
@attrs.frozen
class Pong:
    number: int


@message("test.runtime.crash")
@attrs.frozen
class Crash:
    reason: str = "boom"


@message("test.runtime.refuse")
@attrs.frozen
class Refuse:
    reason: str


@message("test.runtime.sleep")
@attrs.frozen
class Sleep:
    seconds: float


@message("test.runtime.count")
@attrs.frozen
class Count:
    pass


class Echo(Actor):
    """Answers Ping with Pong; crashes, refuses or sleeps on request; counts tells."""

    incarnations = 0

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def started(self) -> None:
        type(self).incarnations += 1

    async def receive(self, message: object) -> object:
        from runtime.errors import ReplyError

        match message:
            case Ping(number):
                self.seen.append(number)
                return Pong(number)
            case Crash(reason):
                raise RuntimeError(reason)
            case Refuse(reason):
                raise ReplyError(reason, kind="refused")
            case Sleep(seconds):
                await trio.sleep(seconds)
                return Pong(-1)
            case Count():
                return Pong(len(self.seen))
        return None


def make_host(node_id: str, tmp_path: Path, transport: Transport | None = None, seed: int = 1) -> Host:
    return Host(
        node_id=node_id,
        transport=transport if transport is not None else NullTransport(node_id),
        disk=RealDisk(tmp_path / node_id),
        random=random.Random(seed),
        seed=seed,
    )
