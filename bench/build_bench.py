"""Build figures: a ~50 MB image built by flottad, cold, fully cached, and after one change.

The Dockerfile (FROM busybox, COPY of a 50 MB file the bench makes, a few RUNs, a small
COPY near the end) is built three ways, each a few times; the medians are printed next to
Docker 20.10's figures for the same work on this machine (no Docker engine runs here, so
those are reference numbers, not measured by this script):

- cold: nothing cached (a fresh cache via nocache=1, same layers in the store);
- cached: the same context again, every step ` ---> Using cache`;
- one change: the small copied file changed, so only its COPY and the steps after it run.

Timed end to end with the real docker CLI (`DOCKER_BUILDKIT=0 docker build`, which tars
the context and sends it, as in Docker's figures) and, separately, with a raw `POST
/build` from this process (the daemon's part alone). RUN steps run with `--network none`:
the default bridge device is shared by every flottad on the host, and another daemon's
shutdown can remove it under the bench.

    sudo .venv/bin/python bench/build_bench.py [runs]
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import Flottad  # noqa: E402

BIG_FILE_BYTES = 50 * 1024 * 1024
DOCKERFILE = """FROM busybox
COPY big.bin /data/big.bin
RUN stat -c %s /data/big.bin > /data/size
RUN echo built > /built
ENV APP_MODE=bench
COPY app.txt /app/app.txt
RUN cat /app/app.txt > /app/copy.txt
CMD ["cat", "/app/app.txt"]
"""
# Docker Engine 20.10 on this machine: legacy builder and BuildKit (cold, cached, one change).
DOCKER_LEGACY_MS = (869, 62, 586)
DOCKER_BUILDKIT_MS = (592, 80, 311)


def make_context(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    block = os.urandom(1024 * 1024)
    with open(directory / "big.bin", "wb") as handle:
        for index in range(BIG_FILE_BYTES // len(block)):
            handle.write(index.to_bytes(4, "big") + block[4:])
    (directory / "app.txt").write_text("version 0\n")


def context_tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in sorted(os.listdir(directory)):
            tar.add(directory / name, arcname=name)
    return buffer.getvalue()


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=600)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def api_build(daemon: Flottad, body: bytes, query: str) -> tuple[float, str]:
    started = time.perf_counter()
    connection = UnixConnection(str(daemon.socket))
    connection.request("POST", f"/build?t=bench:latest&networkmode=none{query}", body=body,
                       headers={"Content-Type": "application/x-tar"})
    output = connection.getresponse().read().decode()
    connection.close()
    elapsed = time.perf_counter() - started
    if "Successfully built" not in output:
        raise RuntimeError(f"build failed:\n{output}")
    return elapsed, output


def cli_build(daemon: Flottad, context: Path, *flags: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        ["docker", "build", "--network", "none", *flags, "-t", "bench:latest", str(context)],
        env={**daemon.environment(), "DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false"},
        capture_output=True, text=True, check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or "Successfully built" not in result.stdout:
        raise RuntimeError(f"docker build failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def measure(daemon: Flottad, context: Path, runs: int, use_cli: bool) -> tuple[float, float, float]:
    cold: list[float] = []
    cached: list[float] = []
    changed: list[float] = []
    version = 0
    for _ in range(runs):
        version += 1
        (context / "app.txt").write_text(f"version {version}\n")
        if use_cli:
            elapsed, _ = cli_build(daemon, context, "--no-cache")
        else:
            elapsed, _ = api_build(daemon, context_tar(context), "&nocache=1")
        cold.append(elapsed)
        if use_cli:
            elapsed, output = cli_build(daemon, context)
        else:
            elapsed, output = api_build(daemon, context_tar(context), "")
        if output.count("Using cache") != DOCKERFILE.count("\n") - 1:
            raise RuntimeError(f"expected every step cached:\n{output}")
        cached.append(elapsed)
        version += 1
        (context / "app.txt").write_text(f"version {version}\n")
        if use_cli:
            elapsed, output = cli_build(daemon, context)
        else:
            elapsed, output = api_build(daemon, context_tar(context), "")
        if output.count("Using cache") != 4:
            raise RuntimeError(f"expected the first four steps cached:\n{output}")
        changed.append(elapsed)
    return median_ms(cold), median_ms(cached), median_ms(changed)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if os.geteuid() != 0:
        sys.exit("build_bench: run as root (flottad creates containers)")
    with tempfile.TemporaryDirectory(prefix="flotta-build-bench-") as directory:
        base = Path(directory)
        daemon = Flottad(base)
        daemon.start()
        try:
            response = daemon.api("POST", "/flotta/bootstrap?image=busybox")
            if response.status != 200:
                raise RuntimeError(f"bootstrap failed: {response.body!r}")
            context = base / "context"
            make_context(context)
            cli_build(daemon, context)  # warm the store's layers and the page cache
            cli = measure(daemon, context, runs, use_cli=True)
            api = measure(daemon, context, runs, use_cli=False)
        finally:
            daemon.stop()
    print(f"build of a ~50 MB image, median of {runs} runs each (ms)")
    print(f"{'':28}{'cold':>10}{'cached':>10}{'one change':>12}")
    rows = [
        ("flotta, docker CLI", cli),
        ("flotta, raw POST /build", api),
        ("Docker 20.10 legacy (ref)", DOCKER_LEGACY_MS),
        ("Docker 20.10 BuildKit (ref)", DOCKER_BUILDKIT_MS),
    ]
    for name, (cold, cached, changed) in rows:
        print(f"{name:28}{cold:>10.0f}{cached:>10.0f}{changed:>12.0f}")
    targets = [value / 2 for value in DOCKER_LEGACY_MS]
    verdicts = [
        "met" if measured <= target else "missed"
        for measured, target in zip(cli, targets, strict=True)
    ]
    print(f"{'target (2x legacy)':28}{targets[0]:>10.0f}{targets[1]:>10.0f}{targets[2]:>12.0f}")
    print(f"{'with the CLI':28}{verdicts[0]:>10}{verdicts[1]:>10}{verdicts[2]:>12}")


if __name__ == "__main__":
    main()
