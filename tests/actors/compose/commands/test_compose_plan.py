"""The reconciler's planning function: observed states in, actions out.

Each case names an observed state and says what `up` must do, as Docker Compose does it.
Observed containers are built with the hash of the service as it stands (`current`) or
with a stale hash, so the cases read as: "web-1 up to date and running", "db-1 stale".
"""

from __future__ import annotations

import re
import textwrap
import uuid

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.compose import labels
from actors.compose.hashing import config_hash, network_hash
from actors.compose.loader import load_files
from actors.compose.model import Project
from actors.compose.reconcile import (
    RECREATE_FORCE,
    RECREATE_NEVER,
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    KeepContainer,
    Observed,
    ObservedContainer,
    ObservedNetwork,
    ObservedVolume,
    PlanError,
    RecreateContainer,
    RecreateNetwork,
    RemoveContainer,
    StartService,
    StopService,
    UpOptions,
    Wait,
    plan,
    scope,
)


def project(text: str, tmp_path) -> Project:
    return load_files([(str(tmp_path / "compose.yaml"), textwrap.dedent(text))],
                      working_dir=str(tmp_path), project_name="demo").project


WEB_DB = """
services:
  web:
    image: busybox
    depends_on:
      db: {condition: service_healthy}
  db:
    image: busybox
    volumes: [data:/data]
    healthcheck: {test: [CMD, "true"]}
volumes:
  data: {}
"""


def container(p: Project, service: str, number: int, *, state: str = "running",
              stale: bool = False, oneoff: bool = False, created: int = 0,
              networks: tuple[str, ...] = ("demo_default",),
              volumes: tuple[str, ...] = ()) -> ObservedContainer:
    known = p.services.get(service)
    digest = "stale" if stale or known is None else config_hash(known)
    if known is not None and not volumes:
        volumes = tuple(p.volumes[v.source].name for v in known.volumes
                        if v.type == "volume" and v.source in p.volumes)
    return ObservedContainer(
        id=f"{service}{number}".ljust(64, "0"), name=f"demo-{service}-{number}",
        service=service, number=None if oneoff else number, oneoff=oneoff, state=state,
        config_hash=digest, created=created, network_names=networks, volume_names=volumes)


def existing_network(p: Project, key: str = "default") -> ObservedNetwork:
    return ObservedNetwork(id=f"net-{key}", name=p.networks[key].name,
                           labels=labels.network_labels(p, key))


def existing_volume(p: Project, key: str) -> ObservedVolume:
    return ObservedVolume(name=p.volumes[key].name, labels=labels.volume_labels(p, key))


def names(actions) -> list[str]:
    """A compact rendering of a plan for assertions."""
    rendered = []
    for action in actions:
        match action:
            case CreateNetwork(name=name):
                rendered.append(f"create network {name}")
            case RecreateNetwork(name=name):
                rendered.append(f"recreate network {name}")
            case CreateVolume(name=name):
                rendered.append(f"create volume {name}")
            case RemoveContainer(container=c, reason=reason):
                rendered.append(f"remove {c.name} ({reason})")
            case StopService(service=service):
                rendered.append(f"stop {service}")
            case RecreateContainer(container=c, number=number):
                rendered.append(f"recreate {c.name} as {number}")
            case CreateContainer(name=name):
                rendered.append(f"create {name}")
            case KeepContainer(container=c, state=state):
                rendered.append(f"keep {c.name} {state}")
            case StartService(service=service, waits=waits):
                text = f"start {service}"
                if waits:
                    text += " after " + ",".join(f"{w.service}:{w.condition}" for w in waits)
                rendered.append(text)
    return rendered


def steady(p: Project, **changes) -> Observed:
    """Everything of WEB_DB exists and runs."""
    base = Observed(
        containers=(container(p, "db", 1), container(p, "web", 1)),
        networks=(existing_network(p),),
        volumes=(existing_volume(p, "data"),),
    )
    return attrs.evolve(base, **changes)


def test_fresh_project_creates_everything_in_dependency_order(tmp_path):
    p = project(WEB_DB, tmp_path)
    result = plan(p, Observed())
    assert names(result.actions) == [
        "create network demo_default",
        "create volume demo_data",
        "create demo-db-1",
        "create demo-web-1",
        "start db",
        "start web after db:service_healthy",
    ]
    assert result.services == ("db", "web")
    assert result.warnings == ()


def test_nothing_changed_keeps_everything(tmp_path):
    p = project(WEB_DB, tmp_path)
    result = plan(p, steady(p))
    assert names(result.actions) == [
        "keep demo-db-1 running", "keep demo-web-1 running",
        "start db", "start web after db:service_healthy"]


def test_stopped_containers_are_kept_and_started(tmp_path):
    p = project(WEB_DB, tmp_path)
    observed = steady(p, containers=(container(p, "db", 1, state="exited"),
                                     container(p, "web", 1, state="exited")))
    assert names(plan(p, observed).actions)[:2] == ["keep demo-db-1 exited",
                                                    "keep demo-web-1 exited"]


def test_one_changed_service_is_recreated_alone(tmp_path):
    p = project(WEB_DB, tmp_path)
    observed = steady(p, containers=(container(p, "db", 1), container(p, "web", 1, stale=True)))
    assert names(plan(p, observed).actions) == [
        "keep demo-db-1 running", "recreate demo-web-1 as 1",
        "start db", "start web after db:service_healthy"]


def test_changed_dependency_stops_dependents_that_ask_to_restart(tmp_path):
    p = project("""
        services:
          db: {image: busybox}
          web:
            image: busybox
            depends_on: {db: {condition: service_started, restart: true}}
          worker:
            image: busybox
            depends_on: [db]
        """, tmp_path)
    observed = Observed(containers=(container(p, "db", 1, stale=True), container(p, "web", 1),
                                    container(p, "worker", 1)),
                        networks=(existing_network(p),))
    assert names(plan(p, observed).actions) == [
        "stop web", "recreate demo-db-1 as 1", "keep demo-web-1 exited",
        "keep demo-worker-1 running", "start db", "start web", "start worker"]


def test_image_change_recreates(tmp_path):
    p = project(WEB_DB, tmp_path)
    observed = steady(p, image_digests={"db": "sha256:new", "web": "sha256:old"})
    observed = attrs.evolve(observed, containers=tuple(
        attrs.evolve(c, image_digest="sha256:old") for c in observed.containers))
    assert names(plan(p, observed).actions)[:2] == ["recreate demo-db-1 as 1",
                                                    "keep demo-web-1 running"]


def test_container_off_its_network_or_volume_is_recreated(tmp_path):
    p = project(WEB_DB, tmp_path)
    observed = steady(p, containers=(container(p, "db", 1, volumes=("other",)),
                                     container(p, "web", 1, networks=("bridge",))))
    assert names(plan(p, observed).actions)[:2] == ["recreate demo-db-1 as 1",
                                                    "recreate demo-web-1 as 1"]


def test_force_and_no_recreate(tmp_path):
    p = project(WEB_DB, tmp_path)
    forced = plan(p, steady(p), UpOptions(recreate=RECREATE_FORCE))
    assert names(forced.actions)[:2] == ["recreate demo-db-1 as 1", "recreate demo-web-1 as 1"]
    stale = steady(p, containers=(container(p, "db", 1, stale=True),
                                  container(p, "web", 1, stale=True)))
    never = plan(p, stale, UpOptions(recreate=RECREATE_NEVER,
                                     recreate_dependencies=RECREATE_NEVER))
    assert names(never.actions)[:2] == ["keep demo-db-1 running", "keep demo-web-1 running"]


def test_force_recreate_of_a_named_service_leaves_its_dependencies(tmp_path):
    p = project(WEB_DB, tmp_path)
    result = plan(p, steady(p), UpOptions(services=("web",), recreate=RECREATE_FORCE))
    assert names(result.actions)[:2] == ["keep demo-db-1 running", "recreate demo-web-1 as 1"]


def test_scale_up_numbers_after_the_highest(tmp_path):
    p = project("services:\n  web: {image: busybox, scale: 4}\n", tmp_path)
    observed = Observed(containers=(container(p, "web", 1), container(p, "web", 3)),
                        networks=(existing_network(p),))
    assert names(plan(p, observed).actions) == [
        "keep demo-web-1 running", "keep demo-web-3 running",
        "create demo-web-4", "create demo-web-5", "start web"]


def test_scale_down_removes_obsolete_then_highest_numbers(tmp_path):
    p = project("services:\n  web: {image: busybox, deploy: {replicas: 2}}\n", tmp_path)
    observed = Observed(containers=(
        container(p, "web", 1), container(p, "web", 2, stale=True),
        container(p, "web", 3), container(p, "web", 4)), networks=(existing_network(p),))
    assert names(plan(p, observed).actions) == [
        "remove demo-web-4 (scale)", "remove demo-web-2 (scale)",
        "keep demo-web-1 running", "keep demo-web-3 running", "start web"]


def test_scale_to_zero_removes_all_and_starts_nothing(tmp_path):
    p = project("services:\n  web: {image: busybox, scale: 0}\n", tmp_path)
    observed = Observed(containers=(container(p, "web", 1),), networks=(existing_network(p),))
    assert names(plan(p, observed).actions) == ["remove demo-web-1 (scale)"]


def test_container_name_cannot_scale(tmp_path):
    p = project("services:\n  web: {image: busybox, container_name: fixed}\n", tmp_path)
    p = attrs.evolve(p, services={"web": attrs.evolve(p.services["web"], scale=2)})
    with pytest.raises(PlanError, match='custom container name "fixed"'):
        plan(p, Observed())


def test_orphans_are_reported_or_removed(tmp_path):
    p = project(WEB_DB, tmp_path)
    old = container(p, "old", 1)
    finished_run = container(p, "web", 1, oneoff=True, state="exited")
    observed = steady(p, containers=(*steady(p).containers, old, finished_run))
    reported = plan(p, observed)
    assert not reported.of(RemoveContainer)
    assert reported.warnings == (
        "Found orphan containers ([demo-old-1 demo-web-1]) for this project. If you removed "
        "or renamed this service in your compose file, you can run this command with the "
        "--remove-orphans flag to clean it up.",)
    removed = plan(p, observed, UpOptions(remove_orphans=True))
    assert names(removed.of(RemoveContainer)) == ["remove demo-old-1 (orphan)",
                                                  "remove demo-web-1 (orphan)"]
    assert plan(p, observed, UpOptions(ignore_orphans=True)).warnings == ()


def test_disabled_service_containers_are_not_orphans(tmp_path):
    p = project("""
        services:
          web: {image: busybox}
          debug: {image: busybox, profiles: [debug]}
        """, tmp_path)
    observed = Observed(containers=(container(p, "web", 1), container(p, "debug", 1)),
                        networks=(existing_network(p),))
    assert plan(p, observed).warnings == ()


def test_named_services_bring_their_dependencies_unless_no_deps(tmp_path):
    p = project(WEB_DB, tmp_path)
    assert plan(p, Observed(), UpOptions(services=("web",))).services == ("db", "web")
    alone = plan(p, Observed(), UpOptions(services=("web",), no_deps=True))
    assert alone.services == ("web",)
    # Without its dependency in scope, web waits for nothing.
    assert names(alone.of(StartService)) == ["start web"]
    assert names(alone.actions)[0] == "create network demo_default"


def test_unknown_service_is_an_error(tmp_path):
    p = project(WEB_DB, tmp_path)
    with pytest.raises(PlanError, match="no such service: nope"):
        plan(p, Observed(), UpOptions(services=("nope",)))


def test_wait_conditions(tmp_path):
    p = project("""
        services:
          migrate: {image: busybox}
          db: {image: busybox}
          web:
            image: busybox
            depends_on:
              migrate: {condition: service_completed_successfully}
              db: {condition: service_healthy, required: false}
        """, tmp_path)
    start = plan(p, Observed()).of(StartService)
    assert start[-1] == StartService("web", (Wait("db", "service_healthy", False),
                                             Wait("migrate", "service_completed_successfully")))


def test_order_follows_service_references(tmp_path):
    p = project("""
        services:
          app:
            image: busybox
            network_mode: "service:net"
            volumes_from: [store]
          net: {image: busybox}
          store: {image: busybox}
        """, tmp_path)
    assert scope(p, ["app"]) == ["net", "store", "app"]


def test_external_network_and_volume_must_exist(tmp_path):
    p = project("""
        services:
          web: {image: busybox, networks: [shared], volumes: [keep:/k]}
        networks: {shared: {external: true}}
        volumes: {keep: {external: true, name: kept}}
        """, tmp_path)
    with pytest.raises(PlanError, match="network shared declared as external, but could not be"):
        plan(p, Observed())
    with_network = Observed(networks=(ObservedNetwork(id="n1", name="shared"),))
    with pytest.raises(PlanError, match='external volume "kept" not found'):
        plan(p, with_network)
    ready = attrs.evolve(with_network, volumes=(ObservedVolume(name="kept"),))
    assert names(plan(p, ready).actions) == ["create demo-web-1", "start web"]


def test_foreign_network_with_the_project_name(tmp_path):
    p = project("services:\n  web: {image: busybox}\n", tmp_path)
    foreign = Observed(networks=(ObservedNetwork(id="n1", name="demo_default"),))
    with pytest.raises(PlanError, match=re.escape(
            'network demo_default was found but has incorrect label com.docker.compose.network '
            'set to "" (expected: "default")')):
        plan(p, foreign)


def test_diverged_network_is_recreated_with_its_containers(tmp_path):
    p = project("""
        services:
          web: {image: busybox}
        networks:
          default: {ipam: {config: [{subnet: 10.9.0.0/24}]}}
        """, tmp_path)
    old_labels = {**labels.network_labels(p, "default"), labels.CONFIG_HASH: "old"}
    observed = Observed(
        containers=(container(p, "web", 1),),
        networks=(ObservedNetwork(id="n1", name="demo_default", labels=old_labels,
                                  subnets=("10.8.0.0/24",)),))
    assert names(plan(p, observed).actions) == [
        "recreate network demo_default", "recreate demo-web-1 as 1", "start web"]
    # A hash computed by another tool is not a change when the settings agree.
    same = attrs.evolve(observed, networks=(attrs.evolve(observed.networks[0],
                                                         subnets=("10.9.0.0/24",)),))
    assert names(plan(p, same).actions) == ["keep demo-web-1 running", "start web"]
    assert network_hash(p.networks["default"]) != "old"


def test_volume_of_another_project_is_used_with_a_warning(tmp_path):
    p = project(WEB_DB, tmp_path)
    other = ObservedVolume(name="demo_data", labels={labels.PROJECT: "other"})
    result = plan(p, steady(p, volumes=(other,)))
    assert not result.of(CreateVolume)
    assert result.warnings == ('volume "demo_data" already exists but was created for project '
                               '"other" (expected "demo"). Use `external: true` to use an '
                               "existing volume",)


def test_no_start(tmp_path):
    p = project(WEB_DB, tmp_path)
    assert not plan(p, Observed(), UpOptions(start=False)).of(StartService)


@given(counts=st.lists(st.integers(min_value=1, max_value=9), max_size=6, unique=True),
       stale=st.sets(st.integers(min_value=1, max_value=9)),
       replicas=st.integers(min_value=0, max_value=6))
def test_scaling_converges(tmp_path_factory, counts, stale, replicas):
    """Whatever is there, the plan leaves exactly `replicas` containers with distinct
    numbers, keeps the lowest up-to-date numbers, and recreates only obsolete ones."""
    p = project(f"services:\n  web: {{image: busybox, scale: {replicas}}}\n",
                tmp_path_factory.mktemp("scale"))
    observed = Observed(containers=tuple(container(p, "web", n, stale=n in stale)
                                         for n in counts), networks=(existing_network(p),))
    actions = plan(p, observed).actions
    removed = {a.container.number for a in actions if isinstance(a, RemoveContainer)}
    kept = {a.container.number for a in actions if isinstance(a, KeepContainer)}
    recreated = {a.number for a in actions if isinstance(a, RecreateContainer)}
    created = {a.number for a in actions if isinstance(a, CreateContainer)}
    final = (set(counts) - removed) | created
    assert len(final) == replicas
    assert not kept & stale and recreated <= stale
    assert kept | recreated == set(counts) - removed
    assert not created & set(counts)
    fresh = sorted(set(counts) - stale)
    assert kept == set(fresh[:replicas])


# --------------------------------------------------------------------------- convergence


def _apply(p: Project, observed: Observed, actions) -> Observed:
    """A tiny model engine: what the executor's calls would leave behind."""
    containers = {c.id: c for c in observed.containers}
    networks = list(observed.networks)
    volumes = list(observed.volumes)
    def fresh(service: str, number: int) -> ObservedContainer:
        made = container(p, service, number, state="created")
        return attrs.evolve(made, id=uuid.uuid4().hex * 2,
                            network_names=tuple(p.networks[key].name
                                                for key in p.services[service].networks))

    for action in actions:
        match action:
            case CreateNetwork(key=key):
                networks.append(existing_network(p, key))
            case CreateVolume(key=key):
                volumes.append(existing_volume(p, key))
            case RemoveContainer(container=c):
                del containers[c.id]
            case RecreateContainer(container=c, service=service, number=number):
                del containers[c.id]
                made = fresh(service, number)
                containers[made.id] = made
            case CreateContainer(service=service, number=number):
                made = fresh(service, number)
                containers[made.id] = made
            case StopService(service=service):
                for key, c in list(containers.items()):
                    if c.service == service:
                        containers[key] = attrs.evolve(c, state="exited")
            case StartService(service=service):
                for key, c in list(containers.items()):
                    if c.service == service:
                        containers[key] = attrs.evolve(c, state="running")
    return Observed(containers=tuple(containers.values()), networks=tuple(networks),
                    volumes=tuple(volumes))


def _text(specs) -> str:
    lines = ["services:"]
    for index, (replicas, colour, depends) in enumerate(specs):
        lines.append(f"  s{index}:")
        lines.append(f"    image: busybox\n    scale: {replicas}")
        lines.append(f"    environment: {{COLOUR: {colour}}}")
        lines.append("    volumes: [data:/data]")
        needs = [f"s{other}" for other in range(index) if depends & (1 << other)]
        if needs:
            lines.append("    depends_on:")
            lines += [f"      {name}: {{condition: service_started, restart: true}}"
                      for name in needs]
    lines.append("volumes:\n  data: {}")
    return "\n".join(lines) + "\n"


_projects = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["red", "blue"]),
                               st.integers(0, 7)), min_size=1, max_size=3)


@given(before=_projects, after=_projects)
def test_applying_a_plan_converges(tmp_path_factory, before, after):
    """From whatever an earlier version of the file left, one `up` reaches the file, and
    a second `up` has nothing left to do but keep and start."""
    directory = tmp_path_factory.mktemp("converge")
    old = project(_text(before), directory)
    state = _apply(old, Observed(), plan(old, Observed()).actions)
    new = project(_text(after), directory)
    state = _apply(new, state, plan(new, state, UpOptions(remove_orphans=True)).actions)
    again = plan(new, state)
    assert {type(action) for action in again.actions} <= {KeepContainer, StartService}
    for name, service in new.services.items():
        numbers = sorted(c.number for c in state.containers if c.service == name)
        assert len(numbers) == service.replicas
        assert len(set(numbers)) == len(numbers)
    assert {c.service for c in state.containers} <= set(new.services)
