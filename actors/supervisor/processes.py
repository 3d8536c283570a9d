"""Small process helpers: liveness without reaping, waiting on any process through a pidfd,
and running the OCI runtime's short commands.

conmon double-forks, so the daemon is never its parent: its exit is observed through a
pidfd (readable when the process exits, whoever reaps it), never through waitpid.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

import trio

COMMAND_OUTPUT_BYTES_MAX = 1 << 20


class RuntimeCommandError(Exception):
    """The OCI runtime refused a command; carries its exit status and what it printed."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output.strip()
        super().__init__(
            f"{' '.join(self.argv[:1] + self.argv[-2:])} failed ({returncode}): {self.output}"
        )


def process_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat (R, S, Z, ...), or None when there is no process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may contain spaces and parentheses: the state follows the last ')'.
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3].decode()


def is_alive(pid: int) -> bool:
    """True when the process exists and has not exited (a zombie counts as exited)."""
    state = process_state(pid)
    return state is not None and state not in ("Z", "X")


def command_line(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`, or None when the process is already gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


async def wait_pidfd(pidfd: int) -> None:
    """Sleep until the process behind `pidfd` exits (the pidfd becomes readable)."""
    await trio.lowlevel.wait_readable(pidfd)


async def wait_for_exit(pid: int) -> None:
    """Sleep until `pid` exits, without reaping it; returns at once if it is gone."""
    pidfd = open_pidfd(pid)
    if pidfd is None:
        return
    try:
        if is_alive(pid):
            await wait_pidfd(pidfd)
    finally:
        os.close(pidfd)


async def run_command(argv: Sequence[str], *, check: bool = True) -> tuple[int, str]:
    """Run a short command with stdin from /dev/null; returns (status, stdout+stderr)."""
    process = await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    chunks: list[bytes] = []
    size = 0
    assert process.stdout is not None
    async with process.stdout:
        while True:
            chunk = await process.stdout.receive_some(65536)
            if not chunk:
                break
            if size < COMMAND_OUTPUT_BYTES_MAX:
                chunks.append(bytes(chunk))
                size += len(chunk)
    returncode = await process.wait()
    output = b"".join(chunks).decode(errors="replace")
    if check and returncode != 0:
        raise RuntimeCommandError(argv, returncode, output)
    return returncode, output
