"""A small client for the Docker Engine API (v1.45) over a UNIX socket or TCP (with TLS).

Standard library only, and cheap to import: `flotta` starts through this module, and other
components (Compose) reuse it. One `Client` talks to one daemon:

    client = Client(endpoint_from_environment())
    containers = client.get_json("/containers/json", {"all": True})
    for message in client.stream_json("POST", "/images/create", {"fromImage": "busybox"}):
        ...
    stream = client.hijack("/containers/{id}/attach", {"stream": 1, "stdout": 1})

Version negotiation follows the docker CLI: the first versioned call pings the daemon
(`HEAD /_ping`, falling back to `GET`) and uses min(API_VERSION_MAX, the daemon's
`Api-Version` header) as the `/vX.Y` prefix of every later call. Errors are exceptions
whose `str()` is the one line the CLI prints: `APIError` for an HTTP error status (its
message is the daemon's `{"message": ...}`), `ConnectionFailed` when nothing answers.

Concurrency: a `Client` keeps at most one idle keep-alive connection; every request that
finds none idle opens a new one, so a thread may block in `wait` while another starts the
container. Responses must be read to the end or closed.
"""
import _socket  # the C module: `import socket` builds its enums at import, costing milliseconds
import json
import os

from actors.client.wire import (
    ERROR_BODY_BYTES_MAX,
    APIError,
    ClientError,
    ConnectionFailed,
    HijackedStream,
    JSONStreamDecoder,
    ProtocolError,
    Response,
    SocketReader,
    UsageError,
    encode_query,
    error_from_response,
    quote,
    read_head,
)

__all__ = [
    "API_VERSION_MAX", "DEFAULT_HOST", "APIError", "Client", "ClientError", "ConnectionFailed",
    "Endpoint", "HijackedStream", "JSONStreamDecoder", "PingResult", "ProtocolError",
    "Response", "TLSSettings", "UsageError", "encode_query", "endpoint_from_environment",
    "error_from_response", "parse_host", "quote", "version_tuple",
]

API_VERSION_MAX = "1.45"
# What the Go client assumes when the daemon's ping carries no Api-Version header.
API_VERSION_FALLBACK = "1.24"
DEFAULT_HOST = "unix:///run/flotta.sock"
DEFAULT_TCP_PORT = 2375
DEFAULT_TLS_PORT = 2376
USER_AGENT = "flotta-client/0.1.0 (linux)"
CONNECT_TIMEOUT_SECONDS = 30.0


# --------------------------------------------------------------------------- endpoints


class TLSSettings:
    """TLS for tcp:// endpoints. `verify` checks the daemon's certificate against `ca_file`."""

    __slots__ = ("ca_file", "cert_file", "key_file", "verify")

    def __init__(
        self,
        verify: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self.verify = verify
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file

    def context(self):  # -> ssl.SSLContext; ssl is imported only when TLS is used
        import ssl

        if self.verify:
            context = ssl.create_default_context(cafile=self.ca_file)
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            try:
                context.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as error:
                raise UsageError(
                    f"could not read TLS client certificate {self.cert_file} / key "
                    f"{self.key_file}: {error}"
                ) from None
        return context


class Endpoint:
    """Where the daemon listens: `unix:///path` or `tcp://host:port`, optionally with TLS."""

    __slots__ = ("host", "path", "port", "scheme", "tls", "url")

    def __init__(
        self,
        scheme: str,
        path: str = "",
        host: str = "",
        port: int = 0,
        tls: TLSSettings | None = None,
        url: str = "",
    ) -> None:
        self.scheme = scheme
        self.path = path
        self.host = host
        self.port = port
        self.tls = tls
        self.url = url or (f"unix://{path}" if scheme == "unix" else f"tcp://{host}:{port}")

    def http_host(self) -> str:
        return "localhost" if self.scheme == "unix" else f"{self.host}:{self.port}"

    def connect(self, timeout_seconds: float | None = CONNECT_TIMEOUT_SECONDS):
        """A connected socket (a plain `_socket.socket` for UNIX sockets)."""
        try:
            if self.scheme == "unix":
                sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                sock.settimeout(timeout_seconds)
                try:
                    sock.connect(self.path)
                except BaseException:
                    sock.close()
                    raise
            else:
                import socket

                sock = socket.create_connection((self.host, self.port), timeout_seconds)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.tls is not None:
                    try:
                        sock = self.tls.context().wrap_socket(sock, server_hostname=self.host)
                    except BaseException:
                        sock.close()
                        raise
            sock.settimeout(None)
            return sock
        except OSError as error:
            raise ConnectionFailed(self.url, str(error)) from None


def parse_host(url: str) -> Endpoint:
    """Parse a -H/DOCKER_HOST value: `unix:///path`, `tcp://host[:port]`, or `host:port`."""
    text = url.strip()
    if not text:
        raise UsageError("invalid host: empty address")
    if text.startswith("unix://"):
        path = text[len("unix://") :]
        if not path:
            raise UsageError(f"invalid host {url!r}: missing socket path")
        return Endpoint("unix", path=path, url=text)
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if scheme not in ("tcp", "http", "https"):
            raise UsageError(f"invalid host {url!r}: unsupported protocol {scheme!r}")
    else:
        rest = text
    rest = rest.rstrip("/")
    if "/" in rest:
        raise UsageError(f"invalid host {url!r}: a tcp address takes no path")
    host, port_text = _split_host_port(rest, url)
    port = DEFAULT_TCP_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"invalid host {url!r}: bad port {port_text!r}")
        port = int(port_text)
    return Endpoint("tcp", host=host or "localhost", port=port, url=f"tcp://{rest}")


def _split_host_port(text: str, url: str) -> tuple[str, str]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"invalid host {url!r}: unclosed '['")
        host = text[1:end]
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UsageError(f"invalid host {url!r}")
        return host, rest[1:]
    if text.count(":") > 1:
        raise UsageError(f"invalid host {url!r}: put an IPv6 address in brackets")
    host, _, port = text.partition(":")
    return host, port


def _truthy(value: str | None) -> bool:
    return bool(value) and value.lower() not in ("0", "false", "no")


def endpoint_from_environment(
    host: str | None = None,
    tls: bool = False,
    tlsverify: bool | None = None,
    tlscacert: str | None = None,
    tlscert: str | None = None,
    tlskey: str | None = None,
    environ: dict | None = None,
) -> Endpoint:
    """Choose the endpoint like the docker CLI: -H, then FLOTTA_HOST, then DOCKER_HOST.

    TLS is on with `tls` or `tlsverify` (or FLOTTA_TLS_VERIFY / DOCKER_TLS_VERIFY set);
    certificate files default to ca.pem, cert.pem, key.pem in FLOTTA_CERT_PATH /
    DOCKER_CERT_PATH / ~/.docker.
    """
    env = os.environ if environ is None else environ
    url = host or env.get("FLOTTA_HOST") or env.get("DOCKER_HOST") or DEFAULT_HOST
    endpoint = parse_host(url)
    if tlsverify is None:
        tlsverify = _truthy(env.get("FLOTTA_TLS_VERIFY")) or _truthy(env.get("DOCKER_TLS_VERIFY"))
    use_tls = tls or tlsverify or any((tlscacert, tlscert, tlskey))
    if use_tls and endpoint.scheme == "tcp":
        cert_dir = env.get("FLOTTA_CERT_PATH") or env.get("DOCKER_CERT_PATH")
        if not cert_dir:
            cert_dir = os.path.join(os.path.expanduser("~"), ".docker")

        def pick(given: str | None, name: str) -> str | None:
            if given:
                return given
            candidate = os.path.join(cert_dir, name)
            return candidate if os.path.exists(candidate) else None

        endpoint.tls = TLSSettings(
            verify=bool(tlsverify),
            ca_file=pick(tlscacert, "ca.pem"),
            cert_file=pick(tlscert, "cert.pem"),
            key_file=pick(tlskey, "key.pem"),
        )
        if endpoint.port == DEFAULT_TCP_PORT and ":" not in url.split("://")[-1].strip("[]"):
            endpoint.port = DEFAULT_TLS_PORT
    return endpoint

# --------------------------------------------------------------------------- client


class PingResult:
    __slots__ = ("api_version", "builder_version", "experimental", "os_type", "swarm")

    def __init__(self, headers: dict) -> None:
        self.api_version = headers.get("api-version", "")
        self.os_type = headers.get("ostype", "")
        self.experimental = headers.get("docker-experimental", "").lower() == "true"
        self.builder_version = headers.get("builder-version", "")
        self.swarm = headers.get("swarm", "")


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


_NO_BODY = object()


class Client:
    """One daemon, one negotiated API version; see the module docstring."""

    def __init__(
        self,
        endpoint: Endpoint | str | None = None,
        version: str | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        if endpoint is None:
            endpoint = endpoint_from_environment()
        elif isinstance(endpoint, str):
            endpoint = parse_host(endpoint)
        self.endpoint = endpoint
        self.user_agent = user_agent
        if version is None:
            version = os.environ.get("FLOTTA_API_VERSION") or os.environ.get(
                "DOCKER_API_VERSION"
            )
        self._version = version.lstrip("v") if version else None
        self.ping_result: PingResult | None = None
        # list.append/pop are atomic, so threads (wait, resize, signal proxy) can share it.
        self._idle: list = []

    # -- version

    @property
    def version(self) -> str:
        """The negotiated API version (pings the daemon on first use)."""
        if self._version is None:
            self.negotiate()
        return self._version or API_VERSION_MAX

    def negotiate(self) -> str:
        ping = self.ping()
        server = ping.api_version or API_VERSION_FALLBACK
        if version_tuple(server) < version_tuple(API_VERSION_MAX):
            self._version = server
        else:
            self._version = API_VERSION_MAX
        return self._version

    def ping(self) -> PingResult:
        """HEAD /_ping, then GET when HEAD is refused; a 500 still counts (headers used)."""
        response = self.request("HEAD", "/_ping", versioned=False, check=False)
        response.close()
        if response.status not in (200, 500):
            response = self.request("GET", "/_ping", versioned=False, check=False)
            response.read(ERROR_BODY_BYTES_MAX)
            if response.status >= 400 and response.status != 500:
                raise APIError(response.status, f"ping failed with status {response.status}")
        self.ping_result = PingResult(response.headers)
        return self.ping_result

    # -- connections

    def _give_back(self, sock) -> None:
        if not self._idle:
            self._idle.append(sock)
        else:
            sock.close()

    def _take(self) -> tuple:
        try:
            return self._idle.pop(), True
        except IndexError:
            return self.endpoint.connect(), False

    def close(self) -> None:
        """Close the idle keep-alive connection (streams and responses close themselves)."""
        while self._idle:
            try:
                self._idle.pop().close()
            except IndexError:
                break

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        idle = getattr(self, "_idle", None)
        while idle:
            try:
                idle.pop().close()
            except (IndexError, OSError):
                break

    # -- requests

    def url(self, path: str, query: dict | None = None, versioned: bool = True) -> str:
        target = f"/v{self.version}{path}" if versioned else path
        encoded = encode_query(query)
        return f"{target}?{encoded}" if encoded else target

    def _send(self, sock, method, target, headers, body) -> None:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.endpoint.http_host()}",
                 f"User-Agent: {self.user_agent}"]
        chunked = body is not None and not isinstance(body, (bytes, bytearray))
        if isinstance(body, (bytes, bytearray)):
            lines.append(f"Content-Length: {len(body)}")
        elif chunked:
            lines.append("Transfer-Encoding: chunked")
        elif method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        for key, value in headers.items():
            lines.append(f"{key}: {value}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, (bytes, bytearray)):
            sock.sendall(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                sock.sendall(body)
        elif chunked:
            sock.sendall(head)
            for piece in body:
                if piece:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(head)

    def request(
        self,
        method: str,
        path: str,
        query: dict | None = None,
        *,
        body=None,
        json_body=_NO_BODY,
        headers: dict | None = None,
        versioned: bool = True,
        check: bool = True,
    ) -> Response:
        """Send one request and return the response with its body unread.

        `body` is bytes, or an iterable of bytes sent chunked; `json_body` is encoded as
        JSON with Content-Type application/json. With `check`, a status >= 400 raises
        APIError carrying the daemon's message.
        """
        all_headers = dict(headers or {})
        if json_body is not _NO_BODY:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            all_headers.setdefault("Content-Type", "application/json")
        target = self.url(path, query, versioned)
        retried = False
        while True:
            sock, reused = self._take()
            reader = SocketReader(sock)
            try:
                self._send(sock, method, target, all_headers, body)
                status, reason, response_headers = read_head(reader)
                break
            except (OSError, ProtocolError) as error:
                sock.close()
                # An idle keep-alive connection may have been closed by the daemon.
                if reused and not retried and (body is None or isinstance(body, bytes)):
                    retried = True
                    continue
                if isinstance(error, ProtocolError):
                    raise
                raise ConnectionFailed(self.endpoint.url, str(error)) from None
        response = Response(self, sock, reader, status, reason, response_headers, method)
        if check and status >= 400:
            raise error_from_response(response)
        return response

    def get_json(self, path: str, query: dict | None = None, headers: dict | None = None):
        return self.request("GET", path, query, headers=headers).json()

    def post_json(self, path: str, query: dict | None = None, body=_NO_BODY,
                  headers: dict | None = None):
        """POST (with an optional JSON body) and decode the JSON answer (None if empty)."""
        return self.request("POST", path, query, json_body=body, headers=headers).json()

    def delete(self, path: str, query: dict | None = None):
        return self.request("DELETE", path, query).json()

    def stream_json(self, method: str, path: str, query: dict | None = None, **kwargs):
        """Yield the JSON messages of a streaming endpoint (pull, push, build, events)."""
        response = self.request(method, path, query, **kwargs)
        with response:
            yield from response.iter_json()

    def hijack(
        self,
        path: str,
        query: dict | None = None,
        json_body=_NO_BODY,
        content_type: str = "text/plain",
    ) -> HijackedStream:
        """POST with `Upgrade: tcp` and return the raw bidirectional stream after the 101."""
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
        body = None
        if json_body is not _NO_BODY:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        else:
            headers["Content-Type"] = content_type
        target = self.url(path, query)
        sock = self.endpoint.connect()
        reader = SocketReader(sock)
        try:
            self._send(sock, "POST", target, headers, body)
            status, reason, response_headers = read_head(reader)
        except OSError as error:
            sock.close()
            raise ConnectionFailed(self.endpoint.url, str(error)) from None
        except BaseException:
            sock.close()
            raise
        if status >= 400:
            raise error_from_response(Response(None, sock, reader, status, reason,
                                               response_headers, "POST"))
        # Docker 28 insists on 101; daemons before API 1.24-ish answered 200 and still
        # switched to the raw stream, so accept both.
        if status not in (101, 200):
            sock.close()
            raise ProtocolError(f"unable to upgrade to tcp, received {status}")
        content = response_headers.get("content-type", "").split(";")[0].strip()
        return HijackedStream(sock, bytes(reader.buffer), content)
