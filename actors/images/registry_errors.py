"""Errors of the distribution client, worded as Docker words them.

Each carries the HTTP status the daemon should answer with when the failure ends a pull or
push before any progress was streamed (see docs/registry.md for the table).
"""

from __future__ import annotations


class DistributionError(Exception):
    """A pull or push failure with Docker's wording; `status` is for the daemon's answer."""

    status = 500

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None
                 ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        if status is not None:
            self.status = status


class NotFound(DistributionError):
    status = 404


class AccessDenied(DistributionError):
    """The repository does not exist or the credentials do not allow the operation."""

    status = 404


class Unauthorized(DistributionError):
    status = 401


class VerificationFailed(DistributionError):
    """Content whose digest or size differs from what it was named by."""

    status = 500


class RegistryUnavailable(DistributionError):
    status = 500
