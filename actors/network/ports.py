"""Host ports for `-p`: who holds which, ephemeral choice, and the sockets that reserve them.

Rules, as Docker's port allocator has them:
- A (protocol, host IP, port) is held by at most one container. 0.0.0.0 covers every
  address, so 0.0.0.0:8080 and 127.0.0.1:8080 conflict; TCP and UDP never do. A second
  claim fails with `Bind for 0.0.0.0:8080 failed: port is already allocated`.
- An ephemeral port (`-p 80`, `-P`) comes from the kernel's ip_local_port_range
  (32768-60999 by default), searched serially from just after the last one handed out
  for that protocol, wrapping; ports held by flotta or busy on the host are skipped.
- A host-port range (`-p 8000-8010:80`) takes its first free port.

The allocator is pure bookkeeping; `Reservation` holds a socket bound (not listening) to
each published host port in the host's netns. Traffic never reaches it (DNAT runs first),
but no other program can bind the port while the container has it, and a port some other
program already holds is found at start as `address already in use`.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterable

import attrs

from actors import errdefs
from actors.network.bridge import DEFAULT_EPHEMERAL_RANGE
from actors.network.model import Endpoint, PortRequest, PublishedPort, port_already_allocated

Key = tuple[str, str, int]  # (protocol, host ip, port)
IsFree = Callable[[str, str, int], bool]


def _normal_ip(host_ip: str) -> str:
    return host_ip or "0.0.0.0"


@attrs.define
class PortAllocator:
    ephemeral_range: tuple[int, int] = DEFAULT_EPHEMERAL_RANGE
    holders: dict[Key, str] = attrs.field(factory=dict)
    last: dict[str, int] = attrs.field(factory=dict)

    def holder(self, protocol: str, host_ip: str, port: int) -> str | None:
        """Who holds this port, counting 0.0.0.0 as overlapping every address."""
        host_ip = _normal_ip(host_ip)
        for (held_protocol, held_ip, held_port), owner in self.holders.items():
            if held_protocol != protocol or held_port != port:
                continue
            if held_ip == host_ip or "0.0.0.0" in (held_ip, host_ip):
                return owner
        return None

    def claim(self, owner: str, protocol: str, host_ip: str, port: int) -> None:
        if self.holder(protocol, host_ip, port) is not None:
            raise port_already_allocated(_normal_ip(host_ip), port)
        self.holders[(protocol, _normal_ip(host_ip), port)] = owner

    def allocate(
        self,
        owner: str,
        protocol: str,
        host_ip: str,
        start: int = 0,
        end: int = 0,
        is_free: IsFree = lambda protocol, host_ip, port: True,
    ) -> int:
        """Claim a port for `owner`: the given one, the first free in start..end, or an
        ephemeral one. `is_free` asks the host (a bind test) about candidates."""
        if start and start == end:
            self.claim(owner, protocol, host_ip, start)
            return start
        if start:
            for port in range(start, end + 1):
                if self.holder(protocol, host_ip, port) is None and is_free(protocol, host_ip, port):
                    self.claim(owner, protocol, host_ip, port)
                    return port
            raise port_already_allocated(_normal_ip(host_ip), start)
        low, high = self.ephemeral_range
        cursor = self.last.get(protocol, high)
        for _ in range(high - low + 1):
            cursor = cursor + 1 if low <= cursor < high else low
            if self.holder(protocol, host_ip, cursor) is None and is_free(protocol, host_ip, cursor):
                self.claim(owner, protocol, host_ip, cursor)
                self.last[protocol] = cursor
                return cursor
        raise errdefs.Unavailable(f"no free host port in the ephemeral range {low}-{high} for {protocol}")

    def release(self, owner: str) -> list[Key]:
        freed = [key for key, holder in self.holders.items() if holder == owner]
        for key in freed:
            del self.holders[key]
        return freed

    def release_port(self, protocol: str, host_ip: str, port: int) -> None:
        self.holders.pop((protocol, _normal_ip(host_ip), port), None)


class Reservation:
    """A bound socket keeping a host port ours. Create it in the host's netns."""

    def __init__(self, protocol: str, host_ip: str, port: int) -> None:
        kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
        self.key: Key = (protocol, _normal_ip(host_ip), port)
        self.socket = socket.socket(socket.AF_INET, kind)
        try:
            self.socket.bind((_normal_ip(host_ip), port))
        except BaseException:
            self.socket.close()
            raise

    def close(self) -> None:
        self.socket.close()


def try_reserve(protocol: str, host_ip: str, port: int) -> Reservation | None:
    """A reservation, or None when the port is busy on the host (EADDRINUSE)."""
    try:
        return Reservation(protocol, host_ip, port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return None
        if error.errno == errno.EADDRNOTAVAIL:
            raise errdefs.InvalidParameter(
                f"cannot publish on {host_ip}:{port}: the host has no such address"
            ) from None
        raise


def address_in_use(host_ip: str, port: int, container_ip: str, container_port: int, protocol: str) -> errdefs.Conflict:
    """Docker's text when another program holds the host port."""
    return errdefs.Conflict(
        f"failed to bind host port for {_normal_ip(host_ip)}:{port}:{container_ip}:{container_port}/"
        f"{protocol}: address already in use"
    )


class PortPublisher:
    """The allocator plus the reservation sockets: claim a container's `-p` requests all
    or nothing, drop them, re-reserve them after a restart.

    `claim` and `restore` create sockets, so they run in a thread inside the host's netns
    (the driver calls them through `netns.call_in_thread`).
    """

    def __init__(self, ephemeral_range: tuple[int, int] = DEFAULT_EPHEMERAL_RANGE) -> None:
        self.allocator = PortAllocator(ephemeral_range)
        self.reservations: dict[Key, Reservation] = {}

    def claim(self, container_id: str, endpoint: Endpoint, requests: list[PortRequest]) -> list[PublishedPort]:
        claimed: list[PublishedPort] = []
        try:
            for request in requests:
                claimed.append(self._claim_one(container_id, endpoint, request))
        except BaseException:
            self.drop(claimed)
            raise
        return claimed

    def _claim_one(self, container_id: str, endpoint: Endpoint, request: PortRequest) -> PublishedPort:
        host_ip = "" if request.host_ip in ("", "0.0.0.0") else request.host_ip
        pending: dict[int, Reservation] = {}

        def is_free(protocol: str, ip: str, port: int) -> bool:
            reservation = try_reserve(protocol, ip, port)
            if reservation is not None:
                pending[port] = reservation
            return reservation is not None

        start, end = request.host_port_start, request.host_port_end
        if start and start == end:
            self.allocator.claim(container_id, request.protocol, host_ip, start)
            if not is_free(request.protocol, host_ip, start):
                self.allocator.release_port(request.protocol, host_ip, start)
                raise address_in_use(host_ip, start, endpoint.ipv4_address, request.container_port, request.protocol)
            port = start
        else:
            try:
                port = self.allocator.allocate(container_id, request.protocol, host_ip, start, end, is_free)
            except BaseException:
                for reservation in pending.values():
                    reservation.close()
                raise
        for other, reservation in pending.items():
            if other != port:
                reservation.close()
        self.reservations[pending[port].key] = pending[port]
        return PublishedPort(
            container_id=container_id,
            network_id=endpoint.network_id,
            container_ip=endpoint.ipv4_address,
            container_port=request.container_port,
            protocol=request.protocol,
            host_ip=host_ip,
            host_port=port,
        )

    def drop(self, dropped: Iterable[PublishedPort]) -> None:
        for port in dropped:
            reservation = self.reservations.pop((port.protocol, _normal_ip(port.host_ip), port.host_port), None)
            if reservation is not None:
                reservation.close()
            self.allocator.release_port(port.protocol, port.host_ip, port.host_port)

    def restore(self, published: Iterable[PublishedPort]) -> list[PublishedPort]:
        """Hold again what the saved state says is published; returns the ports some other
        program took meanwhile (their DNAT still works, the reservation is lost)."""
        lost = []
        for port in published:
            key = (port.protocol, _normal_ip(port.host_ip), port.host_port)
            self.allocator.holders[key] = port.container_id
            if key in self.reservations:
                continue
            reservation = try_reserve(port.protocol, port.host_ip, port.host_port)
            if reservation is None:
                lost.append(port)
            else:
                self.reservations[key] = reservation
        return lost

    def close(self) -> None:
        for reservation in self.reservations.values():
            reservation.close()
        self.reservations.clear()
