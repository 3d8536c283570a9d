"""The OCI config builder and user resolution (no containers are run here)."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.supervisor import ocispec, seccomp

ROOT_USER = ocispec.ProcessUser(uid=0, gid=0, home="/root")


def build(**spec: object) -> ocispec.BuiltConfig:
    args = spec.pop("args", ("sh",))
    return ocispec.build_config(
        ocispec.ContainerSpec(args=args, **spec),  # type: ignore[arg-type]
        rootfs="/r",
        cgroups_path="/flotta/x",
        user=ROOT_USER,
        host_rlimits={7: (1024, 4096)},
    )


def test_docker_defaults():
    config = build().config
    process = config["process"]
    assert process["capabilities"]["bounding"] == list(ocispec.DEFAULT_CAPABILITIES)
    assert process["capabilities"]["effective"] == process["capabilities"]["permitted"]
    assert "ambient" not in process["capabilities"]
    assert "inheritable" not in process["capabilities"]
    assert len(ocispec.DEFAULT_CAPABILITIES) == 14 and "CAP_NET_RAW" in ocispec.DEFAULT_CAPABILITIES
    assert process["noNewPrivileges"] is False
    linux = config["linux"]
    assert "/proc/kcore" in linux["maskedPaths"] and "/sys/firmware" in linux["maskedPaths"]
    assert linux["readonlyPaths"] == [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    assert {n["type"] for n in linux["namespaces"]} == {"pid", "ipc", "uts", "mount", "network"}
    assert linux["cgroupsPath"] == "/flotta/x"
    assert [m["destination"] for m in config["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
    ]  # fmt: skip
    assert config["root"] == {"path": "/r", "readonly": False}
    assert process["env"][0].startswith("PATH=/usr/local/sbin:")
    assert "HOME=/root" in process["env"]
    assert [d["path"] for d in linux["devices"]] == [
        "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
    ]  # fmt: skip
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 4096, "hard": 4096}]


def test_network_modes():
    def network(mode: str) -> list[dict[str, str]]:
        return [
            n for n in build(network=mode).config["linux"]["namespaces"] if n["type"] == "network"
        ]

    assert network("new") == [{"type": "network"}]
    assert network("none") == [{"type": "network"}]
    assert network("host") == []
    assert network("/run/netns/abc") == [{"type": "network", "path": "/run/netns/abc"}]
    with pytest.raises(ocispec.SpecError, match="network 'bridge'"):
        build(network="bridge")


def test_resources():
    resources = ocispec.Resources(
        memory_bytes=64 << 20,
        nano_cpus=1_500_000_000,
        cpu_shares=512,
        pids_limit=100,
        cpuset_cpus="0",
    )
    linux = build(resources=resources).config["linux"]["resources"]
    assert linux["memory"] == {"limit": 64 << 20, "swap": 64 << 20}
    assert linux["cpu"] == {"period": 100_000, "quota": 150_000, "shares": 512, "cpus": "0"}
    assert linux["pids"] == {"limit": 100}
    assert linux["devices"][0] == {"allow": False, "access": "rwm"}
    with pytest.raises(ocispec.SpecError, match="minimum memory"):
        build(resources=ocispec.Resources(memory_bytes=1024))
    with pytest.raises(ocispec.SpecError, match="conflicting"):
        build(resources=ocispec.Resources(nano_cpus=10**9, cpu_quota_microseconds=50_000))


def test_tty_env_and_console_size():
    process = build(terminal=True, hostname="box", console_height=24, console_width=80).config[
        "process"
    ]
    assert process["terminal"] is True
    assert process["consoleSize"] == {"height": 24, "width": 80}
    assert "TERM=xterm" in process["env"] and "HOSTNAME=box" in process["env"]
    process = build(env=("TERM=vt100", "HOME=/x", "PATH=/bin"), terminal=True).config["process"]
    assert process["env"] == ["TERM=vt100", "HOME=/x", "PATH=/bin"]
    with pytest.raises(ocispec.SpecError, match="NAME=value"):
        build(env=("JUSTANAME",))


def test_mounts_and_read_only_root():
    mounts = (
        ocispec.MountSpec(
            destination="/data", source="/srv/data", readonly=True, propagation="rslave"
        ),
        ocispec.MountSpec(destination="/scratch", type="tmpfs", options=("size=1m",)),
    )
    config = build(
        mounts=mounts,
        readonly_rootfs=True,
        hosts_file="/h/hosts",
        resolv_conf_file="/h/resolv.conf",
    ).config
    by_destination = {m["destination"]: m for m in config["mounts"]}
    assert by_destination["/data"]["options"] == ["rbind", "ro", "rslave"]
    assert by_destination["/scratch"]["options"] == ["nosuid", "nodev", "noexec", "rw", "size=1m"]
    assert by_destination["/etc/hosts"]["options"] == ["rbind", "rprivate", "ro"]
    assert "/etc/hostname" not in by_destination
    assert config["root"]["readonly"] is True
    with pytest.raises(ocispec.SpecError, match="absolute"):
        build(mounts=(ocispec.MountSpec(destination="data", source="/x"),))
    with pytest.raises(ocispec.SpecError, match="propagation"):
        build(mounts=(ocispec.MountSpec(destination="/d", source="/x", propagation="weird"),))
    with pytest.raises(ocispec.SpecError, match="mount type"):
        build(mounts=(ocispec.MountSpec(destination="/d", type="nfs"),))


def test_capability_changes():
    assert "CAP_SYS_ADMIN" in ocispec.effective_capabilities(["sys_admin"], [])
    assert "CAP_NET_RAW" not in ocispec.effective_capabilities([], ["NET_RAW"])
    assert ocispec.effective_capabilities([], ["ALL"]) == []
    assert ocispec.effective_capabilities(["CHOWN"], ["ALL"]) == ["CAP_CHOWN"]
    assert len(ocispec.effective_capabilities(["ALL"], [])) == len(ocispec.ALL_CAPABILITIES)
    with pytest.raises(ocispec.SpecError, match="unknown capability"):
        ocispec.effective_capabilities(["FLY"], [])


def test_seccomp_follows_capabilities():
    default = seccomp.denied_syscalls(ocispec.DEFAULT_CAPABILITIES)
    assert {"keyctl", "mount", "unshare", "reboot", "bpf", "ptrace"} & set(default) == {
        "keyctl", "mount", "unshare", "reboot", "bpf",
    }  # fmt: skip
    with_admin = seccomp.denied_syscalls([*ocispec.DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert "mount" not in with_admin and "bpf" not in with_admin and "keyctl" in with_admin
    profile = build(cap_add=("SYS_TIME",)).config["linux"]["seccomp"]
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert "settimeofday" not in profile["syscalls"][0]["names"]
    assert "seccomp" not in build(seccomp=False).config["linux"]


def test_rlimits_are_clamped_to_the_host():
    host = {7: (1024, 4096), 6: (100, 200)}
    config = ocispec.build_config(
        ocispec.ContainerSpec(
            args=("sh",),
            ulimits=(ocispec.Ulimit("nofile", 10, 1 << 20), ocispec.Ulimit("nproc", 50, 150)),
        ),
        rootfs="/r",
        cgroups_path="/c",
        user=ROOT_USER,
        host_rlimits=host,
    )
    assert config.config["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 50, "hard": 150},
    ]
    assert config.warnings == (
        "ulimit nofile hard limit 1048576 exceeds the host's 4096; using 4096",
    )
    with pytest.raises(ocispec.SpecError, match="invalid ulimit type"):
        build(ulimits=(ocispec.Ulimit("bogus", 1, 1),))
    with pytest.raises(ocispec.SpecError, match="soft limit"):
        build(ulimits=(ocispec.Ulimit("core", 5, 1),))


def test_real_host_rlimits_never_exceeded():
    config = ocispec.build_config(
        ocispec.ContainerSpec(args=("sh",), ulimits=(ocispec.Ulimit("nofile", -1, -1),)),
        rootfs="/r",
        cgroups_path="/c",
        user=ROOT_USER,
    ).config
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    (nofile,) = config["process"]["rlimits"]
    assert nofile["hard"] <= hard and nofile["soft"] <= hard


@given(
    st.lists(st.sampled_from((*ocispec.ALL_CAPABILITIES, "ALL")), max_size=5),
    st.lists(st.sampled_from((*ocispec.ALL_CAPABILITIES, "ALL")), max_size=5),
)
def test_capability_sets_are_valid_and_unique(add, drop):
    result = ocispec.effective_capabilities(add, drop)
    assert len(result) == len(set(result))
    assert set(result) <= set(ocispec.ALL_CAPABILITIES)
    for name in drop:
        if name != "ALL" and name not in add:
            assert name not in result


@pytest.fixture
def user_rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n# comment\nalice:x:1000:1000::/home/alice:/bin/sh\n"
        "1234:x:77:77:numeric name:/n:/bin/sh\n"
    )
    (tmp_path / "etc" / "group").write_text(
        "root:x:0:\nwheel:x:10:alice\nstaff:x:50:bob,alice\nalice:x:1000:\n"
    )
    return tmp_path


def test_resolve_user_like_docker(user_rootfs):
    root = str(user_rootfs)
    assert ocispec.resolve_user(root, "") == ocispec.ProcessUser(0, 0, (), "/root")
    assert ocispec.resolve_user(root, "alice") == ocispec.ProcessUser(
        1000, 1000, (10, 50), "/home/alice"
    )
    assert ocispec.resolve_user(root, "1000") == ocispec.ProcessUser(
        1000, 1000, (10, 50), "/home/alice"
    )
    assert ocispec.resolve_user(root, "alice:wheel") == ocispec.ProcessUser(
        1000, 10, (), "/home/alice"
    )
    assert ocispec.resolve_user(root, "4242") == ocispec.ProcessUser(4242, 0, (), "/")
    assert ocispec.resolve_user(root, "4242:99") == ocispec.ProcessUser(4242, 99, (), "/")
    # A numeric user is a uid, never the name "1234".
    assert ocispec.resolve_user(root, "1234").uid == 1234
    assert ocispec.resolve_user(root, "root", ["staff", "7", "staff"]).additional_gids == (50, 7)
    with pytest.raises(
        ocispec.SpecError, match="unable to find user bob: no matching entries in passwd file"
    ):
        ocispec.resolve_user(root, "bob")
    with pytest.raises(ocispec.SpecError, match="unable to find group nogroup"):
        ocispec.resolve_user(root, "alice:nogroup")


def test_resolve_user_stays_inside_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").symlink_to(outside / "passwd")
    # The absolute symlink is resolved inside the root, where it points at nothing.
    with pytest.raises(ocispec.SpecError, match="unable to find user evil"):
        ocispec.resolve_user(str(root), "evil")
    (root / "etc" / "group").symlink_to("../../outside/passwd")
    assert ocispec.resolve_user(str(root), "0").uid == 0


def test_missing_passwd_allows_numeric_users_only(tmp_path):
    assert ocispec.resolve_user(str(tmp_path), "5:6") == ocispec.ProcessUser(5, 6, (), "/")
    with pytest.raises(ocispec.SpecError):
        ocispec.resolve_user(str(tmp_path), "alice")


def test_bad_spec_values():
    with pytest.raises(ocispec.SpecError, match="no command"):
        build(args=())
    with pytest.raises(ocispec.SpecError, match="absolute"):
        build(cwd="relative")
    with pytest.raises(ocispec.SpecError, match="oom_score_adj"):
        build(oom_score_adj=2000)
    assert build(oom_score_adj=500).config["process"]["oomScoreAdj"] == 500
    assert build(sysctls={"net.ipv4.ip_forward": "1"}).config["linux"]["sysctl"] == {
        "net.ipv4.ip_forward": "1"
    }
