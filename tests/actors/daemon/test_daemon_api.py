"""The API layer: version prefixes and limits, routing, filters, flag validation."""

from __future__ import annotations

import argparse

import pytest

from actors.daemon.api import ApiError, Router, check_version, version_tuple
from actors.daemon.config import ConfigError, build_parser, config_from_arguments, parse_listen


def test_version_limits_use_mobys_wording() -> None:
    check_version("1.24")
    check_version("1.45")
    with pytest.raises(ApiError, match=r"client version 1.12 is too old. Minimum supported API version is 1.24"):
        check_version("1.12")
    with pytest.raises(ApiError, match=r"client version 1.99 is too new. Maximum supported API version is 1.45"):
        check_version("1.99")
    assert version_tuple("1.45") > version_tuple("1.9")


def test_routes_match_greedy_image_names_and_head_falls_back_to_get() -> None:
    router = Router()

    async def handler(request: object, **parameters: str) -> None:
        return None

    router.route("GET", "/images/(?P<name>.+)/json")(handler)
    router.route("DELETE", "/images/(?P<name>.+)")(handler)
    found = router.match("GET", "/images/localhost:5000/team/app:1/json")
    assert found is not None and found[1] == {"name": "localhost:5000/team/app:1"}
    assert router.match("HEAD", "/images/busybox/json") is not None
    assert router.match("POST", "/images/busybox/json") is None
    deleted = router.match("DELETE", "/images/docker.io/library/busybox:latest")
    assert deleted is not None and deleted[1] == {"name": "docker.io/library/busybox:latest"}


def parse(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(list(flags))


def test_tcp_without_tls_is_refused_unless_forced(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="refusing to listen on TCP without --tlsverify"):
        config_from_arguments(parse("-H", "tcp://127.0.0.1:2376"))
    config = config_from_arguments(parse("-H", "tcp://127.0.0.1:2376", "--insecure-tcp"))
    assert config.listens[0].port == 2376
    with pytest.raises(ConfigError, match="--tlsverify needs --tlscacert, --tlscert and --tlskey"):
        config_from_arguments(parse("-H", "tcp://127.0.0.1:2376", "--tlsverify"))


@pytest.mark.parametrize("bad", ["unix://relative.sock", "tcp://host", "tcp://h:99999", "udp://x:1", "fd://"])
def test_bad_listen_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(bad)


def test_defaults() -> None:
    config = config_from_arguments(parse())
    assert str(config.data_root) == "/var/lib/flotta"
    assert config.listens[0].address == "/run/flotta.sock"
    assert config.socket_mode == 0o660
