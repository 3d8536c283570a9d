"""The real docker CLI (28.x) against flottad: the container lifecycle as users type it."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.actors.daemon.flottad_fixture import network_arguments, wait_for
from tests.harness import Flottad

pytestmark = [pytest.mark.root, pytest.mark.compat]


def run_in_pty(
    flottad: Flottad, argv: list[str], script: list[tuple[bytes, bytes]], timeout_seconds: float = 60
) -> tuple[int, bytes]:
    """Run `argv` on a terminal of 33x101; when the output contains each trigger (in order),
    type its answer. Returns the exit code and everything printed."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvpe(argv[0], argv, {**flottad.environment(), "DOCKER_CLI_HINTS": "false"})
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    output = b""
    pending = list(script)
    deadline = time.monotonic() + timeout_seconds
    try:
        while time.monotonic() < deadline:
            if pending and pending[0][0] in output:
                os.write(fd, pending.pop(0)[1])
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output


def test_version_info_and_images(flottad: Flottad) -> None:
    version = flottad.docker("version", "--format", "{{.Server.APIVersion}}")
    assert version.stdout.strip() == "1.45"
    info = flottad.docker("info", "--format", "{{.Containers}} {{.LoggingDriver}} {{.Driver}}")
    assert info.stdout.split()[1:] == ["json-file", "overlay2"]
    assert "busybox" in flottad.docker("images").stdout


def test_run_remove_and_exit_codes(flottad: Flottad) -> None:
    net = network_arguments(flottad)
    assert flottad.docker("run", "--rm", *net, "busybox", "echo", "hi").stdout == "hi\n"
    failing = flottad.docker("run", "--rm", *net, "busybox", "sh", "-c", "echo oops >&2; exit 3", check=False)
    assert (failing.returncode, failing.stderr) == (3, "oops\n")
    missing = flottad.docker("run", "--rm", *net, "busybox", "no-such-command", check=False)
    assert missing.returncode == 127
    assert 'exec: "no-such-command": executable file not found in $PATH' in missing.stderr
    assert flottad.docker("ps", "-aq").stdout == ""
    piped = flottad.docker("run", "--rm", "-i", *net, "busybox", "tr", "a-z", "A-Z", input="shout\n")
    assert piped.stdout == "SHOUT\n"


def test_detached_lifecycle(flottad: Flottad) -> None:
    net = network_arguments(flottad)
    started = flottad.docker("run", "-d", *net, "--name", "cli-web", "busybox", "sh", "-c",
                             "echo ready; trap 'exit 0' TERM; while true; do sleep 0.1; done")
    container_id = started.stdout.strip()
    assert len(container_id) == 64
    ps = flottad.docker("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout.split("\n")[0].split(" ", 2)
    assert ps[0] == container_id[:12] and ps[1] == "cli-web" and ps[2].startswith("Up ")
    wait_for(lambda: flottad.docker("logs", "cli-web").stdout == "ready\n")
    assert flottad.docker("exec", "cli-web", "sh", "-c", "echo $((40+2))").stdout == "42\n"
    exec_failure = flottad.docker("exec", "cli-web", "sh", "-c", "exit 6", check=False)
    assert exec_failure.returncode == 6
    inspected = json.loads(flottad.docker("inspect", "cli-web").stdout)[0]
    assert inspected["Id"] == container_id and inspected["State"]["Running"] is True
    assert inspected["HostConfig"]["LogConfig"]["Type"] == "json-file"
    top = flottad.docker("top", "cli-web").stdout
    assert "PID" in top.splitlines()[0] and "sleep" in top
    stats = flottad.docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "cli-web").stdout.split()
    assert stats[0] == "cli-web" and int(stats[1]) >= 1
    assert flottad.docker("restart", "-t", "5", "cli-web").stdout.strip() == "cli-web"
    assert json.loads(flottad.docker("inspect", "cli-web").stdout)[0]["State"]["Pid"] != inspected["State"]["Pid"]
    assert flottad.docker("stop", "cli-web").stdout.strip() == "cli-web"
    assert flottad.docker("inspect", "-f", "{{.State.ExitCode}}", "cli-web").stdout.strip() == "0"
    assert flottad.docker("wait", "cli-web").stdout.strip() == "0"
    flottad.docker("start", "cli-web")
    assert flottad.docker("kill", "cli-web").stdout.strip() == "cli-web"
    assert flottad.docker("wait", "cli-web").stdout.strip() == "137"
    assert flottad.docker("rm", "-f", "cli-web").stdout.strip() == "cli-web"
    assert flottad.docker("ps", "-aq", "--filter", "name=cli-web").stdout == ""


def test_interactive_tty(flottad: Flottad) -> None:
    net = network_arguments(flottad)
    code, output = run_in_pty(
        flottad, ["docker", "run", "-it", "--rm", *net, "busybox", "sh"],
        [(b"# ", b"echo $((6*7)); stty size; exit 5\r")],
    )  # fmt: skip
    assert code == 5
    text = output.replace(b"\r\n", b"\n")
    assert b"\n42\n33 101\n" in text
    flottad.docker("run", "-d", *net, "--name", "cli-tty", "busybox", "sleep", "1000")
    code, output = run_in_pty(flottad, ["docker", "exec", "-it", "cli-tty", "sh"], [(b"# ", b"tty; exit 4\r")])
    assert code == 4 and b"/dev/pts/" in output
    flottad.docker("rm", "-f", "cli-tty")


def test_detach_keys_leave_the_container_running(flottad: Flottad) -> None:
    net = network_arguments(flottad)
    code, _ = run_in_pty(flottad, ["docker", "run", "-it", *net, "--name", "cli-detach", "busybox", "sh"], [(b"# ", b"\x10\x11")])
    assert code == 0
    assert flottad.docker("inspect", "-f", "{{.State.Status}}", "cli-detach").stdout.strip() == "running"
    code, output = run_in_pty(flottad, ["docker", "attach", "cli-detach"], [(b"", b"\r"), (b"# ", b"echo back; exit 9\r")])
    assert code == 9 and b"back" in output, output
    flottad.docker("rm", "cli-detach")


def test_copy_and_commit(flottad: Flottad, tmp_path: Path) -> None:
    net = network_arguments(flottad)
    source = tmp_path / "payload"
    source.mkdir()
    (source / "note.txt").write_text("copied in\n")
    flottad.docker("run", "-d", *net, "--name", "cli-cp", "busybox", "sleep", "1000")
    flottad.docker("cp", str(source), "cli-cp:/tmp/")
    assert flottad.docker("exec", "cli-cp", "cat", "/tmp/payload/note.txt").stdout == "copied in\n"
    flottad.docker("cp", str(source), "cli-cp:/srv")  # a new name: the directory becomes /srv
    assert flottad.docker("exec", "cli-cp", "cat", "/srv/note.txt").stdout == "copied in\n"
    flottad.docker("exec", "cli-cp", "sh", "-c", "echo made inside > /made")
    flottad.docker("cp", "cli-cp:/made", str(tmp_path / "made"))
    assert (tmp_path / "made").read_text() == "made inside\n"
    image_id = flottad.docker("commit", "-c", "CMD [\"cat\", \"/made\"]", "cli-cp", "cli-committed:1").stdout.strip()
    assert image_id.startswith("sha256:")
    assert flottad.docker("run", "--rm", *net, "cli-committed:1").stdout == "made inside\n"
    flottad.docker("rm", "-f", "cli-cp")
    flottad.docker("rmi", "cli-committed:1")


def test_events_during_a_run(flottad: Flottad) -> None:
    net = network_arguments(flottad)
    events = subprocess.Popen(
        ["docker", "events", "--format", "{{.Type}} {{.Action}}", "--filter", "type=container"],
        env=flottad.environment(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.5)  # let the subscription start before the run (not an assertion)
        flottad.docker("run", "--rm", *net, "busybox", "true")
        seen: list[str] = []
        assert events.stdout is not None
        while "container destroy" not in seen:
            seen.append(events.stdout.readline().strip())
        assert seen[:2] == ["container create", "container attach"]
        assert seen[-3:] == ["container start", "container die", "container destroy"]
    finally:
        events.kill()
        events.wait()
        if events.stdout is not None:
            events.stdout.close()
