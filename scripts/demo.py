"""`make demo`: a tour of flotta on this machine.

Each step prints the command it runs, as a user would type it, and its output. The
engine steps start a private flottad (its own data root and socket under a temporary
directory) so the tour never touches /var/lib/flotta or an existing daemon, and stop it
at the end. Every step is real: real containers, a real registry on loopback, a real
simulated cluster run with its digest.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BOLD = "\033[1m" if sys.stdout.isatty() else ""
DIM = "\033[2m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""


class DemoFailed(RuntimeError):
    pass


def heading(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def say(text: str) -> None:
    print(textwrap.fill(text, 92), flush=True)


class Tour:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.socket = workdir / "flotta.sock"
        self.data_root = workdir / "data"
        self.exec_root = workdir / "run"
        self.daemon: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "FLOTTA_HOST": f"unix://{self.socket}",
            "DOCKER_HOST": f"unix://{self.socket}",
            "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        }

    # --- running things ------------------------------------------------------------------

    def run(self, command: str, *, check: bool = True, show: bool = True, timeout: float = 600, cwd: Path | None = None) -> str:
        print(f"{BOLD}$ {command}{RESET}", flush=True)
        result = subprocess.run(
            command, shell=True, cwd=cwd or self.workdir, env=self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        output = (result.stdout + result.stderr).rstrip()
        if show and output:
            print(textwrap.indent(output, "  "), flush=True)
        if check and result.returncode != 0:
            raise DemoFailed(f"`{command}` exited with {result.returncode}")
        return result.stdout

    def start_daemon(self) -> None:
        command = [
            PYTHON, "-m", "actors.daemon.main", "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root), "-H", f"unix://{self.socket}",
        ]
        print(f"{BOLD}$ flottad --data-root {self.data_root} -H unix://{self.socket} &{RESET}", flush=True)
        log = open(self.workdir / "flottad.log", "ab")  # noqa: SIM115 - owned by the daemon
        self.daemon = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise DemoFailed(f"flottad exited:\n{(self.workdir / 'flottad.log').read_text()[-3000:]}")
            probe = subprocess.run(
                [PYTHON, "-m", "actors.client.main", "version", "--format", "{{.Server.Version}}"],
                cwd=ROOT, env=self.env, capture_output=True, text=True, check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise DemoFailed("flottad did not start within 30 s")

    def ensure_daemon(self) -> None:
        """Steps can run alone (`--steps`): start the daemon and bootstrap busybox if needed."""
        if self.daemon is None:
            self.start_daemon()
        probe = subprocess.run(
            "flotta image inspect busybox", shell=True, env=self.env, capture_output=True, check=False
        )
        if probe.returncode != 0:
            self.run("flotta bootstrap busybox")

    def stop_daemon(self, kill: bool = False) -> None:
        if self.daemon is None:
            return
        if kill:
            print(f"{BOLD}$ kill -9 $(pidof flottad){RESET}", flush=True)
            self.daemon.send_signal(signal.SIGKILL)
        else:
            print(f"{BOLD}$ kill -TERM $(pidof flottad){RESET}", flush=True)
            self.daemon.send_signal(signal.SIGTERM)
        self.daemon.wait(timeout=60)
        self.daemon = None

    def cleanup(self) -> None:
        if self.daemon is None and self.socket.exists():
            pass
        try:
            if self.daemon is None:
                self.start_daemon()
            containers = self.run("flotta ps -aq", check=False, show=False).split()
            if containers:
                self.run("flotta rm -f " + " ".join(containers), check=False, show=False)
            self.run("flotta network prune -f", check=False, show=False)
        except DemoFailed:
            pass
        finally:
            if self.daemon is not None:
                self.stop_daemon()


# --- the steps ------------------------------------------------------------------------------


def step_runtime(tour: Tour) -> None:
    heading("1. The actor runtime")
    say(
        "Every component of flotta is a Trio actor with a bounded mailbox, talking by "
        "msgpack messages. Two nodes, an echo actor, asks and a supervised crash:"
    )
    tour.run(f"{shlex.quote(PYTHON)} {ROOT / 'scripts' / 'demo_runtime.py'}", cwd=ROOT)


def step_simulator(tour: Tour) -> None:
    heading("2. The deterministic simulator")
    say(
        "The same actors run in a simulated world: virtual time, a seeded network that "
        "drops, duplicates, delays and partitions, disks that lose unsynced writes, nodes "
        "that crash. The same seed gives the same trace digest, byte for byte:"
    )
    tour.run("flotta sim ping --seed 7 --nodes 5 --duration 60")
    tour.run("flotta sim ping --seed 7 --nodes 5 --duration 60 | grep digest")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def step_containers(tour: Tour) -> None:
    heading("3. Real containers")
    say(
        "flottad serves the Docker Engine API; flotta is its client. Containers are real: "
        "crun under conmon, an overlayfs root, namespaces and cgroups. busybox comes from "
        "the host's busybox-static, offline:"
    )
    tour.start_daemon()
    tour.run("flotta bootstrap busybox")
    tour.run("flotta images")
    tour.run("flotta run --rm busybox echo hello from a container")
    tour.run("flotta run --rm --memory 16m busybox sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes; hostname'")
    tour.run("flotta run -d --name sleeper busybox sh -c 'echo started; exec sleep 100000'")
    tour.run("flotta ps --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'")
    say("The real docker CLI works against the same daemon:")
    tour.run("docker ps --format '{{.Names}} {{.Status}}'")
    say(
        "Live restore: stop the daemon — even with kill -9 — and the container keeps "
        "running under its monitor; a new daemon finds it again with its logs:"
    )
    tour.stop_daemon(kill=True)
    tour.run("pgrep -c -f 'conmon .*--name sleeper' || pgrep -c conmon")
    tour.start_daemon()
    tour.run("flotta ps --format '{{.Names}} {{.Status}}'")
    tour.run("flotta logs sleeper")
    tour.run("flotta exec sleeper cat /proc/1/cmdline | tr '\\0' ' '; echo")
    tour.run("flotta rm -f sleeper")


def step_networks(tour: Tour) -> None:
    heading("4. Networks: names and published ports")
    tour.ensure_daemon()
    say("Containers on a user-defined network reach each other by name through the embedded DNS:")
    tour.run("flotta network create demo-net")
    tour.run("flotta run -d --name backend --network demo-net busybox httpd -f -p 80 -h /etc")
    tour.run(
        "flotta run --rm --network demo-net busybox sh -c "
        "'printf \"GET /hostname HTTP/1.0\\r\\n\\r\\n\" | nc backend 80 | tail -1'"
    )
    port = free_port()
    say(f"A published port serves a page to the host (127.0.0.1:{port} → the container's port 80):")
    tour.run(
        f"flotta run -d --name front -p {port}:80 busybox sh -c "
        "'echo \"<h1>hello from a flotta container</h1>\" > /tmp/index.html && exec httpd -f -p 80 -h /tmp'"
    )
    tour.run("flotta port front")
    tour.run(f"{shlex.quote(PYTHON)} -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=5).read().decode().strip())\"")
    tour.run("flotta rm -f backend front")
    tour.run("flotta network rm demo-net")


def step_build_and_registry(tour: Tour) -> None:
    heading("5. Build, push to the built-in registry, run")
    tour.ensure_daemon()
    say("A Dockerfile build with a layer per instruction and a cache; then the image goes to "
        "flotta's own registry on loopback and comes back from it:")
    tour.run(f"flotta build -t webapp:1 {ROOT / 'examples' / 'webapp'}")
    tour.run(f"flotta build -t webapp:1 {ROOT / 'examples' / 'webapp'} | grep -c 'Using cache'")
    registry_port = free_port()
    registry = subprocess.Popen(
        [PYTHON, "-m", "actors.images.registry_server", "serve", "--addr", f"127.0.0.1:{registry_port}",
         "--root", str(tour.workdir / "registry")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    print(f"{BOLD}$ flotta registry serve --addr 127.0.0.1:{registry_port} --root {tour.workdir / 'registry'} &{RESET}")
    try:
        time.sleep(1.0)
        target = f"127.0.0.1:{registry_port}/demo/webapp:1"
        tour.run(f"flotta tag webapp:1 {target}")
        tour.run(f"flotta push {target}")
        tour.run(f"flotta rmi {target} webapp:1 | tail -2")
        port = free_port()
        tour.run(f"flotta run -d --name webapp -p {port}:8080 {target}")
        time.sleep(0.5)
        tour.run(f"{shlex.quote(PYTHON)} -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/cgi-bin/hello?name=demo', timeout=5).read().decode())\"")
        tour.run("flotta rm -f webapp")
    finally:
        registry.terminate()
        registry.wait(10)


def step_compose(tour: Tour) -> None:
    heading("6. Compose: an application from one YAML file")
    tour.ensure_daemon()
    project = ROOT / "examples" / "compose" / "web-backend"
    say("A front end and a back end on the project's network; the front end's CGI script "
        "fetches from the back end by its service name:")
    tour.run(f"grep -v '^ *#' {project / 'compose.yaml'} | sed '/^$/d'")
    port = free_port()
    tour.env["FRONTEND_PORT"] = str(port)
    compose = f"flotta compose -f {project / 'compose.yaml'}"
    try:
        tour.run(f"{compose} up -d --wait", timeout=300)
        tour.run(f"{compose} ps")
        fetch = (
            f"{shlex.quote(PYTHON)} -c \"import urllib.request; "
            f"print(urllib.request.urlopen('http://127.0.0.1:{port}/cgi-bin/backend', timeout=10).read().decode().strip())\""
        )
        tour.run(fetch)
        tour.run(f"{compose} up -d --scale backend=3")
        tour.run(f"{compose} ps --format '{{{{.Name}}}} {{{{.State}}}}'")
        tour.run(f"{compose} logs --tail 2 backend")
    finally:
        tour.run(f"{compose} down -v", check=False)
        del tour.env["FRONTEND_PORT"]


def step_raft(tour: Tour) -> None:
    heading("7. Raft in the simulator, with faults")
    say(
        "Five Raft peers with clients doing reads, writes and compare-and-sets while the "
        "nemesis partitions, drops, duplicates, crashes and corrupts; safety is checked at "
        "every step and linearizability at the end:"
    )
    tour.run("flotta sim raft --seed 11 --nodes 5 --duration 60", timeout=900)


STEPS: list[Callable[[Tour], None]] = [
    step_runtime,
    step_simulator,
    step_containers,
    step_networks,
    step_build_and_registry,
    step_compose,
    step_raft,
]


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="flotta's tour")
    parser.add_argument("--steps", help="comma-separated step numbers to run (default: all)")
    arguments = parser.parse_args()
    chosen = STEPS
    if arguments.steps:
        wanted = {int(number) for number in arguments.steps.split(",")}
        chosen = [step for number, step in enumerate(STEPS, 1) if number in wanted]
    if os.geteuid() != 0:
        print("make demo runs real containers and needs root", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="flotta-demo-"))
    tour = Tour(workdir)
    failed = False
    try:
        for step in chosen:
            step(tour)
    except DemoFailed as error:
        print(f"\ndemo step failed: {error}", file=sys.stderr)
        failed = True
    finally:
        if tour.daemon is not None or tour.data_root.exists():
            tour.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    if not failed:
        heading("Done")
        say("Run `make test` for the test suite; docs/ has the guide and reference.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
