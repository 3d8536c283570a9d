"""The replicated store on real hosts: 3 processes on loopback, beside PySyncObj.

    .venv/bin/python bench/raft_bench.py [--seconds 5] [--trials 20] [--quick] [--no-pysyncobj]

Starts three `python -m actors.swarm.raftnode` processes (TCP on 127.0.0.1, data in a
temporary directory) and drives them from this process, a fourth node on the same
transport. Prints:

- committed writes/s with the in-memory log (`--memory`) and with the fsync'd log
  (group commit, one fdatasync per Ready on leader and followers), for 1 client, 64
  concurrent clients each with one request in flight (one ask per write), and 64 clients
  sharing one batching connection (their concurrent writes travel as `WriteBatch`es);
  a write counts once the client got `ok` (majority commit and leader apply);
- p50/p99 commit latency as the client sees it;
- leader failover: SIGKILL the leader, time until a new leader accepts a write (p50/p99
  over `--trials`, 100 ms heartbeats, election timeout randomized in [1, 2) s); the killed
  node is restarted on its data and the cluster settles before the next trial;
- the same write workload on PySyncObj (3 processes, `ReplDict.set` with the same key
  and value sizes), in memory and with its journal file. PySyncObj has no client
  protocol: the load runs inside its leader process (no client hop, to its advantage),
  and its journal is an mmap it never fsyncs.

Keys are 16 bytes, values 128 bytes. Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consensus.client import StoreClient  # noqa: E402
from consensus.peer import PEER_NAME, PeerStatus, StatusRequest  # noqa: E402
from consensus.storeapi import Create, WriteBatch, WriteBatchResult, WriteResult  # noqa: E402
from runtime.errors import ActorError, AskTimeout  # noqa: E402
from runtime.host import real_host  # noqa: E402
from runtime.node import Node  # noqa: E402
from runtime.sockets import SocketTransport  # noqa: E402

KEY_BYTES = 16
VALUE_BYTES = 128
NODES = ("n1", "n2", "n3")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- the flotta cluster -----------------------------------------------------------------------


class Cluster:
    def __init__(self, directory: Path, durability: str, client_address: str) -> None:
        self.directory = directory
        self.durability = durability
        self.client_address = client_address
        self.addresses = {node: f"tcp:127.0.0.1:{free_port()}" for node in NODES}
        self.processes: dict[str, subprocess.Popen[str]] = {}

    def command(self, node: str) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "actors.swarm.raftnode",
            "--id",
            node,
            "--listen",
            self.addresses[node],
            "--data",
            str(self.directory / node),
            "--client",
            f"bench={self.client_address}",
        ]
        for other in NODES:
            if other != node:
                command += ["--peer", f"{other}={self.addresses[other]}"]
        if self.durability == "memory":
            command.append("--memory")
        elif self.durability == "nofsync":
            command.append("--no-fsync")
        return command

    def start(self, node: str) -> None:
        process = subprocess.Popen(
            self.command(node),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("ready"):
            process.kill()
            raise RuntimeError(f"{node} did not start: {line!r}")
        self.processes[node] = process

    def start_all(self) -> None:
        for node in NODES:
            self.start(node)

    def kill(self, node: str) -> None:
        process = self.processes.pop(node)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for node in list(self.processes):
            process = self.processes.pop(node)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def status_of(node: Node, target: str, timeout: float = 0.5) -> PeerStatus | None:
    try:
        reply = await node.ref(PEER_NAME, target).ask(StatusRequest(), timeout=timeout)
    except (AskTimeout, ActorError):
        return None
    return reply if isinstance(reply, PeerStatus) else None


async def wait_leader(node: Node, exclude: str = "", timeout: float = 30.0) -> str:
    deadline = trio.current_time() + timeout
    while trio.current_time() < deadline:
        for target in NODES:
            if target == exclude:
                continue
            status = await status_of(node, target, 0.3)
            if status is not None and status.role == "leader":
                return target
        await trio.sleep(0.05)
    raise RuntimeError("no leader elected")


async def wait_settled(node: Node, timeout: float = 30.0) -> None:
    """All three nodes up, one leader, everyone applied the same index."""
    deadline = trio.current_time() + timeout
    while trio.current_time() < deadline:
        statuses = [await status_of(node, target, 0.5) for target in NODES]
        if all(s is not None for s in statuses):
            applied = {s.applied for s in statuses if s is not None}
            leaders = [s for s in statuses if s is not None and s.role == "leader"]
            if len(applied) == 1 and len(leaders) == 1:
                return
        await trio.sleep(0.1)
    raise RuntimeError("the cluster did not settle")


_runs = [0]


def next_run() -> int:
    """A number for each measurement, part of its keys: a run must not find the keys of an
    earlier run taken (its creates would answer `exists` and not count)."""
    _runs[0] += 1
    return _runs[0] % 100


def key_for(run: int, client: int, number: int) -> str:
    return f"{run:02d}{client:04d}-{number:09d}"[:KEY_BYTES]


async def run_clients(node: Node, leader: str, clients: int, seconds: float, value: bytes) -> dict[str, Any]:
    """`clients` sessions, each with one write in flight, one ask per write."""
    latencies: list[float] = []
    done = [0]
    stop = trio.current_time() + seconds
    run = next_run()

    async def session(index: int) -> None:
        client = StoreClient(node, f"bench-{index}-{random.getrandbits(32)}", list(NODES), ask_timeout_seconds=5.0)
        client.leader = leader
        number = 0
        while trio.current_time() < stop:
            number += 1
            start = time.perf_counter()
            result = await client.create("bench", key_for(run, index, number), value)
            latencies.append(time.perf_counter() - start)
            if result.status == "ok":
                done[0] += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index in range(clients):
            nursery.start_soon(session, index)
    elapsed = time.perf_counter() - started
    return {"writes": done[0], "rate": done[0] / elapsed, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


async def run_batched(node: Node, leader: str, clients: int, seconds: float, value: bytes) -> dict[str, Any]:
    """`clients` sessions multiplexed on one connection, as a client library batches the
    writes of its callers: every session has one write in flight (it sends its next only
    once the last was answered, and retries an unanswered one with the same seq); the
    writes waiting to go leave together as one `WriteBatch`, at most `inflight` batches
    at a time. The sessions are plain state here, not tasks: the driver's own overhead
    per write stays small beside the store's."""
    inflight = 4
    run = next_run()
    latencies: list[float] = []
    done = [0]
    stop = trio.current_time() + seconds
    client_ids = [f"batch-{index}-{random.getrandbits(32)}" for index in range(clients)]
    numbers = [1] * clients
    started_at = [0.0] * clients
    queue: list[int] = []  # sessions whose current write waits to be sent
    wake = trio.Event()
    ref = node.ref(PEER_NAME, leader)
    slots = trio.Semaphore(inflight)
    active = [clients]
    finished = trio.Event()

    def request(index: int) -> Create:
        number = numbers[index]
        return Create(client_ids[index], number, "bench", key_for(run, index, number), value)

    def enqueue(index: int) -> None:
        queue.append(index)
        wake.set()

    async def retry_later(index: int) -> None:
        await trio.sleep(0.01)  # Redirect/Retry/timeout: the same request id again
        enqueue(index)

    async def send(batch: list[int], nursery: trio.Nursery) -> None:
        try:
            reply = await ref.ask(WriteBatch([request(index) for index in batch]), timeout=10.0)
            results = reply.results if isinstance(reply, WriteBatchResult) else [None] * len(batch)
        except (AskTimeout, ActorError):
            results = [None] * len(batch)
        finally:
            slots.release()
        now = time.perf_counter()
        more = trio.current_time() < stop
        for index, result in zip(batch, results, strict=True):
            if not isinstance(result, WriteResult):
                nursery.start_soon(retry_later, index)
                continue
            latencies.append(now - started_at[index])
            if result.status == "ok":
                done[0] += 1
            if more:
                numbers[index] += 1
                started_at[index] = now
                enqueue(index)
            else:
                active[0] -= 1
        if not active[0]:
            finished.set()

    async def flusher(nursery: trio.Nursery) -> None:
        nonlocal wake
        while True:
            while not queue:
                await wake.wait()
                wake = trio.Event()
            await slots.acquire()
            batch = queue[:4096]
            del queue[: len(batch)]
            nursery.start_soon(send, batch, nursery)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index in range(clients):
            started_at[index] = time.perf_counter()
            enqueue(index)
        nursery.start_soon(flusher, nursery)
        await finished.wait()
        nursery.cancel_scope.cancel()
    elapsed = time.perf_counter() - started
    return {"writes": done[0], "rate": done[0] / elapsed, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


async def failover(node: Node, cluster: Cluster, trials: int, value: bytes) -> list[float]:
    times: list[float] = []
    for trial in range(trials):
        await wait_settled(node)
        leader = await wait_leader(node)
        client = StoreClient(
            node,
            f"failover-{trial}-{random.getrandbits(32)}",
            [n for n in NODES if n != leader],
            ask_timeout_seconds=0.25,
            backoff_seconds=0.01,
            backoff_max_seconds=0.02,
            give_up_seconds=30.0,
        )
        cluster.kill(leader)
        killed = time.perf_counter()
        result = await client.create("failover", key_for(0, trial, 0), value)
        assert result.status in ("ok", "exists"), result
        times.append(time.perf_counter() - killed)
        cluster.start(leader)
    return times


async def flotta_benchmarks(options: argparse.Namespace, directory: Path) -> dict[str, Any]:
    value = os.urandom(VALUE_BYTES)
    results: dict[str, Any] = {}
    for durability in options.durabilities:
        client_address = f"tcp:127.0.0.1:{free_port()}"
        cluster = Cluster(directory / durability, durability, client_address)
        transport = SocketTransport("bench", client_address, dict(cluster.addresses))
        node = Node(real_host("bench", directory / f"bench-{durability}", transport))
        cluster.start_all()
        try:
            async with node.running():
                leader = await wait_leader(node)
                await run_clients(node, leader, 8, 1.0, value)  # warm up
                row: dict[str, Any] = {}
                row["1 client"] = await run_clients(node, leader, 1, options.seconds, value)
                row["64 clients"] = await run_clients(node, leader, 64, options.seconds, value)
                row["64 clients, batched"] = await run_batched(node, leader, 64, options.seconds, value)
                if durability == "fsync" and options.trials:
                    row["failover"] = await failover(node, cluster, options.trials, value)
                results[durability] = row
        finally:
            cluster.stop_all()
    return results


# --- PySyncObj --------------------------------------------------------------------------------

PYSYNCOBJ_NODE = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from pysyncobj import SyncObj, SyncObjConf
    from pysyncobj.batteries import ReplDict

    self_address, partners, journal, concurrency, seconds, done_file, out_file = sys.argv[1:8]
    partners = partners.split(",")
    concurrency, seconds = int(concurrency), float(seconds)
    conf = SyncObjConf(journalFile=journal or None, dynamicMembershipChange=False)
    data = ReplDict()
    node = SyncObj(self_address, partners, consumers=[data], conf=conf)
    value = os.urandom(%(value_bytes)d)
    while not os.path.exists(done_file):
        if node._isLeader() and node.isReady():
            break
        time.sleep(0.05)
    if os.path.exists(done_file):
        sys.exit(0)
    # warm up, then measure
    slots = threading.Semaphore(concurrency)
    latencies, counts = [], [0]
    lock = threading.Lock()

    def run(duration):
        stop = time.perf_counter() + duration
        number = 0
        while time.perf_counter() < stop:
            slots.acquire()
            number += 1
            started = time.perf_counter()

            def done(result, error, started=started):
                with lock:
                    if error == 0:
                        counts[0] += 1
                        latencies.append(time.perf_counter() - started)
                slots.release()

            data.set(("%%05d-%%010d" %% (0, number))[:%(key_bytes)d], value, callback=done)
        for _ in range(concurrency):
            slots.acquire()
        for _ in range(concurrency):
            slots.release()

    run(1.0)
    counts[0] = 0
    latencies.clear()
    begin = time.perf_counter()
    run(seconds)
    elapsed = time.perf_counter() - begin
    latencies.sort()
    result = {
        "writes": counts[0],
        "rate": counts[0] / elapsed,
        "p50": latencies[len(latencies) // 2] if latencies else None,
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None,
    }
    with open(out_file, "w") as handle:
        json.dump(result, handle)
    open(done_file, "w").close()
    """
) % {"value_bytes": VALUE_BYTES, "key_bytes": KEY_BYTES}


def pysyncobj_run(directory: Path, journal: bool, concurrency: int, seconds: float) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "node.py"
    script.write_text(PYSYNCOBJ_NODE)
    addresses = [f"127.0.0.1:{free_port()}" for _ in NODES]
    done_file = directory / "done"
    out_file = directory / "result.json"
    processes = []
    for index, address in enumerate(addresses):
        partners = ",".join(a for a in addresses if a != address)
        journal_file = str(directory / f"journal-{index}") if journal else ""
        processes.append(
            subprocess.Popen(
                [sys.executable, str(script), address, partners, journal_file, str(concurrency),
                 str(seconds), str(done_file), str(out_file)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        deadline = time.time() + seconds + 60
        while not done_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        if not out_file.exists():
            return {"error": "no result"}
        result: dict[str, Any] = json.loads(out_file.read_text())
        return result
    finally:
        for process in processes:
            process.kill()
            process.wait()


def pysyncobj_benchmarks(options: argparse.Namespace, directory: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, journal in (("memory", False), ("journal", True)):
        row = {}
        for concurrency in (1, 64):
            row[f"{concurrency} client{'s' if concurrency > 1 else ''}"] = pysyncobj_run(
                directory / f"pso-{name}-{concurrency}", journal, concurrency, options.seconds
            )
        results[name] = row
    return results


# --- printing -----------------------------------------------------------------------------------


def format_row(label: str, figures: dict[str, Any]) -> str:
    if "error" in figures:
        return f"  {label:<28}{figures['error']}"
    p50 = figures.get("p50")
    p99 = figures.get("p99")
    latency = f"p50 {p50 * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms" if p50 is not None else ""
    return f"  {label:<28}{figures['rate']:>9,.0f} writes/s   {latency}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--trials", type=int, default=20, help="failover trials")
    parser.add_argument("--quick", action="store_true", help="2 s measurements, 5 failover trials")
    parser.add_argument("--no-pysyncobj", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    options = parser.parse_args()
    if options.quick:
        options.seconds, options.trials = 2.0, 5
    options.durabilities = ("memory", "fsync")
    print(f"3 nodes on loopback, {os.cpu_count()} CPUs; keys {KEY_BYTES} B, values {VALUE_BYTES} B; "
          f"{options.seconds:g} s per measurement", flush=True)
    with tempfile.TemporaryDirectory(prefix="flotta-raft-bench-") as temporary:
        directory = Path(temporary)
        flotta = trio.run(flotta_benchmarks, options, directory)
        pysyncobj = {} if options.no_pysyncobj else pysyncobj_benchmarks(options, directory)
    for durability, label in (("memory", "in-memory log"), ("fsync", "fsync'd log, group commit")):
        print(f"flotta raft, {label}:")
        for name, figures in flotta[durability].items():
            if name != "failover":
                print(format_row(name, figures))
    failover_times = flotta.get("fsync", {}).get("failover", [])
    if failover_times:
        print(
            f"flotta leader failover (SIGKILL -> write accepted by a new leader), {len(failover_times)} trials, "
            f"heartbeat 100 ms, election timeout [1, 2) s:\n"
            f"  p50 {statistics.median(failover_times):.3f} s  p99 {percentile(failover_times, 0.99):.3f} s  "
            f"min {min(failover_times):.3f} s  max {max(failover_times):.3f} s"
        )
    for name, label in (("memory", "in memory"), ("journal", "journal file (mmap, never fsynced)")):
        if name in pysyncobj:
            print(f"PySyncObj, {label}, load inside the leader process:")
            for row_name, figures in pysyncobj[name].items():
                print(format_row(row_name, figures))
    if options.json:
        print(json.dumps({"flotta": flotta, "pysyncobj": pysyncobj}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
