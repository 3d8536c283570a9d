"""A service's container as a `POST /containers/create` request, the way Docker Compose
builds it (docker/compose `getCreateConfigs`), so that flottad and dockerd receive the
same thing from `flotta compose` as from `docker compose`.

Pure: everything that depends on other containers (a `service:` network mode, a
`volumes_from`, links, the anonymous volumes a replaced container leaves behind) comes
in through `References`, resolved by the executor from what it observed.

Where flotta deliberately differs from Docker Compose's bytes, it is for determinism or
to say explicitly what Docker's zero value means: environment, mounts, ulimits and
exposed ports are sorted (Compose iterates Go maps); an unset restart policy is sent as
`"no"` (Compose sends `""`, which the engine reads as `"no"`); fields at their zero value
are left out rather than sent as zeros.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from . import labels as compose_labels
from .model import Project, Service, ServiceVolume

SERVICE_PREFIX = "service:"
CONTAINER_PREFIX = "container:"
SECRETS_DIRECTORY = "/run/secrets/"


class CreateError(ValueError):
    """The service cannot be turned into a container (a reference cannot be resolved)."""


@attrs.frozen(kw_only=True)
class ContainerRef:
    id: str
    name: str


@attrs.frozen(kw_only=True)
class References:
    """What other containers contribute to a create request."""

    # service name -> its containers, lowest container number first
    containers: Mapping[str, Sequence[ContainerRef]] = attrs.field(factory=dict)
    # anonymous volumes to keep from the container being replaced: target -> mount
    inherited_mounts: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class CreateRequest:
    query: dict[str, str]
    body: dict[str, Any]
    # networks to connect after create when the engine takes one endpoint at create (< 1.44)
    connect_after: tuple[tuple[str, dict[str, Any]], ...] = ()
    # files (secrets/configs from `environment` or `content`) copied in after create
    injected_files: tuple[InjectedFile, ...] = ()


@attrs.frozen(kw_only=True)
class InjectedFile:
    target: str
    content: bytes
    mode: int = 0o444
    uid: int = 0
    gid: int = 0


def _version_at_least(version: str, wanted: tuple[int, int]) -> bool:
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= wanted


def _seconds(nanoseconds: int | None) -> int | None:
    return None if nanoseconds is None else nanoseconds // 1_000_000_000


def _port_key(text: str) -> list[str]:
    """An `expose` entry as engine port keys: `3000` -> 3000/tcp, ranges expanded."""
    port, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    first, dash, last = port.partition("-")
    if dash and first.isdigit() and last.isdigit():
        return [f"{number}/{protocol}" for number in range(int(first), int(last) + 1)]
    return [f"{port}/{protocol}"]


def environment_list(environment: Mapping[str, str | None]) -> list[str]:
    """`KEY=value`, or `KEY` alone for a variable the shell did not have."""
    return [key if value is None else f"{key}={value}" for key, value in sorted(environment.items())]


def healthcheck_config(service: Service) -> dict[str, Any] | None:
    check = service.healthcheck
    if check is None:
        return None
    test: list[str] | None = list(check.test) if check.test is not None else None
    if check.disable:
        test = ["NONE"]
    config: dict[str, Any] = {"Test": test}
    for field, value in (("Interval", check.interval), ("Timeout", check.timeout),
                         ("StartPeriod", check.start_period),
                         ("StartInterval", check.start_interval)):
        if value:
            config[field] = value
    if check.retries:
        config["Retries"] = check.retries
    return config


_RESTART_NAMES = {"none": "no", "no": "no", "on-failure": "on-failure",
                  "unless-stopped": "unless-stopped", "any": "always", "always": "always"}


def restart_policy(service: Service) -> dict[str, Any]:
    policy = {"Name": "no", "MaximumRetryCount": 0}
    if service.restart:
        name, _, count = service.restart.partition(":")
        policy = {"Name": _RESTART_NAMES.get(name, name),
                  "MaximumRetryCount": int(count) if count.isdigit() else 0}
    deploy_policy = service.deploy.restart_policy if service.deploy else None
    if deploy_policy is not None:
        name = deploy_policy.condition or "any"
        policy = {"Name": _RESTART_NAMES.get(name, name),
                  "MaximumRetryCount": deploy_policy.max_attempts or 0}
    return policy


def _bind_string(volume: ServiceVolume) -> str:
    options = ["ro" if volume.read_only else "rw"]
    if volume.bind is not None and volume.bind.selinux:
        options.append(volume.bind.selinux)
    if volume.bind is not None and volume.bind.propagation:
        options.append(volume.bind.propagation)
    return f"{volume.source}:{volume.target}:{','.join(options)}"


def _needs_mount_api(volume: ServiceVolume) -> bool:
    bind = volume.bind
    return bind is not None and (
        not bind.create_host_path or bool(bind.propagation) or bool(bind.recursive)
    )


def _mount(project: Project, volume: ServiceVolume) -> dict[str, Any]:
    mount: dict[str, Any] = {"Type": volume.type, "Target": volume.target}
    source = volume.source
    if volume.type == "volume" and source and source in project.volumes:
        source = project.volumes[source].name
    if source:
        mount["Source"] = source
    if volume.read_only:
        mount["ReadOnly"] = True
    if volume.type == "bind" and volume.bind is not None:
        options: dict[str, Any] = {}
        if volume.bind.propagation:
            options["Propagation"] = volume.bind.propagation
        if volume.bind.create_host_path:
            options["CreateMountpoint"] = True
        recursive = {"disabled": "NonRecursive", "writable": "ReadOnlyNonRecursive",
                     "readonly": "ReadOnlyForceRecursive"}.get(volume.bind.recursive or "")
        if recursive:
            options[recursive] = True
        mount["BindOptions"] = options
    if volume.type == "volume" and volume.volume is not None:
        options = {}
        if volume.volume.nocopy:
            options["NoCopy"] = True
        if volume.volume.subpath:
            options["Subpath"] = volume.volume.subpath
        mount["VolumeOptions"] = options
    if volume.type == "tmpfs" and volume.tmpfs is not None:
        options = {}
        if volume.tmpfs.size:
            options["SizeBytes"] = volume.tmpfs.size
        if volume.tmpfs.mode is not None:
            options["Mode"] = volume.tmpfs.mode
        mount["TmpfsOptions"] = options
    return mount


def _number(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def _file_mounts(project: Project, service: Service) -> tuple[list[dict[str, Any]],
                                                               list[InjectedFile]]:
    """Secrets and configs: files bind-mounted read-only, or copied in after create."""
    mounts: list[dict[str, Any]] = []
    injected: list[InjectedFile] = []
    for kind, references, definitions, base in (
        ("secret", service.secrets, project.secrets, SECRETS_DIRECTORY),
        ("config", service.configs, project.configs, "/"),
    ):
        for reference in references:
            definition = definitions.get(reference.source)
            if definition is None:
                raise CreateError(f"{kind} {reference.source!r} is not defined")
            if definition.external:
                raise CreateError(f"unsupported external {kind} {definition.name}")
            target = reference.target or base + reference.source
            if not target.startswith("/"):
                target = base + target
            content: str | None = None
            if definition.environment is not None:
                content = project.environment.get(definition.environment, "")
            elif definition.content is not None:
                content = definition.content
            if content is not None:
                injected.append(InjectedFile(
                    target=target, content=content.encode(),
                    mode=reference.mode if reference.mode is not None else 0o444,
                    uid=_number(reference.uid), gid=_number(reference.gid)))
                continue
            mounts.append({"Type": "bind", "Source": definition.file, "Target": target,
                           "ReadOnly": True, "BindOptions": {}})
    return mounts, injected


def volumes_and_mounts(project: Project, service: Service,
                       inherited: Mapping[str, Mapping[str, Any]] | None = None,
                       ) -> tuple[list[str], list[dict[str, Any]], list[InjectedFile]]:
    """HostConfig.Binds (plain bind mounts), HostConfig.Mounts (the rest), injected files."""
    binds: list[str] = []
    mounts: dict[str, dict[str, Any]] = {}
    for target, mount in (inherited or {}).items():
        mounts[target] = dict(mount)
    for volume in service.volumes:
        if volume.type == "volume" and not volume.source and volume.target in mounts:
            continue  # keep the anonymous volume of the container being replaced
        if volume.type == "bind" and not _needs_mount_api(volume):
            mounts.pop(volume.target, None)
            binds.append(_bind_string(volume))
            continue
        mounts[volume.target] = _mount(project, volume)
    file_mounts, injected = _file_mounts(project, service)
    for mount in file_mounts:
        mounts.setdefault(mount["Target"], mount)
    return binds, [mounts[target] for target in sorted(mounts)], injected


def _resolve_service_mode(mode: str | None, what: str, references: References) -> str | None:
    if not mode or not mode.startswith(SERVICE_PREFIX):
        return mode
    name = mode[len(SERVICE_PREFIX):]
    containers = references.containers.get(name) or ()
    if not containers:
        raise CreateError(f"cannot share {what} namespace with service {name}: container missing")
    return CONTAINER_PREFIX + containers[0].id


def _volumes_from(service: Service, references: References) -> list[str]:
    result = []
    for entry in service.volumes_from:
        source, _, mode = entry.partition(":")
        if source == "container":
            result.append(mode)
            continue
        containers = references.containers.get(source) or ()
        if not containers:
            raise CreateError(f"cannot share volume with service {source}: container missing")
        result.append(containers[0].id + (f":{mode}" if mode else ""))
    return result


def links(project: Project, service: Service, number: int, references: References,
          oneoff: bool = False) -> list[str]:
    """Legacy links, as Docker Compose writes them (`container:alias`)."""
    result = []
    for link in service.links:
        target, _, alias = link.partition(":")
        alias = alias or target
        for container in references.containers.get(target) or ():
            result += [f"{container.name}:{alias}",
                       f"{container.name}:{target}-{number}",
                       f"{container.name}:{project.name}-{target}-{number}"]
    if oneoff:
        for container in references.containers.get(service.name) or ():
            short = container.name.removeprefix(f"{project.name}-")
            result += [f"{container.name}:{service.name}", f"{container.name}:{short}",
                       f"{container.name}:{container.name}"]
    for link in service.external_links:
        target, _, alias = link.partition(":")
        result.append(f"{target}:{alias or target}")
    return result


def _security_options(project: Project, service: Service) -> tuple[list[str], bool]:
    parsed = []
    unconfined = False
    for option in service.security_opt:
        if option == "systempaths=unconfined":
            unconfined = True
            continue
        key, separator, value = option.partition("=")
        if not separator:
            key, separator, value = option.partition(":")
        if key == "seccomp" and value not in ("unconfined", "builtin", ""):
            path = os.path.join(project.working_dir, value)
            try:
                with open(path, encoding="utf-8") as handle:
                    profile = json.load(handle)
            except (OSError, ValueError) as error:
                raise CreateError(f"opening seccomp profile ({value}) failed: {error}") from None
            parsed.append("seccomp=" + json.dumps(profile, separators=(",", ":")))
        else:
            parsed.append(option)
    return parsed, unconfined


def _resources(service: Service) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    limits, reservations = service.limits, service.reservations
    if limits.memory:
        resources["Memory"] = limits.memory
    if limits.cpus:
        resources["NanoCpus"] = int(limits.cpus * 1e9)
    if limits.pids and limits.pids > 0:
        resources["PidsLimit"] = limits.pids
    if reservations.memory:
        resources["MemoryReservation"] = reservations.memory
    if service.cpu_shares:
        resources["CpuShares"] = service.cpu_shares
    if service.cpuset:
        resources["CpusetCpus"] = service.cpuset
    if service.cgroup_parent:
        resources["CgroupParent"] = service.cgroup_parent
    if service.ulimits:
        resources["Ulimits"] = [{"Name": name, "Soft": limit.soft, "Hard": limit.hard}
                                for name, limit in sorted(service.ulimits.items())]
    if service.devices:
        resources["Devices"] = [{"PathOnHost": device.source, "PathInContainer": device.target,
                                 "CgroupPermissions": device.permissions}
                                for device in service.devices]
    return resources


def endpoint_settings(project: Project, service: Service, network_key: str, name: str,
                      use_aliases: bool, link_list: Sequence[str]) -> dict[str, Any]:
    """The endpoint on one network: aliases (container name, then service and extras)."""
    settings = service.networks.get(network_key)
    aliases = [name]
    if use_aliases:
        aliases += [alias for alias in compose_labels.endpoint_aliases(service, network_key, name)
                    if alias not in aliases]
    endpoint: dict[str, Any] = {"Aliases": aliases}
    if link_list:
        endpoint["Links"] = list(link_list)
    if settings is not None:
        ipam: dict[str, Any] = {}
        if settings.ipv4_address:
            ipam["IPv4Address"] = settings.ipv4_address
        if settings.ipv6_address:
            ipam["IPv6Address"] = settings.ipv6_address
        if settings.link_local_ips:
            ipam["LinkLocalIPs"] = list(settings.link_local_ips)
        endpoint["IPAMConfig"] = ipam
        if settings.mac_address:
            endpoint["MacAddress"] = settings.mac_address
        if settings.driver_opts:
            endpoint["DriverOpts"] = dict(settings.driver_opts)
        if settings.gw_priority:
            endpoint["GwPriority"] = settings.gw_priority
    return endpoint


def network_settings(project: Project, service: Service, name: str, use_aliases: bool,
                     link_list: Sequence[str], api_version: str, references: References,
                     ) -> tuple[str, dict[str, Any] | None, list[tuple[str, dict[str, Any]]]]:
    """(HostConfig.NetworkMode, NetworkingConfig, networks to connect after create)."""
    if service.network_mode:
        return _resolve_service_mode(service.network_mode, "network", references) or "", None, []
    if not project.networks or not service.networks:
        return "none", None, []
    keys = service.networks_by_priority()
    primary = keys[0]
    endpoints: dict[str, Any] = {}
    later: list[tuple[str, dict[str, Any]]] = []
    multiple = _version_at_least(api_version, (1, 44))
    for key in keys:
        settings = endpoint_settings(project, service, key, name, use_aliases, link_list)
        if key == primary and multiple and service.mac_address and "MacAddress" not in settings:
            settings["MacAddress"] = service.mac_address
        engine_name = project.networks[key].name
        if key == primary or multiple:
            endpoints[engine_name] = settings
        else:
            later.append((engine_name, settings))
    primary_name = project.networks[primary].name
    ordered = {primary_name: endpoints.pop(primary_name), **endpoints}
    return primary_name, {"EndpointsConfig": ordered}, later


def create_request(
    project: Project,
    service: Service,
    *,
    name: str,
    number: int | None,
    references: References | None = None,
    api_version: str = "1.45",
    oneoff: bool = False,
    slug: str | None = None,
    image_digest: str | None = None,
    replaces: str | None = None,
    use_network_aliases: bool = True,
    auto_remove: bool = False,
    attach_stdin: bool = False,
    extra_labels: Mapping[str, str] | None = None,
) -> CreateRequest:
    """The create request for container `name` (number `number`) of `service`."""
    references = references or References()
    labels = compose_labels.container_labels(
        project, service, number, oneoff=oneoff, slug=slug, image_digest=image_digest,
        replaces=replaces)
    labels.update(extra_labels or {})
    exposed: dict[str, dict[str, Any]] = {}
    for entry in service.expose:
        for key in _port_key(entry):
            exposed[key] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in service.ports:
        key = f"{port.target}/{port.protocol}"
        exposed[key] = {}
        bindings.setdefault(key, []).append(
            {"HostIp": port.host_ip or "", "HostPort": port.published or ""})
    link_list = links(project, service, number or 1, references, oneoff=oneoff)
    network_mode, networking, later = network_settings(
        project, service, name, use_network_aliases, link_list, api_version, references)
    binds, mounts, injected = volumes_and_mounts(project, service, references.inherited_mounts)
    security, unconfined = _security_options(project, service)

    config: dict[str, Any] = {
        "Image": compose_labels.image_name(project, service),
        "Labels": labels,
        "AttachStdin": attach_stdin,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": service.tty,
        "OpenStdin": service.stdin_open,
        "StdinOnce": attach_stdin and service.stdin_open,
        "Env": environment_list(service.environment),
        "Cmd": list(service.command) if service.command is not None else None,
        "Entrypoint": list(service.entrypoint) if service.entrypoint is not None else None,
    }
    for field, value in (("Hostname", service.hostname), ("Domainname", service.domainname),
                         ("User", service.user), ("WorkingDir", service.working_dir),
                         ("StopSignal", service.stop_signal)):
        if value:
            config[field] = value
    if exposed:
        config["ExposedPorts"] = {key: exposed[key] for key in sorted(exposed)}
    health = healthcheck_config(service)
    if health is not None:
        config["Healthcheck"] = health
    stop_timeout = _seconds(service.stop_grace_period)
    if stop_timeout is not None:
        config["StopTimeout"] = stop_timeout
    if service.network_mode == "disabled":
        config["NetworkDisabled"] = True

    host: dict[str, Any] = {
        "NetworkMode": network_mode,
        "RestartPolicy": restart_policy(service),
        "AutoRemove": auto_remove,
        "Init": service.init,
        "LogConfig": {"Type": service.logging.driver or "",
                      "Config": {key: value for key, value in service.logging.options.items()
                                 if value is not None}}
        if service.logging else {"Type": "", "Config": {}},
    }
    host.update(_resources(service))
    optional: dict[str, Any] = {
        "Binds": binds, "Mounts": mounts, "PortBindings": bindings,
        "CapAdd": list(service.cap_add), "CapDrop": list(service.cap_drop),
        "Dns": list(service.dns), "DnsSearch": list(service.dns_search),
        "DnsOptions": list(service.dns_opt),
        "ExtraHosts": [f"{entry.host}:{entry.ip}" for entry in service.extra_hosts],
        "Tmpfs": {path: options for path, _, options in
                  (entry.partition(":") for entry in service.tmpfs)},
        "Sysctls": dict(service.sysctls), "SecurityOpt": security,
        "GroupAdd": list(service.group_add), "Links": link_list,
        "VolumesFrom": _volumes_from(service, references),
        "Annotations": dict(service.annotations),
        "IpcMode": _resolve_service_mode(service.ipc, "IPC", references),
        "PidMode": _resolve_service_mode(service.pid, "PID", references),
        "UsernsMode": service.userns_mode, "Runtime": service.runtime,
        "ShmSize": service.shm_size, "OomScoreAdj": service.oom_score_adj,
        "Privileged": service.privileged, "ReadonlyRootfs": service.read_only,
    }
    host.update({key: value for key, value in optional.items() if value})
    if unconfined:
        host["MaskedPaths"] = []
        host["ReadonlyPaths"] = []

    body = dict(config)
    body["HostConfig"] = host
    if networking is not None:
        body["NetworkingConfig"] = networking
    query = {"name": name}
    if service.platform:
        query["platform"] = service.platform
    return CreateRequest(query=query, body=body, connect_after=tuple(later),
                         injected_files=tuple(injected))
