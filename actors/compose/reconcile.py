"""The reconciler behind `flotta compose up`: observed state in, a list of actions out.

`plan(project, observed, options)` is pure: it reads what the engine has (containers,
networks and volumes found by Docker Compose's labels, the image each service runs) and
says what to do, in order. The executor (executor.py) applies the actions through the
API. The rules are Docker Compose's (docker/compose `convergence.go`):

- Networks and volumes of the project are created when missing; an external one must
  exist. A network that exists with the same name but not made for this project/key is
  an error; one whose settings changed is removed and made again, and the containers on
  it are recreated. A volume whose settings changed is kept, with a warning (its data).
- Services are handled in dependency order (`depends_on`, plus `service:` network, IPC
  and PID modes, `volumes_from` and `links`).
- For each service, the containers to keep are its up-to-date ones with the lowest
  numbers; the others (obsolete ones first, then the highest numbers) are removed when
  scaling down. A kept container is recreated when its config hash or image differ from
  the service's, when it runs off a network or volume it should use, or always with
  `--force-recreate`; never with `--no-recreate`. Services named on the command line use
  the `recreate` policy, the others `recreate_dependencies`.
- Before a container is recreated, the services depending on its service with
  `restart: true` are stopped (they are started again afterwards).
- New containers take the numbers after the highest one in use.
- Orphans (containers of services the project no longer has, and one-off containers
  that have exited) are reported, or removed with `--remove-orphans`.
- Then services start in dependency order, each after its dependencies meet their
  `depends_on` condition (`service_started` is met by the order alone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from . import labels as compose_labels
from .graph import order
from .hashing import config_hash, network_hash, volume_hash
from .model import Network, Project, Service, Volume

RECREATE_DIVERGED = "diverged"
RECREATE_FORCE = "force"
RECREATE_NEVER = "never"

SERVICE_STARTED = "service_started"
SERVICE_HEALTHY = "service_healthy"
SERVICE_COMPLETED = "service_completed_successfully"

RUNNING = "running"
EXITED = "exited"
CREATED = "created"

_DOUBLED_NAME = (
    'WARNING: The "{service}" service is using the custom container name "{name}". '
    "Docker requires each container to have a unique name. "
    "Remove the custom name to scale the service."
)


class PlanError(Exception):
    """The project cannot be brought up as asked; the message is Docker Compose's."""


# --------------------------------------------------------------------------- observed


@attrs.frozen(kw_only=True)
class ObservedContainer:
    id: str
    name: str
    service: str
    number: int | None = None
    oneoff: bool = False
    state: str = RUNNING
    config_hash: str | None = None
    image_digest: str | None = None
    created: int = 0
    network_names: tuple[str, ...] = ()
    network_ids: tuple[str, ...] = ()
    volume_names: tuple[str, ...] = ()
    labels: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ObservedNetwork:
    id: str
    name: str
    labels: Mapping[str, str] = attrs.field(factory=dict)
    driver: str = "bridge"
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    options: Mapping[str, str] = attrs.field(factory=dict)
    subnets: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ObservedVolume:
    name: str
    labels: Mapping[str, str] = attrs.field(factory=dict)
    driver: str = "local"
    options: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Observed:
    """What the engine has: the project's containers, and every network and volume."""

    containers: tuple[ObservedContainer, ...] = ()
    networks: tuple[ObservedNetwork, ...] = ()
    volumes: tuple[ObservedVolume, ...] = ()
    # service -> ID of the image it would run now (absent when unknown)
    image_digests: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class UpOptions:
    services: tuple[str, ...] = ()
    recreate: str = RECREATE_DIVERGED
    recreate_dependencies: str = RECREATE_DIVERGED
    no_deps: bool = False
    remove_orphans: bool = False
    ignore_orphans: bool = False
    start: bool = True


# --------------------------------------------------------------------------- actions


@attrs.frozen
class CreateNetwork:
    key: str
    name: str


@attrs.frozen
class RecreateNetwork:
    """Remove the diverged network (its containers stopped first) and create it again."""

    key: str
    name: str
    network_id: str
    stop: tuple[ObservedContainer, ...]


@attrs.frozen
class CreateVolume:
    key: str
    name: str


@attrs.frozen
class RemoveContainer:
    container: ObservedContainer
    reason: str  # "orphan" or "scale"


@attrs.frozen
class StopService:
    """Stop the containers of `service` so they restart after a dependency is recreated."""

    service: str
    containers: tuple[ObservedContainer, ...]


@attrs.frozen
class RecreateContainer:
    container: ObservedContainer
    service: str
    number: int


@attrs.frozen
class CreateContainer:
    service: str
    number: int
    name: str


@attrs.frozen
class KeepContainer:
    """An up-to-date container: reported `Running`, or `Created` when it is stopped."""

    container: ObservedContainer
    service: str
    state: str


@attrs.frozen
class Wait:
    service: str
    condition: str
    required: bool = True


@attrs.frozen
class StartService:
    service: str
    waits: tuple[Wait, ...] = ()


Action = (CreateNetwork | RecreateNetwork | CreateVolume | RemoveContainer | StopService
          | RecreateContainer | CreateContainer | KeepContainer | StartService)


@attrs.frozen
class Plan:
    actions: tuple[Action, ...]
    warnings: tuple[str, ...] = ()
    services: tuple[str, ...] = ()  # in scope, in dependency order

    def of(self, kind: type) -> list[Any]:
        return [action for action in self.actions if isinstance(action, kind)]


# --------------------------------------------------------------------------- ordering


def service_links(service: Service) -> set[str]:
    """The services `service` needs before it: depends_on and references by name."""
    needed = set(service.depends_on)
    for mode in (service.network_mode, service.ipc, service.pid):
        if mode and mode.startswith("service:"):
            needed.add(mode[len("service:"):])
    for entry in service.volumes_from:
        source = entry.split(":", 1)[0]
        if source != "container":
            needed.add(source)
    for link in service.links:
        needed.add(link.split(":", 1)[0])
    return needed


def scope(project: Project, services: Iterable[str], no_deps: bool = False) -> list[str]:
    """The services an operation touches, in start order. KeyError on an unknown name."""
    names = list(services) or list(project.services)
    for name in names:
        if name not in project.services:
            raise KeyError(name)
    wanted = set(names)
    if not no_deps:
        pending = list(names)
        while pending:
            current = project.services[pending.pop()]
            for needed in service_links(current):
                if needed in project.services and needed not in wanted:
                    wanted.add(needed)
                    pending.append(needed)
    graph = {name: sorted(service_links(project.services[name]) & wanted) for name in wanted}
    return order(graph)


def dependents(project: Project, service: str, restart_only: bool) -> list[str]:
    return sorted(
        name for name, candidate in project.services.items()
        if service in candidate.depends_on
        and (not restart_only or candidate.depends_on[service].restart)
    )


# --------------------------------------------------------------------------- networks


def _network_driver(network: Network) -> str:
    return network.driver or "bridge"


def network_diverged(network: Network, observed: ObservedNetwork) -> bool:
    """Does the engine's network differ from the file in a way that needs a new one?

    The config hash decides first; when it differs (another tool computes it another
    way) the settings the engine reports are compared, so a network made by Docker
    Compose is not replaced for nothing.
    """
    expected_hash = network_hash(network)
    if observed.labels.get(compose_labels.CONFIG_HASH) in (None, "", expected_hash):
        return False
    if _network_driver(network) != observed.driver:
        return True
    if network.internal != observed.internal or network.attachable != observed.attachable:
        return True
    if bool(network.enable_ipv6) != observed.enable_ipv6:
        return True
    if any(observed.options.get(key) != value for key, value in network.driver_opts.items()):
        return True
    wanted = sorted(pool.subnet for pool in (network.ipam.config if network.ipam else ())
                    if pool.subnet)
    return bool(wanted) and wanted != sorted(observed.subnets)


def _plan_networks(project: Project, observed: Observed, keys: list[str],
                   actions: list[Action], warnings: list[str]) -> tuple[dict[str, str | None],
                                                                   set[str]]:
    """Networks: returns engine name -> ID (None until created), and diverged keys."""
    by_name: dict[str, list[ObservedNetwork]] = {}
    for candidate in observed.networks:
        by_name.setdefault(candidate.name, []).append(candidate)
    ids: dict[str, str | None] = {}
    diverged: set[str] = set()
    for key in keys:
        network = project.networks[key]
        found = by_name.get(network.name) or [
            other for other in observed.networks if other.id == network.name]
        if network.external:
            if not found:
                raise PlanError(f"network {network.name} declared as external, but could not "
                                "be found")
            if len(found) > 1:
                raise PlanError(f'multiple networks with name "{network.name}" were found. '
                                "Use network ID as `name` to avoid ambiguity")
            ids[network.name] = found[0].id
            continue
        if not found:
            actions.append(CreateNetwork(key, network.name))
            ids[network.name] = None
            continue
        existing = found[0]
        project_label = existing.labels.get(compose_labels.PROJECT)
        if project_label is None:
            warnings.append(f"a network with name {network.name} exists but was not created "
                            "by compose.\nSet `external: true` to use an existing network")
        elif project_label != project.name:
            warnings.append(f"a network with name {network.name} exists but was not created "
                            f'for project "{project.name}".\nSet `external: true` to use an '
                            "existing network")
        network_label = existing.labels.get(compose_labels.NETWORK, "")
        if network_label != key:
            raise PlanError(f"network {network.name} was found but has incorrect label "
                            f'{compose_labels.NETWORK} set to "{network_label}" (expected: '
                            f'"{key}")')
        if network_diverged(network, existing):
            users = {name for name, service in project.services.items() if key in service.networks}
            stop = tuple(container for container in observed.containers
                         if container.service in users and container.state == RUNNING)
            actions.append(RecreateNetwork(key, network.name, existing.id, stop))
            ids[network.name] = None
            diverged.add(key)
            continue
        ids[network.name] = existing.id
    return ids, diverged


def _volume_diverged(volume: Volume, observed: ObservedVolume) -> bool:
    if observed.labels.get(compose_labels.CONFIG_HASH) in (
            None, "", volume_hash(volume)):
        return False
    if (volume.driver or "local") != observed.driver:
        return True
    return any(observed.options.get(key) != value for key, value in volume.driver_opts.items())


def _plan_volumes(project: Project, observed: Observed, keys: list[str],
                  actions: list[Action], warnings: list[str]) -> None:
    by_name = {volume.name: volume for volume in observed.volumes}
    for key in keys:
        volume = project.volumes[key]
        existing = by_name.get(volume.name)
        if existing is None:
            if volume.external:
                raise PlanError(f'external volume "{volume.name}" not found')
            actions.append(CreateVolume(key, volume.name))
            continue
        if volume.external:
            continue
        project_label = existing.labels.get(compose_labels.PROJECT)
        if project_label is None:
            warnings.append(f'volume "{volume.name}" already exists but was not created by '
                            "Docker Compose. Use `external: true` to use an existing volume")
        elif project_label != project.name:
            warnings.append(f'volume "{volume.name}" already exists but was created for '
                            f'project "{project_label}" (expected "{project.name}"). Use '
                            "`external: true` to use an existing volume")
        if _volume_diverged(volume, existing):
            warnings.append(f'Volume "{volume.name}" exists but doesn\'t match configuration '
                            "in compose file. It is kept, with its data: remove it (down -v) "
                            "to have it made again")


# --------------------------------------------------------------------------- containers


def is_orphan(project: Project, container: ObservedContainer) -> bool:
    if container.oneoff:
        return container.state in (EXITED, "dead")
    return (container.service not in project.services
            and container.service not in project.disabled_services)


def must_recreate(project: Project, service: Service, container: ObservedContainer,
                  policy: str, observed: Observed, network_ids: Mapping[str, str | None],
                  diverged_networks: set[str]) -> bool:
    if policy == RECREATE_NEVER:
        return False
    if policy == RECREATE_FORCE:
        return True
    if container.config_hash != config_hash(service):
        return True
    digest = observed.image_digests.get(service.name)
    if digest is not None and container.image_digest != digest:
        return True
    if not service.network_mode and set(service.networks) & diverged_networks:
        return True
    if container.state == RUNNING and not service.network_mode and (
            container.network_names or container.network_ids):
        for key in service.networks:
            name = project.networks[key].name if key in project.networks else key
            network_id = network_ids.get(name)
            if name not in container.network_names and (
                    network_id is None or network_id not in container.network_ids):
                return True
    if container.volume_names:
        for volume in service.volumes:
            if volume.type != "volume" or not volume.source:
                continue
            name = project.volumes[volume.source].name if volume.source in project.volumes \
                else volume.source
            if name not in container.volume_names:
                return True
    return False


def _number(container: ObservedContainer) -> int:
    return container.number if container.number is not None else 0


def plan(project: Project, observed: Observed, options: UpOptions | None = None) -> Plan:
    """What `up` must do to bring the engine to `project`. Raises PlanError, KeyError."""
    options = options or UpOptions()
    try:
        services = scope(project, options.services, options.no_deps)
    except KeyError as error:
        raise PlanError(f"no such service: {error.args[0]}") from None
    named = set(options.services) or set(project.services)
    actions: list[Action] = []
    warnings: list[str] = []

    for name in services:
        service = project.services[name]
        if service.replicas > 1 and service.container_name:
            raise PlanError(_DOUBLED_NAME.format(service=name, name=service.container_name))

    network_keys = sorted({key for name in services for key in project.services[name].networks
                           if not project.services[name].network_mode} & set(project.networks))
    network_ids, diverged_networks = _plan_networks(project, observed, network_keys, actions,
                                                    warnings)
    volume_keys = sorted({volume.source for name in services
                          for volume in project.services[name].volumes
                          if volume.type == "volume" and volume.source in project.volumes})
    _plan_volumes(project, observed, volume_keys, actions, warnings)

    orphans = [container for container in observed.containers if is_orphan(project, container)]
    if orphans and not options.ignore_orphans:
        if options.remove_orphans:
            actions.extend(RemoveContainer(container, "orphan") for container in orphans)
        else:
            listed = " ".join(container.name for container in orphans)
            warnings.append(f"Found orphan containers ([{listed}]) for this project. If you "
                            "removed or renamed this service in your compose file, you can run "
                            "this command with the --remove-orphans flag to clean it up.")

    # Per-service view of the containers, updated as dependents get stopped.
    state: dict[str, list[ObservedContainer]] = {name: [] for name in project.services}
    for container in observed.containers:
        if not container.oneoff and container.service in state:
            state[container.service].append(container)
    stopped: set[str] = set()

    for name in services:
        service = project.services[name]
        policy = options.recreate if name in named else options.recreate_dependencies
        containers = state[name]

        def obsolete(container: ObservedContainer, service: Service = service,
                     policy: str = policy) -> bool:
            return must_recreate(project, service, container, policy, observed, network_ids,
                                 diverged_networks)

        # Keep the up-to-date containers with the lowest numbers; remove obsolete ones first.
        ordered = sorted(containers, key=lambda c: (obsolete(c), _number(c), c.created))
        expected = service.replicas
        for container in ordered[expected:]:
            actions.append(RemoveContainer(container, "scale"))
        for container in ordered[:expected]:
            if obsolete(container):
                for dependent in dependents(project, name, restart_only=True):
                    if dependent in stopped or dependent not in services:
                        continue
                    running = tuple(c for c in state[dependent] if c.state == RUNNING)
                    stopped.add(dependent)
                    actions.append(StopService(dependent, running))
                    state[dependent] = [attrs.evolve(c, state=EXITED) if c.state == RUNNING
                                        else c for c in state[dependent]]
                actions.append(RecreateContainer(container, name, _number(container) or 1))
            else:
                actions.append(KeepContainer(container, name, container.state))
        next_number = max((_number(c) for c in containers), default=0) + 1
        for offset in range(max(expected - len(containers), 0)):
            number = next_number + offset
            actions.append(CreateContainer(
                name, number, compose_labels.container_name(project, service, number)))

    if options.start:
        for name in services:
            service = project.services[name]
            if service.replicas == 0:
                continue
            waits = tuple(
                Wait(dependency, settings.condition, settings.required)
                for dependency, settings in sorted(service.depends_on.items())
                if settings.condition != SERVICE_STARTED and dependency in services
                and project.services[dependency].replicas > 0)
            actions.append(StartService(name, waits))
    return Plan(tuple(actions), tuple(warnings), tuple(services))
