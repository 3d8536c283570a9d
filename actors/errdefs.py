"""Error kinds shared by every component, as the Docker API reports them.

Actors raise these (they are `ReplyError`s, so an ask answers with them instead of
crashing the actor); the daemon maps the kind to Docker's status code and sends the
message verbatim as `{"message": ...}` — clients pattern-match some of these texts.
"""

from __future__ import annotations

from runtime.errors import ReplyError


class NotFound(ReplyError):
    kind = "not_found"


class InvalidParameter(ReplyError):
    kind = "invalid_parameter"


class Conflict(ReplyError):
    kind = "conflict"


class Unauthorized(ReplyError):
    kind = "unauthorized"


class Forbidden(ReplyError):
    kind = "forbidden"


class NotModified(ReplyError):
    kind = "not_modified"


class Unavailable(ReplyError):
    kind = "unavailable"


class NotImplementedYet(ReplyError):
    kind = "not_implemented"


class SystemError_(ReplyError):
    kind = "system"


STATUS_BY_KIND = {
    NotFound.kind: 404,
    InvalidParameter.kind: 400,
    Conflict.kind: 409,
    Unauthorized.kind: 401,
    Forbidden.kind: 403,
    NotModified.kind: 304,
    Unavailable.kind: 503,
    NotImplementedYet.kind: 501,
    SystemError_.kind: 500,
}


def status_for_kind(kind: str) -> int:
    return STATUS_BY_KIND.get(kind, 500)
