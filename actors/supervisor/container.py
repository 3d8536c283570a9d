"""One container, as its files say it is: lifecycle, stdio, exec and inspection.

See monitor.py for how each state is derived from the container's files.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal as signals
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from actors.supervisor import attach as attach_module
from actors.supervisor import logs, ocispec, processes, rootfs, top, users
from actors.supervisor.execs import ExecSession, start_exec
from actors.supervisor.layout import ContainerLayout, ContainerMeta, mtime_ns, read_int_file, touch
from actors.supervisor.states import (
    LOST_EXIT_CODE,
    ContainerState,
    ContainerStateError,
    ContainerStatus,
    ExitStatus,
    parse_signal,
)

if TYPE_CHECKING:
    from actors.supervisor.monitor import Executor

_CGROUP_REMOVE_SECONDS = 5.0
_ATTACH_ACCEPT_SECONDS = 2.0
TRASH_DIRECTORY = ".trash"
_MONITOR_LOST = "the container monitor (conmon) ended without recording an exit code"
CREATED_MARKER = "exec.fifo"


class Container:
    """One container, as its files say it is (see the module docstring)."""

    def __init__(self, executor: Executor, layout: ContainerLayout, meta: ContainerMeta) -> None:
        self._executor = executor
        self.layout = layout
        self.meta = meta

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def log_path(self) -> Path:
        return self.layout.log

    def __repr__(self) -> str:
        return f"<Container {self.id} {self.state().status.value}>"

    # --- state -----------------------------------------------------------------------------

    def _conmon_pid(self) -> int | None:
        """conmon's pid if it is alive and really this container's monitor."""
        pid = read_int_file(self.layout.conmon_pid)
        if pid is None or not processes.is_alive(pid):
            return None
        # Guards against a recycled pid: the process must be conmon for this id.
        argv = processes.command_line(pid)
        if "--cid" not in argv or argv[argv.index("--cid") + 1 :][:1] != [self.id]:
            return None
        return pid

    def _oom_killed(self) -> bool:
        if self.layout.oom.exists():
            return True
        return (self._executor.cgroups.oom_kill_count(self.meta.cgroups_path) or 0) > 0

    def exit_status(self) -> ExitStatus | None:
        """How the container's last run ended, or None while it has not."""
        code = read_int_file(self.layout.exit)
        if code is None:
            if self._conmon_pid() is not None or self._orphaned_init_pid() is not None:
                return None
            # Read again: conmon writes the file just before it exits.
            code = read_int_file(self.layout.exit)
            if code is None:
                return ExitStatus(LOST_EXIT_CODE, self._oom_killed(), None, _MONITOR_LOST)
        return ExitStatus(code, self._oom_killed(), mtime_ns(self.layout.exit))

    def _orphaned_init_pid(self) -> int | None:
        """The container's init when it outlived its conmon (killed by someone), else None."""
        if self.layout.exit.exists():
            return None
        pid = read_int_file(self.layout.container_pid)
        if pid is None or not processes.is_alive(pid) or not self._in_our_cgroup(pid):
            return None
        return pid

    def _in_our_cgroup(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cgroup") as handle:
                return f":{self.meta.cgroups_path}\n" in handle.read()
        except (FileNotFoundError, ProcessLookupError):
            return False

    def has_exited(self) -> bool:
        return self.exit_status() is not None

    def state(self) -> ContainerState:
        conmon_pid = self._conmon_pid()
        started = mtime_ns(self.layout.started)
        exited = (
            None if conmon_pid is not None and not self.layout.exit.exists() else self.exit_status()
        )
        if exited is not None:
            return ContainerState(
                self.id, ContainerStatus.EXITED, 0, exited.exit_code, exited.oom_killed,
                self.meta.created_ns, started, exited.finished_at_ns, None, exited.error,
            )  # fmt: skip
        pid = read_int_file(self.layout.container_pid) or 0
        if (self._executor.runtime_root / self.id / CREATED_MARKER).exists():
            status = ContainerStatus.CREATED
        elif self._executor.cgroups.is_frozen(self.meta.cgroups_path):
            status = ContainerStatus.PAUSED
        else:
            status = ContainerStatus.RUNNING
            if started is None and pid:
                started = _process_start_ns(pid)
        error = "" if conmon_pid is not None else _MONITOR_LOST
        return ContainerState(
            self.id,
            status,
            pid,
            None,
            False,
            self.meta.created_ns,
            started,
            None,
            conmon_pid,
            error,
        )

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Let the created container's process run (ContainerStateError unless created)."""
        status = self.state().status
        if status is not ContainerStatus.CREATED:
            raise ContainerStateError(f"container {self.id} is {status.value}, not created")
        await self._wait_attached_clients_accepted()
        if not (self._executor.runtime_is_crun and self._signal_exec_fifo()):
            await self._runtime("start", self.id)
        touch(self.layout.started)

    async def _wait_attached_clients_accepted(self) -> None:
        """Let conmon accept every attach made before start, so none misses output."""
        with trio.move_on_after(_ATTACH_ACCEPT_SECONDS):
            while (attach_module.pending_connections(self.layout.attach) or 0) > 0:
                await trio.sleep(0.001)

    def _signal_exec_fifo(self) -> bool:
        """crun's start: one byte to the fifo its init waits on (False: let crun do it)."""
        fifo = self._executor.runtime_root / self.id / CREATED_MARKER
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            if error.errno in (errno.ENXIO, errno.ENOENT):
                return False
            raise
        try:
            os.unlink(fifo)
            os.write(fd, b"\0")
        finally:
            os.close(fd)
        return True

    async def kill(self, signal: int | str = signals.SIGKILL) -> None:
        """Send a signal to the container's init process (ContainerStateError unless running)."""
        number = parse_signal(signal)
        state = self.state()
        if state.status not in (ContainerStatus.RUNNING, ContainerStatus.PAUSED) or not state.pid:
            raise ContainerStateError(f"container {self.id} is not running")
        if not self._signal_init(state.pid, number):
            raise ContainerStateError(f"container {self.id} is not running")
        if state.status is ContainerStatus.PAUSED and number == signals.SIGKILL:
            await self.unpause()

    def _signal_init(self, pid: int, number: int) -> bool:
        """Signal through a pidfd after checking the pid is still in our cgroup (a recycled
        pid is not); False when the process is gone."""
        pidfd = processes.open_pidfd(pid)
        if pidfd is None:
            return False
        try:
            if not self._in_our_cgroup(pid):
                return False
            signals.pidfd_send_signal(pidfd, number)
            return True
        except ProcessLookupError:
            return False
        finally:
            os.close(pidfd)

    async def wait(self) -> ExitStatus:
        """Sleep until the container's current run ends; its exit code, OOM flag and time."""
        while True:
            status = self.exit_status()
            if status is not None:
                return status
            conmon_pid = self._conmon_pid()
            if conmon_pid is not None:
                await processes.wait_for_exit(conmon_pid)
                continue
            orphan = self._orphaned_init_pid()
            if orphan is not None:
                # Its monitor is gone: we can learn when it ends, not with which code.
                await processes.wait_for_exit(orphan)

    async def stop(
        self, timeout_seconds: float | None = 10.0, signal: int | str = "SIGTERM"
    ) -> ExitStatus:
        """Docker's stop: `signal`, then SIGKILL after the timeout (None: wait forever)."""
        state = self.state()
        if state.status is ContainerStatus.EXITED:
            raise ContainerStateError(f"container {self.id} is not running")
        if state.status is ContainerStatus.CREATED:
            # Never started: nothing to be asked politely.
            self._signal_init(state.pid, signals.SIGKILL)
            return await self.wait()
        try:
            await self.kill(signal)
            if state.status is ContainerStatus.PAUSED:
                await self.unpause()
        except ContainerStateError:
            return await self.wait()
        if timeout_seconds is None:
            return await self.wait()
        with trio.move_on_after(max(timeout_seconds, 0.0)):
            return await self.wait()
        try:
            await self.kill(signals.SIGKILL)
        except ContainerStateError:
            pass
        return await self.wait()

    async def pause(self) -> None:
        if self.state().status is not ContainerStatus.RUNNING:
            raise ContainerStateError(f"container {self.id} is not running")
        await self._runtime("pause", self.id)

    async def unpause(self) -> None:
        if self.state().status is not ContainerStatus.PAUSED:
            raise ContainerStateError(f"container {self.id} is not paused")
        await self._runtime("resume", self.id)

    async def cleanup(self) -> None:
        """After the container exited: remove its runtime state, cgroup and root mount.

        Keeps the directory (exit code, log, writable layer) for inspect, logs, a restart
        or `remove`. Idempotent.
        """
        if self.exit_status() is None:
            raise ContainerStateError(f"container {self.id} is still running")
        if not self.layout.oom.exists() and self._oom_killed():
            # The cgroup's OOM count goes with the cgroup: keep the verdict as a marker.
            touch(self.layout.oom)
        if not self._executor.runtime_is_crun and (self._executor.runtime_root / self.id).exists():
            await self._runtime("delete", "--force", self.id, check=False)
        # For crun a stopped container's delete is exactly: remove its cgroup (below) and
        # its state directory; doing it here saves spawning the runtime.
        await self._remove_cgroup()
        await trio.to_thread.run_sync(self._release_mount_and_runtime_state)

    async def _remove_cgroup(self) -> None:
        """rmdir the container's cgroups, killing stragglers first.

        When init dies the kernel kills the rest of its pid namespace, but they may still be
        exiting when conmon reports init's exit; a busy cgroup cannot be removed yet.
        """
        cgroups = self._executor.cgroups
        delay = 0.002
        deadline = trio.current_time() + _CGROUP_REMOVE_SECONDS
        while cgroups.remove(self.meta.cgroups_path):
            if trio.current_time() > deadline:
                return
            for pid in cgroups.process_ids(self.meta.cgroups_path):
                try:
                    os.kill(pid, signals.SIGKILL)
                except ProcessLookupError:
                    pass
            await trio.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _release_mount_and_runtime_state(self) -> None:
        rootfs.unmount(str(self.layout.rootfs))
        shutil.rmtree(self._executor.runtime_root / self.id, ignore_errors=True)

    async def remove(self, *, force: bool = False) -> None:
        """Delete the container and every file of it (its writable layer and log included).

        A container that is not exited is refused unless `force`, which kills it first.
        """
        state = self.state()
        if state.status is not ContainerStatus.EXITED:
            if not force:
                raise ContainerStateError(
                    f"cannot remove container {self.id}: container is {state.status.value}; "
                    "stop it first or use force"
                )
            if state.status is ContainerStatus.CREATED:
                self._signal_init(state.pid, signals.SIGKILL)
            else:
                try:
                    await self.kill(signals.SIGKILL)
                except ContainerStateError:
                    pass  # it exited meanwhile
            await self.wait()
        await self.cleanup()
        await trio.to_thread.run_sync(self._remove_files)

    def _remove_files(self) -> None:
        # Renaming is instant; deleting a large writable layer is not, so it happens in the
        # background (and `Executor.recover` finishes what a restart interrupted).
        trash = self._executor.state_root / TRASH_DIRECTORY
        trash.mkdir(mode=0o700, exist_ok=True)
        target = trash / f"{self.id}.{time.time_ns()}"
        os.rename(self.layout.directory, target)
        unlink_quietly(self.layout.exit_dir_file)
        delete_in_background(target)

    # --- stdio -----------------------------------------------------------------------------

    async def attach(self) -> attach_module.AttachStream:
        """Connect to the container's stdio (see attach.py); AttachError once it exited."""
        return await attach_module.connect(self.layout.attach)

    def read_logs(
        self,
        *,
        follow: bool = False,
        tail: int | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[logs.LogEntry]:
        """The container's log (see logs.read_logs); `follow` ends when the container exits."""
        return logs.read_logs(
            self.layout.log,
            follow=follow,
            tail=tail,
            since_ns=since_ns,
            until_ns=until_ns,
            timestamps=timestamps,
            finished=self.has_exited,
        )

    def resize(self, height: int, width: int) -> None:
        if not self.meta.terminal:
            raise ContainerStateError(f"container {self.id} has no tty to resize")
        attach_module.resize(self.layout.ctl, height, width)

    async def exec(
        self,
        args: Sequence[str],
        *,
        env: Sequence[str] = (),
        cwd: str = "",
        user: str = "",
        tty: bool = False,
        stdin: bool = False,
        console_height: int = 0,
        console_width: int = 0,
        detach: bool = False,
    ) -> ExecSession:
        """Start a process in the running container (ContainerStateError otherwise).

        The daemon pumps the session's streams (`stdout`/`stderr`/`stdin`, or `pty` with a
        tty) and awaits `wait()` for the exit code; `aclose()` kills what still runs.
        """
        if not args:
            raise ocispec.SpecError("no command specified for exec")
        if self.state().status is not ContainerStatus.RUNNING:
            raise ContainerStateError(f"container {self.id} is not running")
        process = dict(self.layout.read_config()["process"])  # type: ignore[call-overload]
        process["args"] = list(args)
        process["terminal"] = tty
        process.pop("consoleSize", None)
        if tty and console_height > 0 and console_width > 0:
            process["consoleSize"] = {"height": console_height, "width": console_width}
        process["env"] = _merge_env(process.get("env", []), env)
        if cwd:
            process["cwd"] = cwd
        if user:
            resolved = users.resolve_user(str(self.layout.rootfs), user)
            process["user"] = {
                "uid": resolved.uid,
                "gid": resolved.gid,
                "additionalGids": list(resolved.additional_gids),
            }
        return await start_exec(
            runtime_path=self._executor.runtime_path,
            runtime_root=str(self._executor.runtime_root),
            container_id=self.id,
            exec_root=self.layout.exec_dir,
            process=process,
            stdin=stdin,
            detach=detach,
        )

    # --- inspection ------------------------------------------------------------------------

    def top(self) -> top.TopResult:
        if self.state().status not in (ContainerStatus.RUNNING, ContainerStatus.PAUSED):
            raise ContainerStateError(f"container {self.id} is not running")
        return top.top(self._executor.cgroups.process_ids(self.meta.cgroups_path))

    def stats(self) -> dict[str, object]:
        """Usage shaped like the Engine API's stats body (see Cgroups.stats)."""
        return self._executor.cgroups.stats(self.meta.cgroups_path)

    async def _runtime(self, *args: str, check: bool = True) -> str:
        argv = [self._executor.runtime_path, "--root", str(self._executor.runtime_root), *args]
        try:
            _, output = await processes.run_command(argv, check=check)
        except processes.RuntimeCommandError as error:
            raise ContainerStateError(f"{args[0]} {self.id}: {error.output}") from error
        return output


def unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def delete_in_background(path: Path) -> threading.Thread:
    thread = threading.Thread(
        target=shutil.rmtree, args=(path,), kwargs={"ignore_errors": True}, daemon=True
    )
    thread.start()
    return thread


def _merge_env(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    merged: dict[str, str] = {}
    for entry in [*base, *extra]:
        name, _, _ = entry.partition("=")
        merged[name] = entry
    return list(merged.values())


def _process_start_ns(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        with open("/proc/stat") as handle:
            boot = next(float(line.split()[1]) for line in handle if line.startswith("btime "))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return None
    start_ticks = int(stat[stat.rfind(b")") + 2 :].split()[19])
    return int((boot + start_ticks / os.sysconf("SC_CLK_TCK")) * 1_000_000_000)
