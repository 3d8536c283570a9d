"""Where a container's files live, and the metadata flotta keeps beside them.

One directory per container, `<state_root>/<id>/`, is both the OCI bundle and conmon's
persist directory, so everything a restarted daemon needs is found from the id alone:

    config.json      the OCI runtime config (crun copies it into its own state at create);
                     its annotation "org.flotta.executor" holds ContainerMeta
    rootfs/          the merged overlay mount point (root.path)
    diff/ work/      the overlay's upper and work directories (the container's writes)
    lower-empty/     an empty lower layer, only for an image FROM scratch
    conmon.pid       conmon's pid (written by conmon's first process)
    container.pid    the container's init pid on the host (written by the runtime)
    started          empty marker; its mtime is the start time
    exit             the exit code as text (written by conmon when the container exits)
    oom              marker: the kernel OOM-killed a process of the container
    attach           conmon's attach socket (SOCK_SEQPACKET)
    ctl, winsz       conmon's control fifos (resize, log reopen)
    container.log    stdout/stderr in the k8s-file format, written by conmon
    exec/            short-lived files of exec sessions (process.json, console sockets)

Outside it: `<run_root>/exits/<id>` (conmon's --exit-dir copy of `exit`, one directory to
watch for every container) and `<run_root>/runtime/` (crun's --root).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import attrs

META_VERSION = 1
META_ANNOTATION = "org.flotta.executor"
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class LayoutError(ValueError):
    """A container id or directory that flotta cannot use."""


def check_container_id(container_id: str) -> str:
    if not _ID_PATTERN.fullmatch(container_id):
        raise LayoutError(
            f"invalid container id {container_id!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return container_id


@attrs.frozen
class ContainerMeta:
    """What the executor must remember about a container across daemon restarts."""

    id: str
    created_ns: int
    terminal: bool
    stdin_open: bool
    stdin_once: bool
    cgroups_path: str
    lower_dirs: tuple[str, ...]
    runtime_path: str
    log_size_max_bytes: int = 0
    version: int = META_VERSION

    def to_json(self) -> bytes:
        data = attrs.asdict(self)
        data["lower_dirs"] = list(self.lower_dirs)
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ContainerMeta:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise LayoutError("corrupt container metadata: not a JSON object")
            if data.get("version") != META_VERSION:
                raise LayoutError(f"unsupported container metadata version {data.get('version')!r}")
            data["lower_dirs"] = tuple(data["lower_dirs"])
            return cls(**data)
        except (ValueError, TypeError, KeyError) as error:
            raise LayoutError(f"corrupt container metadata: {error}") from error


@attrs.frozen
class ContainerLayout:
    """The paths of one container's files (see the module docstring)."""

    directory: Path
    exits_dir: Path

    @classmethod
    def of(cls, state_root: Path, run_root: Path, container_id: str) -> ContainerLayout:
        check_container_id(container_id)
        return cls(state_root / container_id, run_root / "exits")

    @property
    def id(self) -> str:
        return self.directory.name

    config = property(lambda self: self.directory / "config.json")
    rootfs = property(lambda self: self.directory / "rootfs")
    upper = property(lambda self: self.directory / "diff")
    work = property(lambda self: self.directory / "work")
    conmon_pid = property(lambda self: self.directory / "conmon.pid")
    container_pid = property(lambda self: self.directory / "container.pid")
    started = property(lambda self: self.directory / "started")
    exit = property(lambda self: self.directory / "exit")
    oom = property(lambda self: self.directory / "oom")
    attach = property(lambda self: self.directory / "attach")
    ctl = property(lambda self: self.directory / "ctl")
    winsz = property(lambda self: self.directory / "winsz")
    log = property(lambda self: self.directory / "container.log")
    exec_dir = property(lambda self: self.directory / "exec")

    @property
    def exit_dir_file(self) -> Path:
        return self.exits_dir / self.id

    def runtime_markers(self) -> Sequence[Path]:
        """Files describing one run of the container; cleared before the next run."""
        return (
            self.conmon_pid,
            self.container_pid,
            self.started,
            self.exit,
            self.oom,
            self.exit_dir_file,
            self.attach,
            self.ctl,
            self.winsz,
        )

    def write_config(self, config: dict[str, object], meta: ContainerMeta) -> None:
        """Write config.json with `meta` in its annotations, atomically (rename).

        Not fsynced: everything it describes (conmon, the mount, the cgroup) dies with the
        host, and a flush would cost container start more than all the rest of its writes.
        """
        annotations = dict(config.get("annotations") or {})  # type: ignore[call-overload]
        annotations[META_ANNOTATION] = meta.to_json().decode()
        temporary = self.config.with_name(".config.json.tmp")
        temporary.write_text(json.dumps({**config, "annotations": annotations}))
        os.replace(temporary, self.config)

    def read_config(self) -> dict[str, object]:
        try:
            config = json.loads(self.config.read_bytes())
        except ValueError as error:
            raise LayoutError(f"corrupt config.json of container {self.id}: {error}") from error
        if not isinstance(config, dict):
            raise LayoutError(f"corrupt config.json of container {self.id}: not an object")
        return config

    def read_meta(self) -> ContainerMeta:
        """The metadata of the container's last create (FileNotFoundError if none)."""
        annotations = self.read_config().get("annotations")
        if not isinstance(annotations, dict) or META_ANNOTATION not in annotations:
            raise LayoutError(f"config.json of container {self.id} has no flotta metadata")
        return ContainerMeta.from_json(str(annotations[META_ANNOTATION]).encode())


def read_int_file(path: Path) -> int | None:
    """An integer written as text (pid files, exit codes); None when absent or empty."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def mtime_ns(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


def touch(path: Path) -> None:
    """Create (or truncate) an empty marker; its mtime records when."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.close(fd)
