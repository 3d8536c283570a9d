"""Option value parsers: ports, volumes, mounts, env files, sizes, durations, detach keys."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.client import opts

# --------------------------------------------------------------------------- sizes, durations


@pytest.mark.parametrize(("text", "expected"), [
    ("64m", 64 << 20), ("64M", 64 << 20), ("64mb", 64 << 20), ("64MiB", 64 << 20),
    ("1g", 1 << 30), ("1.5k", 1536), ("100", 100), ("100b", 100), ("2 t", 2 << 40),
])
def test_ram_in_bytes(text, expected):
    assert opts.ram_in_bytes(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("12x", "invalid suffix: 'x'"), ("zz", "invalid size: 'zz'"), ("1mm", "invalid suffix: 'mm'"),
    ("-5m", "invalid size: '-5m'"), ("1kbb", "invalid suffix: 'kbb'"),
])
def test_ram_in_bytes_errors(text, message):
    with pytest.raises(opts.OptionError) as caught:
        opts.ram_in_bytes(text)
    assert str(caught.value) == message


@given(st.integers(0, 10**6), st.sampled_from(["", "b", "k", "kb", "kib", "m", "MB", "g", "GiB"]))
def test_ram_in_bytes_property(number, suffix):
    multiplier = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[suffix[:1].lower()]
    assert opts.ram_in_bytes(f"{number}{suffix}") == number * multiplier


@pytest.mark.parametrize(("text", "nanoseconds"), [
    ("5s", 5_000_000_000), ("1m30s", 90_000_000_000), ("300ms", 300_000_000),
    ("1h", 3_600_000_000_000), ("1.5s", 1_500_000_000), ("-2s", -2_000_000_000), ("0", 0),
    ("10us", 10_000), ("7ns", 7),
])
def test_go_durations(text, nanoseconds):
    assert opts.parse_go_duration(text) == nanoseconds


@pytest.mark.parametrize(("text", "message"), [
    ("5", 'time: missing unit in duration "5"'),
    ("x", 'time: invalid duration "x"'),
    ("5q", 'time: unknown unit "q" in duration "5q"'),
    ("", 'time: invalid duration ""'),
])
def test_go_duration_errors(text, message):
    with pytest.raises(opts.OptionError) as caught:
        opts.parse_go_duration(text)
    assert str(caught.value) == message


@given(st.integers(0, 10**15))
def test_go_duration_format_round_trips(nanoseconds):
    text = opts.format_go_duration(nanoseconds)
    assert abs(opts.parse_go_duration(text) - nanoseconds) <= 1


def test_format_go_duration_shapes():
    assert opts.format_go_duration(90_000_000_000) == "1m30s"
    assert opts.format_go_duration(5_000_000_000) == "5s"
    assert opts.format_go_duration(3_600_000_000_000) == "1h0m0s"
    assert opts.format_go_duration(300_000_000) == "300ms"


@pytest.mark.parametrize(("text", "nano"), [("1.5", 1_500_000_000), ("0.000000001", 1),
                                            ("2", 2_000_000_000), ("1/4", 250_000_000)])
def test_nano_cpus(text, nano):
    assert opts.parse_nano_cpus(text) == nano


def test_nano_cpus_too_precise():
    with pytest.raises(opts.OptionError, match="too precise"):
        opts.parse_nano_cpus("0.0000000001")


# --------------------------------------------------------------------------- ports


@pytest.mark.parametrize(("spec", "expected"), [
    ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
    ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
    ("127.0.0.1:53:53/udp", [("53/udp", {"HostIp": "127.0.0.1", "HostPort": "53"})]),
    ("127.0.0.1::80", [("80/tcp", {"HostIp": "127.0.0.1", "HostPort": ""})]),
    ("[::1]:6000:60/sctp", [("60/sctp", {"HostIp": "::1", "HostPort": "6000"})]),
    ("9000-9001:90-91", [("90/tcp", {"HostIp": "", "HostPort": "9000"}),
                         ("91/tcp", {"HostIp": "", "HostPort": "9001"})]),
    ("8000-8010:80", [("80/tcp", {"HostIp": "", "HostPort": "8000-8010"})]),
    ("80/TCP", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
])
def test_port_specs(spec, expected):
    assert opts.parse_port_spec(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("x", "invalid containerPort: x"),
    ("80/foo", "invalid proto: foo"),
    ("1.2.3:80:80", "invalid IP address: 1.2.3"),
    ("8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and "
                        "8000-8001"),
    ("x:80", "invalid hostPort: x"),
    ("80:", "no port specified: 80:<empty>"),
    ("70000", "invalid containerPort: 70000"),
])
def test_port_spec_errors(spec, message):
    with pytest.raises(opts.OptionError) as caught:
        opts.parse_port_spec(spec)
    assert str(caught.value) == message


@given(
    st.sampled_from(["", "127.0.0.1", "0.0.0.0", "[::1]"]),
    st.integers(1, 60000), st.integers(0, 20), st.booleans(),
    st.integers(1, 60000), st.sampled_from(["", "/tcp", "/udp", "/sctp"]),
)
def test_port_ranges_map_one_to_one(address, container_start, width, with_host, host_start,
                                    proto):
    container_end = min(container_start + width, 65535)
    host_end = min(host_start + (container_end - container_start), 65535)
    if with_host and host_end - host_start != container_end - container_start:
        return
    container = f"{container_start}-{container_end}" if container_end > container_start else \
        str(container_start)
    host = ""
    if with_host:
        host = f"{host_start}-{host_end}" if host_end > host_start else str(host_start)
    spec = container + proto
    if host or address:
        spec = f"{host}:{spec}"
    if address:
        spec = f"{address}:{spec}"
    mappings = opts.parse_port_spec(spec)
    assert len(mappings) == container_end - container_start + 1
    kind = proto.lstrip("/") or "tcp"
    for offset, (port, binding) in enumerate(mappings):
        assert port == f"{container_start + offset}/{kind}"
        assert binding["HostIp"] == address.strip("[]")
        assert binding["HostPort"] == (str(host_start + offset) if host else "")


def test_expose():
    assert opts.parse_expose(["80", "53/udp", "1000-1002"]) == {
        "80/tcp": {}, "53/udp": {}, "1000/tcp": {}, "1001/tcp": {}, "1002/tcp": {}}


# --------------------------------------------------------------------------- volumes, mounts


@pytest.mark.parametrize(("spec", "kind", "source", "target", "read_only"), [
    ("/data", "volume", "", "/data", False),
    ("vol:/data", "volume", "vol", "/data", False),
    ("/host:/data:ro", "bind", "/host", "/data", True),
    ("./rel:/data:rw,z", "bind", "./rel", "/data", False),
    ("~/x:/y", "bind", "~/x", "/y", False),
])
def test_volume_specs(spec, kind, source, target, read_only):
    parsed = opts.parse_volume(spec)
    assert (parsed["Type"], parsed["Source"], parsed["Target"], parsed["ReadOnly"]) == (
        kind, source, target, read_only)


@pytest.mark.parametrize(("spec", "message"), [
    (":/x", "invalid spec: :/x: empty section between colons"),
    ("a:b:c:d", "invalid spec: a:b:c:d: too many colons"),
    ("", "invalid empty volume spec"),
])
def test_volume_spec_errors(spec, message):
    with pytest.raises(opts.OptionError) as caught:
        opts.parse_volume(spec)
    assert str(caught.value) == message


@pytest.mark.parametrize(("text", "expected"), [
    ("type=volume,src=v2,dst=/m", {"Type": "volume", "Source": "v2", "Target": "/m"}),
    ("type=bind,source=/x,target=/y,readonly",
     {"Type": "bind", "Source": "/x", "Target": "/y", "ReadOnly": True}),
    ("type=bind,src=/x,dst=/y,ro=false,bind-propagation=rshared",
     {"Type": "bind", "Source": "/x", "Target": "/y", "BindOptions": {"Propagation": "rshared"}}),
    ("type=tmpfs,dst=/z,tmpfs-size=1m,tmpfs-mode=1770",
     {"Type": "tmpfs", "Target": "/z", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1770}}),
    ("src=v3,dst=/n,volume-nocopy,volume-label=k=v,volume-driver=local,volume-opt=o=1",
     {"Type": "volume", "Source": "v3", "Target": "/n", "VolumeOptions": {
         "NoCopy": True, "Labels": {"k": "v"},
         "DriverConfig": {"Name": "local", "Options": {"o": "1"}}}}),
    ('type=bind,"src=/a,b",dst=/c', {"Type": "bind", "Source": "/a,b", "Target": "/c"}),
])
def test_mounts(text, expected):
    assert opts.parse_mount(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("type=bind", "target is required"),
    ("foo=bar,dst=/x", "unexpected key 'foo' in 'foo=bar'"),
    ("type=tmpfs,dst=/x,tmpfs-size=zz", "invalid value for tmpfs-size: zz"),
    ("type=bind,dst=/x", "source is required when specifying bind mounts"),
    ("type=bind,src=/a,dst=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type "
                                              "'bind'"),
    ("type=weird,dst=/x", "invalid mount type 'weird'"),
    ("type=bind,src=/a,dst=/x,ro=maybe", "invalid value for ro: maybe"),
])
def test_mount_errors(text, message):
    with pytest.raises(opts.OptionError) as caught:
        opts.parse_mount(text)
    assert str(caught.value) == message


# --------------------------------------------------------------------------- env, labels, hosts


def test_env_file(tmp_path):
    path = tmp_path / "env"
    path.write_bytes("\ufeffA=1\n# comment\n\n  B=two words \nC\nD\nE=\nF=x=y\n".encode())
    assert opts.read_env_file(str(path), {"C": "from-host"}) == [
        "A=1", "B=two words ", "C=from-host", "E=", "F=x=y"]


@pytest.mark.parametrize(("content", "message"), [
    ("BAD NAME=1\n", "variable 'BAD NAME' contains whitespaces"),
    ("=1\n", "no variable name on line '=1'"),
])
def test_env_file_errors(tmp_path, content, message):
    path = tmp_path / "env"
    path.write_text(content)
    with pytest.raises(opts.OptionError) as caught:
        opts.read_env_file(str(path), {})
    assert str(caught.value) == message


def test_validate_env():
    assert opts.validate_env("A=1", {}) == "A=1"
    assert opts.validate_env("HOME", {"HOME": "/root"}) == "HOME=/root"
    assert opts.validate_env("UNSET", {}) == "UNSET"
    with pytest.raises(opts.OptionError):
        opts.validate_env("=x", {})


def test_extra_hosts():
    assert opts.validate_extra_host("a:1.2.3.4") == "a:1.2.3.4"
    assert opts.validate_extra_host("b=::1") == "b:::1"
    assert opts.validate_extra_host("gw:host-gateway") == "gw:host-gateway"
    assert opts.validate_extra_host("c=[::2]") == "c:::2"
    with pytest.raises(opts.OptionError):
        opts.validate_extra_host("a:b")


def test_capabilities():
    assert opts.effective_capabilities(["net_admin", "CAP_SYS_TIME", "net_admin"], ["all"]) == (
        ["CAP_NET_ADMIN", "CAP_SYS_TIME"], ["ALL"])
    assert opts.effective_capabilities(["ALL", "chown"], ["chown"]) == (["ALL"], ["CAP_CHOWN"])
    assert opts.effective_capabilities(["chown"], ["chown", "kill"]) == (["CAP_CHOWN"],
                                                                         ["CAP_KILL"])
    assert opts.effective_capabilities([], []) == (None, None)


def test_restart_policies():
    assert opts.parse_restart_policy("on-failure:3") == {"Name": "on-failure",
                                                         "MaximumRetryCount": 3}
    assert opts.parse_restart_policy("always") == {"Name": "always", "MaximumRetryCount": 0}
    with pytest.raises(opts.OptionError, match="no policy provided before colon"):
        opts.parse_restart_policy(":3")


@pytest.mark.parametrize(("text", "expected"), [
    ("ctrl-p,ctrl-q", b"\x10\x11"), ("ctrl-a", b"\x01"), ("a,b", b"ab"),
    ("ctrl-@,ctrl-[,ctrl-_", b"\x00\x1b\x1f"),
])
def test_detach_keys(text, expected):
    assert opts.parse_detach_keys(text) == expected


def test_detach_keys_errors():
    with pytest.raises(opts.OptionError):
        opts.parse_detach_keys("ctrl-1")
    with pytest.raises(opts.OptionError):
        opts.parse_detach_keys("abc")
