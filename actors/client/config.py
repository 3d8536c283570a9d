"""Registry credentials in docker's config file (`$DOCKER_CONFIG/config.json`).

Credentials live under `auths` as base64("user:password") (or an identity token), keyed by
registry: `https://index.docker.io/v1/` for Docker Hub, `host[:port]` otherwise. When the
file names a credential helper (`credsStore`, `credHelpers`), `docker-credential-<name>`
is used instead, as docker does. Other keys of the file are kept untouched; writes are
atomic (temporary file, fsync, rename).
"""

import base64
import json
import os

HUB_ADDRESS = "https://index.docker.io/v1/"
HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io", HUB_ADDRESS)


class ConfigError(Exception):
    pass


def normalize_registry(address: str) -> str:
    """The key a registry's credentials are stored under."""
    address = address.strip()
    if not address or address in HUB_HOSTS or address.rstrip("/") in (
        "https://index.docker.io/v1", "https://index.docker.io", "https://docker.io",
    ):
        return HUB_ADDRESS
    for prefix in ("https://", "http://"):
        if address.startswith(prefix):
            address = address[len(prefix) :]
    return address.split("/", 1)[0]


class ConfigFile:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, "config.json")
        self.data: dict = {}
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return
        except OSError as error:
            raise ConfigError(f"could not read {self.path}: {error.strerror}") from None
        if text.strip():
            try:
                data = json.loads(text)
            except ValueError as error:
                raise ConfigError(f"{self.path} is not valid JSON: {error}") from None
            if not isinstance(data, dict):
                raise ConfigError(f"{self.path} does not hold a JSON object")
            self.data = data

    def save(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        temporary = self.path + ".tmp"
        payload = json.dumps(self.data, indent="\t") + "\n"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        directory_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)

    def uses_helper(self, registry: str) -> bool:
        return bool(self._helper(normalize_registry(registry)))

    def _helper(self, registry: str) -> str:
        helpers = self.data.get("credHelpers") or {}
        return helpers.get(registry) or self.data.get("credsStore") or ""

    def get_auth(self, registry: str) -> dict:
        """{"username", "password", "serveraddress"} (or identitytoken); {} if none stored."""
        key = normalize_registry(registry)
        helper = self._helper(key)
        if helper:
            return _helper_get(helper, key)
        auths = self.data.get("auths") or {}
        entry = auths.get(key)
        if entry is None:
            for stored, value in auths.items():
                if normalize_registry(stored) == key:
                    entry = value
                    break
        if not entry:
            return {}
        result = {"serveraddress": key}
        encoded = entry.get("auth") or ""
        if encoded:
            try:
                decoded = base64.b64decode(encoded).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise ConfigError(f"invalid auth configuration for {key}") from None
            username, _, password = decoded.partition(":")
            result["username"] = username
            result["password"] = password
        if entry.get("identitytoken"):
            result["identitytoken"] = entry["identitytoken"]
        return result

    def store_auth(self, registry: str, username: str, password: str,
                   identity_token: str = "") -> None:
        key = normalize_registry(registry)
        helper = self._helper(key)
        if helper:
            _helper_run(helper, "store", json.dumps(
                {"ServerURL": key, "Username": "<token>" if identity_token else username,
                 "Secret": identity_token or password}))
            self.data.setdefault("auths", {}).setdefault(key, {})
            self.save()
            return
        entry: dict = {}
        if identity_token:
            entry["auth"] = base64.b64encode(f"{username}:".encode()).decode()
            entry["identitytoken"] = identity_token
        else:
            entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.data.setdefault("auths", {})[key] = entry
        self.save()

    def remove_auth(self, registry: str) -> bool:
        """Forget a registry's credentials; False when there were none."""
        key = normalize_registry(registry)
        auths = self.data.get("auths") or {}
        found = False
        for stored in list(auths):
            if normalize_registry(stored) == key:
                del auths[stored]
                found = True
        helper = self._helper(key)
        if helper:
            try:
                _helper_run(helper, "erase", key)
                found = True
            except ConfigError:
                pass
        if found:
            self.save()
        return found


def _helper_run(helper: str, action: str, payload: str) -> str:
    import subprocess

    program = f"docker-credential-{helper}"
    try:
        result = subprocess.run([program, action], input=payload.encode(), capture_output=True,
                                timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError(f"error running credential helper {program}: {error}") from None
    if result.returncode != 0:
        message = (result.stdout or result.stderr).decode("utf-8", "replace").strip()
        raise ConfigError(message or f"credential helper {program} failed")
    return result.stdout.decode("utf-8", "replace")


def _helper_get(helper: str, key: str) -> dict:
    try:
        output = _helper_run(helper, "get", key)
    except ConfigError as error:
        if "credentials not found" in str(error).lower():
            return {}
        raise
    try:
        data = json.loads(output)
    except ValueError:
        raise ConfigError(f"credential helper {helper} returned invalid JSON") from None
    username = data.get("Username") or ""
    secret = data.get("Secret") or ""
    if username == "<token>":
        return {"serveraddress": key, "identitytoken": secret}
    return {"serveraddress": key, "username": username, "password": secret}


def encode_auth(auth: dict) -> str:
    """X-Registry-Auth: base64url of the JSON AuthConfig; `{}` when there are no creds."""
    payload = json.dumps(auth or {}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode()


def registry_auth_header(config_directory: str, registry: str) -> str:
    try:
        auth = ConfigFile(config_directory).get_auth(registry)
    except ConfigError:
        auth = {}
    return encode_auth(auth)
