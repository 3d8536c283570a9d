"""A tiny Docker-API-shaped HTTP server on a UNIX socket, for the client's tests only.

Routes are (method, regex over the path without the /vX.Y prefix) -> handler(request)
returning a `Reply`. Every request is recorded. A reply can be sized, chunked (a list of
pieces, flushed one by one), or a hijack: the server answers 101 and hands the raw socket
to a function, as attach/exec do.
"""

import json
import re
import socketserver
import threading
from urllib.parse import parse_qs, urlsplit


class Request:
    def __init__(self, method, target, headers, body):
        self.method = method
        self.target = target
        parts = urlsplit(target)
        path = parts.path
        match = re.match(r"^/v(\d+\.\d+)(/.*)$", path)
        self.version = match.group(1) if match else None
        self.path = match.group(2) if match else path
        self.raw_path = path
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.raw_query = parts.query
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else None

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default


class Reply:
    def __init__(self, status=200, body=None, content_type="application/json", headers=None,
                 chunks=None, hijack=None, raw=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})
        self.chunks = chunks
        self.hijack = hijack
        self.raw = raw


REASONS = {101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
           400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        daemon = self.server.daemon
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            if not line.strip():
                continue
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers = {}
            while True:
                header = self.rfile.readline(65536).decode("latin-1").rstrip("\r\n")
                if not header:
                    break
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
            else:
                body = self.rfile.read(int(headers.get("content-length") or 0))
            request = Request(method, target, headers, body)
            daemon.requests.append(request)
            reply = daemon.dispatch(request)
            if reply.hijack is not None:
                self.wfile.write(
                    f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {reply.content_type}\r\n"
                    "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
                self.wfile.flush()
                reply.hijack(self.connection, self.rfile, request)
                return
            self._send(request, reply, daemon)
            if headers.get("connection", "").lower() == "close":
                return

    def _send(self, request, reply, daemon):
        head = [f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}",
                f"Api-Version: {daemon.api_version}", "Ostype: linux",
                "Docker-Experimental: false", "Server: Docker/stub (linux)"]
        for key, value in reply.headers.items():
            head.append(f"{key}: {value}")
        if reply.content_type:
            head.append(f"Content-Type: {reply.content_type}")
        if reply.chunks is not None:
            head.append("Transfer-Encoding: chunked")
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
            self.wfile.flush()
            for piece in reply.chunks:
                if callable(piece):
                    piece()
                    continue
                if isinstance(piece, str):
                    piece = piece.encode()
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        if reply.raw is not None:
            body = reply.raw
        elif reply.body is None:
            body = b""
        else:
            body = (json.dumps(reply.body) + "\n").encode()
        if request.method == "HEAD" or reply.status in (204, 304):
            body = b""
        head.append(f"Content-Length: {len(body)}")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        self.wfile.flush()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True


class StubDaemon:
    def __init__(self, socket_path, api_version="1.45"):
        self.socket_path = str(socket_path)
        self.api_version = api_version
        self.routes = []
        self.requests = []
        self.route("HEAD", "/_ping")(lambda request: Reply(200, content_type="text/plain"))
        self.route("GET", "/_ping")(lambda request: Reply(200, raw=b"OK",
                                                          content_type="text/plain"))
        self._server = None
        self._thread = None

    @property
    def url(self):
        return f"unix://{self.socket_path}"

    def route(self, method, pattern):
        def register(handler):
            self.routes.insert(0, (method, re.compile(pattern + r"\Z"), handler))
            return handler

        return register

    def reply(self, method, pattern, *args, **kwargs):
        """Register a fixed reply."""
        fixed = Reply(*args, **kwargs)
        self.route(method, pattern)(lambda request: fixed)

    def dispatch(self, request):
        for method, pattern, handler in self.routes:
            if method == request.method and pattern.match(request.path):
                return handler(request)
        return Reply(404, {"message": "page not found"})

    def calls(self, method=None, path_pattern=None):
        found = []
        for request in self.requests:
            if request.path == "/_ping":
                continue
            if method and request.method != method:
                continue
            if path_pattern and not re.match(path_pattern + r"\Z", request.path):
                continue
            found.append(request)
        return found

    def start(self):
        import os

        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self._server = _Server(self.socket_path, _Handler)
        self._server.daemon = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        import os

        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def frame(stream, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def read_available(sock, timeout_seconds=5.0):
    """Read from a hijacked socket until the peer half-closes (stdin EOF)."""
    sock.settimeout(timeout_seconds)
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except (TimeoutError, OSError):
            return data
        if not piece:
            return data
        data += piece
