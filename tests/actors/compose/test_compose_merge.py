"""Merging several files and `extends`, following the specification's merge rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.compose.loader import Loaded
from actors.compose.normalize import service_dict

Load = Callable[..., Loaded]

BASE = """
services:
  db:
    image: postgres
  web:
    image: busybox
{body}
networks:
  front: {{}}
  back: {{}}
volumes:
  a: {{}}
  b: {{}}
"""


def merged(load: Load, base: str, override: str) -> dict[str, Any]:
    def indent(text: str) -> str:
        return "".join(f"    {line}\n" for line in text.strip("\n").splitlines())

    first = BASE.format(body=indent(base))
    second = "services:\n  web:\n" + indent(override)
    return service_dict(load(first, second).project.services["web"])


# (base service body, override service body, key, expected value of key)
MERGE_CASES = [
    # scalars: the later file wins
    ("platform: linux/amd64", "platform: linux/arm64", "platform", "linux/arm64"),
    ("user: root", "user: '1000'", "user", "1000"),
    ("restart: always", "restart: 'no'", "restart", "no"),
    # null in a later file changes nothing
    ("user: root", "user: null", "user", "root"),
    # mappings merge key by key, whatever the syntax of each side
    (
        "environment: {A: '1', B: '2'}",
        "environment: [B=3, C=4]",
        "environment",
        {"A": "1", "B": "3", "C": "4"},
    ),
    ("labels: [a=1]", "labels: {b: '2'}", "labels", {"a": "1", "b": "2"}),
    ("sysctls: {a: '1'}", "sysctls: [a=2]", "sysctls", {"a": "2"}),
    (
        "healthcheck: {test: [CMD, a], interval: 10s, retries: 3}",
        "healthcheck: {test: [CMD, b, c], retries: 5}",
        "healthcheck",
        {"test": ["CMD", "b", "c"], "interval": "10s", "retries": 5},
    ),
    (
        "deploy: {resources: {limits: {memory: 1g}}, labels: [x=1]}",
        "deploy: {resources: {limits: {cpus: '2'}}, replicas: 2}",
        "deploy",
        {
            "labels": {"x": "1"},
            "replicas": 2,
            "resources": {"limits": {"cpus": 2.0, "memory": str(2**30)}},
        },
    ),
    (
        "build: {context: ., args: {A: '1'}}",
        "build: {target: dev, args: [B=2]}",
        "build",
        None,  # checked separately: context absolute, args merged, target set
    ),
    # sequences append
    ("dns: 1.1.1.1", "dns: [8.8.8.8]", "dns", ["1.1.1.1", "8.8.8.8"]),
    ("cap_add: [A]", "cap_add: [B, A]", "cap_add", ["A", "B"]),
    ("expose: ['80']", "expose: [80, 443]", "expose", ["80", "443"]),
    ("external_links: [x]", "external_links: [y]", "external_links", ["x", "y"]),
    ("tmpfs: /a", "tmpfs: [/b, /a]", "tmpfs", ["/a", "/b"]),
    ("profiles: [a]", "profiles: [b]", "profiles", None),  # service disabled: checked separately
    (
        "extra_hosts: [a=10.0.0.1]",
        "extra_hosts: {a: 10.0.0.1, b: 10.0.0.2}",
        "extra_hosts",
        ["a=10.0.0.1", "b=10.0.0.2"],
    ),
    # command, entrypoint, healthcheck.test are replaced
    ("command: [echo, foo]", "command: [echo, bar]", "command", ["echo", "bar"]),
    ("entrypoint: a b", "entrypoint: c", "entrypoint", ["c"]),
    # unique resources: ports by (ip, target, published, protocol), volumes by target
    (
        "ports: ['8080:80', '443']",
        "ports: [{target: 80, published: '8080'}, '9090:90']",
        "ports",
        [
            {"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"},
            {"mode": "ingress", "target": 443, "protocol": "tcp"},
            {"mode": "ingress", "target": 90, "published": "9090", "protocol": "tcp"},
        ],
    ),
    (
        "ports: ['8080:80']",
        "ports: ['8081:80', '8080:80/udp']",
        "ports",
        [
            {"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"},
            {"mode": "ingress", "target": 80, "published": "8081", "protocol": "tcp"},
            {"mode": "ingress", "target": 80, "published": "8080", "protocol": "udp"},
        ],
    ),
    (
        "volumes: ['a:/work', 'b:/other']",
        "volumes: ['b:/work:ro']",
        "volumes",
        [
            {"type": "volume", "source": "b", "target": "/work", "read_only": True, "volume": {}},
            {"type": "volume", "source": "b", "target": "/other", "volume": {}},
        ],
    ),
    # networks merge per network
    (
        "networks: [front]",
        "networks: {front: {aliases: [www]}, back: null}",
        "networks",
        {"back": None, "front": {"aliases": ["www"]}},
    ),
    (
        "networks: {front: {aliases: [a]}}",
        "networks: {front: {aliases: [b, a]}}",
        "networks",
        {"front": {"aliases": ["a", "b"]}},
    ),
    # depends_on merges per dependency
    (
        "depends_on: [db]",
        "depends_on: {db: {condition: service_healthy}}",
        "depends_on",
        {"db": {"condition": "service_healthy", "required": True}},
    ),
    # logging: same driver merges options, another driver replaces
    (
        "logging: {driver: json-file, options: {max-size: 1m}}",
        "logging: {options: {max-file: '3'}}",
        "logging",
        {"driver": "json-file", "options": {"max-file": "3", "max-size": "1m"}},
    ),
    (
        "logging: {driver: json-file, options: {max-size: 1m}}",
        "logging: {driver: syslog, options: {tag: x}}",
        "logging",
        {"driver": "syslog", "options": {"tag": "x"}},
    ),
    # each ulimit is replaced whole
    (
        "ulimits: {nofile: {soft: 1, hard: 2}, nproc: 5}",
        "ulimits: {nofile: 3}",
        "ulimits",
        {"nofile": 3, "nproc": 5},
    ),
    # !reset removes, !override replaces
    ("ports: ['8080:80']", "ports: !reset []", "ports", None),
    ("environment: {A: '1', B: '2'}", "environment: {A: !reset null}", "environment", {"B": "2"}),
    ("user: root", "user: !reset null", "user", None),
    (
        "ports: ['8080:80']",
        "ports: !override ['8443:443']",
        "ports",
        [{"mode": "ingress", "target": 443, "published": "8443", "protocol": "tcp"}],
    ),
    ("environment: {A: '1'}", "environment: !override {B: '2'}", "environment", {"B": "2"}),
    ("labels: {a: x}", "labels: !override [b=y]", "labels", {"b": "y"}),
]


@pytest.mark.parametrize(("base", "override", "key", "expected"), MERGE_CASES)
def test_merge_table(load: Load, base: str, override: str, key: str, expected: Any) -> None:
    if key == "profiles":
        project = load(
            BASE.format(body="    " + base), "services:\n  web:\n    " + override, profiles=("b",)
        ).project
        assert project.services["web"].profiles == ("a", "b")
        return
    result = merged(load, base, override)
    if key == "build":
        assert result["build"]["args"] == {"A": "1", "B": "2"}
        assert result["build"]["target"] == "dev"
        return
    assert result.get(key) == expected


def test_service_only_in_the_override_is_added(load: Load) -> None:
    project = load(
        "services:\n  web:\n    image: a\n",
        "services:\n  worker:\n    image: b\n",
    ).project
    assert set(project.services) == {"web", "worker"}


def test_reset_a_whole_service_and_a_top_level_resource(load: Load) -> None:
    project = load(
        "services:\n  web:\n    image: a\n  debug:\n    image: b\nvolumes:\n  data: {}\n",
        "services:\n  debug: !reset null\nvolumes:\n  data: !reset\n",
    ).project
    assert set(project.services) == {"web"}
    assert project.volumes == {}


def test_reset_in_the_first_file_just_removes(load: Load) -> None:
    web = load("services:\n  web:\n    image: a\n    user: !reset root\n").project.services["web"]
    assert web.user is None


def test_three_files_in_order(load: Load) -> None:
    project = load(
        "services:\n  web:\n    image: a\n    environment: {N: '1'}\n",
        "services:\n  web:\n    image: b\n    environment: {N: '2'}\n",
        "services:\n  web:\n    environment: {N: '3', M: x}\n",
    ).project
    assert project.services["web"].image == "b"
    assert project.services["web"].environment == {"N": "3", "M": "x"}


def test_extends_in_the_same_file(load: Load) -> None:
    project = load(
        """
services:
  base:
    image: busybox
    user: root
    environment: {TZ: utc, PORT: "80"}
    volumes: ["common:/var/lib/backup/data:rw"]
    security_opt: [label:role:ROLE]
    command: [base]
  common:
    extends: base
  cli:
    extends:
      service: common
    environment: {PORT: "8080"}
    volumes: ["cli:/var/lib/backup/data:ro"]
    security_opt: [label:user:USER]
    command: [cli]
volumes:
  common: {}
  cli: {}
"""
    ).project
    cli = project.services["cli"]
    assert cli.image == "busybox" and cli.user == "root"
    assert cli.environment == {"TZ": "utc", "PORT": "8080"}
    assert [(volume.source, volume.read_only) for volume in cli.volumes] == [("cli", True)]
    assert cli.security_opt == ("label:role:ROLE", "label:user:USER")
    assert cli.command == ("cli",)
    assert project.services["common"].user == "root"


def test_extends_another_file_resolves_its_paths_there(load: Load, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "common.yml").write_text(
        """
services:
  webapp:
    image: busybox:${TAG:-1}
    build: ./context
    volumes: ["./data:/data"]
    env_file: ./common.env
  chained:
    extends: webapp
    environment: {CHAINED: "yes"}
"""
    )
    (tmp_path / "lib" / "common.env").write_text("FROM_COMMON_ENV=1\n")
    project = load(
        """
services:
  web:
    extends:
      file: lib/common.yml
      service: chained
    volumes: ["./mine:/mine"]
""",
        env={"TAG": "2"},
    ).project
    web = project.services["web"]
    assert web.image == "busybox:2"
    assert web.build is not None and web.build.context == str(tmp_path / "lib" / "context")
    assert [volume.source for volume in web.volumes] == [
        str(tmp_path / "lib" / "data"),
        str(tmp_path / "mine"),
    ]
    assert web.environment == {"FROM_COMMON_ENV": "1", "CHAINED": "yes"}


def test_extends_cycles_are_named(problems: Callable[..., list[str]]) -> None:
    assert (
        problems(
            """
services:
  a: {image: x, extends: b}
  b: {extends: c}
  c: {extends: a}
"""
        )[0]
        == "compose.yaml: services.a.extends: circular extends: a (compose.yaml) -> b (compose.yaml) -> c (compose.yaml) -> a (compose.yaml)"
    )


def test_extends_cycle_across_files(tmp_path: Path, problems: Callable[..., list[str]]) -> None:
    (tmp_path / "other.yml").write_text(
        "services:\n  x:\n    extends: {file: compose.yaml, service: web}\n"
    )
    found = problems(
        "services:\n  web:\n    image: a\n    extends: {file: other.yml, service: x}\n"
    )
    assert found[0].startswith(
        "compose.yaml: services.web.extends: circular extends: web (compose.yaml) -> x (other.yml) -> web"
    )


def test_extends_missing_service_or_file(problems: Callable[..., list[str]]) -> None:
    assert problems("services:\n  web:\n    extends: nope\n") == [
        "compose.yaml: services.web.extends.service: service 'nope' not found in compose.yaml"
    ]
    found = problems("services:\n  web:\n    extends: {file: missing.yml, service: x}\n")
    assert found == [
        "missing.yml: no such file",
        "compose.yaml: services.web.extends.file: cannot load missing.yml",
    ]
