"""Who may do what on the built-in registry: no auth, HTTP Basic, or Bearer tokens.

- `open`: everyone may do everything (the default on loopback).
- `basic`: every request carries `Authorization: Basic` for a configured user; otherwise
  401 with `WWW-Authenticate: Basic realm=...`.
- `token`: the distribution token flow, served by this same server at `/token`. A request
  without a sufficient token gets 401 with `WWW-Authenticate: Bearer realm="<this
  server>/token",service=...,scope="repository:<name>:<actions>"`; the client fetches a
  token for that scope (Basic credentials or anonymously) and retries.

Grants: a configured user gets every action asked for; an anonymous client gets `pull`
only when `anonymous_pull` is on, otherwise nothing (it still gets a token, as Docker Hub
does, and the registry then refuses it). Tokens are opaque to clients: an HMAC-signed JSON
payload with the subject, the granted access and an expiry; the key lives only in memory,
so tokens die with the server, and refresh tokens (for `docker login` identity tokens) too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from runtime.httpserver import Request

SERVICE_NAME = "flotta-registry"
TOKEN_LIFETIME_SECONDS = 300
REFRESH_TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600
ACTIONS = ("pull", "push", "delete")


@attrs.frozen
class Access:
    """One scope entry: `repository:library/x:pull,push` or `registry:catalog:*`."""

    type: str
    name: str
    actions: tuple[str, ...]

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scope(text: str) -> list[Access]:
    """Scopes as clients send them: space-separated, each `type:name:actions` (the name may
    hold a port, `localhost:5000/x`, so the actions are after the last colon)."""
    found = []
    for item in text.split():
        kind, _, rest = item.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            continue
        found.append(Access(kind, name, tuple(a for a in actions.split(",") if a)))
    return found


class AccessDenied(Exception):
    """401: the client must authenticate (or get a better token); `challenge` says how."""

    def __init__(self, challenge: str, code: str = "UNAUTHORIZED",
                 message: str = "authentication required") -> None:
        super().__init__(message)
        self.challenge = challenge
        self.code = code
        self.message = message


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, separator, password = decoded.partition(":")
    return (user, password) if separator else None


def parse_users(specs: Sequence[str]) -> dict[str, str]:
    """`user:password` strings as given to `--auth`; ValueError names a malformed one."""
    users = {}
    for spec in specs:
        user, separator, password = spec.partition(":")
        if not separator or not user:
            raise ValueError(f"--auth expects user:password, got {spec!r}")
        users[user] = password
    return users


class AccessControl:
    """Decides each request; `mode` is `open`, `basic` or `token`."""

    def __init__(
        self,
        mode: str = "open",
        users: Mapping[str, str] | None = None,
        *,
        anonymous_pull: bool = False,
        realm: str | None = None,
        clock: Any = time.time,
    ) -> None:
        if mode not in ("open", "basic", "token"):
            raise ValueError(f"unknown auth mode {mode!r}")
        if mode != "open" and not users:
            raise ValueError(f"auth mode {mode!r} needs at least one user")
        self.mode = mode
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.realm = realm  # token endpoint URL; None: derived from each request's Host
        self._key = secrets.token_bytes(32)
        self._clock = clock

    # -- checking requests

    def _valid_user(self, credentials: tuple[str, str] | None) -> str | None:
        if credentials is None:
            return None
        user, password = credentials
        expected = self.users.get(user)
        if expected is not None and hmac.compare_digest(expected.encode(), password.encode()):
            return user
        return None

    def token_realm(self, request: Request, scheme: str) -> str:
        if self.realm is not None:
            return self.realm
        host = request.headers.get("host") or "localhost"
        return f"{scheme}://{host}/token"

    def check(self, request: Request, needed: Access | None, scheme: str) -> None:
        """Raise AccessDenied unless the request may do `needed` (None: just be known)."""
        if self.mode == "open":
            return
        authorization = request.headers.get("authorization")
        if self.mode == "basic":
            if self._valid_user(parse_basic(authorization)) is None:
                raise AccessDenied(f'Basic realm="{SERVICE_NAME}"')
            return
        challenge = f'Bearer realm="{self.token_realm(request, scheme)}",service="{SERVICE_NAME}"'
        if needed is not None:
            challenge += f',scope="{needed.scope()}"'
        if not authorization or authorization[:7].lower() != "bearer ":
            raise AccessDenied(challenge)
        claims = self.verify_token(authorization[7:].strip())
        if claims is None:
            raise AccessDenied(challenge)
        if needed is None:
            return
        granted = {
            action
            for entry in claims.get("access", [])
            if entry.get("type") == needed.type and entry.get("name") == needed.name
            for action in entry.get("actions", [])
        }
        if "*" in granted or all(action in granted for action in needed.actions):
            return
        raise AccessDenied(challenge + ',error="insufficient_scope"', "DENIED",
                           "requested access to the resource is denied")

    # -- tokens

    def _sign(self, claims: dict[str, Any]) -> str:
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return f"{payload}.{_b64encode(mac)}"

    def verify_token(self, token: str, *, refresh: bool = False) -> dict[str, Any] | None:
        payload, _, signature = token.partition(".")
        try:
            expected = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _b64decode(signature)):
                return None
            claims = json.loads(_b64decode(payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(claims, dict) or claims.get("exp", 0) < self._clock():
            return None
        if bool(claims.get("refresh")) != refresh:
            return None
        return claims

    def grant(self, subject: str | None, scopes: Sequence[Access]) -> list[dict[str, Any]]:
        granted = []
        for access in scopes:
            if subject is not None:
                actions = list(access.actions)
            elif self.anonymous_pull and access.type == "repository":
                actions = [action for action in access.actions if action == "pull"]
            else:
                actions = []
            granted.append({"type": access.type, "name": access.name, "actions": actions})
        return granted

    def issue(self, subject: str | None, scopes: Sequence[Access], *,
              with_refresh_token: bool = False) -> dict[str, Any]:
        now = self._clock()
        claims = {"sub": subject or "", "access": self.grant(subject, scopes),
                  "iat": int(now), "exp": int(now) + TOKEN_LIFETIME_SECONDS}
        token = self._sign(claims)
        answer: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }
        if with_refresh_token and subject is not None:
            answer["refresh_token"] = self._sign({
                "sub": subject, "refresh": True, "exp": int(now) + REFRESH_TOKEN_LIFETIME_SECONDS,
            })
        return answer

    def token_for_request(self, authorization: str | None, query: Mapping[str, list[str]]
                          ) -> dict[str, Any]:
        """GET /token: Basic credentials (or none) and `scope` parameters → a token.
        Raises AccessDenied for credentials that are wrong (not for missing ones)."""
        credentials = parse_basic(authorization)
        subject = self._valid_user(credentials)
        if credentials is not None and subject is None:
            raise AccessDenied(f'Basic realm="{SERVICE_NAME}"', "UNAUTHORIZED",
                               "incorrect username or password")
        scopes = [access for text in query.get("scope", []) for access in parse_scope(text)]
        offline = (query.get("offline_token") or ["false"])[0].lower() == "true"
        return self.issue(subject, scopes, with_refresh_token=offline)

    def token_for_form(self, form: Mapping[str, list[str]]) -> dict[str, Any]:
        """POST /token (OAuth2): `grant_type=password|refresh_token`."""
        grant_type = (form.get("grant_type") or [""])[0]
        scopes = [access for text in form.get("scope", []) for access in parse_scope(text)]
        if grant_type == "password":
            credentials = ((form.get("username") or [""])[0], (form.get("password") or [""])[0])
            subject = self._valid_user(credentials)
        elif grant_type == "refresh_token":
            claims = self.verify_token((form.get("refresh_token") or [""])[0], refresh=True)
            subject = claims.get("sub") if claims else None
        else:
            raise ValueError(f"unsupported grant_type {grant_type!r}")
        if subject is None:
            raise AccessDenied(f'Basic realm="{SERVICE_NAME}"', "UNAUTHORIZED",
                               "incorrect username or password")
        answer = self.issue(subject, scopes, with_refresh_token=True)
        answer["scope"] = " ".join(access.scope() for access in scopes)
        return answer
