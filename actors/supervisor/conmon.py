"""Launching conmon, and its sync-pipe protocol.

conmon (2.1, `--api-version 1`) is the per-container monitor: it daemonizes itself (its
first process writes the daemon's pid to `-P` and exits), runs `<runtime> create` with the
container's stdio wired to itself, and then reports on the pipe named by the environment
variable `_OCI_SYNCPIPE` one JSON line: `{"data": <container pid>}` on success, or
`{"data": -1, "message": "<runtime stderr>"}` when create failed. After that it writes
stdout/stderr to the k8s-file log and to attached clients, and when the container exits it
writes the exit code (128+signal for a signal) to `<persist dir>/exit` and
`<exit dir>/<id>`, an `oom` marker when the kernel OOM-killed in the container's memory
cgroup, and exits.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence

import attrs
import trio

from actors.supervisor.layout import ContainerLayout

SYNC_MESSAGE_BYTES_MAX = 64 * 1024
CREATE_TIMEOUT_SECONDS = 60.0
_CONMON_ENVIRONMENT = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


class CreateError(Exception):
    """The container could not be created; `message` is what a Docker user would see.

    `exit_code` follows Docker: 127 when the command was not found, 126 when it cannot be
    executed, 125 for any other failure of the daemon or runtime.
    """

    def __init__(self, message: str, exit_code: int = 125, runtime_message: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.runtime_message = runtime_message


@attrs.frozen
class ConmonOptions:
    conmon_path: str
    runtime_path: str
    runtime_root: str
    terminal: bool
    stdin_open: bool
    stdin_once: bool
    log_size_max_bytes: int = 0


def conmon_argv(layout: ContainerLayout, options: ConmonOptions) -> list[str]:
    directory = str(layout.directory)
    if ":" in str(layout.log):
        # conmon splits its --log-path at ':' (driver:path).
        raise CreateError(f"container directory {directory!r} must not contain ':'")
    argv = [
        options.conmon_path,
        "--api-version", "1",
        "--cid", layout.id,
        "--cuuid", layout.id,
        "--name", layout.id,
        "--runtime", options.runtime_path,
        "--bundle", directory,
        "--container-pidfile", str(layout.container_pid),
        "--conmon-pidfile", str(layout.conmon_pid),
        "--exit-dir", str(layout.exits_dir),
        "--persist-dir", directory,
        "--full-attach",
        "--log-path", f"k8s-file:{layout.log}",
        "--runtime-arg", "--root",
        "--runtime-arg", options.runtime_root,
        # Like Docker's json-file driver: no fsync of the log after every container exit.
        "--no-sync-log",
    ]  # fmt: skip
    if options.terminal:
        argv.append("--terminal")
    if options.stdin_open:
        argv.append("--stdin")
        if not options.stdin_once:
            # Detaching clients must not close the container's stdin (Docker's StdinOnce=false).
            argv.append("--leave-stdin-open")
    if options.log_size_max_bytes > 0:
        argv += ["--log-size-max", str(options.log_size_max_bytes)]
    return argv


async def launch(layout: ContainerLayout, options: ConmonOptions, args: Sequence[str]) -> int:
    """Start conmon for a prepared bundle; returns the container's pid once it is created.

    Raises CreateError with Docker's wording when the runtime refused the container.
    """
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        environment = dict(_CONMON_ENVIRONMENT, _OCI_SYNCPIPE=str(write_end))
        try:
            first = await trio.lowlevel.open_process(
                conmon_argv(layout, options),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                # conmon writes an `oom` marker into its working directory too.
                cwd=str(layout.directory),
                env=environment,
                pass_fds=(write_end,),
            )
        except OSError as error:
            raise CreateError(f"cannot start conmon ({options.conmon_path}): {error}") from error
        os.close(write_end)
        write_end = -1
        with trio.move_on_after(CREATE_TIMEOUT_SECONDS) as scope:
            message = await _read_sync_message(read_end)
        if scope.cancelled_caught:
            raise CreateError(
                f"conmon did not report the container within {CREATE_TIMEOUT_SECONDS} s"
            )
        # conmon's first process exits right after forking; reap it and keep its complaints.
        early_output = b""
        assert first.stderr is not None
        async with first.stderr:
            while len(early_output) < SYNC_MESSAGE_BYTES_MAX:
                chunk = await first.stderr.receive_some(4096)
                if not chunk:
                    break
                early_output += chunk
        status = await first.wait()
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if message is None:
        detail = early_output.decode(errors="replace").strip() or f"conmon exited with {status}"
        raise CreateError(f"container monitor failed: {detail}")
    return _pid_from_message(message, args)


async def _read_sync_message(fd: int) -> bytes | None:
    stream = trio.lowlevel.FdStream(os.dup(fd))
    data = b""
    async with stream:
        while b"\n" not in data and len(data) < SYNC_MESSAGE_BYTES_MAX:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\n", 1)[0]
    return line or None


def _pid_from_message(line: bytes, args: Sequence[str]) -> int:
    try:
        message = json.loads(line)
        value = int(message["data"])
    except (ValueError, KeyError, TypeError) as error:
        raise CreateError(f"unexpected message from conmon: {line[:200]!r}") from error
    if value > 0:
        return value
    raise runtime_error(str(message.get("message", "")).strip(), args)


def runtime_error(runtime_message: str, args: Sequence[str]) -> CreateError:
    """The runtime's create failure in Docker's words, with Docker's exit code."""
    command = args[0] if args else ""
    lowered = runtime_message.lower()
    if "not found in $path" in lowered or "no such file or directory" in lowered:
        if "/" in command:
            text = f'exec: "{command}": stat {command}: no such file or directory'
        else:
            text = f'exec: "{command}": executable file not found in $PATH'
        return CreateError(text, 127, runtime_message)
    if "open executable" in lowered and (
        "permission denied" in lowered or "operation not permitted" in lowered
    ):
        return CreateError(f'exec: "{command}": permission denied', 126, runtime_message)
    if "is a directory" in lowered:
        return CreateError(f'exec: "{command}": is a directory', 126, runtime_message)
    return CreateError(f"OCI runtime create failed: {runtime_message}", 125, runtime_message)
