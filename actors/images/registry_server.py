"""The built-in registry: the OCI distribution API (v1.1) and Docker registry v2 over
`runtime.httpserver`, content in `RegistryStorage`, access decided by `AccessControl`.

Run it as `flotta registry serve --addr 127.0.0.1:5000 --root DIR`, or inside a Trio
nursery with `await nursery.start(serve, root)`. Routes (all under /v2/ but the token):

    GET /v2/                                      version check (and auth discovery)
    GET /v2/_catalog?n=&last=                     repositories, paged
    GET /v2/<name>/tags/list?n=&last=             tags, paged with a Link header
    GET|HEAD|PUT|DELETE /v2/<name>/manifests/<tag-or-digest>
    GET|HEAD|DELETE /v2/<name>/blobs/<digest>     GET honours one byte Range
    POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]
    GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>
    GET /v2/<name>/referrers/<digest>[?artifactType=]
    GET|POST /token                               the token service (token auth only)

Errors are `{"errors":[{"code","message","detail"}]}` with the spec's status codes.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
import signal
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, quote

import attrs
import trio

from actors.images.registry_access import Access, AccessControl, AccessDenied, parse_users
from actors.images.registry_protocol import (
    API_VERSION_HEADER,
    MANIFEST_BYTES_MAX,
    OCI_INDEX,
    RegistryError,
    check_digest,
    check_name,
    parse_byte_range,
    parse_content_range,
    upload_range_header,
)
from actors.images.registry_storage import RegistryStorage
from runtime import tls
from runtime.httpserver import (
    HTTPError,
    HTTPServer,
    Request,
    Response,
    ServerLimits,
    encode_json,
    json_response,
    listener_address,
    open_tcp_listeners,
    tls_listener,
)

_ROUTES = [
    ("base", re.compile(r"/v2/?")),
    ("catalog", re.compile(r"/v2/_catalog")),
    ("token", re.compile(r"/token")),
    ("upload", re.compile(r"/v2/(?P<name>.+)/blobs/uploads/(?P<session>[^/]+)")),
    ("uploads", re.compile(r"/v2/(?P<name>.+)/blobs/uploads/?")),
    ("blob", re.compile(r"/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)")),
    ("manifest", re.compile(r"/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)")),
    ("tags", re.compile(r"/v2/(?P<name>.+)/tags/list")),
    ("referrers", re.compile(r"/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)")),
]
_METHODS = {
    "base": {"GET", "HEAD"},
    "catalog": {"GET"},
    "token": {"GET", "POST"},
    "upload": {"GET", "PATCH", "PUT", "DELETE"},
    "uploads": {"POST"},
    "blob": {"GET", "HEAD", "DELETE"},
    "manifest": {"GET", "HEAD", "PUT", "DELETE"},
    "tags": {"GET"},
    "referrers": {"GET"},
}
_ACTION_BY_METHOD = {"GET": "pull", "HEAD": "pull", "POST": "push", "PUT": "push",
                     "PATCH": "push", "DELETE": "delete"}


def _empty(status: int, headers: Sequence[tuple[str, str]]) -> Response:
    return Response(status, b"", headers)


def _page(items: list[str], request: Request) -> tuple[list[str], bool]:
    """`n`/`last` paging over sorted items; True when more items follow."""
    last = request.query.get("last")
    number = request.query.get("n")
    if last:
        items = [item for item in items if item > last]
    if number is None or number == "":
        return items, False
    if not number.isdigit():
        raise RegistryError("PAGINATION_NUMBER_INVALID", detail={"n": number})
    limit = int(number)
    return items[:limit], len(items) > limit


class RegistryApp:
    """The request handler; `scheme` is what clients use to reach it (for token realms)."""

    def __init__(self, storage: RegistryStorage, access: AccessControl | None = None,
                 *, scheme: str = "http") -> None:
        self.storage = storage
        self.access = access or AccessControl()
        self.scheme = scheme

    # -- dispatch

    async def handle(self, request: Request) -> Response | None:
        for route, pattern in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if request.method not in _METHODS[route]:
                raise RegistryError("UNSUPPORTED", f"method {request.method} not allowed",
                                    status=405)
            parameters = match.groupdict()
            if route == "token":
                return await self._token(request)
            if route == "base":
                self.access.check(request, None, self.scheme)
                return json_response({})
            if route == "catalog":
                self.access.check(request, Access("registry", "catalog", ("*",)), self.scheme)
                return self._catalog(request)
            name = check_name(parameters.pop("name"))
            action = _ACTION_BY_METHOD[request.method]
            actions = ("pull", "push") if action == "push" else (action,)
            self.access.check(request, Access("repository", name, actions), self.scheme)
            handler = getattr(self, f"_{route}")
            response: Response | None = await handler(request, name, **parameters)
            return response
        raise RegistryError("NAME_UNKNOWN", "page not found", status=404)

    def error_response(self, request: Request, error: Exception) -> Response | None:
        if isinstance(error, AccessDenied):
            body = {"errors": [{"code": error.code, "message": error.message, "detail": None}]}
            return Response(401, encode_json(body), [("WWW-Authenticate", error.challenge)],
                            "application/json")
        if isinstance(error, RegistryError):
            return Response(error.status, encode_json(error.body()), error.headers,
                            "application/json")
        if isinstance(error, HTTPError) and error.status == 413:
            failure = RegistryError("SIZE_INVALID", error.message, status=413)
            return Response(413, encode_json(failure.body()), [], "application/json")
        return None

    # -- token service

    async def _token(self, request: Request) -> Response:
        if self.access.mode != "token":
            raise RegistryError("UNSUPPORTED", "this registry does not issue tokens", status=404)
        if request.method == "GET":
            answer = self.access.token_for_request(
                request.headers.get("authorization"), parse_qs(request.query_string))
            return json_response(answer)
        form = parse_qs((await request.read_body(64 * 1024)).decode("utf-8", "replace"))
        try:
            answer = self.access.token_for_form(form)
        except ValueError as exc:
            return json_response({"error": "unsupported_grant_type", "message": str(exc)}, 400)
        return json_response(answer)

    # -- catalog, tags, referrers

    def _catalog(self, request: Request) -> Response:
        repositories, more = _page(self.storage.list_repositories(), request)
        headers = []
        if more:
            link = f"/v2/_catalog?last={quote(repositories[-1])}&n={request.query['n']}"
            headers.append(("Link", f'<{link}>; rel="next"'))
        return json_response({"repositories": repositories}, headers=headers)

    async def _tags(self, request: Request, name: str) -> Response:
        tags, more = _page(self.storage.list_tags(name), request)
        headers = []
        if more:
            link = f"/v2/{name}/tags/list?last={quote(tags[-1])}&n={request.query['n']}"
            headers.append(("Link", f'<{link}>; rel="next"'))
        return json_response({"name": name, "tags": tags}, headers=headers)

    async def _referrers(self, request: Request, name: str, digest: str) -> Response:
        referrers = self.storage.referrers(name, check_digest(digest))
        headers = []
        artifact_type = request.query.get("artifactType")
        if artifact_type:
            referrers = [entry for entry in referrers if entry.get("artifactType") == artifact_type]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": referrers}
        return Response(200, encode_json(body), headers, OCI_INDEX)

    # -- manifests

    async def _manifest(self, request: Request, name: str, reference: str) -> Response:
        if request.method in ("GET", "HEAD"):
            record = self.storage.get_manifest(name, reference)
            headers = [("Docker-Content-Digest", record.digest), ("ETag", f'"{record.digest}"')]
            if request.method == "HEAD":
                headers.append(("Content-Length", str(len(record.data))))
            return Response(200, record.data, headers, record.media_type)
        if request.method == "DELETE":
            self.storage.delete_manifest(name, reference)
            return _empty(202, [])
        data = await request.read_body(MANIFEST_BYTES_MAX)
        digest, parsed = await self.storage.put_manifest(
            name, reference, data, request.headers.get("content-type"))
        for tag in request.query.get_all("tag"):
            self.storage.tag_manifest(name, tag, digest)
        headers = [("Location", f"/v2/{name}/manifests/{digest}"),
                   ("Docker-Content-Digest", digest)]
        if parsed.subject is not None:
            headers.append(("OCI-Subject", parsed.subject.digest))
        return _empty(201, headers)

    # -- blobs

    async def _blob(self, request: Request, name: str, digest: str) -> Response | None:
        if request.method == "DELETE":
            self.storage.delete_blob(name, digest)
            return _empty(202, [])
        info = self.storage.blob_info(name, digest)
        headers = [("Docker-Content-Digest", info.digest), ("Accept-Ranges", "bytes"),
                   ("ETag", f'"{info.digest}"')]
        if request.method == "HEAD":
            return Response(200, b"", [*headers, ("Content-Length", str(info.size))],
                            "application/octet-stream")
        start, end, status = 0, info.size - 1, 200
        wanted = request.headers.get("range")
        if wanted:
            span = parse_byte_range(wanted, info.size)
            if span is None:
                return _empty(416, [("Content-Range", f"bytes */{info.size}")])
            start, end = span
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{end}/{info.size}"))
        headers.append(("Content-Length", str(end - start + 1)))
        stream = await request.start_stream(status, headers, "application/octet-stream")
        if info.size:
            async with contextlib.aclosing(self.storage.read_blob(info, start, end)) as chunks:
                async for chunk in chunks:
                    await stream.send(chunk)
        return None

    # -- uploads

    def _upload_headers(self, name: str, session_id: str, size: int) -> list[tuple[str, str]]:
        return [("Location", f"/v2/{name}/blobs/uploads/{session_id}"),
                ("Range", upload_range_header(size)),
                ("Docker-Upload-UUID", session_id)]

    async def _uploads(self, request: Request, name: str) -> Response:
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount and source:
            check_digest(mount)
            if self._may_pull(request, source) and self.storage.mount_blob(name, mount, source):
                return _empty(201, [("Location", f"/v2/{name}/blobs/{mount}"),
                                    ("Docker-Content-Digest", mount)])
        digest = request.query.get("digest")
        if digest:
            check_digest(digest)
        session = self.storage.start_upload(name)
        try:
            if digest or not request.body.complete:
                await self.storage.append_upload(session, request.body)
            if digest:
                info = await self.storage.finish_upload(session, digest)
                return _empty(201, [("Location", f"/v2/{name}/blobs/{info.digest}"),
                                    ("Docker-Content-Digest", info.digest)])
        except BaseException:
            if digest:
                self.storage.cancel_upload(session)
            raise
        return _empty(202, self._upload_headers(name, session.uuid, session.size))

    def _may_pull(self, request: Request, source: str) -> bool:
        try:
            check_name(source)
            self.access.check(request, Access("repository", source, ("pull",)), self.scheme)
        except (AccessDenied, RegistryError):
            return False
        return True

    async def _upload(self, request: Request, name: str, session: str) -> Response:
        upload = await self.storage.get_upload(name, session)
        if request.method == "GET":
            return _empty(204, self._upload_headers(name, upload.uuid, upload.size))
        if request.method == "DELETE":
            self.storage.cancel_upload(upload)
            return _empty(204, [])
        async with upload.lock:
            if request.method == "PATCH" or not request.body.complete:
                await self._append_chunk(request, upload)
            if request.method == "PATCH":
                return _empty(202, self._upload_headers(name, upload.uuid, upload.size))
            digest = request.query.get("digest")
            if not digest:
                raise RegistryError("DIGEST_INVALID", "digest parameter missing")
            try:
                info = await self.storage.finish_upload(upload, check_digest(digest))
            except RegistryError as exc:
                if exc.code == "DIGEST_INVALID":
                    self.storage.cancel_upload(upload)
                raise
        return _empty(201, [("Location", f"/v2/{name}/blobs/{info.digest}"),
                            ("Docker-Content-Digest", info.digest)])

    async def _append_chunk(self, request: Request, upload: Any) -> None:
        size_max = None
        content_range = request.headers.get("content-range")
        if content_range:
            start, end = parse_content_range(content_range)
            if start != upload.size:
                raise _RangeMismatch(request, upload)
            size_max = end - start + 1
        await self.storage.append_upload(upload, request.body, size_max)


class _RangeMismatch(RegistryError):
    def __init__(self, request: Request, upload: Any) -> None:
        super().__init__(
            "RANGE_INVALID", f"chunk does not start at offset {upload.size}", status=416,
            headers=[("Location", request.raw_path), ("Range", upload_range_header(upload.size)),
                     ("Docker-Upload-UUID", upload.uuid)])


# ---------------------------------------------------------------------------- running it


@attrs.frozen
class RunningRegistry:
    """What `serve` reports once listening: where, and the server to shut down."""

    url: str
    host: str
    port: int
    server: HTTPServer
    app: RegistryApp


def make_access(users: Sequence[str] | dict[str, str] | None, token_auth: bool,
                anonymous_pull: bool) -> AccessControl:
    parsed = users if isinstance(users, dict) else parse_users(users or [])
    if token_auth:
        return AccessControl("token", parsed, anonymous_pull=anonymous_pull)
    if parsed:
        return AccessControl("basic", parsed)
    return AccessControl()


async def serve(
    root: str,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    users: Sequence[str] | dict[str, str] | None = None,
    token_auth: bool = False,
    anonymous_pull: bool = False,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    task_status: trio.TaskStatus[RunningRegistry] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a registry on `host:port` (0: any free port) until cancelled or shut down
    through the `RunningRegistry` reported to `nursery.start`."""
    storage = RegistryStorage(root)
    storage.purge_stale_uploads()
    scheme = "https" if tls_cert else "http"
    app = RegistryApp(storage, make_access(users, token_auth, anonymous_pull), scheme=scheme)
    listeners: list[Any] = list(await open_tcp_listeners(host, port))
    if tls_cert:
        if not tls_key:
            raise tls.TLSConfigError("--tls-cert needs --tls-key")
        context = tls.server_context(tls_cert, tls_key)
        listeners = [tls_listener(listener, context) for listener in listeners]
    server = HTTPServer(
        app.handle,
        default_headers=[API_VERSION_HEADER],
        error_handler=app.error_response,
        limits=ServerLimits(read_body_bytes_max=MANIFEST_BYTES_MAX),
    )
    address = listener_address(listeners[0])
    assert isinstance(address, tuple)
    bound_host, bound_port = address
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    running = RunningRegistry(f"{scheme}://{shown_host}:{bound_port}", bound_host, bound_port,
                              server, app)

    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, listeners)
        task_status.started(running)


def _parse_address(text: str) -> tuple[str, int]:
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"--addr expects HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flotta registry",
                                     description="the built-in container registry")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve a registry")
    run.add_argument("--addr", default="127.0.0.1:5000", help="HOST:PORT to listen on")
    run.add_argument("--root", required=True, help="directory holding the registry's content")
    run.add_argument("--auth", action="append", default=[], metavar="USER:PASSWORD",
                     help="require this user (repeatable); Basic auth unless --token-auth")
    run.add_argument("--token-auth", action="store_true",
                     help="use the Bearer token flow with a token service at /token")
    run.add_argument("--anonymous-pull", action="store_true",
                     help="with --token-auth, let anonymous clients pull")
    run.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    run.add_argument("--tls-key", help="the certificate's private key (PEM)")
    collect = commands.add_parser("gc", help="remove unreferenced blobs (server stopped)")
    collect.add_argument("--root", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`flotta registry serve|gc ...`; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["registry"]:
        arguments = arguments[1:]
    options = _arguments().parse_args(arguments)
    if options.command == "gc":
        removed = RegistryStorage(options.root).collect_garbage()
        print(f"removed {removed} unreferenced blobs")
        return 0
    try:
        host, port = _parse_address(options.addr)
        if options.token_auth and not options.auth:
            raise ValueError("--token-auth needs at least one --auth USER:PASSWORD")
        if bool(options.tls_cert) != bool(options.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        make_access(options.auth, options.token_auth, options.anonymous_pull)
    except ValueError as exc:
        print(f"flotta registry: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            running: RunningRegistry = await nursery.start(functools.partial(
                serve, options.root, host=host, port=port, users=options.auth,
                token_auth=options.token_auth, anonymous_pull=options.anonymous_pull,
                tls_cert=options.tls_cert, tls_key=options.tls_key))
            print(f"registry listening on {running.url} (root {options.root})",
                  file=sys.stderr, flush=True)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    await running.server.shutdown(grace_seconds=5)
                    break

    try:
        trio.run(run)
    except (OSError, tls.TLSConfigError) as exc:
        print(f"flotta registry: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
