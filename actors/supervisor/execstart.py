"""Starting `docker exec` sessions with a short working directory.

`Container.exec` keeps an exec's files (process.json, the console socket of a TTY exec)
under the container's directory. A UNIX socket path is limited to 107 bytes, and a data
root under a deep directory plus a 64-character id exceeds it, so a TTY exec fails there
with "AF_UNIX path too long". This module builds the same process object as
`Container.exec` and hands `execs.start_exec` a short directory instead (see
`short_exec_root`): the daemon's run directory when its path is short, as in production
(/run/flotta), else one under the system's temporary directory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from actors.supervisor import execs, users
from actors.supervisor.errors import SpecError
from actors.supervisor.monitor import ContainerStateError, ContainerStatus, Executor

# An exec's console socket is <root>/x<8 random characters>/console.sock.
_SOCKET_SUFFIX_BYTES = len("/x12345678/console.sock")
_SUN_PATH_BYTES_MAX = 107


def short_exec_root_path(run_root: Path) -> Path:
    """`<run_root>/exec` when short enough (/run/flotta/containers/exec), otherwise a
    directory in the system's temporary directory named after `run_root`."""
    preferred = run_root / "exec"
    if len(str(preferred).encode()) + _SOCKET_SUFFIX_BYTES <= _SUN_PATH_BYTES_MAX:
        return preferred
    digest = hashlib.sha256(str(run_root.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f".flotta-exec-{digest}"


def short_exec_root(run_root: Path) -> Path:
    """A short private directory for exec sessions, unique to `run_root` (created)."""
    path = short_exec_root_path(run_root)
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def merge_env(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    merged: dict[str, str] = {}
    for entry in [*base, *extra]:
        merged[entry.partition("=")[0]] = entry
    return list(merged.values())


async def start(
    executor: Executor,
    exec_root: Path,
    container_id: str,
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
) -> execs.ExecSession:
    """Start a process in the running container (ContainerStateError otherwise)."""
    if not args:
        raise SpecError("no command specified for exec")
    container = executor.get(container_id)
    if container.state().status is not ContainerStatus.RUNNING:
        raise ContainerStateError(f"container {container_id} is not running")
    process = dict(container.layout.read_config()["process"])  # type: ignore[call-overload]
    process["args"] = list(args)
    process["terminal"] = tty
    process.pop("consoleSize", None)
    if tty and console_height > 0 and console_width > 0:
        process["consoleSize"] = {"height": console_height, "width": console_width}
    process["env"] = merge_env(process.get("env", []), env)
    if tty and not any(entry.startswith("TERM=") for entry in process["env"]):
        process["env"].append("TERM=xterm")
    if cwd:
        process["cwd"] = cwd
    if user:
        resolved = users.resolve_user(str(container.layout.rootfs), user)
        process["user"] = {
            "uid": resolved.uid,
            "gid": resolved.gid,
            "additionalGids": list(resolved.additional_gids),
        }
    return await execs.start_exec(
        runtime_path=executor.runtime_path,
        runtime_root=str(executor.runtime_root),
        container_id=container_id,
        exec_root=exec_root,
        process=process,
        stdin=stdin,
        detach=detach,
    )
