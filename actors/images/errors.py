"""The errors of the image store, one per HTTP status the daemon maps them to."""

from __future__ import annotations


class ImageError(Exception):
    """Base of the store's errors."""


class ImageNotFound(ImageError, LookupError):
    """404: `No such image: busybox:latest`."""

    def __init__(self, what: str) -> None:
        super().__init__(f"No such image: {what}")
        self.what = what


class BlobNotFound(ImageError, LookupError):
    """404: a blob (config, layer, manifest) the caller named is not in the store."""


class ImageConflict(ImageError):
    """409: Docker's `conflict: ...` messages from rmi and tag."""


class InvalidImage(ImageError, ValueError):
    """400: bad input (malformed config, digest mismatch, unknown layer); nothing changed."""


class DigestMismatch(InvalidImage):
    """Content did not hash to the digest it was claimed to have."""
