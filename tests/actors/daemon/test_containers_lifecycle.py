"""Real containers through the Engine API: create, start, wait, logs, attach, exec, stop,
kill, restart policies, AutoRemove, OOM, health, rename, pause, update, prune."""

from __future__ import annotations

import json
import time

import pytest

from tests.actors.daemon.flottad_fixture import (
    create,
    filters_query,
    inspect,
    network_body,
    wait_for,
)
from tests.actors.daemon.streams_client import demultiplex, hijack, open_stream
from tests.harness import Flottad

pytestmark = pytest.mark.root


def run_to_exit(flottad: Flottad, body: dict, name: str = "") -> tuple[str, int]:
    container = create(flottad, body, name)
    assert flottad.api("POST", f"/containers/{container}/start").status == 204
    result = flottad.api("POST", f"/containers/{container}/wait?condition=not-running")
    assert result.status == 200
    return container, int(result.json()["StatusCode"])


def logs(flottad: Flottad, container: str, query: str = "stdout=1&stderr=1") -> tuple[bytes, bytes]:
    response = flottad.api("GET", f"/containers/{container}/logs?{query}")
    assert response.status == 200, response.body
    assert response.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    return demultiplex(response.body)


def remove(flottad: Flottad, container: str) -> None:
    assert flottad.api("DELETE", f"/containers/{container}?force=1&v=1").status == 204


def test_run_wait_and_logs(flottad: Flottad) -> None:
    container, code = run_to_exit(flottad, {"Cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"]})
    assert code == 3
    assert logs(flottad, container) == (b"out\n", b"err\n")
    assert logs(flottad, container, "stdout=1") == (b"out\n", b"")
    stamped, _ = logs(flottad, container, "stdout=1&timestamps=1")
    assert stamped.endswith(b"Z out\n") and stamped[:4].isdigit()
    assert flottad.api("GET", f"/containers/{container}/logs").status == 400
    state = inspect(flottad, container)["State"]
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 3, False)
    assert state["FinishedAt"] >= state["StartedAt"] > "2000"
    remove(flottad, container)


def test_tail_and_since(flottad: Flottad) -> None:
    container, _ = run_to_exit(flottad, {"Cmd": ["sh", "-c", "for i in 1 2 3 4 5; do echo $i; done"]})
    assert logs(flottad, container, "stdout=1&tail=2")[0] == b"4\n5\n"
    assert logs(flottad, container, "stdout=1&tail=all")[0] == b"1\n2\n3\n4\n5\n"
    future = int(time.time()) + 3600
    assert logs(flottad, container, f"stdout=1&since={future}")[0] == b""
    remove(flottad, container)


def test_wait_headers_arrive_before_the_exit(flottad: Flottad) -> None:
    container = create(flottad, {"Cmd": ["sleep", "1000"]})
    waiting = open_stream(str(flottad.socket), "POST", f"/containers/{container}/wait?condition=next-exit")
    # The headers came while the container has not even started: `docker run` needs that.
    assert waiting.status == 200
    assert "application/json" in waiting.header("Content-Type")
    assert flottad.api("POST", f"/containers/{container}/start").status == 204
    assert flottad.api("POST", f"/containers/{container}/start").status == 304
    assert flottad.api("POST", f"/containers/{container}/kill?signal=KILL").status == 204
    body = json.loads(waiting.read_chunked_body())
    assert body == {"StatusCode": 137, "Error": None}
    removed = open_stream(str(flottad.socket), "POST", f"/containers/{container}/wait?condition=removed")
    assert flottad.api("DELETE", f"/containers/{container}").status == 204
    assert json.loads(removed.read_chunked_body())["StatusCode"] == 137
    assert flottad.api("POST", f"/containers/{container}/wait").status == 404
    assert flottad.api("POST", "/containers/x/wait?condition=someday").status == 400


def test_attach_before_start_sees_all_output_and_forwards_stdin(flottad: Flottad) -> None:
    container = create(flottad, {
        "Cmd": ["sh", "-c", "echo first; cat; echo last >&2"],
        "OpenStdin": True, "StdinOnce": True, "AttachStdin": True,
    })  # fmt: skip
    attached = hijack(
        str(flottad.socket), f"/v1.45/containers/{container}/attach?stream=1&stdin=1&stdout=1&stderr=1"
    )
    assert attached.status == 101
    assert attached.header("Content-Type") == "application/vnd.docker.multiplexed-stream"
    assert flottad.api("POST", f"/containers/{container}/start").status == 204
    attached.send(b"through stdin\n")
    attached.close_write()  # stdin EOF: cat ends because of StdinOnce
    out, err = demultiplex(attached.read_all())
    assert out == b"first\nthrough stdin\n" and err == b"last\n"
    assert flottad.api("POST", f"/containers/{container}/wait").json()["StatusCode"] == 0
    replay = hijack(str(flottad.socket), f"/containers/{container}/attach?logs=1&stdout=1&stderr=1")
    assert demultiplex(replay.read_all()) == (b"first\nthrough stdin\n", b"last\n")
    remove(flottad, container)


def test_tty_container_streams_raw(flottad: Flottad) -> None:
    container = create(flottad, {"Cmd": ["sh", "-c", "echo hi; stty size"], "Tty": True,
                                 "HostConfig": {"ConsoleSize": [30, 90]}})
    attached = hijack(str(flottad.socket), f"/containers/{container}/attach?stream=1&stdout=1&stderr=1")
    assert attached.header("Content-Type") == "application/vnd.docker.raw-stream"
    flottad.api("POST", f"/containers/{container}/start")
    output = attached.read_all()
    assert output.replace(b"\r\n", b"\n") == b"hi\n30 90\n"
    response = flottad.api("GET", f"/containers/{container}/logs?stdout=1")
    assert response.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    assert response.body.replace(b"\r\n", b"\n") == b"hi\n30 90\n"
    remove(flottad, container)


def test_failed_start_is_reported_like_docker(flottad: Flottad) -> None:
    container = create(flottad, {"Cmd": ["no-such-command"]})
    attached = hijack(str(flottad.socket), f"/containers/{container}/attach?stream=1&stdout=1&stderr=1")
    response = flottad.api("POST", f"/containers/{container}/start")
    assert response.status == 400
    assert response.json()["message"] == 'exec: "no-such-command": executable file not found in $PATH'
    assert attached.read_all() == b""  # the attach ends with the failed run
    state = inspect(flottad, container)["State"]
    assert (state["Status"], state["ExitCode"]) == ("created", 127)
    assert "executable file not found" in state["Error"]
    remove(flottad, container)


def test_exec(flottad: Flottad) -> None:
    container = create(flottad, {"Cmd": ["sleep", "1000"]})
    flottad.api("POST", f"/containers/{container}/start")
    created = flottad.api("POST", f"/containers/{container}/exec", {
        "Cmd": ["sh", "-c", "echo $GREETING from $(pwd); cat; exit 5"], "Env": ["GREETING=hello"],
        "WorkingDir": "/tmp", "AttachStdin": True, "AttachStdout": True, "AttachStderr": True,
    })  # fmt: skip
    assert created.status == 201
    exec_id = created.json()["Id"]
    before = flottad.api("GET", f"/exec/{exec_id}/json").json()
    assert before["Running"] is False and before["ExitCode"] is None and before["ContainerID"] == container
    session = hijack(str(flottad.socket), f"/exec/{exec_id}/start", {"Detach": False, "Tty": False})
    assert session.status == 101
    session.send(b"piped\n")
    session.close_write()
    assert demultiplex(session.read_all()) == (b"hello from /tmp\npiped\n", b"")
    after = flottad.api("GET", f"/exec/{exec_id}/json").json()
    assert after["ExitCode"] == 5 and after["Running"] is False and after["Pid"] > 0
    assert after["ProcessConfig"]["entrypoint"] == "sh"
    again = flottad.api("POST", f"/exec/{exec_id}/start", {"Detach": True})
    assert again.status == 409
    detached = flottad.api("POST", f"/containers/{container}/exec", {"Cmd": ["touch", "/tmp/detached"]}).json()["Id"]
    assert flottad.api("POST", f"/exec/{detached}/start", {"Detach": True}).status == 200
    wait_for(lambda: flottad.api("GET", f"/exec/{detached}/json").json()["ExitCode"] == 0)
    missing = flottad.api("POST", f"/containers/{container}/exec", {"Cmd": ["nope"], "AttachStdout": True}).json()["Id"]
    hijack(str(flottad.socket), f"/exec/{missing}/start", {}).read_all()
    assert flottad.api("GET", f"/exec/{missing}/json").json()["ExitCode"] == 127
    assert flottad.api("GET", f"/containers/{container}/json").json()["ExecIDs"]
    assert flottad.api("GET", "/exec/nope/json").status == 404
    flottad.api("POST", f"/containers/{container}/kill")
    stopped = flottad.api("POST", f"/containers/{container}/exec", {"Cmd": ["true"]})
    assert stopped.status == 409
    assert stopped.json()["message"] == f"container {container} is not running"
    remove(flottad, container)


def test_stop_kill_and_signals(flottad: Flottad) -> None:
    ignoring = create(flottad, {"Cmd": ["sleep", "1000"]})  # pid 1 without a handler ignores TERM
    flottad.api("POST", f"/containers/{ignoring}/start")
    assert flottad.api("POST", f"/containers/{ignoring}/stop?t=1").status == 204
    state = inspect(flottad, ignoring)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    assert flottad.api("POST", f"/containers/{ignoring}/stop").status == 304
    killed = flottad.api("POST", f"/containers/{ignoring}/kill")
    assert killed.status == 409
    assert killed.json()["message"] == f"Cannot kill container: {ignoring}: container {ignoring} is not running"
    trapping = create(flottad, {"Cmd": ["sh", "-c", "trap 'exit 42' TERM USR1; while true; do sleep 0.1; done"]})
    flottad.api("POST", f"/containers/{trapping}/start")
    time.sleep(0.3)  # let the shell install its trap (not an assertion on timing)
    assert flottad.api("POST", f"/containers/{trapping}/kill?signal=bogus").status == 400
    assert flottad.api("POST", f"/containers/{trapping}/kill?signal=10").status == 204  # USR1
    assert flottad.api("POST", f"/containers/{trapping}/wait").json()["StatusCode"] == 42
    never_started = create(flottad, {"Cmd": ["true"]})
    assert flottad.api("POST", f"/containers/{never_started}/stop").status == 304
    for container in (ignoring, trapping, never_started):
        remove(flottad, container)


def test_remove_rules(flottad: Flottad) -> None:
    container = create(flottad, {"Cmd": ["sleep", "1000"]}, name="busy-one")
    flottad.api("POST", f"/containers/{container}/start")
    refused = flottad.api("DELETE", "/containers/busy-one")
    assert refused.status == 409
    assert refused.json()["message"] == (
        'cannot remove container "/busy-one": container is running: stop the container before '
        "removing or force remove"
    )
    assert flottad.api("DELETE", "/containers/busy-one?force=1").status == 204
    assert flottad.api("GET", f"/containers/{container}/json").status == 404
    assert flottad.api("DELETE", "/containers/busy-one").json()["message"] == "No such container: busy-one"


def test_create_errors_leave_nothing(flottad: Flottad) -> None:
    before = len(flottad.api("GET", "/containers/json?all=1").json())
    missing = flottad.api("POST", "/containers/create", {"Image": "nosuchimage", "Cmd": ["true"]})
    assert missing.status == 404 and missing.json()["message"] == "No such image: nosuchimage:latest"
    bad = flottad.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Memory": 100}})
    assert bad.status == 400 and bad.json()["message"] == "Minimum memory limit allowed is 6MB"
    bad_mount = flottad.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {
        "Mounts": [{"Type": "bind", "Source": "/no/such/dir", "Target": "/x"}]}})  # fmt: skip
    assert bad_mount.status == 400
    assert bad_mount.json()["message"] == 'invalid mount config for type "bind": bind source path does not exist: /no/such/dir'
    create(flottad, {"Cmd": ["true"]}, name="taken")
    conflict = flottad.api("POST", "/containers/create?name=taken", {"Image": "busybox", "HostConfig": network_body(flottad)})
    assert conflict.status == 409
    holder = inspect(flottad, "taken")["Id"]
    assert conflict.json()["message"] == (
        f'Conflict. The container name "/taken" is already in use by container "{holder}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )
    assert len(flottad.api("GET", "/containers/json?all=1").json()) == before + 1
    remove(flottad, holder)


def test_auto_remove_and_anonymous_volumes(flottad: Flottad) -> None:
    container = create(flottad, {"Cmd": ["sh", "-c", "echo x > /scratch/f"], "Volumes": {"/scratch": {}},
                                 "HostConfig": {"AutoRemove": True}})
    volume = inspect(flottad, container)["Mounts"][0]["Name"]
    assert flottad.api("GET", f"/volumes/{volume}").status == 200
    waiting = open_stream(str(flottad.socket), "POST", f"/containers/{container}/wait?condition=removed")
    flottad.api("POST", f"/containers/{container}/start")
    assert json.loads(waiting.read_chunked_body())["StatusCode"] == 0
    assert flottad.api("GET", f"/containers/{container}/json").status == 404
    wait_for(lambda: flottad.api("GET", f"/volumes/{volume}").status == 404)


def test_restart_policies(flottad: Flottad) -> None:
    failing = create(flottad, {"Cmd": ["sh", "-c", "exit 2"],
                               "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}})
    flottad.api("POST", f"/containers/{failing}/start")
    wait_for(lambda: inspect(flottad, failing)["RestartCount"] == 2 and inspect(flottad, failing)["State"]["Status"] == "exited")
    assert inspect(flottad, failing)["State"]["ExitCode"] == 2
    always = create(flottad, {"Cmd": ["sh", "-c", "exit 0"], "HostConfig": {"RestartPolicy": {"Name": "always"}}})
    flottad.api("POST", f"/containers/{always}/start")
    wait_for(lambda: inspect(flottad, always)["RestartCount"] >= 2)
    assert flottad.api("POST", f"/containers/{always}/stop?t=1").status == 204
    stopped = inspect(flottad, always)
    assert stopped["State"]["Status"] == "exited"
    count = stopped["RestartCount"]
    time.sleep(1.0)  # a stopped container must stay stopped: give a wrong restart time to happen
    assert inspect(flottad, always)["State"]["Status"] == "exited"
    assert inspect(flottad, always)["RestartCount"] == count
    remove(flottad, failing)
    remove(flottad, always)


def test_oom_kill_is_137_with_oom_killed(flottad: Flottad) -> None:
    container, code = run_to_exit(flottad, {
        "Cmd": ["sh", "-c", "x=a; while true; do x=$x$x$x; done"],
        "HostConfig": {"Memory": 8 * 1024 * 1024},
    })  # fmt: skip
    assert code == 137
    assert inspect(flottad, container)["State"]["OOMKilled"] is True
    remove(flottad, container)


def test_health_checks(flottad: Flottad) -> None:
    container = create(flottad, {
        "Cmd": ["sleep", "1000"],
        "Healthcheck": {"Test": ["CMD-SHELL", "test -f /tmp/ok"], "Interval": 100_000_000, "Retries": 2},
    })  # fmt: skip
    events = open_stream(str(flottad.socket), "GET", f"/events?filters={filters_query({'container': [container]})}")
    flottad.api("POST", f"/containers/{container}/start")
    assert inspect(flottad, container)["State"]["Health"]["Status"] in ("starting", "unhealthy")
    wait_for(lambda: inspect(flottad, container)["State"]["Health"]["Status"] == "unhealthy")
    listed = flottad.api("GET", "/containers/json?filters=" + filters_query({"health": ["unhealthy"]})).json()
    assert [item["Id"] for item in listed] == [container]
    assert listed[0]["Status"].endswith("(unhealthy)")
    exec_id = flottad.api("POST", f"/containers/{container}/exec", {"Cmd": ["touch", "/tmp/ok"]}).json()["Id"]
    flottad.api("POST", f"/exec/{exec_id}/start", {"Detach": True})
    wait_for(lambda: inspect(flottad, container)["State"]["Health"]["Status"] == "healthy")
    health = inspect(flottad, container)["State"]["Health"]
    assert health["FailingStreak"] == 0 and 1 <= len(health["Log"]) <= 5
    seen = events.read_until(b"health_status: healthy")
    assert b"health_status: unhealthy" in seen and b"health_status: healthy" in seen
    events.close()
    remove(flottad, container)


def test_rename_pause_and_update(flottad: Flottad) -> None:
    container = create(flottad, {"Cmd": ["sleep", "1000"]}, name="before")
    create(flottad, {"Cmd": ["true"]}, name="other")
    assert flottad.api("POST", "/containers/before/rename?name=other").status == 409
    assert flottad.api("POST", "/containers/before/rename?name=after").status == 204
    assert inspect(flottad, "after")["Name"] == "/after"
    assert flottad.api("GET", "/containers/before/json").status == 404
    flottad.api("POST", "/containers/after/start")
    assert flottad.api("POST", "/containers/after/pause").status == 204
    assert inspect(flottad, "after")["State"]["Status"] == "paused"
    assert flottad.api("POST", "/containers/after/pause").status == 409
    assert flottad.api("POST", "/containers/after/unpause").status == 204
    assert inspect(flottad, "after")["State"]["Status"] == "running"
    updated = flottad.api("POST", "/containers/after/update", {"Memory": 64 * 1024 * 1024, "RestartPolicy": {"Name": "unless-stopped"}})
    assert updated.status == 200 and updated.json() == {"Warnings": []}
    host_config = inspect(flottad, "after")["HostConfig"]
    assert host_config["Memory"] == 64 * 1024 * 1024 and host_config["RestartPolicy"]["Name"] == "unless-stopped"
    pid = inspect(flottad, "after")["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as handle:
        memory_path = next(line.split(":")[2].strip() for line in handle if ":memory:" in line)
    with open(f"/sys/fs/cgroup/memory{memory_path}/memory.limit_in_bytes") as handle:
        assert int(handle.read()) == 64 * 1024 * 1024
    remove(flottad, container)
    remove(flottad, "other")


def test_list_top_stats_and_prune(flottad: Flottad) -> None:
    running = create(flottad, {"Cmd": ["sleep", "1000"], "Labels": {"role": "listed"}}, name="listed-running")
    stopped, _ = run_to_exit(flottad, {"Cmd": ["true"], "Labels": {"role": "listed"}}, name="listed-stopped")
    flottad.api("POST", f"/containers/{running}/start")
    query = filters_query({"label": ["role=listed"]})
    only_running = flottad.api("GET", f"/containers/json?filters={query}").json()
    assert [item["Names"] for item in only_running] == [["/listed-running"]]
    assert only_running[0]["Status"].startswith("Up ")
    everything = flottad.api("GET", f"/containers/json?all=1&size=1&filters={query}").json()
    assert [item["Names"][0] for item in everything] == ["/listed-stopped", "/listed-running"]
    assert everything[0]["Status"].startswith("Exited (0) ") and "SizeRw" in everything[0]
    top = flottad.api("GET", f"/containers/{running}/top?ps_args=aux").json()
    assert top["Titles"][-1] == "CMD" and any("sleep 1000" in row[-1] for row in top["Processes"])
    assert flottad.api("GET", f"/containers/{stopped}/top").status == 409
    sample = flottad.api("GET", f"/containers/{running}/stats?stream=0").json()
    assert sample["name"] == "/listed-running" and sample["id"] == running
    assert sample["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert sample["memory_stats"]["usage"] > 0 and sample["pids_stats"]["current"] >= 1
    one_shot = flottad.api("GET", f"/containers/{running}/stats?stream=0&one-shot=1").json()
    assert one_shot["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    pruned = flottad.api("POST", "/containers/prune?filters=" + filters_query({"label": ["role=listed"]})).json()
    assert pruned["ContainersDeleted"] == [stopped]
    assert flottad.api("GET", f"/containers/{running}/json").status == 200
    remove(flottad, running)


def test_events_of_a_run(flottad: Flottad) -> None:
    since = time.time()
    container, _ = run_to_exit(flottad, {"Cmd": ["true"]})
    remove(flottad, container)
    until = time.time() + 1
    events = flottad.api("GET", f"/events?since={since}&until={until}&filters=" + filters_query({"container": [container]}))
    actions = [item["Action"] for item in events.lines()]
    assert actions == ["create", "start", "die", "destroy"]
    die = events.lines()[2]
    assert die["Actor"]["Attributes"]["exitCode"] == "0" and die["Actor"]["Attributes"]["image"] == "busybox"


def test_a_slow_stop_does_not_hold_up_other_requests(flottad: Flottad) -> None:
    import threading

    container = create(flottad, {"Cmd": ["sleep", "1000"]})  # ignores SIGTERM: stop waits t
    flottad.api("POST", f"/containers/{container}/start")
    results: list[int] = []
    stopping = threading.Thread(
        target=lambda: results.append(flottad.api("POST", f"/containers/{container}/stop?t=3").status)
    )
    stopping.start()
    wait_for(lambda: inspect(flottad, container)["State"]["Status"] == "running")
    listed = flottad.api("GET", "/containers/json")
    other = create(flottad, {"Cmd": ["true"]})
    # Both answered while the stop still waits for its timeout.
    assert listed.status == 200 and stopping.is_alive()
    stopping.join()
    assert results == [204]
    remove(flottad, container)
    remove(flottad, other)
