"""HTTP/1.1 on a connected socket: requests out, responses (sized, chunked, to close) in.

The wire half of `actors.client.api`: buffered reads that survive a protocol upgrade, the
incremental body reader, the JSON message splitter for streaming endpoints, the hijacked
raw stream, and the client's exceptions. Standard library only.
"""

import _socket
import json

HEADER_BYTES_MAX = 256 * 1024
CHUNK_SIZE_LINE_BYTES_MAX = 1024
JSON_MESSAGE_BYTES_MAX = 64 * 1024 * 1024
ERROR_BODY_BYTES_MAX = 1024 * 1024
RECEIVE_BYTES = 65536


class ClientError(Exception):
    """Base of the errors this client raises; `str()` is one line meant for users."""


class ConnectionFailed(ClientError):
    def __init__(self, host: str, detail: str = "") -> None:
        super().__init__(
            f"Cannot connect to the flotta daemon at {host}. Is the flotta daemon running?"
        )
        self.host = host
        self.detail = detail


class APIError(ClientError):
    """The daemon answered with an HTTP error status (or an error inside a stream)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Error response from daemon: {message}")
        self.status = status
        self.message = message


class ProtocolError(ClientError):
    """The daemon's reply was not valid HTTP/JSON (the peer's fault, not the caller's)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"protocol error talking to the daemon: {detail}")


class UsageError(ClientError):
    """The caller asked for something this client cannot do (bad host URL, TLS files)."""

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode like Go's url.QueryEscape (space -> '+' only when not in a path)."""
    allowed = _UNRESERVED | frozenset(safe.encode())
    out = []
    for byte in text.encode("utf-8"):
        out.append(chr(byte) if byte in allowed else f"%{byte:02X}")
    return "".join(out)


def encode_query(query: dict | None) -> str:
    """Encode query parameters with sorted keys, as Go's url.Values.Encode does.

    Values: bool -> "1"/"0"; None is skipped; a list/tuple repeats the key; dict/list values
    that must travel as JSON should be passed already encoded as strings.
    """
    if not query:
        return ""
    parts = []
    for key in sorted(query):
        value = query[key]
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if item is True:
                item = "1"
            elif item is False:
                item = "0"
            parts.append(f"{quote(str(key))}={quote(str(item))}")
    return "&".join(parts)


class SocketReader:
    """Buffered reads from a socket; the leftover buffer survives a protocol upgrade."""

    __slots__ = ("buffer", "sock")

    def __init__(self, sock) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(RECEIVE_BYTES)
        if not data:
            return False
        self.buffer += data
        return True

    def readline(self, limit: int) -> bytes:
        while True:
            index = self.buffer.find(b"\n")
            if index >= 0:
                line = bytes(self.buffer[: index + 1])
                del self.buffer[: index + 1]
                return line
            if len(self.buffer) > limit:
                raise ProtocolError(f"line longer than {limit} bytes")
            if not self._fill():
                line = bytes(self.buffer)
                self.buffer.clear()
                return line

    def read_some(self, size: int) -> bytes:
        if self.buffer:
            data = bytes(self.buffer[:size])
            del self.buffer[:size]
            return data
        return self.sock.recv(min(size, RECEIVE_BYTES))

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ProtocolError("connection closed in the middle of a response body")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


class Response:
    """An HTTP response whose body is read incrementally (chunked, sized or to close)."""

    def __init__(self, client, sock, reader, status, reason, headers, method):
        self._client = client
        self._sock = sock
        self._reader = reader
        self.status = status
        self.reason = reason
        self.headers = headers
        self._chunk_left = 0
        self._done = False
        self._reusable = headers.get("connection", "").lower() != "close"
        encoding = headers.get("transfer-encoding", "").lower()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._mode = "none"
            self._done = True
        elif "chunked" in encoding:
            self._mode = "chunked"
        elif "content-length" in headers:
            self._mode = "length"
            try:
                self._length_left = int(headers["content-length"])
            except ValueError:
                raise ProtocolError(
                    f"bad Content-Length {headers['content-length']!r}"
                ) from None
            if self._length_left == 0:
                self._done = True
        else:
            self._mode = "close"
            self._reusable = False
        if self._done:
            self._release()

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def _release(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._reusable and self._client is not None and not self._reader.buffer:
            self._client._give_back(sock)
        else:
            sock.close()

    def read_some(self, size: int = RECEIVE_BYTES) -> bytes:
        """Return the next piece of the body (at most `size` bytes); b"" at its end."""
        if self._done:
            return b""
        try:
            if self._mode == "length":
                data = self._reader.read_some(min(size, self._length_left))
                if not data:
                    raise ProtocolError("connection closed before the end of the body")
                self._length_left -= len(data)
                if self._length_left == 0:
                    self._finish()
                return data
            if self._mode == "close":
                data = self._reader.read_some(size)
                if not data:
                    self._finish()
                return data
            while self._chunk_left == 0:
                line = self._reader.readline(CHUNK_SIZE_LINE_BYTES_MAX)
                if not line:
                    raise ProtocolError("connection closed in the middle of a chunked body")
                size_text = line.split(b";", 1)[0].strip()
                if not size_text:
                    continue
                try:
                    self._chunk_left = int(size_text, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
                if self._chunk_left == 0:
                    while self._reader.readline(HEADER_BYTES_MAX).strip():
                        pass
                    self._finish()
                    return b""
            data = self._reader.read_some(min(size, self._chunk_left))
            if not data:
                raise ProtocolError("connection closed in the middle of a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                self._reader.read_exact(2)
            return data
        except OSError as error:
            self.close()
            raise ProtocolError(f"reading the response: {error}") from None
        except ProtocolError:
            self.close()
            raise

    def _finish(self) -> None:
        self._done = True
        self._release()

    def read(self, limit: int | None = None) -> bytes:
        """Read the whole body (raising ProtocolError past `limit` bytes)."""
        parts = []
        total = 0
        while True:
            data = self.read_some()
            if not data:
                return b"".join(parts)
            total += len(data)
            if limit is not None and total > limit:
                self.close()
                raise ProtocolError(f"response body larger than {limit} bytes")
            parts.append(data)

    def iter_raw(self):
        """Yield the body as it arrives."""
        while True:
            data = self.read_some()
            if not data:
                return
            yield data

    def json(self):
        data = self.read()
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError as error:
            raise ProtocolError(f"invalid JSON in the response: {error}") from None

    def iter_json(self):
        """Yield each JSON value of a stream of concatenated (usually newline-separated) ones."""
        decoder = JSONStreamDecoder()
        for data in self.iter_raw():
            try:
                yield from decoder.feed(data)
            except ProtocolError:
                self.close()
                raise
        decoder.finish()

    def close(self) -> None:
        self._done = True
        self._reusable = False
        self._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class JSONStreamDecoder:
    """Split a byte stream into JSON values; bytes may arrive cut anywhere (even in UTF-8)."""

    def __init__(self, message_bytes_max: int = JSON_MESSAGE_BYTES_MAX) -> None:
        self._decoder = json.JSONDecoder()
        self._bytes = b""
        self._text = ""
        self.message_bytes_max = message_bytes_max

    def feed(self, data: bytes) -> list:
        self._bytes += data
        text, self._bytes = _split_utf8(self._bytes)
        buffer = self._text + text
        values = []
        index = 0
        length = len(buffer)
        while True:
            while index < length and buffer[index] in " \t\r\n":
                index += 1
            if index >= length:
                self._text = ""
                return values
            try:
                value, index = self._decoder.raw_decode(buffer, index)
            except ValueError:
                self._text = buffer[index:]
                if len(self._text) > self.message_bytes_max:
                    raise ProtocolError(
                        f"JSON message larger than {self.message_bytes_max} bytes"
                    ) from None
                return values
            values.append(value)

    def finish(self) -> None:
        """Raise if the stream ended in the middle of a value."""
        if self._text.strip() or self._bytes:
            raise ProtocolError(f"truncated JSON message in the stream: {self._text[:80]!r}")


def _split_utf8(data: bytes) -> tuple[str, bytes]:
    """Decode the complete UTF-8 prefix of `data`, returning the incomplete tail as bytes."""
    for cut in range(len(data), max(len(data) - 4, -1), -1):
        try:
            return data[:cut].decode("utf-8"), data[cut:]
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace"), b""


def read_head(reader: SocketReader) -> tuple[int, str, dict]:
    line = reader.readline(HEADER_BYTES_MAX)
    if not line:
        raise ProtocolError("the daemon closed the connection without answering")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {line[:80]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers: dict[str, str] = {}
    total = 0
    while True:
        line = reader.readline(HEADER_BYTES_MAX)
        total += len(line)
        if total > HEADER_BYTES_MAX:
            raise ProtocolError("response headers too large")
        if not line:
            raise ProtocolError("connection closed in the response headers")
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            return status, reason, headers
        name, sep, value = text.partition(":")
        if not sep:
            raise ProtocolError(f"bad header line {text[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value


class HijackedStream:
    """A connection turned into a bidirectional byte pipe (attach, exec start)."""

    def __init__(self, sock, leftover: bytes, content_type: str) -> None:
        self.sock = sock
        self._leftover = leftover
        self.content_type = content_type
        self._write_closed = False

    def recv(self, size: int = RECEIVE_BYTES) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover[:size], self._leftover[size:]
            return data
        try:
            return self.sock.recv(size)
        except OSError:
            return b""

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Half-close: the daemon sees stdin EOF but keeps sending output."""
        if self._write_closed:
            return
        self._write_closed = True
        if hasattr(self.sock, "unwrap"):
            # A TLS socket cannot half-close without tearing down the session; leave it.
            return
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def fileno(self) -> int:
        return self.sock.fileno()

def error_from_response(response: Response) -> APIError:
    """Build the APIError for an error status from its `{"message": ...}` body."""
    try:
        data = response.read(ERROR_BODY_BYTES_MAX)
    except ClientError:
        data = b""
    finally:
        response.close()
    message = ""
    text = data.decode("utf-8", "replace").strip()
    if text:
        try:
            decoded = json.loads(text)
        except ValueError:
            message = text
        else:
            if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
                message = decoded["message"]
            else:
                message = text
    if not message:
        message = f"{response.status} {response.reason}".strip()
    return APIError(response.status, message)
