"""The HTTP layer: endpoints, query encoding, chunked bodies, JSON streams, hijack, TLS."""

import itertools
import json
import os
import socket
import ssl
import subprocess
import threading

import pytest
from client_stub_daemon import Reply, StubDaemon
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.client import api, wire

# --------------------------------------------------------------------------- endpoints


@pytest.mark.parametrize(("text", "scheme", "where"), [
    ("unix:///run/flotta.sock", "unix", "/run/flotta.sock"),
    ("tcp://10.0.0.1:2376", "tcp", ("10.0.0.1", 2376)),
    ("tcp://example.com", "tcp", ("example.com", 2375)),
    ("127.0.0.1:1234", "tcp", ("127.0.0.1", 1234)),
    ("tcp://[::1]:2375", "tcp", ("::1", 2375)),
    ("http://host:80/", "tcp", ("host", 80)),
])
def test_parse_host(text, scheme, where):
    endpoint = api.parse_host(text)
    assert endpoint.scheme == scheme
    if scheme == "unix":
        assert endpoint.path == where
    else:
        assert (endpoint.host, endpoint.port) == where


@pytest.mark.parametrize("text", ["", "unix://", "ssh://me@host", "tcp://host:99999",
                                  "tcp://host:abc", "tcp://::1:2375", "tcp://host/path"])
def test_parse_host_rejects_bad_addresses(text):
    with pytest.raises(api.UsageError):
        api.parse_host(text)


def test_endpoint_precedence():
    environ = {"DOCKER_HOST": "tcp://docker:1", "FLOTTA_HOST": "tcp://flotta:2"}
    assert api.endpoint_from_environment("tcp://flag:3", environ=environ).host == "flag"
    assert api.endpoint_from_environment(environ=environ).host == "flotta"
    assert api.endpoint_from_environment(environ={"DOCKER_HOST": "tcp://d:1"}).host == "d"
    assert api.endpoint_from_environment(environ={}).url == api.DEFAULT_HOST


def test_tls_settings_from_environment(tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    endpoint = api.endpoint_from_environment(
        environ={"DOCKER_HOST": "tcp://remote", "DOCKER_TLS_VERIFY": "1",
                 "DOCKER_CERT_PATH": str(tmp_path)})
    assert endpoint.port == api.DEFAULT_TLS_PORT
    assert endpoint.tls.verify
    assert endpoint.tls.ca_file == str(tmp_path / "ca.pem")
    assert endpoint.tls.key_file == str(tmp_path / "key.pem")
    plain = api.endpoint_from_environment(environ={"DOCKER_HOST": "tcp://remote:9"})
    assert plain.tls is None
    flotta = api.endpoint_from_environment(
        environ={"FLOTTA_HOST": "tcp://remote:9", "FLOTTA_TLS_VERIFY": "yes",
                 "FLOTTA_CERT_PATH": str(tmp_path)})
    assert flotta.tls.verify and flotta.port == 9
    unverified = api.endpoint_from_environment("tcp://remote:9", tls=True, environ={})
    assert unverified.tls is not None and not unverified.tls.verify


def test_encode_query_is_sorted_like_go():
    assert api.encode_query({"stream": True, "stdout": 1, "all": False, "skip": None,
                             "t": ["a:1", "b c"], "filters": '{"x":{"y":true}}'}) == (
        "all=0&filters=%7B%22x%22%3A%7B%22y%22%3Atrue%7D%7D&stdout=1&stream=1&t=a%3A1&t=b%20c")


# --------------------------------------------------------------------------- wire


class _Segments:
    """A socket stand-in returning pre-cut segments, to exercise every buffer boundary."""

    def __init__(self, segments):
        self.segments = list(segments)

    def recv(self, size):
        if not self.segments:
            return b""
        head = self.segments[0]
        piece, rest = head[:size], head[size:]
        if rest:
            self.segments[0] = rest
        else:
            self.segments.pop(0)
        return piece

    def close(self):
        pass


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def _response(raw: bytes, cuts, method="GET"):
    reader = wire.SocketReader(_Segments(_cut(raw, cuts)))
    status, reason, headers = wire.read_head(reader)
    return api.Response(None, reader.sock, reader,
                        status, reason, headers, method)


@given(st.lists(st.binary(max_size=50), max_size=8), st.lists(st.integers(0, 10_000),
                                                               max_size=12))
def test_chunked_body_survives_any_segmentation(pieces, cuts):
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces if piece)
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: a\r\n\r\n" + body + b"0\r\n\r\n"
    response = _response(raw, cuts)
    assert response.read() == b"".join(pieces)
    assert response.headers["x"] == "a"


@given(st.binary(max_size=300), st.lists(st.integers(0, 10_000), max_size=12))
def test_sized_body_survives_any_segmentation(body, cuts):
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    assert _response(raw, cuts).read() == body


def test_truncated_chunked_body_is_a_protocol_error():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"
    with pytest.raises(api.ProtocolError):
        _response(raw, []).read()


def test_bad_status_line_is_a_protocol_error():
    with pytest.raises(api.ProtocolError):
        _response(b"SSH-2.0-OpenSSH\r\n\r\n", [])


def test_head_and_204_have_no_body():
    response = _response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", [], method="HEAD")
    assert response.read() == b""
    response = _response(b"HTTP/1.1 204 No Content\r\n\r\n", [])
    assert response.read() == b""


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200)
@given(st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=4), max_size=6),
       st.lists(st.integers(0, 10_000), max_size=15), st.sampled_from(["\n", "", "\r\n", " "]))
def test_json_stream_decoder_splits_anywhere(messages, cuts, separator):
    data = separator.join(json.dumps(m, ensure_ascii=False) for m in messages).encode()
    decoder = api.JSONStreamDecoder()
    decoded = []
    for piece in _cut(data, cuts):
        decoded.extend(decoder.feed(piece))
    decoder.finish()
    assert decoded == messages


def test_json_stream_decoder_reports_truncation_and_size_limit():
    decoder = api.JSONStreamDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    with pytest.raises(api.ProtocolError):
        decoder.finish()
    small = api.JSONStreamDecoder(message_bytes_max=10)
    with pytest.raises(api.ProtocolError):
        small.feed(b'{"a": "' + b"x" * 20)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"message":"No such container: x"}', "No such container: x"),
    (b"plain text failure\n", "plain text failure"),
    (b"", "404 Not Found"),
    (b'["not", "an", "object"]', '["not", "an", "object"]'),
])
def test_error_from_response(body, message):
    raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    error = api.error_from_response(_response(raw, []))
    assert error.status == 404
    assert error.message == message
    assert str(error) == f"Error response from daemon: {message}"


# --------------------------------------------------------------------------- client


@pytest.fixture
def stub(short_dir):
    daemon = StubDaemon(os.path.join(short_dir, "api.sock"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_negotiation_takes_the_lower_version(stub):
    stub.api_version = "1.30"
    assert api.Client(stub.url).version == "1.30"
    stub.api_version = "1.51"
    assert api.Client(stub.url).version == "1.45"
    stub.api_version = ""
    assert api.Client(stub.url).version == "1.24"


def test_explicit_version_disables_negotiation(stub):
    client = api.Client(stub.url, version="1.40")
    stub.reply("GET", "/info", 200, {"ID": "x"})
    assert client.get_json("/info") == {"ID": "x"}
    assert [r.path for r in stub.requests] == ["/info"]
    assert stub.requests[0].version == "1.40"


def test_keep_alive_connection_is_reused(stub):
    stub.reply("GET", "/info", 200, {"ID": "x"})
    client = api.Client(stub.url)
    client.get_json("/info")
    first = client._idle[0]
    client.get_json("/info")
    assert client._idle == [first]
    client.close()
    assert client._idle == []


def test_stream_json_and_errors(stub):
    stub.reply("GET", "/events", 200, chunks=['{"a":1}\n{"b"', ':2}\n'])
    stub.reply("GET", "/broken", 500, {"message": "boom"})
    client = api.Client(stub.url)
    assert list(client.stream_json("GET", "/events")) == [{"a": 1}, {"b": 2}]
    with pytest.raises(api.APIError) as caught:
        client.get_json("/broken")
    assert caught.value.status == 500 and caught.value.message == "boom"


def test_chunked_request_body(stub):
    stub.reply("POST", "/build", 200, {})
    client = api.Client(stub.url)
    client.request("POST", "/build", body=iter([b"abc", b"", b"def"])).close()
    assert stub.calls("POST", "/build")[0].body == b"abcdef"


def test_hijack_keeps_bytes_that_arrived_with_the_headers(stub):
    def attach(sock, rfile, request):
        sock.sendall(b"early")
        data = rfile.read(5)
        sock.sendall(b"|" + data)
        sock.close()

    stub.route("POST", "/containers/x/attach")(
        lambda request: Reply(hijack=attach, content_type="application/vnd.docker.raw-stream"))
    stream = api.Client(stub.url).hijack("/containers/x/attach", {"stream": True})
    assert stream.content_type == "application/vnd.docker.raw-stream"
    stream.sendall(b"hello")
    received = b""
    while True:
        piece = stream.recv()
        if not piece:
            break
        received += piece
    assert received == b"early|hello"
    stream.close()
    (request,) = stub.calls("POST", "/containers/x/attach")
    assert request.headers["upgrade"] == "tcp"
    assert request.headers["connection"] == "Upgrade"


def test_hijack_error_status_is_an_api_error(stub):
    stub.reply("POST", "/containers/x/attach", 404, {"message": "No such container: x"})
    with pytest.raises(api.APIError) as caught:
        api.Client(stub.url).hijack("/containers/x/attach")
    assert caught.value.message == "No such container: x"


def test_connection_refused_names_the_host(short_dir):
    client = api.Client(f"unix://{short_dir}/none.sock")
    with pytest.raises(api.ConnectionFailed) as caught:
        client.ping()
    assert str(caught.value) == (f"Cannot connect to the flotta daemon at unix://{short_dir}/"
                                 "none.sock. Is the flotta daemon running?")


# --------------------------------------------------------------------------- TLS


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def certificates(tmp_path):
    directory = str(tmp_path)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out",
             "ca.pem", "-days", "1", "-subj", "/CN=test-ca", cwd=directory)
    (tmp_path / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out",
                 f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", "san.cnf",
                 cwd=directory)
    return tmp_path


@pytest.fixture
def tls_server(certificates):
    """A one-route HTTPS server on loopback that requires a client certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                         cafile=str(certificates / "ca.pem"))
    context.load_cert_chain(str(certificates / "server.pem"),
                            str(certificates / "server-key.pem"))
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\n"
                                b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_tls_verify_with_client_certificate(certificates, tls_server):
    endpoint = api.endpoint_from_environment(
        f"tcp://127.0.0.1:{tls_server}", tlsverify=True,
        tlscacert=str(certificates / "ca.pem"), tlscert=str(certificates / "client.pem"),
        tlskey=str(certificates / "client-key.pem"), environ={})
    assert api.Client(endpoint).ping().api_version == "1.45"


def test_tls_verify_rejects_an_unknown_ca(certificates, tls_server, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out",
             "ca.pem", "-days", "1", "-subj", "/CN=other", cwd=str(other))
    endpoint = api.endpoint_from_environment(
        f"tcp://127.0.0.1:{tls_server}", tlsverify=True, tlscacert=str(other / "ca.pem"),
        tlscert=str(certificates / "client.pem"), tlskey=str(certificates / "client-key.pem"),
        environ={})
    with pytest.raises(api.ConnectionFailed):
        api.Client(endpoint).ping()
