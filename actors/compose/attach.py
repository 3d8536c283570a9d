"""`up` in the foreground: every container's output, prefixed, until they all stop.

Each attached container has a thread reading `POST /containers/{id}/attach?stream=1&
stdout=1&stderr=1` (opened before the container starts, so nothing is lost). Threads
put events on one queue; the main thread prints them and decides, as Docker Compose's
log printer does:
- a container that exits prints `web-1 exited with code N` (unless we are stopping);
  one that its restart policy brings back is attached again;
- with `--abort-on-container-exit` (or `--exit-code-from`), the first exit prints
  `Aborting on container exit...` and stops everything; the exit code is that of the
  `--exit-code-from` service, else of the first container that exited;
- the first Ctrl-C (or SIGTERM) prints `Gracefully stopping... (press Ctrl+C again to
  force)` and stops the containers; a second one kills them; `up` then exits 130;
- when every attached container has stopped for good, `up` returns.
The signal handler only counts signals; the main loop looks at the count, so no lock is
ever taken inside a handler.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import attrs

from actors.client import api, formatting

from .engine import Engine
from .logs import LogPrinter, stream_lines

RESTART_SETTLE_SECONDS = 2.0
POLL_SECONDS = 0.1


@attrs.frozen
class Attached:
    id: str
    name: str  # as shown: without the project prefix
    service: str
    tty: bool


@attrs.frozen
class _Log:
    container: Attached
    line: str
    error: bool


@attrs.frozen
class _Exit:
    container: Attached
    code: int
    restarting: bool
    reported: bool = True  # False: a final stop whose exit was already shown


def _instant(text: str) -> tuple[int, int]:
    """An RFC 3339 time as (seconds, nanoseconds), for ordering; unknown is the epoch."""
    return formatting.parse_rfc3339_nanoseconds(text) or (0, 0)


def _chunks(stream: api.HijackedStream):
    while True:
        data = stream.recv(32 * 1024)
        if not data:
            return
        yield data


class Foreground:
    def __init__(self, engine: Engine, printer: LogPrinter, info: TextIO, *,
                 stop_all: Callable[[], None], kill_all: Callable[[], None],
                 cascade_stop: bool = False, exit_code_from: str = "") -> None:
        self.engine = engine
        self.printer = printer
        self.info = info
        self.stop_all = stop_all
        self.kill_all = kill_all
        self.cascade_stop = cascade_stop or bool(exit_code_from)
        self.exit_code_from = exit_code_from
        self.events: queue.Queue[Any] = queue.Queue()
        self.signals = 0
        self.stopping = threading.Event()
        self.attached: list[Attached] = []
        self._threads: list[threading.Thread] = []

    # -- attaching

    def attach(self, containers: list[Attached]) -> None:
        """Open every container's stream now (before start); threads read them."""
        for container in containers:
            self.printer.register(container.name)
        for container in containers:
            stream = self._open(container)
            thread = threading.Thread(target=self._follow, args=(container, stream),
                                      name=f"attach-{container.name}", daemon=True)
            self.attached.append(container)
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def _open(self, container: Attached) -> api.HijackedStream | None:
        try:
            return self.engine.attach(container.id)
        except api.ClientError:
            return None

    def _follow(self, container: Attached, stream: api.HijackedStream | None) -> None:
        """Pump one container's runs: report each exit once, follow the restarted ones.

        Runs are told apart by `RestartCount`, which the engine raises when its restart
        policy decides to start the container again. A restarted run's output is read
        from its logs since it started, so a line printed before we look is not lost."""
        restarts = self._restart_count(container)
        chunks = _chunks(stream) if stream is not None else iter(())
        while True:
            try:
                for is_error, line in stream_lines(chunks, container.tty):
                    self.events.put(_Log(container, line, is_error))
            except Exception:  # a broken stream ends like an exit
                pass
            finally:
                if stream is not None:
                    stream.close()
                    stream = None
            code, restarting, finished_at = self._exit_status(container, restarts)
            self.events.put(_Exit(container, code, restarting))
            if not restarting:
                return
            next_run = self._wait_next_run(container, restarts, finished_at)
            if next_run is None:
                # It was not started again after all: it has stopped for good.
                self.events.put(_Exit(container, code, False, reported=False))
                return
            restarts, started_at = next_run
            chunks = self._run_output(container, started_at)

    def _run_output(self, container: Attached, started_at: str) -> Iterator[bytes]:
        try:
            yield from self.engine.logs(container.id, follow=True, since=started_at or None)
        except api.ClientError:
            return

    def _restart_count(self, container: Attached) -> int:
        try:
            return int(self.engine.inspect(container.id).get("RestartCount") or 0)
        except api.ClientError:
            return 0

    def _exit_status(self, container: Attached, restarts: int) -> tuple[int, bool, str]:
        """(exit code of the run that ended, will its restart policy bring it back?,
        when that run finished)."""
        try:
            details = self.engine.inspect(container.id)
        except api.ClientError:
            return 0, False, ""
        policy = ((details.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name")
        if policy in (None, "", "no"):
            try:
                code = self.engine.wait(container.id, "not-running")
            except api.ClientError:
                code = int((details.get("State") or {}).get("ExitCode") or 0)
            return code, False, ""
        deadline = time.monotonic() + RESTART_SETTLE_SECONDS
        while True:
            state = details.get("State") or {}
            restarted = int(details.get("RestartCount") or 0) > restarts
            code = int(state.get("ExitCode") or 0)
            finished_at = state.get("FinishedAt") or ""
            if state.get("Restarting") or (restarted and not state.get("Running")):
                return code, not self.stopping.is_set(), finished_at
            if restarted:
                return code, True, finished_at
            if not state.get("Running") and (
                    self.stopping.is_set() or time.monotonic() > deadline):
                return code, False, finished_at
            time.sleep(POLL_SECONDS)
            try:
                details = self.engine.inspect(container.id)
            except api.ClientError:
                return code, False, finished_at

    def _wait_next_run(self, container: Attached, restarts: int, finished_at: str
                       ) -> tuple[int, str] | None:
        """Wait for the restarted run: (its RestartCount, its StartedAt), or None if none
        comes. The new run is the one started after the last one finished (a run that
        already ended before we looked counts too)."""
        finished = _instant(finished_at)
        settled_since: float | None = None
        while not self.stopping.is_set():
            try:
                details = self.engine.inspect(container.id)
            except api.ClientError:
                return None
            state = details.get("State") or {}
            count = int(details.get("RestartCount") or 0)
            started_at = state.get("StartedAt") or ""
            if (count > restarts and not state.get("Restarting")
                    and _instant(started_at) > finished):
                return count, started_at
            if state.get("Restarting") or state.get("Running") or count > restarts:
                settled_since = None
            if settled_since is None:
                settled_since = time.monotonic()
            elif time.monotonic() - settled_since > RESTART_SETTLE_SECONDS:
                return None
            time.sleep(POLL_SECONDS / 2)
        return None

    # -- the main loop

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals += 1

    def _background(self, job: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=self._quietly, args=(job,), daemon=True)
        thread.start()
        return thread

    @staticmethod
    def _quietly(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:
            pass

    def run(self) -> int:
        handlers = {number: signal.getsignal(number) for number in (signal.SIGINT,
                                                                     signal.SIGTERM)}
        for number in handlers:
            signal.signal(number, self._on_signal)
        try:
            return self._loop()
        finally:
            for number, handler in handlers.items():
                signal.signal(number, handler)

    def _loop(self) -> int:
        remaining = {container.id for container in self.attached}
        exit_code = 0
        exit_from = self.exit_code_from
        aborting = False
        handled_signals = 0
        killer: threading.Thread | None = None
        stopper: threading.Thread | None = None
        while remaining or (stopper is not None and stopper.is_alive()):
            if self.signals > handled_signals:
                handled_signals = self.signals
                if stopper is None:
                    aborting = True
                    self.stopping.set()
                    self.info.write("Gracefully stopping... (press Ctrl+C again to force)\n")
                    self.info.flush()
                    stopper = self._background(self.stop_all)
                elif killer is None:
                    killer = self._background(self.kill_all)
            try:
                event = self.events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if isinstance(event, _Log):
                if not aborting:
                    self.printer.log(event.container.name, event.line, event.error)
                continue
            container = event.container
            if not event.restarting:
                remaining.discard(container.id)
            if not event.reported:
                continue
            if not aborting:
                self.printer.status(container.name, f"exited with code {event.code}")
            if self.cascade_stop:
                natural = not aborting
                if natural:
                    aborting = True
                    self.stopping.set()
                    self.printer.stdout.write("Aborting on container exit...\n")
                    self.printer.stdout.flush()
                    stopper = self._background(self.stop_all)
                    if not exit_from:
                        exit_from = container.service
                # The named service's code counts even when we stopped it; otherwise only
                # the code of the exit that caused the abort does.
                if exit_from == container.service and (natural or self.exit_code_from):
                    exit_code = event.code
        for thread in self._threads:
            thread.join(1.0)
        if handled_signals:
            return 130
        return exit_code
