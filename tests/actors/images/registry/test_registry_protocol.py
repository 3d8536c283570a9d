"""Parsers shared by the registry server and client: names, digests, ranges, challenges,
scopes, manifests, endpoints."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.images import reference as references
from actors.images import registry_protocol as protocol
from actors.images.distribution import (
    Repository,
    is_insecure,
    parse_challenge,
    resolve_endpoint,
    select_platform,
)
from actors.images.registry_access import Access, parse_scope
from actors.images.registry_protocol import RegistryError

component = st.from_regex(r"[a-z0-9]{1,5}([._-][a-z0-9]{1,4}){0,2}", fullmatch=True)


@given(st.lists(component, min_size=1, max_size=4))
def test_valid_names_pass(parts: list[str]) -> None:
    name = "/".join(parts)
    if len(name) <= protocol.NAME_LENGTH_MAX:
        assert protocol.check_name(name) == name


@pytest.mark.parametrize("name", ["", "UPPER/x", "a//b", "/a", "a/", "-a", "a-", "a..b/_x",
                                  "a" * 256, "x/_layers", "sp ace"])
def test_invalid_names_are_name_invalid(name: str) -> None:
    with pytest.raises(RegistryError) as failure:
        protocol.check_name(name)
    assert failure.value.code == "NAME_INVALID" and failure.value.status == 400


@given(st.text(max_size=140))
def test_tag_check_agrees_with_the_grammar(tag: str) -> None:
    valid = re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag) is not None
    try:
        protocol.check_tag(tag)
        accepted = True
    except RegistryError:
        accepted = False
    assert accepted == valid


def test_digests() -> None:
    good = "sha256:" + "a" * 64
    assert protocol.check_digest(good) == good
    assert protocol.check_digest("sha512:" + "0" * 128)
    for bad in ("sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha256:", "nohex", "md5:" + "a" * 32):
        with pytest.raises(RegistryError) as failure:
            protocol.check_digest(bad)
        assert failure.value.status == 400


@given(st.integers(0, 10**12), st.integers(0, 10**12))
def test_content_range_round_trip(start: int, length: int) -> None:
    end = start + length
    for text in (f"{start}-{end}", f"bytes {start}-{end}/*", f"bytes={start}-{end}"):
        assert protocol.parse_content_range(text) == (start, end)


@pytest.mark.parametrize("text", ["", "5", "5-", "-5", "9-3", "a-b", "1-2-3"])
def test_bad_content_ranges(text: str) -> None:
    with pytest.raises(RegistryError) as failure:
        protocol.parse_content_range(text)
    assert failure.value.code == "RANGE_INVALID" and failure.value.status == 416


@given(st.integers(1, 10_000), st.data())
def test_byte_range_stays_inside_the_blob(size: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, size + 5))
    end = data.draw(st.one_of(st.none(), st.integers(0, size + 5)))
    header = f"bytes={start}-{'' if end is None else end}"
    span = protocol.parse_byte_range(header, size)
    if start >= size or (end is not None and end < start):
        assert span is None
    else:
        assert span is not None
        assert span[0] == start and 0 <= span[0] <= span[1] < size
    suffix = data.draw(st.integers(1, size + 5))
    first, last = protocol.parse_byte_range(f"bytes=-{suffix}", size)
    assert last == size - 1 and last - first + 1 == min(suffix, size)


def test_challenges() -> None:
    scheme, parameters = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull,push"')
    assert scheme == "bearer"
    assert parameters == {"realm": "https://auth.docker.io/token",
                          "service": "registry.docker.io",
                          "scope": "repository:library/busybox:pull,push"}
    assert parse_challenge('Basic realm="x y"') == ("basic", {"realm": "x y"})
    assert parse_challenge('Bearer realm=plain,error="insufficient_scope"')[1]["realm"] == "plain"


@given(st.text(max_size=200))
def test_challenge_parser_never_fails(header: str) -> None:
    scheme, parameters = parse_challenge(header)
    assert isinstance(scheme, str) and isinstance(parameters, dict)


def test_scopes() -> None:
    assert parse_scope("repository:localhost:5000/x:pull,push registry:catalog:*") == [
        Access("repository", "localhost:5000/x", ("pull", "push")),
        Access("registry", "catalog", ("*",)),
    ]
    assert Access("repository", "a/b", ("pull",)).scope() == "repository:a/b:pull"


def test_manifest_parsing_names_the_problem() -> None:
    good = {"schemaVersion": 2, "mediaType": protocol.OCI_MANIFEST,
            "config": {"mediaType": protocol.OCI_CONFIG, "digest": "sha256:" + "1" * 64, "size": 2},
            "layers": []}
    parsed = protocol.parse_manifest(json.dumps(good).encode(), None)
    assert parsed.media_type == protocol.OCI_MANIFEST and len(parsed.blobs) == 1
    cases = {
        b"not json": "not JSON",
        json.dumps({**good, "schemaVersion": 1}).encode(): "schemaVersion",
        json.dumps({**good, "config": {"digest": "sha256:x", "size": 1}}).encode(): "config",
        json.dumps({**good, "layers": [{"digest": "sha256:" + "2" * 64}]}).encode(): "layers[0]",
        json.dumps({**good, "mediaType": "text/plain"}).encode(): "unsupported manifest",
        json.dumps({**good, "mediaType": protocol.DOCKER_MANIFEST_SCHEMA1_SIGNED}).encode():
            "schema1",
    }
    for data, words in cases.items():
        with pytest.raises(RegistryError) as failure:
            protocol.parse_manifest(data, None)
        assert failure.value.code == "MANIFEST_INVALID"
        assert words in failure.value.message


def test_platform_selection_skips_attestations() -> None:
    def entry(digit: str, os_name: str, architecture: str, **extra) -> dict:
        return {"mediaType": protocol.OCI_MANIFEST, "digest": "sha256:" + digit * 64, "size": 10,
                "platform": {"os": os_name, "architecture": architecture, **extra}}

    attestation = entry("9", "unknown", "unknown")
    attestation["annotations"] = {"vnd.docker.reference.type": "attestation-manifest"}
    index = json.dumps({"schemaVersion": 2, "mediaType": protocol.OCI_INDEX, "manifests": [
        attestation, entry("1", "linux", "arm64", variant="v8"), entry("2", "linux", "amd64"),
        entry("3", "linux", "arm", variant="v7")]}).encode()
    assert select_platform(index) == "sha256:" + "2" * 64
    assert select_platform(index, "linux/arm64") == "sha256:" + "1" * 64
    assert select_platform(index, "linux/arm/v7") == "sha256:" + "3" * 64
    assert select_platform(index, "linux/s390x") is None


def test_repository_names_are_normalized_like_docker() -> None:
    assert Repository.parse("busybox") == Repository("docker.io", "library/busybox")
    assert Repository.parse("user/app") == Repository("docker.io", "user/app")
    assert Repository.parse("index.docker.io/x/y") == Repository("docker.io", "x/y")
    assert Repository.parse("localhost/app") == Repository("localhost", "app")
    assert Repository.parse("localhost:5000/a/b") == Repository("localhost:5000", "a/b")
    assert Repository.parse("registry.example.com/app").familiar == "registry.example.com/app"
    assert Repository.parse("busybox").familiar == "busybox"
    parsed = references.parse("localhost:5000/team/app:v1")
    assert Repository.of(parsed) == Repository("localhost:5000", "team/app")
    assert Repository.of(references.parse("busybox")) == Repository.parse("busybox")


def test_insecure_registry_rules() -> None:
    assert is_insecure("localhost:5000")
    assert is_insecure("127.0.0.1:5000") and is_insecure("127.9.9.9")
    assert is_insecure("[::1]:5000")
    assert not is_insecure("registry.example.com")
    assert not is_insecure("10.0.0.5:5000")
    assert is_insecure("10.0.0.5:5000", ["10.0.0.0/8"])
    assert is_insecure("myreg:5000", ["myreg:5000"])
    assert is_insecure("myreg:5000", ["myreg"])
    assert not is_insecure("myreg:5001", ["myreg:5000"])
    assert resolve_endpoint("docker.io").base_urls == (("https://registry-1.docker.io", True),)
    assert resolve_endpoint("localhost:5000").base_urls == (
        ("https://localhost:5000", False), ("http://localhost:5000", False))
