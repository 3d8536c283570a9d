"""Config hash, labels, names and dependency order: what the reconciler builds on."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.compose.graph import (
    DependencyCycle,
    dependency_order,
    dependents_of,
    find_cycle,
    order,
    shutdown_order,
    with_dependencies,
)
from actors.compose.hashing import config_hash, network_hash, volume_hash
from actors.compose.labels import (
    container_labels,
    container_name,
    depends_on_label,
    endpoint_aliases,
    image_name,
    network_labels,
    oneoff_container_name,
    project_filter,
    volume_labels,
)
from actors.compose.loader import load_files
from actors.compose.model import Project


def project_of(*texts: str, **options: object) -> Project:
    files = [(f"/p/file{index}.yaml", text) for index, text in enumerate(texts)]
    return load_files(files, working_dir="/p", project_name="shop", **options).project  # type: ignore[arg-type]


def web_hash(text: str, env: dict[str, str] | None = None) -> str:
    return config_hash(project_of(text, environment=env or {}).services["web"])


BASE = """
services:
  web:
    image: nginx:1.25
    ports: ["8080:80"]
    environment: {A: "1", B: "2"}
    volumes: ["./html:/html:ro"]
"""


@pytest.mark.parametrize(
    "variant",
    [
        # key order, syntax and formatting do not matter
        """
services:
  web:
    volumes: [{type: bind, source: ./html, target: /html, read_only: true}]
    environment: [B=2, A=1]
    ports: [{target: 80, published: "8080"}]
    image: nginx:1.25
""",
        "services: {web: {image: 'nginx:1.25', ports: ['8080:80'], environment: {B: '2', A: '1'}, volumes: ['./html/:/html/:ro']}}",
        # neither do scale, replicas, build, pull_policy, depends_on, profiles
        BASE + "    scale: 3\n",
        BASE + "    deploy: {replicas: 5}\n",
        BASE + "    build: ./web\n",
        BASE + "    pull_policy: always\n",
        BASE + "    depends_on: [db]\n  db: {image: postgres}\n",
        BASE + "    profiles: [web]\n",
        BASE + "    x-note: ignored\n",
    ],
)
def test_hash_is_stable_over_irrelevant_changes(variant: str) -> None:
    project = project_of(variant, profiles=("web",))
    assert config_hash(project.services["web"]) == web_hash(BASE)


@pytest.mark.parametrize(
    "change",
    [
        "    image: nginx:1.26\n",
        "    ports: ['8081:80']\n",
        "    environment: {A: '2'}\n",
        "    volumes: ['./html:/html:rw']\n",
        "    command: [nginx]\n",
        "    restart: always\n",
        "    deploy: {resources: {limits: {memory: 1g}}}\n",
        "    mem_limit: 1g\n",
        "    healthcheck: {test: [CMD, 'true']}\n",
        "    labels: {a: b}\n",
        "    networks: [default, other]\n",
        "    user: nobody\n",
    ],
)
def test_hash_changes_when_the_container_would(change: str) -> None:
    override = "services:\n  web:\n" + change + "networks:\n  other: {}\n"
    changed = project_of(BASE, override).services["web"]
    assert config_hash(changed) != web_hash(BASE)


def test_hash_follows_interpolated_values_and_env_files() -> None:
    text = "services:\n  web:\n    image: nginx:${TAG}\n"
    assert web_hash(text, {"TAG": "1"}) == web_hash(text, {"TAG": "1"})
    assert web_hash(text, {"TAG": "1"}) != web_hash(text, {"TAG": "2"})


def test_hash_is_a_sha256_hex_digest() -> None:
    digest = web_hash(BASE)
    assert len(digest) == 64 and int(digest, 16) >= 0


@given(st.permutations(["A=1", "B=2", "C=3", "D=4"]))
def test_hash_ignores_environment_order(entries: list[str]) -> None:
    text = "services:\n  web:\n    image: x\n    environment: [" + ", ".join(entries) + "]\n"
    assert web_hash(text) == web_hash(
        "services:\n  web:\n    image: x\n    environment: {D: '4', C: '3', B: '2', A: '1'}\n"
    )


def test_network_and_volume_hashes() -> None:
    project = project_of(
        "services:\n  web:\n    image: x\n    volumes: [v:/v]\nvolumes:\n  v: {}\n"
    )
    again = project_of(
        "services:\n  web:\n    image: x\n    volumes: [v:/v]\nvolumes:\n  v: {driver: local}\n"
    )
    assert volume_hash(project.volumes["v"]) == volume_hash(again.volumes["v"])
    other = project_of(
        "services:\n  web:\n    image: x\n    volumes: [v:/v]\nvolumes:\n  v: {labels: [a=b]}\n"
    )
    assert volume_hash(project.volumes["v"]) != volume_hash(other.volumes["v"])
    internal = project_of(
        "services:\n  web:\n    image: x\nnetworks:\n  default: {internal: true}\n"
    )
    assert network_hash(project.networks["default"]) != network_hash(internal.networks["default"])


def test_container_labels_and_names() -> None:
    project = project_of(
        """
services:
  web:
    image: nginx
    labels: {com.example.team: shop, com.docker.compose.project: spoofed}
    depends_on:
      db: {condition: service_healthy, restart: true}
      cache: {condition: service_started}
  db: {image: postgres, container_name: the-db}
  cache: {image: redis}
"""
    )
    web = project.services["web"]
    labels = container_labels(project, web, 2, image_digest="sha256:" + "b" * 64)
    assert labels == {
        "com.example.team": "shop",
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "com.docker.compose.container-number": "2",
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.config-hash": config_hash(web),
        "com.docker.compose.depends_on": "cache:service_started:false,db:service_healthy:true",
        "com.docker.compose.image": "sha256:" + "b" * 64,
        "com.docker.compose.version": "2.40.0",
        "com.docker.compose.project.working_dir": "/p",
        "com.docker.compose.project.config_files": "/p/file0.yaml",
    }
    oneoff = container_labels(project, web, None, oneoff=True, slug="abc123")
    assert oneoff["com.docker.compose.oneoff"] == "True"
    assert "com.docker.compose.container-number" not in oneoff
    assert oneoff["com.docker.compose.slug"] == "abc123"
    assert container_name(project, web, 1) == "shop-web-1"
    assert container_name(project, project.services["db"], 1) == "the-db"
    assert oneoff_container_name(project, web, "0123456789abcdef") == "shop-web-run-0123456789ab"
    assert depends_on_label(project.services["cache"]) == ""
    assert project_filter("shop") == "com.docker.compose.project=shop"
    assert endpoint_aliases(web, "default", "shop-web-1") == ["web", "shop-web-1"]
    assert image_name(project, web) == "nginx"


def test_build_only_image_name_and_network_priority() -> None:
    project = project_of(
        """
services:
  app:
    build: .
    networks:
      b: {priority: 10}
      a: {priority: 10}
      c: {priority: 100}
      d:
networks: {a: {}, b: {}, c: {}, d: {}}
"""
    )
    app = project.services["app"]
    assert image_name(project, app) == "shop-app"
    assert app.networks_by_priority() == ["c", "a", "b", "d"]


def test_network_and_volume_labels() -> None:
    project = project_of(
        "services:\n  web:\n    image: x\n    volumes: [data:/d]\n    networks: [front]\n"
        "networks:\n  front: {labels: {tier: f}}\nvolumes:\n  data: {}\n"
    )
    assert network_labels(project, "front") == {
        "tier": "f",
        "com.docker.compose.project": "shop",
        "com.docker.compose.network": "front",
        "com.docker.compose.version": "2.40.0",
        "com.docker.compose.config-hash": network_hash(project.networks["front"]),
    }
    assert volume_labels(project, "data")["com.docker.compose.volume"] == "data"
    assert project.networks["front"].name == "shop_front"
    assert project.volumes["data"].name == "shop_data"


def test_dependency_order_is_topological_with_name_tie_break() -> None:
    project = project_of(
        """
services:
  web: {image: x, depends_on: [api, static]}
  api: {image: x, depends_on: [db, cache]}
  static: {image: x}
  db: {image: x}
  cache: {image: x}
  zeta: {image: x}
  alpha: {image: x, depends_on: [zeta]}
"""
    )
    assert dependency_order(project) == ["cache", "db", "api", "static", "web", "zeta", "alpha"]
    assert shutdown_order(project) == list(reversed(dependency_order(project)))
    assert dependency_order(project, ["api"]) == ["cache", "db", "api"]
    assert with_dependencies(project, ["web"]) == {"web", "api", "static", "db", "cache"}
    assert dependents_of(project, "db") == {"api", "web"}
    with pytest.raises(KeyError):
        with_dependencies(project, ["nope"])


def test_order_reports_cycles() -> None:
    with pytest.raises(DependencyCycle) as caught:
        order({"a": ["b"], "b": ["c"], "c": ["a"], "d": []})
    assert caught.value.cycle == ["a", "b", "c", "a"]
    assert str(caught.value) == "dependency cycle: a -> b -> c -> a"
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b"], "b": []}) is None


graphs = st.integers(1, 8).flatmap(
    lambda size: st.lists(
        st.lists(st.integers(0, size - 1), max_size=3), min_size=size, max_size=size
    )
)


@given(graphs)
def test_order_respects_every_dependency_or_finds_a_real_cycle(edges: list[list[int]]) -> None:
    dependencies = {
        f"s{index}": [f"s{target}" for target in targets] for index, targets in enumerate(edges)
    }
    try:
        result = order(dependencies)
    except DependencyCycle as cycle:
        members = cycle.cycle
        assert members[0] == members[-1]
        for current, following in itertools.pairwise(members):
            assert following in dependencies[current]
        return
    assert sorted(result) == sorted(dependencies)
    position = {name: index for index, name in enumerate(result)}
    for name, targets in dependencies.items():
        for target in targets:
            assert position[target] < position[name]
    assert order(dict(reversed(list(dependencies.items())))) == result
