"""The containers actor's less frequent operations: update, prune, commit, network
connect/disconnect, sizes, and filesystem leases for export and `docker cp`.

A filesystem lease gives a route a path that shows the container's files: its running
root (or, for `docker cp`, its init's `/proc/<pid>/root`, which includes its volumes), or
for a container that is not running a private overlay mount of its layers, made for the
lease and removed when it is released. While such a mount exists the container is not
started or removed (the overlay's upper and work directories are in use).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors import errdefs
from actors.images.changes import ChangeError, apply_changes
from actors.images.messages import CommitContainer as CommitImage
from actors.network import messages as network_messages
from actors.supervisor import createconfig, filters
from actors.supervisor import rootfs as rootfs_module
from actors.supervisor import stats as stats_module
from actors.supervisor.messages import CommitContainer, Committed, Done, FilesystemLease, JsonBody
from actors.supervisor.monitor import ContainerStateError, Executor
from actors.supervisor.records import ContainerRecord

if TYPE_CHECKING:
    from runtime.actor import Ref

log = logging.getLogger("flotta.containers")


@attrs.define
class MountLease:
    container_id: str
    mount_point: str  # "" when nothing was mounted for this lease


class Maintenance:
    """Mixin of ContainersActor (see the module docstring)."""

    executor: Executor
    records: dict[str, ContainerRecord]
    leases: dict[str, MountLease]
    image_sizes: dict[str, int]
    mounts_root: Path

    if TYPE_CHECKING:

        def lock(self, container_id: str) -> trio.Lock: ...

        def save(self, record: ContainerRecord) -> None: ...

        def event(self, record: ContainerRecord, action: str, **extra: str) -> None: ...

        def ref_to(self, name: str, node: str | None = None) -> Ref: ...

        def networks_ref(self) -> Ref | None: ...

        async def ask(self, ref: Ref, message: Any, timeout: float = ...) -> Any: ...

        def _current(self, container_id: str) -> ContainerRecord: ...

        async def remove_locked(
            self, record: ContainerRecord, *, force: bool, volumes: bool, background: bool = False
        ) -> None: ...

    async def _sizes(self, record: ContainerRecord) -> tuple[int, int]:
        upper = str(self.executor.layout(record.id).upper)
        size_rw = await trio.to_thread.run_sync(_directory_bytes, [upper])
        image = self.image_sizes.get(record.image_id)
        if image is None:
            image = self.image_sizes[record.image_id] = await trio.to_thread.run_sync(
                _directory_bytes, record.lower_dirs
            )
        return size_rw, size_rw + image

    async def _update(self, record: ContainerRecord, body: dict[str, Any]) -> JsonBody:
        host_config = dict(record.host_config)
        resource_keys = (
            "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota",
            "CpuPeriod", "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight",
        )  # fmt: skip
        for key in resource_keys:
            if body.get(key) is not None:
                host_config[key] = body[key]
        if body.get("RestartPolicy") is not None:
            if record.host_config.get("AutoRemove") and (body["RestartPolicy"].get("Name") or "no") != "no":
                raise errdefs.InvalidParameter(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container"
                )
            host_config["RestartPolicy"] = createconfig.parse_restart_policy(body["RestartPolicy"])
        warnings = createconfig.check_resources(host_config, os.cpu_count() or 1)
        if record.state.status in ("running", "paused"):
            await stats_module.update_resources(self.executor, record.id, host_config)
        record.host_config = host_config
        self.save(record)
        self.event(record, "update")
        return JsonBody({"Warnings": warnings})

    async def _prune(self, prune_filters: dict[str, list[str]]) -> JsonBody:
        filters.check_prune_filters(prune_filters)
        until_ns = None
        for value in prune_filters.get("until", []):
            until_ns = _parse_until_ns(value)
        deleted: list[str] = []
        reclaimed = 0
        for record in list(self.records.values()):
            if record.state.status not in ("created", "exited", "dead"):
                continue
            if not filters.prune_matches(record, prune_filters, until_ns):
                continue
            size_rw, _ = await self._sizes(record)
            async with self.lock(record.id):
                current = self.records.get(record.id)
                if current is None or current.state.status not in ("created", "exited", "dead"):
                    continue
                await self._wait_no_leases(record.id)
                await self.remove_locked(current, force=False, volumes=False)
            deleted.append(record.id)
            reclaimed += size_rw
        return JsonBody({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    async def _commit(self, record: ContainerRecord, request: CommitContainer) -> Committed:
        config = {key: value for key, value in record.config.items()}
        for key, value in (request.config or {}).items():
            if value is not None:
                config[key] = value
        try:
            config = apply_changes(config, request.changes)
        except ChangeError as error:
            raise errdefs.InvalidParameter(str(error)) from None
        container = None
        paused_here = False
        if request.pause and record.state.status == "running":
            container = self.executor.get(record.id)
            try:
                await container.pause()
                paused_here = True
            except ContainerStateError:
                paused_here = False
        try:
            created_by = " ".join([record.path, *record.args])
            result = await self.ask(
                self.ref_to("images"),
                CommitImage(
                    upper_dir=str(self.executor.layout(record.id).upper),
                    parent_image_id=record.image_id,
                    config=config,
                    container_id=record.id,
                    container_config=record.config,
                    author=request.author,
                    comment=request.comment,
                    repository=request.repository,
                    tag=request.tag,
                    created_by=created_by,
                ),
                timeout=3600,
            )
        finally:
            if paused_here and container is not None:
                with trio.CancelScope(shield=True):
                    try:
                        await container.unpause()
                    except ContainerStateError as error:
                        log.warning("container %s: unpause after commit: %s", record.short_id, error)
        self.event(record, "commit", comment=request.comment)
        return Committed(result.image_id)

    async def _connect(self, record: ContainerRecord, network: str, endpoint_config: dict[str, Any]) -> Done:
        mode = record.host_config.get("NetworkMode", "bridge")
        if mode in ("none", "host") or mode.startswith("container:"):
            raise errdefs.Forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network"
            )
        networks = self.networks_ref()
        if networks is None:
            raise errdefs.NotImplementedYet("networks are not available in this daemon")
        checked = await self.ask(networks, network_messages.CheckNetworks([network]))
        name = checked.names.get(network, network)
        if name in record.endpoints:
            raise errdefs.Forbidden(f"endpoint with name {record.name} already exists in network {name}")
        if record.state.status in ("running", "paused"):
            settings = dict(endpoint_config or {})
            reply = await self.ask(
                networks,
                network_messages.ConnectEndpoint(
                    record.id, record.name,
                    network_messages.EndpointRequest(
                        network=name,
                        aliases=list(settings.get("Aliases") or []),
                        ipv4_address=str((settings.get("IPAMConfig") or {}).get("IPv4Address") or ""),
                        mac_address=str(settings.get("MacAddress") or ""),
                        links=list(settings.get("Links") or []),
                        driver_options=dict(settings.get("DriverOpts") or {}),
                    ),
                ),
            )  # fmt: skip
            record.network.setdefault("Networks", {})[reply.endpoint.network_name] = dict(reply.endpoint.settings)
            if reply.hosts:
                hosts = Path(record.files_dir) / "hosts"
                await trio.to_thread.run_sync(hosts.write_text, reply.hosts)
        record.endpoints[name] = dict(endpoint_config or {})
        self.save(record)
        return Done(record.id)

    async def _disconnect(self, record: ContainerRecord, network: str, force: bool) -> Done:
        networks = self.networks_ref()
        if networks is None:
            raise errdefs.NotImplementedYet("networks are not available in this daemon")
        checked = await self.ask(networks, network_messages.CheckNetworks([network]))
        name = checked.names.get(network, network)
        if name not in record.endpoints and not force:
            raise errdefs.Forbidden(f"container {record.id} is not connected to network {name}")
        if record.state.status in ("running", "paused"):
            await self.ask(networks, network_messages.DisconnectEndpoint(record.id, name, force))
            (record.network.get("Networks") or {}).pop(name, None)
        record.endpoints.pop(name, None)
        self.save(record)
        return Done(record.id)

    # --- filesystem leases ---------------------------------------------------------------

    async def _wait_no_leases(self, container_id: str) -> None:
        while any(lease.container_id == container_id and lease.mount_point for lease in self.leases.values()):
            await trio.sleep(0.01)

    async def _lease_filesystem(self, container_id: str, writable: bool) -> FilesystemLease:
        async with self.lock(container_id):
            record = self._current(container_id)
            layout = self.executor.layout(container_id)
            lease_id = secrets.token_hex(16)
            plain_mounts = [mount.to_plain() for mount in record.mounts]
            running = record.state.status in ("running", "paused") and record.state.pid > 0
            if rootfs_module.is_mount_point(str(layout.rootfs)):
                self.leases[lease_id] = MountLease(container_id, "")
                view = f"/proc/{record.state.pid}/root" if running else str(layout.rootfs)
                return FilesystemLease(lease_id, container_id, str(layout.rootfs), view, plain_mounts, running)
            mount_point = self.mounts_root / lease_id
            await trio.to_thread.run_sync(
                _mount_for_lease, str(mount_point), record.lower_dirs, str(layout.upper), str(layout.work)
            )
            self.leases[lease_id] = MountLease(container_id, str(mount_point))
            return FilesystemLease(lease_id, container_id, str(mount_point), str(mount_point), plain_mounts, False)

    async def _release_filesystem(self, lease_id: str) -> Done:
        lease = self.leases.get(lease_id)
        if lease is None:
            return Done()
        if lease.mount_point:
            await trio.to_thread.run_sync(_unmount_lease, lease.mount_point)
        self.leases.pop(lease_id, None)
        return Done(lease.container_id)


def _directory_bytes(paths: list[str]) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for top in paths:
        for directory, _, files in os.walk(top):
            for name in files:
                try:
                    info = os.lstat(os.path.join(directory, name))
                except FileNotFoundError:
                    continue
                key = (info.st_dev, info.st_ino)
                if key in seen:
                    continue
                seen.add(key)
                total += info.st_size
    return total


def _mount_for_lease(mount_point: str, lower_dirs: list[str], upper: str, work: str) -> None:
    os.makedirs(mount_point, mode=0o700, exist_ok=True)
    try:
        rootfs_module.mount_overlay(mount_point, lower_dirs, upper, work)
    except rootfs_module.MountError as error:
        os.rmdir(mount_point)
        raise errdefs.SystemError_(str(error)) from None


def _unmount_lease(mount_point: str) -> None:
    rootfs_module.unmount(mount_point)
    try:
        os.rmdir(mount_point)
    except OSError:
        pass


def _parse_until_ns(value: str) -> int:
    import re as regex

    match = regex.fullmatch(r"(\d+)(s|m|h)", value)
    if match:
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
        return time.time_ns() - seconds * 1_000_000_000
    try:
        return int(float(value) * 1e9)
    except ValueError:
        pass
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        raise errdefs.InvalidParameter(f"invalid filter 'until={value}'") from None
