"""Where a registry is and how to speak to it: repository names, Docker's endpoint and
insecure-registry rules, credentials, `WWW-Authenticate` challenges, and choosing the
platform's manifest from an index. Pure functions and values; no I/O."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

import attrs

from actors.images.registry_protocol import parse_manifest, platform_matches

DOCKER_HUB_DOMAIN = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"


@attrs.frozen
class Credentials:
    """What the caller knows about one registry (from `X-Registry-Auth` or config.json)."""

    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth2 refresh token from an earlier login
    registry_token: str = ""  # a bearer token to use as it is

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.identity_token or self.registry_token)


@attrs.frozen
class Repository:
    """A repository on a registry: `domain` as users write it, `path` without it."""

    domain: str
    path: str

    @classmethod
    def parse(cls, text: str) -> Repository:
        """`localhost:5000/app`, `docker.io/library/busybox`, `busybox` → a Repository."""
        first, separator, rest = text.partition("/")
        if separator and ("." in first or ":" in first or first == "localhost"):
            domain, path = first, rest
        else:
            domain, path = DOCKER_HUB_DOMAIN, text
        if domain == "index.docker.io":
            domain = DOCKER_HUB_DOMAIN
        if domain == DOCKER_HUB_DOMAIN and "/" not in path:
            path = f"library/{path}"
        return cls(domain, path)

    @classmethod
    def of(cls, reference: Any) -> Repository:
        """From anything with `domain` and `path` (actors.images.reference.Reference)."""
        return cls(reference.domain, reference.path)

    def __str__(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        if self.domain != DOCKER_HUB_DOMAIN:
            return str(self)
        return self.path.removeprefix("library/")


def _split_host(domain: str) -> tuple[str, int | None]:
    if domain.startswith("["):
        host, _, rest = domain[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = domain.partition(":")
    return host, int(port) if port.isdigit() else None


def is_insecure(domain: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Docker's rule: listed as `host:port` or `host`, inside a listed CIDR, or loopback."""
    host, _ = _split_host(domain)
    networks = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    for entry in insecure_registries:
        entry = entry.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
        if entry in (domain, host):
            return True
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


@attrs.frozen
class Endpoint:
    domain: str
    base_urls: tuple[tuple[str, bool], ...]  # (https://api-host, verify) in the order tried


def resolve_endpoint(domain: str, insecure_registries: Iterable[str] = ()) -> Endpoint:
    api_host = DOCKER_HUB_API_HOST if domain in (DOCKER_HUB_DOMAIN, "index.docker.io") else domain
    if is_insecure(domain, insecure_registries):
        return Endpoint(domain, ((f"https://{api_host}", False), (f"http://{api_host}", False)))
    return Endpoint(domain, ((f"https://{api_host}", True),))


_CHALLENGE_PARAMETER = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…",scope="…"` → ("bearer", {parameters})."""
    scheme, _, rest = header.strip().partition(" ")
    parameters = {}
    for match in _CHALLENGE_PARAMETER.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        parameters[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), parameters


def select_platform(index: bytes, platform: str = "linux/amd64") -> str | None:
    """The digest of the index entry for `platform` (`os/arch[/variant]`), skipping
    attestation manifests; None when there is none."""
    parts = platform.split("/")
    os_name, architecture = parts[0], parts[1] if len(parts) > 1 else "amd64"
    variant = parts[2] if len(parts) > 2 else None
    parsed = parse_manifest(index, None)
    for entry in parsed.manifests:
        annotations = entry.annotations or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if platform_matches(entry.platform, os_name, architecture, variant):
            return entry.digest
    return None
