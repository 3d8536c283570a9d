"""`docker exec`: a process started in a running container by `<runtime> exec`.

The daemon runs the runtime directly (not through conmon): an exec session lives as long as
the daemon's handle to it, which is what `docker exec` needs. The process is described by a
full OCI `process` object (`--process`), derived from the container's own, so it gets the
container's capabilities, rlimits and environment. Without a tty its stdio are pipes to the
daemon; with one the runtime sends the pty's master over a console socket and the daemon
reads and writes it. `crun exec` stays in the foreground and exits with the process's exit
status (128+signal for a signal), or 255 with its message on stderr when it could not run
the process at all.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal as signals
import socket
import struct
import subprocess
import tempfile
import termios
from collections.abc import Sequence
from pathlib import Path

import trio

from actors.supervisor import processes
from actors.supervisor.layout import read_int_file

_RUNTIME_FAILURE_STATUS = 255
_CONSOLE_SOCKET_TIMEOUT_SECONDS = 30.0
_STDERR_KEEP_BYTES = 4096
_PID_FILE_WAIT_SECONDS = 5.0


class ExecError(Exception):
    """The exec session could not be started."""


class _RecordingReceiveStream(trio.abc.ReceiveStream):
    """Passes stderr through, keeping its first bytes to recognise runtime failures."""

    def __init__(self, inner: trio.abc.ReceiveStream, head: bytearray) -> None:
        self._inner = inner
        self._head = head

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = bytes(await self._inner.receive_some(max_bytes))
        if len(self._head) < _STDERR_KEEP_BYTES:
            self._head.extend(data[: _STDERR_KEEP_BYTES - len(self._head)])
        return data

    async def aclose(self) -> None:
        await self._inner.aclose()


class ExecSession:
    """A running exec process: its stdio (pipes or pty), resize, and exit code."""

    def __init__(
        self,
        process: trio.Process,
        *,
        work_dir: Path,
        master: PtyStream | None,
        master_fd: int,
    ) -> None:
        self._process = process
        self._work_dir = work_dir
        self._master = master
        self._master_fd = master_fd
        self._exit_code: int | None = None
        self._stderr_head = bytearray()
        self._stderr: trio.abc.ReceiveStream | None = None
        if master is None and process.stderr is not None:
            self._stderr = _RecordingReceiveStream(process.stderr, self._stderr_head)

    @property
    def tty(self) -> bool:
        return self._master is not None

    @property
    def stdin(self) -> trio.abc.SendStream | None:
        """The process's stdin without a tty (None when stdin was not requested)."""
        return self._process.stdin if self._master is None else None

    @property
    def stdout(self) -> trio.abc.ReceiveStream | None:
        return self._process.stdout if self._master is None else None

    @property
    def stderr(self) -> trio.abc.ReceiveStream | None:
        return self._stderr

    @property
    def pty(self) -> PtyStream | None:
        """Both directions of a tty session (output of stdout and stderr merged)."""
        return self._master

    @property
    def pid(self) -> int | None:
        """The process's pid on the host, once the runtime has written it (see get_pid)."""
        return read_int_file(self._work_dir / "pid")

    async def get_pid(self) -> int | None:
        """The process's pid, waiting briefly for the runtime to record it (the process may
        run, and print, before the runtime writes its pid file); None if it never started."""
        delay = 0.001
        with trio.move_on_after(_PID_FILE_WAIT_SECONDS):
            while True:
                pid = self.pid
                if pid is not None or self._process.returncode is not None:
                    return pid
                await trio.sleep(delay)
                delay = min(delay * 2, 0.05)
        return self.pid

    @property
    def exit_code(self) -> int | None:
        return self._exit_code

    def resize(self, height: int, width: int) -> None:
        if self._master is None:
            raise ExecError("cannot resize an exec session without a tty")
        if not (0 < height < 65536 and 0 < width < 65536):
            raise ValueError(f"terminal size {height}x{width} must be between 1 and 65535")
        fcntl.ioctl(self._master_fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        """The exit code: the process's, or 126/127 when it could not be executed."""
        if self._exit_code is None:
            status = await self._process.wait()
            if status == _RUNTIME_FAILURE_STATUS and not self._stderr_head and self._stderr:
                # Nobody read stderr: look at what the runtime said, without waiting on
                # descendants that might still hold the pipe.
                with trio.move_on_after(0.1):
                    await self._stderr.receive_some(_STDERR_KEEP_BYTES)
            self._exit_code = _docker_exit_code(status, bytes(self._stderr_head))
            shutil.rmtree(self._work_dir, ignore_errors=True)
        return self._exit_code

    async def kill(self, signal: int = 9) -> bool:
        """Signal the exec'd process (default SIGKILL); False if it is not running."""
        pid = await self.get_pid()
        if pid is None or self._process.returncode is not None:
            return False
        pidfd = processes.open_pidfd(pid)
        if pidfd is None:
            return False
        try:
            signals.pidfd_send_signal(pidfd, signal)
            return True
        except ProcessLookupError:
            return False
        finally:
            os.close(pidfd)

    async def aclose(self) -> None:
        """Release the session; a process still running is killed first."""
        with trio.CancelScope(shield=True):
            if self._process.returncode is None:
                if not await self.kill():
                    self._process.kill()
                await self.wait()
            if self._master is not None:
                await self._master.aclose()
            for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
                if stream is not None:
                    await stream.aclose()
            shutil.rmtree(self._work_dir, ignore_errors=True)

    async def __aenter__(self) -> ExecSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _docker_exit_code(status: int, stderr_head: bytes) -> int:
    if status == _RUNTIME_FAILURE_STATUS:
        text = stderr_head.decode(errors="replace").lower()
        if "not found in $path" in text or "no such file or directory" in text:
            return 127
        if "open executable" in text or "permission denied" in text:
            return 126
    if status < 0:
        return 128 - status
    return status


async def start_exec(
    *,
    runtime_path: str,
    runtime_root: str,
    container_id: str,
    exec_root: Path,
    process: dict[str, object],
    stdin: bool,
    detach: bool = False,
) -> ExecSession:
    """Start `process` (an OCI process object) in the container; returns the session.

    With `process["terminal"]` true the session has a pty; otherwise pipes (stdin only when
    asked). `detach` (`docker exec -d`) sends stdout to /dev/null and keeps no stdin; stderr
    stays a pipe so a runtime failure can still be recognised (the session drains it).
    Raises ExecError when the runtime could not be started.
    """
    exec_root.mkdir(mode=0o700, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="x", dir=exec_root))
    process_file = work_dir / "process.json"
    process_file.write_text(json.dumps(process))
    argv = [
        runtime_path,
        "--root", runtime_root,
        "exec",
        "--process", str(process_file),
        "--pid-file", str(work_dir / "pid"),
    ]  # fmt: skip
    terminal = bool(process.get("terminal"))
    if not terminal:
        try:
            proc = await trio.lowlevel.open_process(
                [*argv, container_id],
                stdin=subprocess.PIPE if stdin and not detach else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if detach else subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as error:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise ExecError(f"cannot run {runtime_path}: {error}") from error
        return ExecSession(proc, work_dir=work_dir, master=None, master_fd=-1)
    return await _start_tty_exec(argv, container_id, work_dir)


async def _start_tty_exec(argv: Sequence[str], container_id: str, work_dir: Path) -> ExecSession:
    console_path = work_dir / "console.sock"
    listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    master_fd = -1
    failure = bytearray()
    try:
        await listener.bind(str(console_path))
        listener.listen(1)
        try:
            proc = await trio.lowlevel.open_process(
                [*argv, "--console-socket", str(console_path), container_id],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as error:
            raise ExecError(f"cannot run {argv[0]}: {error}") from error
        with trio.move_on_after(_CONSOLE_SOCKET_TIMEOUT_SECONDS):
            async with trio.open_nursery() as nursery:

                async def watch_runtime() -> None:
                    # A runtime that fails before sending the pty must not leave us waiting.
                    assert proc.stderr is not None
                    failure.extend(await proc.stderr.receive_some(_STDERR_KEEP_BYTES))
                    await proc.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch_runtime)
                connection, _ = await listener.accept()
                with connection:
                    master_fd = await _receive_fd(connection)
                nursery.cancel_scope.cancel()
        if master_fd < 0:
            if proc.returncode is None:
                proc.kill()
            status = await proc.wait()
            shutil.rmtree(work_dir, ignore_errors=True)
            message = failure.decode(errors="replace").strip()
            raise ExecError(message or f"runtime exec failed with status {status}")
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    finally:
        listener.close()
    master = PtyStream(trio.lowlevel.FdStream(master_fd))
    return ExecSession(proc, work_dir=work_dir, master=master, master_fd=master_fd)


class PtyStream(trio.abc.HalfCloseableStream):
    """A pty master as a Trio stream; the EIO a master reads after the last slave closed
    (the process exited) is reported as end of stream."""

    def __init__(self, inner: trio.lowlevel.FdStream) -> None:
        self._inner = inner

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            return await self._inner.receive_some(max_bytes)
        except trio.BrokenResourceError:
            return b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        # A terminal has no end of input; ^D at the start of a line is what a shell reads as one.
        await self._inner.send_all(b"\x04")

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _receive_fd(connection: trio.socket.SocketType) -> int:
    """The first file descriptor passed over `connection` (SCM_RIGHTS); -1 if none."""
    int_size = struct.calcsize("i")
    _, ancillary, _, _ = await connection.recvmsg(4096, socket.CMSG_SPACE(4 * int_size))
    received: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            count = len(data) // int_size
            received.extend(struct.unpack(f"{count}i", data[: count * int_size]))
    for extra in received[1:]:
        os.close(extra)
    if not received:
        return -1
    os.set_inheritable(received[0], False)
    return received[0]
