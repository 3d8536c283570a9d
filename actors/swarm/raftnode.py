"""A Raft store node on a real host: `python -m actors.swarm.raftnode`.

    python -m actors.swarm.raftnode --id n1 --listen tcp:127.0.0.1:7001 \\
        --peer n2=tcp:127.0.0.1:7002 --peer n3=tcp:127.0.0.1:7003 --data /var/lib/raft/n1 \\
        [--client bench=tcp:127.0.0.1:7100] [--no-fsync | --memory] [--tick 0.1]

It runs the replicated store (`consensus.store.Store`, actor `raft`) on
`runtime.host.real_host` with a `SocketTransport`: Raft traffic goes to the `--peer`
nodes; client nodes (`--client NAME=ADDRESS`, e.g. a benchmark driver) talk to the same
`raft` actor over the same transport (`consensus.client.StoreClient` or raw asks) — the
transport answers a node only at an address it knows, so clients are declared up front.
The founding voters are this node and its `--peer`s, unless `--join` says it joins an
existing cluster (then it waits to be added as a learner).

Durability: by default every Ready is fsynced before its messages leave (group commit);
`--no-fsync` writes the WAL without fsync (a crash of the machine may lose acknowledged
writes: for benchmarks), `--memory` writes nothing (state is lost on restart).

The process prints `ready <node> <address>` on stdout once it listens, and exits on
SIGINT/SIGTERM. FLOTTA_RAFT_MUTANT switches on mutants (tests only).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

import trio

from consensus import storemutants
from consensus.peer import PEER_NAME, PeerSettings
from consensus.store import Store
from runtime.host import real_host
from runtime.node import Node
from runtime.sockets import SocketTransport, parse_address

log = logging.getLogger("flotta.swarm.raftnode")


def _named_address(text: str, flag: str) -> tuple[str, str]:
    name, separator, address = text.partition("=")
    if not separator or not name or not address:
        raise argparse.ArgumentTypeError(f"{flag} takes NAME=ADDRESS, got {text!r}")
    try:
        parse_address(address)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{flag} {text!r}: {error}") from None
    return name, address


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m actors.swarm.raftnode", description="Run one node of a Raft-replicated store."
    )
    parser.add_argument("--id", required=True, help="this node's id (e.g. n1)")
    parser.add_argument("--listen", required=True, help="tcp:HOST:PORT or unix:PATH")
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        type=lambda text: _named_address(text, "--peer"),
        help="another member: NAME=ADDRESS (repeat for each)",
    )
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        type=lambda text: _named_address(text, "--client"),
        help="a client node allowed to talk to the store: NAME=ADDRESS",
    )
    parser.add_argument("--data", required=True, help="directory for the WAL and snapshots")
    durability = parser.add_mutually_exclusive_group()
    durability.add_argument("--no-fsync", action="store_true", help="write the WAL but never fsync")
    durability.add_argument("--memory", action="store_true", help="keep the log in memory only")
    parser.add_argument("--join", action="store_true", help="join an existing cluster as a new node")
    parser.add_argument("--tick", type=float, default=0.1, help="seconds per Raft tick (default 0.1)")
    parser.add_argument("--heartbeat-tick", type=int, default=1, help="heartbeat interval in ticks")
    parser.add_argument("--election-tick", type=int, default=10, help="election timeout in ticks")
    parser.add_argument("--snapshot-entries", type=int, default=10_000)
    parser.add_argument("--log-level", default="warning")
    return parser


def settings_from(options: argparse.Namespace) -> PeerSettings:
    peers = dict(options.peer)
    if options.id in peers:
        raise ValueError(f"--peer names this node ({options.id}) itself")
    voters = () if options.join else tuple(sorted([options.id, *peers]))
    durability = "memory" if options.memory else "nofsync" if options.no_fsync else "fsync"
    return PeerSettings(
        options.id,
        voters,
        tick_seconds=options.tick,
        heartbeat_tick=options.heartbeat_tick,
        election_tick=options.election_tick,
        durability=durability,
        snapshot_entries=options.snapshot_entries,
        read_timeout_seconds=max(1.0, 4 * options.election_tick * options.tick),
    )


async def serve(options: argparse.Namespace, settings: PeerSettings) -> None:
    peers = dict(options.peer)
    peers.update(dict(options.client))
    # Reconnect to a peer that went away within about a tick, not the transport's default
    # of up to 2 s: a restarted peer must hear our (pre)vote answers before the election
    # times out, else a failover takes a whole extra election timeout.
    reconnect_max = max(0.05, settings.tick_seconds)
    transport = SocketTransport(
        options.id,
        options.listen,
        peers,
        backoff_initial_seconds=min(0.05, reconnect_max),
        backoff_max_seconds=reconnect_max,
    )
    host = real_host(options.id, options.data, transport)
    node = Node(host)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with node.running():
            await node.spawn(lambda: Store(settings), PEER_NAME)
            print(f"ready {options.id} {transport.address}", flush=True)
            async for signal_number in signals:
                log.warning("%s: stopping on signal %d", options.id, signal_number)
                node.stop_actor(PEER_NAME)
                return


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, options.log_level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        storemutants.configure_from_environment(os.environ)
        settings = settings_from(options)
    except ValueError as error:
        print(f"raftnode: error: {error}", file=sys.stderr)
        return 2
    trio.run(serve, options, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
