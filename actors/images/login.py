"""`docker login` as the daemon does it (`POST /auth`): check credentials against the
registry and answer `Login Succeeded`, with an identity token when the registry's token
service issued a refresh token (the client then stores the token instead of the password).

Wrong credentials raise `Unauthorized` (401, `unauthorized: incorrect username or
password`); an unreachable registry `RegistryUnavailable` (500).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from actors.images.distribution import DOCKER_HUB_DOMAIN, Credentials
from actors.images.pull import ClientFactory, open_client

__all__ = ["LOGIN_SUCCEEDED", "LoginResult", "login", "login_domain"]

LOGIN_SUCCEEDED = "Login Succeeded"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io",
                          "registry.hub.docker.com"})


@attrs.frozen
class LoginResult:
    status: str  # "Login Succeeded"
    identity_token: str = ""  # the API's IdentityToken; empty unless the registry issued one


def login_domain(server: str) -> str:
    """The registry a `serveraddress` names: `https://index.docker.io/v1/` and the other
    Hub spellings are `docker.io`; otherwise `host[:port]` without scheme or path; empty
    means Docker Hub."""
    text = server.strip()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    host = text.split("/", 1)[0]
    if not host or host in _HUB_ALIASES:
        return DOCKER_HUB_DOMAIN
    return host


async def login(server: str, username: str, password: str,
                insecure_registries: Iterable[str] = (), *,
                client_factory: ClientFactory | None = None) -> LoginResult:
    """Verify `username`/`password` with the registry `server` names."""
    domain = login_domain(server)
    async with open_client(domain, Credentials(username, password), insecure_registries,
                           client_factory) as client:
        identity_token = await client.login(domain)
    return LoginResult(LOGIN_SUCCEEDED, identity_token)
