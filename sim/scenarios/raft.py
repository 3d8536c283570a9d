"""`raft`: a replicated store on Raft, driven through faults, checked at every step.

    python -m sim raft --seed 7 --nodes 5 --duration 120      (flotta sim raft ...)
    python -m sim raft --seeds 1-2000                         (a sweep, one process per CPU)

The world: `--nodes` Raft nodes n1..nN, each running a `Store` (consensus/store.py) on its
simulated disk, plus a client node `c1` (never faulted) running `--clients` clients and
the operator. Clients do reads, writes, compare-and-sets, creates and deletes on a few
keys (`--keys`), each one request at a time, retrying with the same request id until they
get an answer; every operation goes into one history.

Faults, all drawn from the seed (swarm testing: each seed samples its own mix):
- the world's generated plan over the Raft nodes (sim/fault_generation.py): partitions,
  one-way cuts, isolation, clogs, loss, duplication, crashes and restarts (losing unsynced
  writes, maybe tearing the last), bit flips in durable files, clock drift and steps;
- leader-aimed faults (sim/raftnemesis.py): isolate the leader, leader in a minority, a
  bridge, one-way cuts from or to the leader;
- the operator: membership changes (a voter replaced: removed, then a fresh node added as
  a learner and promoted), leadership transfers, and the replacement of nodes that refuse
  to start on a damaged log.

At every step: Raft's safety properties (consensus/checker.py via sim/raftcheck.py), state
agreement and at-most-once execution. At the end: linearizability of the whole history
(sim/linearizability.py) and, after the faults stop at T_h (and the last operator change),
liveness within bounds counted in maximum election timeouts ET_max = 2·election_tick·tick:
a leader that stays leader elected by T_h + 3·ET_max, every client operation answered by
T_h + 5·ET_max (or 5·ET_max after its call), and all members converged (same applied
index, same state digest) at the end (≥ T_h + 10·ET_max when the run is long enough).
"""

from __future__ import annotations

import argparse
import os
import random
from typing import Any

import trio

from consensus import storemutants
from consensus.client import History, StoreClient
from consensus.peer import PEER_NAME, PeerSettings
from consensus.store import Store
from runtime.actor import Actor
from runtime.host import derive_seed
from runtime.node import Node
from runtime.supervision import NEVER_RESTART
from sim.fault_generation import generate_plan, parse_profiles
from sim.faults import Corrupt, FaultPlan, HealAll, PlanEntry, parse_plan
from sim.linearizability import check_history
from sim.raftcheck import RaftObserver
from sim.raftnemesis import LeaderFaults, Operator, VoteCrashes, current_leader
from sim.scenario import Scenario
from sim.world import Boot, Violation, World

CLIENT_NODE = "c1"
LEADER_BOUND = 3
OPERATIONS_BOUND = 5
CONVERGENCE_BOUND = 10
NEMESES = ("leader", "membership", "transfer", "vote-crash")


class RaftRun:
    """Everything one run keeps outside the actors (it survives their crashes)."""

    def __init__(self, world: World, options: argparse.Namespace, nodes: list[str]) -> None:
        self.world = world
        self.options = options
        self.founders = list(nodes)
        self.client_node = CLIENT_NODE
        self.nodes = list(nodes)
        self.retired: dict[str, str] = {}
        self.observer = RaftObserver(world)
        self.history = History(trio.current_time)
        self.notes: list[str] = []
        self.transfers = 0
        self.replacements = 0
        self.next_node = len(nodes) + 1
        self.tick_seconds: float = options.tick
        self.election_tick: int = options.election_tick
        self.election_timeout_max_seconds = 2 * options.election_tick * options.tick
        self.heal_seconds: float | None = 0.0
        self.faults_stop_seconds = 0.0
        self.clients_stop_seconds = 0.0
        self.last_disruption_seconds = 0.0
        # Swarm-sampled per seed: one entry per AppendEntries in some runs, so a leader's
        # log reaches followers piece by piece (acks of old-term entries without its own).
        params = random.Random(derive_seed(world.seed, "raft-params"))
        self.message_bytes_max = 1 if params.random() < 0.3 else 64 * 1024

    # --- membership bookkeeping -------------------------------------------------------------------

    def peer_settings(self, node_id: str) -> PeerSettings:
        options = self.options
        return PeerSettings(
            node_id,
            voters=tuple(self.founders) if node_id in self.founders else (),
            tick_seconds=options.tick,
            election_tick=options.election_tick,
            heartbeat_tick=options.heartbeat_tick,
            snapshot_entries=options.snapshot_entries,
            retain_entries=options.retain_entries,
            read_timeout_seconds=4 * self.election_timeout_max_seconds,
            max_size_per_message_bytes=self.message_bytes_max,
            snapshot_chunk_bytes=4096,
            promotion_lag_entries_max=64,
        )

    def boot_for(self, node_id: str) -> Boot:
        async def boot(node: Node) -> None:
            if node_id in self.retired:
                return  # a decommissioned machine: powered on, runs nothing
            settings = self.peer_settings(node_id)
            observer = self.observer
            await node.spawn(
                lambda: Store(settings, observer, on_executed=observer.executed_write),
                PEER_NAME,
                restart=NEVER_RESTART,
            )

        return boot

    def active_members(self) -> list[str]:
        """Nodes not retired: what clients and the operator talk to."""
        return [node for node in self.nodes if node not in self.retired]

    def live_members(self) -> list[str]:
        return [node for node in self.active_members() if self.world.sim_node(node).up]

    def refused_nodes(self) -> list[str]:
        return sorted(self.observer.refused)

    def retire(self, node_id: str, reason: str) -> None:
        self.retired[node_id] = reason
        self.world.emit("raft-retire", f"{node_id} {reason}")
        if self.world.sim_node(node_id).up:
            self.world.crash(node_id)
        self.mark_disruption(self.world.now())

    def add_node(self) -> str:
        node_id = f"n{self.next_node}"
        self.next_node += 1
        self.nodes.append(node_id)
        self.replacements += 1
        self.world.add_node(node_id, self.boot_for(node_id))
        self.world.emit("raft-add-node", node_id)
        return node_id

    def mark_disruption(self, at_seconds: float) -> None:
        self.last_disruption_seconds = max(self.last_disruption_seconds, at_seconds)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.world.emit("raft-note", text.replace(" ", "_"))


class Worker(Actor):
    """One client session doing random operations on a few keys."""

    def __init__(self, run: RaftRun, index: int) -> None:
        self.run = run
        self.index = index

    async def started(self) -> None:
        self.nursery.start_soon(self._loop)

    async def receive(self, message: Any) -> Any:
        raise TypeError(f"workers take no messages, got {type(message).__name__}")

    async def _loop(self) -> None:
        run = self.run
        options = run.options
        rng = self.host.derived_random(f"worker-{self.index}")
        client = StoreClient(
            self.node,
            f"client{self.index}",
            run.active_members,
            ask_timeout_seconds=options.ask_timeout,
            backoff_seconds=0.02,
            backoff_max_seconds=run.election_timeout_max_seconds / 2,
            give_up_seconds=None,
            history=run.history,
        )
        keys = [f"k{number}" for number in range(options.keys)]
        versions: dict[str, int] = {}
        clock = self.host.clock
        writes = 0
        while trio.current_time() < run.clients_stop_seconds:
            await clock.sleep(rng.uniform(0.0, options.think))
            if trio.current_time() >= run.clients_stop_seconds:
                break
            key = keys[rng.randrange(len(keys))]
            choice = rng.random()
            value = f"{client.client_id}:{writes}".encode()
            if choice < 0.4:
                if rng.random() < 0.3:
                    members = run.active_members()
                    client.leader = members[rng.randrange(len(members))]
                found = await client.get("kv", key)
                versions[key] = found.version if found is not None else 0
                continue
            writes += 1
            if choice < 0.55:
                result = await client.update("kv", key, value)
            elif choice < 0.75:
                result = await client.update("kv", key, value, expected_version=versions.get(key, 0) or 1)
            elif choice < 0.9:
                result = await client.create("kv", key, value)
            else:
                expected = versions.get(key, 0) if rng.random() < 0.5 else 0
                result = await client.delete("kv", key, expected_version=expected)
            if result.status == "ok":
                versions[key] = result.version if choice < 0.9 else 0


def _client_boot(run: RaftRun, options: argparse.Namespace, nemeses: tuple[str, ...]) -> Boot:
    async def boot(node: Node) -> None:
        for index in range(options.clients):
            await node.spawn(lambda index=index: Worker(run, index), f"worker-{index}")
        # The operator also replaces nodes that refuse a damaged log, so it always runs.
        rng = random.Random(derive_seed(run.world.seed, "raft-operator"))
        await node.spawn(
            lambda: Operator(run, rng, "membership" in nemeses, "transfer" in nemeses),
            "operator",
        )

    return boot


class RaftScenario(Scenario):
    name = "raft"
    help = "a replicated store on Raft under partitions, crashes, disk faults and membership changes"
    duration_default_seconds = 120.0

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--clients", type=int, default=4, help="client sessions (default 4)")
        parser.add_argument("--keys", type=int, default=3, help="keys the clients share (default 3)")
        parser.add_argument(
            "--think", type=float, default=0.2, help="a client waits uniform(0, THINK) s between operations"
        )
        parser.add_argument("--ask-timeout", type=float, default=0.5, help="client request timeout (s)")
        parser.add_argument("--tick", type=float, default=0.05, help="Raft tick in seconds (default 0.05)")
        parser.add_argument("--heartbeat-tick", type=int, default=2, help="heartbeat interval in ticks (default 2)")
        parser.add_argument("--election-tick", type=int, default=10, help="election timeout in ticks (default 10)")
        parser.add_argument("--snapshot-entries", type=int, default=64)
        parser.add_argument("--retain-entries", type=int, default=16)
        parser.add_argument(
            "--nemesis",
            default="auto",
            help="leader,membership,transfer,vote-crash, or none; auto: all unless --faults none",
        )
        parser.add_argument(
            "--mutant", default=None, help="mutants to switch on (e.g. M1,M11); default: $FLOTTA_RAFT_MUTANT"
        )

    def _nemeses(self, options: argparse.Namespace) -> tuple[str, ...]:
        text = options.nemesis.strip()
        if text == "auto":
            return NEMESES if parse_profiles(options.faults) else ()
        if text == "none":
            return ()
        chosen = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = [part for part in chosen if part not in NEMESES]
        if unknown:
            raise ValueError(f"--nemesis: unknown {', '.join(unknown)} (known: {', '.join(NEMESES)})")
        return chosen

    def _check_options(self, options: argparse.Namespace) -> None:
        if options.clients < 0 or options.keys < 1:
            raise ValueError("--clients must be >= 0 and --keys >= 1")
        if not options.think >= 0 or not options.ask_timeout > 0 or not options.tick > 0:
            raise ValueError("--think must be >= 0, --ask-timeout and --tick > 0")
        if options.heartbeat_tick < 1 or options.election_tick <= options.heartbeat_tick:
            raise ValueError("--heartbeat-tick must be >= 1 and --election-tick above it")
        if options.snapshot_entries < 1 or options.retain_entries < 0:
            raise ValueError("--snapshot-entries must be >= 1 and --retain-entries >= 0")

    def setup(self, world: World, options: argparse.Namespace) -> None:
        self._check_options(options)
        # Mutants are process-wide switches: remember the previous set, `report` restores it.
        world.data["raft-previous-mutants"] = storemutants.enabled()
        if options.mutant is not None:
            storemutants.enable(*[m for m in options.mutant.split(",") if m.strip()])
        else:
            storemutants.configure_from_environment(os.environ)
        nemeses = self._nemeses(options)
        nodes = [f"n{index}" for index in range(1, options.nodes + 1)]
        run = RaftRun(world, options, nodes)
        world.data["raft"] = run
        world.data["raft-nemeses"] = nemeses
        for node_id in nodes:
            world.add_node(node_id, run.boot_for(node_id))
        world.add_node(CLIENT_NODE, _client_boot(run, options, nemeses))
        world.add_checker(self._check_step)
        world.at_end(self._check_end)

    def _liveness_window_seconds(self, run: RaftRun, duration: float) -> float:
        return max(0.2 * duration, (CONVERGENCE_BOUND + 2) * run.election_timeout_max_seconds)

    def fault_plan(self, world: World, options: argparse.Namespace) -> FaultPlan:
        run: RaftRun = world.data["raft"]
        duration = options.duration
        settle = max(2 * run.election_timeout_max_seconds, 1.0)
        run.clients_stop_seconds = max(0.0, duration - settle)
        if options.plan_text is not None:
            plan = parse_plan(options.plan_text)
        else:
            window = self._liveness_window_seconds(run, duration)
            fraction = max(0.0, 1.0 - window / duration)
            plan = generate_plan(
                derive_seed(options.seed, self.name),
                run.founders,
                duration,
                parse_profiles(options.faults),
                quiet_after_fraction=fraction,
            )
            plan = self._limit_damaged_disks(plan, run.founders)
            plan = self._nothing_after_heal(plan)
        heals = [entry.time_seconds for entry in plan.entries if isinstance(entry.fault, HealAll)]
        if not plan.entries:
            run.heal_seconds = 0.0
        elif heals and heals[-1] >= plan.entries[-1].time_seconds:
            run.heal_seconds = heals[-1]
        else:
            run.heal_seconds = None  # faults left standing: no liveness claims
        run.faults_stop_seconds = run.heal_seconds if run.heal_seconds is not None else duration
        nemeses: tuple[str, ...] = world.data["raft-nemeses"]
        rng = random.Random(derive_seed(options.seed, "raft-leader-faults"))
        if "leader" in nemeses and rng.random() < 0.8:
            faults = LeaderFaults(run, rng, mean_gap_seconds=rng.uniform(2.0, 15.0))
            world.data["raft-leader-faults"] = faults
            faults.start(rng.uniform(1.0, 10.0))
        if "vote-crash" in nemeses and rng.random() < 0.5:
            crashes = VoteCrashes(run, rng, probability=rng.choice([0.05, 0.2, 0.5]))
            world.data["raft-vote-crashes"] = crashes
            run.observer.on_vote = crashes.on_vote
        return plan

    @staticmethod
    def _nothing_after_heal(plan: FaultPlan) -> FaultPlan:
        """Drop what a generated plan schedules after its final heal-all.

        The generator's swizzle-clog can place clogs past the quiet point (only its
        unclogs are capped there), which would leave faults standing in the phase where
        liveness is judged.
        """
        heals = [entry.time_seconds for entry in plan.entries if isinstance(entry.fault, HealAll)]
        if not heals:
            return plan
        return FaultPlan(tuple(entry for entry in plan.entries if entry.time_seconds <= heals[-1]))

    @staticmethod
    def _limit_damaged_disks(plan: FaultPlan, nodes: list[str]) -> FaultPlan:
        """Bit rot on at most a minority of the nodes: Raft promises nothing beyond that.

        A node whose log is damaged refuses to start, so it counts against the same
        budget as a crashed one; damage on a majority is quorum loss, which only an
        operator's forced recovery can undo. The first minority of nodes the plan damages
        keep their faults; damage meant for the others goes to one of them instead.
        """
        budget = (len(nodes) - 1) // 2
        allowed: list[str] = []
        entries = []
        for entry in plan.entries:
            fault = entry.fault
            if isinstance(fault, Corrupt):
                if fault.node not in allowed and len(allowed) < budget:
                    allowed.append(fault.node)
                if fault.node not in allowed:
                    if not allowed:
                        continue
                    target = allowed[sum(map(ord, fault.node)) % len(allowed)]
                    entry = PlanEntry(entry.time_seconds, Corrupt(target, fault.path_prefix))
            entries.append(entry)
        return FaultPlan(tuple(entries))

    # --- checks --------------------------------------------------------------------------------

    def _check_step(self, world: World) -> None:
        run: RaftRun = world.data["raft"]
        if run.observer.violation:
            raise Violation(run.observer.violation)

    def _check_end(self, world: World) -> None:
        run: RaftRun = world.data["raft"]
        self._check_step(world)
        verdict = check_history(run.history.operations)
        world.data["raft-linearizability"] = verdict
        if not verdict.ok and not verdict.unknown:
            raise Violation(f"Linearizability: {verdict.detail}")
        if run.heal_seconds is None:
            world.data["raft-liveness"] = "skipped (faults left standing)"
            return
        self._check_liveness(world, run)

    def _check_liveness(self, world: World, run: RaftRun) -> None:
        et = run.election_timeout_max_seconds
        end = world.now()
        quiet = max(run.heal_seconds or 0.0, run.last_disruption_seconds)
        world.data["raft-quiet-seconds"] = quiet
        if end - quiet < (LEADER_BOUND + 1) * et:
            world.data["raft-liveness"] = f"skipped (faults stopped at t={quiet:g}, too late)"
            return
        members = run.active_members()
        leader = current_leader(world, members)
        last = run.observer.last_election()
        if not leader or last is None:
            raise Violation(f"Liveness: no leader at the end (faults stopped at t={quiet:g})")
        term, elected, at = last
        if elected != leader:
            raise Violation(
                f"Liveness: the last leader elected ({elected}, term {term}) is not the leader at the end ({leader})"
            )
        if at > quiet + LEADER_BOUND * et:
            raise Violation(
                f"Liveness: the stable leader {leader} (term {term}) was elected at t={at:.3f}, "
                f"later than {LEADER_BOUND}·ET_max = {LEADER_BOUND * et:g}s after the faults stopped at t={quiet:g}"
            )
        for operation in run.history.operations:
            limit = max(quiet, operation.invoke_seconds) + OPERATIONS_BOUND * et
            finished = operation.return_seconds
            if limit <= end and (finished is None or finished > limit):
                raise Violation(
                    f"Liveness: {operation.client} {operation.op} {operation.key} called at "
                    f"t={operation.invoke_seconds:.3f} "
                    f"{'never returned' if finished is None else f'returned at t={finished:.3f}'}, "
                    f"beyond {OPERATIONS_BOUND}·ET_max after t={max(quiet, operation.invoke_seconds):.3f}"
                )
        self._check_converged(world, run, leader)

    def _check_converged(self, world: World, run: RaftRun, leader: str) -> None:
        node = world.node(leader)
        assert node is not None
        leader_peer = node.actor(PEER_NAME)
        assert isinstance(leader_peer, Store) and leader_peer.raft is not None
        configuration = leader_peer.raft.configuration
        commit = leader_peer.raft.commit_index
        digest = leader_peer.state.digest()
        for member in configuration.members():
            member_node = world.node(member) if member in run.nodes else None
            peer = member_node.actor(PEER_NAME) if member_node is not None else None
            if not isinstance(peer, Store) or peer.raft is None:
                raise Violation(
                    f"Convergence: member {member} of the final configuration is not running "
                    f"({run.retired.get(member) or run.observer.refused.get(member) or 'down'})"
                )
            if peer.applied != commit or peer.raft.commit_index != commit:
                raise Violation(
                    f"Convergence: {member} applied {peer.applied} (commit {peer.raft.commit_index}), "
                    f"the leader {leader} committed {commit}"
                )
            if peer.state.digest() != digest:
                raise Violation(f"Convergence: {member}'s state differs from the leader's at index {commit}")
        world.data["raft-converged"] = (commit, digest)
        world.data["raft-liveness"] = f"ok (after t={world.data['raft-quiet-seconds']:g})"

    # --- the summary -----------------------------------------------------------------------------

    def report(self, world: World, options: argparse.Namespace) -> dict[str, Any]:
        run: RaftRun = world.data["raft"]
        operations = run.history.operations
        done = [operation for operation in operations if operation.done]
        verdict = world.data.get("raft-linearizability")
        converged = world.data.get("raft-converged")
        faults = world.data.get("raft-leader-faults")
        vote_crashes = world.data.get("raft-vote-crashes")
        coverage = run.observer.merged_coverage()
        return {
            "operations": len(operations),
            "answered": len(done),
            "reads": sum(1 for operation in operations if operation.op == "get"),
            "writes_ok": sum(
                1 for operation in done if operation.op != "get" and operation.output.status == "ok"
            ),
            "attempts": sum(operation.attempts for operation in operations),
            "terms": len(run.observer.leaders),
            "leader_faults": faults.applied if faults is not None else 0,
            "vote_crashes": vote_crashes.applied if vote_crashes is not None else 0,
            "replacements": run.replacements,
            "transfers": run.transfers,
            "refused": len(run.observer.refused),
            "executions": run.observer.executions,
            "linearizable": (
                "unchecked" if verdict is None else "yes" if verdict.ok else "unknown" if verdict.unknown else "NO"
            ),
            "checked_operations": verdict.operations if verdict is not None else 0,
            "converged_index": converged[0] if converged else 0,
            "liveness": world.data.get("raft-liveness", "unchecked"),
            "state_digest": converged[1][:16] if converged else "",
            "mutants": self._restore_mutants(world),
            "coverage": dict(sorted(coverage.items())),
        }

    @staticmethod
    def _restore_mutants(world: World) -> str:
        active = ",".join(sorted(storemutants.enabled()))
        storemutants.enable(*world.data.get("raft-previous-mutants", ()))
        return active

    def format_report(self, report: dict[str, Any]) -> list[str]:
        coverage = ", ".join(f"{name} {count}" for name, count in report["coverage"].items())
        return [
            f"clients   operations {report['operations']}  answered {report['answered']}  "
            f"reads {report['reads']}  writes ok {report['writes_ok']}  attempts {report['attempts']}",
            f"raft      terms {report['terms']}  leader faults {report['leader_faults']}  "
            f"vote crashes {report['vote_crashes']}  "
            f"replacements {report['replacements']}  transfers {report['transfers']}  "
            f"refused {report['refused']}  executions {report['executions']}"
            + (f"  mutants {report['mutants']}" if report["mutants"] else ""),
            f"checks    linearizable {report['linearizable']} ({report['checked_operations']} ops)  "
            f"converged at {report['converged_index']} {report['state_digest']}  "
            f"liveness {report['liveness']}",
            f"coverage  {coverage}",
        ]


scenario = RaftScenario()
