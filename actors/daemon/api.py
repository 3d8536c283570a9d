"""The Docker Engine API dialect: routing, versions, errors, and query parsing.

Every route is served with and without a `/vX.Y` prefix. A versioned request below the
minimum or above the maximum API version is refused with moby's wording; the version a
request carries is on `request.api_version` so handlers can shape fields per version.

Handlers raise `ApiError`, an `actors.errdefs` error (also when it came back from an
actor's ask as a `RemoteError`), or anything else (500); the client always gets
`{"message": ...}` with Docker's status code.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from actors.errdefs import status_for_kind
from runtime.errors import ActorCrashed, AskTimeout, RemoteError, ReplyError
from runtime.httpserver import HTTPError, Request, Response, json_response

log = logging.getLogger("flotta.daemon")

API_VERSION = "1.45"
MIN_API_VERSION = "1.24"
ENGINE_VERSION = "0.1.0"

Handler = Callable[..., Awaitable[Response | None]]


class ApiError(HTTPError):
    """An error answered as `{"message": ...}` with `status`."""


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


_VERSION_PREFIX = re.compile(r"^/v(\d+(?:\.\d+)*)(/.*)$")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register a handler; `pattern` is a regex over the unversioned path."""
        compiled = re.compile(f"^{pattern}$")

        def register(handler: Handler) -> Handler:
            self._routes.append((method, compiled, handler))
            return handler

        return register

    def include(self, other: Router) -> None:
        self._routes.extend(other._routes)

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for route_method, pattern, handler in self._routes:
            if route_method != method and not (method == "HEAD" and route_method == "GET"):
                continue
            found = pattern.match(path)
            if found is not None:
                return handler, found.groupdict()
        return None

    async def dispatch(self, request: Request) -> Response | None:
        path = request.path
        request.api_version = API_VERSION  # type: ignore[attr-defined]
        prefixed = _VERSION_PREFIX.match(path)
        if prefixed is not None:
            version, path = prefixed.group(1), prefixed.group(2)
            check_version(version)
            request.api_version = version  # type: ignore[attr-defined]
        if request.method == "OPTIONS":
            return Response(200)
        found = self.match(request.method, path)
        if found is None:
            raise ApiError(404, "page not found")
        handler, parameters = found
        return await handler(request, **parameters)


def check_version(version: str) -> None:
    try:
        requested = version_tuple(version)
    except ValueError:
        raise ApiError(400, f"invalid API version {version!r}") from None
    if requested < version_tuple(MIN_API_VERSION):
        raise ApiError(
            400,
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version",
        )
    if requested > version_tuple(API_VERSION):
        raise ApiError(
            400,
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}",
        )


def api_version_at_least(request: Request, version: str) -> bool:
    return version_tuple(getattr(request, "api_version", API_VERSION)) >= version_tuple(version)


def default_headers() -> list[tuple[str, str]]:
    return [
        ("Api-Version", API_VERSION),
        ("Server", f"flotta/{ENGINE_VERSION} (linux)"),
        ("Ostype", "linux"),
        ("Docker-Experimental", "false"),
    ]


def error_response(request: Request, error: Exception) -> Response | None:
    """Map any exception to Docker's error body."""
    if isinstance(error, HTTPError):
        return json_response({"message": error.message}, error.status)
    if isinstance(error, RemoteError):
        return json_response({"message": error.message}, status_for_kind(error.kind))
    if isinstance(error, ReplyError):
        return json_response({"message": str(error)}, status_for_kind(error.kind))
    if isinstance(error, AskTimeout):
        log.error("%s %s: %s", request.method, request.path, error)
        return json_response({"message": f"the daemon did not answer in time: {error}"}, 500)
    if isinstance(error, ActorCrashed):
        log.error("%s %s: %s", request.method, request.path, error)
        return json_response({"message": str(error)}, 500)
    log.exception("%s %s failed", request.method, request.path, exc_info=error)
    return json_response({"message": f"{type(error).__name__}: {error}"}, 500)


# --- query parsing ----------------------------------------------------------------------

_FALSE = {"", "0", "no", "false", "none"}


def query_bool(request: Request, key: str, default: bool = False) -> bool:
    value = request.query.get(key)
    if value is None:
        return default
    return value.strip().lower() not in _FALSE


def query_int(request: Request, key: str, default: int | None = None) -> int | None:
    value = request.query.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"invalid value for {key}: {value!r} is not an integer") from None


def query_json(request: Request, key: str, default: Any = None) -> Any:
    value = request.query.get(key)
    if value is None or value == "":
        return default
    try:
        return json.loads(value)
    except ValueError:
        raise ApiError(400, f"invalid JSON in query parameter {key}") from None


def query_filters(request: Request) -> dict[str, list[str]]:
    """Docker's `filters` in both shapes: {"k":{"v":true}} (Go) and {"k":["v"]} (docker-py)."""
    raw = query_json(request, "filters", {})
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid filter: expected a JSON object")
    filters: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            filters[key] = [str(item) for item, enabled in value.items() if enabled]
        elif isinstance(value, list):
            filters[key] = [str(item) for item in value]
        elif isinstance(value, str):
            filters[key] = [value]
        else:
            raise ApiError(400, f"invalid filter {key!r}")
    return filters


def check_filter_keys(filters: dict[str, list[str]], allowed: set[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise ApiError(400, f"invalid filter '{key}'")


async def read_json_object(request: Request, allow_empty: bool = True) -> dict[str, Any]:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip()
    body = await request.read_json()
    if body is None:
        if allow_empty:
            return {}
        raise ApiError(400, "request body is required")
    if content_type and content_type != "application/json":
        raise ApiError(400, f"unsupported Content-Type header ({content_type}): must be 'application/json'")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid JSON: expected an object")
    return body
