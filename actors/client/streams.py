"""Container stdio over the API: demultiplexing, the attach pump, terminals, detach keys.

Non-TTY output is multiplexed: frames of an 8-byte header `[stream, 0, 0, 0, size (uint32
big endian)]` and `size` payload bytes; stream 1 is stdout, 2 stderr, 0 stdin (echoed to
stdout), 3 a "system error" the daemon sends instead of output. TTY output is raw bytes.
Input is never framed.
"""

import os
import struct

HEADER_BYTES = 8
STDIN, STDOUT, STDERR, SYSTEM_ERROR = 0, 1, 2, 3
SYSTEM_ERROR_BYTES_MAX = 64 * 1024
READ_BYTES = 32 * 1024
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q


class StreamError(Exception):
    """The daemon reported an error inside the stream (stream 3), or broke the framing."""


class Demultiplexer:
    """Incremental parser for multiplexed streams; payload is passed on as it arrives.

    `feed(data)` returns [(stream, bytes)] pieces; a frame's payload may come out in several
    pieces. A stream-3 frame raises StreamError with its text once the frame is complete.
    """

    def __init__(self) -> None:
        self._header = bytearray()
        self._stream = 0
        self._remaining = 0
        self._error = bytearray()

    @property
    def in_frame(self) -> bool:
        return bool(self._header) or self._remaining > 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        pieces: list[tuple[int, bytes]] = []
        view = memoryview(data)
        position = 0
        while position < len(view):
            if self._remaining == 0:
                need = HEADER_BYTES - len(self._header)
                self._header += view[position : position + need]
                position += min(need, len(view) - position)
                if len(self._header) < HEADER_BYTES:
                    break
                stream = self._header[0]
                (size,) = struct.unpack(">I", bytes(self._header[4:8]))
                self._header.clear()
                if stream > SYSTEM_ERROR:
                    raise StreamError(f"unrecognized stream: {stream}")
                self._stream = stream
                self._remaining = size
                if size == 0:
                    self._end_frame()
                continue
            take = min(self._remaining, len(view) - position)
            chunk = bytes(view[position : position + take])
            position += take
            self._remaining -= take
            if self._stream == SYSTEM_ERROR:
                if len(self._error) < SYSTEM_ERROR_BYTES_MAX:
                    self._error += chunk[: SYSTEM_ERROR_BYTES_MAX - len(self._error)]
            else:
                pieces.append((self._stream, chunk))
            if self._remaining == 0:
                self._end_frame()
        return pieces

    def _end_frame(self) -> None:
        if self._stream == SYSTEM_ERROR:
            text = self._error.decode("utf-8", "replace").strip()
            self._error.clear()
            raise StreamError(text or "error from daemon in stream")

    def finish(self) -> None:
        """Raise when the stream ended inside a frame."""
        if self.in_frame:
            raise StreamError("unexpected EOF in the middle of a stream frame")


def frame(stream: int, payload: bytes) -> bytes:
    """Encode one multiplexed frame (used by tests and stub servers)."""
    return struct.pack(">BxxxI", stream, len(payload)) + payload


def copy_output(chunks, tty: bool, stdout, stderr) -> None:
    """Write an output stream to stdout/stderr (binary files), demultiplexing unless TTY."""
    if tty:
        for data in chunks:
            stdout.write(data)
            stdout.flush()
        return
    demultiplexer = Demultiplexer()
    for data in chunks:
        for stream, piece in demultiplexer.feed(data):
            target = stderr if stream == STDERR else stdout
            target.write(piece)
            target.flush()
    demultiplexer.finish()


class DetachDetector:
    """Watch stdin for the detach sequence (docker's escape proxy).

    Bytes that could start the sequence are held back; if the sequence completes the
    session detaches and the held bytes are dropped, otherwise they are passed on.
    """

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Return (bytes to forward, detached?)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for byte in data:
            expected = self.keys[len(self._held)]
            if byte == expected:
                self._held.append(byte)
                if len(self._held) == len(self.keys):
                    self._held.clear()
                    return bytes(out), True
                continue
            out += self._held
            self._held.clear()
            if byte == self.keys[0]:
                self._held.append(byte)
            else:
                out.append(byte)
        return bytes(out), False

    def flush(self) -> bytes:
        held = bytes(self._held)
        self._held.clear()
        return held


def terminal_size(fd: int) -> tuple[int, int]:
    """(rows, columns) of the terminal on `fd`, (0, 0) when it is not one."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 0, 0
    return size.lines, size.columns


class RawTerminal:
    """Put a terminal in raw mode for the duration of a `with` block (and always restore)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved = None

    def __enter__(self):
        import termios
        import tty

        try:
            self._saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        except termios.error:
            self._saved = None
        return self

    def __exit__(self, *exc_info) -> None:
        if self._saved is not None:
            import termios

            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass


class AttachSession:
    """Pump stdin into a hijacked stream and its output to stdout/stderr until it ends.

    `run()` returns "eof" when the daemon closed the stream (the process ended) or
    "detached" when the user typed the detach keys. Stdin EOF half-closes the connection
    so the container sees EOF while its output keeps flowing.
    """

    def __init__(self, stream, tty: bool, stdin_fd: int | None, stdout, stderr,
                 detach_keys: bytes | None = DEFAULT_DETACH_KEYS) -> None:
        self.stream = stream
        self.tty = tty
        self.stdin_fd = stdin_fd
        self.stdout = stdout
        self.stderr = stderr
        self.detector = DetachDetector(detach_keys or b"") if stdin_fd is not None else None
        self.detached = False
        self.input_error: BaseException | None = None

    def _pump_input(self) -> None:
        import _socket

        try:
            while True:
                try:
                    data = os.read(self.stdin_fd, READ_BYTES)
                except OSError:
                    data = b""
                if not data:
                    held = self.detector.flush() if self.detector else b""
                    if held:
                        self.stream.sendall(held)
                    self.stream.close_write()
                    return
                if self.detector is not None:
                    data, detached = self.detector.feed(data)
                    if data:
                        self.stream.sendall(data)
                    if detached:
                        self.detached = True
                        try:
                            self.stream.sock.shutdown(_socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return
                else:
                    self.stream.sendall(data)
        except OSError as error:
            self.input_error = error

    def run(self) -> str:
        if self.stdin_fd is not None:
            import threading

            threading.Thread(target=self._pump_input, name="stdin", daemon=True).start()
        chunks = iter(lambda: self.stream.recv(READ_BYTES), b"")
        try:
            copy_output(chunks, self.tty, self.stdout, self.stderr)
        except StreamError:
            if not self.detached:
                raise
        finally:
            self.stream.close()
        return "detached" if self.detached else "eof"
