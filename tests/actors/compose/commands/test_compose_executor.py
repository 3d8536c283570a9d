"""The executor against a recording fake engine: the API calls a plan turns into, in order,
and the messages dependency waits fail with (Docker Compose's)."""

from __future__ import annotations

import io
import textwrap

import pytest

from actors.compose import executor as executor_module
from actors.compose.executor import ExecutionError, Executor
from actors.compose.loader import load_files
from actors.compose.progress import Progress
from actors.compose.reconcile import Observed, ObservedContainer, Wait, plan


class FakeEngine:
    api_version = "1.45"

    def __init__(self, states: dict[str, list[dict]] | None = None) -> None:
        self.calls: list[tuple] = []
        self.states = states or {}
        self.created = 0

    def create_network(self, body):
        self.calls.append(("create network", body["Name"], body["Labels"][
            "com.docker.compose.network"]))
        return "net"

    def create_volume(self, body):
        self.calls.append(("create volume", body["Name"]))

    def create(self, query, body):
        self.created += 1
        self.calls.append(("create", query["name"]))
        return f"new{self.created}".ljust(64, "0"), []

    def start(self, container):
        self.calls.append(("start", container[:4]))

    def stop(self, container, timeout_seconds=None):
        self.calls.append(("stop", container[:4]))

    def remove(self, container, volumes=False, force=False):
        self.calls.append(("remove", container[:4]))

    def rename(self, container, name):
        self.calls.append(("rename", container[:4], name))

    def inspect(self, container):
        sequence = self.states.get(container[:4]) or [{}]
        state = sequence.pop(0) if len(sequence) > 1 else sequence[0]
        return {"Name": "/demo-db-1", "State": state, "Mounts": [],
                "Config": {"Healthcheck": {"Test": ["CMD", "true"]}}}

    def image(self, name):
        return {"Config": {"Volumes": None}}


def project(text: str, tmp_path):
    return load_files([(str(tmp_path / "compose.yaml"), textwrap.dedent(text))],
                      working_dir=str(tmp_path), project_name="demo").project


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(executor_module.time, "sleep", lambda seconds: None)


def test_fresh_project_calls(tmp_path):
    p = project("""
        services:
          web: {image: busybox, depends_on: [db], volumes: [data:/d]}
          db: {image: busybox}
        volumes: {data: {}}
        """, tmp_path)
    engine = FakeEngine()
    out = io.StringIO()
    Executor(engine, p, Progress(out)).apply(plan(p, Observed()))
    assert engine.calls == [
        ("create network", "demo_default", "default"), ("create volume", "demo_data"),
        ("create", "demo-db-1"), ("create", "demo-web-1"),
        ("start", "new1"), ("start", "new2")]
    assert out.getvalue().splitlines() == [
        " Network demo_default  Creating", " Network demo_default  Created",
        ' Volume "demo_data"  Creating', ' Volume "demo_data"  Created',
        " Container demo-db-1  Creating", " Container demo-db-1  Created",
        " Container demo-web-1  Creating", " Container demo-web-1  Created",
        " Container demo-db-1  Starting", " Container demo-db-1  Started",
        " Container demo-web-1  Starting", " Container demo-web-1  Started"]


def test_recreate_creates_under_a_temporary_name_then_swaps(tmp_path):
    p = project("services:\n  web: {image: busybox}\n", tmp_path)
    old = ObservedContainer(id="old1".ljust(64, "0"), name="demo-web-1", service="web",
                            number=1, config_hash="stale")
    engine = FakeEngine()
    out = io.StringIO()
    Executor(engine, p, Progress(out)).apply(plan(p, Observed(containers=(old,))), (old,))
    assert engine.calls[1:] == [
        ("create", "old100000000_demo-web-1"), ("stop", "old1"), ("remove", "old1"),
        ("rename", "new1", "demo-web-1"), ("start", "new1")]
    assert " Container demo-web-1  Recreate" in out.getvalue()
    assert " Container demo-web-1  Recreated" in out.getvalue()


def _waiting(tmp_path, states, condition="service_healthy", required=True):
    p = project("services:\n  db: {image: busybox}\n  web: {image: busybox}\n", tmp_path)
    engine = FakeEngine(states)
    runner = Executor(engine, p, Progress(io.StringIO()))
    runner.remember("db", executor_module.LiveContainer("db01".ljust(64, "0"), "demo-db-1", 1,
                                                        "running"))
    runner.wait_dependency("web", Wait("db", condition, required))
    return runner


def test_wait_healthy_polls_until_healthy(tmp_path):
    states = {"db01": [{"Status": "running", "Health": {"Status": "starting"}},
                       {"Status": "running", "Health": {"Status": "starting"}},
                       {"Status": "running", "Health": {"Status": "healthy"}}]}
    _waiting(tmp_path, states)
    assert states["db01"] == [{"Status": "running", "Health": {"Status": "healthy"}}]


@pytest.mark.parametrize(("state", "message"), [
    ({"Status": "running", "Health": {"Status": "unhealthy"}},
     "dependency failed to start: container demo-db-1 is unhealthy"),
    ({"Status": "exited", "ExitCode": 2},
     "dependency failed to start: container demo-db-1 exited (2)"),
    ({"Status": "running"},
     "dependency failed to start: container demo-db-1 has no healthcheck configured"),
])
def test_wait_healthy_failures(tmp_path, state, message):
    with pytest.raises(ExecutionError) as caught:
        _waiting(tmp_path, {"db01": [state]})
    assert str(caught.value) == message


def test_optional_dependency_failure_is_a_warning(tmp_path):
    runner = _waiting(tmp_path, {"db01": [{"Status": "exited", "ExitCode": 1}]}, required=False)
    assert runner.warnings == ['optional dependency "db" failed to start: container demo-db-1 '
                               "exited (1)"]


def test_wait_completed_successfully(tmp_path):
    _waiting(tmp_path, {"db01": [{"Status": "running"}, {"Status": "exited", "ExitCode": 0}]},
             condition="service_completed_successfully")
    with pytest.raises(ExecutionError) as caught:
        _waiting(tmp_path, {"db01": [{"Status": "exited", "ExitCode": 3}]},
                 condition="service_completed_successfully")
    assert str(caught.value) == 'service "db" didn\'t complete successfully: exit 3'


def test_missing_dependency(tmp_path):
    p = project("services:\n  db: {image: busybox}\n  web: {image: busybox}\n", tmp_path)
    runner = Executor(FakeEngine(), p, Progress(io.StringIO()))
    with pytest.raises(ExecutionError) as caught:
        runner.wait_dependency("web", Wait("db", "service_healthy"))
    assert str(caught.value) == "web is missing dependency db"
