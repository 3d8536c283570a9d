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


STEPS: list[Callable[[Tour], None]] = [step_runtime, step_simulator]


def main() -> int:
    if os.geteuid() != 0:
        print("make demo runs real containers and needs root", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="flotta-demo-"))
    tour = Tour(workdir)
    failed = False
    try:
        for step in STEPS:
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
