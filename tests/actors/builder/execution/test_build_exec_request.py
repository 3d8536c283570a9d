"""`POST /build` query parsing (request.py) and registry credentials for pulls: pure."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.builder.images import auth_header_for
from actors.builder.messages import BuildRequest, BuildUlimit
from actors.builder.request import BuildRequestError, parse_build_query, registry_auth
from runtime.codec import decode, encode


class Query:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, key: str, default: str | None = None) -> str | None:
        for name, value in self.pairs:
            if name == key:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        return [value for name, value in self.pairs if name == key]


def parse(**params: str | list[str]) -> BuildRequest:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, item))
    return parse_build_query(Query(pairs))


def test_defaults_are_dockers() -> None:
    request = parse()
    assert request.dockerfile == "Dockerfile"
    assert request.remove is True and request.force_remove is False
    assert request.quiet is False and request.no_cache is False and request.pull is False
    assert request.network_mode == "default"
    assert parse(networkmode="bridge").network_mode == "default"
    assert parse(networkmode="default").network_mode == "default"
    assert parse(networkmode="none").network_mode == "none"
    assert request.tags == () and request.build_args == {} and request.cache_from == ()


@given(st.sampled_from(["1", "true", "True", "TRUE", "yes", "on"]), st.sampled_from(["", "0", "no", "false", "False", "none", "NONE"]))
def test_booleans_read_as_docker_reads_them(truthy: str, falsy: str) -> None:
    assert parse(q=truthy, nocache=truthy, pull=truthy, forcerm=truthy).quiet is True
    assert parse(nocache=truthy).no_cache is True
    assert parse(rm=falsy).remove is False
    assert parse(q=falsy, nocache=falsy).no_cache is False


def test_empty_values_older_clients_send_are_accepted() -> None:
    request = parse(
        cachefrom="[]", buildargs="{}", labels="null", ulimits="null", networkmode="default",
        memory="0", memswap="", cpushares="0", shmsize="", extrahosts="", target="", platform="",
    )
    assert request.cache_from == () and request.build_args == {} and request.labels == {}
    assert request.ulimits == () and request.memory_bytes == 0 and request.extra_hosts == ()


def test_values_are_parsed() -> None:
    request = parse(
        t=["app:1", "registry.example:5000/team/app", "app:1"],
        buildargs=json.dumps({"A": "1", "B": None}),
        labels=json.dumps({"team": "x"}),
        cachefrom=json.dumps(["base:1", ""]),
        ulimits=json.dumps([{"Name": "nofile", "Soft": 10, "Hard": 20}]),
        extrahosts=["db:10.0.0.2", "v6:[::1],other=10.0.0.3"],
        networkmode="host", target="build", memory="67108864", cpusetcpus="0",
        dockerfile="sub/Custom",
    )
    assert request.tags == (
        "docker.io/library/app:1", "registry.example:5000/team/app:latest",
    )
    assert request.build_args == {"A": "1", "B": None}
    assert request.labels == {"team": "x"}
    assert request.cache_from == ("base:1",)
    assert request.ulimits == (BuildUlimit("nofile", 10, 20),)
    assert request.extra_hosts == ("db:10.0.0.2", "v6:::1", "other:10.0.0.3")
    assert request.network_mode == "host" and request.target == "build"
    assert request.memory_bytes == 64 * 1024 * 1024 and request.cpuset_cpus == "0"
    assert request.dockerfile == "sub/Custom"
    assert decode(encode(request)) == request


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"buildargs": "[1]"}, "invalid buildargs: expected a JSON object"),
        ({"buildargs": '{"A": 1}'}, "the value of 'A' must be a string"),
        ({"labels": '{"A": null}'}, "invalid labels"),
        ({"buildargs": "{"}, "invalid JSON in buildargs"),
        ({"cachefrom": '"x"'}, "invalid cachefrom"),
        ({"ulimits": '[{"Name": "nofile"}]'}, "Soft and Hard must be integers"),
        ({"t": "UPPER"}, "invalid tag 'UPPER'"),
        ({"t": "app@sha256:" + "a" * 64}, "build tag cannot be a digest"),
        ({"extrahosts": "nohost"}, "expected host:ip"),
        ({"extrahosts": "db:not-an-ip"}, "is not an IP address"),
        ({"memory": "1g"}, "invalid value for memory"),
        ({"networkmode": "overlay"}, "network mode 'overlay' is not supported"),
        ({"version": "2"}, "BuildKit (version=2) is not supported"),
        ({"remote": "git://x"}, "remote build contexts are not supported"),
        ({"squash": "1"}, "squash is only supported with experimental mode"),
        ({"platform": "windows/amd64"}, "is not supported: this daemon builds for"),
        ({"platform": "a/b/c/d"}, "failed to parse platform"),
    ],
)
def test_bad_values_are_refused_naming_the_parameter(params: dict[str, str], message: str) -> None:
    with pytest.raises(BuildRequestError, match=None) as refused:
        parse(**params)
    assert message in str(refused.value)


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(st.none(), st.text(max_size=8)), max_size=5))
def test_build_args_round_trip(args: dict[str, str | None]) -> None:
    assert parse(buildargs=json.dumps(args)).build_args == args


def _header(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_registry_config_is_decoded_and_bad_headers_are_ignored() -> None:
    config = {"https://index.docker.io/v1/": {"username": "u", "password": "p"}, "reg:5000": {"auth": "eDp5"}}
    assert registry_auth(_header(config)) == config
    assert registry_auth(None) == {} and registry_auth("") == {}
    assert registry_auth("!!!not base64") == {}
    assert registry_auth(_header(["a list"])) == {}


def test_the_pull_of_an_image_uses_its_registrys_credentials() -> None:
    config = {"https://index.docker.io/v1/": {"username": "hub"}, "reg.example:5000": {"username": "mine"}}
    hub = json.loads(base64.urlsafe_b64decode(auth_header_for("busybox:latest", config)))
    assert hub == {"username": "hub"}
    private = json.loads(base64.urlsafe_b64decode(auth_header_for("reg.example:5000/app:1", config)))
    assert private == {"username": "mine"}
    assert auth_header_for("other.example/app:1", config) == ""
