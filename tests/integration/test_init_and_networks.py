"""`--init`, and networking through the real docker CLI: names, isolation, ports, NAT, volumes."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Flottad

pytestmark = [pytest.mark.root, pytest.mark.compat]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str, attempts: int = 50) -> str:
    for _ in range(attempts):
        try:
            return urllib.request.urlopen(url, timeout=3).read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_init_runs_tini_as_pid_one(flottad: Flottad, busybox: str) -> None:
    plain = flottad.docker("run", "--rm", "busybox", "cat", "/proc/1/cmdline").stdout
    assert plain.split("\0")[0] == "cat"
    with_init = flottad.docker("run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline").stdout
    assert with_init.split("\0")[:3] == ["/sbin/docker-init", "--", "cat"]
    # tini reaps and forwards: a SIGTERM'd `sleep` under --init stops at once.
    flottad.docker("run", "-d", "--init", "--name", "inited", "busybox", "sleep", "1000")
    started = time.monotonic()
    flottad.docker("stop", "-t", "20", "inited")
    assert time.monotonic() - started < 10
    flottad.docker("rm", "inited")


def test_containers_talk_by_name_and_networks_are_isolated(flottad: Flottad, busybox: str) -> None:
    flottad.docker("network", "create", "front-net")
    flottad.docker("network", "create", "back-net")
    try:
        flottad.docker("run", "-d", "--name", "api", "--network", "back-net", "--network-alias", "service",
                       "busybox", "sh", "-c", "echo pong > /tmp/index.html && exec httpd -f -p 80 -h /tmp")
        by_name = flottad.docker("run", "--rm", "--network", "back-net", "busybox", "sh", "-c",
                                 "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 api 80 | tail -1")
        assert by_name.stdout.strip() == "pong"
        by_alias = flottad.docker("run", "--rm", "--network", "back-net", "busybox", "sh", "-c",
                                  "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 service 80 | tail -1")
        assert by_alias.stdout.strip() == "pong"
        inspect = json.loads(flottad.docker("inspect", "api").stdout)[0]
        address = inspect["NetworkSettings"]["Networks"]["back-net"]["IPAddress"]
        # Another network neither resolves the name nor reaches the address.
        other = flottad.docker("run", "--rm", "--network", "front-net", "busybox", "sh", "-c",
                               f"nslookup api >/dev/null 2>&1 && echo resolved; "
                               f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {address} 80 || echo unreachable",
                               check=False)
        assert "resolved" not in other.stdout
        assert "unreachable" in other.stdout
        # connect joins a running container to a second network.
        flottad.docker("network", "connect", "front-net", "api")
        joined = flottad.docker("run", "--rm", "--network", "front-net", "busybox", "sh", "-c",
                                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 api 80 | tail -1")
        assert joined.stdout.strip() == "pong"
        listing = flottad.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        assert {"bridge", "host", "none", "front-net", "back-net"} <= set(listing)
        busy = flottad.docker("network", "rm", "back-net", check=False)
        assert busy.returncode != 0 and "active endpoints" in busy.stderr
    finally:
        flottad.docker("rm", "-f", "api", check=False)
        flottad.docker("network", "rm", "front-net", "back-net", check=False)


def test_published_ports_from_loopback_and_ephemeral(flottad: Flottad, busybox: str) -> None:
    port = free_port()
    flottad.docker("run", "-d", "--name", "web", "-p", f"{port}:80", "-p", "8000",
                   "busybox", "sh", "-c", "echo hello-port > /tmp/index.html && exec httpd -f -p 80 -h /tmp")
    try:
        assert fetch(f"http://127.0.0.1:{port}/").strip() == "hello-port"
        ports = flottad.docker("port", "web").stdout
        assert f"80/tcp -> 0.0.0.0:{port}" in ports
        ephemeral_line = [line for line in ports.splitlines() if line.startswith("8000/tcp")]
        assert ephemeral_line
        ephemeral = int(ephemeral_line[0].rsplit(":", 1)[1])
        assert 32768 <= ephemeral <= 60999
        inspect = json.loads(flottad.docker("inspect", "web").stdout)[0]
        assert inspect["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"] == str(ephemeral)
        clash = flottad.docker("run", "-d", "-p", f"{port}:80", "busybox", "sleep", "5", check=False)
        assert clash.returncode != 0 and "port is already allocated" in clash.stderr
    finally:
        flottad.docker("rm", "-f", "web", check=False)
        flottad.docker("container", "prune", "-f", check=False)


@pytest.fixture
def outside_world() -> Iterator[tuple[str, str, str]]:
    """A network namespace playing "the outside world": a veth from the host to it, and a
    TCP server there that answers with the address it sees the client come from."""
    name = f"flotta-outside-{int(time.time() * 1000) % 100000}"
    host_end, outside_end = f"fo{name[-5:]}h", f"fo{name[-5:]}o"
    subnet_host, subnet_outside = "10.251.7.1", "10.251.7.2"
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_end, "type", "veth", "peer", "name", outside_end, "netns", name],
        ["ip", "addr", "add", f"{subnet_host}/30", "dev", host_end],
        ["ip", "link", "set", host_end, "up"],
        ["ip", "-n", name, "addr", "add", f"{subnet_outside}/30", "dev", outside_end],
        ["ip", "-n", name, "link", "set", outside_end, "up"],
        ["ip", "-n", name, "link", "set", "lo", "up"],
    ]
    server: subprocess.Popen[bytes] | None = None
    try:
        for command in commands:
            subprocess.run(command, check=True)
        script = (
            "import socket\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('{subnet_outside}', 9999)); s.listen()\n"
            "while True:\n"
            "    c, a = s.accept(); c.sendall(('seen-from ' + a[0] + '\\n').encode()); c.close()\n"
        )
        server = subprocess.Popen(["ip", "netns", "exec", name, "python3", "-c", script])
        time.sleep(0.5)
        yield subnet_outside, subnet_host, name
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", host_end], check=False)
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_outbound_traffic_is_masqueraded(flottad: Flottad, busybox: str, outside_world: tuple[str, str, str]) -> None:
    server, host_address, _ = outside_world
    reply = flottad.docker("run", "--rm", "busybox", "sh", "-c", f"nc -w 5 {server} 9999 </dev/null")
    assert reply.stdout.strip() == f"seen-from {host_address}"


def test_volumes_persist_and_read_only_mounts_refuse_writes(flottad: Flottad, busybox: str, tmp_path: Path) -> None:
    flottad.docker("volume", "create", "keep")
    try:
        flottad.docker("run", "--rm", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/file")
        assert flottad.docker("run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/file").stdout.strip() == "kept"
        refused = flottad.docker("run", "--rm", "-v", "keep:/data:ro", "busybox", "sh", "-c", "echo x > /data/file",
                                 check=False)
        assert refused.returncode != 0 and "Read-only file system" in refused.stderr
        host_dir = tmp_path / "bind"
        host_dir.mkdir()
        flottad.docker("run", "--rm", "-v", f"{host_dir}:/mnt", "busybox", "sh", "-c", "echo from-container > /mnt/f")
        assert (host_dir / "f").read_text().strip() == "from-container"
        in_use = flottad.docker("run", "-d", "--name", "holder", "-v", "keep:/data", "busybox", "sleep", "100")
        assert in_use.returncode == 0
        busy = flottad.docker("volume", "rm", "keep", check=False)
        assert busy.returncode != 0 and "volume is in use" in busy.stderr
    finally:
        flottad.docker("rm", "-f", "holder", check=False)
        flottad.docker("volume", "rm", "keep", check=False)


def test_a_published_port_serves_a_remote_host(flottad: Flottad, busybox: str, outside_world: tuple[str, str, str]) -> None:
    _, host_address, namespace = outside_world
    port = free_port()
    flottad.docker("run", "-d", "--name", "remote-web", "-p", f"{port}:80", "busybox", "sh", "-c",
                   "echo from-afar > /tmp/index.html && exec httpd -f -p 80 -h /tmp")
    try:
        request = "GET / HTTP/1.0\r\nHost: x\r\n\r\n"
        for _ in range(50):
            result = subprocess.run(
                ["ip", "netns", "exec", namespace, "busybox", "nc", "-w", "3", host_address, str(port)],
                input=request.encode(), capture_output=True, check=False,
            )
            if b"from-afar" in result.stdout:
                break
            time.sleep(0.1)
        assert b"from-afar" in result.stdout
    finally:
        flottad.docker("rm", "-f", "remote-web", check=False)
