"""`config`: the normalized project printed back, and the round trip it must survive."""

from __future__ import annotations

import textwrap
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.compose.loader import load_files
from actors.compose.model import Project
from actors.compose.normalize import config_yaml, to_dict
from actors.compose.yamlload import dump_yaml

WORKDIR = "/srv/project"


def load_text(text: str, **options: Any) -> Project:
    options.setdefault("project_name", "demo")
    return load_files([("compose.yaml", text)], working_dir=WORKDIR, **options).project


def test_config_output_shape() -> None:
    project = load_text(
        textwrap.dedent(
            """
            services:
              web:
                image: nginx
                command: nginx -g 'daemon off;'
                ports: ["8080:80"]
                volumes: ["./html:/usr/share/nginx/html:ro", "data:/data"]
                environment: [B=2, A=1]
                depends_on: [db]
                healthcheck:
                  test: curl -f http://localhost
                  interval: 90s
                mem_limit: 512m
                labels: {price: "5$$"}
              db:
                image: postgres
            volumes:
              data:
            """
        )
    )
    assert config_yaml(project) == textwrap.dedent(
        """\
        name: demo
        services:
          db:
            image: postgres
            networks:
              default: null
          web:
            command:
              - nginx
              - -g
              - daemon off;
            depends_on:
              db:
                condition: service_started
                required: true
            deploy:
              resources:
                limits:
                  memory: "536870912"
            environment:
              A: "1"
              B: "2"
            healthcheck:
              test:
                - CMD-SHELL
                - curl -f http://localhost
              interval: 1m30s
            image: nginx
            labels:
              price: 5$$
            networks:
              default: null
            ports:
              - mode: ingress
                target: 80
                published: "8080"
                protocol: tcp
            volumes:
              - type: bind
                source: /srv/project/html
                target: /usr/share/nginx/html
                read_only: true
                bind:
                  create_host_path: true
              - type: volume
                source: data
                target: /data
                volume: {}
        networks:
          default:
            name: demo_default
        volumes:
          data:
            name: demo_data
        """
    )


def test_config_omits_disabled_services_and_unused_resources() -> None:
    project = load_text(
        "services:\n  web: {image: a}\n  debug: {image: b, profiles: [debug]}\n"
        "volumes:\n  unused: {}\nnetworks:\n  spare: {}\n"
    )
    document = to_dict(project)
    assert set(document["services"]) == {"web"}
    assert "volumes" not in document
    assert set(document["networks"]) == {"default"}


def test_config_reloads_to_the_same_project() -> None:
    project = load_text(
        "services:\n  web:\n    image: 'app:${TAG:-1}'\n    command: ['echo', '$$HOME', 'cost: 5$$']\n"
    )
    assert project.services["web"].command == ("echo", "$HOME", "cost: 5$")
    again = load_text(config_yaml(project))
    assert again == project


# ---- generated projects ---------------------------------------------------------------

names = st.sampled_from(["web", "db", "cache", "worker", "api", "proxy"])
words = st.text(alphabet="abcxyz019_-./:=$ ", min_size=1, max_size=8)
safe_words = st.from_regex(r"[a-z][a-z0-9_.-]{0,7}", fullmatch=True)
paths = st.from_regex(r"/[a-z]{1,5}(/[a-z0-9]{1,4}){0,2}", fullmatch=True)
durations = st.sampled_from(["10s", "1m30s", "500ms", "1h", "2m", "1.5s", "0s"])
sizes = st.one_of(st.sampled_from(["64m", "1g", "100k", "512mb", "1.5g"]), st.integers(0, 2**33))


def escape_dollars(text: str) -> str:
    return text.replace("$", "$$")


def port_entries() -> st.SearchStrategy[Any]:
    port = st.integers(1, 65535)
    short = st.one_of(
        port.map(str),
        st.tuples(port, port).map(lambda pair: f"{pair[0]}:{pair[1]}"),
        st.tuples(
            st.sampled_from(["127.0.0.1", "::1", "[::1]", "10.1.2.3"]),
            port,
            port,
            st.sampled_from(["", "/udp", "/tcp"]),
        ).map(lambda parts: f"{parts[0]}:{parts[1]}:{parts[2]}{parts[3]}"),
        st.tuples(st.integers(1, 60000), st.integers(1, 60000), st.integers(0, 3)).map(
            lambda parts: f"{parts[0]}-{parts[0] + parts[2]}:{parts[1]}-{parts[1] + parts[2]}"
        ),
        port,
    )
    long = st.fixed_dictionaries(
        {"target": port},
        optional={
            "published": st.one_of(port, port.map(str)),
            "host_ip": st.sampled_from(["127.0.0.1", "0.0.0.0"]),
            "protocol": st.sampled_from(["tcp", "udp"]),
            "mode": st.sampled_from(["host", "ingress"]),
            "name": safe_words,
        },
    )
    return st.lists(st.one_of(short, long), max_size=3)


def volume_entries(declared: list[str]) -> st.SearchStrategy[Any]:
    named = st.sampled_from(declared) if declared else st.nothing()
    mode = st.sampled_from(["", ":ro", ":rw", ":ro,z", ":nocopy"])
    short = st.one_of(
        st.tuples(named, paths, mode).map(lambda parts: f"{parts[0]}:{parts[1]}{parts[2]}"),
        st.tuples(
            st.sampled_from(["./data", "../up", "/abs", "./a/../b"]),
            paths,
            st.sampled_from(["", ":ro"]),
        ).map(lambda parts: f"{parts[0]}:{parts[1]}{parts[2]}"),
        paths,
    )
    long = st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.just("bind"),
                "source": st.sampled_from(["./src", "/etc/x"]),
                "target": paths,
            },
            optional={
                "read_only": st.booleans(),
                "bind": st.fixed_dictionaries(
                    {},
                    optional={
                        "create_host_path": st.booleans(),
                        "propagation": st.sampled_from(["rshared", "private"]),
                    },
                ),
            },
        ),
        st.fixed_dictionaries(
            {"type": st.just("tmpfs"), "target": paths},
            optional={
                "tmpfs": st.fixed_dictionaries(
                    {}, optional={"size": sizes, "mode": st.integers(0, 0o777)}
                )
            },
        ),
        st.fixed_dictionaries(
            {"type": st.just("volume"), "target": paths},
            optional={
                "source": named,
                "volume": st.fixed_dictionaries(
                    {}, optional={"nocopy": st.booleans(), "subpath": safe_words}
                ),
            },
        ),
    )
    return st.lists(st.one_of(short, long), max_size=3)


def mapping_or_list(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,6}", fullmatch=True)
    return st.one_of(
        st.dictionaries(keys, values, max_size=3),
        st.dictionaries(keys, st.one_of(words, st.none()), max_size=3).map(
            lambda mapping: [
                key if value is None else f"{key}={value}" for key, value in mapping.items()
            ]
        ),
    )


@st.composite
def projects(draw: st.DrawFn) -> dict[str, Any]:
    declared_volumes = draw(st.lists(safe_words, max_size=3, unique=True))
    declared_networks = draw(
        st.lists(safe_words.filter(lambda name: name != "default"), max_size=2, unique=True)
    )
    service_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    services: dict[str, Any] = {}
    for index, name in enumerate(service_names):
        service: dict[str, Any] = {
            "image": draw(
                st.sampled_from(["busybox", "nginx:1.25", "registry:5000/app@sha256:" + "a" * 64])
            )
        }
        optional: dict[str, st.SearchStrategy[Any]] = {
            "command": st.one_of(
                st.lists(words.map(escape_dollars), max_size=3),
                st.sampled_from(["echo hi", "sh -c 'a b'", ""]),
            ),
            "entrypoint": st.lists(safe_words, min_size=1, max_size=2),
            "environment": mapping_or_list(
                st.one_of(words.map(escape_dollars), st.integers(), st.booleans(), st.none())
            ),
            "labels": mapping_or_list(st.one_of(safe_words, st.integers())),
            "ports": port_entries(),
            "expose": st.lists(
                st.one_of(st.integers(1, 9999), st.just("8000-8010"), st.just("53/udp")), max_size=2
            ),
            "volumes": volume_entries(declared_volumes),
            "restart": st.sampled_from(
                ["no", "always", "on-failure", "on-failure:3", "unless-stopped"]
            ),
            "user": safe_words,
            "working_dir": paths,
            "tty": st.booleans(),
            "init": st.booleans(),
            "stop_grace_period": durations,
            "cap_add": st.lists(st.sampled_from(["NET_ADMIN", "SYS_TIME"]), max_size=2),
            "dns": st.one_of(
                st.just("8.8.8.8"), st.lists(st.sampled_from(["1.1.1.1", "9.9.9.9"]), max_size=2)
            ),
            "extra_hosts": st.one_of(
                st.lists(st.sampled_from(["a=10.0.0.1", "b:10.0.0.2", "c=[::1]"]), max_size=2),
                st.dictionaries(safe_words, st.sampled_from(["10.0.0.9", "::2"]), max_size=2),
            ),
            "tmpfs": st.one_of(
                st.just("/run"), st.lists(st.sampled_from(["/tmp", "/cache:size=1m"]), max_size=2)
            ),
            "shm_size": sizes,
            "ulimits": st.dictionaries(
                st.sampled_from(["nofile", "nproc"]),
                st.one_of(
                    st.integers(0, 10**6),
                    st.fixed_dictionaries({"soft": st.just(100), "hard": st.just(200)}),
                ),
                max_size=2,
            ),
            "sysctls": mapping_or_list(st.integers(0, 100)),
            "logging": st.fixed_dictionaries(
                {"driver": st.sampled_from(["json-file", "local"])},
                optional={
                    "options": st.dictionaries(
                        st.sampled_from(["max-size", "max-file"]),
                        st.sampled_from(["10m", "3"]),
                        max_size=2,
                    )
                },
            ),
            "healthcheck": st.fixed_dictionaries(
                {
                    "test": st.one_of(
                        words.map(escape_dollars), st.just(["CMD", "true"]), st.just(["NONE"])
                    )
                },
                optional={
                    "interval": durations,
                    "timeout": durations,
                    "retries": st.integers(0, 10),
                    "start_period": durations,
                },
            ),
            "deploy": st.fixed_dictionaries(
                {},
                optional={
                    "replicas": st.integers(0, 3),
                    "labels": mapping_or_list(safe_words),
                    "resources": st.fixed_dictionaries(
                        {},
                        optional={
                            "limits": st.fixed_dictionaries(
                                {},
                                optional={
                                    "cpus": st.sampled_from(["0.5", 2, 1.25]),
                                    "memory": st.sampled_from(["64m", "1g"]),
                                    "pids": st.integers(1, 100),
                                },
                            )
                        },
                    ),
                    "restart_policy": st.fixed_dictionaries(
                        {},
                        optional={
                            "condition": st.sampled_from(["any", "on-failure"]),
                            "delay": durations,
                        },
                    ),
                },
            ),
            "mem_reservation": sizes,
            "privileged": st.booleans(),
            "read_only": st.booleans(),
            "hostname": safe_words,
            "stop_signal": st.sampled_from(["SIGINT", "SIGTERM"]),
            "pull_policy": st.sampled_from(["always", "missing", "never", "if_not_present"]),
            "platform": st.just("linux/amd64"),
            "security_opt": st.lists(st.just("no-new-privileges:true"), max_size=1),
        }
        chosen = draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=10))
        for key in chosen:
            service[key] = draw(optional[key])
        earlier = [other for other in service_names[:index] if "profiles" not in services[other]]
        if earlier and draw(st.booleans()):
            targets = draw(st.lists(st.sampled_from(earlier), min_size=1, unique=True))
            if draw(st.booleans()):
                service["depends_on"] = targets
            else:
                service["depends_on"] = {
                    target: {
                        "condition": draw(st.sampled_from(["service_started", "service_healthy"])),
                        "restart": draw(st.booleans()),
                    }
                    for target in targets
                }
        if declared_networks and draw(st.booleans()):
            chosen_networks = draw(
                st.lists(st.sampled_from([*declared_networks, "default"]), min_size=1, unique=True)
            )
            if draw(st.booleans()):
                service["networks"] = chosen_networks
            else:
                service["networks"] = {
                    network: draw(
                        st.one_of(
                            st.none(),
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "aliases": st.lists(safe_words, max_size=2),
                                    "priority": st.integers(0, 100),
                                },
                            ),
                        )
                    )
                    for network in chosen_networks
                }
        if draw(st.booleans()) and "deploy" not in service:
            service["scale"] = draw(st.integers(0, 3))
        if draw(st.booleans()):
            service["container_name"] = f"{name}-fixed"
            service.pop("scale", None)
            if isinstance(service.get("deploy"), dict):
                service["deploy"].pop("replicas", None)
        if draw(st.booleans()):
            service["profiles"] = ["extra"]
        services[name] = service
    document: dict[str, Any] = {"services": services}
    if declared_volumes:
        document["volumes"] = {
            name: draw(
                st.one_of(
                    st.none(),
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "driver": st.just("local"),
                            "labels": mapping_or_list(safe_words),
                        },
                    ),
                    st.just({"external": True}),
                )
            )
            for name in declared_volumes
        }
    if declared_networks:
        document["networks"] = {
            name: draw(
                st.one_of(
                    st.none(),
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "driver": st.just("bridge"),
                            "internal": st.booleans(),
                            "ipam": st.just({"config": [{"subnet": "172.30.0.0/16"}]}),
                        },
                    ),
                )
            )
            for name in declared_networks
        }
    return document


def check_round_trip(document: dict[str, Any], profiles: tuple[str, ...]) -> None:
    loaded = load_files(
        [("compose.yaml", dump_yaml(document))],
        working_dir=WORKDIR,
        project_name="gen",
        profiles=profiles,
    )
    project = loaded.project
    text = config_yaml(project)
    again = load_files(
        [("config.yaml", text)], working_dir=WORKDIR, project_name="gen", profiles=profiles
    ).project
    assert again == attrs.evolve(project, config_files=("config.yaml",), disabled_services={})
    assert config_yaml(again) == text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects(), st.sampled_from([(), ("extra",)]))
def test_config_round_trip(document: dict[str, Any], profiles: tuple[str, ...]) -> None:
    check_round_trip(document, profiles)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(projects(), st.sampled_from([(), ("extra",)]))
def test_config_round_trip_long(document: dict[str, Any], profiles: tuple[str, ...]) -> None:
    check_round_trip(document, profiles)
