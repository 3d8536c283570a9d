"""Figures for runtime/httpserver.py: sequential keep-alive JSON GETs over a UNIX socket.

The server runs in a child process so its CPU time can be read from /proc; one client
sends requests one after another on a single connection. Prints requests/s and the
server's CPU time per request.

    .venv/bin/python bench/bench_httpserver.py [requests]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

SERVER = r"""
import sys, trio
from runtime.httpserver import HTTPServer, json_response, open_unix_listener

async def handler(request):
    return json_response({"Id": "abc", "Names": ["/web"], "State": "running"})

async def main(path):
    listener = await open_unix_listener(path)
    server = HTTPServer(handler, default_headers=[("Api-Version", "1.45"), ("Ostype", "linux")])
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, [listener])
        print("ready", flush=True)

trio.run(main, sys.argv[1])
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "bench.sock")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        server = subprocess.Popen([sys.executable, "-c", SERVER, path], cwd=root,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(path)
            request = b"GET /v1.45/containers/json HTTP/1.1\r\nHost: api.moby.localhost\r\n\r\n"

            def one() -> None:
                client.sendall(request)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += client.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += client.recv(65536)

            for _ in range(500):
                one()
            cpu_before = cpu_seconds(server.pid)
            started = time.perf_counter()
            for _ in range(count):
                one()
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(server.pid) - cpu_before
            client.close()
        finally:
            server.terminate()
            server.wait()
    print(f"sequential keep-alive GET over UNIX socket: {count} requests in {elapsed:.2f} s")
    print(f"  {count / elapsed:,.0f} requests/s from one client")
    print(f"  server CPU {cpu * 1e6 / count:.0f} us per request")


if __name__ == "__main__":
    main()
