"""Container output as Docker Compose shows it: `web-1  | line`, one colour per container.

The prefix is the container's name without the project (`web-1`), padded to the longest
name seen so far plus one, then `| `. Colours go round Compose's rainbow in the order
containers are registered: cyan, yellow, green, magenta, blue, then the bold ones.
Status lines (`web-1 exited with code 0`) take the container's colour.

`LineSplitter` turns the bytes of a stream into lines (UTF-8, a line may arrive cut
anywhere); `stream_lines` reads a container's log or attach stream, demultiplexing it
unless the container has a TTY.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from actors.client.streams import STDERR, Demultiplexer

RESET = "\x1b[0m"
# Compose's rainbow: cyan, yellow, green, magenta, blue, then the same in bold.
RAINBOW = ("36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1")
LINE_BYTES_MAX = 1024 * 1024


def colour(code: str, text: str) -> str:
    return f"\x1b[{code}m{text}{RESET}"


class LogPrinter:
    """Writes container output with per-container prefixes; safe to share between threads."""

    def __init__(self, stdout: TextIO, stderr: TextIO | None = None, *, color: bool = False,
                 prefix: bool = True, timestamps: bool = False) -> None:
        self.stdout = stdout
        self.stderr = stderr or stdout
        self.color = color
        self.prefix = prefix
        self.timestamps = timestamps
        self._codes: dict[str, str | None] = {}
        self._next = 0
        self._width = 0
        self._lock = threading.Lock()

    def register(self, name: str) -> None:
        with self._lock:
            self._register(name)

    def _register(self, name: str) -> None:
        if name in self._codes:
            return
        code = None
        if self.color and name:
            code = RAINBOW[self._next % len(RAINBOW)]
            self._next += 1
        self._codes[name] = code
        self._width = max(self._width, len(name) + 1)

    def prefix_of(self, name: str) -> str:
        with self._lock:
            self._register(name)
            return self._prefix(name)

    def _prefix(self, name: str) -> str:
        if not self.prefix:
            return ""
        text = f"{name.ljust(self._width)}| "
        code = self._codes.get(name)
        return colour(code, text) if code else text

    def log(self, name: str, line: str, error: bool = False) -> None:
        with self._lock:
            self._register(name)
            stream = self.stderr if error else self.stdout
            stream.write(f"{self._prefix(name)}{line}\n")
            stream.flush()

    def status(self, name: str, message: str) -> None:
        with self._lock:
            self._register(name)
            text = f"{name} {message}"
            code = self._codes.get(name)
            self.stdout.write((colour(code, text) if code else text) + "\n")
            self.stdout.flush()


class LineSplitter:
    """Bytes in, complete lines out (without their newline); `finish` flushes the rest."""

    def __init__(self, line_bytes_max: int = LINE_BYTES_MAX) -> None:
        self._buffer = bytearray()
        self.line_bytes_max = line_bytes_max

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        lines = []
        while True:
            index = self._buffer.find(b"\n")
            if index < 0:
                break
            lines.append(self._buffer[:index].decode("utf-8", "replace"))
            del self._buffer[: index + 1]
        if len(self._buffer) > self.line_bytes_max:
            # A line this long is passed on in pieces rather than held without bound.
            lines.append(self._buffer.decode("utf-8", "replace"))
            self._buffer.clear()
        return lines

    def finish(self) -> list[str]:
        if not self._buffer:
            return []
        line = self._buffer.decode("utf-8", "replace")
        self._buffer.clear()
        return [line]


def stream_lines(chunks: Iterable[bytes], tty: bool) -> Iterator[tuple[bool, str]]:
    """(is_stderr, line) for each line of a log/attach stream."""
    if tty:
        splitter = LineSplitter()
        for data in chunks:
            for line in splitter.feed(data):
                yield False, line.rstrip("\r")
        for line in splitter.finish():
            yield False, line.rstrip("\r")
        return
    demultiplexer = Demultiplexer()
    splitters = {False: LineSplitter(), True: LineSplitter()}
    for data in chunks:
        for stream, piece in demultiplexer.feed(data):
            is_error = stream == STDERR
            for line in splitters[is_error].feed(piece):
                yield is_error, line
    for is_error, splitter in splitters.items():
        for line in splitter.finish():
            yield is_error, line


def display_name(project_name: str, container_name: str) -> str:
    """`demo-web-1` -> `web-1` (a custom container_name is shown whole)."""
    container_name = container_name.lstrip("/")
    prefix = project_name + "-"
    return container_name[len(prefix):] if container_name.startswith(prefix) else container_name


def follow_all(sources: list[tuple[str, Callable[[], Iterable[tuple[bool, str]]]]],
               printer: LogPrinter) -> list[BaseException]:
    """Print every source's lines from its own thread; return the errors the threads met."""
    errors: list[BaseException] = []

    def pump(name: str, produce: Callable[[], Iterable[tuple[bool, str]]]) -> None:
        try:
            for is_error, line in produce():
                printer.log(name, line, is_error)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=pump, args=source, daemon=True) for source in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    return errors
