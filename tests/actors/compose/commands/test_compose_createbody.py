"""A service mapped onto `POST /containers/create`, checked against what Docker Compose
sends for the same service (docker/compose `getCreateConfigs`, `buildContainerVolumes`,
`defaultNetworkSettings`, `getDeployResources`, `getRestartPolicy`).

Differences that are ours on purpose are named in createbody.py's docstring: sorted
lists, `"no"` for an unset restart policy, zero values left out.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from actors.compose import labels
from actors.compose.createbody import (
    ContainerRef,
    CreateError,
    References,
    create_request,
    environment_list,
)
from actors.compose.hashing import config_hash
from actors.compose.loader import load_files


def load(text: str, tmp_path, env=None):
    return load_files([(str(tmp_path / "compose.yaml"), textwrap.dedent(text))],
                      working_dir=str(tmp_path), project_name="demo",
                      environment=env or {}).project


FULL = """
services:
  web:
    image: busybox:1.36
    command: ["httpd", "-f", "-p", "8080"]
    entrypoint: /bin/sh -c
    environment: {B: "2", A: "1", UNSET: null}
    ports: ["8080:80", "127.0.0.1:9000:9000/udp", "3000"]
    expose: ["4000", "5000-5001/udp"]
    volumes:
      - data:/data
      - ./site:/www:ro
      - /anonymous
      - {type: bind, source: ./strict, target: /strict, bind: {create_host_path: false}}
      - {type: tmpfs, target: /scratch, tmpfs: {size: 1048576}}
    tmpfs: ["/run:size=10m"]
    networks:
      front: {aliases: [www], ipv4_address: 10.7.0.10}
      default:
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O- localhost:8080"]
      interval: 2s
      timeout: 1s
      retries: 3
      start_period: 5s
    restart: on-failure:3
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64m, pids: 100}
        reservations: {memory: 32m}
    user: "1000:1000"
    working_dir: /www
    hostname: webhost
    tty: true
    stdin_open: true
    init: true
    stop_signal: SIGINT
    stop_grace_period: 3s
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    dns: [1.1.1.1]
    extra_hosts: ["db.local:10.0.0.5"]
    privileged: true
    read_only: true
    sysctls: {net.core.somaxconn: "1024"}
    ulimits: {nofile: {soft: 100, hard: 200}, nproc: 50}
    logging: {driver: json-file, options: {max-size: 1m}}
    shm_size: 64m
    labels: {com.example.role: web}
    secrets: [token]
volumes:
  data: {}
networks:
  front:
    ipam: {config: [{subnet: 10.7.0.0/24}]}
secrets:
  token: {file: ./token.txt}
"""


@pytest.fixture
def full(tmp_path):
    project = load(FULL, tmp_path)
    request = create_request(project, project.services["web"], name="demo-web-1", number=1,
                             image_digest="sha256:abc")
    return project, request


def test_config_part(full, tmp_path):
    _project, request = full
    body = request.body
    assert request.query == {"name": "demo-web-1"}
    assert body["Image"] == "busybox:1.36"
    assert body["Cmd"] == ["httpd", "-f", "-p", "8080"]
    assert body["Entrypoint"] == ["/bin/sh", "-c"]
    # Compose: AttachStdout/AttachStderr always true, AttachStdin only for `run`.
    assert (body["AttachStdin"], body["AttachStdout"], body["AttachStderr"]) == (False, True, True)
    assert (body["Tty"], body["OpenStdin"], body["StdinOnce"]) == (True, True, False)
    assert body["Env"] == ["A=1", "B=2", "UNSET"]
    assert body["ExposedPorts"] == {"3000/tcp": {}, "4000/tcp": {}, "5000/udp": {},
                                    "5001/udp": {}, "80/tcp": {}, "9000/udp": {}}
    assert body["User"] == "1000:1000"
    assert body["WorkingDir"] == "/www"
    assert body["Hostname"] == "webhost"
    assert body["StopSignal"] == "SIGINT"
    assert body["StopTimeout"] == 3
    assert body["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q -O- localhost:8080"],
                                   "Interval": 2_000_000_000, "Timeout": 1_000_000_000,
                                   "StartPeriod": 5_000_000_000, "Retries": 3}


def test_labels_are_docker_composes(full, tmp_path):
    project, request = full
    found = request.body["Labels"]
    service = project.services["web"]
    assert found["com.example.role"] == "web"
    assert found[labels.PROJECT] == "demo"
    assert found[labels.SERVICE] == "web"
    assert found[labels.CONTAINER_NUMBER] == "1"
    assert found[labels.ONEOFF] == "False"
    assert found[labels.CONFIG_HASH] == config_hash(service)
    assert found[labels.IMAGE] == "sha256:abc"
    assert found[labels.WORKING_DIR] == str(tmp_path)
    assert found[labels.CONFIG_FILES] == str(tmp_path / "compose.yaml")
    assert found[labels.VERSION] == labels.COMPOSE_VERSION


def test_host_config_part(full, tmp_path):
    _project, request = full
    host = request.body["HostConfig"]
    # Plain binds go through Binds (so the engine creates a missing host path), the rest
    # through Mounts; named volumes use the engine name.
    assert host["Binds"] == [f"{tmp_path}/site:/www:ro"]
    assert host["Mounts"] == [
        {"Type": "volume", "Target": "/anonymous", "VolumeOptions": {}},
        {"Type": "volume", "Target": "/data", "Source": "demo_data", "VolumeOptions": {}},
        {"Type": "bind", "Target": "/run/secrets/token", "Source": f"{tmp_path}/token.txt",
         "ReadOnly": True, "BindOptions": {}},
        {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1048576}},
        {"Type": "bind", "Target": "/strict", "Source": f"{tmp_path}/strict",
         "BindOptions": {}},
    ]
    assert host["Tmpfs"] == {"/run": "size=10m"}
    assert host["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "9000/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}],
        "3000/tcp": [{"HostIp": "", "HostPort": ""}],
    }
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 100
    assert host["MemoryReservation"] == 32 * 1024 * 1024
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200},
                               {"Name": "nproc", "Soft": 50, "Hard": 50}]
    assert host["Init"] is True
    assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["MKNOD"]
    assert host["Dns"] == ["1.1.1.1"]
    assert host["ExtraHosts"] == ["db.local:10.0.0.5"]
    assert host["Privileged"] is True and host["ReadonlyRootfs"] is True
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert host["ShmSize"] == 64 * 1024 * 1024
    assert host["AutoRemove"] is False


def test_networks_primary_first_with_aliases(full):
    _project, request = full
    host = request.body["HostConfig"]
    endpoints = request.body["NetworkingConfig"]["EndpointsConfig"]
    # Networks by priority then name: default before front; the first is NetworkMode.
    assert host["NetworkMode"] == "demo_default"
    assert list(endpoints) == ["demo_default", "demo_front"]
    # Aliases: the container name, then the service name, then the declared ones.
    assert endpoints["demo_default"] == {"Aliases": ["demo-web-1", "web"]}
    assert endpoints["demo_front"] == {"Aliases": ["demo-web-1", "web", "www"],
                                       "IPAMConfig": {"IPv4Address": "10.7.0.10"}}
    assert request.connect_after == ()


def test_old_api_connects_other_networks_after_create(tmp_path):
    project = load(FULL, tmp_path)
    request = create_request(project, project.services["web"], name="demo-web-1", number=1,
                             api_version="1.43")
    assert list(request.body["NetworkingConfig"]["EndpointsConfig"]) == ["demo_default"]
    assert [network for network, _ in request.connect_after] == ["demo_front"]


def test_minimal_service(tmp_path):
    project = load("services:\n  app: {image: busybox}\n", tmp_path)
    body = create_request(project, project.services["app"], name="demo-app-1", number=1).body
    assert body["Cmd"] is None and body["Entrypoint"] is None
    assert body["Env"] == []
    assert "ExposedPorts" not in body and "Healthcheck" not in body
    assert body["HostConfig"] == {
        "NetworkMode": "demo_default", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False, "Init": None, "LogConfig": {"Type": "", "Config": {}}}
    assert body["NetworkingConfig"] == {"EndpointsConfig": {
        "demo_default": {"Aliases": ["demo-app-1", "app"]}}}
    json.dumps(body)  # what is sent must be JSON


def test_empty_entrypoint_resets_the_images(tmp_path):
    project = load("services:\n  app: {image: busybox, entrypoint: ''}\n", tmp_path)
    body = create_request(project, project.services["app"], name="x", number=1).body
    assert body["Entrypoint"] == []


def test_build_only_service_runs_its_built_image(tmp_path):
    (tmp_path / "app").mkdir()
    project = load("services:\n  app: {build: ./app}\n", tmp_path)
    body = create_request(project, project.services["app"], name="x", number=1).body
    assert body["Image"] == "demo-app"


def test_restart_policies(tmp_path):
    project = load("""
        services:
          a: {image: busybox, restart: unless-stopped}
          b: {image: busybox, restart: always, deploy: {restart_policy: {condition: any,
              max_attempts: 2}}}
          c: {image: busybox, deploy: {restart_policy: {condition: none}}}
        """, tmp_path)
    policies = {name: create_request(project, service, name=name, number=1)
                .body["HostConfig"]["RestartPolicy"] for name, service in project.services.items()}
    assert policies == {"a": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                        "b": {"Name": "always", "MaximumRetryCount": 2},
                        "c": {"Name": "no", "MaximumRetryCount": 0}}


def test_disabled_healthcheck(tmp_path):
    project = load("services:\n  a: {image: busybox, healthcheck: {disable: true}}\n", tmp_path)
    body = create_request(project, project.services["a"], name="x", number=1).body
    assert body["Healthcheck"]["Test"] == ["NONE"]


def test_service_references_resolve_to_containers(tmp_path):
    project = load("""
        services:
          net: {image: busybox}
          store: {image: busybox}
          app:
            image: busybox
            network_mode: "service:net"
            volumes_from: ["store:ro", "container:legacy"]
            ipc: "service:net"
        """, tmp_path)
    references = References(containers={
        "net": [ContainerRef(id="n" * 64, name="demo-net-1")],
        "store": [ContainerRef(id="s" * 64, name="demo-store-1")]})
    body = create_request(project, project.services["app"], name="demo-app-1", number=1,
                          references=references).body
    host = body["HostConfig"]
    assert host["NetworkMode"] == "container:" + "n" * 64
    assert host["IpcMode"] == "container:" + "n" * 64
    assert host["VolumesFrom"] == ["s" * 64 + ":ro", "legacy"]
    assert "NetworkingConfig" not in body
    with pytest.raises(CreateError, match="cannot share network namespace with service net"):
        create_request(project, project.services["app"], name="demo-app-1", number=1)


def test_links_as_compose_writes_them(tmp_path):
    project = load("""
        services:
          db: {image: busybox}
          web: {image: busybox, links: ["db:database"], external_links: [legacy]}
        """, tmp_path)
    references = References(containers={"db": [ContainerRef(id="d" * 64, name="demo-db-1")]})
    host = create_request(project, project.services["web"], name="demo-web-2", number=2,
                          references=references).body["HostConfig"]
    assert host["Links"] == ["demo-db-1:database", "demo-db-1:db-2", "demo-db-1:demo-db-2",
                             "legacy:legacy"]


def test_oneoff_container(tmp_path):
    project = load("services:\n  app: {image: busybox}\n", tmp_path)
    request = create_request(project, project.services["app"], name="demo-app-run-0123456789ab",
                             number=None, oneoff=True, slug="0123456789ab" * 5,
                             use_network_aliases=False, auto_remove=True, attach_stdin=True)
    found = request.body["Labels"]
    assert found[labels.ONEOFF] == "True"
    assert found[labels.SLUG] == "0123456789ab" * 5
    assert labels.CONTAINER_NUMBER not in found
    assert request.body["HostConfig"]["AutoRemove"] is True
    assert request.body["AttachStdin"] is True
    # Without --use-aliases a one-off container answers to its own name only.
    assert request.body["NetworkingConfig"]["EndpointsConfig"]["demo_default"] == {
        "Aliases": ["demo-app-run-0123456789ab"]}


def test_inherited_anonymous_volume(tmp_path):
    project = load("services:\n  app: {image: busybox, volumes: [/cache, data:/data]}\n"
                   "volumes: {data: {}}\n", tmp_path)
    inherited = {"/cache": {"Type": "volume", "Source": "abc123", "Target": "/cache"}}
    mounts = create_request(project, project.services["app"], name="x", number=1,
                            references=References(inherited_mounts=inherited)
                            ).body["HostConfig"]["Mounts"]
    assert {"Type": "volume", "Source": "abc123", "Target": "/cache"} in mounts


def test_secret_from_environment_is_injected(tmp_path):
    project = load("""
        services:
          app: {image: busybox, secrets: [{source: key, target: api, mode: 0o400}]}
        secrets:
          key: {environment: API_KEY}
        """, tmp_path, env={"API_KEY": "s3cret"})
    request = create_request(project, project.services["app"], name="x", number=1)
    assert "Mounts" not in request.body["HostConfig"]
    (injected,) = request.injected_files
    assert (injected.target, injected.content, injected.mode) == ("/run/secrets/api",
                                                                  b"s3cret", 0o400)


def test_environment_list_orders_and_keeps_unset():
    assert environment_list({"Z": "1", "A": None, "M": ""}) == ["A", "M=", "Z=1"]
