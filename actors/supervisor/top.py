"""`docker top`: the container's processes as `ps -ef` prints them.

The pids come from the container's cgroup (`cgroup.procs`), the columns from /proc/<pid>/:
UID (the host's name for the uid, as `ps` on the host shows), PID, PPID, C (lifetime CPU
percent), STIME, TTY, TIME (cumulative CPU) and CMD. Pure /proc reading: synchronous and
cheap enough for the Trio thread.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Iterable

import attrs

TITLES = ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")


@attrs.frozen
class TopResult:
    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]

    def to_api(self) -> dict[str, object]:
        return {"Titles": list(self.titles), "Processes": [list(row) for row in self.processes]}


def _boot_time_seconds() -> float:
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _tty_name(tty_nr: int) -> str:
    if tty_nr == 0:
        return "?"
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}"
    return "?"


def _format_cpu_time(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def _format_start(start_epoch: float, now_epoch: float) -> str:
    started = time.localtime(start_epoch)
    now = time.localtime(now_epoch)
    if started[:3] == now[:3]:
        return time.strftime("%H:%M", started)
    if started.tm_year == now.tm_year:
        return time.strftime("%b%d", started)
    return time.strftime("%Y", started)


def process_row(
    pid: int, *, boot_seconds: float, now_epoch: float, ticks_per_second: int
) -> tuple[str, ...] | None:
    """The `ps -ef` row of one process, or None if it vanished meanwhile."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        with open(f"/proc/{pid}/status", "rb") as handle:
            status = handle.read()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    close = stat.rfind(b")")
    name = stat[stat.find(b"(") + 1 : close].decode(errors="replace")
    fields = stat[close + 2 :].split()
    # fields[0] is the state (field 3 of stat); see proc(5) for the numbering.
    ppid = int(fields[1])
    tty_nr = int(fields[4])
    cpu_ticks = int(fields[11]) + int(fields[12])
    start_ticks = int(fields[19])
    uid = 0
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            uid = int(line.split()[1])
            break
    start_epoch = boot_seconds + start_ticks / ticks_per_second
    elapsed = max(now_epoch - start_epoch, 1e-9)
    cpu_seconds = cpu_ticks / ticks_per_second
    percent = int(cpu_seconds * 100 / elapsed)
    arguments = [part.decode(errors="replace") for part in cmdline.split(b"\0") if part]
    command = " ".join(arguments) if arguments else f"[{name}]"
    return (
        _user_name(uid),
        str(pid),
        str(ppid),
        str(percent),
        _format_start(start_epoch, now_epoch),
        _tty_name(tty_nr),
        _format_cpu_time(int(cpu_seconds)),
        command,
    )


def top(pids: Iterable[int]) -> TopResult:
    boot = _boot_time_seconds()
    now = time.time()
    ticks = os.sysconf("SC_CLK_TCK")
    rows = []
    for pid in sorted(pids):
        row = process_row(pid, boot_seconds=boot, now_epoch=now, ticks_per_second=ticks)
        if row is not None:
            rows.append(row)
    return TopResult(TITLES, tuple(rows))
