"""Push and pull of a ~52 MB image (busybox plus a 50 MB layer of random bytes) between
flotta's image store and a loopback registry, next to skopeo copying the same image.

Registries: flotta's built-in one (`flotta registry serve`, a child process) and Debian's
`docker-registry` (distribution 2.8, a child process). Each run uses a fresh store and a
new repository, so every push compresses and uploads everything (Docker's first push of a
locally built image) and every pull starts from a store without the image (Docker's pull
after `rmi`). skopeo copies the same image between an OCI layout and the registry as the
peer figure (skopeo only writes the blobs into the layout: no decompression, no
unpacking). Medians of the runs are printed with Docker 20.10's figures measured on this
machine for reference; compare them with skopeo's figure of the same run, which shows how
loaded the machine is.

    .venv/bin/python bench/registry_bench.py [runs]
"""

from __future__ import annotations

import functools
import io
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import trio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from actors.images.bootstrap import bootstrap_busybox  # noqa: E402
from actors.images.pull import pull  # noqa: E402
from actors.images.push import push  # noqa: E402
from actors.images.store import ImageStore  # noqa: E402

DOCKER_REFERENCE_SECONDS = {"push": 1.2, "pull": 0.523, "skopeo pull": 0.299}
BIG_LAYER_BYTES = 50 * 1024 * 1024
DOCKER_REGISTRY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)


def start_builtin(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.images.registry_server", "serve",
         "--addr", f"127.0.0.1:{port}", "--root", str(directory / "builtin")],
        cwd=ROOT, stderr=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/v2/", process, "flotta registry")
    return process, f"127.0.0.1:{port}"


def start_docker_registry(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = directory / "docker-registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'docker-registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    process = subprocess.Popen([DOCKER_REGISTRY, "serve", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/v2/", process, "docker-registry")
    return process, f"127.0.0.1:{port}"


def big_layer_tar() -> bytes:
    data = random.Random(1).randbytes(BIG_LAYER_BYTES)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("data/random.bin")
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_store(directory: Path, layer: bytes, tag: str) -> ImageStore:
    """busybox plus the big layer, tagged `tag`: an image as `docker build` leaves it."""
    store = ImageStore(directory)
    busybox = store.image(bootstrap_busybox(store))
    big = store.add_layer_from_tar(io.BytesIO(layer))
    image_id = store.create_image({"config": {"Cmd": ["sh"]}}, [*busybox.diff_ids, big])
    store.tag(image_id, tag)
    return store


def cpu_seconds() -> float:
    """CPU time of this process (every thread) and of its finished children (skopeo)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function: Callable[..., object], *arguments: object, **options: object
          ) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call; the CPU figure hardly depends on how
    busy the machine is, the wall figure does."""
    started, cpu = time.perf_counter(), cpu_seconds()
    function(*arguments, **options)
    return time.perf_counter() - started, cpu_seconds() - cpu


def transfer(operation: Callable[..., object], store: ImageStore, reference: str) -> None:
    trio.run(functools.partial(operation, store, reference, progress=lambda _: None))


def skopeo(*arguments: str, home: Path) -> None:
    environment = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home),
                   "REGISTRY_AUTH_FILE": str(home / "auth.json")}
    subprocess.run(["skopeo", "--insecure-policy", "--tmpdir", str(home), *arguments],
                   check=True, capture_output=True, env=environment)


Figures = dict[str, list[tuple[float, float]]]


def measure(domain: str, directory: Path, layer: bytes, runs: int) -> Figures:
    figures: Figures = {"push": [], "pull": [], "skopeo pull": []}
    home = directory / "skopeo-home"
    home.mkdir(exist_ok=True)
    (home / "auth.json").write_text("{}")
    for run in range(runs):
        reference = f"{domain}/bench/app{run}:1"
        source = make_store(directory / f"source-{run}", layer, reference)
        figures["push"].append(timed(transfer, push, source, reference))
        target = ImageStore(directory / f"target-{run}")
        figures["pull"].append(timed(transfer, pull, target, reference))
        assert target.exists(reference)

        layout = directory / f"layout-{run}"
        figures["skopeo pull"].append(timed(
            skopeo, "copy", "--src-tls-verify=false", f"docker://{reference}",
            f"oci:{layout}:1", home=home))
        for path in (directory / f"source-{run}", directory / f"target-{run}", layout):
            shutil.rmtree(path)
    return figures


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    layer = big_layer_tar()
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMPDIR")) as temporary:
        directory = Path(temporary)
        for name, start in (("flotta registry", start_builtin),
                            ("docker-registry", start_docker_registry)):
            process, domain = start(directory)
            try:
                work = directory / name.replace(" ", "-")
                work.mkdir()
                results[name] = measure(domain, work, layer, runs)
            finally:
                process.terminate()
                process.wait()
    print(f"image: busybox + {BIG_LAYER_BYTES // (1 << 20)} MiB random layer; median of {runs} "
          f"runs, seconds wall (CPU of the client); load average {os.getloadavg()[0]:.1f}")
    print(f"{'':14}" + "".join(f"{name:>22}" for name in results) + f"{'Docker 20.10':>16}")
    for operation in ("push", "pull", "skopeo pull"):
        row = f"{operation:14}"
        for figures in results.values():
            wall = statistics.median(value[0] for value in figures[operation])
            cpu = statistics.median(value[1] for value in figures[operation])
            row += f"{wall:15.3f} ({cpu:.2f})"
        reference = DOCKER_REFERENCE_SECONDS.get(operation)
        row += f"{reference:16.3f}" if reference else ""
        print(row)
    print(json.dumps({name: {operation: [[round(v, 3) for v in value] for value in values]
                             for operation, values in figures.items()}
                      for name, figures in results.items()}))

if __name__ == "__main__":
    main()
