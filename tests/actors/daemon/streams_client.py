"""A raw HTTP client for the streaming endpoints: hijacked attach/exec and flushed waits."""

from __future__ import annotations

import json
import socket
from typing import Any

from actors.supervisor import streams


class Hijacked:
    """A connection after `101 UPGRADED`: raw bytes both ways."""

    def __init__(self, sock: socket.socket, head: bytes, rest: bytes) -> None:
        self.sock = sock
        self.head = head
        self.buffer = rest

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def header(self, name: str) -> str:
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return ""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def read_all(self) -> bytes:
        data = self.buffer
        self.buffer = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
        finally:
            self.close()

    def read_chunked_body(self) -> bytes:
        """The rest of a chunked body (the connection stays open: keep-alive)."""
        try:
            self.read_until(b"0\r\n\r\n")
            return dechunk(self.buffer)
        finally:
            self.close()

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        return self.buffer

    def close(self) -> None:
        self.sock.close()


def _request(path: str, method: str, target: str, body: Any, upgrade: bool, timeout: float) -> tuple[socket.socket, bytes, bytes]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
    if upgrade:
        lines += ["Connection: Upgrade", "Upgrade: tcp"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    else:
        lines += ["Content-Length: 0"]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return sock, head, rest


def hijack(socket_path: str, target: str, body: Any = None, timeout: float = 60.0) -> Hijacked:
    sock, head, rest = _request(socket_path, "POST", target, body, True, timeout)
    return Hijacked(sock, head, rest)


def open_stream(socket_path: str, method: str, target: str, timeout: float = 60.0) -> Hijacked:
    """A request whose response headers are read now and whose body is read later."""
    sock, head, rest = _request(socket_path, method, target, None, False, timeout)
    return Hijacked(sock, head, rest)


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def demultiplex(data: bytes) -> tuple[bytes, bytes]:
    out, err = b"", b""
    for stream, payload in streams.parse_frames(data):
        if stream == streams.STDOUT:
            out += payload
        elif stream == streams.STDERR:
            err += payload
    return out, err
