"""Progress display like Docker Compose's: one line per object, on standard error.

Events carry an id (`Container demo-web-1`, `Network demo_default`), a status (working,
done, warning, error) and a text (`Creating`, `Started`). Modes, as `--progress` says:

- plain: one line per event, as Compose prints them: ` Container demo-web-1  Started`;
- tty: a block redrawn in place, headed `[+] Running 2/3`, each line with a spinner or
  a tick and the time spent (` ✔ Container demo-web-1  Started   0.3s`);
- json: one JSON object per event; quiet: nothing.
`auto` is tty when standard error is a terminal (and ANSI is allowed), plain otherwise.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from typing import TextIO

WORKING, DONE, WARNING, ERROR = "working", "done", "warning", "error"
MODES = ("auto", "tty", "plain", "json", "quiet")
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
DONE_MARK, ERROR_MARK, WARNING_MARK = "✔", "✘", "!"
REDRAW_SECONDS = 0.1


class Progress:
    """The plain writer; also the interface the others follow."""

    def __init__(self, out: TextIO, dry_run: bool = False) -> None:
        self.out = out
        self.prefix = "DRY-RUN MODE - " if dry_run else ""
        self._lock = threading.Lock()

    def event(self, identifier: str, status: str, text: str, detail: str = "") -> None:
        # Go's Fprintln(prefix, id, "", status_text): operands joined by single spaces.
        line = " ".join((self.prefix, identifier, detail, text))
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def message(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    def close(self) -> None:
        """Stop drawing (the tty writer prints its final state)."""


class QuietProgress(Progress):
    def event(self, identifier: str, status: str, text: str, detail: str = "") -> None:
        return

    def message(self, text: str) -> None:
        return


class JsonProgress(Progress):
    def event(self, identifier: str, status: str, text: str, detail: str = "") -> None:
        record = {"dry_run": bool(self.prefix), "id": identifier, "status": text}
        if detail:
            record["text"] = detail
        if status == ERROR:
            record["error"] = True
        with self._lock:
            self.out.write(json.dumps(record) + "\n")
            self.out.flush()

    def message(self, text: str) -> None:
        with self._lock:
            self.out.write(json.dumps({"dry_run": bool(self.prefix), "message": text}) + "\n")
            self.out.flush()


class _Line:
    __slots__ = ("detail", "ended", "identifier", "started", "status", "text")

    def __init__(self, identifier: str, status: str, text: str, detail: str) -> None:
        self.identifier = identifier
        self.status = status
        self.text = text
        self.detail = detail
        self.started = time.monotonic()
        self.ended: float | None = None


class TtyProgress(Progress):
    """Redraws the block of lines in place every 100 ms and on every event."""

    def __init__(self, out: TextIO, title: str = "Running", dry_run: bool = False,
                 width: int | None = None) -> None:
        super().__init__(out, dry_run)
        self.title = title
        self.width = width
        self._lines: dict[str, _Line] = {}
        self._drawn = 0
        self._messages: list[str] = []
        self._stopped = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stopped.wait(REDRAW_SECONDS):
            with self._lock:
                self._draw()

    def event(self, identifier: str, status: str, text: str, detail: str = "") -> None:
        with self._lock:
            line = self._lines.get(identifier)
            if line is None:
                line = self._lines[identifier] = _Line(identifier, status, text, detail)
            else:
                line.status, line.text, line.detail = status, text, detail
                if status == WORKING:
                    line.ended = None
            if status != WORKING and line.ended is None:
                line.ended = time.monotonic()
            self._draw()

    def message(self, text: str) -> None:
        with self._lock:
            self._messages.append(text)

    def _render(self, line: _Line, padding: int, width: int, tick: int) -> str:
        if line.status == DONE:
            mark, colour = DONE_MARK, "\x1b[34m"
        elif line.status == ERROR:
            mark, colour = ERROR_MARK, "\x1b[31m"
        elif line.status == WARNING:
            mark, colour = WARNING_MARK, "\x1b[33m"
        else:
            mark, colour = SPINNER[tick % len(SPINNER)], "\x1b[37m"
        end = line.ended if line.ended is not None else time.monotonic()
        timer = f"{end - line.started:.1f}s"
        label = f"{line.identifier} {line.detail}"
        text = f" {mark} {self.prefix}{label}{' ' * max(padding - len(label), 0)} {line.text}"
        if len(text) + len(timer) + 1 < width:
            text = text.ljust(width - len(timer) - 1) + " " + timer
        return colour + text + "\x1b[0m"

    def _draw(self) -> None:
        if not self._lines:
            return
        width = self.width or shutil.get_terminal_size((120, 24)).columns
        done = sum(1 for line in self._lines.values() if line.status == DONE)
        total = len(self._lines)
        parts = []
        if self._drawn:
            parts.append(f"\x1b[{self._drawn}A")
        parts.append("\x1b[?25l")
        header = f"[+] {self.title} {done}/{total}"
        if done == total:
            header = "\x1b[34m" + header + "\x1b[0m"
        parts.append("\r\x1b[2K" + header + "\n")
        padding = max(len(f"{line.identifier} {line.detail}") for line in self._lines.values())
        tick = int(time.monotonic() / REDRAW_SECONDS)
        for line in self._lines.values():
            parts.append("\r\x1b[2K" + self._render(line, padding, width, tick) + "\n")
        parts.append("\x1b[?25h")
        self.out.write("".join(parts))
        self.out.flush()
        self._drawn = total + 1

    def close(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._ticker.join()
        with self._lock:
            self._draw()
            for text in self._messages:
                self.out.write(text + "\n")
            self._messages.clear()
            self.out.flush()


def make_progress(mode: str, out: TextIO, *, is_terminal: bool, ansi: str = "auto",
                  title: str = "Running", dry_run: bool = False) -> Progress:
    """The writer for `--progress mode` (ValueError with Compose's message when invalid)."""
    if mode in ("", "auto"):
        if ansi != "never" and (is_terminal or ansi == "always"):
            return TtyProgress(out, title, dry_run)
        return Progress(out, dry_run)
    if mode == "tty":
        if ansi == "never":
            raise ValueError("can't use --progress tty while ANSI support is disabled")
        return TtyProgress(out, title, dry_run)
    if mode == "plain":
        if ansi == "always":
            raise ValueError("can't use --progress plain while ANSI support is forced")
        return Progress(out, dry_run)
    if mode in ("quiet", "none"):
        return QuietProgress(out, dry_run)
    if mode == "json":
        return JsonProgress(out, dry_run)
    raise ValueError(f'unsupported --progress value "{mode}"')
