"""A daemon killed in the middle of a RUN step: the next one clears what the build left."""

from __future__ import annotations

import json
import socket
import warnings
from pathlib import Path

import pytest
from buildexec_helpers import BuildDaemon, context_tar, mounted_under

from tests.harness import Flottad

pytestmark = [pytest.mark.root]


def start(flottad: Flottad) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        flottad.start()


def test_a_restart_clears_a_build_killed_mid_run(tmp_path: Path) -> None:
    flottad = Flottad(tmp_path)
    start(flottad)
    try:
        assert flottad.api("POST", "/flotta/bootstrap?image=busybox").status == 200
        daemon = BuildDaemon(flottad)
        body = context_tar({"Dockerfile": "FROM busybox\nRUN echo running && sleep 600\n"})
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(str(flottad.socket))
            connection.sendall(
                b"POST /build?networkmode=none HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-tar\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            )
            received = b""
            while b'{"stream":"running\\n"}' not in received:
                chunk = connection.recv(65536)
                assert chunk, received
                received += chunk
            holds = json.loads((flottad.data_root / "images" / "holds.json").read_text())
            assert any(holder.startswith("builder-") for holder in holds)
            flottad.kill()
        finally:
            connection.close()
        # conmon keeps the RUN container alive across the kill, as for any container.
        assert daemon.builder_leftovers()["containers"]
        start(flottad)
        assert daemon.builder_leftovers() == {}
        holds = json.loads((flottad.data_root / "images" / "holds.json").read_text())
        assert not any(holder.startswith("builder-") for holder in holds)
        assert [point for point in mounted_under(tmp_path) if "/builder/" in point] == []
        # And building works as before.
        assert "ok\n" in daemon.build({"Dockerfile": "FROM busybox\nRUN echo ok\n"}).text
    finally:
        flottad.stop()
