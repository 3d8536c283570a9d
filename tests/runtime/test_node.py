"""Actors on a node: tell, ask, replies, errors, supervision, stopping, backpressure."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from runtime.actor import Actor
from runtime.errors import ActorBusy, ActorCrashed, AskTimeout, Escalation, NoSuchActor, RemoteError
from runtime.node import Node
from runtime.supervision import RestartPolicy
from runtime.transport import InProcessNetwork
from tests.runtime.helpers import Count, Crash, Echo, Ping, Pong, Refuse, Sleep, make_host


async def test_ask_returns_the_handlers_reply(tmp_path: Path) -> None:
    node = Node(make_host("a", tmp_path))
    async with node.running():
        ref = await node.spawn(Echo, "echo")
        assert await ref.bound(node).ask(Ping(7)) == Pong(7)


async def test_tells_are_handled_in_order_one_at_a_time(tmp_path: Path) -> None:
    node = Node(make_host("a", tmp_path))
    async with node.running():
        await node.spawn(Echo, "echo")
        ref = node.ref("echo")
        for number in range(100):
            await ref.tell(Ping(number))
        assert await ref.ask(Count()) == Pong(100)
        actor = node.actor("echo")
        assert isinstance(actor, Echo)
        assert actor.seen == list(range(100))


async def test_ask_times_out_with_a_clear_error(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node = Node(make_host("a", tmp_path))
    async with node.running():
        await node.spawn(Echo, "echo")
        with pytest.raises(AskTimeout, match=r"no reply from echo@a to Sleep within 1s"):
            await node.ref("echo").ask(Sleep(5), timeout=1)


async def test_reply_error_answers_without_crashing(tmp_path: Path) -> None:
    node = Node(make_host("a", tmp_path))
    Echo.incarnations = 0
    async with node.running():
        await node.spawn(Echo, "echo")
        with pytest.raises(RemoteError) as caught:
            await node.ref("echo").ask(Refuse("not today"))
        assert caught.value.kind == "refused"
        assert caught.value.message == "not today"
        assert await node.ref("echo").ask(Ping(1)) == Pong(1)
        assert Echo.incarnations == 1


async def test_crash_is_reported_logged_and_the_actor_restarts(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    node = Node(make_host("a", tmp_path))
    Echo.incarnations = 0
    async with node.running():
        await node.spawn(Echo, "echo")
        ref = node.ref("echo")
        await ref.tell(Ping(1))
        with caplog.at_level(logging.ERROR, logger="flotta.runtime"):
            with pytest.raises(ActorCrashed, match="crashed handling Crash: RuntimeError: kaboom"):
                await ref.ask(Crash("kaboom"))
        assert "actor echo on node a crashed while handling Crash" in caplog.text
        assert await ref.ask(Ping(2)) == Pong(2)
        assert Echo.incarnations == 2
        # State lives in the incarnation: the restarted actor starts fresh.
        assert await ref.ask(Count()) == Pong(1)
        assert node.statistics.crashes == 1
        assert node.statistics.restarts == 1


async def test_messages_queued_behind_a_crash_survive_the_restart(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    node = Node(make_host("a", tmp_path))
    async with node.running():
        await node.spawn(Echo, "echo")
        ref = node.ref("echo")
        ref.tell_nowait(Crash())
        for number in range(5):
            ref.tell_nowait(Ping(number))
        assert await ref.ask(Count()) == Pong(5)


async def test_restart_budget_exhausted_escalates(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node = Node(make_host("a", tmp_path))
    policy = RestartPolicy(restarts_max=2, window_seconds=60)
    with pytest.raises(BaseExceptionGroup) as caught:
        async with node.running():
            await node.spawn(Echo, "echo", restart=policy)
            ref = node.ref("echo")
            for _ in range(3):
                with pytest.raises(ActorCrashed):
                    await ref.ask(Crash())
            await trio.sleep(1)
    escalations = caught.value.subgroup(Escalation)
    assert escalations is not None
    assert "crashed 3 times within 60s" in str(escalations.exceptions[0])


async def test_crashes_outside_the_window_do_not_accumulate(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    node = Node(make_host("a", tmp_path))
    policy = RestartPolicy(restarts_max=1, window_seconds=10)
    async with node.running():
        await node.spawn(Echo, "echo", restart=policy)
        ref = node.ref("echo")
        for _ in range(4):
            with pytest.raises(ActorCrashed):
                await ref.ask(Crash())
            await trio.sleep(11)
        assert await ref.ask(Ping(3)) == Pong(3)


async def test_restart_backoff_grows(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node = Node(make_host("a", tmp_path))
    policy = RestartPolicy(restarts_max=10, window_seconds=1000, backoff_initial_seconds=1, backoff_max_seconds=8)
    async with node.running():
        await node.spawn(Echo, "echo", restart=policy)
        ref = node.ref("echo")
        waits = []
        for _ in range(4):
            with pytest.raises(ActorCrashed):
                await ref.ask(Crash())
            before = trio.current_time()
            await ref.ask(Ping(0))
            waits.append(trio.current_time() - before)
        assert waits == sorted(waits)
        assert waits[0] >= 0.5 and waits[-1] >= 4


class Parent(Actor):
    async def started(self) -> None:
        await self.spawn(Echo, "child", restart=RestartPolicy(restarts_max=0))

    async def receive(self, message: object) -> object:
        return await self.ref_to("child").ask(message)


async def test_child_escalation_restarts_the_parent(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node = Node(make_host("a", tmp_path))
    Echo.incarnations = 0
    async with node.running():
        await node.spawn(Parent, "parent")
        child = node.ref("child")
        await child.tell(Ping(1))
        with pytest.raises(ActorCrashed):
            await child.ask(Crash())
        await trio.sleep(1)
        # The parent was restarted and made a fresh child.
        assert Echo.incarnations == 2
        assert await node.ref("parent").ask(Count()) == Pong(0)


async def test_stop_ends_the_actor_and_frees_its_name(tmp_path: Path) -> None:
    node = Node(make_host("a", tmp_path))
    async with node.running():
        await node.spawn(Echo, "echo")
        node.stop_actor("echo")
        await trio.testing.wait_all_tasks_blocked()
        assert "echo" not in node.actor_names()
        with pytest.raises(NoSuchActor):
            await node.ref("echo").ask(Ping(1))
        await node.spawn(Echo, "echo")
        assert await node.ref("echo").ask(Ping(2)) == Pong(2)


async def test_names_are_unique_per_node(tmp_path: Path) -> None:
    node = Node(make_host("a", tmp_path))
    async with node.running():
        await node.spawn(Echo, "echo")
        with pytest.raises(ValueError, match="already runs"):
            await node.spawn(Echo, "echo")


class Failing(Actor):
    async def started(self) -> None:
        raise OSError("cannot open the thing")


async def test_spawn_reports_a_failing_start(tmp_path: Path) -> None:
    node = Node(make_host("a", tmp_path))
    async with node.running():
        with pytest.raises(OSError, match="cannot open the thing"):
            await node.spawn(Failing, "failing")
        assert "failing" not in node.actor_names()


class Small(Echo):
    mailbox_capacity = 2


async def test_full_mailbox_refuses_tell_nowait_and_backpressures_tell(tmp_path: Path) -> None:
    node = Node(make_host("a", tmp_path))
    async with node.running():
        await node.spawn(Small, "small")
        ref = node.ref("small")
        ref.tell_nowait(Sleep(0.01))
        await trio.testing.wait_all_tasks_blocked()
        ref.tell_nowait(Ping(1))
        ref.tell_nowait(Ping(2))
        with pytest.raises(ActorBusy, match="mailbox full"):
            ref.tell_nowait(Ping(3))
        await ref.tell(Ping(3))
        assert await ref.ask(Count()) == Pong(3)


async def test_remote_ask_tell_and_errors_across_nodes(tmp_path: Path) -> None:
    network = InProcessNetwork()
    first = Node(make_host("a", tmp_path, network.transport("a")))
    second = Node(make_host("b", tmp_path, network.transport("b")))
    async with first.running(), second.running():
        await second.spawn(Echo, "echo")
        remote = first.ref("echo", "b")
        assert await remote.ask(Ping(5)) == Pong(5)
        await remote.tell(Ping(6))
        assert await remote.ask(Count()) == Pong(2)
        with pytest.raises(RemoteError, match="nope"):
            await remote.ask(Refuse("nope"))
        with pytest.raises(ActorCrashed):
            await remote.ask(Crash())
        with pytest.raises(NoSuchActor, match="no actor 'ghost' on node b"):
            await first.ref("ghost", "b").ask(Ping(1))


async def test_ask_to_an_unknown_node_times_out(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    network = InProcessNetwork()
    node = Node(make_host("a", tmp_path, network.transport("a")))
    async with node.running():
        with pytest.raises(AskTimeout):
            await node.ref("echo", "nowhere").ask(Ping(1), timeout=2)


async def test_malformed_frames_are_counted_and_dropped(tmp_path: Path) -> None:
    network = InProcessNetwork()
    node = Node(make_host("a", tmp_path, network.transport("a")))
    sender = network.transport("evil")
    async with node.running():
        await node.spawn(Echo, "echo")
        for garbage in [b"", b"\xc1", b"\x93\x00\xa4echo\x01", b"\x94\x02\x01\xc3\x80", b"\x95\x09\x00\x00\x00\x00"]:
            sender.send_nowait("a", garbage)
        assert node.statistics.frames_malformed == 4
        assert node.statistics.replies_unmatched == 1
        assert await node.ref("echo").ask(Ping(1)) == Pong(1)


async def test_local_messages_can_be_forced_through_the_codec(tmp_path: Path) -> None:
    node = Node(make_host("a", tmp_path))
    node.encode_local = True
    async with node.running():
        await node.spawn(Echo, "echo")
        assert await node.ref("echo").ask(Ping(3)) == Pong(3)


async def test_an_inbox_receives_messages_told_to_its_ref(tmp_path: Path) -> None:
    network = InProcessNetwork()
    first = Node(make_host("a", tmp_path, network.transport("a")))
    second = Node(make_host("b", tmp_path, network.transport("b")))
    async with first.running(), second.running():
        async with first.open_inbox() as inbox:
            await inbox.ref.tell(Pong(1))
            second.tell_nowait(inbox.ref, Pong(2))
            assert await inbox.receive() == Pong(1)
            assert await inbox.receive() == Pong(2)
            with pytest.raises(trio.WouldBlock):
                inbox.receive_nowait()
            name = inbox.ref.name
        assert name not in first.actor_names()


class Slow(Actor):
    """Replies to Sleep later, so other messages are handled meanwhile."""

    async def receive(self, message: object) -> object:
        match message:
            case Sleep(seconds):
                self.reply_later(self.nap, seconds)
            case Ping(number):
                return Pong(number)
            case Refuse(reason):
                self.reply_later(self.refuse, reason)
        return None

    async def nap(self, seconds: float) -> Pong:
        await trio.sleep(seconds)
        return Pong(int(seconds))

    async def refuse(self, reason: str) -> None:
        from runtime.errors import ReplyError

        raise ReplyError(reason, kind="later")


async def test_reply_later_frees_the_actor_for_other_messages(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    node = Node(make_host("a", tmp_path))
    async with node.running():
        await node.spawn(Slow, "slow")
        ref = node.ref("slow")
        order: list[str] = []

        async def slow() -> None:
            assert await ref.ask(Sleep(5)) == Pong(5)
            order.append("slow")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await trio.testing.wait_all_tasks_blocked()
            assert await ref.ask(Ping(1)) == Pong(1)
            order.append("fast")
        assert order == ["fast", "slow"]
        with pytest.raises(RemoteError) as caught:
            await ref.ask(Refuse("no"))
        assert caught.value.kind == "later"
