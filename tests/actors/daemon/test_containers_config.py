"""Create requests: moby's merge rules, validation messages, mounts, names, restart policies."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errdefs import Conflict, InvalidParameter, NotImplementedYet
from actors.supervisor import createconfig, mounts, naming, restart

IMAGE = {
    "Cmd": ["sh"],
    "Env": ["PATH=/usr/bin:/bin", "LANG=C"],
    "Labels": {"a": "image", "b": "image"},
    "ExposedPorts": {"80/tcp": {}},
    "Volumes": {"/data": {}},
    "WorkingDir": "/srv",
    "User": "daemon",
    "StopSignal": "SIGQUIT",
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 4},
}


def plan(body: dict, image: dict | None = None) -> createconfig.CreatePlan:
    return createconfig.plan_create({"Image": "busybox", **body}, IMAGE if image is None else image, cpu_count=2)


# --- merge ----------------------------------------------------------------------------------


def test_defaults_come_from_the_image() -> None:
    config = plan({}).config
    assert config["Cmd"] == ["sh"] and config["Entrypoint"] is None
    assert config["Env"] == ["PATH=/usr/bin:/bin", "LANG=C"]
    assert (config["WorkingDir"], config["User"], config["StopSignal"]) == ("/srv", "daemon", "SIGQUIT")
    assert config["Volumes"] == {"/data": {}} and config["ExposedPorts"] == {"80/tcp": {}}
    assert config["Healthcheck"]["Test"] == ["CMD", "true"]


def test_request_overrides_and_merges() -> None:
    config = plan({
        "Env": ["LANG=en", "X=1"], "Labels": {"b": "request", "c": "request"},
        "ExposedPorts": {"53/udp": {}}, "User": "root", "WorkingDir": "/w",
        "Healthcheck": {"Interval": 1_000_000_000},
    }).config  # fmt: skip
    assert config["Env"] == ["LANG=en", "X=1", "PATH=/usr/bin:/bin"]
    assert config["Labels"] == {"a": "image", "b": "request", "c": "request"}
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp"}
    assert (config["User"], config["WorkingDir"]) == ("root", "/w")
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 1_000_000_000, "Retries": 4}


def test_entrypoint_rules() -> None:
    image = {**IMAGE, "Entrypoint": ["/entry"], "Cmd": ["default"]}
    # null: the image's entrypoint and cmd
    config = plan({"Entrypoint": None}, image).config
    assert createconfig.entrypoint_and_args(config) == ("/entry", ["default"])
    # a new Cmd keeps the image's entrypoint
    config = plan({"Cmd": ["x"]}, image).config
    assert createconfig.entrypoint_and_args(config) == ("/entry", ["x"])
    # [] clears the entrypoint but keeps the image's cmd
    config = plan({"Entrypoint": []}, image).config
    assert createconfig.entrypoint_and_args(config) == ("default", [])
    # [""] clears it and takes no cmd from the image
    with pytest.raises(InvalidParameter, match=r"^No command specified$"):
        plan({"Entrypoint": [""]}, image)
    config = plan({"Entrypoint": [""], "Cmd": ["echo", "hi"]}, image).config
    assert createconfig.entrypoint_and_args(config) == ("echo", ["hi"])
    # a new entrypoint does not take the image's cmd
    config = plan({"Entrypoint": ["/other"]}, image).config
    assert createconfig.entrypoint_and_args(config) == ("/other", [])


def test_cmd_may_be_a_plain_string() -> None:
    assert plan({"Cmd": "echo hi"}).config["Cmd"] == ["echo hi"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"WorkingDir": "rel"}, "the working directory 'rel' is invalid, it needs to be an absolute path"),
        ({"HostConfig": {"Memory": 1024}}, "Minimum memory limit allowed is 6MB"),
        ({"HostConfig": {"MemorySwap": 10**8}}, "You should always set the Memory limit when using Memoryswap limit"),
        ({"HostConfig": {"Memory": 10**8, "MemorySwap": 10**7}}, "Minimum memoryswap limit should be larger than memory limit"),
        ({"HostConfig": {"NanoCpus": 3 * 10**9}}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
        ({"HostConfig": {"NanoCpus": 10**9, "CpuQuota": 50000}}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
        ({"HostConfig": {"CpuPeriod": 10}}, "CPU cfs period can not be less than 1ms"),
        ({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, "invalid restart policy: unknown policy 'sometimes'"),
        ({"HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}}, "maximum retry count can only be used with 'on-failure'"),
        ({"HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}}, "can't create 'AutoRemove' container with restart policy"),
        ({"HostConfig": {"PortBindings": {"http": []}}}, 'invalid port specification: "http"'),
        ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}}, 'invalid port specification: "99999"'),
        ({"HostConfig": {"NetworkMode": "container:x", "PortBindings": {"80/tcp": []}}}, "conflicting options: port publishing"),
        ({"Hostname": "h", "HostConfig": {"NetworkMode": "container:x"}}, "conflicting options: hostname and the network mode"),
        ({"Healthcheck": {"Interval": 10}}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Healthcheck": {"Retries": -1}}, "Retries in Healthcheck cannot be negative"),
        ({"Env": "not a list"}, None),
        ({"HostConfig": {"OomScoreAdj": 5000}}, "range for oom score adj is [-1000, 1000]"),
        ({"HostConfig": {"SecurityOpt": ["bogus"]}}, "Invalid --security-opt"),
    ],
)
def test_bad_requests_are_refused_with_mobys_words(body: dict, message: str | None) -> None:
    if message is None:
        # a string Env is accepted as one entry (Go's StrSlice)
        plan(body)
        return
    with pytest.raises(InvalidParameter) as caught:
        plan(body)
    assert message in str(caught.value)


def test_unsupported_options_are_refused_clearly() -> None:
    for host_config in ({"Privileged": True}, {"PidMode": "host"}, {"LogConfig": {"Type": "syslog"}}):
        with pytest.raises(NotImplementedYet):
            plan({"HostConfig": host_config})


def test_host_config_is_filled_and_normalized() -> None:
    result = plan({"HostConfig": {"NetworkMode": "default", "PortBindings": {"8080": [{"HostIp": "", "HostPort": "80"}]}}})
    host_config = result.host_config
    assert host_config["NetworkMode"] == "bridge"
    assert host_config["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert host_config["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert host_config["PortBindings"] == {"8080/tcp": [{"HostIp": "", "HostPort": "80"}]}
    assert "8080/tcp" in result.config["ExposedPorts"]
    assert result.endpoints == {"bridge": {}}
    for key in ("Binds", "ShmSize", "MaskedPaths", "PidsLimit"):
        assert key in host_config


def test_endpoints_config_default_key_is_the_bridge() -> None:
    result = plan({"HostConfig": {"NetworkMode": "mynet"},
                   "NetworkingConfig": {"EndpointsConfig": {"mynet": {"Aliases": ["a"]}, "default": {}}}})
    assert result.endpoints == {"mynet": {"Aliases": ["a"]}, "bridge": {}}


def test_stop_timeout() -> None:
    assert createconfig.stop_timeout_seconds({}, None) == 10
    assert createconfig.stop_timeout_seconds({"StopTimeout": 3}, None) == 3
    assert createconfig.stop_timeout_seconds({"StopTimeout": 3}, 0) == 0
    assert createconfig.stop_timeout_seconds({}, -1) is None


@given(st.integers(min_value=1, max_value=65535), st.integers(min_value=0, max_value=100), st.sampled_from(["tcp", "udp", "sctp", None]))
def test_port_keys_parse_and_normalize(first: int, span: int, protocol: str | None) -> None:
    last = min(first + span, 65535)
    key = f"{first}-{last}" if last != first else str(first)
    if protocol:
        key += f"/{protocol}"
    assert createconfig.parse_port_key(key) == (first, last, protocol or "tcp")
    normalized = createconfig.normalize_port_key(key)
    assert createconfig.parse_port_key(normalized) == (first, last, protocol or "tcp")


@given(st.text(max_size=20))
def test_port_key_parser_never_crashes(text: str) -> None:
    try:
        createconfig.parse_port_key(text)
    except InvalidParameter as error:
        assert "invalid port specification" in str(error)


# --- mounts ---------------------------------------------------------------------------------


def test_binds() -> None:
    bind = mounts.parse_bind("/host/dir:/ctr:ro")
    assert (bind.kind, bind.source, bind.destination, bind.readonly, bind.propagation) == ("bind", "/host/dir", "/ctr", True, "rprivate")
    assert bind.create_source
    named = mounts.parse_bind("data:/data")
    assert (named.kind, named.source, named.mode, named.copy_image_data) == ("volume", "data", "z", True)
    assert not mounts.parse_bind("data:/data:nocopy").copy_image_data
    anonymous = mounts.parse_bind("/only")
    assert (anonymous.kind, anonymous.source, anonymous.destination) == ("volume", "", "/only")
    assert mounts.parse_bind("/x:ro").destination == "/x"
    assert mounts.parse_bind("/h:/c:rshared").propagation == "rshared"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/h:relative", "invalid mount path: 'relative' mount path must be absolute"),
        ("/h:/c:bogus", "invalid mode: bogus"),
        ("/h:/c:ro,rw", "invalid mode: ro,rw"),
        ("vol:/c:rshared", "invalid mode: rshared"),
        ("/h:/c:nocopy", "invalid mode: nocopy"),
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        ("bad$name:/c", "includes invalid characters for a local volume name"),
        ("/h:/", "destination can't be '/'"),
    ],
)
def test_bad_binds(spec: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(").replace("$", r"\$")):
        mounts.parse_bind(spec)


def test_mount_objects() -> None:
    bind = mounts.parse_mount({"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True})
    assert (bind.kind, bind.readonly, bind.create_source) == ("bind", True, False)
    volume = mounts.parse_mount({"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": True}})
    assert (volume.kind, volume.source, volume.copy_image_data) == ("volume", "", False)
    tmpfs = mounts.parse_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o1777}})
    assert tmpfs.tmpfs_options == ("size=1024", "mode=1777")
    with pytest.raises(InvalidParameter, match='invalid mount config for type "tmpfs": field Source must not be specified'):
        mounts.parse_mount({"Type": "tmpfs", "Source": "x", "Target": "/t"})
    with pytest.raises(InvalidParameter, match='invalid mount config for type "bind": field VolumeOptions must not be specified'):
        mounts.parse_mount({"Type": "bind", "Source": "/h", "Target": "/c", "VolumeOptions": {"NoCopy": True}})
    with pytest.raises(InvalidParameter, match='invalid mount config for type "nfs": mount type unknown'):
        mounts.parse_mount({"Type": "nfs", "Target": "/c"})


def test_plan_mounts_orders_and_refuses_duplicates() -> None:
    config: dict = {"Volumes": {"/data": {}, "/cache": {}}}
    host_config = {"Binds": ["/h:/data"], "Tmpfs": {"/run": "size=1m"}}
    planned = mounts.plan_mounts(config, host_config)
    assert [(m.kind, m.destination) for m in planned] == [("bind", "/data"), ("tmpfs", "/run"), ("volume", "/cache")]
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /x"):
        mounts.plan_mounts({}, {"Binds": ["/a:/x", "vol:/x"]})
    with pytest.raises(InvalidParameter, match="invalid tmpfs option"):
        mounts.parse_tmpfs("/t", "exec")


def test_mount_point_json_and_round_trip() -> None:
    resolved = mounts.ResolvedMount("volume", "/data", "/vol/_data", name="data", mode="z", anonymous=False)
    assert resolved.to_api() == {
        "Type": "volume", "Name": "data", "Source": "/vol/_data", "Destination": "/data",
        "Driver": "local", "Mode": "z", "RW": True, "Propagation": "",
    }  # fmt: skip
    assert mounts.ResolvedMount.from_plain(resolved.to_plain()) == resolved
    assert mounts.mount_for_path([resolved], "/data/x/y") == resolved
    assert mounts.mount_for_path([resolved], "/database") is None


# --- names ----------------------------------------------------------------------------------


def test_names() -> None:
    assert naming.validate("/web") == "web"
    with pytest.raises(InvalidParameter, match=r"Invalid container name \(x\)"):
        naming.validate("x")
    with pytest.raises(InvalidParameter):
        naming.validate("-bad")
    conflict = naming.name_conflict("web", "abc")
    assert isinstance(conflict, Conflict)
    assert str(conflict) == (
        'Conflict. The container name "/web" is already in use by container "abc". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


def test_generated_names_are_valid_and_free() -> None:
    rng = random.Random(7)
    taken: set[str] = set()
    for _ in range(3000):
        name = naming.generate(rng, taken.__contains__)
        assert naming.NAME_PATTERN.fullmatch(name)
        assert name not in taken
        taken.add(name)


@given(st.text(alphabet=string.ascii_letters + string.digits + "_.-/", min_size=0, max_size=12))
def test_name_validation_matches_the_pattern(name: str) -> None:
    stored = name[1:] if name.startswith("/") else name
    valid = bool(naming.NAME_PATTERN.fullmatch(stored))
    try:
        assert naming.validate(name) == stored and valid
    except InvalidParameter:
        assert not valid


# --- restart policies -----------------------------------------------------------------------


def decide(policy: restart.RestartPolicy, **overrides: object) -> restart.Decision:
    arguments: dict = {"exit_code": 1, "stopped_by_user": False, "restart_count": 0, "ran_seconds": 1.0, "previous_delay_seconds": 0.0}
    arguments.update(overrides)
    return restart.decide_after_exit(policy, **arguments)


def test_restart_decisions() -> None:
    always = restart.RestartPolicy("always")
    on_failure = restart.RestartPolicy("on-failure", 2)
    assert not decide(restart.RestartPolicy()).restart
    assert decide(always, exit_code=0).restart
    assert not decide(always, stopped_by_user=True).restart
    assert not decide(restart.RestartPolicy("unless-stopped"), stopped_by_user=True).restart
    assert decide(on_failure, restart_count=1).restart
    assert not decide(on_failure, restart_count=2).restart
    assert not decide(on_failure, exit_code=0).restart
    assert decide(restart.RestartPolicy("on-failure"), restart_count=1000).restart


def test_backoff_doubles_and_resets() -> None:
    always = restart.RestartPolicy("always")
    delays = []
    previous = 0.0
    for _ in range(12):
        decision = decide(always, previous_delay_seconds=previous)
        delays.append(decision.delay_seconds)
        previous = decision.next_delay_seconds
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(delays) == restart.MAXIMUM_DELAY_SECONDS
    assert decide(always, previous_delay_seconds=30.0, ran_seconds=10.0).delay_seconds == 0.1


def test_daemon_start_rules() -> None:
    def on_start(name: str, **overrides: object) -> bool:
        arguments: dict = {"exit_code": 0, "stopped_by_user": False, "ever_started": True}
        arguments.update(overrides)
        return restart.start_on_daemon_start(restart.RestartPolicy(name), **arguments)

    assert on_start("always", stopped_by_user=True)
    assert not on_start("always", ever_started=False)
    assert on_start("unless-stopped")
    assert not on_start("unless-stopped", stopped_by_user=True)
    assert not on_start("on-failure")
    assert on_start("on-failure", exit_code=1)
    assert not on_start("no", exit_code=1)


def test_restart_policy_parse() -> None:
    assert restart.RestartPolicy.parse("", 0) == restart.RestartPolicy("no", 0)
    with pytest.raises(InvalidParameter, match="maximum retry count cannot be negative"):
        restart.RestartPolicy.parse("on-failure", -1)


@given(st.text(alphabet="/:abcro,zZ._-1", max_size=24))
def test_bind_parser_accepts_or_refuses_clearly(spec: str) -> None:
    try:
        parsed = mounts.parse_bind(spec)
    except InvalidParameter:
        return
    assert parsed.destination.startswith("/") and parsed.destination != "/"
    assert parsed.kind in ("bind", "volume")
    if parsed.kind == "bind":
        assert parsed.source.startswith("/")


@given(st.dictionaries(st.sampled_from(["Type", "Source", "Target", "ReadOnly", "BindOptions", "VolumeOptions", "TmpfsOptions"]),
                       st.one_of(st.none(), st.booleans(), st.text(max_size=8), st.sampled_from(["bind", "volume", "tmpfs", "/x", "/"]),
                                 st.fixed_dictionaries({}))))  # fmt: skip
def test_mount_parser_accepts_or_refuses_clearly(value: dict) -> None:
    try:
        parsed = mounts.parse_mount(value)
    except InvalidParameter:
        return
    assert parsed.kind in ("bind", "volume", "tmpfs") and parsed.destination.startswith("/")
