"""Real containers through conmon and crun: lifecycle, stdio, limits, security defaults."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import trio

from actors.supervisor import attach, conmon, monitor, ocispec, processes
from actors.supervisor.attach import Stream

pytestmark = pytest.mark.root


async def collect(stream: attach.AttachStream) -> tuple[bytes, bytes]:
    out, err = bytearray(), bytearray()
    async for which, data in stream:
        (out if which is Stream.STDOUT else err).extend(data)
    return bytes(out), bytes(err)


async def run(
    executor: monitor.Executor,
    rootfs: Path,
    args: tuple[str, ...],
    *,
    container_id: str = "c1",
    **spec: object,
) -> tuple[monitor.ExitStatus, bytes, bytes]:
    created = await executor.create(
        container_id,
        ocispec.ContainerSpec(args=args, **spec),
        [str(rootfs)],  # type: ignore[arg-type]
    )
    container = created.container
    async with await container.attach() as stream:
        await container.start()
        out, err = await collect(stream)
    status = await container.wait()
    return status, out, err


def mounted_under(directory: Path) -> list[str]:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(prefix)]


async def test_echo_separates_stdout_and_stderr(executor, busybox_rootfs):
    status, out, err = await run(executor, busybox_rootfs, ("sh", "-c", "echo hi; echo oops >&2"))
    assert (status.exit_code, out, err) == (0, b"hi\n", b"oops\n")
    assert not status.oom_killed


async def test_exit_code_and_state_transitions(executor, busybox_rootfs):
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("sh", "-c", "read x; exit 7")), [str(busybox_rootfs)],
        stdin_open=True, stdin_once=True,
    )  # fmt: skip
    container = created.container
    state = container.state()
    assert state.status is monitor.ContainerStatus.CREATED and state.pid > 0
    assert state.started_at_ns is None
    async with await container.attach() as stream:
        await container.start()
        assert container.state().status is monitor.ContainerStatus.RUNNING
        assert container.state().started_at_ns is not None
        await stream.send_stdin(b"go\n")
        status = await container.wait()
    assert status.exit_code == 7
    state = container.state()
    assert state.status is monitor.ContainerStatus.EXITED and state.exit_code == 7
    assert state.finished_at_ns is not None and state.started_at_ns is not None
    with pytest.raises(monitor.ContainerStateError):
        await container.start()


async def test_missing_executable_is_reported_like_docker(executor, busybox_rootfs, tmp_path):
    with pytest.raises(conmon.CreateError) as caught:
        await executor.create(
            "c1", ocispec.ContainerSpec(args=("no-such-command",)), [str(busybox_rootfs)]
        )
    assert caught.value.exit_code == 127
    assert caught.value.message == 'exec: "no-such-command": executable file not found in $PATH'
    # Nothing is left behind: no directory, no mount, no cgroup.
    assert not (tmp_path / "state" / "c1").exists()
    assert mounted_under(tmp_path) == []
    with pytest.raises(monitor.ContainerNotFound):
        executor.get("c1")


async def test_not_executable_maps_to_126(executor, busybox_rootfs):
    with pytest.raises(conmon.CreateError) as caught:
        await executor.create(
            "c1", ocispec.ContainerSpec(args=("/etc/passwd",)), [str(busybox_rootfs)]
        )
    assert caught.value.exit_code == 126


async def test_env_cwd_user_and_hostname(executor, busybox_rootfs):
    status, out, _ = await run(
        executor,
        busybox_rootfs,
        ("sh", "-c", 'echo "$GREETING $HOME $HOSTNAME"; pwd; id; hostname'),
        env=("GREETING=hello",),
        cwd="/tmp",
        user="alice",
        hostname="box1",
    )
    lines = out.decode().splitlines()
    assert status.exit_code == 0
    assert lines[0] == "hello /home/alice box1"
    assert lines[1] == "/tmp"
    assert lines[2].startswith("uid=1000(alice) gid=1000(alice) groups=")
    assert "10(wheel)" in lines[2] and "29(audio)" in lines[2]
    assert lines[3] == "box1"


async def test_numeric_user_and_group(executor, busybox_rootfs):
    _, out, _ = await run(executor, busybox_rootfs, ("sh", "-c", "id -u; id -g"), user="4242")
    assert out == b"4242\n0\n"
    _, out, _ = await run(
        executor, busybox_rootfs, ("sh", "-c", "id -u; id -g"), container_id="c2", user="1000:wheel"
    )
    assert out == b"1000\n10\n"


async def test_read_only_root_refuses_writes(executor, busybox_rootfs):
    status, _, err = await run(
        executor, busybox_rootfs, ("sh", "-c", "touch /newfile"), readonly_rootfs=True
    )
    assert status.exit_code != 0
    assert b"Read-only file system" in err
    status, _, _ = await run(
        executor, busybox_rootfs, ("sh", "-c", "touch /tmp/x"),
        container_id="c2",
        readonly_rootfs=True,
        mounts=(ocispec.MountSpec(destination="/tmp", type="tmpfs"),),
    )  # fmt: skip
    assert status.exit_code == 0


async def test_writes_land_in_the_upper_layer_only(executor, busybox_rootfs, tmp_path):
    status, _, _ = await run(
        executor, busybox_rootfs, ("sh", "-c", "echo data > /made; rm /bin/ls")
    )
    assert status.exit_code == 0
    assert (tmp_path / "state" / "c1" / "diff" / "made").read_text() == "data\n"
    assert (busybox_rootfs / "bin" / "ls").is_symlink()


async def test_bind_mount_read_only_and_read_write(executor, busybox_rootfs, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in").write_text("from host\n")
    status, out, err = await run(
        executor,
        busybox_rootfs,
        ("sh", "-c", "cat /data/in; echo back > /data/out; touch /ro/x"),
        mounts=(
            ocispec.MountSpec(destination="/data", source=str(shared)),
            ocispec.MountSpec(destination="/ro", source=str(shared), readonly=True),
        ),
    )
    assert out == b"from host\n"
    assert (shared / "out").read_text() == "back\n"
    assert b"Read-only file system" in err and status.exit_code == 1


async def test_oom_kill_is_137_and_flagged(executor, busybox_rootfs):
    resources = ocispec.Resources(memory_bytes=16 * 1024 * 1024)
    status, _, _ = await run(
        executor,
        busybox_rootfs,
        ("sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1"),
        resources=resources,
    )
    assert status.exit_code == 137
    assert status.oom_killed
    container = executor.get("c1")
    await container.cleanup()
    # The verdict survives the cgroup.
    assert container.state().oom_killed


async def test_plain_sigkill_is_137_without_oom(executor, busybox_rootfs):
    created = await executor.create(
        "c1",
        ocispec.ContainerSpec(
            args=("sleep", "600"), resources=ocispec.Resources(memory_bytes=64 * 1024 * 1024)
        ),
        [str(busybox_rootfs)],
    )
    container = created.container
    await container.start()
    await container.kill("KILL")
    status = await container.wait()
    assert (status.exit_code, status.oom_killed) == (137, False)


async def test_pids_limit(executor, busybox_rootfs):
    status, out, err = await run(
        executor,
        busybox_rootfs,
        (
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids/pids.max; for i in 1 2 3 4 5 6; do sleep 5 & done; wait",
        ),
        resources=ocispec.Resources(pids_limit=4),
    )
    assert out.splitlines()[0] == b"4"
    assert b"can't fork" in err or b"Resource temporarily unavailable" in err
    del status


async def test_cpu_and_memory_limits_reach_the_cgroup(executor, busybox_rootfs):
    _, out, _ = await run(
        executor,
        busybox_rootfs,
        (
            "sh",
            "-c",
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
            "/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
        ),
        resources=ocispec.Resources(nano_cpus=1_500_000_000, memory_bytes=32 * 1024 * 1024),
    )
    assert out.split() == [b"150000", b"100000", b"33554432", b"33554432"]


async def test_stop_kills_a_pid1_that_ignores_sigterm(executor, busybox_rootfs):
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("sleep", "600")), [str(busybox_rootfs)]
    )
    container = created.container
    await container.start()
    status = await container.stop(timeout_seconds=0.5)
    assert status.exit_code == 137 and not status.oom_killed


async def test_stop_lets_a_trapping_pid1_exit(executor, busybox_rootfs):
    created = await executor.create(
        "c1",
        ocispec.ContainerSpec(
            args=("sh", "-c", "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done")
        ),
        [str(busybox_rootfs)],
    )
    container = created.container
    async with await container.attach() as stream:
        await container.start()
        assert await stream.receive() == (Stream.STDOUT, b"ready\n")
    status = await container.stop(timeout_seconds=30)
    assert status.exit_code == 42


async def test_tty_with_initial_size_and_resize(executor, busybox_rootfs):
    created = await executor.create(
        "c1",
        ocispec.ContainerSpec(args=("sh",), terminal=True, console_height=40, console_width=120),
        [str(busybox_rootfs)],
        stdin_open=True,
        stdin_once=True,
    )
    container = created.container
    async with await container.attach() as stream:
        await container.start()
        await stream.send_stdin(b"stty size\n")
        seen = bytearray()
        while b"40 120" not in seen:
            item = await stream.receive()
            assert item is not None, seen
            assert item[0] is Stream.STDOUT
            seen.extend(item[1])
        container.resize(33, 77)
        await stream.send_stdin(b"stty size; tty; exit 3\n")
        while True:
            item = await stream.receive()
            if item is None:
                break
            seen.extend(item[1])
    assert b"33 77" in seen and b"/dev/pts/0" in seen
    assert (await container.wait()).exit_code == 3


async def test_stdin_is_echoed_by_cat(executor, busybox_rootfs):
    created = await executor.create(
        "c1",
        ocispec.ContainerSpec(args=("cat",)),
        [str(busybox_rootfs)],
        stdin_open=True,
        stdin_once=True,
    )
    container = created.container
    async with await container.attach() as stream:
        await container.start()
        await stream.send_stdin(b"line one\n")
        await stream.send_stdin(b"x" * 100_000 + b"\n")
        await stream.close_stdin()
        out, err = await collect(stream)
    assert out == b"line one\n" + b"x" * 100_000 + b"\n" and err == b""
    assert (await container.wait()).exit_code == 0


async def test_attach_before_start_loses_nothing(executor, busybox_rootfs):
    created = await executor.create(
        "c1",
        ocispec.ContainerSpec(args=("sh", "-c", "seq 1 2000; echo done >&2")),
        [str(busybox_rootfs)],
    )
    container = created.container
    first = await container.attach()
    second = await container.attach()
    await container.start()
    async with first, second:
        results = [await collect(first), await collect(second)]
    expected = "".join(f"{i}\n" for i in range(1, 2001)).encode()
    assert results == [(expected, b"done\n"), (expected, b"done\n")]


async def test_start_waits_until_conmon_accepted_the_attach(executor, busybox_rootfs):
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("echo", "first words")), [str(busybox_rootfs)]
    )
    container = created.container
    conmon_pid = container.state().conmon_pid
    assert conmon_pid is not None
    os.kill(conmon_pid, signal.SIGSTOP)  # conmon cannot accept while stopped
    try:
        stream = await container.attach()
        assert attach.pending_connections(container.layout.attach) == 1
        async with trio.open_nursery() as nursery:
            nursery.start_soon(container.start)
            await trio.sleep(0.1)
            assert container.state().status is monitor.ContainerStatus.CREATED
            os.kill(conmon_pid, signal.SIGCONT)
    finally:
        os.kill(conmon_pid, signal.SIGCONT)
    async with stream:
        assert await collect(stream) == (b"first words\n", b"")


async def test_exec_with_exit_code_env_and_pipes(executor, busybox_rootfs):
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("sleep", "600"), env=("BASE=1",)), [str(busybox_rootfs)]
    )
    container = created.container
    await container.start()
    async with await container.exec(
        ["sh", "-c", 'echo "$BASE $EXTRA $(pwd) $(id -u)"; echo warn >&2; exit 5'],
        env=["EXTRA=2"], cwd="/tmp", user="alice",
    ) as session:  # fmt: skip
        out = await _read_all(session.stdout)
        err = await _read_all(session.stderr)
        assert out == b"1 2 /tmp 1000\n" and err == b"warn\n"
        assert await session.wait() == 5
    async with await container.exec(["sh", "-c", "echo started; exec sleep 600"]) as sleeper:
        assert await sleeper.stdout.receive_some(100) == b"started\n"
        assert await sleeper.kill()
        assert await sleeper.wait() == 137
    async with await container.exec(["sh", "-c", "seq 100000; touch /made"], detach=True) as quiet:
        assert quiet.stdout is None and await quiet.wait() == 0
    assert (container.layout.upper / "made").exists()
    async with await container.exec(["no-such-command"], detach=True) as missing:
        assert await missing.wait() == 127
    async with await container.exec(["no-such-command"]) as missing:
        await _read_all(missing.stdout)
        assert b"not found" in await _read_all(missing.stderr)
        assert await missing.wait() == 127


async def test_exec_with_tty_and_stdin(executor, busybox_rootfs):
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("sleep", "600")), [str(busybox_rootfs)]
    )
    container = created.container
    await container.start()
    async with await container.exec(
        ["sh"], tty=True, stdin=True, console_height=20, console_width=60
    ) as session:
        assert session.pty is not None
        await session.pty.send_all(b"stty size; read line; stty size; exit 9\n")
        seen = bytearray()
        while b"20 60" not in seen:
            seen.extend(await session.pty.receive_some(4096))
        # While it runs, the exec process is inside the container's cgroup.
        assert await session.get_pid() in container._executor.cgroups.process_ids(
            container.meta.cgroups_path
        )
        session.resize(30, 90)
        await session.pty.send_all(b"go\n")
        while chunk := await session.pty.receive_some(4096):
            seen.extend(chunk)
        assert b"30 90" in seen
        assert await session.wait() == 9


async def _read_all(stream) -> bytes:
    data = bytearray()
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return bytes(data)
        data.extend(chunk)


async def test_logs_of_a_real_container(executor, busybox_rootfs):
    script = "echo one; sleep 0.2; printf 'tw'; sleep 0.2; echo o; echo three >&2; printf tail"
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("sh", "-c", script)), [str(busybox_rootfs)]
    )
    container = created.container
    before_start = time.time_ns()
    followed: list[tuple[Stream, bytes]] = []
    async with trio.open_nursery() as nursery:

        async def follow() -> None:
            async for entry in container.read_logs(follow=True):
                followed.append((entry.stream, entry.data))

        nursery.start_soon(follow)
        await container.start()
    # The follower ended by itself once the container exited, with every line.
    assert followed == [
        (Stream.STDOUT, b"one\n"),
        (Stream.STDOUT, b"two\n"),
        (Stream.STDERR, b"three\n"),
        (Stream.STDOUT, b"tail"),
    ]
    entries = [entry async for entry in container.read_logs(tail=2, timestamps=True)]
    assert [entry.data.split(b" ", 1)[1] for entry in entries] == [b"three\n", b"tail"]
    assert all(entry.time_ns >= before_start for entry in entries)
    assert entries[0].data.startswith(time.strftime("%Y-").encode())
    later = [e async for e in container.read_logs(since_ns=entries[-1].time_ns)]
    assert later and all(e.time_ns >= entries[-1].time_ns for e in later)


async def test_top_lists_the_processes(executor, busybox_rootfs):
    created = await executor.create(
        "c1",
        ocispec.ContainerSpec(args=("sh", "-c", "sleep 600 & sleep 601; exit 0")),
        [str(busybox_rootfs)],
    )
    container = created.container
    await container.start()
    expected = ["sh -c sleep 600 & sleep 601; exit 0", "sleep 600", "sleep 601"]
    with trio.fail_after(10):
        # The shell forks before its children exec: wait until both have.
        while sorted(row[-1] for row in container.top().processes) != expected:
            await trio.sleep(0.02)
    result = container.top()
    assert result.titles == ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
    init_pid = container.state().pid
    assert {row[0] for row in result.processes} == {"root"}
    assert any(row[1] == str(init_pid) for row in result.processes)


async def test_stats_report_usage_and_limits(executor, busybox_rootfs):
    created = await executor.create(
        "c1",
        ocispec.ContainerSpec(
            args=("sh", "-c", "sleep 600"),
            resources=ocispec.Resources(memory_bytes=64 * 1024 * 1024, pids_limit=50),
        ),
        [str(busybox_rootfs)],
    )
    container = created.container
    await container.start()
    stats = container.stats()
    memory = stats["memory_stats"]
    assert memory["limit"] == 64 * 1024 * 1024 and memory["usage"] > 0
    assert "cache" in memory["stats"] and "total_inactive_file" in memory["stats"]
    assert stats["pids_stats"] == {"current": 1, "limit": 50}
    cpu = stats["cpu_stats"]
    assert cpu["cpu_usage"]["total_usage"] > 0
    assert len(cpu["cpu_usage"]["percpu_usage"]) == os.cpu_count()
    assert cpu["system_cpu_usage"] > cpu["cpu_usage"]["total_usage"]


async def test_capabilities_are_dockers(executor, busybox_rootfs):
    _, out, _ = await run(executor, busybox_rootfs, ("grep", "Cap", "/proc/self/status"))
    fields = dict(line.split(":\t") for line in out.decode().splitlines())
    effective = int(fields["CapEff"], 16)
    assert effective == int(fields["CapBnd"], 16) == int(fields["CapPrm"], 16)
    assert int(fields["CapAmb"], 16) == 0 and int(fields["CapInh"], 16) == 0
    cap_net_raw, cap_sys_admin, cap_chown = 13, 21, 0
    assert effective & (1 << cap_net_raw)
    assert effective & (1 << cap_chown)
    assert not effective & (1 << cap_sys_admin)
    assert bin(effective).count("1") == 14


async def test_cap_drop_and_add(executor, busybox_rootfs):
    _, out, _ = await run(
        executor,
        busybox_rootfs,
        ("grep", "CapEff", "/proc/self/status"),
        cap_drop=("NET_RAW",),
        cap_add=("SYS_ADMIN",),
    )
    effective = int(out.split()[1], 16)
    assert not effective & (1 << 13) and effective & (1 << 21)


async def test_masked_and_read_only_paths(executor, busybox_rootfs):
    script = (
        "cat /proc/kcore | wc -c; cat /proc/keys | wc -c; cat /proc/timer_list | wc -c; "
        "ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname || echo ro-sys"
    )
    _, out, _ = await run(executor, busybox_rootfs, ("sh", "-c", script))
    kcore, keys, timer_list, firmware, sys_write = out.decode().split()
    # Masked files read as /dev/null (this host's kernel may have no /proc/kcore at all).
    assert (kcore, keys, timer_list) == ("0", "0", "0")
    assert len(Path("/proc/timer_list").read_bytes()) > 0  # the host's is not empty
    assert firmware == "0" and len(os.listdir("/sys/firmware")) > 0
    assert sys_write == "ro-sys"


async def test_default_mounts_and_devices(executor, busybox_rootfs):
    _, out, _ = await run(
        executor, busybox_rootfs, ("sh", "-c", "cat /proc/mounts; echo ---; ls /dev")
    )
    mounts_text, devices_text = out.decode().split("---\n")
    mounts = {line.split()[1]: line.split() for line in mounts_text.splitlines()}
    for destination, kind in [
        ("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"), ("/sys", "sysfs"),
    ]:  # fmt: skip
        assert mounts[destination][2] == kind, destination
    assert mounts["/sys"][3].startswith("ro,")
    assert "size=65536k" in mounts["/dev/shm"][3]
    devices = set(devices_text.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"} <= devices
    assert "console" not in devices


async def test_network_namespaces(executor, busybox_rootfs):
    _, out, _ = await run(
        executor, busybox_rootfs, ("sh", "-c", "ls /sys/class/net"), network="none"
    )
    assert out.split() == [b"lo"]
    host_links = sorted(os.listdir("/sys/class/net"))
    _, out, _ = await run(
        executor,
        busybox_rootfs,
        ("sh", "-c", "ls /sys/class/net"),
        container_id="c2",
        network="host",
    )
    assert sorted(out.decode().split()) == host_links


async def test_etc_files_are_bind_mounted(executor, busybox_rootfs, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.0.0.5 box1\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.1\n")
    hostname = tmp_path / "hostname"
    hostname.write_text("box1\n")
    _, out, _ = await run(
        executor,
        busybox_rootfs,
        ("sh", "-c", "cat /etc/hosts /etc/resolv.conf /etc/hostname"),
        hosts_file=str(hosts),
        resolv_conf_file=str(resolv),
        hostname_file=str(hostname),
    )
    assert out == b"127.0.0.1 localhost\n10.0.0.5 box1\nnameserver 10.0.0.1\nbox1\n"


async def test_rlimits_never_exceed_the_host(executor, busybox_rootfs):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    created = await executor.create(
        "c1",
        ocispec.ContainerSpec(
            args=("sh", "-c", "ulimit -n; ulimit -Hn"),
            ulimits=(ocispec.Ulimit("nofile", 1 << 30, 1 << 30),),
        ),
        [str(busybox_rootfs)],
    )
    assert created.warnings and "nofile" in created.warnings[0]
    container = created.container
    async with await container.attach() as stream:
        await container.start()
        out, _ = await collect(stream)
    assert out.split() == [str(hard).encode(), str(hard).encode()]


async def test_seccomp_profile_refuses_user_namespaces(executor, busybox_rootfs):
    command = ("sh", "-c", "unshare -U true && echo allowed || echo refused")
    _, out, err = await run(executor, busybox_rootfs, command)
    assert out == b"refused\n" and b"Operation not permitted" in err
    # The same call without the profile succeeds: the profile is what refused it.
    _, out, _ = await run(executor, busybox_rootfs, command, container_id="c2", seccomp=False)
    assert out == b"allowed\n"


async def test_pause_and_unpause(executor, busybox_rootfs):
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("sleep", "600")), [str(busybox_rootfs)]
    )
    container = created.container
    await container.start()
    await container.pause()
    assert container.state().status is monitor.ContainerStatus.PAUSED
    await container.unpause()
    assert container.state().status is monitor.ContainerStatus.RUNNING
    await container.pause()
    status = await container.stop(timeout_seconds=1)
    assert status.exit_code in (137, 143)


async def test_remove_cleans_mounts_cgroups_and_files(executor, busybox_rootfs, tmp_path):
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("sleep", "600")), [str(busybox_rootfs)]
    )
    container = created.container
    await container.start()
    with pytest.raises(monitor.ContainerStateError):
        await container.remove()
    cgroup = executor.cgroups.controller_path("memory", container.meta.cgroups_path)
    assert cgroup is not None and cgroup.is_dir()
    await container.remove(force=True)
    assert not cgroup.exists()
    assert mounted_under(tmp_path) == []
    assert not (tmp_path / "state" / "c1").exists()
    assert list((tmp_path / "run" / "runtime").iterdir()) == []
    assert executor.remove_cgroup_parent() == []


async def test_restart_keeps_the_writable_layer_and_the_log(executor, busybox_rootfs):
    spec = ocispec.ContainerSpec(args=("sh", "-c", "cat /count 2>/dev/null; echo x >> /count"))
    for _ in range(2):
        created = await executor.create("c1", spec, [str(busybox_rootfs)])
        await created.container.start()
        assert (await created.container.wait()).exit_code == 0
    from actors.supervisor import logs

    lines = [entry.data async for entry in logs.read_logs(created.container.log_path)]
    assert lines == [b"x\n"]
    assert (created.container.layout.upper / "count").read_text() == "x\nx\n"


async def test_live_restore_after_dropping_every_handle(busybox_rootfs, executor_factory):
    async def first_daemon() -> None:
        executor = executor_factory()
        for name, command in [("keeps", "echo up; sleep 600"), ("ends", "echo bye; exit 4")]:
            created = await executor.create(
                name, ocispec.ContainerSpec(args=("sh", "-c", command)), [str(busybox_rootfs)]
            )
            await created.container.start()

    await first_daemon()
    # A "restarted daemon": nothing survives but the files and the monitors.
    found = {container.id: container for container in executor_factory().recover()}
    assert set(found) == {"keeps", "ends"}
    ended = await found["ends"].wait()
    assert ended.exit_code == 4
    keeps = found["keeps"]
    assert keeps.state().status is monitor.ContainerStatus.RUNNING
    await keeps.kill(signal.SIGKILL)
    # Nobody ever waited on it before: the code comes from conmon's exit file.
    again = executor_factory().get("keeps")
    status = await again.wait()
    assert status.exit_code == 137
    assert again.state().status is monitor.ContainerStatus.EXITED
    assert [entry.data async for entry in again.read_logs()] == [b"up\n"]


async def test_a_killed_monitor_is_reported_not_hidden(executor, busybox_rootfs):
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("sleep", "600")), [str(busybox_rootfs)]
    )
    container = created.container
    await container.start()
    conmon_pid = container.state().conmon_pid
    assert conmon_pid is not None
    os.kill(conmon_pid, signal.SIGKILL)
    await processes.wait_for_exit(conmon_pid)
    # The container outlives its monitor: still running, and said to be unmonitored.
    state = container.state()
    assert state.status is monitor.ContainerStatus.RUNNING and "conmon" in state.error
    await container.kill("KILL")
    status = await container.wait()
    assert status.exit_code == monitor.LOST_EXIT_CODE and "conmon" in status.error
    assert container.state().status is monitor.ContainerStatus.EXITED


async def test_long_ids_and_deep_directories(busybox_rootfs, tmp_path, executor_factory):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    executor = executor_factory(deep / "state", deep / "run")
    created = await executor.create(
        "f" * 64, ocispec.ContainerSpec(args=("echo", "deep")), [str(busybox_rootfs)]
    )
    container = created.container
    assert len(str(container.layout.attach)) > 108
    async with await container.attach() as stream:
        await container.start()
        assert await collect(stream) == (b"deep\n", b"")


async def test_scratch_image_with_no_lower_layers(executor, busybox_rootfs, tmp_path):
    # FROM scratch: no layer at all; the program comes from a bind mount.
    tools = ocispec.MountSpec(
        destination="/tools", source=str(busybox_rootfs / "bin"), readonly=True
    )
    created = await executor.create(
        "c1", ocispec.ContainerSpec(args=("/tools/busybox", "ls", "/"), mounts=(tools,)), []
    )
    container = created.container
    async with await container.attach() as stream:
        await container.start()
        out, err = await collect(stream)
    assert set(out.split()) >= {b"tools", b"proc", b"dev", b"sys"} and err == b""
    assert b"bin" not in out.split()


async def test_invalid_spec_leaves_nothing(executor, busybox_rootfs, tmp_path):
    with pytest.raises(ocispec.SpecError, match="unable to find user nobody-here"):
        await executor.create(
            "c1", ocispec.ContainerSpec(args=("true",), user="nobody-here"), [str(busybox_rootfs)]
        )
    assert not (tmp_path / "state" / "c1").exists()
    assert mounted_under(tmp_path) == []
    with pytest.raises(ValueError, match="invalid container id"):
        await executor.create(
            "../evil", ocispec.ContainerSpec(args=("true",)), [str(busybox_rootfs)]
        )
