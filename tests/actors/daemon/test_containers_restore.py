"""Live restore: the daemon goes away (SIGTERM or SIGKILL) and comes back on the same data
root; containers keep running, exits that happened meanwhile are reported, and no create
that was acknowledged is lost while no half-created container shows up."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.actors.daemon.flottad_fixture import create, daemon_for, inspect, wait_for
from tests.actors.daemon.streams_client import demultiplex

pytestmark = pytest.mark.root


def process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_containers_outlive_the_daemon(tmp_path: Path, how: str) -> None:
    control = tmp_path / "control"
    control.mkdir()
    with daemon_for(tmp_path) as flottad:
        sleeper = create(flottad, {"Cmd": ["sh", "-c", "echo before; exec sleep 1000"]}, name="sleeper")
        exiter = create(flottad, {
            "Cmd": ["sh", "-c", "while [ ! -f /control/go ]; do sleep 0.05; done; echo bye; exit 7"],
            "HostConfig": {"Binds": [f"{control}:/control"]},
        }, name="exiter")  # fmt: skip
        for container in (sleeper, exiter):
            assert flottad.api("POST", f"/containers/{container}/start").status == 204
        wait_for(lambda: b"before" in flottad.api("GET", "/containers/sleeper/logs?stdout=1").body)
        sleeper_pid = inspect(flottad, "sleeper")["State"]["Pid"]
        exiter_pid = inspect(flottad, "exiter")["State"]["Pid"]
        if how == "sigterm":
            assert flottad.stop() == 0
        else:
            flottad.kill()
        assert not process_gone(sleeper_pid)
        (control / "go").write_text("")
        wait_for(lambda: process_gone(exiter_pid))
        flottad.start()
        running = flottad.api("GET", "/containers/json").json()
        assert [item["Names"] for item in running] == [["/sleeper"]]
        state = inspect(flottad, "sleeper")["State"]
        assert (state["Status"], state["Pid"]) == ("running", sleeper_pid)
        out, _ = demultiplex(flottad.api("GET", "/containers/sleeper/logs?stdout=1").body)
        assert out == b"before\n"
        exited = inspect(flottad, "exiter")["State"]
        assert (exited["Status"], exited["ExitCode"]) == ("exited", 7)
        assert demultiplex(flottad.api("GET", "/containers/exiter/logs?stdout=1").body)[0] == b"bye\n"
        # The re-armed exit watcher sees the sleeper go.
        assert flottad.api("POST", "/containers/sleeper/stop?t=1").status == 204
        assert inspect(flottad, "sleeper")["State"]["ExitCode"] == 137
        assert process_gone(sleeper_pid)
        assert flottad.api("POST", "/containers/sleeper/start").status == 204
        assert flottad.api("POST", "/containers/sleeper/kill").status == 204


def test_restart_policies_when_the_daemon_starts(tmp_path: Path) -> None:
    with daemon_for(tmp_path) as flottad:
        names = {"always-stopped": "always", "unless-stopped": "unless-stopped", "plain": "no"}
        for name, policy in names.items():
            container = create(flottad, {"Cmd": ["sleep", "1000"], "HostConfig": {"RestartPolicy": {"Name": policy}}}, name=name)
            flottad.api("POST", f"/containers/{container}/start")
            assert flottad.api("POST", f"/containers/{container}/stop?t=0").status == 204
        flottad.stop()
        flottad.start()
        wait_for(lambda: inspect(flottad, "always-stopped")["State"]["Status"] == "running")
        assert inspect(flottad, "unless-stopped")["State"]["Status"] == "exited"
        assert inspect(flottad, "plain")["State"]["Status"] == "exited"


def test_kill_during_creates_loses_nothing_acknowledged(tmp_path: Path) -> None:
    with daemon_for(tmp_path) as flottad:
        acknowledged: list[str] = []
        stop = threading.Event()

        def keep_creating() -> None:
            while not stop.is_set():
                try:
                    container = create(flottad, {"Cmd": ["true"]})
                except (AssertionError, OSError, ConnectionError):
                    return
                acknowledged.append(container)

        workers = [threading.Thread(target=keep_creating) for _ in range(4)]
        for worker in workers:
            worker.start()
        wait_for(lambda: len(acknowledged) >= 12)
        flottad.kill()
        stop.set()
        for worker in workers:
            worker.join()
        flottad.start()
        listed = {item["Id"] for item in flottad.api("GET", "/containers/json?all=1").json()}
        assert set(acknowledged) <= listed
        for container in listed:
            # Every listed container is whole: it runs and can be removed.
            assert flottad.api("POST", f"/containers/{container}/start").status == 204
            assert flottad.api("POST", f"/containers/{container}/wait").json()["StatusCode"] == 0
            assert flottad.api("DELETE", f"/containers/{container}").status == 204
        records = tmp_path / "flottad-data" / "containers" / "records"
        assert [name for name in os.listdir(records) if not name.startswith(".")] == []
