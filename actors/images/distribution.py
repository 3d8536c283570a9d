"""The distribution-protocol client: pull and push manifests and blobs, on httpx under Trio.

What it does, in the order a pull or push meets it:

- Endpoint: `docker.io` is reached at `registry-1.docker.io`; a registry is *insecure*
  when its host is in `insecure_registries` (as `host:port`, `host`, or a CIDR) or is a
  loopback address (127.0.0.0/8, ::1, `localhost`), as Docker treats 127.0.0.0/8. Insecure
  registries are tried over HTTPS without certificate verification first and over plain
  HTTP when that fails; secure ones only over verified HTTPS. The choice is made once per
  registry by `GET /v2/`.
- Auth: the answer to `GET /v2/` says how. `Basic` → the caller's username/password on
  every request. `Bearer` → a token from the realm for the scope each request needs
  (`repository:<repo>:pull` or `pull,push`, plus `pull` on a mount's source), fetched with
  Basic credentials, an identity (refresh) token, or anonymously; tokens are cached per
  scope until shortly before they expire. A 401 carrying a new challenge is answered once
  with a fresh token.
- Manifests: fetched with the Accept list of Docker schema2 and OCI manifests and indexes,
  verified against the digest asked for (or the `Docker-Content-Digest` the registry
  gave), and resolved from an index to the requested platform (linux/amd64 by default).
- Blobs: streamed to a caller's sink, verified by digest and size; a dropped connection
  resumes with `Range` from the bytes already delivered, up to `attempts_max` tries with
  exponential backoff. Pushes check existence (HEAD) first, try a cross-repository mount
  when the caller names a source, send small blobs in one request and large ones in
  `chunk_bytes` PATCHes, and after a failure resume from the Range the registry reports.

Errors are `DistributionError`s whose messages are Docker's, and whose `status` is the
HTTP status the daemon should answer with.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlencode, urljoin

import attrs
import httpcore
import httpx
import trio

from actors.images.registry_endpoints import (
    DOCKER_HUB_API_HOST,
    DOCKER_HUB_DOMAIN,
    Credentials,
    Endpoint,
    Repository,
    is_insecure,
    parse_challenge,
    resolve_endpoint,
    select_platform,
)
from actors.images.registry_errors import (
    AccessDenied,
    DistributionError,
    NotFound,
    RegistryUnavailable,
    Unauthorized,
    VerificationFailed,
)
from actors.images.registry_protocol import (
    INDEX_TYPES,
    MANIFEST_ACCEPT,
    MANIFEST_TYPES,
    RegistryError,
    check_digest,
    new_hasher,
    parse_error_body,
    parse_manifest,
)
from actors.images.registry_transfer import (
    ChunkReader,
    TransportFailure,
    abandon_stream,
    content_range_start,
    describe,
    location_of,
    next_link,
    report_from,
    same_origin,
    with_query,
)

__all__ = [
    "DOCKER_HUB_API_HOST",
    "DOCKER_HUB_DOMAIN",
    "AccessDenied",
    "Credentials",
    "DistributionClient",
    "DistributionError",
    "Endpoint",
    "NotFound",
    "PulledManifest",
    "RegistryUnavailable",
    "Repository",
    "Unauthorized",
    "VerificationFailed",
    "is_insecure",
    "parse_challenge",
    "resolve_endpoint",
    "select_platform",
]

USER_AGENT = "flotta/0.1 (distribution client)"
# Bytes asked of the socket per read of an HTTP/1.1 response (httpcore's default is
# 64 KiB). A blob download runs recv, the digest update and the sink once per read, on
# the event loop: 1 MiB reads make a 50 MiB layer 50 steps instead of 800 and roughly
# halve its download time on loopback. Memory stays bounded (one read at a time
# per connection). httpcore keeps the size on the connection class, which every
# client in the process shares; it only ever grows here.
HTTP_READ_BYTES = 1 << 20
_HTTP11 = getattr(getattr(httpcore, "AsyncHTTP11Connection", None), "READ_NUM_BYTES", None)
if isinstance(_HTTP11, int) and _HTTP11 < HTTP_READ_BYTES:
    httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = HTTP_READ_BYTES
CONFIG_BYTES_MAX = 16 * 1024 * 1024
MANIFEST_BYTES_MAX = 4 * 1024 * 1024


@attrs.frozen
class PulledManifest:
    """An image manifest resolved for one platform, with its config."""

    repository: Repository
    manifest: bytes
    media_type: str
    digest: str  # of `manifest`
    config: bytes
    config_digest: str
    layers: tuple[dict[str, Any], ...]  # the manifest's layer descriptors, as JSON objects
    index_digest: str | None  # the index the manifest was picked from, if any
    repo_digest: str  # what `docker images --digests` shows: the index's, else the manifest's


Progress = Callable[[int, int | None], None]
Sink = Callable[[bytes], Awaitable[None]]
SourceOpener = Callable[[int], AsyncIterator[bytes]]


def _no_progress(done: int, total: int | None) -> None:
    return None



@attrs.define
class _RegistryState:
    base_url: str
    verify: bool
    client: httpx.AsyncClient
    scheme: str = ""  # "", "basic" or "bearer"
    challenge: dict[str, str] = attrs.field(factory=dict)
    tokens: dict[str, tuple[str, float]] = attrs.field(factory=dict)  # scope -> (token, until)


def _basic(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class DistributionClient:
    """One client for every registry it talks to; `aclose` releases its connections.

    `credentials` maps a registry domain (`docker.io`, `localhost:5000`) to Credentials,
    or is a function of the domain; missing means anonymous.
    """

    def __init__(
        self,
        *,
        credentials: dict[str, Credentials] | Callable[[str], Credentials | None] | None = None,
        insecure_registries: Iterable[str] = (),
        attempts_max: int = 5,
        backoff_seconds: float = 0.2,
        backoff_seconds_max: float = 5.0,
        chunk_bytes: int = 16 * 1024 * 1024,
        monolithic_bytes_max: int = 1024 * 1024,
        timeout_seconds: float = 60.0,
    ) -> None:
        self._credentials = credentials or {}
        self.insecure_registries = tuple(insecure_registries)
        self.attempts_max = attempts_max
        self.backoff_seconds = backoff_seconds
        self.backoff_seconds_max = backoff_seconds_max
        self.chunk_bytes = chunk_bytes
        self.monolithic_bytes_max = monolithic_bytes_max
        self.timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 15.0))
        self._registries: dict[str, _RegistryState] = {}
        self._clients: list[httpx.AsyncClient] = []
        self._ping_lock = trio.Lock()

    async def __aenter__(self) -> DistributionClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        self._registries.clear()

    def credentials_for(self, domain: str) -> Credentials:
        if callable(self._credentials):
            found = self._credentials(domain)
        else:
            found = self._credentials.get(domain)
        return found or Credentials()

    # -- connection and auth

    def _new_client(self, verify: bool) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            verify=verify, timeout=self.timeout, follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._clients.append(client)
        return client

    async def _registry(self, domain: str) -> _RegistryState:
        """Find how to reach `domain` and how it wants to be authenticated (GET /v2/)."""
        state = self._registries.get(domain)
        if state is not None:
            return state
        async with self._ping_lock:
            state = self._registries.get(domain)
            if state is not None:
                return state
            endpoint = resolve_endpoint(domain, self.insecure_registries)
            failures = []
            for base_url, verify in endpoint.base_urls:
                client = self._new_client(verify)
                try:
                    response = await client.get(f"{base_url}/v2/")
                except httpx.TransportError as exc:
                    failures.append(f"Get \"{base_url}/v2/\": {describe(exc)}")
                    continue
                if response.status_code not in (200, 401):
                    failures.append(f"Get \"{base_url}/v2/\": unexpected status "
                                    f"{response.status_code}")
                    continue
                state = _RegistryState(base_url, verify, client)
                self._learn_challenge(state, response)
                self._registries[domain] = state
                return state
            raise RegistryUnavailable("; ".join(failures) or f"cannot reach registry {domain}")

    @staticmethod
    def _learn_challenge(state: _RegistryState, response: httpx.Response) -> None:
        header = response.headers.get("www-authenticate")
        if response.status_code != 401 or not header:
            return
        scheme, parameters = parse_challenge(header)
        if scheme in ("basic", "bearer"):
            state.scheme = scheme
            state.challenge = parameters

    async def _authorization(self, domain: str, state: _RegistryState, scopes: list[str]
                             ) -> str | None:
        credentials = self.credentials_for(domain)
        if state.scheme == "basic":
            return _basic(credentials) if credentials.username else None
        if state.scheme != "bearer":
            return None
        if credentials.registry_token:
            return f"Bearer {credentials.registry_token}"
        key = " ".join(sorted(scopes))
        cached = state.tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return f"Bearer {cached[0]}"
        token, lifetime = await self._fetch_token(domain, state, scopes, credentials)
        # Renew a little early so a request never carries a token that expires in flight.
        state.tokens[key] = (token, time.monotonic() + max(lifetime - 10, lifetime / 2))
        return f"Bearer {token}"

    async def _fetch_token(self, domain: str, state: _RegistryState, scopes: list[str],
                           credentials: Credentials) -> tuple[str, float]:
        realm = state.challenge.get("realm")
        if not realm:
            raise Unauthorized(f"registry {domain} sent a Bearer challenge without a realm")
        service = state.challenge.get("service", "")
        try:
            if credentials.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": credentials.identity_token,
                        "service": service, "client_id": "flotta", "scope": " ".join(scopes)}
                response = await state.client.post(realm, data=form)
            else:
                query: list[tuple[str, str]] = [("service", service)]
                query += [("scope", scope) for scope in scopes]
                headers = {}
                if credentials.username:
                    headers["Authorization"] = _basic(credentials)
                    query += [("account", credentials.username)]
                separator = "&" if "?" in realm else "?"
                response = await state.client.get(f"{realm}{separator}{urlencode(query)}",
                                                  headers=headers)
        except httpx.TransportError as exc:
            raise RegistryUnavailable(f"Get \"{realm}\": {describe(exc)}") from exc
        if response.status_code in (401, 403):
            raise Unauthorized("unauthorized: incorrect username or password"
                               if not credentials.anonymous else
                               "unauthorized: authentication required", code="UNAUTHORIZED")
        if response.status_code != 200:
            raise RegistryUnavailable(
                f"token service {realm} answered {response.status_code}")
        try:
            document = response.json()
        except ValueError as exc:
            raise RegistryUnavailable(f"token service {realm} answered invalid JSON") from exc
        token = document.get("token") or document.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryUnavailable(f"token service {realm} answered without a token")
        lifetime = document.get("expires_in")
        lifetime = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 60.0
        return token, lifetime

    async def _send(
        self,
        method: str,
        repository: Repository,
        url_path: str,
        *,
        actions: tuple[str, ...] = ("pull",),
        extra_scopes: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        content: Any = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request to the repository's registry with auth; a 401 with a (new)
        challenge is retried once with a fresh token. `url_path` may be absolute."""
        state = await self._registry(repository.domain)
        scopes = [f"repository:{repository.path}:{','.join(actions)}", *extra_scopes]
        url = urljoin(state.base_url + "/", url_path)
        for attempt in range(2):
            request_headers = dict(headers or {})
            authorization = await self._authorization(repository.domain, state, scopes)
            if authorization and same_origin(url, state.base_url):
                request_headers["Authorization"] = authorization
            if isinstance(content, httpx.AsyncByteStream):
                request = state.client.build_request(method, url, headers=request_headers)
                request.stream = content
            else:
                request = state.client.build_request(method, url, headers=request_headers,
                                                     content=content)
            try:
                response = await state.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                raise TransportFailure(exc, url) from exc
            replayable = content is None or isinstance(content, bytes)
            if response.status_code != 401 or attempt == 1 or not replayable:
                return response
            challenge = response.headers.get("www-authenticate", "")
            before = (state.scheme, dict(state.challenge))
            self._learn_challenge(state, response)
            if state.scheme == "bearer":
                # The token expired or lacks a scope the registry named: get a fresh one.
                state.tokens.pop(" ".join(sorted(scopes)), None)
                scope = state.challenge.get("scope")
                if scope and scope not in scopes:
                    scopes.append(scope)
            elif (state.scheme, state.challenge) == before or not challenge:
                return response  # nothing new to try; the caller reports the 401
            await response.aclose()
        raise AssertionError("unreachable")

    # -- errors

    async def _raise_for(self, response: httpx.Response, repository: Repository,
                         what: str, pushing: bool = False) -> None:
        if response.status_code < 400:
            return
        await response.aread()
        errors = parse_error_body(response.content)
        code = str(errors[0].get("code", "")) if errors else ""
        detail = str(errors[0].get("message", "")) if errors else ""
        status = response.status_code
        if status == 401 and not code:
            # A HEAD answer has no body: the challenge says whether the token was merely
            # missing or was refused for lack of scope.
            _, challenge = parse_challenge(response.headers.get("www-authenticate", ""))
            if challenge.get("error") == "insufficient_scope":
                code = "DENIED"
        # Docker prints a registry error as "<code in words>: <message>".
        cause = f"{code.lower().replace('_', ' ')}: {detail}" if code else "not found"
        if code == "NAME_UNKNOWN" and not pushing:
            raise NotFound(f"repository {repository.familiar} not found: {cause}", code=code)
        anonymous = self.credentials_for(repository.domain).anonymous
        if status == 401 and code != "DENIED" and not anonymous:
            raise Unauthorized("unauthorized: incorrect username or password", code=code)
        if status == 401 and code != "DENIED" and pushing:
            state = self._registries.get(repository.domain)
            if state is not None and state.scheme == "basic":
                raise Unauthorized("no basic auth credentials", code=code)
            raise Unauthorized("unauthorized: authentication required", code=code)
        if status in (401, 403) or code in ("DENIED", "UNAUTHORIZED"):
            if pushing:
                raise AccessDenied("denied: requested access to the resource is denied",
                                   status=403 if status == 403 else 401, code=code)
            raise AccessDenied(
                f"pull access denied for {repository.familiar}, repository does not exist or "
                f"may require 'docker login': denied: requested access to the resource is denied",
                code=code)
        if status == 404:
            raise NotFound(f"{what} not found: {cause}", code=code)
        if status == 429:
            raise DistributionError("toomanyrequests: too many requests", status=429, code=code)
        message = f"{code.lower()}: {detail}" if code else f"unexpected status {status}"
        raise DistributionError(f"{what}: {message}", status=500 if status >= 500 else 400,
                                code=code)

    # -- manifests

    async def get_manifest(self, repository: Repository, reference: str,
                           accept: str = MANIFEST_ACCEPT) -> tuple[bytes, str, str]:
        """The manifest `reference` (tag or digest) names: (bytes, media type, digest),
        verified against the digest asked for or the one the registry reported."""
        what = f"manifest for {repository.familiar}{'@' if ':' in reference else ':'}{reference}"
        response = await self._with_retries(lambda: self._send(
            "GET", repository, f"/v2/{repository.path}/manifests/{reference}",
            headers={"Accept": accept}))
        await self._raise_for(response, repository, what)
        data = response.content
        if len(data) > MANIFEST_BYTES_MAX:
            raise VerificationFailed(f"{what} is larger than {MANIFEST_BYTES_MAX} bytes")
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        if not data:
            raise VerificationFailed(f"{what} is empty")
        try:
            parsed = parse_manifest(data, media_type)
        except RegistryError as exc:
            raise DistributionError(f"{what}: {exc.message}", code=exc.code) from exc
        expected = reference if ":" in reference else response.headers.get(
            "docker-content-digest")
        algorithm = expected.split(":", 1)[0] if expected and ":" in expected else "sha256"
        try:
            digest = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
        except ValueError as exc:
            raise VerificationFailed(f"{what}: unsupported digest {expected}") from exc
        if expected and digest != expected:
            raise VerificationFailed(
                f"manifest verification failed for digest {expected}: got {digest}")
        if algorithm != "sha256":
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
        return data, parsed.media_type, digest

    async def pull_manifest(self, repository: Repository | str, reference: str = "latest",
                            *, platform: str = "linux/amd64") -> PulledManifest:
        """Resolve `reference` to the image manifest for `platform` and fetch its config."""
        if isinstance(repository, str):
            repository = Repository.parse(repository)
        data, media_type, digest = await self.get_manifest(repository, reference)
        index_digest = None
        if media_type in INDEX_TYPES:
            index_digest = digest
            choice = select_platform(data, platform)
            if choice is None:
                raise NotFound(
                    f"no matching manifest for {platform} in the manifest list entries",
                    code="MANIFEST_UNKNOWN")
            data, media_type, digest = await self.get_manifest(repository, choice)
            if media_type not in MANIFEST_TYPES - INDEX_TYPES:
                raise VerificationFailed(f"manifest {choice} is a {media_type}, not an image")
        document = json.loads(data)
        config_descriptor = document["config"]
        config = await self.fetch_blob_bytes(repository, config_descriptor["digest"],
                                             config_descriptor.get("size"), CONFIG_BYTES_MAX)
        return PulledManifest(
            repository, data, media_type, digest, config, config_descriptor["digest"],
            tuple(document.get("layers", [])), index_digest, index_digest or digest)

    async def push_manifest(self, repository: Repository | str, tag: str, body: bytes,
                            media_type: str) -> str:
        """PUT the manifest under `tag` (or a digest); returns its sha256 digest."""
        if isinstance(repository, str):
            repository = Repository.parse(repository)
        response = await self._with_retries(lambda: self._send(
            "PUT", repository, f"/v2/{repository.path}/manifests/{tag}",
            actions=("pull", "push"), headers={"Content-Type": media_type}, content=body))
        await self._raise_for(response, repository, f"manifest {repository.familiar}:{tag}",
                              pushing=True)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        reported = response.headers.get("docker-content-digest")
        if reported and reported != digest:
            raise VerificationFailed(f"registry stored manifest as {reported}, expected {digest}")
        return digest

    async def list_tags(self, repository: Repository | str) -> list[str]:
        """Every tag of the repository, following Link pagination."""
        if isinstance(repository, str):
            repository = Repository.parse(repository)
        tags: list[str] = []
        url: str | None = f"/v2/{repository.path}/tags/list"
        while url is not None:
            response = await self._send("GET", repository, url)
            await self._raise_for(response, repository, f"tags of {repository.familiar}")
            tags += response.json().get("tags") or []
            url = next_link(response.headers.get("link"))
        return tags

    # -- blobs: download

    async def fetch_blob_bytes(self, repository: Repository, digest: str,
                               size: int | None = None, size_max: int = CONFIG_BYTES_MAX) -> bytes:
        parts: list[bytes] = []
        total = 0

        async def collect(chunk: bytes) -> None:
            nonlocal total
            total += len(chunk)
            if total > size_max:
                raise VerificationFailed(f"blob {digest} is larger than {size_max} bytes")
            parts.append(chunk)

        await self.fetch_blob(repository, digest, collect, size=size)
        return b"".join(parts)

    async def fetch_blob(self, repository: Repository | str, digest: str, sink: Sink,
                         progress: Progress = _no_progress, *, size: int | None = None) -> int:
        """Stream the blob to `sink`, verifying digest and size; resumes a broken download
        with Range. Returns the size. On VerificationFailed the sink got bad bytes: the
        caller discards them."""
        if isinstance(repository, str):
            repository = Repository.parse(repository)
        check_digest(digest)
        hasher = new_hasher(digest)
        received = 0
        failures = 0
        url = f"/v2/{repository.path}/blobs/{digest}"
        while True:
            try:
                received = await self._download_once(repository, url, digest, received, hasher,
                                                     sink, progress, size)
                break
            except TransportFailure as exc:
                if exc.offset is not None:
                    received = exc.offset  # what the sink has: resume right after it
                failures += 1
                if failures >= self.attempts_max:
                    raise RegistryUnavailable(
                        f"downloading {digest}: {describe(exc.cause)} "
                        f"(gave up after {failures} attempts)") from exc
                await trio.sleep(self._backoff(failures))
        actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
        if actual != digest:
            raise VerificationFailed(f"filesystem layer verification failed for digest {digest}")
        if size is not None and received != size:
            raise VerificationFailed(
                f"blob {digest}: received {received} bytes, expected {size}")
        return received

    async def _download_once(self, repository: Repository, url: str, digest: str, offset: int,
                             hasher: Any, sink: Sink, progress: Progress, size: int | None) -> int:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        for _ in range(5):  # redirects, each to be followed by hand (auth is per origin)
            response = await self._send("GET", repository, url, headers=headers, stream=True)
            if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                url = urljoin(str(response.url), response.headers["location"])
                await response.aclose()
                continue
            break
        else:
            raise RegistryUnavailable(f"too many redirects fetching {digest}")
        try:
            if response.status_code == 416 and size is not None and offset == size:
                return offset
            if response.status_code >= 500:
                raise TransportFailure(
                    httpx.ReadError(f"registry answered {response.status_code}"), url, offset)
            await self._raise_for(response, repository, f"blob {digest}")
            skip = 0
            if response.status_code == 200 and offset:
                skip = offset  # the registry ignored Range: drop what we already have
            elif response.status_code == 206:
                start = content_range_start(response.headers.get("content-range"))
                if start != offset:
                    raise RegistryUnavailable(f"registry resumed {digest} at {start}, not {offset}")
            total = size
            if total is None and response.status_code == 200:
                length = response.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
            chunks = response.aiter_raw()
            finished = False
            try:
                async for chunk in chunks:
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                        if not chunk:
                            continue
                    if size is not None and offset + len(chunk) > size:
                        raise VerificationFailed(
                            f"blob {digest} is longer than its declared {size} bytes")
                    hasher.update(chunk)
                    await sink(chunk)
                    offset += len(chunk)
                    progress(offset, total)
                finished = True
            except httpx.TransportError as exc:
                finished = True  # the error ran through every layer: nothing left suspended
                raise TransportFailure(exc, url, offset) from exc
            finally:
                if not finished:
                    await abandon_stream(response, chunks)
            if size is not None and offset < size:
                raise TransportFailure(httpx.ReadError("connection closed early"), url, offset)
            return offset
        finally:
            await response.aclose()

    # -- blobs: upload

    async def blob_size(self, repository: Repository | str, digest: str,
                        actions: tuple[str, ...] = ("pull",)) -> int | None:
        """The blob's size when the repository has it, else None (HEAD)."""
        if isinstance(repository, str):
            repository = Repository.parse(repository)
        response = await self._with_retries(lambda: self._send(
            "HEAD", repository, f"/v2/{repository.path}/blobs/{digest}", actions=actions))
        if response.status_code == 404:
            return None
        await self._raise_for(response, repository, f"blob {digest}", pushing="push" in actions)
        length = response.headers.get("content-length", "")
        return int(length) if length.isdigit() else 0

    async def push_blob(self, repository: Repository | str, digest: str, size: int,
                        source_opener: SourceOpener, progress: Progress = _no_progress, *,
                        mount_from: str | None = None) -> str:
        """Make the blob exist in the repository: "exists", "mounted" or "pushed".

        `source_opener(offset)` returns an async iterator of the blob's bytes from `offset`
        (called again to resume). `mount_from` is another repository path on the same
        registry that has the blob.
        """
        if isinstance(repository, str):
            repository = Repository.parse(repository)
        check_digest(digest)
        if await self.blob_size(repository, digest, ("pull", "push")) is not None:
            progress(size, size)
            return "exists"
        push = ("pull", "push")
        base = f"/v2/{repository.path}/blobs/uploads/"
        location: str | None = None
        if mount_from and mount_from != repository.path:
            query = urlencode({"mount": digest, "from": mount_from})
            response = await self._with_retries(lambda: self._send(
                "POST", repository, f"{base}?{query}", actions=push,
                extra_scopes=(f"repository:{mount_from}:pull",)))
            if response.status_code == 201:
                progress(size, size)
                return "mounted"
            await self._raise_for(response, repository, f"mount of {digest}", pushing=True)
            location = location_of(response)
        if location is None:
            response = await self._with_retries(lambda: self._send(
                "POST", repository, base, actions=push))
            await self._raise_for(response, repository, f"upload of {digest}", pushing=True)
            location = location_of(response)
        if size <= self.monolithic_bytes_max:
            await self._put_monolithic(repository, location, digest, size, source_opener,
                                       progress)
        else:
            await self._put_chunked(repository, location, digest, size, source_opener, progress)
        return "pushed"

    async def _put_monolithic(self, repository: Repository, location: str, digest: str,
                              size: int, source_opener: SourceOpener, progress: Progress) -> None:
        failures = 0
        while True:
            data = b"".join([chunk async for chunk in source_opener(0)])
            if len(data) != size:
                raise VerificationFailed(f"blob {digest}: source has {len(data)} bytes, "
                                         f"expected {size}")
            try:
                response = await self._send(
                    "PUT", repository, with_query(location, digest=digest), actions=("pull", "push"),
                    headers={"Content-Type": "application/octet-stream"}, content=data)
                if response.status_code >= 500:
                    raise TransportFailure(httpx.ReadError(f"status {response.status_code}"),
                                            location)
                break
            except TransportFailure as exc:
                failures += 1
                if failures >= self.attempts_max:
                    raise RegistryUnavailable(f"uploading {digest}: {describe(exc.cause)}") from exc
                await trio.sleep(self._backoff(failures))
        await self._raise_for(response, repository, f"upload of {digest}", pushing=True)
        progress(size, size)

    async def _put_chunked(self, repository: Repository, location: str, digest: str, size: int,
                           source_opener: SourceOpener, progress: Progress) -> None:
        push = ("pull", "push")
        offset = 0
        failures = 0
        while offset < size:
            reader = ChunkReader(source_opener(offset))
            try:
                while offset < size:
                    length = min(self.chunk_bytes, size - offset)
                    body = reader.take(length, functools.partial(report_from, progress,
                                                                 offset, size))
                    response = await self._send(
                        "PATCH", repository, location, actions=push, content=body,
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Length": str(length),
                                 "Content-Range": f"{offset}-{offset + length - 1}"})
                    if response.status_code >= 500 or response.status_code == 416:
                        raise TransportFailure(
                            httpx.ReadError(f"status {response.status_code}"), location)
                    await self._raise_for(response, repository, f"upload of {digest}",
                                          pushing=True)
                    location = location_of(response)
                    offset += length
            except TransportFailure as exc:
                failures += 1
                if failures >= self.attempts_max:
                    raise RegistryUnavailable(
                        f"uploading {digest}: {describe(exc.cause)} "
                        f"(gave up after {failures} attempts)") from exc
                await trio.sleep(self._backoff(failures))
                offset = await self._upload_offset(repository, location)
                progress(offset, size)
            finally:
                await reader.aclose()
        response = await self._with_retries(lambda: self._send(
            "PUT", repository, with_query(location, digest=digest), actions=push))
        await self._raise_for(response, repository, f"upload of {digest}", pushing=True)
        progress(size, size)

    async def _upload_offset(self, repository: Repository, location: str) -> int:
        """Where the registry's copy of the upload ends (from the session's Range)."""
        response = await self._with_retries(lambda: self._send(
            "GET", repository, location, actions=("pull", "push")))
        await self._raise_for(response, repository, "upload status", pushing=True)
        value = response.headers.get("range", "")
        match = re.fullmatch(r"(?:bytes=)?0-(\d+)", value.strip())
        if match is None:
            return 0
        end = int(match.group(1))
        # "0-0" means empty on the reference registry (it cannot say "no bytes" otherwise).
        return 0 if end == 0 else end + 1

    # -- helpers

    def _backoff(self, failures: int) -> float:
        return float(min(self.backoff_seconds * 2 ** (failures - 1), self.backoff_seconds_max))

    async def _with_retries(self, send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """Retry a request without a body stream on transport failures and 5xx answers."""
        failures = 0
        while True:
            try:
                response = await send()
            except TransportFailure as exc:
                failures += 1
                if failures >= self.attempts_max:
                    raise RegistryUnavailable(
                        f"{exc.url}: {describe(exc.cause)} (gave up after {failures} attempts)"
                    ) from exc
                await trio.sleep(self._backoff(failures))
                continue
            if response.status_code in (502, 503, 504) and failures + 1 < self.attempts_max:
                failures += 1
                await trio.sleep(self._backoff(failures))
                continue
            return response

    async def login(self, domain: str) -> str:
        """Check the credentials for `domain` (what `docker login` asks the daemon);
        returns an identity token when the registry issued a refresh token, else ""."""
        self._registries.pop(domain, None)
        state = await self._registry(domain)
        credentials = self.credentials_for(domain)
        if state.scheme == "basic":
            response = await state.client.get(f"{state.base_url}/v2/",
                                              headers={"Authorization": _basic(credentials)})
            if response.status_code != 200:
                raise Unauthorized("unauthorized: incorrect username or password")
            return ""
        if state.scheme != "bearer":
            return ""
        realm = state.challenge.get("realm", "")
        query = urlencode({"service": state.challenge.get("service", ""),
                           "offline_token": "true", "client_id": "flotta",
                           "account": credentials.username})
        try:
            response = await state.client.get(f"{realm}?{query}",
                                              headers={"Authorization": _basic(credentials)})
        except httpx.TransportError as exc:
            raise RegistryUnavailable(f"Get \"{realm}\": {describe(exc)}") from exc
        if response.status_code != 200:
            raise Unauthorized("unauthorized: incorrect username or password")
        return str(response.json().get("refresh_token") or "")
