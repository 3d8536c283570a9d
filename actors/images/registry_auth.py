"""Registry credentials as Docker carries them.

- `X-Registry-Auth` (pull, push, service create): base64url of a JSON AuthConfig
  `{username, password, auth, email, serveraddress, identitytoken, registrytoken}`; the
  CLI sends `e30=` (`{}`) when it has nothing. `X-Registry-Config` (build): base64url of a
  JSON map from registry host to AuthConfig.
- `config.json` (`~/.docker/config.json` for the docker CLI; the flotta client uses the
  same format): `{"auths": {"<server>": {"auth": base64("user:password"),
  "identitytoken": "..."}}}`. Docker Hub's key is `https://index.docker.io/v1/`; other
  registries are keyed by `host[:port]` (older files may carry a scheme or a path, which
  lookups ignore). The file is rewritten atomically with mode 0600 and keeps every key
  it does not manage (credsStore, proxies, ...).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

import attrs

from actors.images.distribution import DOCKER_HUB_DOMAIN, Credentials
from runtime.disk import atomic_write

DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


class InvalidRegistryAuth(ValueError):
    """An `X-Registry-Auth` / `X-Registry-Config` header or config entry that cannot be read."""


@attrs.frozen
class AuthConfig:
    username: str = ""
    password: str = ""
    auth: str = ""
    email: str = ""
    server_address: str = ""
    identity_token: str = ""
    registry_token: str = ""

    def credentials(self) -> Credentials:
        """The username/password (from `auth` when only it is set) and tokens."""
        username, password = self.username, self.password
        if not username and self.auth:
            username, password = _split_auth(self.auth)
        return Credentials(username, password, self.identity_token, self.registry_token)

    def to_json(self) -> dict[str, str]:
        fields = {
            "username": self.username, "password": self.password, "auth": self.auth,
            "email": self.email, "serveraddress": self.server_address,
            "identitytoken": self.identity_token, "registrytoken": self.registry_token,
        }
        return {key: value for key, value in fields.items() if value}


_JSON_FIELDS = {
    "username": "username", "password": "password", "auth": "auth", "email": "email",
    "serveraddress": "server_address", "identitytoken": "identity_token",
    "registrytoken": "registry_token",
}


def _split_auth(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRegistryAuth(f"invalid auth field: {exc}") from exc
    username, separator, password = decoded.partition(":")
    if not separator:
        raise InvalidRegistryAuth("invalid auth field: no ':' between username and password")
    return username, password


def _auth_config(document: Any, where: str) -> AuthConfig:
    if not isinstance(document, dict):
        raise InvalidRegistryAuth(f"{where} is not a JSON object")
    values = {}
    for key, value in document.items():
        field = _JSON_FIELDS.get(key.lower())
        if field is None:
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRegistryAuth(f"{where}: field {key!r} must be a string")
        values[field] = value
    return AuthConfig(**values)


def _b64_json(header: str, what: str) -> Any:
    # base64url as Docker sends it; standard base64 (older docker-py) decodes the same way.
    text = header.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRegistryAuth(f"invalid {what} header: not base64: {exc}") from exc
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidRegistryAuth(f"invalid {what} header: not JSON: {exc}") from exc


def decode_registry_auth(header: str | None) -> AuthConfig:
    """`X-Registry-Auth` → AuthConfig (empty when the header is absent or `{}`)."""
    if header is None or not header.strip():
        return AuthConfig()
    return _auth_config(_b64_json(header, "X-Registry-Auth"), "X-Registry-Auth")


def encode_registry_auth(config: AuthConfig) -> str:
    return base64.urlsafe_b64encode(json.dumps(config.to_json()).encode()).decode()


def decode_registry_config(header: str | None) -> dict[str, AuthConfig]:
    """`X-Registry-Config` → {registry: AuthConfig}."""
    if header is None or not header.strip():
        return {}
    document = _b64_json(header, "X-Registry-Config")
    if not isinstance(document, dict):
        raise InvalidRegistryAuth("X-Registry-Config is not a JSON object")
    return {str(key): _auth_config(value, f"X-Registry-Config[{key!r}]")
            for key, value in document.items()}


def config_key(registry: str) -> str:
    """The `auths` key for a registry: Docker Hub's legacy URL, else `host[:port]`."""
    host = _normalize(registry)
    return DOCKER_HUB_CONFIG_KEY if host in _HUB_ALIASES else host


def _normalize(key: str) -> str:
    text = key.strip()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.split("/", 1)[0]


class DockerConfig:
    """A Docker-style `config.json`: read and update its `auths`."""

    def __init__(self, path: str | os.PathLike[str], document: dict[str, Any]) -> None:
        self.path = Path(path)
        self.document = document

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DockerConfig:
        """Read the file; a missing file is an empty config, a malformed one an error."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return cls(path, {})
        try:
            document = json.loads(data) if data.strip() else {}
        except ValueError as exc:
            raise InvalidRegistryAuth(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise InvalidRegistryAuth(f"{path}: not a JSON object")
        auths = document.get("auths", {})
        if not isinstance(auths, dict):
            raise InvalidRegistryAuth(f"{path}: \"auths\" is not an object")
        return cls(path, document)

    def _auths(self) -> dict[str, Any]:
        auths = self.document.setdefault("auths", {})
        assert isinstance(auths, dict)
        return auths

    def _find_key(self, registry: str) -> str | None:
        wanted = config_key(registry)
        for key in self._auths():
            if key == wanted or config_key(key) == wanted:
                return key
        return None

    def get(self, registry: str) -> AuthConfig | None:
        key = self._find_key(registry)
        if key is None:
            return None
        config = _auth_config(self._auths()[key], f"{self.path}: auths[{key!r}]")
        if config.auth and not config.username:
            username, password = _split_auth(config.auth)
            config = attrs.evolve(config, username=username, password=password)
        return attrs.evolve(config, server_address=config.server_address or key)

    def set(self, registry: str, config: AuthConfig) -> None:
        """Store credentials as Docker does: `auth` = base64(user:password), or the
        identity token (and the username) in place of the password."""
        key = self._find_key(registry) or config_key(registry)
        entry: dict[str, str] = {}
        if config.identity_token:
            entry["auth"] = base64.b64encode(f"{config.username}:".encode()).decode()
            entry["identitytoken"] = config.identity_token
        else:
            raw = f"{config.username}:{config.password}".encode()
            entry["auth"] = base64.b64encode(raw).decode()
        self._auths()[key] = entry

    def remove(self, registry: str) -> bool:
        key = self._find_key(registry)
        if key is None:
            return False
        del self._auths()[key]
        return True

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.document, indent="\t").encode() + b"\n"
        atomic_write(self.path, data, mode=0o600)

    def credentials_for(self, domain: str) -> Credentials | None:
        """For `DistributionClient(credentials=config.credentials_for)`."""
        config = self.get(DOCKER_HUB_DOMAIN if domain in _HUB_ALIASES else domain)
        return config.credentials() if config is not None else None
