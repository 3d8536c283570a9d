"""A container's mounts: `-v`, `--mount`, `--tmpfs` and the image's VOLUMEs, parsed and checked.

`plan_mounts` turns HostConfig.Binds, HostConfig.Mounts, HostConfig.Tmpfs and
Config.Volumes into `MountRequest`s with moby's validation messages. The actor then
resolves each request (creating named and anonymous volumes, checking or creating bind
sources) into a `ResolvedMount`, which the record keeps and which becomes both an OCI
mount for the executor and an entry of `Mounts` in inspect and `docker ps`.

Binds (`-v`) syntax: `dst` (anonymous volume), `src:dst[:mode]`, or `dst:mode`; `src` is a
host path when absolute, else a volume name. Modes: comma-separated `ro`/`rw`, `z`/`Z`
(accepted, no SELinux here), `nocopy` (volumes), a propagation (binds), a consistency
(accepted, ignored). A missing `-v` bind source is created; a missing `--mount type=bind`
source is an error, as with Docker.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from actors.errdefs import InvalidParameter

VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
CONSISTENCIES = ("consistent", "cached", "delegated", "default")
DEFAULT_PROPAGATION = "rprivate"


@attrs.frozen
class MountRequest:
    kind: str  # "bind", "volume" or "tmpfs"
    destination: str
    source: str = ""  # bind: host path; volume: name ("" for a new anonymous volume)
    readonly: bool = False
    mode: str = ""  # the Binds entry's mode text, shown as MountPoint.Mode
    propagation: str = ""
    copy_image_data: bool = True  # volumes: Docker's copy-up (off with nocopy)
    create_source: bool = False  # binds from -v: create a missing source directory
    tmpfs_options: tuple[str, ...] = ()
    volume_labels: Mapping[str, str] = attrs.field(factory=dict)
    volume_options: Mapping[str, str] = attrs.field(factory=dict)
    subpath: str = ""


@attrs.frozen
class ResolvedMount:
    """A mount as the container uses it (persisted in the record)."""

    kind: str
    destination: str
    source: str  # the host path mounted (a volume's data directory for volumes)
    name: str = ""  # volume name
    readonly: bool = False
    mode: str = ""
    propagation: str = ""
    copy_image_data: bool = False
    anonymous: bool = False
    tmpfs_options: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        """The MountPoint shape of inspect's and `docker ps`'s Mounts."""
        body: dict[str, Any] = {"Type": self.kind}
        if self.kind == "volume":
            body["Name"] = self.name
        body["Source"] = "" if self.kind == "tmpfs" else self.source
        body["Destination"] = self.destination
        if self.kind == "volume":
            body["Driver"] = "local"
        body["Mode"] = self.mode
        body["RW"] = not self.readonly
        body["Propagation"] = self.propagation
        return body

    def to_plain(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["tmpfs_options"] = list(self.tmpfs_options)
        return data

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> ResolvedMount:
        values = dict(data)
        values["tmpfs_options"] = tuple(values.get("tmpfs_options") or ())
        return cls(**values)


def _check_destination(destination: str, kind: str) -> str:
    if not destination:
        raise InvalidParameter(f'invalid mount config for type "{kind}": field Target must not be empty')
    if not destination.startswith("/"):
        raise InvalidParameter(
            f"invalid mount config for type \"{kind}\": invalid mount path: '{destination}' "
            "mount path must be absolute"
        )
    cleaned = posixpath.normpath(destination)
    if cleaned == "/":
        raise InvalidParameter("invalid specification: destination can't be '/'")
    return cleaned


def _check_volume_name(name: str) -> None:
    if not VOLUME_NAME.fullmatch(name):
        raise InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
            "use absolute path"
        )


def _is_mode(text: str) -> bool:
    try:
        _parse_mode(text, "volume")
    except InvalidParameter:
        return False
    return True


def _parse_mode(text: str, kind: str) -> tuple[bool, str, bool]:
    """(readonly, propagation, copy) from a Binds mode; InvalidParameter when bad."""
    readonly: bool | None = None
    propagation = ""
    copy = True
    for option in text.split(","):
        if option in ("ro", "rw"):
            if readonly is not None:
                raise InvalidParameter(f"invalid mode: {text}")
            readonly = option == "ro"
        elif option in ("z", "Z") or option in CONSISTENCIES:
            continue
        elif option in PROPAGATIONS:
            if propagation or kind != "bind":
                raise InvalidParameter(f"invalid mode: {text}")
            propagation = option
        elif option == "nocopy":
            if kind != "volume" or not copy:
                raise InvalidParameter(f"invalid mode: {text}")
            copy = False
        else:
            raise InvalidParameter(f"invalid mode: {text}")
    return bool(readonly), propagation, copy


def parse_bind(spec: str) -> MountRequest:
    """One HostConfig.Binds entry (`docker run -v`)."""
    parts = spec.split(":")
    if len(parts) == 1:
        source, destination, mode = "", parts[0], ""
    elif len(parts) == 2:
        if _is_mode(parts[1]) and parts[0].startswith("/") and not parts[1].startswith("/"):
            source, destination, mode = "", parts[0], parts[1]
        else:
            source, destination, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        source, destination, mode = parts
    else:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    if not destination:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    kind = "bind" if source.startswith("/") else "volume"
    destination = _check_destination(destination, kind)
    if kind == "volume" and source:
        _check_volume_name(source)
    readonly, propagation, copy = _parse_mode(mode, kind) if mode else (False, "", True)
    if kind == "bind":
        return MountRequest(
            "bind", destination, posixpath.normpath(source), readonly, mode,
            propagation or DEFAULT_PROPAGATION, False, create_source=True,
        )  # fmt: skip
    shown_mode = mode if mode else ("z" if source else "")
    return MountRequest("volume", destination, source, readonly, shown_mode, "", copy)


def _options(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter(f"{field} must be an object")
    return value


def parse_mount(value: Any) -> MountRequest:
    """One HostConfig.Mounts entry (`docker run --mount`)."""
    if not isinstance(value, dict):
        raise InvalidParameter("Mounts entries must be objects")
    kind = value.get("Type") or ""
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidParameter(f'invalid mount config for type "{kind}": mount type unknown')
    destination = _check_destination(str(value.get("Target") or ""), kind)
    source = str(value.get("Source") or "")
    readonly = bool(value.get("ReadOnly"))
    bind_options = _options(value.get("BindOptions"), "BindOptions")
    volume_options = _options(value.get("VolumeOptions"), "VolumeOptions")
    tmpfs_options = _options(value.get("TmpfsOptions"), "TmpfsOptions")
    error = f'invalid mount config for type "{kind}": '
    if kind != "bind" and value.get("BindOptions"):
        raise InvalidParameter(error + "field BindOptions must not be specified")
    if kind != "volume" and value.get("VolumeOptions"):
        raise InvalidParameter(error + "field VolumeOptions must not be specified")
    if kind != "tmpfs" and value.get("TmpfsOptions"):
        raise InvalidParameter(error + "field TmpfsOptions must not be specified")
    if kind == "bind":
        if not source:
            raise InvalidParameter(error + "field Source must not be empty")
        if not source.startswith("/"):
            raise InvalidParameter(
                error + f"invalid mount path: '{source}' mount path must be absolute"
            )
        propagation = str(bind_options.get("Propagation") or DEFAULT_PROPAGATION)
        if propagation not in PROPAGATIONS:
            raise InvalidParameter(error + f"invalid propagation mode: {propagation}")
        return MountRequest(
            "bind", destination, posixpath.normpath(source), readonly, "", propagation, False,
            create_source=bool(bind_options.get("CreateMountpoint")),
        )  # fmt: skip
    if kind == "volume":
        if source:
            _check_volume_name(source)
        driver = volume_options.get("DriverConfig") or {}
        subpath = str(volume_options.get("Subpath") or "")
        if subpath and (subpath.startswith("/") or ".." in subpath.split("/")):
            raise InvalidParameter(error + "subpath must be a relative path within the volume")
        return MountRequest(
            "volume", destination, source, readonly, "", "", not volume_options.get("NoCopy"),
            volume_labels={str(k): str(v) for k, v in (volume_options.get("Labels") or {}).items()},
            volume_options={str(k): str(v) for k, v in (driver.get("Options") or {}).items()},
            subpath=subpath,
        )  # fmt: skip
    if source:
        raise InvalidParameter(error + "field Source must not be specified")
    options: list[str] = []
    size = tmpfs_options.get("SizeBytes")
    if size:
        if not isinstance(size, int) or size < 0:
            raise InvalidParameter(error + "invalid tmpfs size")
        options.append(f"size={size}")
    mode = tmpfs_options.get("Mode")
    if mode:
        options.append(f"mode={int(mode):o}")
    return MountRequest("tmpfs", destination, "", readonly, "", "", False, tmpfs_options=tuple(options))


def parse_tmpfs(destination: str, options: str) -> MountRequest:
    """One HostConfig.Tmpfs entry (`--tmpfs /run:rw,size=64m`)."""
    destination = _check_destination(destination, "tmpfs")
    readonly = False
    extra: list[str] = []
    for option in filter(None, (options or "").split(",")):
        if option in ("ro", "rw"):
            readonly = option == "ro"
        elif option in ("nosuid", "nodev", "noexec"):
            continue  # always applied
        elif option in ("suid", "dev", "exec"):
            raise InvalidParameter(f"invalid tmpfs option {option!r}: flotta always mounts tmpfs nosuid,nodev,noexec")
        elif re.fullmatch(r"(size=\d+[kmgKMG%]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|nr_inodes=\d+[kmgKMG]?)", option):
            extra.append(option)
        else:
            raise InvalidParameter(f"invalid tmpfs option {option!r} for {destination}")
    return MountRequest("tmpfs", destination, "", readonly, "", "", False, tmpfs_options=tuple(extra))


def plan_mounts(config: Mapping[str, Any], host_config: Mapping[str, Any]) -> list[MountRequest]:
    """Every mount the container asks for, in Docker's precedence; duplicates refused."""
    requests: list[MountRequest] = []
    seen: set[str] = set()

    def add(request: MountRequest) -> None:
        if request.destination in seen:
            raise InvalidParameter(f"Duplicate mount point: {request.destination}")
        seen.add(request.destination)
        requests.append(request)

    for spec in host_config.get("Binds") or []:
        add(parse_bind(spec))
    for entry in host_config.get("Mounts") or []:
        add(parse_mount(entry))
    for destination, options in (host_config.get("Tmpfs") or {}).items():
        add(parse_tmpfs(destination, options))
    for destination in config.get("Volumes") or {}:
        cleaned = _check_destination(destination, "volume")
        if cleaned not in seen:
            seen.add(cleaned)
            requests.append(MountRequest("volume", cleaned))
    return requests


def volume_names(mounts: Iterable[ResolvedMount]) -> list[str]:
    return [mount.name for mount in mounts if mount.kind == "volume" and mount.name]


def mount_for_path(mounts: Iterable[ResolvedMount], path: str) -> ResolvedMount | None:
    """The mount whose destination holds `path` (the deepest), if any."""
    best: ResolvedMount | None = None
    for mount in mounts:
        prefix = mount.destination.rstrip("/") + "/"
        inside = path == mount.destination or path.startswith(prefix)
        if inside and (best is None or len(mount.destination) > len(best.destination)):
            best = mount
    return best
