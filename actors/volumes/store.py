"""Named and anonymous volumes of the `local` driver.

A volume is a directory `<root>/<name>/_data` plus its metadata `<root>/<name>/volume.json`
(written atomically). The metadata file is written last on create and removed first on
remove, so a `kill -9` at any moment leaves either a complete volume or a directory the
next start sweeps away — never a listed volume without its data directory.

Options of the local driver follow Docker's: none (a plain directory), or
`type`/`device`/`o` to mount something at the data directory when a container uses it
(`o=bind,device=/path` binds a host directory; `type=tmpfs` mounts a tmpfs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from runtime.disk import atomic_write

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
SUPPORTED_OPTIONS = {"type", "device", "o"}


class VolumeError(Exception):
    """Base of the volume store's errors."""


class VolumeNotFound(VolumeError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"get {name}: no such volume")


class VolumeInUse(VolumeError):
    pass


class InvalidVolume(VolumeError, ValueError):
    pass


@attrs.frozen
class Volume:
    name: str
    driver: str
    labels: dict[str, str]
    options: dict[str, str]
    created_at: str
    mountpoint: str

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def to_api(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Driver": self.driver,
            "Mountpoint": self.mountpoint,
            "CreatedAt": self.created_at,
            "Labels": dict(self.labels) or None,
            "Scope": "local",
            "Options": dict(self.options) or None,
        }


def _now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise InvalidVolume(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path"
        )


def check_options(options: dict[str, str]) -> None:
    unknown = sorted(set(options) - SUPPORTED_OPTIONS)
    if unknown:
        raise InvalidVolume(f"invalid option key: {unknown[0]!r}")
    kind = options.get("type", "")
    mount_options = options.get("o", "")
    if not options:
        return
    if "bind" in mount_options.split(","):
        device = options.get("device", "")
        if not device.startswith("/"):
            raise InvalidVolume("a bind volume needs device=<absolute host path>")
        return
    if kind == "tmpfs":
        return
    raise InvalidVolume(
        f"unsupported local volume options {options}: flotta supports o=bind with device=<path>, "
        "and type=tmpfs"
    )


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._sweep()

    def _sweep(self) -> None:
        """Remove directories of volumes whose create or remove was interrupted."""
        for entry in self.root.iterdir():
            if entry.is_dir() and not (entry / "volume.json").exists():
                shutil.rmtree(entry, ignore_errors=True)

    def _meta_path(self, name: str) -> Path:
        return self.root / name / "volume.json"

    def data_path(self, name: str) -> Path:
        return self.root / name / "_data"

    def _read(self, name: str) -> Volume:
        try:
            raw = json.loads(self._meta_path(name).read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            raise VolumeNotFound(name) from None
        return Volume(
            name=name,
            driver=raw["Driver"],
            labels=dict(raw.get("Labels") or {}),
            options=dict(raw.get("Options") or {}),
            created_at=raw["CreatedAt"],
            mountpoint=str(self.data_path(name)),
        )

    def get(self, name: str) -> Volume:
        if not NAME_PATTERN.match(name):
            raise VolumeNotFound(name)
        with self._lock:
            return self._read(name)

    def exists(self, name: str) -> bool:
        return NAME_PATTERN.match(name) is not None and self._meta_path(name).exists()

    def create(
        self,
        name: str,
        driver: str = "local",
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> tuple[Volume, bool]:
        """Create a volume; an existing one of the same driver is returned as is.

        Returns the volume and whether it was created now.
        """
        check_name(name)
        if driver not in ("", "local"):
            raise InvalidVolume(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        options = dict(options or {})
        check_options(options)
        with self._lock:
            if self._meta_path(name).exists():
                return self._read(name), False
            data = self.data_path(name)
            data.mkdir(parents=True, exist_ok=True)
            os.chmod(data, 0o755)
            meta = {
                "Driver": "local",
                "Labels": dict(labels or {}),
                "Options": options,
                "CreatedAt": _now_rfc3339(),
            }
            atomic_write(self._meta_path(name), json.dumps(meta, sort_keys=True).encode())
            return self._read(name), True

    def remove(self, name: str, in_use_by: list[str] | None = None, force: bool = False) -> None:
        with self._lock:
            self._read(name)
            if in_use_by:
                raise VolumeInUse(
                    f"remove {name}: volume is in use - [{', '.join(in_use_by)}]"
                )
            os.unlink(self._meta_path(name))
            shutil.rmtree(self.root / name, ignore_errors=True)

    def list(self) -> list[Volume]:
        with self._lock:
            volumes = []
            for entry in sorted(self.root.iterdir()):
                if (entry / "volume.json").exists():
                    volumes.append(self._read(entry.name))
            return volumes

    def size(self, name: str) -> int:
        total = 0
        for directory, _, files in os.walk(self.data_path(name)):
            for file in files:
                try:
                    total += os.lstat(os.path.join(directory, file)).st_size
                except OSError:
                    pass
        return total

    def populate_if_empty(self, name: str, source: Path) -> bool:
        """Copy an image's content at the mount path into a fresh, empty volume (Docker's
        copy-up); returns whether anything was copied."""
        data = self.data_path(name)
        with self._lock:
            if any(data.iterdir()) or not source.is_dir():
                return False
            for entry in source.iterdir():
                target = data / entry.name
                if entry.is_symlink():
                    os.symlink(os.readlink(entry), target)
                elif entry.is_dir():
                    shutil.copytree(entry, target, symlinks=True)
                else:
                    shutil.copy2(entry, target)
            stat = source.stat()
            os.chown(data, stat.st_uid, stat.st_gid)
            os.chmod(data, stat.st_mode & 0o7777)
            return True


def matches_filters(volume: Volume, filters: dict[str, list[str]], in_use: set[str]) -> bool:
    for key, values in filters.items():
        if key == "name":
            if not any(value in volume.name for value in values):
                return False
        elif key == "driver":
            if volume.driver not in values:
                return False
        elif key == "label":
            for expression in values:
                label, separator, wanted = expression.partition("=")
                if label not in volume.labels or (separator and volume.labels[label] != wanted):
                    return False
        elif key == "label!":
            for expression in values:
                label, separator, wanted = expression.partition("=")
                if label in volume.labels and (not separator or volume.labels[label] == wanted):
                    return False
        elif key == "dangling":
            dangling = any(value.lower() in ("true", "1") for value in values)
            if dangling != (volume.name not in in_use):
                return False
        elif key == "all":
            continue
        else:
            raise InvalidVolume(f"invalid filter '{key}'")
    return True
