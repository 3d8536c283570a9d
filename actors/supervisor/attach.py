"""Attaching to a container through conmon's attach socket, and resizing its terminal.

The attach socket is a SOCK_SEQPACKET unix socket in the bundle. Each packet conmon sends
is one read of the container's output with the pipe number in front: 2 for stdout, 3 for
stderr (a tty container's single stream arrives as stdout). Packets a client sends go to
the container's stdin (conmon reads at most 32767 bytes of a packet, so stdin is sent in
smaller pieces). When the client shuts down its write side conmon closes the container's
stdin, unless it was started with --leave-stdin-open (Docker's StdinOnce=false). When the
container exits conmon drains the output to every client and closes the sockets.

conmon only writes to clients that are connected, so a client that attaches before the
container is started sees all of its output.

Resizing writes "1 <rows> <cols>\\n" to conmon's `ctl` fifo; conmon applies it to the pty.
"""

from __future__ import annotations

import enum
import errno
import os
import socket
import struct
from pathlib import Path

import trio

_CONMON_STDOUT = 2
_CONMON_STDERR = 3
_PACKET_BYTES_MAX = 64 * 1024
STDIN_CHUNK_BYTES = 16 * 1024
_SUN_PATH_BYTES_MAX = 107


class AttachError(Exception):
    """The container cannot be attached to (not running under conmon any more)."""


class Stream(enum.IntEnum):
    """Docker's stream numbers, as in the multiplexed attach/logs framing."""

    STDOUT = 1
    STDERR = 2


class AttachStream:
    """A bidirectional connection to a container's stdio, safe to use from Trio tasks.

    One task may call `receive` while another sends stdin.
    """

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._socket = sock
        self._send_lock = trio.Lock()
        self._stdin_closed = False

    async def receive(self) -> tuple[Stream, bytes] | None:
        """The next chunk of output, or None once the container's output has ended."""
        while True:
            try:
                packet = await self._socket.recv(_PACKET_BYTES_MAX)
            except (ConnectionResetError, OSError) as error:
                if isinstance(error, ConnectionResetError) or error.errno == errno.ECONNRESET:
                    return None
                raise
            if not packet:
                return None
            if len(packet) < 2:
                continue
            stream = Stream.STDERR if packet[0] == _CONMON_STDERR else Stream.STDOUT
            return stream, packet[1:]

    def __aiter__(self) -> AttachStream:
        return self

    async def __anext__(self) -> tuple[Stream, bytes]:
        item = await self.receive()
        if item is None:
            raise StopAsyncIteration
        return item

    async def send_stdin(self, data: bytes) -> None:
        """Write to the container's stdin (only meaningful for -i or tty containers)."""
        async with self._send_lock:
            if self._stdin_closed:
                raise AttachError("stdin of this attach stream was already closed")
            view = memoryview(data)
            while view:
                piece = view[:STDIN_CHUNK_BYTES]
                await self._socket.send(piece)
                view = view[len(piece) :]

    async def close_stdin(self) -> None:
        """Signal end of input; conmon closes the container's stdin if StdinOnce."""
        async with self._send_lock:
            if not self._stdin_closed:
                self._stdin_closed = True
                try:
                    self._socket.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    async def aclose(self) -> None:
        self._socket.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> AttachStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def connect(socket_path: Path) -> AttachStream:
    """Connect to conmon's attach socket; AttachError when nothing listens there."""
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    directory_fd = -1
    try:
        address = str(socket_path)
        if len(address.encode()) > _SUN_PATH_BYTES_MAX:
            # A deep state directory: reach the socket through an fd of its directory.
            directory_fd = os.open(socket_path.parent, os.O_PATH | os.O_CLOEXEC)
            address = f"/proc/self/fd/{directory_fd}/{socket_path.name}"
        await sock.connect(address)
    except (FileNotFoundError, ConnectionRefusedError) as error:
        sock.close()
        raise AttachError(
            f"container is not running under its monitor: {error.strerror}"
        ) from error
    except BaseException:
        sock.close()
        raise
    finally:
        if directory_fd >= 0:
            os.close(directory_fd)
    return AttachStream(sock)


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10
_UDIAG_SHOW_VFS, _UDIAG_SHOW_RQLEN = 0x2, 0x10
_UNIX_DIAG_VFS, _UNIX_DIAG_RQLEN = 1, 4


def pending_connections(socket_path: Path) -> int | None:
    """Connections made to the listening socket at `socket_path` that its owner has not
    accepted yet, from the kernel's socket diagnostics (None: no such listener).

    conmon only copies output to clients it has accepted; starting a container while an
    attach is still in its accept queue would lose that client's first output.
    """
    try:
        status = os.stat(socket_path)
    except FileNotFoundError:
        return None
    kernel_device = (os.major(status.st_dev) << 20) | os.minor(status.st_dev)
    request = struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 1 << _TCP_LISTEN, 0,
                          _UDIAG_SHOW_VFS | _UDIAG_SHOW_RQLEN, 0, 0)  # fmt: skip
    header = struct.pack(
        "=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, 1, 0
    )
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_SOCK_DIAG
    ) as diag:
        diag.sendall(header + request)
        found: int | None = None
        while True:
            data = diag.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == _NLMSG_DONE or length < 16:
                    return found
                if kind == _NLMSG_ERROR:
                    return None
                vfs, queued = _parse_unix_diag(data[offset + 16 : offset + length])
                if vfs == (status.st_ino, kernel_device):
                    found = queued
                offset += (length + 3) & ~3


def _parse_unix_diag(message: bytes) -> tuple[tuple[int, int] | None, int]:
    vfs: tuple[int, int] | None = None
    queued = 0
    offset = 16  # struct unix_diag_msg
    while offset + 4 <= len(message):
        length, kind = struct.unpack_from("=HH", message, offset)
        if length < 4:
            break
        if kind == _UNIX_DIAG_VFS:
            vfs = struct.unpack_from("=II", message, offset + 4)
        elif kind == _UNIX_DIAG_RQLEN:
            queued = struct.unpack_from("=I", message, offset + 4)[0]
        offset += (length + 3) & ~3
    return vfs, queued


def resize(ctl_path: Path, height: int, width: int) -> None:
    """Ask conmon to resize the container's pty; AttachError if conmon is not there."""
    if not (0 < height < 65536 and 0 < width < 65536):
        raise ValueError(f"terminal size {height}x{width} must be between 1 and 65535")
    try:
        fd = os.open(ctl_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno in (errno.ENXIO, errno.ENOENT):
            raise AttachError("container is not running under its monitor") from error
        raise
    try:
        os.write(fd, f"1 {height} {width}\n".encode())
    finally:
        os.close(fd)
