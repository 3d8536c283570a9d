"""Every problem is reported with its file, its path in the document and what was expected."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from actors.compose.errors import ComposeError, Problem, format_path
from actors.compose.loader import load_files

Problems = Callable[..., list[str]]


def one(problems: Problems, text: str, **options: object) -> str:
    found = problems(text, **options)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("platform: [a]", "services.web.platform: expected a string, got a list"),
        ("portz: ['80']", "services.web.portz: unknown key 'portz' (did you mean 'ports'?)"),
        (
            "ports: ['80', '8080:http']",
            "services.web.ports[1]: invalid container port 'http': expected a port or a range like 8000-8010",
        ),
        (
            "ports: [{published: 80}]",
            "services.web.ports[0]: missing required key 'target' (the container port)",
        ),
        (
            "ports: [{target: 70000}]",
            "services.web.ports[0].target: invalid value 70000: must be at most 65535",
        ),
        ("ports: '80:80'", "services.web.ports: expected a list of ports, got the string '80:80'"),
        (
            "stop_grace_period: 10",
            "services.web.stop_grace_period: expected a duration like 1m30s or 10s, got the number 10",
        ),
        (
            "healthcheck: {interval: 1x}",
            "services.web.healthcheck.interval: invalid duration '1x': expected a duration like 1m30s or 10s",
        ),
        (
            "mem_limit: lots",
            "services.web.mem_limit: invalid size 'lots': expected bytes or a size like 512m or 1g",
        ),
        (
            "deploy: {resources: {limits: {cpus: many}}}",
            "services.web.deploy.resources.limits.cpus: invalid cpus 'many': expected a number such as 0.5 or 2",
        ),
        (
            "tty: maybe",
            "services.web.tty: expected a boolean (true or false), got the string 'maybe'",
        ),
        (
            "restart: sometimes",
            "services.web.restart: invalid restart policy the string 'sometimes': expected no, always, on-failure[:N] or unless-stopped",
        ),
        (
            "volumes: ['a:b']",
            "services.web.volumes[0]: invalid volume 'a:b': the container path must be absolute",
        ),
        (
            "volumes: ['a:/b:c:d']",
            "services.web.volumes[0]: invalid volume 'a:/b:c:d': too many colons",
        ),
        (
            "volumes: [{type: bind, target: /x}]",
            "services.web.volumes[0]: a bind mount needs a source (a path on the host)",
        ),
        (
            "volumes: [{type: npipe, source: x, target: /x}]",
            "services.web.volumes[0].type: mounts of type npipe are not supported by flotta",
        ),
        (
            "depends_on: {db: {condition: service_ready}}",
            "services.web.depends_on.db.condition: invalid value the string 'service_ready': expected one of service_started, service_healthy, service_completed_successfully",
        ),
        (
            "environment: {A: [1]}",
            "services.web.environment.A: expected a string, number, boolean or null value, got a list",
        ),
        ("labels: [1]", 'services.web.labels[0]: expected a "KEY=VALUE" string, got the number 1'),
        (
            "healthcheck: {test: [curl, x]}",
            "services.web.healthcheck.test: invalid test 'curl': a list must start with NONE, CMD or CMD-SHELL",
        ),
        (
            "extra_hosts: [justahost]",
            "services.web.extra_hosts[0]: invalid extra host 'justahost': expected \"HOST=IP\"",
        ),
        (
            'command: "echo \'unclosed"',
            'services.web.command: invalid command "echo \'unclosed": No closing quotation',
        ),
        (
            "ulimits: {nofile: {soft: 10}}",
            "services.web.ulimits.nofile: expected both soft and hard limits",
        ),
        (
            "provider: {type: x}",
            "services.web.provider: services managed by a provider are not supported by flotta",
        ),
        (
            "build: {context: ., dockerfile: A, dockerfile_inline: B}",
            "services.web.build: dockerfile and dockerfile_inline cannot both be set",
        ),
        (
            "container_name: '-bad'",
            "services.web.container_name: invalid value '-bad': expected a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)",
        ),
        (
            "pull_policy: sometimes",
            "services.web.pull_policy: invalid pull policy the string 'sometimes': expected always, never, missing, build, daily, weekly or every_<duration>",
        ),
    ],
)
def test_shape_errors(problems: Problems, body: str, expected: str) -> None:
    text = f"services:\n  web:\n    image: busybox\n    {body}\n"
    assert one(problems, text) == f"compose.yaml: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "compose.yaml: the top level must be a mapping, got a list"),
        ("services: [web]\n", "compose.yaml: services: expected a mapping, got a list"),
        ("services:\n  web:\n", "compose.yaml: services.web: expected a mapping, got null"),
        (
            "services:\n  'bad name':\n    image: x\n",
            "compose.yaml: services[\"bad name\"]: invalid name 'bad name': expected a service name ([a-zA-Z0-9._-]+)",
        ),
        (
            "include: [other.yml]\nservices: {}\n",
            "compose.yaml: include: include is not supported by flotta; pass the files with -f instead",
        ),
        (
            "servics: {}\n",
            "compose.yaml: servics: unknown key 'servics' (did you mean 'services'?)",
        ),
        (
            "services:\n  web: {image: a}\nnetworks:\n  n: {driver: [x]}\n",
            "compose.yaml: networks.n.driver: expected a string, got a list",
        ),
        (
            "services:\n  web: {image: a}\nvolumes:\n  v: {external: true, driver: local}\n",
            "compose.yaml: volumes.v.driver: an external resource is created elsewhere: only name may be set with external",
        ),
        (
            "services:\n  web: {image: a}\nsecrets:\n  s: {labels: {}}\n",
            "compose.yaml: secrets.s: expected exactly one of file, environment or content",
        ),
        ("", "compose.yaml: empty compose file"),
        (
            "services:\n  web: {image: a\n",
            "compose.yaml:3: invalid YAML: while parsing a flow mapping: did not find expected ',' or '}'",
        ),
    ],
)
def test_document_errors(problems: Problems, text: str, expected: str) -> None:
    assert one(problems, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "services:\n  web: {build: {}}\n  api: {command: x}\n",
            "compose.yaml: services.api: the service has neither an image nor a build context: set image or build",
        ),
        (
            "services:\n  web:\n    image: a\n    depends_on: [db]\n",
            "compose.yaml: services.web.depends_on.db: service 'db' is not defined",
        ),
        (
            "services:\n  web:\n    image: a\n    depends_on: [web]\n",
            "compose.yaml: services.web.depends_on.web: a service cannot depend on itself",
        ),
        (
            "services:\n  web:\n    image: a\n    networks: [back]\n",
            "compose.yaml: services.web.networks.back: network 'back' is not declared in the top-level networks",
        ),
        (
            "services:\n  web:\n    image: a\n    volumes: [data:/data]\n",
            "compose.yaml: services.web.volumes[0]: volume 'data' is not declared in the top-level volumes",
        ),
        (
            "services:\n  web:\n    image: a\n    secrets: [token]\n",
            "compose.yaml: services.web.secrets[0]: secret 'token' is not declared in the top-level secrets",
        ),
        (
            "services:\n  web:\n    image: a\n    network_mode: host\n    networks: [n]\nnetworks:\n  n: {}\n",
            "compose.yaml: services.web: network_mode and networks cannot both be set",
        ),
        (
            "services:\n  web:\n    image: a\n    scale: 2\n    container_name: web\n",
            "compose.yaml: services.web.container_name: container_name cannot be used with more than one replica",
        ),
        (
            "services:\n  web:\n    image: a\n    scale: 2\n    deploy: {replicas: 3}\n",
            "compose.yaml: services.web: scale and deploy.replicas have different values",
        ),
        (
            "services:\n  web:\n    image: a\n    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 2g}}}\n",
            "compose.yaml: services.web: mem_limit and deploy.resources.limits.memory have different values",
        ),
        (
            "services:\n  web:\n    image: a\n    volumes: [/data]\n    tmpfs: [/data]\n",
            "compose.yaml: services.web.tmpfs[0]: /data is already mounted by volumes[0]",
        ),
    ],
)
def test_project_errors(problems: Problems, text: str, expected: str) -> None:
    assert one(problems, text) == expected


def test_dependency_cycle_is_named(problems: Problems) -> None:
    text = """
services:
  a: {image: x, depends_on: [b]}
  b: {image: x, depends_on: [c]}
  c: {image: x, depends_on: [a]}
  d: {image: x, depends_on: [a]}
"""
    assert (
        one(problems, text)
        == "compose.yaml: services.a.depends_on: dependency cycle: a -> b -> c -> a"
    )


def test_dependency_on_a_service_disabled_by_profiles(problems: Problems, load) -> None:  # type: ignore[no-untyped-def]
    text = """
services:
  foo: {image: foo}
  bar: {image: bar, profiles: [test]}
  baz: {image: baz, depends_on: [bar], profiles: [test]}
  zot: {image: zot, depends_on: [bar], profiles: [debug]}
  opt:
    image: opt
    depends_on:
      bar: {condition: service_started, required: false}
"""
    assert set(load(text).project.services) == {"foo", "opt"}
    assert load(text).project.services["opt"].depends_on == {}
    assert set(load(text, profiles=("test",)).project.services) == {"foo", "bar", "baz", "opt"}
    assert one(problems, text, profiles=("debug",)) == (
        "compose.yaml: services.zot.depends_on.bar: service 'bar' is not enabled by the active "
        "profiles (its profiles: test)"
    )
    assert set(load(text, profiles=("debug", "test")).project.services) == {
        "foo",
        "bar",
        "baz",
        "zot",
        "opt",
    }
    # a service named on the command line activates its profiles
    assert set(load(text, services=("baz",)).project.services) == {"foo", "bar", "baz", "opt"}
    assert one(problems, text, services=("zot",)).endswith(
        "service 'bar' is not enabled by the active profiles (its profiles: test)"
    )
    assert set(load(text, services=("zot",), profiles=("test",)).project.services) == {
        "foo",
        "bar",
        "baz",
        "zot",
        "opt",
    }
    assert one(problems, text, services=("nope",)) == "no such service: nope"


def test_all_problems_are_collected_in_a_stable_order(problems: Problems) -> None:
    first = """
services:
  web:
    image: busybox
    ports: ["x"]
    tty: perhaps
    environment:
      A: ${REQUIRED:?set REQUIRED}
  db:
    image: [postgres]
    memory: 1g
"""
    second = """
services:
  web:
    healthcheck: {interval: soon}
"""
    expected = [
        "compose.yaml: services.web.environment.A: required variable REQUIRED is missing a value: set REQUIRED",
        "compose.yaml: services.web.ports[0]: invalid container port 'x': expected a port or a range like 8000-8010",
        "compose.yaml: services.web.tty: expected a boolean (true or false), got the string 'perhaps'",
        "compose.yaml: services.db.image: expected a string, got a list",
        "compose.yaml: services.db.memory: unknown key 'memory'",
        "override-1.yaml: services.web.healthcheck.interval: invalid duration 'soon': expected a duration like 1m30s or 10s",
    ]
    assert problems(first, second) == expected
    assert problems(first, second) == expected


def test_project_errors_name_the_file_that_defined_the_service(problems: Problems) -> None:
    found = problems(
        "services:\n  web: {image: a}\n",
        "services:\n  worker: {image: b, depends_on: [ghost]}\n",
    )
    assert found == [
        "override-1.yaml: services.worker.depends_on.ghost: service 'ghost' is not defined"
    ]


def test_several_project_errors_at_once(problems: Problems) -> None:
    found = problems(
        "services:\n  web:\n    image: a\n    depends_on: [db]\n    networks: [n]\n  api:\n    command: x\n"
    )
    assert found == [
        "compose.yaml: services.web.depends_on.db: service 'db' is not defined",
        "compose.yaml: services.web.networks.n: network 'n' is not declared in the top-level networks",
        "compose.yaml: services.api: the service has neither an image nor a build context: set image or build",
    ]


def test_error_objects_carry_the_parts() -> None:
    with pytest.raises(ComposeError) as caught:
        load_files(
            [("compose.yaml", "services:\n  web:\n    image: 1\n")],
            working_dir="/nonexistent",
            project_name="x",
        )
    assert caught.value.problems == (
        Problem("compose.yaml", "services.web.image", "expected a string, got the number 1"),
    )


def test_nothing_is_read_beyond_the_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(ComposeError):
        load_files(
            [
                (
                    "compose.yaml",
                    "services:\n  web:\n    image: a\n    volumes: ['./data:/data']\n    depends_on: [x]\n",
                )
            ],
            working_dir=str(tmp_path),
            project_name="x",
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("services",), "services"),
        (("services", "web", "ports", 1), "services.web.ports[1]"),
        (("services", "web", "labels", "com.example.x"), 'services.web.labels["com.example.x"]'),
        (
            ("networks", "my-net", "ipam", "config", 0, "subnet"),
            "networks.my-net.ipam.config[0].subnet",
        ),
    ],
)
def test_path_format(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


def test_alias_bombs_are_refused(problems: Problems) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        previous, current = chr(ord("a") + level - 1), chr(ord("a") + level)
        levels.append(f"{current}: &{current} [" + ", ".join([f"*{previous}"] * 10) + "]")
    text = (
        "x-bomb:\n" + "".join(f"  {line}\n" for line in levels) + "services:\n  web: {image: x}\n"
    )
    assert problems(text) == [
        "compose.yaml: the document has more than 250000 values once aliases are expanded"
    ]


def test_a_disabled_service_does_not_read_its_env_file(load) -> None:  # type: ignore[no-untyped-def]
    text = "services:\n  web: {image: a}\n  debug: {image: b, profiles: [debug], env_file: missing.env}\n"
    assert set(load(text).project.services) == {"web"}
