"""X-Registry-Auth / X-Registry-Config decoding and Docker-style config.json auths."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.images.distribution import Credentials
from actors.images.registry_auth import (
    DOCKER_HUB_CONFIG_KEY,
    AuthConfig,
    DockerConfig,
    InvalidRegistryAuth,
    config_key,
    decode_registry_auth,
    decode_registry_config,
    encode_registry_auth,
)


def b64url(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


def test_the_clis_empty_header_and_absent_header() -> None:
    assert decode_registry_auth("e30=") == AuthConfig()
    assert decode_registry_auth("e30") == AuthConfig()
    assert decode_registry_auth(None) == AuthConfig()
    assert decode_registry_auth("") == AuthConfig()
    assert decode_registry_auth("e30=").credentials().anonymous


def test_a_full_auth_config() -> None:
    header = b64url({"username": "alice", "password": "s3cr?t>", "email": "a@example.com",
                     "serveraddress": "localhost:5000", "identitytoken": "", "auth": ""})
    config = decode_registry_auth(header)
    assert config.username == "alice" and config.password == "s3cr?t>"
    assert config.server_address == "localhost:5000"
    assert config.credentials() == Credentials("alice", "s3cr?t>")
    only_auth = decode_registry_auth(b64url({"auth": base64.b64encode(b"bob:pw:x").decode()}))
    assert only_auth.credentials() == Credentials("bob", "pw:x")
    tokens = decode_registry_auth(b64url({"identitytoken": "refresh", "registrytoken": "bearer"}))
    assert tokens.credentials() == Credentials(identity_token="refresh", registry_token="bearer")


@pytest.mark.parametrize("header, words", [
    ("!!!", "not base64"),
    (base64.urlsafe_b64encode(b"not json").decode(), "not JSON"),
    (b64url(["a"]), "not a JSON object"),
    (b64url({"username": 5}), "'username' must be a string"),
])
def test_bad_headers_say_what_is_wrong(header: str, words: str) -> None:
    with pytest.raises(InvalidRegistryAuth, match=words):
        decode_registry_auth(header)


@given(st.builds(AuthConfig, username=st.text(), password=st.text(), email=st.text(),
                 server_address=st.text(), identity_token=st.text(), registry_token=st.text()))
def test_encode_decode_round_trip(config: AuthConfig) -> None:
    assert decode_registry_auth(encode_registry_auth(config)) == config


def test_registry_config_for_builds() -> None:
    header = b64url({"localhost:5000": {"username": "u", "password": "p"},
                     "https://index.docker.io/v1/": {"auth": base64.b64encode(b"h:q").decode()}})
    configs = decode_registry_config(header)
    assert configs["localhost:5000"].credentials() == Credentials("u", "p")
    assert configs["https://index.docker.io/v1/"].credentials() == Credentials("h", "q")
    with pytest.raises(InvalidRegistryAuth, match="X-Registry-Config"):
        decode_registry_config(b64url({"x": "not an object"}))


def test_config_keys() -> None:
    assert config_key("docker.io") == DOCKER_HUB_CONFIG_KEY
    assert config_key("index.docker.io") == DOCKER_HUB_CONFIG_KEY
    assert config_key("https://index.docker.io/v1/") == DOCKER_HUB_CONFIG_KEY
    assert config_key("localhost:5000") == "localhost:5000"
    assert config_key("https://registry.example.com/v2/") == "registry.example.com"


def test_config_json_login_logout_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"auths": {"http://old.example.com/v1/": {"auth": base64.b64encode(
        b"old:pw").decode()}}, "credsStore": "", "proxies": {"default": {"httpProxy": "x"}}}))
    config = DockerConfig.load(path)
    assert config.get("old.example.com").credentials() == Credentials("old", "pw")
    config.set("docker.io", AuthConfig(username="hub", password="hubpw"))
    config.set("localhost:5000", AuthConfig(username="me", identity_token="refresh-token"))
    config.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["proxies"] == {"default": {"httpProxy": "x"}}
    assert document["auths"][DOCKER_HUB_CONFIG_KEY] == {
        "auth": base64.b64encode(b"hub:hubpw").decode()}
    assert document["auths"]["localhost:5000"]["identitytoken"] == "refresh-token"

    reloaded = DockerConfig.load(path)
    assert reloaded.credentials_for("docker.io") == Credentials("hub", "hubpw")
    assert reloaded.credentials_for("localhost:5000") == Credentials(
        "me", "", identity_token="refresh-token")
    assert reloaded.credentials_for("elsewhere:1") is None
    assert reloaded.remove("https://index.docker.io/v1/") is True
    assert reloaded.remove("docker.io") is False
    reloaded.save()
    assert DOCKER_HUB_CONFIG_KEY not in json.loads(path.read_text())["auths"]


def test_missing_and_malformed_config_files(tmp_path: Path) -> None:
    assert DockerConfig.load(tmp_path / "absent.json").get("docker.io") is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidRegistryAuth, match=r"broken\.json"):
        DockerConfig.load(broken)
    broken.write_text(json.dumps({"auths": []}))
    with pytest.raises(InvalidRegistryAuth, match="auths"):
        DockerConfig.load(broken)
    assert broken.read_text() == json.dumps({"auths": []}), "a failed load changes nothing"
