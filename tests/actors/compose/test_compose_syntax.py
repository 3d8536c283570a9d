"""Every short and long syntax of the service keys, loaded into the typed model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.compose.loader import Loaded
from actors.compose.model import (
    BindOptions,
    Dependency,
    Device,
    EnvFile,
    FileReference,
    HostEntry,
    Port,
    ServiceNetwork,
    ServiceVolume,
    TmpfsOptions,
    Ulimit,
    VolumeOptions,
)
from actors.compose.syntax import SyntaxProblem, parse_port_spec

Load = Callable[..., Loaded]


def service(load: Load, body: str, extra: str = "", **options: object):  # type: ignore[no-untyped-def]
    text = "services:\n  web:\n    image: busybox\n" + "".join(
        f"    {line}\n" for line in body.strip("\n").splitlines()
    )
    return load(text + extra, **options).project.services["web"]


def port(
    target: int, published: str | None = None, host_ip: str | None = None, protocol: str = "tcp"
) -> Port:
    return Port(target=target, published=published, host_ip=host_ip, protocol=protocol)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [port(80)]),
        ("8080:80", [port(80, "8080")]),
        ("8080:80/udp", [port(80, "8080", protocol="udp")]),
        ("53:53/UDP", [port(53, "53", protocol="udp")]),
        ("132:132/sctp", [port(132, "132", protocol="sctp")]),
        ("127.0.0.1:8080:80", [port(80, "8080", "127.0.0.1")]),
        ("127.0.0.1::80", [port(80, None, "127.0.0.1")]),
        ("127.0.0.1:8080:80/udp", [port(80, "8080", "127.0.0.1", "udp")]),
        ("3000-3002", [port(3000), port(3001), port(3002)]),
        ("9090-9091:8080-8081", [port(8080, "9090"), port(8081, "9091")]),
        ("8000-9000:80", [port(80, "8000-9000")]),
        (
            "127.0.0.1:5000-5001:5000-5001",
            [port(5000, "5000", "127.0.0.1"), port(5001, "5001", "127.0.0.1")],
        ),
        ("::1:6000:6000", [port(6000, "6000", "::1")]),
        ("[::1]:6001:6001", [port(6001, "6001", "::1")]),
        ("0.0.0.0:80:80", [port(80, "80", "0.0.0.0")]),
    ],
)
def test_port_short_syntax(load: Load, spec: str, expected: list[Port]) -> None:
    web = service(load, f'ports: ["{spec}"]')
    assert list(web.ports) == expected


def test_port_as_a_number(load: Load) -> None:
    assert service(load, "ports: [80, 443]").ports == (port(80), port(443))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "no container port"),
        ("8080:", "no container port"),
        ("80/icmp", "invalid protocol 'icmp'"),
        ("99999", "ports go from 0 to 65535"),
        ("http", "expected a port or a range"),
        ("8080:0", "must not be 0"),
        ("9000-9001:80-82", "differ in length"),
        ("900-800", "low to high"),
        ("300.1.1.1:80:80", "invalid IP address"),
    ],
)
def test_bad_port_specs(spec: str, fragment: str) -> None:
    with pytest.raises(SyntaxProblem, match=fragment):
        parse_port_spec(spec)


def test_port_long_syntax(load: Load) -> None:
    web = service(
        load,
        """
ports:
  - target: 80
    published: 8080
    host_ip: 127.0.0.1
    protocol: udp
    mode: host
    name: web
    app_protocol: http
  - target: "443"
    published: "8443-8450"
  - target: 22
""",
    )
    assert web.ports == (
        Port(
            target=80,
            published="8080",
            host_ip="127.0.0.1",
            protocol="udp",
            mode="host",
            name="web",
            app_protocol="http",
        ),
        Port(target=443, published="8443-8450"),
        Port(target=22),
    )


def test_expose(load: Load) -> None:
    assert service(load, 'expose: [3000, "8000-8010", "53/udp"]').expose == (
        "3000",
        "8000-8010",
        "53/udp",
    )


def test_volume_short_syntax(load: Load, tmp_path: Path) -> None:
    web = service(
        load,
        """
volumes:
  - ./html:/usr/share/nginx/html:ro
  - ../up:/up
  - /abs/path:/abs:rw,z,rshared
  - ~/cache:/cache
  - data:/var/lib/data:nocopy
  - /anonymous
  - relative:/x/../y/
""",
        "volumes:\n  data: {}\n  relative: {}\n",
        env={"HOME": "/home/alice"},
    )
    assert web.volumes == (
        ServiceVolume(
            type="bind",
            source=str(tmp_path / "html"),
            target="/usr/share/nginx/html",
            read_only=True,
            bind=BindOptions(),
        ),
        ServiceVolume(
            type="bind", source=str(tmp_path.parent / "up"), target="/up", bind=BindOptions()
        ),
        ServiceVolume(
            type="bind",
            source="/abs/path",
            target="/abs",
            bind=BindOptions(selinux="z", propagation="rshared"),
        ),
        ServiceVolume(type="bind", source="/home/alice/cache", target="/cache", bind=BindOptions()),
        ServiceVolume(
            type="volume", source="data", target="/var/lib/data", volume=VolumeOptions(nocopy=True)
        ),
        ServiceVolume(type="volume", target="/anonymous", volume=VolumeOptions()),
        ServiceVolume(type="volume", source="relative", target="/y", volume=VolumeOptions()),
    )


def test_volume_long_syntax(load: Load, tmp_path: Path) -> None:
    web = service(
        load,
        """
volumes:
  - type: bind
    source: ./src
    target: /src
    read_only: true
    bind:
      create_host_path: false
      propagation: rslave
  - type: volume
    source: data
    target: /data
    volume:
      nocopy: true
      subpath: sub
  - type: tmpfs
    target: /tmp
    tmpfs:
      size: 64m
      mode: 01777
  - type: volume
    target: /anon
""",
        "volumes:\n  data:\n",
    )
    assert web.volumes == (
        ServiceVolume(
            type="bind",
            source=str(tmp_path / "src"),
            target="/src",
            read_only=True,
            bind=BindOptions(create_host_path=False, propagation="rslave"),
        ),
        ServiceVolume(
            type="volume",
            source="data",
            target="/data",
            volume=VolumeOptions(nocopy=True, subpath="sub"),
        ),
        ServiceVolume(type="tmpfs", target="/tmp", tmpfs=TmpfsOptions(size=64 * 2**20, mode=1777)),
        ServiceVolume(type="volume", target="/anon", volume=VolumeOptions()),
    )


def test_unknown_volume_option_warns(load: Load) -> None:
    loaded = load("services:\n  web:\n    image: busybox\n    volumes: ['/a:/b:cached,weird']\n")
    assert loaded.project.services["web"].volumes[0].consistency == "cached"
    assert any("unknown volume option 'weird'" in warning for warning in loaded.warnings)


def test_environment_map_list_and_from_shell(load: Load) -> None:
    web = service(
        load,
        """
environment:
  - A=1
  - B=
  - FROM_SHELL
  - NOT_IN_SHELL
  - C=x=y
""",
        env={"FROM_SHELL": "shell-value"},
    )
    assert web.environment == {
        "A": "1",
        "B": "",
        "FROM_SHELL": "shell-value",
        "NOT_IN_SHELL": None,
        "C": "x=y",
    }
    web = service(load, "environment:\n  NUM: 1\n  BOOL: true\n  NULL:\n  FLOAT: 1.5\n")
    assert web.environment == {"NUM": "1", "BOOL": "true", "NULL": None, "FLOAT": "1.5"}


def test_env_file_forms_and_precedence(load: Load, tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("A=from-a\nSHARED=a\nREF=${A}\n")
    (tmp_path / "b.env").write_text("SHARED=b\nB=from-b\n")
    web = service(
        load,
        """
env_file:
  - a.env
  - path: b.env
    required: true
  - path: missing.env
    required: false
environment:
  B: from-environment
""",
    )
    assert web.environment == {
        "A": "from-a",
        "SHARED": "b",
        "REF": "from-a",
        "B": "from-environment",
    }
    assert web.env_file == (
        EnvFile(path=str(tmp_path / "a.env")),
        EnvFile(path=str(tmp_path / "b.env")),
        EnvFile(path=str(tmp_path / "missing.env"), required=False),
    )
    assert service(load, "env_file: a.env").environment["A"] == "from-a"


def test_missing_required_env_file_names_the_file(problems: Callable[..., list[str]]) -> None:
    [problem] = problems("services:\n  web:\n    image: busybox\n    env_file: nope.env\n")
    assert problem.startswith("compose.yaml: services.web.env_file[0]: ")
    assert problem.endswith("nope.env: env file not found")


@pytest.mark.parametrize(
    ("body", "command", "entrypoint"),
    [
        ("command: echo hello", ("echo", "hello"), None),
        ('command: ["sh", "-c", "echo $$HOME"]', ("sh", "-c", "echo $HOME"), None),
        ("command: sh -c 'echo \"a b\"'", ("sh", "-c", 'echo "a b"'), None),
        ("command: ''", (), None),
        ("command: []", (), None),
        ("command: null", None, None),
        ("entrypoint: /bin/sh -c", None, ("/bin/sh", "-c")),
        ('entrypoint: ["tini", "--"]', None, ("tini", "--")),
    ],
)
def test_command_and_entrypoint(load: Load, body: str, command: object, entrypoint: object) -> None:
    web = service(load, body)
    assert (web.command, web.entrypoint) == (command, entrypoint)


def test_build_short_and_long(load: Load, tmp_path: Path) -> None:
    web = service(load, "build: ./app")
    assert web.build is not None
    assert (web.build.context, web.build.dockerfile) == (str(tmp_path / "app"), "Dockerfile")
    web = service(
        load,
        """
build:
  context: .
  dockerfile: Dockerfile.dev
  args:
    - VERSION=1.2
    - FROM_ENV
    - MISSING
  target: dev
  labels: {com.example: "x"}
  cache_from: [app:cache]
  network: host
  no_cache: true
  pull: true
  shm_size: 1g
  extra_hosts: ["db=10.0.0.2"]
""",
        env={"FROM_ENV": "e"},
    )
    build = web.build
    assert build is not None
    assert build.context == str(tmp_path)
    assert build.args == {"VERSION": "1.2", "FROM_ENV": "e"}
    assert (build.target, build.network, build.no_cache, build.pull, build.shm_size) == (
        "dev",
        "host",
        True,
        True,
        2**30,
    )
    assert build.labels == {"com.example": "x"} and build.cache_from == ("app:cache",)
    assert build.extra_hosts == (HostEntry(host="db", ip="10.0.0.2"),)
    web = service(load, "build: {context: 'https://github.com/x/y.git#main', args: {A: 1}}")
    assert web.build is not None and web.build.context == "https://github.com/x/y.git#main"
    assert web.build.args == {"A": "1"}


def test_build_only_service_is_valid(load: Load) -> None:
    project = load("services:\n  app:\n    build: .\n").project
    assert project.services["app"].image is None and project.services["app"].build is not None


def test_networks_list_and_map(load: Load) -> None:
    networks = "networks:\n  front: {}\n  back: {}\n"
    web = service(load, "networks: [front, back]", networks)
    assert web.networks == {"front": None, "back": None}
    web = service(
        load,
        """
networks:
  front:
    aliases: [www, www]
    ipv4_address: 172.20.0.5
    priority: 100
  back:
""",
        networks,
    )
    assert web.networks == {
        "front": ServiceNetwork(aliases=("www",), ipv4_address="172.20.0.5", priority=100),
        "back": None,
    }


def test_depends_on_forms(load: Load) -> None:
    extra = "  db:\n    image: postgres\n  cache:\n    image: redis\n  init:\n    image: busybox\n"
    web = service(load, "depends_on: [db, cache]", extra)
    assert web.depends_on == {"db": Dependency(), "cache": Dependency()}
    web = service(
        load,
        """
depends_on:
  db:
    condition: service_healthy
    restart: true
  init:
    condition: service_completed_successfully
    required: false
  cache:
    condition: service_started
""",
        extra,
    )
    assert web.depends_on == {
        "db": Dependency(condition="service_healthy", restart=True),
        "init": Dependency(condition="service_completed_successfully", required=False),
        "cache": Dependency(),
    }


@pytest.mark.parametrize(
    ("body", "test", "disabled"),
    [
        (
            "healthcheck:\n  test: curl -f http://localhost",
            ("CMD-SHELL", "curl -f http://localhost"),
            False,
        ),
        ('healthcheck:\n  test: ["CMD", "true"]', ("CMD", "true"), False),
        ('healthcheck:\n  test: ["CMD-SHELL", "exit 0"]', ("CMD-SHELL", "exit 0"), False),
        ('healthcheck:\n  test: ["NONE"]', ("NONE",), True),
        ("healthcheck:\n  disable: true", None, True),
    ],
)
def test_healthcheck_tests(load: Load, body: str, test: object, disabled: bool) -> None:
    web = service(load, body)
    assert web.healthcheck is not None
    assert web.healthcheck.test == test
    assert web.healthcheck_disabled is disabled


def test_healthcheck_durations(load: Load) -> None:
    check = service(
        load,
        "healthcheck:\n  test: [CMD, 'true']\n  interval: 1m30s\n  timeout: 10s\n  start_period: 40s\n  start_interval: 5s\n  retries: 3\n",
    ).healthcheck
    assert check is not None
    assert (
        check.interval,
        check.timeout,
        check.start_period,
        check.start_interval,
        check.retries,
    ) == (
        90 * 10**9,
        10 * 10**9,
        40 * 10**9,
        5 * 10**9,
        3,
    )


@pytest.mark.parametrize("policy", ["no", "always", "on-failure", "on-failure:5", "unless-stopped"])
def test_restart_policies(load: Load, policy: str) -> None:
    assert service(load, f"restart: {policy}").restart == policy


def test_deploy_and_legacy_resources(load: Load) -> None:
    web = service(
        load,
        """
deploy:
  replicas: 3
  labels: [a=b]
  resources:
    limits: {cpus: "0.5", memory: 512m, pids: 100}
    reservations: {cpus: 0.25, memory: 128m}
  restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
  update_config: {parallelism: 2, delay: 10s, order: start-first}
""",
    )
    assert web.replicas == 3
    assert web.limits.cpus == 0.5 and web.limits.memory == 512 * 2**20 and web.limits.pids == 100
    assert web.reservations.cpus == 0.25 and web.reservations.memory == 128 * 2**20
    assert web.deploy is not None and web.deploy.labels == {"a": "b"}
    assert web.deploy.restart_policy is not None and web.deploy.restart_policy.window == 120 * 10**9
    assert web.deploy.update_config is not None and web.deploy.update_config.order == "start-first"
    legacy = service(
        load, "mem_limit: 1g\ncpus: 1.5\npids_limit: 50\nmem_reservation: 256m\nscale: 2"
    )
    assert (legacy.limits.memory, legacy.limits.cpus, legacy.limits.pids) == (2**30, 1.5, 50)
    assert legacy.reservations.memory == 256 * 2**20
    assert legacy.replicas == 2


def test_labels_map_and_list(load: Load) -> None:
    assert service(load, "labels:\n  a: 1\n  b:\n  com.example.x: y").labels == {
        "a": "1",
        "b": "",
        "com.example.x": "y",
    }
    assert service(load, 'labels: ["a=1", "b", "c=x=y"]').labels == {"a": "1", "b": "", "c": "x=y"}


def test_scalar_keys(load: Load) -> None:
    web = service(
        load,
        """
user: "1000:1000"
working_dir: /app
hostname: web1
domainname: example.com
tty: true
stdin_open: true
init: true
stop_signal: SIGINT
stop_grace_period: 1m
profiles: [debug]
container_name: my-web
privileged: true
read_only: true
cap_add: [NET_ADMIN]
cap_drop: [ALL]
dns: 8.8.8.8
dns_search: [example.com]
shm_size: 64m
platform: linux/amd64
pull_policy: if_not_present
network_mode: host
ipc: host
""",
        profiles=("debug",),
    )
    assert (web.user, web.working_dir, web.hostname, web.domainname) == (
        "1000:1000",
        "/app",
        "web1",
        "example.com",
    )
    assert web.tty and web.stdin_open and web.init and web.privileged and web.read_only
    assert (web.stop_signal, web.stop_grace_period, web.profiles) == (
        "SIGINT",
        60 * 10**9,
        ("debug",),
    )
    assert web.container_name == "my-web"
    assert (web.cap_add, web.cap_drop, web.dns, web.dns_search) == (
        ("NET_ADMIN",),
        ("ALL",),
        ("8.8.8.8",),
        ("example.com",),
    )
    assert (web.shm_size, web.platform, web.pull_policy) == (64 * 2**20, "linux/amd64", "missing")
    assert (web.network_mode, web.ipc, web.networks) == ("host", "host", {})


def test_extra_hosts_forms(load: Load) -> None:
    web = service(
        load,
        'extra_hosts: ["somehost=162.242.195.82", "other:50.31.209.229", "v6=[::1]", "v6b:::2", "gw=host-gateway"]',
    )
    assert web.extra_hosts == (
        HostEntry(host="gw", ip="host-gateway"),
        HostEntry(host="other", ip="50.31.209.229"),
        HostEntry(host="somehost", ip="162.242.195.82"),
        HostEntry(host="v6", ip="::1"),
        HostEntry(host="v6b", ip="::2"),
    )
    web = service(load, "extra_hosts:\n  a: 10.0.0.1\n  b: [10.0.0.2, 10.0.0.3]")
    assert web.extra_hosts == (
        HostEntry(host="a", ip="10.0.0.1"),
        HostEntry(host="b", ip="10.0.0.2"),
        HostEntry(host="b", ip="10.0.0.3"),
    )


def test_tmpfs_ulimits_sysctls_logging_devices(load: Load) -> None:
    web = service(
        load,
        """
tmpfs: /run
ulimits:
  nproc: 65535
  nofile: {soft: 20000, hard: 40000}
sysctls: ["net.core.somaxconn=1024"]
logging:
  driver: json-file
  options: {max-size: 10m, max-file: 3}
devices: ["/dev/fuse", "/dev/sda:/dev/xvda:r", {source: /dev/null, target: /dev/n}]
""",
    )
    assert web.tmpfs == ("/run",)
    assert web.ulimits == {
        "nproc": Ulimit(soft=65535, hard=65535),
        "nofile": Ulimit(soft=20000, hard=40000),
    }
    assert web.sysctls == {"net.core.somaxconn": "1024"}
    assert web.logging is not None and web.logging.options == {"max-size": "10m", "max-file": "3"}
    assert web.devices == (
        Device(source="/dev/fuse", target="/dev/fuse"),
        Device(source="/dev/sda", target="/dev/xvda", permissions="r"),
        Device(source="/dev/null", target="/dev/n"),
    )


def test_top_level_networks_and_volumes(load: Load) -> None:
    project = load(
        """
services:
  web:
    image: busybox
    networks: [front, outside, legacy]
    volumes: [data:/data, shared:/shared, old:/old]
networks:
  front:
    driver: bridge
    driver_opts: {com.docker.network.bridge.name: br-front, mtu: 1400}
    ipam:
      config:
        - subnet: 172.28.0.0/16
          gateway: 172.28.0.1
    internal: true
    attachable: true
    labels: [tier=front]
  outside:
    external: true
  legacy:
    external:
      name: the-real-one
volumes:
  data:
    driver: local
    driver_opts: {type: tmpfs, device: tmpfs}
    labels: {backup: "yes"}
  shared:
    external: true
    name: shared-volume
  old:
    name: custom
"""
    ).project
    front = project.networks["front"]
    assert (
        front.name == "test_front"
        and front.driver == "bridge"
        and front.internal
        and front.attachable
    )
    assert front.driver_opts == {"com.docker.network.bridge.name": "br-front", "mtu": "1400"}
    assert front.ipam is not None and front.ipam.config[0].subnet == "172.28.0.0/16"
    assert front.labels == {"tier": "front"}
    assert (project.networks["outside"].name, project.networks["outside"].external) == (
        "outside",
        True,
    )
    assert (project.networks["legacy"].name, project.networks["legacy"].external) == (
        "the-real-one",
        True,
    )
    assert project.volumes["data"].name == "test_data" and project.volumes["data"].labels == {
        "backup": "yes"
    }
    assert (project.volumes["shared"].name, project.volumes["shared"].external) == (
        "shared-volume",
        True,
    )
    assert project.volumes["old"].name == "custom"
    assert set(project.networks) == {"front", "outside", "legacy"}


def test_secrets_and_configs(load: Load, tmp_path: Path) -> None:
    project = load(
        """
services:
  web:
    image: busybox
    secrets: [token, {source: cert, target: /etc/cert.pem, mode: "0400", uid: "1000"}]
    configs: [app]
secrets:
  token: {file: ./token.txt}
  cert: {environment: CERT}
configs:
  app: {content: "hello"}
"""
    ).project
    web = project.services["web"]
    assert web.secrets == (
        FileReference(source="token", target="/run/secrets/token"),
        FileReference(source="cert", target="/etc/cert.pem", uid="1000", mode=0o400),
    )
    assert web.configs == (FileReference(source="app", target="/app"),)
    assert project.secrets["token"].file == str(tmp_path / "token.txt")
    assert project.configs["app"].content == "hello"


def test_default_network_only_when_used(load: Load) -> None:
    project = load("services:\n  a:\n    image: x\n    network_mode: none\n").project
    assert project.networks == {}
    project = load("services:\n  a:\n    image: x\n").project
    assert project.networks["default"].name == "test_default"
    project = load(
        "services:\n  a:\n    image: x\nnetworks:\n  default:\n    name: custom\n    driver: bridge\n"
    ).project
    assert project.networks["default"].name == "custom"


def test_version_is_obsolete_and_extensions_ignored(load: Load) -> None:
    loaded = load(
        """
version: "3.8"
x-anything: {whatever: [1, 2]}
services:
  web:
    image: busybox
    x-note: ignored
    build:
      context: .
      x-build-extra: 1
"""
    )
    assert any("`version` is obsolete" in warning for warning in loaded.warnings)
    assert loaded.project.services["web"].image == "busybox"


def test_ignored_keys_warn(load: Load) -> None:
    loaded = load("services:\n  web:\n    image: busybox\n    blkio_config: {weight: 300}\n")
    assert "compose.yaml: services.web.blkio_config: not supported by flotta, ignored" in [
        warning.replace(str(Path(warning.split(":")[0]).parent) + "/", "")
        for warning in loaded.warnings
    ]


def test_implied_dependencies(load: Load) -> None:
    project = load(
        """
services:
  db: {image: postgres}
  cache: {image: redis}
  data: {image: busybox}
  web:
    image: busybox
    links: ["db:database"]
    volumes_from: ["data:ro"]
    ipc: "service:cache"
"""
    ).project
    assert project.services["web"].depends_on == {
        "db": Dependency(restart=True),
        "cache": Dependency(restart=True),
        "data": Dependency(restart=False),
    }


@given(
    st.sampled_from(["", "127.0.0.1", "::1", "[fe80::1]"]),
    st.integers(1, 60000),
    st.integers(0, 4),
    st.one_of(st.none(), st.integers(1, 60000)),
    st.integers(0, 4),
    st.sampled_from(["", "/tcp", "/udp", "/sctp"]),
)
def test_port_specs_agree_with_a_small_model(
    ip: str, start: int, extra: int, host_start: int | None, host_extra: int, protocol: str
) -> None:
    container = f"{start}-{start + extra}" if extra else str(start)
    host = ""
    if host_start is not None:
        host = f"{host_start}-{host_start + host_extra}" if host_extra else str(host_start)
    if ip:
        spec = f"{ip}:{host}:{container}{protocol}"
    elif host:
        spec = f"{host}:{container}{protocol}"
    else:
        spec = f"{container}{protocol}"
    if host and extra and extra != host_extra:
        with pytest.raises(SyntaxProblem, match="differ in length"):
            parse_port_spec(spec)
        return
    entries = parse_port_spec(spec)
    assert [entry["target"] for entry in entries] == list(range(start, start + extra + 1))
    assert {entry["protocol"] for entry in entries} == {protocol[1:] or "tcp"}
    assert {entry.get("host_ip", "") for entry in entries} == {ip.strip("[]")}
    if host_start is None:
        assert all("published" not in entry for entry in entries)
    elif extra == 0 and host_extra:
        assert [entry["published"] for entry in entries] == [host]
    else:
        assert [entry["published"] for entry in entries] == [
            str(host_start + offset) for offset in range(extra + 1)
        ]
