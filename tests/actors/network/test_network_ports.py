"""Host port allocation: Docker's conflict rules and serial ephemeral choice, against a model."""

from __future__ import annotations

import socket

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from actors import errdefs
from actors.network import ports
from actors.network.ports import PortAllocator


def test_wildcard_conflicts_with_specific_addresses_but_protocols_are_independent() -> None:
    allocator = PortAllocator()
    allocator.claim("a", "tcp", "", 8080)
    with pytest.raises(errdefs.Conflict, match=r"^Bind for 127\.0\.0\.1:8080 failed: port is already allocated$"):
        allocator.claim("b", "tcp", "127.0.0.1", 8080)
    allocator.claim("b", "udp", "", 8080)
    allocator.claim("c", "tcp", "127.0.0.1", 9090)
    with pytest.raises(errdefs.Conflict, match=r"^Bind for 0\.0\.0\.0:9090 failed"):
        allocator.claim("d", "tcp", "0.0.0.0", 9090)
    allocator.claim("d", "tcp", "10.0.0.1", 9090)  # two specific addresses do not collide
    assert sorted(allocator.release("b")) == [("udp", "0.0.0.0", 8080)]


def test_ephemeral_ports_are_serial_and_skip_busy_ones() -> None:
    allocator = PortAllocator(ephemeral_range=(40000, 40004))
    busy = {40001}
    free = lambda protocol, ip, port: port not in busy  # noqa: E731
    assert [allocator.allocate(str(i), "tcp", "", is_free=free) for i in range(3)] == [40000, 40002, 40003]
    allocator.release("0")
    assert allocator.allocate("x", "tcp", "", is_free=free) == 40004
    assert allocator.allocate("y", "tcp", "", is_free=free) == 40000  # wrapped around
    with pytest.raises(errdefs.Unavailable, match="40000-40004"):
        allocator.allocate("z", "tcp", "", is_free=free)
    assert allocator.allocate("u", "udp", "", is_free=free) == 40000  # per-protocol cursor


def test_ranges_take_the_first_free_port() -> None:
    allocator = PortAllocator()
    allocator.claim("a", "tcp", "", 8000)
    assert allocator.allocate("b", "tcp", "", 8000, 8002) == 8001
    with pytest.raises(errdefs.Conflict, match="8000 failed"):
        allocator.allocate("c", "tcp", "", 8000, 8001)


def test_reservation_holds_the_port_on_loopback() -> None:
    reservation = ports.try_reserve("tcp", "127.0.0.1", 0)
    assert reservation is not None
    port = reservation.socket.getsockname()[1]
    try:
        assert ports.try_reserve("tcp", "127.0.0.1", port) is None
        other = socket.socket()
        with other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    finally:
        reservation.close()
    again = ports.try_reserve("tcp", "127.0.0.1", port)
    assert again is not None
    again.close()


class AllocatorMachine(RuleBasedStateMachine):
    """The allocator against a model: a set of (protocol, ip, port, owner)."""

    def __init__(self) -> None:
        super().__init__()
        self.allocator = PortAllocator(ephemeral_range=(50000, 50007))
        self.held: dict[tuple[str, str, int], str] = {}

    def conflicting(self, protocol: str, ip: str, port: int) -> bool:
        return any(
            p == protocol and n == port and (i == ip or "0.0.0.0" in (i, ip)) for (p, i, n) in self.held
        )

    @rule(owner=st.sampled_from("abc"), protocol=st.sampled_from(["tcp", "udp"]),
          ip=st.sampled_from(["0.0.0.0", "127.0.0.1", "10.0.0.1"]), port=st.integers(50000, 50009))
    def claim(self, owner: str, protocol: str, ip: str, port: int) -> None:
        if self.conflicting(protocol, ip, port):
            with pytest.raises(errdefs.Conflict):
                self.allocator.claim(owner, protocol, ip, port)
        else:
            self.allocator.claim(owner, protocol, ip, port)
            self.held[(protocol, ip, port)] = owner

    @rule(owner=st.sampled_from("abc"), protocol=st.sampled_from(["tcp", "udp"]),
          ip=st.sampled_from(["0.0.0.0", "127.0.0.1"]))
    def ephemeral(self, owner: str, protocol: str, ip: str) -> None:
        free = [n for n in range(50000, 50008) if not self.conflicting(protocol, ip, n)]
        if not free:
            with pytest.raises(errdefs.Unavailable):
                self.allocator.allocate(owner, protocol, ip)
            return
        port = self.allocator.allocate(owner, protocol, ip)
        assert port in free
        self.held[(protocol, ip, port)] = owner

    @rule(owner=st.sampled_from("abc"))
    def release(self, owner: str) -> None:
        self.allocator.release(owner)
        self.held = {key: who for key, who in self.held.items() if who != owner}

    @invariant()
    def agrees(self) -> None:
        assert self.allocator.holders == self.held


TestAllocatorMachine = AllocatorMachine.TestCase
