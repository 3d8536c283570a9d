"""What the API shows of containers: inspect and list shapes, status texts, filters, records,
stream framing, detach keys, health checks, archive stat encoding, diffs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errdefs import InvalidParameter
from actors.supervisor import archive_helper, changes, filters, health, inspect, streams
from actors.supervisor.mounts import ResolvedMount
from actors.supervisor.records import ContainerRecord, RecordStore, RunState
from actors.supervisor.runspec import build_spec, parse_size_bytes
from actors.supervisor.stats import parse_net_dev

SECOND = 1_000_000_000


def record(name: str = "web", created_s: int = 1000, **state: object) -> ContainerRecord:
    return ContainerRecord(
        id=(name.encode().hex() * 64)[:64],
        name=name,
        created_ns=created_s * SECOND,
        image_id="sha256:" + "a" * 64,
        config={"Image": "busybox", "Labels": {"tier": "web", "x": "1"}, "Tty": False,
                "ExposedPorts": {"80/tcp": {}}, "Env": ["A=1"], "Hostname": "h"},
        host_config={"NetworkMode": "none", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}},
        endpoints={"none": {}},
        path="sh",
        args=["-c", "echo hi there"],
        mounts=[ResolvedMount("volume", "/data", "/v/_data", name="data")],
        state=RunState(**state),  # type: ignore[arg-type]
    )  # fmt: skip


# --- time and status texts ------------------------------------------------------------------


def test_rfc3339_is_gos_format() -> None:
    assert inspect.rfc3339_nano(0) == "0001-01-01T00:00:00Z"
    assert inspect.rfc3339_nano(1_700_000_000 * SECOND) == "2023-11-14T22:13:20Z"
    assert inspect.rfc3339_nano(1_700_000_000 * SECOND + 120_000_000) == "2023-11-14T22:13:20.12Z"


def test_status_texts() -> None:
    now = 2000 * SECOND
    assert inspect.status_text(record(), now) == "Created"
    running = record(status="running", started_ns=now - 120 * SECOND)
    assert inspect.status_text(running, now) == "Up 2 minutes"
    running.state.health = {"Status": "starting"}
    assert inspect.status_text(running, now) == "Up 2 minutes (health: starting)"
    running.state.health = {"Status": "healthy"}
    assert inspect.status_text(running, now) == "Up 2 minutes (healthy)"
    paused = record(status="paused", started_ns=now - 5 * SECOND)
    assert inspect.status_text(paused, now) == "Up 5 seconds (Paused)"
    exited = record(status="exited", exit_code=3, started_ns=now - 9 * SECOND, finished_ns=now - 3 * SECOND)
    assert inspect.status_text(exited, now) == "Exited (3) 3 seconds ago"
    restarting = record(status="restarting", exit_code=1, started_ns=1, finished_ns=now - 2 * SECOND)
    assert inspect.status_text(restarting, now) == "Restarting (1) 2 seconds ago"


def test_command_text_quotes_arguments_with_spaces() -> None:
    assert inspect.command_text("sh", ["-c", "echo hi there"]) == "sh -c 'echo hi there'"
    assert inspect.command_text("true", []) == "true"


def test_inspect_has_every_field_clients_index() -> None:
    body = inspect.inspect_body(record(status="running", pid=42, started_ns=5 * SECOND))
    assert body["Name"] == "/web"
    assert body["State"]["Status"] == "running" and body["State"]["Running"] and body["State"]["Pid"] == 42
    assert body["State"]["FinishedAt"] == "0001-01-01T00:00:00Z"
    assert body["Config"]["Tty"] is False
    assert body["HostConfig"]["NetworkMode"] == "none"
    assert body["NetworkSettings"]["Networks"]["none"]["IPAddress"] == ""
    assert body["NetworkSettings"]["Ports"] == {}
    assert body["Mounts"][0]["Destination"] == "/data"
    for key in ("Id", "Created", "Path", "Args", "Image", "LogPath", "RestartCount", "ExecIDs",
                "ResolvConfPath", "HostnamePath", "HostsPath", "Driver", "Platform", "GraphDriver"):  # fmt: skip
        assert key in body


def test_summary_shape() -> None:
    item = inspect.summary_body(record(status="exited", exit_code=0, started_ns=SECOND, finished_ns=SECOND), 10 * SECOND)
    assert item["Names"] == ["/web"]
    assert item["Command"] == "sh -c 'echo hi there'"
    assert item["Created"] == 1000
    assert item["State"] == "exited" and item["Status"] == "Exited (0) 9 seconds ago"
    assert item["HostConfig"] == {"NetworkMode": "none"}
    assert set(item["NetworkSettings"]["Networks"]) == {"none"}
    assert item["Ports"] == []


# --- filters --------------------------------------------------------------------------------


def test_filters() -> None:
    web = record("web", 1, status="running")
    db = record("db", 2, status="exited", exit_code=3)
    cache = record("cache", 3, status="created")
    everything = [web, db, cache]

    def select(all_containers: bool = True, limit: int = -1, **wanted: list[str]) -> list[str]:
        resolve = {r.name: r for r in everything}.__getitem__
        chosen = filters.select(everything, all_containers=all_containers, limit=limit, filters=wanted, resolve=resolve)
        return [r.name for r in chosen]

    assert select() == ["cache", "db", "web"]
    assert select(all_containers=False) == ["web"]
    assert select(all_containers=False, status=["exited"]) == ["db"]
    assert select(exited=["3"]) == ["db"]
    assert select(name=["^/w"]) == ["web"]
    assert select(name=["e"]) == ["cache", "web"]
    assert select(label=["tier=web"]) == ["cache", "db", "web"]
    assert select(label=["tier=db"]) == []
    assert select(before=["cache"]) == ["db", "web"]
    assert select(since=["web"]) == ["cache", "db"]
    assert select(limit=1) == ["cache"]
    assert select(volume=["data"]) == ["cache", "db", "web"]
    assert select(expose=["80"]) == ["cache", "db", "web"]
    assert select(expose=["81-90/tcp"]) == []
    assert select(health=["none"]) == ["cache", "db", "web"]
    assert select(id=[web.id[:6]]) == ["web"]
    assert select(network=["none"]) == ["cache", "db", "web"]


@pytest.mark.parametrize(
    "bad", [{"nope": ["x"]}, {"status": ["sleeping"]}, {"health": ["bad"]}, {"exited": ["x"]}, {"name": ["("]}]
)
def test_bad_filters_are_refused(bad: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidParameter):
        filters.check_list_filters(bad)


def test_prune_filters() -> None:
    target = record(created_s=100)
    assert filters.prune_matches(target, {"label": ["tier=web"]}, None)
    assert not filters.prune_matches(target, {"label!": ["tier"]}, None)
    assert not filters.prune_matches(target, {}, 50 * SECOND)
    assert filters.prune_matches(target, {}, 200 * SECOND)
    with pytest.raises(InvalidParameter):
        filters.check_prune_filters({"status": ["x"]})


# --- records --------------------------------------------------------------------------------


def test_records_round_trip_and_survive_corruption(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    original = record(status="running", pid=7, health={"Status": "healthy", "FailingStreak": 0, "Log": []})
    store.save(original)
    assert store.needs_sync
    store.sync()
    assert not store.needs_sync
    (loaded,) = store.load_all()
    assert loaded == original
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / ".half.json.tmp").write_text("x")
    assert [r.id for r in store.load_all()] == [original.id]
    assert (tmp_path / ".bad.json.corrupt").exists()
    assert not (tmp_path / ".half.json.tmp").exists()
    store.delete(original.id)
    store.delete(original.id)
    assert store.load_all() == []


# --- streams --------------------------------------------------------------------------------


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=70_000)), max_size=5))
def test_frames_round_trip(chunks: list[tuple[int, bytes]]) -> None:
    data = b"".join(streams.frame(stream, payload) for stream, payload in chunks)
    decoded = streams.parse_frames(data)
    rebuilt: dict[int, bytes] = {1: b"", 2: b""}
    for stream, payload in decoded:
        assert len(payload) <= streams.FRAME_PAYLOAD_BYTES_MAX
        rebuilt[stream] += payload
    expected: dict[int, bytes] = {1: b"", 2: b""}
    for stream, payload in chunks:
        expected[stream] += payload
    assert rebuilt == expected


def test_frame_header() -> None:
    assert streams.frame(1, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert streams.content_type(True, True) == streams.RAW_STREAM
    assert streams.content_type(False, True) == streams.MULTIPLEXED_STREAM
    assert streams.content_type(False, False) == streams.RAW_STREAM


def test_detach_key_syntax() -> None:
    assert streams.parse_detach_keys("") == b"\x10\x11"
    assert streams.parse_detach_keys("ctrl-a,x") == b"\x01x"
    assert streams.parse_detach_keys("ctrl-@,ctrl-_") == b"\x00\x1f"
    for bad in ("ctrl-", "ctrl-ab", "alt-x", ","):
        with pytest.raises(InvalidParameter, match="Invalid detach keys"):
            streams.parse_detach_keys(bad)


@given(st.binary(max_size=200), st.lists(st.integers(min_value=1, max_value=20), max_size=10))
def test_detach_detector_forwards_everything_when_there_is_no_sequence(data: bytes, cuts: list[int]) -> None:
    keys = b"\x10\x11"
    if keys in data:
        data = data.replace(keys, b"")
    detector = streams.DetachDetector(keys)
    forwarded = b""
    position = 0
    pieces = []
    for cut in cuts:
        pieces.append(data[position : position + cut])
        position += cut
    pieces.append(data[position:])
    detached = False
    for piece in pieces:
        out, detached = detector.feed(piece)
        forwarded += out
        if detached:
            break
    forwarded += detector.flush()
    if not detached:
        assert forwarded == data


@given(st.binary(max_size=50), st.binary(max_size=50), st.integers(min_value=0, max_value=60))
def test_detach_detector_finds_a_split_sequence(before: bytes, after: bytes, cut: int) -> None:
    keys = b"\x10\x11"
    before = before.replace(b"\x10", b"")
    stream = before + keys + after
    detector = streams.DetachDetector(keys)
    out1, first = detector.feed(stream[:cut])
    out2, second = (b"", False) if first else detector.feed(stream[cut:])
    assert first or second
    assert out1 + out2 == before


# --- health ---------------------------------------------------------------------------------


def probe(**overrides: object) -> health.Probe:
    found = health.probe_from_config({"Test": ["CMD-SHELL", "check"], "Retries": 2, **overrides})
    assert found is not None
    return found


def result(code: int) -> health.Result:
    return health.Result("s", "e", code, "out")


def test_probe_settings() -> None:
    assert health.probe_from_config({"Test": ["NONE"]}) is None
    assert health.probe_from_config(None) is None
    shell = probe()
    assert shell.command == ("/bin/sh", "-c", "check")
    assert (shell.interval_seconds, shell.timeout_seconds, shell.retries) == (30.0, 30.0, 2)
    direct = health.probe_from_config({"Test": ["CMD", "a", "b"], "Interval": 2 * SECOND})
    assert direct is not None and direct.command == ("a", "b") and direct.interval_seconds == 2.0


def test_health_state_machine() -> None:
    check = probe()
    state = health.HealthState()
    state = health.record_result(state, check, result(1), in_start_period=True)
    assert (state.status, state.failing_streak) == ("starting", 0)
    state = health.record_result(state, check, result(1), in_start_period=False)
    assert (state.status, state.failing_streak) == ("starting", 1)
    state = health.record_result(state, check, result(1), in_start_period=False)
    assert (state.status, state.failing_streak) == ("unhealthy", 2)
    state = health.record_result(state, check, result(0), in_start_period=False)
    assert (state.status, state.failing_streak) == ("healthy", 0)
    for _ in range(10):
        state = health.record_result(state, check, result(0), in_start_period=False)
    assert len(state.log) == health.LOG_ENTRIES_MAX
    assert health.HealthState.from_api(state.to_api()) == state
    long_output = health.Result("s", "e", 1, "x" * 10_000)
    clipped = health.record_result(state, check, long_output, False).log[-1]
    assert len(clipped.output) == health.OUTPUT_BYTES_MAX


# --- helpers --------------------------------------------------------------------------------


def test_go_file_modes() -> None:
    assert archive_helper.go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert archive_helper.go_file_mode(stat.S_IFREG | 0o644) == 0o644
    assert archive_helper.go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert archive_helper.go_file_mode(stat.S_IFCHR | 0o600) == (1 << 26) | (1 << 21) | 0o600
    assert archive_helper.go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == (1 << 23) | 0o755
    assert archive_helper.base_name("/a/b/") == "b"
    assert archive_helper.base_name("/a/.") == "."
    assert archive_helper.base_name("/") == "/"


def test_changes_of_an_upper_directory(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    upper = tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("x")
    (lower / "gone").write_text("x")
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "passwd").write_text("y")
    (upper / "new").write_text("z")
    (upper / "proc").mkdir()
    os.mknod(upper / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    assert changes.changes(str(upper), [str(lower)]) == [
        {"Path": "/etc", "Kind": 0},
        {"Path": "/etc/passwd", "Kind": 0},
        {"Path": "/gone", "Kind": 2},
        {"Path": "/new", "Kind": 1},
    ]


def test_net_dev_parsing() -> None:
    text = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n"
        "  eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n"
    )
    assert parse_net_dev(text) == {"eth0": {
        "rx_bytes": 2000, "rx_packets": 20, "rx_errors": 1, "rx_dropped": 2,
        "tx_bytes": 3000, "tx_packets": 30, "tx_errors": 3, "tx_dropped": 4,
    }}  # fmt: skip


def test_sizes_and_spec() -> None:
    assert parse_size_bytes("10m", "x") == 10 * 1024 * 1024
    assert parse_size_bytes("512", "x") == 512
    with pytest.raises(InvalidParameter):
        parse_size_bytes("ten", "x")
    target = record()
    target.host_config.update({"Memory": 64 * 1024 * 1024, "CpuShares": 1, "PidsLimit": -1, "ReadonlyRootfs": True})
    spec = build_spec(target, network="none", files_dir="/f")
    assert spec.args == ("sh", "-c", "echo hi there")
    assert (spec.hostname, spec.network, spec.readonly_rootfs) == ("h", "none", True)
    assert spec.resources.memory_bytes == 64 * 1024 * 1024
    assert spec.resources.cpu_shares == 2 and spec.resources.pids_limit == 0
    assert spec.hosts_file == "/f/hosts"
    assert spec.mounts[0].source == "/v/_data" and spec.mounts[0].destination == "/data"
