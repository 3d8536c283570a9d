"""Container networking figures: published ports, endpoint-to-endpoint, setup cost, DNS.

Everything runs inside network namespaces this script creates (a "host" netns holding
flotta's bridges and rules, an "outside" netns playing another machine, and the
containers' namespaces), with plain netns endpoints instead of containers: the data path
is the same veth/bridge/nftables one a crun container would use. Needs root.

Prints, side by side with the loopback ceiling (two processes on the host's 127.0.0.1):
- published-port throughput (MB/s) and connection rate from the host's loopback to a
  container (DNAT + route_localnet, what flotta does), from another host (DNAT), and
  through a userland proxy (what Docker's docker-proxy does for loopback) in two flavours:
  a splice(2) pump (zero-copy, the best a proxy can do) and a plain recv/send pump;
- endpoint-to-endpoint throughput on a user-defined network;
- the cost of setting up and tearing down an endpoint (first attach creates the netns),
  on the default bridge and on a user network (which adds the embedded DNS sockets);
- embedded DNS: queries per second for a container name, through the 127.0.0.11 redirect.

Payload pumps are separate Python processes (no GIL sharing) moving 1 MiB buffers.

    sudo .venv/bin/python bench/network_bench.py [--quick] [--megabytes N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.network import dnscodec, netns  # noqa: E402
from actors.network.driver import NetworkDriver  # noqa: E402
from actors.network.model import NetworkSpec, PortRequest  # noqa: E402
from runtime.disk import atomic_write  # noqa: E402

CHUNK_BYTES = 1 << 20
SINK_PORT = 7000
CEILING_PORT = 7001
PUBLISHED_PORT = 8080
SPLICE_PROXY_PORT = 8090
COPY_PROXY_PORT = 8091
HOST_UPLINK = "10.231.251.1"
OUTSIDE_ADDRESS = "10.231.251.2"


# ---- roles run as separate processes inside a namespace -------------------------------------


def role_sink(port: int) -> None:
    """Accept connections; read until EOF; answer the byte count (8 bytes) and close."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(512)
    print("ready", flush=True)

    def drain(connection: socket.socket) -> None:
        buffer = bytearray(CHUNK_BYTES)
        total = 0
        with connection:
            while True:
                count = connection.recv_into(buffer)
                if not count:
                    break
                total += count
            connection.sendall(struct.pack("!Q", total))

    while True:
        connection, _ = server.accept()
        threading.Thread(target=drain, args=(connection,), daemon=True).start()


def _receive_exactly(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise ConnectionError("peer closed early")
        data += chunk
    return data


def role_source(host: str, port: int, megabytes: int) -> None:
    chunk = b"\x5a" * CHUNK_BYTES
    with socket.create_connection((host, port), timeout=60) as connection:
        started = time.perf_counter()
        for _ in range(megabytes):
            connection.sendall(chunk)
        connection.shutdown(socket.SHUT_WR)
        (total,) = struct.unpack("!Q", _receive_exactly(connection, 8))
        elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "bytes": total}))


def role_connect(host: str, port: int, count: int) -> None:
    started = time.perf_counter()
    for _ in range(count):
        with socket.create_connection((host, port), timeout=10) as connection:
            connection.sendall(b"x")
            connection.shutdown(socket.SHUT_WR)
            _receive_exactly(connection, 8)
    print(json.dumps({"seconds": time.perf_counter() - started, "count": count}))


def role_proxy(listen_port: int, target_host: str, target_port: int, mode: str) -> None:
    """A userland TCP proxy, one thread per direction, as docker-proxy works."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(512)
    print("ready", flush=True)

    def pump(source: socket.socket, target: socket.socket) -> None:
        try:
            if mode == "splice":
                read_end, write_end = os.pipe()
                try:
                    while True:
                        moved = os.splice(source.fileno(), write_end, CHUNK_BYTES)
                        if not moved:
                            break
                        while moved:
                            moved -= os.splice(read_end, target.fileno(), moved)
                finally:
                    os.close(read_end)
                    os.close(write_end)
            else:
                buffer = bytearray(CHUNK_BYTES)
                view = memoryview(buffer)
                while True:
                    count = source.recv_into(buffer)
                    if not count:
                        break
                    target.sendall(view[:count])
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def serve(client: socket.socket) -> None:
        upstream = socket.create_connection((target_host, target_port))
        forward = threading.Thread(target=pump, args=(client, upstream))
        forward.start()
        pump(upstream, client)
        forward.join()
        client.close()
        upstream.close()

    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client,), daemon=True).start()


ROLES = {"sink": role_sink, "source": role_source, "connect": role_connect, "proxy": role_proxy}


# ---- orchestration -------------------------------------------------------------------------


def sh(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def netns_name(path_or_name: str) -> str:
    return path_or_name.rsplit("/", 1)[-1]


class Bench:
    def __init__(self, megabytes: int, repeats: int, connections: int, setups: int) -> None:
        tag = secrets.token_hex(3)
        self.host, self.outside = f"fbh-{tag}", f"fbo-{tag}"
        self.prefix = f"fbc{tag}-"
        self.megabytes, self.repeats, self.connections, self.setups = megabytes, repeats, connections, setups
        self.processes: list[subprocess.Popen] = []
        self.rows: list[tuple[str, str, str]] = []

    def build_world(self) -> None:
        sh("ip", "netns", "add", self.host)
        sh("ip", "netns", "add", self.outside)
        sh("ip", "-n", self.host, "link", "add", "uplink0", "type", "veth", "peer", "name", "wan0",
           "netns", self.outside)
        sh("ip", "-n", self.host, "address", "add", f"{HOST_UPLINK}/24", "dev", "uplink0")
        sh("ip", "-n", self.outside, "address", "add", f"{OUTSIDE_ADDRESS}/24", "dev", "wan0")
        for name, device in ((self.host, "uplink0"), (self.outside, "wan0")):
            sh("ip", "-n", name, "link", "set", "lo", "up")
            sh("ip", "-n", name, "link", "set", device, "up")
        sh("ip", "-n", self.host, "route", "add", "default", "via", OUTSIDE_ADDRESS)

    def spawn(self, namespace: str, role: str, *arguments: object) -> None:
        process = subprocess.Popen(
            ["ip", "netns", "exec", netns_name(namespace), sys.executable, __file__, "--role", role,
             *map(str, arguments)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.processes.append(process)
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{role} did not start in {namespace}")

    def measure(self, namespace: str, role: str, *arguments: object) -> dict:
        output = subprocess.run(
            ["ip", "netns", "exec", netns_name(namespace), sys.executable, __file__, "--role", role,
             *map(str, arguments)],
            check=True, capture_output=True, text=True, timeout=600,
        ).stdout
        return json.loads(output)

    def throughput_once(self, namespace: str, host: str, port: int) -> float:
        result = self.measure(namespace, "source", host, port, self.megabytes)
        if result["bytes"] != self.megabytes * CHUNK_BYTES:
            raise RuntimeError(f"{host}:{port}: {result['bytes']} bytes arrived of {self.megabytes} MiB")
        return result["bytes"] / result["seconds"] / 1e6

    def connections_once(self, namespace: str, host: str, port: int) -> float:
        result = self.measure(namespace, "connect", host, port, self.connections)
        return result["count"] / result["seconds"]

    def round_robin(self, cases: list[tuple[str, str, str, int]], kind: str) -> None:
        """Every case once per round, `repeats` rounds: load from other work on the machine
        then falls on all cases alike instead of on whichever ran during a burst."""
        samples: dict[str, list[float]] = {label: [] for label, *_ in cases}
        for _ in range(self.repeats):
            for label, namespace, host, port in cases:
                once = self.throughput_once if kind == "throughput" else self.connections_once
                samples[label].append(once(namespace, host, port))
        for label, values in samples.items():
            unit = "MB/s" if kind == "throughput" else "conn/s"
            spread = f"min {min(values):,.0f} max {max(values):,.0f}"
            self.rows.append((label, f"{statistics.median(values):,.0f} {unit}",
                              f"median of {len(values)} ({spread})"))

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        for name in sh("ip", "netns", "list").split():
            if name.startswith(self.prefix):
                sh("ip", "netns", "delete", name)
        for name in (self.host, self.outside):
            subprocess.run(["ip", "netns", "delete", name], check=False)


async def run_bench(bench: Bench, state_directory: Path) -> None:
    resolv = state_directory / "resolv.conf"
    state_directory.mkdir(parents=True, exist_ok=True)
    resolv.write_text("")
    driver = NetworkDriver(state_directory / "state", host_netns=bench.host, netns_prefix=bench.prefix,
                           resolv_conf_path=resolv)
    async with trio.open_nursery() as nursery:
        await driver.restore()
        await nursery.start(driver.serve)
        try:
            await measure_everything(bench, driver)
        finally:
            for container_id in list(driver.state.sandboxes):
                await driver.release_container(container_id)
            for network in list(driver.state.networks.values()):
                if not network.predefined:
                    await driver.remove_network(network.id)
            await driver.shutdown(no_containers_left=True)
            nursery.cancel_scope.cancel()


async def measure_everything(bench: Bench, driver: NetworkDriver) -> None:
    web_id, left_id, right_id = ("a" * 64), ("b" * 64), ("c" * 64)
    web = await driver.attach(web_id, "bridge", container_name="web")
    await driver.publish_ports(web_id, [PortRequest(SINK_PORT, "tcp", "", PUBLISHED_PORT, PUBLISHED_PORT)])
    await driver.create_network(NetworkSpec(name="benchnet"))
    left = await driver.attach(left_id, "benchnet", container_name="left")
    right = await driver.attach(right_id, "benchnet", container_name="right")

    bench.spawn(bench.host, "sink", CEILING_PORT)
    bench.spawn(web.sandbox_key, "sink", SINK_PORT)
    bench.spawn(right.sandbox_key, "sink", SINK_PORT)
    bench.spawn(bench.host, "proxy", SPLICE_PROXY_PORT, web.ipv4_address, SINK_PORT, "splice")
    bench.spawn(bench.host, "proxy", COPY_PROXY_PORT, web.ipv4_address, SINK_PORT, "copy")

    def blocking() -> None:
        bench.round_robin([
            ("host loopback (ceiling)", bench.host, "127.0.0.1", CEILING_PORT),
            ("published port, host 127.0.0.1 (DNAT)", bench.host, "127.0.0.1", PUBLISHED_PORT),
            ("published port, other host (DNAT)", bench.outside, HOST_UPLINK, PUBLISHED_PORT),
            ("userland proxy, splice (Docker's way)", bench.host, "127.0.0.1", SPLICE_PROXY_PORT),
            ("userland proxy, recv/send copy", bench.host, "127.0.0.1", COPY_PROXY_PORT),
            ("endpoint to endpoint, user network", left.sandbox_key, right.ipv4_address, SINK_PORT),
        ], "throughput")
        bench.round_robin([
            ("connections: host loopback (ceiling)", bench.host, "127.0.0.1", CEILING_PORT),
            ("connections: published port (DNAT)", bench.host, "127.0.0.1", PUBLISHED_PORT),
            ("connections: userland proxy (splice)", bench.host, "127.0.0.1", SPLICE_PROXY_PORT),
            ("connections: endpoint to endpoint", left.sandbox_key, right.ipv4_address, SINK_PORT),
        ], "connections")

    await trio.to_thread.run_sync(blocking)

    for network, label in (("bridge", "default bridge"), ("benchnet", "user network + DNS")):
        attach_ms, release_ms = [], []
        for index in range(bench.setups):
            container_id = f"{index:02x}" + "e" * 62
            started = time.perf_counter()
            await driver.attach(container_id, network, container_name=f"setup{index}")
            middle = time.perf_counter()
            await driver.release_container(container_id)
            attach_ms.append((middle - started) * 1000)
            release_ms.append((time.perf_counter() - middle) * 1000)
        bench.rows.append((f"endpoint setup, {label}", f"{statistics.median(attach_ms):.1f} ms",
                           f"median of {bench.setups}, p90 {sorted(attach_ms)[int(bench.setups * 0.9) - 1]:.1f} ms"))
        bench.rows.append((f"endpoint teardown, {label}", f"{statistics.median(release_ms):.1f} ms",
                           f"median of {bench.setups}"))

    writes = await trio.to_thread.run_sync(atomic_write_cost, driver.state_directory, bench.setups)
    bench.rows.append(("one atomic metadata write (an attach does 2)", f"{statistics.median(writes):.1f} ms",
                       f"median of {len(writes)}: temp file, fsync, rename, fsync dir"))
    reference = await trio.to_thread.run_sync(ip_cli_setup, bench, web.gateway)
    bench.rows.append(("endpoint setup, same steps with the ip CLI", f"{statistics.median(reference):.1f} ms",
                       f"median of {len(reference)}: the kernel's share under the same load"))

    rate = await dns_rate(left.sandbox_key, bench.connections)
    bench.rows.append(("embedded DNS, A query for a container name", f"{rate:,.0f} queries/s",
                       f"{bench.connections} sequential, via 127.0.0.11:53"))


def atomic_write_cost(directory: Path, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        atomic_write(directory / "bench-probe.json", b"{}" * 2000)
        timings.append((time.perf_counter() - started) * 1000)
    (directory / "bench-probe.json").unlink()
    return timings


def ip_cli_setup(bench: Bench, gateway: str) -> list[float]:
    """iproute2 doing what one attach does (netns, veth into it, bridge port, address, up,
    lo, default route): what the kernel work costs on this machine right now."""
    timings = []
    for index in range(bench.setups):
        name, veth = f"{bench.prefix}cli{index}", f"fbcli{index}"
        address = f"172.28.200.{index + 2}"
        started = time.perf_counter()
        sh("ip", "netns", "add", name)
        sh("ip", "-n", bench.host, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        sh("ip", "-n", bench.host, "link", "set", veth, "master", "flotta0", "up")
        sh("ip", "-n", name, "address", "add", f"{address}/16", "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", name, "route", "add", "default", "via", gateway)
        timings.append((time.perf_counter() - started) * 1000)
        sh("ip", "-n", bench.host, "link", "delete", veth)
        sh("ip", "netns", "delete", name)
    return timings


async def dns_rate(sandbox_key: str, count: int) -> float:
    client = trio.socket.from_stdlib_socket(netns.socket_in_netns(sandbox_key, socket.AF_INET, socket.SOCK_DGRAM))
    query = dnscodec.encode(dnscodec.Message(id=1, recursion_desired=True,
                                         questions=(dnscodec.Question(dnscodec.name_from_text("right")),)))
    with client:
        await client.connect(("127.0.0.11", 53))
        started = time.perf_counter()
        for _ in range(count):
            await client.send(query)
            reply = dnscodec.decode(await client.recv(4096))
            if not reply.answers:
                raise RuntimeError("the embedded DNS server did not know 'right'")
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=sorted(ROLES))
    parser.add_argument("arguments", nargs="*")
    parser.add_argument("--quick", action="store_true", help="small volumes, one repetition")
    parser.add_argument("--megabytes", type=int, default=0, help="MiB per throughput run (default 512, quick 128)")
    options = parser.parse_args()
    if options.role:
        function = ROLES[options.role]
        converted = [int(a) if a.isdigit() else a for a in options.arguments]
        function(*converted)
        return
    if os.geteuid() != 0:
        sys.exit("network_bench.py needs root (it creates network namespaces)")
    megabytes = options.megabytes or (128 if options.quick else 512)
    bench = Bench(megabytes, 1 if options.quick else 5, 300 if options.quick else 2000, 5 if options.quick else 30)
    bench.build_world()
    try:
        with tempfile.TemporaryDirectory(prefix="flotta-netbench-") as directory:
            trio.run(run_bench, bench, Path(directory))
    finally:
        bench.stop()
    width = max(len(row[0]) for row in bench.rows)
    print(f"flotta network bench ({os.cpu_count()} cores, {megabytes} MiB per throughput run)")
    for label, value, note in bench.rows:
        print(f"  {label:<{width}}  {value:>16}  {note}")


if __name__ == "__main__":
    main()
