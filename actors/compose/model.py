"""The typed Compose project: what `flotta compose` acts on.

Every value here is resolved: variables interpolated, short syntaxes expanded, files
merged, `extends` applied, relative host paths made absolute, units parsed (durations
in integer nanoseconds, sizes in bytes, CPUs as floats), profiles applied. Field names
are the Compose keys, so the canonical dicts of the loader structure into these
classes directly (`structure_project`), and normalize.py prints them back.

The legacy resource keys (`mem_limit`, `mem_reservation`, `cpus`, `pids_limit`) are
folded into `deploy.resources`; `Service.replicas` is `scale`, else `deploy.replicas`,
else 1.
"""

from __future__ import annotations

from typing import Any

import attrs
import cattrs


@attrs.frozen(kw_only=True)
class Port:
    target: int
    published: str | None = None
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str = "ingress"
    name: str | None = None
    app_protocol: str | None = None


@attrs.frozen(kw_only=True)
class BindOptions:
    create_host_path: bool = True
    propagation: str | None = None
    selinux: str | None = None
    recursive: str | None = None


@attrs.frozen(kw_only=True)
class VolumeOptions:
    nocopy: bool = False
    subpath: str | None = None
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TmpfsOptions:
    size: int | None = None
    mode: int | None = None


@attrs.frozen(kw_only=True)
class ServiceVolume:
    """A mount: `type` is bind, volume (named, or anonymous when `source` is None) or tmpfs."""

    type: str
    target: str
    source: str | None = None
    read_only: bool = False
    consistency: str | None = None
    bind: BindOptions | None = None
    volume: VolumeOptions | None = None
    tmpfs: TmpfsOptions | None = None


@attrs.frozen(kw_only=True)
class ServiceNetwork:
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: tuple[str, ...] = ()
    mac_address: str | None = None
    interface_name: str | None = None
    priority: int | None = None
    gw_priority: int | None = None
    driver_opts: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Dependency:
    condition: str = "service_started"
    restart: bool = False
    required: bool = True


@attrs.frozen(kw_only=True)
class Healthcheck:
    test: tuple[str, ...] | None = None
    interval: int | None = None
    timeout: int | None = None
    start_period: int | None = None
    start_interval: int | None = None
    retries: int | None = None
    disable: bool = False


@attrs.frozen(kw_only=True)
class ResourceLimits:
    cpus: float | None = None
    memory: int | None = None
    pids: int | None = None


@attrs.frozen(kw_only=True)
class ResourceReservations:
    cpus: float | None = None
    memory: int | None = None


@attrs.frozen(kw_only=True)
class Resources:
    limits: ResourceLimits | None = None
    reservations: ResourceReservations | None = None


@attrs.frozen(kw_only=True)
class RestartPolicy:
    condition: str | None = None
    delay: int | None = None
    max_attempts: int | None = None
    window: int | None = None


@attrs.frozen(kw_only=True)
class UpdateConfig:
    parallelism: int | None = None
    delay: int | None = None
    failure_action: str | None = None
    monitor: int | None = None
    max_failure_ratio: float | None = None
    order: str | None = None


@attrs.frozen(kw_only=True)
class PlacementPreference:
    spread: str | None = None


@attrs.frozen(kw_only=True)
class Placement:
    constraints: tuple[str, ...] = ()
    preferences: tuple[PlacementPreference, ...] = ()
    max_replicas_per_node: int | None = None


@attrs.frozen(kw_only=True)
class Deploy:
    mode: str | None = None
    replicas: int | None = None
    labels: dict[str, str] = attrs.field(factory=dict)
    resources: Resources | None = None
    restart_policy: RestartPolicy | None = None
    update_config: UpdateConfig | None = None
    rollback_config: UpdateConfig | None = None
    placement: Placement | None = None
    endpoint_mode: str | None = None


@attrs.frozen(kw_only=True)
class Build:
    context: str = "."
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    args: dict[str, str] = attrs.field(factory=dict)
    labels: dict[str, str] = attrs.field(factory=dict)
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    no_cache: bool = False
    additional_contexts: dict[str, str] = attrs.field(factory=dict)
    network: str | None = None
    pull: bool = False
    target: str | None = None
    shm_size: int | None = None
    extra_hosts: tuple[HostEntry, ...] = ()
    tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    privileged: bool = False


@attrs.frozen(kw_only=True)
class HostEntry:
    host: str
    ip: str


@attrs.frozen(kw_only=True)
class Ulimit:
    soft: int
    hard: int


@attrs.frozen(kw_only=True)
class Logging:
    driver: str | None = None
    options: dict[str, str | None] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class EnvFile:
    path: str
    required: bool = True
    format: str | None = None


@attrs.frozen(kw_only=True)
class Device:
    source: str
    target: str
    permissions: str = "rwm"


@attrs.frozen(kw_only=True)
class FileReference:
    """A service's use of a top-level secret or config."""

    source: str
    target: str
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


@attrs.frozen(kw_only=True)
class Service:
    name: str
    image: str | None = None
    build: Build | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: dict[str, str | None] = attrs.field(factory=dict)
    env_file: tuple[EnvFile, ...] = ()
    ports: tuple[Port, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[ServiceVolume, ...] = ()
    tmpfs: tuple[str, ...] = ()
    networks: dict[str, ServiceNetwork | None] = attrs.field(factory=dict)
    network_mode: str | None = None
    depends_on: dict[str, Dependency] = attrs.field(factory=dict)
    healthcheck: Healthcheck | None = None
    restart: str | None = None
    deploy: Deploy | None = None
    labels: dict[str, str] = attrs.field(factory=dict)
    annotations: dict[str, str] = attrs.field(factory=dict)
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    tty: bool = False
    stdin_open: bool = False
    init: bool | None = None
    attach: bool | None = None
    privileged: bool = False
    read_only: bool = False
    stop_signal: str | None = None
    stop_grace_period: int | None = None
    profiles: tuple[str, ...] = ()
    container_name: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    extra_hosts: tuple[HostEntry, ...] = ()
    shm_size: int | None = None
    ulimits: dict[str, Ulimit] = attrs.field(factory=dict)
    sysctls: dict[str, str] = attrs.field(factory=dict)
    logging: Logging | None = None
    platform: str | None = None
    pull_policy: str | None = None
    scale: int | None = None
    security_opt: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    external_links: tuple[str, ...] = ()
    volumes_from: tuple[str, ...] = ()
    devices: tuple[Device, ...] = ()
    secrets: tuple[FileReference, ...] = ()
    configs: tuple[FileReference, ...] = ()
    ipc: str | None = None
    pid: str | None = None
    mac_address: str | None = None
    runtime: str | None = None
    cgroup_parent: str | None = None
    userns_mode: str | None = None
    cpuset: str | None = None
    cpu_shares: int | None = None
    oom_score_adj: int | None = None

    @property
    def replicas(self) -> int:
        """How many containers `up` runs: `scale`, else `deploy.replicas`, else 1."""
        if self.scale is not None:
            return self.scale
        if self.deploy is not None and self.deploy.replicas is not None:
            return self.deploy.replicas
        return 1

    @property
    def limits(self) -> ResourceLimits:
        resources = self.deploy.resources if self.deploy else None
        return (resources.limits if resources else None) or ResourceLimits()

    @property
    def reservations(self) -> ResourceReservations:
        resources = self.deploy.resources if self.deploy else None
        return (resources.reservations if resources else None) or ResourceReservations()

    def networks_by_priority(self) -> list[str]:
        """Network keys, highest `priority` first, then by name; the first is the primary one."""
        return sorted(
            self.networks,
            key=lambda key: (-((self.networks[key] or ServiceNetwork()).priority or 0), key),
        )

    @property
    def healthcheck_disabled(self) -> bool:
        check = self.healthcheck
        return check is not None and (check.disable or (check.test or ("",))[0] == "NONE")


@attrs.frozen(kw_only=True)
class IpamPool:
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Ipam:
    driver: str | None = None
    config: tuple[IpamPool, ...] = ()
    options: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Network:
    """A top-level network; `name` is the engine's name (`<project>_<key>` by default)."""

    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = attrs.field(factory=dict)
    ipam: Ipam | None = None
    external: bool = False
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = attrs.field(factory=dict)
    enable_ipv4: bool | None = None
    enable_ipv6: bool | None = None


@attrs.frozen(kw_only=True)
class Volume:
    """A top-level volume; `name` is the engine's name (`<project>_<key>` by default)."""

    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = attrs.field(factory=dict)
    external: bool = False
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Secret:
    name: str
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    external: bool = False
    labels: dict[str, str] = attrs.field(factory=dict)


Config = Secret


@attrs.frozen(kw_only=True)
class Project:
    """A loaded project. `environment` (what interpolation saw) is not part of equality."""

    name: str
    working_dir: str
    config_files: tuple[str, ...] = ()
    services: dict[str, Service] = attrs.field(factory=dict)
    disabled_services: dict[str, Service] = attrs.field(factory=dict)
    networks: dict[str, Network] = attrs.field(factory=dict)
    volumes: dict[str, Volume] = attrs.field(factory=dict)
    secrets: dict[str, Secret] = attrs.field(factory=dict)
    configs: dict[str, Secret] = attrs.field(factory=dict)
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = attrs.field(default=(), eq=False)
    environment: dict[str, str] = attrs.field(factory=dict, eq=False, repr=False)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)

    def structure_scalar(kind: type) -> Any:
        def structure(value: Any, _type: Any) -> Any:
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise TypeError(f"expected {kind.__name__}, got {value!r}")
            return value

        return structure

    for kind in (str, int, float, bool):
        converter.register_structure_hook(kind, structure_scalar(kind))
    return converter


converter = _make_converter()


def structure_service(name: str, canonical: dict[str, Any]) -> Service:
    return converter.structure({**canonical, "name": name}, Service)


def unstructure(value: Any) -> Any:
    return converter.unstructure(value)
