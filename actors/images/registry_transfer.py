"""Pieces of the distribution client that move bytes: request bodies cut from a blob
source, abandoning a streamed response cleanly, and small URL and header helpers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import trio

from actors.images.registry_errors import RegistryUnavailable, VerificationFailed

Progress = Callable[[int, "int | None"], None]


class TransportFailure(Exception):
    def __init__(self, cause: Exception, url: str, offset: int | None = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.url = url
        self.offset = offset


def report_from(progress: Progress, start: int, total: int, sent: int) -> None:
    progress(start + sent, total)


async def abandon_stream(response: httpx.Response, chunks: AsyncIterator[bytes]) -> None:
    """Stop reading a streamed response early. httpx streams through several layers of
    async generators; closing the response and then pulling once more makes them all end
    with the read error, instead of leaving them suspended for the garbage collector."""
    with trio.CancelScope(shield=True):
        await response.aclose()
        try:
            while True:
                await chunks.__anext__()
        except (StopAsyncIteration, httpx.HTTPError, httpx.StreamError):
            pass


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text


def same_origin(url: str, base_url: str) -> bool:
    left, right = urlsplit(url), urlsplit(base_url)
    return (left.scheme, left.netloc) == (right.scheme, right.netloc)


def location_of(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise RegistryUnavailable(f"registry answered {response.status_code} without Location")
    return urljoin(str(response.url), location)


def with_query(url: str, **parameters: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode(parameters)}"


def next_link(header: str | None) -> str | None:
    if not header:
        return None
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    return match.group(1) if match else None


def content_range_start(header: str | None) -> int | None:
    match = re.match(r"\s*bytes\s+(\d+)-", header or "")
    return int(match.group(1)) if match else None


class ChunkReader:
    """Cuts a blob source into request bodies of exact lengths."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self.source = source
        self.pending = b""

    def take(self, length: int, progress: Callable[[int], None]) -> ChunkBody:
        return ChunkBody(self, length, progress)

    async def aclose(self) -> None:
        close = getattr(self.source, "aclose", None)
        if close is not None:
            await close()


class ChunkBody(httpx.AsyncByteStream):
    """One PATCH body: the next `length` bytes of a source, reporting progress. A plain
    iterator rather than an async generator, so a request that fails part-way leaves
    nothing for the garbage collector to finalize."""

    def __init__(self, reader: ChunkReader, length: int, progress: Callable[[int], None]) -> None:
        self.reader = reader
        self.length = length
        self.progress = progress
        self.sent = 0

    def __aiter__(self) -> ChunkBody:
        return self

    async def __anext__(self) -> bytes:
        if self.sent:
            self.progress(self.sent)
        if self.sent >= self.length:
            raise StopAsyncIteration
        if self.reader.pending:
            chunk, self.reader.pending = self.reader.pending, b""
        else:
            try:
                chunk = await self.reader.source.__anext__()
            except StopAsyncIteration:
                raise VerificationFailed(
                    f"blob source ended after {self.sent} of {self.length} bytes") from None
        if self.sent + len(chunk) > self.length:
            keep = self.length - self.sent
            chunk, self.reader.pending = chunk[:keep], chunk[keep:]
        self.sent += len(chunk)
        return chunk

    async def aclose(self) -> None:
        return None
