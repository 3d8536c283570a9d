"""Figures for the built-in registry: a 50 MB blob pushed and pulled over loopback.

The registry runs as `flotta registry serve` in a child process, so its CPU time can be read
from /proc; the client is flotta's DistributionClient. Prints wall-clock MB/s and the
server's CPU seconds for the upload (chunked PATCHes) and the download.

    .venv/bin/python bench/bench_registry.py [megabytes]
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time

import trio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from actors.images.distribution import DistributionClient, Repository  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def measure(port: int, pid: int, data: bytes) -> None:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    repository = Repository(f"127.0.0.1:{port}", "bench/app")
    megabytes = len(data) / 1e6

    async def source(offset: int):
        view = memoryview(data)
        for start in range(offset, len(data), 1 << 20):
            yield bytes(view[start:start + (1 << 20)])

    async with DistributionClient(chunk_bytes=16 << 20) as client:
        await client.blob_size(repository, digest)  # ping and warm up
        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        assert await client.push_blob(repository, digest, len(data), source) == "pushed"
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(pid) - cpu
        print(f"upload   {megabytes:.0f} MB: {megabytes / elapsed:7.0f} MB/s wall, "
              f"server CPU {server_cpu:.2f} s ({megabytes / max(server_cpu, 1e-9):.0f} MB/s)")

        received = 0

        async def sink(chunk: bytes) -> None:
            nonlocal received
            received += len(chunk)

        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        await client.fetch_blob(repository, digest, sink, size=len(data))
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(pid) - cpu
        assert received == len(data)
        print(f"download {megabytes:.0f} MB: {megabytes / elapsed:7.0f} MB/s wall, "
              f"server CPU {server_cpu:.2f} s ({megabytes / max(server_cpu, 1e-9):.0f} MB/s)")
        print("  (wall time includes the client's own sha256 verification)")


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    data = os.urandom(megabytes * 1_000_000)
    port = free_port()
    with tempfile.TemporaryDirectory() as root:
        server = subprocess.Popen(
            [sys.executable, "-m", "actors.images.registry_server", "serve",
             "--addr", f"127.0.0.1:{port}", "--root", root],
            cwd=ROOT, stderr=subprocess.PIPE, text=True)
        try:
            assert server.stderr is not None
            assert "listening" in server.stderr.readline()
            trio.run(measure, port, server.pid, data)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
