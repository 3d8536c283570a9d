"""Container records: what the daemon keeps about each container, and where it keeps it.

A record holds what was asked at create (Config, HostConfig, the endpoints), what create
resolved (image, command, mounts, hostname), and the container's state as the API shows it.
Records live in `<containers>/records/<id>.json`, one file each.

Durability: a record is written to a temporary file and renamed over the old one, so a
`kill -9` of the daemon at any moment leaves the old or the new record, never a torn one,
and never loses a write that was acknowledged (the page cache outlives the process).
Flushing to the disk (fsync of the file and of the directory) happens in the background
right after, batched: on this hardware one fsync costs ~10 ms, more than everything else a
`docker run` does, and a host crash kills every container anyway. Runtime state (running,
exit code, times) is also derived again from the executor's files on restart, so a record
that lags behind the container after a crash is corrected, not trusted.

States (Docker's): created → running ⇄ paused; running → restarting → running;
running → exited; any → removing → (gone); dead when removal failed half-way.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import attrs

from actors.supervisor.mounts import ResolvedMount

log = logging.getLogger("flotta.containers")

RECORD_VERSION = 1
STATUSES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


@attrs.define
class RunState:
    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_ns: int = 0
    finished_ns: int = 0
    health: dict[str, Any] | None = None
    stopped_by_user: bool = False
    restart_count: int = 0
    generation: int = 0  # incremented by every run; exit reports carry it
    restart_delay_seconds: float = 0.0

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


@attrs.define
class ContainerRecord:
    id: str
    name: str  # without the leading "/"
    created_ns: int
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    endpoints: dict[str, dict[str, Any]]  # requested EndpointSettings by network name
    path: str
    args: list[str]
    mounts: list[ResolvedMount] = attrs.field(factory=list)
    state: RunState = attrs.field(factory=RunState)
    lower_dirs: list[str] = attrs.field(factory=list)
    # NetworkSettings of the current (or last) run: SandboxKey, Networks, Ports.
    network: dict[str, Any] = attrs.field(factory=dict)
    files_dir: str = ""  # hostname, hosts, resolv.conf of the container
    log_path: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    @property
    def image_reference(self) -> str:
        return str(self.config.get("Image") or "")

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})

    def event_attributes(self) -> dict[str, str]:
        return {**self.labels, "image": self.image_reference, "name": self.name}

    def to_plain(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "id": self.id,
            "name": self.name,
            "created_ns": self.created_ns,
            "image_id": self.image_id,
            "config": self.config,
            "host_config": self.host_config,
            "endpoints": self.endpoints,
            "path": self.path,
            "args": self.args,
            "mounts": [mount.to_plain() for mount in self.mounts],
            "state": attrs.asdict(self.state),
            "lower_dirs": self.lower_dirs,
            "network": self.network,
            "files_dir": self.files_dir,
            "log_path": self.log_path,
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> ContainerRecord:
        if data.get("version") != RECORD_VERSION:
            raise ValueError(f"unsupported record version {data.get('version')!r}")
        state = RunState(**data["state"])
        if state.status not in STATUSES:
            raise ValueError(f"unknown container status {state.status!r}")
        return cls(
            id=data["id"],
            name=data["name"],
            created_ns=int(data["created_ns"]),
            image_id=data["image_id"],
            config=dict(data["config"]),
            host_config=dict(data["host_config"]),
            endpoints=dict(data["endpoints"]),
            path=data["path"],
            args=list(data["args"]),
            mounts=[ResolvedMount.from_plain(item) for item in data["mounts"]],
            state=state,
            lower_dirs=list(data["lower_dirs"]),
            network=dict(data["network"]),
            files_dir=data["files_dir"],
            log_path=data["log_path"],
        )


class RecordStore:
    """One JSON file per container; writes are atomic at once and durable soon after."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._dirty: set[Path] = set()
        self._directory_dirty = False

    def path(self, container_id: str) -> Path:
        return self.directory / f"{container_id}.json"

    def save(self, record: ContainerRecord) -> None:
        target = self.path(record.id)
        temporary = target.with_name(f".{target.name}.tmp")
        data = json.dumps(record.to_plain(), separators=(",", ":")).encode()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temporary, target)
        with self._lock:
            self._dirty.add(target)
            self._directory_dirty = True

    def delete(self, container_id: str) -> None:
        try:
            self.path(container_id).unlink()
        except FileNotFoundError:
            return
        with self._lock:
            self._dirty.discard(self.path(container_id))
            self._directory_dirty = True

    @property
    def needs_sync(self) -> bool:
        return bool(self._dirty) or self._directory_dirty

    def sync(self) -> None:
        """fsync what was written since the last sync (blocking: run in a thread)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            directory_dirty, self._directory_dirty = self._directory_dirty, False
        for path in dirty:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if directory_dirty:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def load_all(self) -> list[ContainerRecord]:
        """Every readable record; unreadable ones are logged and set aside (never deleted)."""
        records = []
        for entry in sorted(os.listdir(self.directory)):
            path = self.directory / entry
            if entry.startswith("."):
                if entry.endswith(".tmp"):
                    path.unlink(missing_ok=True)
                continue
            if not entry.endswith(".json"):
                continue
            try:
                records.append(ContainerRecord.from_plain(json.loads(path.read_bytes())))
            except (ValueError, KeyError, TypeError) as error:
                log.error("container record %s is unreadable (%s); moved aside", path, error)
                os.replace(path, path.with_name(f".{entry}.corrupt"))
        return records
