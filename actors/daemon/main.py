"""`flottad`: start the node, its component actors and the API server.

Start-up order: check root, lock the data root (one daemon per data root) and the network
namespace (one daemon per network namespace), fix the
cgroup hierarchy crun needs on hybrid hosts (and say so in the log), then spawn the
actors: events, images, containers (which re-adopts containers left running by a previous
daemon: live restore), networks, volumes, builder, and last the API server. SIGTERM or
SIGINT stops accepting requests, lets in-flight ones finish, and exits leaving containers
running.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from actors.daemon.actor import DaemonActor, Shutdown
from actors.daemon.config import ConfigError, DaemonConfig, build_parser, config_from_arguments
from actors.daemon.context import DaemonContext
from actors.daemon.events import EventsActor
from actors.images.actor import ImagesActor
from runtime.host import real_host
from runtime.node import Node

log = logging.getLogger("flotta.daemon")


class StartupError(RuntimeError):
    """flottad cannot start; the message says why."""


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def lock_data_root(data_root: Path) -> int:
    data_root.mkdir(parents=True, exist_ok=True)
    os.chmod(data_root, 0o711)
    descriptor = os.open(data_root / "flottad.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise StartupError(f"another flottad is using the data root {data_root}") from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    return descriptor


NETNS_LOCK_DIR = Path("/run/flotta")


def lock_network_namespace(data_root: Path, lock_dir: Path = NETNS_LOCK_DIR) -> int:
    """One flottad per network namespace: bridges, flotta's nftables tables and the
    containers' namespaces are that namespace's state, and a second daemon would take
    the first one's for stale leftovers. The lock is named after the namespace's inode
    and released by the kernel when the process dies, even by `kill -9`."""
    namespace = os.stat("/proc/self/ns/net")
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"netns-{namespace.st_dev}-{namespace.st_ino}.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 4096, 0).decode(errors="replace").strip() or "unknown"
        os.close(descriptor)
        raise StartupError(
            f"another flottad ({holder}) already runs in this network namespace; "
            "run a second daemon in a network namespace of its own (ip netns exec NAME flottad ...)"
        ) from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"pid {os.getpid()}, data root {data_root}\n".encode())
    return descriptor


def engine_id(data_root: Path) -> str:
    path = data_root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        from runtime.disk import atomic_write

        value = secrets.token_hex(16)
        atomic_write(path, value.encode() + b"\n")
        return value


def prepare_host(config: DaemonConfig) -> None:
    config.exec_root.mkdir(parents=True, exist_ok=True)
    from actors.supervisor.cgroups import ensure_cgroup_hierarchy

    for line in ensure_cgroup_hierarchy():
        log.info("cgroups: %s", line)


async def run_daemon(config: DaemonConfig, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
    from actors.daemon import components

    lock = lock_data_root(config.data_root)
    try:
        netns_lock = lock_network_namespace(config.data_root)
    except BaseException:
        os.close(lock)
        raise
    try:
        prepare_host(config)
        daemon_id = engine_id(config.data_root)
        host = real_host("local", config.data_root / "node")
        node = Node(host)
        async with node.running():
            events = await node.spawn(EventsActor, "events")
            images = await node.spawn(
                lambda: ImagesActor(config.images_dir, config.insecure_registries), "images"
            )
            shared: dict[str, Any] = {"events": events, "images": images, "routers": []}
            for hook in components.hooks():
                await hook(node, config, shared)

            def make_context(actor: DaemonActor) -> DaemonContext:
                return DaemonContext(
                    node=node,
                    config=config,
                    daemon_id=daemon_id,
                    images=images,
                    events=events,
                    containers=shared.get("containers"),
                    networks=shared.get("networks"),
                    volumes=shared.get("volumes"),
                    builder=shared.get("builder"),
                    extras=shared,
                )

            daemon = await node.spawn(lambda: DaemonActor(config, make_context), "daemon")
            task_status.started(node)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    log.info(
                        "%s: shutting down; containers keep running (live restore)",
                        signal.Signals(signum).name,
                    )
                    grace = config.shutdown_timeout_seconds
                    with trio.move_on_after(grace + 5):
                        await daemon.ask(Shutdown(grace), timeout=grace + 5)
                    for hook in components.shutdown_hooks():
                        with trio.move_on_after(10):
                            await hook(node, config, shared)
                    break
    finally:
        os.close(netns_lock)
        os.close(lock)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        config = config_from_arguments(arguments)
    except ConfigError as error:
        print(f"flottad: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    if os.geteuid() != 0:
        print("flottad: must run as root (it creates namespaces, mounts and cgroups)", file=sys.stderr)
        return 1
    failed = False
    try:
        trio.run(run_daemon, config)
    except* (StartupError, OSError) as group:
        for error in _leaves(group):
            print(f"flottad: {error}", file=sys.stderr)
        failed = True
    return 1 if failed else 0


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


if __name__ == "__main__":
    sys.exit(main())
