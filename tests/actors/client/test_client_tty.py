"""`run -it` on a real pseudo-terminal: raw mode, resize, detach keys, terminal restored."""

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading

import pytest
from client_stub_daemon import Reply
from conftest import REPOSITORY

CONTAINER_ID = "b" * 64


@pytest.fixture
def terminal():
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


def _routes(daemon, behaviour):
    finished = threading.Event()
    received = {"stdin": b""}

    def attach(sock, rfile, request):
        try:
            behaviour(sock, rfile, received)
        finally:
            sock.close()
            finished.set()

    daemon.reply("POST", "/containers/create", 201, {"Id": CONTAINER_ID, "Warnings": []})
    daemon.route("POST", "/containers/[^/]+/attach")(
        lambda request: Reply(hijack=attach, content_type="application/vnd.docker.raw-stream"))
    daemon.route("POST", "/containers/[^/]+/wait")(lambda request: Reply(200, chunks=[
        lambda: finished.wait(20), json.dumps({"StatusCode": 0}) + "\n"]))
    daemon.reply("POST", "/containers/[^/]+/start", 204)
    daemon.reply("POST", "/containers/[^/]+/resize", 200)
    return received


def _run(daemon, slave, args):
    environment = {"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": daemon.url,
                   "PYTHONPATH": REPOSITORY, "HOME": "/nonexistent"}
    return subprocess.Popen([sys.executable, "-m", "actors.client.main", *args],
                            stdin=slave, stdout=slave, stderr=slave, env=environment)


def _wait_for_raw_mode(slave, process, timeout_seconds=20.0):
    """Typing before the client switched the terminal to raw mode would be cooked."""
    import time

    deadline = time.monotonic() + timeout_seconds
    while termios.tcgetattr(slave)[3] & termios.ICANON:
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the client never put the terminal in raw mode")
        time.sleep(0.01)


def _drain(master, process, timeout_seconds=20.0):
    output = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                output += os.read(master, 65536)
            except OSError:
                break
        elif process.poll() is not None:
            break
        timeout_seconds -= 0.2
        if timeout_seconds <= 0:
            process.kill()
            break
    process.wait(10)
    return output


def test_run_it_raw_mode_resize_and_restore(daemon, terminal):
    master, slave = terminal

    def echo(sock, rfile, received):
        while b"exit\r" not in received["stdin"]:
            piece = rfile.read1(65536)
            if not piece:
                break
            received["stdin"] += piece
            sock.sendall(piece)

    received = _routes(daemon, echo)
    before = termios.tcgetattr(slave)
    process = _run(daemon, slave, ["run", "-it", "--rm", "busybox", "sh"])
    try:
        _wait_for_raw_mode(slave, process)
        os.write(master, b"hello\r")
        os.write(master, b"exit\r")
        output = _drain(master, process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, output
    # Raw mode: the carriage returns reach the container untranslated.
    assert received["stdin"] == b"hello\rexit\r"
    assert b"hello" in output
    assert termios.tcgetattr(slave) == before
    (create,) = daemon.calls("POST", "/containers/create")
    assert create.json()["Tty"] is True
    assert create.json()["HostConfig"]["ConsoleSize"] == [33, 101]
    resizes = daemon.calls("POST", "/containers/[^/]+/resize")
    assert resizes and resizes[0].query == {"h": ["33"], "w": ["101"]}


def test_detach_keys_leave_the_container_running(daemon, terminal):
    master, slave = terminal

    def hold(sock, rfile, received):
        while True:
            piece = rfile.read1(65536)
            if not piece:
                break
            received["stdin"] += piece

    received = _routes(daemon, hold)
    before = termios.tcgetattr(slave)
    process = _run(daemon, slave, ["run", "-it", "--detach-keys", "ctrl-a,d", "busybox"])
    try:
        _wait_for_raw_mode(slave, process)
        os.write(master, b"ls\r\x01d")
        output = _drain(master, process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, output
    assert received["stdin"] == b"ls\r"
    assert termios.tcgetattr(slave) == before
    (attach,) = daemon.calls("POST", "/containers/[^/]+/attach")
    assert attach.arg("detachKeys") == "ctrl-a,d"


def test_input_device_must_be_a_terminal_for_it(daemon, flotta):
    result = flotta("run", "-it", "busybox")
    assert result.returncode == 1
    assert result.stderr == b"the input device is not a TTY\n"
    assert daemon.calls() == []


def test_exec_it_resizes_the_exec_and_returns_its_exit_code(daemon, terminal):
    master, slave = terminal
    finished = threading.Event()

    def stream(sock, rfile, request):
        data = b""
        while b"\r" not in data:
            piece = rfile.read1(65536)
            if not piece:
                break
            data += piece
        sock.sendall(b"ran " + data)
        sock.close()
        finished.set()

    daemon.reply("GET", "/containers/web/json", 200, {"Id": CONTAINER_ID})
    daemon.reply("POST", "/containers/web/exec", 201, {"Id": "e" * 64})
    daemon.route("POST", "/exec/[^/]+/start")(lambda request: Reply(
        hijack=stream, content_type="application/vnd.docker.raw-stream"))
    daemon.reply("POST", "/exec/[^/]+/resize", 200)
    daemon.route("GET", "/exec/[^/]+/json")(lambda request: Reply(200, {
        "ExitCode": 4 if finished.wait(20) else None, "Running": False}))
    before = termios.tcgetattr(slave)
    process = _run(daemon, slave, ["exec", "-it", "web", "sh"])
    try:
        _wait_for_raw_mode(slave, process)
        os.write(master, b"id\r")
        output = _drain(master, process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 4, output
    assert b"ran id" in output
    assert termios.tcgetattr(slave) == before
    (create,) = daemon.calls("POST", "/containers/web/exec")
    assert create.json()["Tty"] is True and create.json()["ConsoleSize"] == [33, 101]
    assert create.json()["AttachStdin"] is True
    (start,) = daemon.calls("POST", "/exec/[^/]+/start")
    assert start.json() == {"Detach": False, "Tty": True, "ConsoleSize": [33, 101]}
    resizes = daemon.calls("POST", "/exec/[^/]+/resize")
    assert resizes and resizes[0].query == {"h": ["33"], "w": ["101"]}
