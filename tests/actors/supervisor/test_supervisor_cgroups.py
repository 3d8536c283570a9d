"""cgroup helpers: mountinfo parsing, the hybrid-host fix, stats and OOM counts on a fake tree,
and the real host's hierarchy."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.supervisor import cgroups

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:40 / /mnt/with\\040space rw - cgroup cgroup rw,net_cls,net_prio
"""


def test_parse_mountinfo():
    mounts = cgroups.parse_mountinfo(MOUNTINFO)
    assert [(m.mountpoint, m.version, sorted(m.controllers)) for m in mounts] == [
        ("/sys/fs/cgroup/cpu", 1, ["cpu"]),
        ("/sys/fs/cgroup/cpuacct", 1, ["cpuacct"]),
        ("/sys/fs/cgroup/memory", 1, ["memory"]),
        ("/sys/fs/cgroup/pids", 1, ["pids"]),
        ("/sys/fs/cgroup/systemd", 1, ["name=systemd"]),
        ("/sys/fs/cgroup/unified", 2, []),
        ("/mnt/with space", 1, ["net_cls", "net_prio"]),
    ]


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_parse_mountinfo_never_crashes(text):
    for mount in cgroups.parse_mountinfo(text):
        assert mount.version in (1, 2)


def fake_host(tmp_path: Path, unified_controllers: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    (root / "unified").mkdir(parents=True)
    (root / "unified" / "cgroup.controllers").write_text(unified_controllers)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO.replace("/sys/fs/cgroup", str(root)))
    return root, mountinfo


def test_hybrid_fix_mounts_what_sits_on_cgroup2(tmp_path):
    root, mountinfo = fake_host(tmp_path, "hugetlb memory\n")
    calls: list[tuple[str, str]] = []

    def mount(controller: str, target: str) -> None:
        calls.append((controller, target))
        # What the kernel does: the controller leaves cgroup2 and appears as a v1 mount.
        (root / "unified" / "cgroup.controllers").write_text("")
        with open(mountinfo, "a") as handle:
            handle.write(f"60 31 0:50 / {target} rw - cgroup cgroup rw,{controller}\n")

    lines = cgroups.ensure_cgroup_hierarchy(str(root), mountinfo_path=str(mountinfo), mount=mount)
    # memory already has a v1 hierarchy; only hugetlb is moved.
    assert calls == [("hugetlb", str(root / "hugetlb"))]
    assert (root / "hugetlb").is_dir()
    assert len(lines) == 1 and "hugetlb" in lines[0]
    assert (
        cgroups.ensure_cgroup_hierarchy(str(root), mountinfo_path=str(mountinfo), mount=mount) == []
    )
    assert len(calls) == 1


def test_hybrid_fix_reports_a_refusal(tmp_path):
    root, mountinfo = fake_host(tmp_path, "hugetlb\n")

    def refuse(controller: str, target: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    with pytest.raises(cgroups.CgroupError, match="cannot move cgroup controller 'hugetlb'"):
        cgroups.ensure_cgroup_hierarchy(str(root), mountinfo_path=str(mountinfo), mount=refuse)


def test_hybrid_fix_leaves_other_hosts_alone(tmp_path):
    assert cgroups.ensure_cgroup_hierarchy(str(tmp_path)) == []
    root, mountinfo = fake_host(tmp_path, "\n")
    assert cgroups.ensure_cgroup_hierarchy(str(root), mountinfo_path=str(mountinfo)) == []


def fake_cgroup_tree(tmp_path: Path) -> cgroups.Cgroups:
    files = {
        "memory": {
            "memory.usage_in_bytes": "1048576\n",
            "memory.max_usage_in_bytes": "2097152\n",
            "memory.limit_in_bytes": "9223372036854771712\n",
            "memory.failcnt": "3\n",
            "memory.stat": "cache 4096\nrss 8192\ntotal_inactive_file 1024\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            "cgroup.procs": "12\n7\n",
        },
        "cpuacct": {
            "cpuacct.usage": "5000\n",
            "cpuacct.usage_percpu": "3000 2000 \n",
            "cpuacct.stat": "user 3\nsystem 1\n",
        },
        "cpu": {"cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 99\n"},
        "pids": {"pids.current": "2\n", "pids.max": "max\n"},
    }
    mounts = []
    for controller, contents in files.items():
        directory = tmp_path / controller / "flotta" / "c1"
        directory.mkdir(parents=True)
        for name, text in contents.items():
            (directory / name).write_text(text)
        mounts.append(cgroups.CgroupMount(str(tmp_path / controller), 1, frozenset({controller})))
    return cgroups.Cgroups(mounts)


def test_stats_shape(tmp_path):
    tree = fake_cgroup_tree(tmp_path)
    stats = tree.stats("/flotta/c1", now_ns=1_700_000_000_123_456_789)
    assert stats["read"] == "2023-11-14T22:13:20.123456789Z"
    memory = stats["memory_stats"]
    assert memory["usage"] == 1048576 and memory["max_usage"] == 2097152 and memory["failcnt"] == 3
    assert memory["limit"] == cgroups.host_memory_bytes()  # unlimited → the host's memory
    assert memory["stats"] == {"cache": 4096, "rss": 8192, "total_inactive_file": 1024}
    cpu = stats["cpu_stats"]
    assert cpu["cpu_usage"]["total_usage"] == 5000
    assert cpu["cpu_usage"]["percpu_usage"] == [3000, 2000]
    assert cpu["cpu_usage"]["usage_in_usermode"] > cpu["cpu_usage"]["usage_in_kernelmode"] > 0
    assert cpu["throttling_data"] == {"periods": 10, "throttled_periods": 2, "throttled_time": 99}
    assert stats["pids_stats"] == {"current": 2}
    assert tree.oom_kill_count("/flotta/c1") == 2
    assert tree.oom_kill_count("/flotta/gone") is None
    assert tree.process_ids("/flotta/c1") == [7, 12]


def test_remove_reports_busy_and_refuses_the_root(tmp_path):
    tree = fake_cgroup_tree(tmp_path)
    # Regular directories with files stand in for busy cgroups: rmdir fails, so they are reported.
    assert len(tree.remove("/flotta/c1")) == 4
    assert tree.remove("/flotta/absent") == []
    with pytest.raises(cgroups.CgroupError):
        tree.remove("/")


@pytest.mark.root
def test_real_host_has_no_controller_left_on_cgroup2():
    cgroups.ensure_cgroup_hierarchy()
    controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    if controllers.exists():
        assert controllers.read_text().split() == []
    assert cgroups.ensure_cgroup_hierarchy() == []
    host = cgroups.Cgroups.detect()
    assert host.controller_path("memory", "/x") == Path("/sys/fs/cgroup/memory/x")
