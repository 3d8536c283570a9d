"""Reading container logs written by conmon in the k8s-file format.

Each line of the file is `<RFC 3339 time with nanoseconds and offset> <stream> <tag> <text>`
where stream is stdout or stderr and tag is `F` (the text ends a line; the file line's
newline is the container's) or `P` (a partial line: conmon read no newline yet; the file
line's newline is not the container's). A container line longer than conmon's 8 KiB read
buffer, or output without a final newline, becomes P records closed by an F record.

`read_logs` joins P records with their F record per stream, so every entry is one line of
the container's output (ending with "\\n", except a last unterminated one), and yields
`LogEntry(stream, time_ns, data)`. The API reports the driver as `json-file` to clients
(docker-py reads logs only for json-file/journald); the bytes are served from this file.
"""

from __future__ import annotations

import calendar
import contextlib
import ctypes
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import NamedTuple

import trio

from actors.supervisor.attach import Stream
from actors.supervisor.cgroups import format_rfc3339_nano

_READ_BYTES = 64 * 1024
_PARTIAL_BYTES_MAX = 1024 * 1024
_FOLLOW_WAKE_SECONDS = 1.0


class LogFormatError(ValueError):
    """A log line that is not in the k8s-file format."""


class LogEntry(NamedTuple):
    stream: Stream
    time_ns: int
    data: bytes


class LogRecord(NamedTuple):
    """One line of the file: partial (P) or final (F)."""

    stream: Stream
    time_ns: int
    partial: bool
    text: bytes


def parse_timestamp(text: bytes) -> int:
    """Nanoseconds since the epoch of `2024-01-02T03:04:05.123456789+01:00` (or `Z`)."""
    try:
        value = text.decode("ascii")
        if value.endswith("Z"):
            body, offset_seconds = value[:-1], 0
        else:
            body, sign, offset = value[:-6], value[-6], value[-5:]
            if sign not in "+-" or offset[2] != ":":
                raise ValueError("bad offset")
            offset_seconds = int(offset[:2]) * 3600 + int(offset[3:]) * 60
            if sign == "-":
                offset_seconds = -offset_seconds
        date, clock = body.split("T")
        year, month, day = (int(part) for part in date.split("-"))
        whole, _, fraction = clock.partition(".")
        hour, minute, second = (int(part) for part in whole.split(":"))
        if fraction and not fraction.isdigit():
            raise ValueError("bad fraction")
        nanoseconds = int((fraction + "000000000")[:9]) if fraction else 0
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, IndexError, UnicodeDecodeError) as error:
        raise LogFormatError(f"bad log timestamp {text[:40]!r}") from error
    return (seconds - offset_seconds) * 1_000_000_000 + nanoseconds


def parse_record(line: bytes) -> LogRecord:
    """One file line without its trailing newline."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        raise LogFormatError(f"truncated log line {line[:60]!r}")
    timestamp, stream_name, tag = parts[0], parts[1], parts[2]
    text = parts[3] if len(parts) == 4 else b""
    if stream_name == b"stdout":
        stream = Stream.STDOUT
    elif stream_name == b"stderr":
        stream = Stream.STDERR
    else:
        raise LogFormatError(f"unknown log stream {stream_name[:20]!r}")
    if tag not in (b"P", b"F"):
        raise LogFormatError(f"unknown log tag {tag[:5]!r}")
    return LogRecord(stream, parse_timestamp(timestamp), tag == b"P", text)


def format_record(stream: Stream, time_ns: int, data: bytes) -> bytes:
    """The file lines conmon would write for `data` read at `time_ns` (for tests)."""
    name = b"stdout" if stream is Stream.STDOUT else b"stderr"
    stamp = format_rfc3339_nano(time_ns).encode()
    out = []
    for piece in data.splitlines(keepends=True):
        if piece.endswith(b"\n"):
            out.append(b"%s %s F %s" % (stamp, name, piece))
        else:
            out.append(b"%s %s P %s\n" % (stamp, name, piece))
    return b"".join(out)


class _Joiner:
    """Joins P records to their F record, per stream."""

    def __init__(self) -> None:
        self._pending: dict[Stream, tuple[int, bytearray]] = {}

    def push(self, record: LogRecord) -> LogEntry | None:
        pending = self._pending.get(record.stream)
        if record.partial:
            if pending is None:
                self._pending[record.stream] = (record.time_ns, bytearray(record.text))
                return None
            pending[1].extend(record.text)
            if len(pending[1]) >= _PARTIAL_BYTES_MAX:
                # A runaway line without newline: hand it out in bounded pieces.
                del self._pending[record.stream]
                return LogEntry(record.stream, pending[0], bytes(pending[1]))
            return None
        if pending is None:
            return LogEntry(record.stream, record.time_ns, record.text + b"\n")
        del self._pending[record.stream]
        return LogEntry(record.stream, pending[0], bytes(pending[1]) + record.text + b"\n")

    def flush(self) -> list[LogEntry]:
        entries = [
            LogEntry(stream, start, bytes(data)) for stream, (start, data) in self._pending.items()
        ]
        self._pending.clear()
        return sorted(entries, key=lambda entry: entry.time_ns)


def parse_log_bytes(data: bytes) -> list[LogEntry]:
    """Every entry of a complete log file's bytes (unterminated partial lines included)."""
    joiner = _Joiner()
    entries = []
    for line in data.split(b"\n"):
        if not line:
            continue
        entry = joiner.push(parse_record(line))
        if entry is not None:
            entries.append(entry)
    return entries + joiner.flush()


def _tail_offset(handle: int, size: int, lines: int) -> int:
    """A file offset from which the last `lines` entries can be parsed whole.

    Scans backwards counting F records (line ends); a line's P records may lie before
    other streams' records, so for every stream with a line in the window the scan goes on
    until that stream's previous F record. Reads at most what it needs from the end.
    """
    if lines <= 0:
        return size
    needed = lines
    open_streams: set[bytes] = set()
    position = size
    pending = b""
    first = True
    while position > 0:
        step = min(_READ_BYTES, position)
        position -= step
        pieces = (os.pread(handle, step, position) + pending).split(b"\n")
        if first:
            pieces.pop()  # after the last newline: empty, or a record being written
            first = False
        if position > 0:
            pending = pieces.pop(0)
            base = position + len(pending) + 1
        else:
            pending, base = b"", 0
        offsets = []
        for piece in pieces:
            offsets.append(base)
            base += len(piece) + 1
        for index in range(len(pieces) - 1, -1, -1):
            fields = pieces[index].split(b" ", 3)
            if len(fields) < 3 or fields[2] != b"F":
                continue
            if needed > 0:
                needed -= 1
                open_streams.add(fields[1])
                continue
            # An F before the window: it ends this stream's earlier line.
            open_streams.discard(fields[1])
            if not open_streams:
                return offsets[index] + len(pieces[index]) + 1
    return 0


async def read_logs(
    path: str | os.PathLike[str],
    *,
    follow: bool = False,
    tail: int | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    timestamps: bool = False,
    finished: Callable[[], bool] | None = None,
) -> AsyncIterator[LogEntry]:
    """The container's log entries, oldest first.

    `tail` keeps only the last N lines (None: all); `since_ns`/`until_ns` keep entries with
    since <= time <= until; `timestamps` prefixes each entry's data with its RFC 3339 time
    and a space, as `docker logs -t`. With `follow`, waits for new output (woken by inotify
    on the log's directory) until `finished()` returns true (the container exited), then
    returns after reading what is left; without `finished` it follows until cancelled.
    A missing file yields nothing.
    """
    path = os.fspath(path)
    watcher = _DirectoryWatcher(os.path.dirname(path) or ".") if follow else None
    try:
        async with contextlib.aclosing(
            _read_entries(path, follow, tail, watcher, finished, until_ns)
        ) as source:
            async for entry in source:
                if since_ns is not None and entry.time_ns < since_ns:
                    continue
                if until_ns is not None and entry.time_ns > until_ns:
                    return
                if timestamps:
                    stamp = format_rfc3339_nano(entry.time_ns).encode()
                    entry = entry._replace(data=stamp + b" " + entry.data)
                yield entry
    finally:
        if watcher is not None:
            watcher.close()


async def _read_entries(
    path: str,
    follow: bool,
    tail: int | None,
    watcher: _DirectoryWatcher | None,
    finished: Callable[[], bool] | None,
    until_ns: int | None,
) -> AsyncGenerator[LogEntry, None]:
    try:
        handle = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    joiner = _Joiner()
    try:
        offset = 0
        if tail is not None:
            size = os.fstat(handle).st_size
            offset = _tail_offset(handle, size, tail)
            complete, _, _ = os.pread(handle, size - offset, offset).rpartition(b"\n")
            window = _push_lines(joiner, complete)
            if not follow:
                # A last line without newline counts as a line; when following it is
                # still being written and comes once complete.
                window += joiner.flush()
            if complete:
                offset += len(complete) + 1
            for entry in window[-tail:] if tail > 0 else []:
                yield entry
        carry = b""
        last_pass = False
        while True:
            chunk = os.pread(handle, _READ_BYTES, offset)
            if chunk:
                offset += len(chunk)
                complete, _, carry = (carry + chunk).rpartition(b"\n")
                for entry in _push_lines(joiner, complete):
                    yield entry
                await trio.lowlevel.checkpoint()
                continue
            if not follow or watcher is None or last_pass:
                break
            if _replaced(path, handle):
                # conmon started a new file (--log-size-max): continue in it.
                os.close(handle)
                try:
                    handle = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    handle = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
                offset, carry = 0, b""
                continue
            if finished is not None and finished():
                # Read once more: output written between our last read and the exit.
                last_pass = True
                continue
            if until_ns is not None and time.time_ns() > until_ns:
                break
            await watcher.wait(_FOLLOW_WAKE_SECONDS)
        # An unterminated last line is a write in progress: it is read next time.
        for entry in joiner.flush():
            yield entry
    finally:
        os.close(handle)


def _push_lines(joiner: _Joiner, data: bytes) -> list[LogEntry]:
    """Entries completed by the newline-separated records in `data`.

    A line that is not a k8s-file record (a torn write after a crash, or a stranger's edit)
    is skipped rather than ending the whole read.
    """
    entries = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            record = parse_record(line)
        except LogFormatError:
            continue
        entry = joiner.push(record)
        if entry is not None:
            entries.append(entry)
    return entries


def _replaced(path: str, handle: int) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle)
    return (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev)


_IN_MODIFY = 0x002
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_CLOSE_WRITE = 0x008
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_libc = ctypes.CDLL(None, use_errno=True)


class _DirectoryWatcher:
    """inotify on a directory: wakes a follower when the log grows or the exit file lands."""

    def __init__(self, directory: str) -> None:
        self._fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if self._fd >= 0:
            mask = _IN_MODIFY | _IN_MOVED_TO | _IN_CREATE | _IN_CLOSE_WRITE
            if _libc.inotify_add_watch(self._fd, directory.encode(), mask) < 0:
                os.close(self._fd)
                self._fd = -1

    async def wait(self, timeout_seconds: float) -> None:
        """Until something changed in the directory, or the timeout (a safety net)."""
        if self._fd < 0:
            await trio.sleep(min(timeout_seconds, 0.1))
            return
        with trio.move_on_after(timeout_seconds):
            await trio.lowlevel.wait_readable(self._fd)
        try:
            while os.read(self._fd, 65536):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        if self._fd >= 0:
            trio.lowlevel.notify_closing(self._fd)
            os.close(self._fd)
            self._fd = -1
