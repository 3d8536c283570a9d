"""Container start-up figures of flottad, printed side by side with the floor (`crun run`).

    .venv/bin/python bench/container_bench.py [--runs 20] [--detached 50]

Starts its own flottad on a temporary data root (as root), bootstraps busybox, and measures:
- `flotta run --rm busybox true` and `docker run --rm busybox true`, median of --runs, with
  `--network none` and on the default bridge (skipped with a note when flottad has no
  network component);
- the API path of one `run --rm` (create, attach, wait, start, exit, removal), split by
  call, median of --runs;
- --detached x `docker run -d busybox sleep 1000`, total wall time;
- flottad's RSS and the mean RSS of one container's conmon;
- `crun run` of the same root filesystem, the floor.

Reference (Docker 20.10 on this machine): 351 ms bridge, 252 ms none per `run --rm`; 13.3 s
for 50 detached; 13 MB RSS per shim; crun alone 12 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.actors.daemon.flottad_fixture import clean_up, has_networks, running_daemon  # noqa: E402
from tests.harness import PYTHON, Flottad  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(function: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_checked(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")


def client_runs(daemon: Flottad, runs: int, network: list[str]) -> dict[str, float]:
    env = {**daemon.environment(), "DOCKER_CLI_HINTS": "false"}
    docker = ["docker", "run", "--rm", *network, "busybox", "true"]
    flotta = [PYTHON, "-m", "actors.client.main", "run", "--rm", *network, "busybox", "true"]
    run_checked(docker, env)  # warm caches
    return {
        "docker run --rm": median_ms(timed(lambda: run_checked(docker, env), runs)),
        "flotta run --rm": median_ms(timed(lambda: run_checked(flotta, {**env, "PYTHONPATH": str(ROOT)}), runs)),
    }


def client_floor(daemon: Flottad, runs: int) -> float:
    """What the docker CLI costs by itself: `docker ps -q` (a ping and one cheap call)."""
    env = {**daemon.environment(), "DOCKER_CLI_HINTS": "false"}
    return median_ms(timed(lambda: run_checked(["docker", "ps", "-q"], env), runs))


class RawApi:
    """Minimal HTTP over the UNIX socket, to time the calls of one `docker run --rm`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        return sock

    def request(self, sock: socket.socket, method: str, target: str, body: object = None, upgrade: bool = False) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {target} HTTP/1.1", "Host: localhost", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        if upgrade:
            head += ["Connection: Upgrade", "Upgrade: tcp"]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)

    @staticmethod
    def read_head(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    @staticmethod
    def read_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
        while marker not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def api_path(daemon: Flottad, runs: int) -> dict[str, float]:
    api = RawApi(str(daemon.socket))
    phases: dict[str, list[float]] = {"create": [], "attach": [], "wait (headers)": [], "start": [],
                                      "exit -> removed": [], "total": []}  # fmt: skip
    for _ in range(runs):
        began = time.perf_counter()
        sock = api.connect()
        api.request(sock, "POST", "/v1.45/containers/create", {
            "Image": "busybox", "Cmd": ["true"], "AttachStdout": True, "AttachStderr": True,
            "HostConfig": {"NetworkMode": "none", "AutoRemove": True},
        })  # fmt: skip
        head = api.read_head(sock)
        body = head.partition(b"\r\n\r\n")[2]
        body = api.read_until(sock, b"}", body)
        container = json.loads(body[body.index(b"{") : body.rindex(b"}") + 1])["Id"]
        sock.close()
        created = time.perf_counter()
        attach = api.connect()
        api.request(attach, "POST", f"/v1.45/containers/{container}/attach?stream=1&stdout=1&stderr=1", upgrade=True)
        api.read_head(attach)
        attached = time.perf_counter()
        wait = api.connect()
        api.request(wait, "POST", f"/v1.45/containers/{container}/wait?condition=removed")
        api.read_head(wait)
        waiting = time.perf_counter()
        start = api.connect()
        api.request(start, "POST", f"/v1.45/containers/{container}/start")
        api.read_head(start)
        start.close()
        started = time.perf_counter()
        api.read_until(wait, b"StatusCode")
        done = time.perf_counter()
        wait.close()
        attach.close()
        for name, value in (("create", created - began), ("attach", attached - created),
                            ("wait (headers)", waiting - attached), ("start", started - waiting),
                            ("exit -> removed", done - started), ("total", done - began)):  # fmt: skip
            phases[name].append(value)
    return {name: median_ms(values) for name, values in phases.items()}


def detached(daemon: Flottad, count: int) -> tuple[float, int, int]:
    env = {**daemon.environment(), "DOCKER_CLI_HINTS": "false"}
    started = time.perf_counter()
    ids = []
    for _ in range(count):
        result = subprocess.run(["docker", "run", "-d", "--network", "none", "busybox", "sleep", "1000"],
                                env=env, capture_output=True, text=True, check=True)  # fmt: skip
        ids.append(result.stdout.strip())
    elapsed = time.perf_counter() - started
    state_root = daemon.data_root / "containers" / "state"
    conmon_rss = [rss_kib(int((state_root / cid / "conmon.pid").read_text())) for cid in ids]
    assert daemon.process is not None
    daemon_rss = rss_kib(daemon.process.pid)
    subprocess.run(["docker", "rm", "-f", *ids], env=env, capture_output=True, check=True)
    return elapsed, daemon_rss, int(statistics.mean(conmon_rss))


def crun_floor(daemon: Flottad, runs: int) -> float:
    layers = daemon.data_root / "images" / "layers"
    rootfs = next(path / "diff" for path in layers.iterdir() if (path / "diff" / "bin" / "busybox").exists())
    with tempfile.TemporaryDirectory(prefix="crun-bench-") as directory:
        bundle = Path(directory)
        subprocess.run(["crun", "spec"], cwd=bundle, check=True)
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["args"] = ["/bin/true"]
        config["process"]["terminal"] = False
        config["root"] = {"path": str(rootfs), "readonly": True}
        (bundle / "config.json").write_text(json.dumps(config))
        state = bundle / "state"
        counter = iter(range(10**6))

        def run_once() -> None:
            subprocess.run(["crun", "--root", str(state), "run", f"bench{next(counter)}"], cwd=bundle,
                           stdin=subprocess.DEVNULL, capture_output=True, check=True)  # fmt: skip

        run_once()
        return median_ms(timed(run_once, runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--detached", type=int, default=50)
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        print("container_bench: must run as root", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="flotta-bench-"))
    daemon = running_daemon(base)
    try:
        print(f"runs per figure: {arguments.runs} (medians); load average {os.getloadavg()[0]:.1f}")
        figures = client_runs(daemon, arguments.runs, ["--network", "none"])
        if has_networks(daemon):
            try:
                bridge = client_runs(daemon, arguments.runs, [])
            except RuntimeError as error:
                bridge = {}
                print(f"note: bridge runs failed, figures skipped: {error}")
        else:
            bridge = {}
            print("note: no network component in this flottad: bridge figures skipped")
        print(f"{'':28}{'--network none':>16}{'bridge':>12}   Docker 20.10 (none / bridge)")
        for name, value in figures.items():
            other = f"{bridge[name]:9.1f} ms" if name in bridge else "        -"
            print(f"{name:28}{value:13.1f} ms{other}   252 / 351 ms")
        print(f"{'docker ps -q (CLI floor)':28}{client_floor(daemon, arguments.runs):13.1f} ms")
        print("\nAPI path of one `run --rm` (--network none), medians:")
        for name, value in api_path(daemon, arguments.runs).items():
            print(f"  {name:20}{value:8.1f} ms")
        elapsed, daemon_rss, conmon_rss = detached(daemon, arguments.detached)
        print(f"\n{arguments.detached} x `docker run -d busybox sleep 1000`: {elapsed:.2f} s (Docker 20.10: 13.3 s)")
        print(f"flottad RSS with {arguments.detached} containers: {daemon_rss / 1024:.1f} MiB")
        print(f"conmon RSS per container: {conmon_rss / 1024:.2f} MiB (Docker's shim: 13 MB)")
        print(f"\ncrun run of the same rootfs (the floor): {crun_floor(daemon, arguments.runs):.1f} ms (12 ms measured before)")
    finally:
        clean_up(daemon)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
