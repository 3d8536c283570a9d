"""Downloading `ADD <url>` sources (blocking; the builder actor runs it in a thread).

As in Docker's classic builder: the file name comes from the URL path, else from the
server's Content-Disposition; the file's mtime is the server's Last-Modified (else the
epoch); a downloaded archive is not extracted unless `ADD --unpack=true`; `--checksum=
sha256:<hex>` must match the downloaded bytes. The download is bounded in size and time.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message

import attrs

from .errors import ContextError

download_bytes_max = 8 * 1024 * 1024 * 1024


@attrs.frozen
class FetchedFile:
    host_path: str
    filename: str  # "" when neither the URL nor the server named it
    mtime: float | None = None


def _filename(url_path: str, disposition: str | None) -> str:
    if url_path and not url_path.endswith("/"):
        name = posixpath.basename(url_path)
        if name:
            return name
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        value = message.get_param("filename", header="content-disposition")
        if isinstance(value, str) and value and not value.endswith("/"):
            return posixpath.basename(value)
    return ""


def fetch_url(
    url: str,
    directory: str,
    *,
    timeout_seconds: float = 60.0,
    bytes_max: int = download_bytes_max,
) -> FetchedFile:
    """Download url into a new file under directory; ContextError naming what failed."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https"):
        raise ContextError(f"ADD failed: unsupported URL scheme in {url}")
    try:
        response = urllib.request.urlopen(url, timeout=timeout_seconds)
    except urllib.error.HTTPError as error:
        error.close()
        raise ContextError(
            f"ADD failed: failed to GET {url} with status {error.code} {error.reason}"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        raise ContextError(f"ADD failed: failed to GET {url}: {error}") from None
    with response:
        name = _filename(urllib.parse.unquote(parsed.path), response.headers.get("Content-Disposition"))
        target = os.path.join(directory, name or "__unnamed__")
        received = 0
        try:
            with open(target, "xb") as handle:
                while chunk := response.read(1024 * 1024):
                    received += len(chunk)
                    if received > bytes_max:
                        raise ContextError(f"ADD failed: {url} is larger than {bytes_max} bytes")
                    handle.write(chunk)
        except (OSError, urllib.error.URLError) as error:
            raise ContextError(f"ADD failed: failed to download {url}: {error}") from None
        modified = response.headers.get("Last-Modified")
    mtime = 0.0
    if modified:
        try:
            mtime = email.utils.parsedate_to_datetime(modified).timestamp()
        except (TypeError, ValueError):
            mtime = 0.0
    os.utime(target, (mtime, mtime))
    return FetchedFile(host_path=target, filename=name, mtime=mtime)


def verify_checksum(path: str, expected: str) -> None:
    """`ADD --checksum=sha256:<hex>`: ContextError when the file does not match."""
    algorithm, _, digest = expected.partition(":")
    if algorithm != "sha256" or len(digest) != 64:
        raise ContextError(f"ADD failed: unsupported checksum {expected} (want sha256:<64 hex>)")
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            hasher.update(chunk)
    actual = hasher.hexdigest()
    if actual != digest.lower():
        raise ContextError(
            f"ADD failed: digest mismatch sha256:{actual}: expected {expected}"
        )
