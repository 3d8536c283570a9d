"""Render the JSON message streams of pull, push, load, build and bootstrap like docker.

On a terminal each layer (message `id`) keeps its own line, redrawn in place with a
progress bar; on anything else progress-bar updates are dropped and only status lines
are printed. The first message carrying `errorDetail` stops the stream with that error.
"""

import time

from actors.client import formatting


class StreamMessageError(Exception):
    """An `errorDetail` inside a stream; `code` is the exit code the CLI should use."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def progress_text(detail: dict, width: int, now: float | None = None) -> str:
    """docker's JSONProgress.String(): "[=====>     ]  1.2MB/2.4MB 3s"."""
    current = detail.get("current") or 0
    total = detail.get("total") or 0
    units = detail.get("units") or ""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        if not units:
            return f"{formatting.human_size(current):>8}"
        return f"{current} {units}"
    percentage = min(int(current / total * 100) // 2, 50)
    bar = ""
    if width > 110:
        bar = "[" + "=" * percentage + ">" + " " * max(50 - percentage, 0) + "] "
    if detail.get("hidecounts"):
        numbers = ""
    elif not units:
        numbers = f"{formatting.human_size(current):>8}/{formatting.human_size(total)}"
        if current > total:
            numbers = f"{formatting.human_size(current):>8}"
    else:
        numbers = f"{current}/{total} {units}"
        if current > total:
            numbers = f"{current} {units}"
    left = ""
    start = detail.get("start") or 0
    if current > 0 and start > 0 and percentage < 50:
        if now is None:
            now = time.time()
        per_entry = (now - start) / current
        remaining = int((total - current) * per_entry)
        if width > 50:
            left = " " + _short_duration(remaining)
    return bar + numbers + left


def _short_duration(seconds: int) -> str:
    from actors.client.opts import format_go_duration

    return format_go_duration(max(seconds, 0) * 1_000_000_000)


class ProgressRenderer:
    """Feed JSON messages one at a time; writes to `out` (a text stream)."""

    def __init__(self, out, is_terminal: bool, width: int = 200, aux_callback=None) -> None:
        self.out = out
        self.is_terminal = is_terminal
        self.width = width
        self.aux_callback = aux_callback
        self._lines: dict[str, int] = {}

    def feed(self, message: dict) -> None:
        if not isinstance(message, dict):
            return
        if message.get("aux") is not None:
            if self.aux_callback is not None:
                self.aux_callback(message["aux"])
            return
        error = message.get("errorDetail")
        if error:
            code = error.get("code") or 1
            text = error.get("message") or message.get("error") or "unknown error"
            if code == 401:
                text = "authentication is required"
            raise StreamMessageError(text, code)
        identifier = message.get("id") or ""
        has_progress = message.get("progressDetail") is not None
        progress_message = message.get("progress") or ""
        distance = 0
        if identifier and (has_progress or progress_message):
            line = self._lines.get(identifier)
            if line is None:
                line = len(self._lines)
                self._lines[identifier] = line
                if self.is_terminal:
                    self.out.write("\n")
            distance = len(self._lines) - line
            if self.is_terminal and distance:
                self.out.write(f"\x1b[{distance}A")
        else:
            # Anything that is not a layer line resets the block of redrawable lines.
            self._lines = {}
        self._display(message, identifier)
        if identifier and self.is_terminal and distance:
            self.out.write(f"\x1b[{distance}B")
        self.out.flush()

    def _display(self, message: dict, identifier: str) -> None:
        detail = message.get("progressDetail")
        stream = message.get("stream") or ""
        end = ""
        if self.is_terminal and not stream and detail is not None:
            self.out.write("\x1b[2K\r")
            end = "\r"
        elif detail is not None and progress_text(detail, self.width):
            # Progress bars are for terminals only.
            return
        if message.get("timeNano"):
            nanos = message["timeNano"]
            self.out.write(_rfc3339_nano_fixed(nanos) + " ")
        elif message.get("time"):
            self.out.write(_rfc3339_nano_fixed(message["time"] * 1_000_000_000) + " ")
        if identifier:
            self.out.write(f"{identifier}: ")
        if message.get("from"):
            self.out.write(f"(from {message['from']}) ")
        status = message.get("status") or ""
        if detail is not None and self.is_terminal:
            self.out.write(f"{status} {progress_text(detail, self.width)}{end}")
        elif message.get("progress"):
            self.out.write(f"{status} {message['progress']}{end}")
        elif stream:
            self.out.write(f"{stream}{end}")
        else:
            self.out.write(f"{status}{end}\n")


def _rfc3339_nano_fixed(nanoseconds: int) -> str:
    seconds, nanos = divmod(int(nanoseconds), 1_000_000_000)
    moment = time.localtime(seconds)
    offset = time.strftime("%z", moment)
    zone = "Z" if offset in ("+0000", "-0000") else f"{offset[:3]}:{offset[3:]}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{nanos:09d}" + zone


def display_stream(messages, out, is_terminal: bool, width: int = 200, aux_callback=None):
    """Render every message; raises StreamMessageError at the first error message."""
    renderer = ProgressRenderer(out, is_terminal, width, aux_callback)
    for message in messages:
        renderer.feed(message)
