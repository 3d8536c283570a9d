"""A real flottad for integration and compatibility tests.

`Flottad` starts the daemon as a subprocess on a temporary data root and UNIX socket,
waits until it answers `/_ping`, and stops it (SIGTERM) or kills it (SIGKILL) on request —
the live-restore tests restart it on the same data root. `api(...)` talks to it with the
standard library only.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class ApiResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


class Flottad:
    def __init__(self, base: Path, name: str = "flottad", extra_arguments: list[str] | None = None) -> None:
        self.base = base
        self.data_root = base / f"{name}-data"
        self.exec_root = base / f"{name}-run"
        self.socket = base / f"{name}.sock"
        self.log_path = base / f"{name}.log"
        self.extra_arguments = list(extra_arguments or [])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def environment(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "FLOTTA_HOST": self.host}

    def start(self, timeout_seconds: float = 30.0) -> None:
        command = [
            PYTHON, "-m", "actors.daemon.main",
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "-H", self.host,
            "--log-level", "debug",
            *self.extra_arguments,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"flottad exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.api("GET", "/_ping", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"flottad did not come up within {timeout_seconds}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout_seconds: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 120.0,
    ) -> ApiResponse:
        connection = UnixConnection(str(self.socket), timeout=timeout)
        try:
            data: bytes | None = None
            all_headers = dict(headers or {})
            if isinstance(body, bytes):
                data = body
            elif body is not None:
                data = json.dumps(body).encode()
                all_headers.setdefault("Content-Type", "application/json")
            connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            return ApiResponse(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def cli(self, *arguments: str, input: bytes | None = None, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the flotta client against this daemon."""
        result = subprocess.run(
            [PYTHON, "-m", "actors.client.main", *arguments],
            cwd=ROOT, env=self.environment(), input=input.decode() if input else None,
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"flotta {' '.join(arguments)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def docker(self, *arguments: str, input: str | None = None, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real docker CLI against this daemon."""
        result = subprocess.run(
            ["docker", *arguments], env={**self.environment(), "DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false"},
            input=input, capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(arguments)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result


@contextlib.contextmanager
def builtin_registry(root: Path) -> Iterator[str]:
    """flotta's built-in registry server on a free loopback port; yields `host:port`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.images.registry_server", "serve",
         "--addr", f"127.0.0.1:{port}", "--root", str(root)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"the registry server exited with {process.returncode}") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
