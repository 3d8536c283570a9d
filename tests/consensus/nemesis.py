"""Seeded random runs of a whole cluster under faults, with every safety property checked.

`run(seed)` samples the run's parameters from the seed (swarm testing: each run gets its
own mix of loss, duplication, reordering, crashes, partitions and client load), then plays
`steps` random events on a `Cluster` and returns what happened. The same seed always plays
the same run, so a failing seed is a regression test.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from consensus.checker import SafetyViolation
from consensus.messages import ConfChange, ConfChangeKind, Role, VoteRequest, VoteResponse
from consensus.raft import RaftError, RaftInvariantError
from tests.consensus.cluster import Cluster


@attrs.frozen
class Params:
    nodes: int
    spares: int
    pre_vote: bool
    check_quorum: bool
    election_tick: int
    max_size_per_message_bytes: int
    max_inflight_messages: int
    snapshot_chunk_bytes: int
    drop: float
    duplicate: float
    reorder: float
    process_now: float
    weights: dict[str, float]


def sample(rng: random.Random) -> Params:
    def some(high: float) -> float:
        return rng.choice([0.0, rng.uniform(0.0, high)])

    weights = {
        "deliver": 60.0,
        "tick": rng.uniform(3.0, 12.0),
        "process": 6.0,
        "crash": some(1.5),
        "restart": 2.0,
        "bounce": some(1.0),
        "partition": some(1.5),
        "heal": 1.5,
        "propose": rng.uniform(1.0, 8.0),
        "read": some(3.0),
        "membership": some(1.5),
        "compact": rng.uniform(0.3, 2.0),
        "transfer": some(0.5),
    }
    return Params(
        nodes=rng.choice([3, 3, 5]),
        spares=rng.choice([0, 1, 2]),
        pre_vote=rng.random() < 0.7,
        check_quorum=rng.random() < 0.7,
        election_tick=rng.choice([3, 5, 10]),
        max_size_per_message_bytes=rng.choice([1, 60, 1 << 20]),
        max_inflight_messages=rng.choice([1, 4, 256]),
        snapshot_chunk_bytes=rng.choice([16, 64, 1 << 20]),
        drop=some(0.2),
        duplicate=some(0.15),
        reorder=some(0.5),
        process_now=rng.choice([1.0, rng.uniform(0.5, 1.0)]),
        weights=weights,
    )


@attrs.define
class Outcome:
    seed: int
    params: Params
    steps: int = 0
    violation: AssertionError | None = None
    cluster: Cluster | None = None


PROFILES: dict[str, dict[str, object]] = {
    "swarm": {},
    # Crash-restart heavy, reordered delivery, simultaneous candidacies (short timeouts).
    "crashy": {
        "nodes": 3,
        "spares": 0,
        "election_tick": 3,
        "pre_vote": False,
        "reorder": 0.6,
        "weights": {"crash": 1.0, "restart": 4.0, "bounce": 3.0, "tick": 8.0, "partition": 0.0},
    },
}


def sample_profile(rng: random.Random, profile: str) -> Params:
    params = sample(rng)
    overrides = dict(PROFILES[profile])
    weights = dict(params.weights)
    weights.update(overrides.pop("weights", {}))  # type: ignore[arg-type]
    return attrs.evolve(params, weights=weights, **overrides)  # type: ignore[arg-type]


def run(
    seed: int,
    steps: int = 1500,
    params: Params | None = None,
    wire: bool = False,
    profile: str = "swarm",
    cluster_class: type[Cluster] = Cluster,
) -> Outcome:
    rng = random.Random(seed)
    params = params if params is not None else sample_profile(rng, profile)
    ids = [f"n{i}" for i in range(1, params.nodes + params.spares + 1)]
    founders = ids[: params.nodes]
    cluster = cluster_class(
        ids,
        voters=founders,
        seed=seed,
        wire=wire,
        pre_vote=params.pre_vote,
        check_quorum=params.check_quorum,
        election_tick=params.election_tick,
        max_size_per_message_bytes=params.max_size_per_message_bytes,
        max_inflight_messages=params.max_inflight_messages,
        snapshot_chunk_bytes=params.snapshot_chunk_bytes,
        promotion_lag_entries_max=8,
    )
    outcome = Outcome(seed, params, cluster=cluster)
    actions = list(params.weights)
    weights = [params.weights[a] for a in actions]
    dirty: set[str] = set()
    counter = 0
    try:
        for step in range(steps):
            outcome.steps = step + 1
            action = rng.choices(actions, weights)[0]
            alive = [n for n, node in cluster.nodes.items() if node.alive]
            if action == "deliver":
                if not cluster.in_flight:
                    continue
                position = 0
                if rng.random() < params.reorder:
                    position = rng.randrange(len(cluster.in_flight))
                if rng.random() < params.drop:
                    cluster.drop(position)
                    continue
                if rng.random() < params.duplicate:
                    cluster.duplicate(position)
                message = cluster.in_flight[position]
                process = rng.random() < params.process_now
                cluster.deliver(position, process=process)
                if not process:
                    dirty.add(message.to)
            elif action == "tick":
                for node_id in alive:
                    cluster.tick(node_id)
                    if rng.random() < params.process_now:
                        cluster.process(node_id)
                    else:
                        dirty.add(node_id)
            elif action == "process":
                for node_id in sorted(dirty):
                    cluster.process(node_id)
                dirty.clear()
            elif action == "crash":
                if alive:
                    victim = rng.choice(alive)
                    cluster.crash(victim)
                    dirty.discard(victim)
            elif action == "bounce":
                # A process restart: everything not persisted is gone at once.
                if alive:
                    victim = rng.choice(alive)
                    cluster.crash(victim)
                    dirty.discard(victim)
                    cluster.restart(victim)
            elif action == "restart":
                dead = [n for n, node in cluster.nodes.items() if not node.alive]
                if dead:
                    cluster.restart(rng.choice(dead))
            elif action == "partition":
                shuffled = list(cluster.nodes)
                rng.shuffle(shuffled)
                cut = rng.randint(1, len(shuffled) // 2)
                cluster.heal()
                cluster.partition(shuffled[:cut], shuffled[cut:])
            elif action == "heal":
                cluster.heal()
            else:
                leaders = [n for n in alive if cluster[n].role is Role.LEADER]
                counter += 1
                if action == "propose" and leaders:
                    leader = rng.choice(leaders)
                    batch = [f"{seed}:{counter}:{k}".encode() for k in range(rng.randint(1, 3))]
                    _try(cluster.propose, leader, batch)
                    dirty.add(leader)
                elif action == "read" and alive:
                    node_id = rng.choice(alive)
                    _try(cluster.read, node_id, f"read:{counter}".encode())
                    dirty.add(node_id)
                elif action == "membership" and leaders:
                    leader = rng.choice(leaders)
                    _try(_change_membership, cluster, leader, rng)
                    dirty.add(leader)
                elif action == "compact" and alive:
                    node_id = rng.choice(alive)
                    cluster.compact(node_id, retain_entries=rng.choice([0, 0, 2]))
                elif action == "transfer" and leaders:
                    leader = rng.choice(leaders)
                    voters = cluster[leader].configuration.voters
                    _try(cluster[leader].transfer_leader, rng.choice(voters))
                    dirty.add(leader)
    except (SafetyViolation, RaftInvariantError) as violation:
        outcome.violation = violation
    return outcome


def _try(action: Callable[..., object], *arguments: object) -> None:
    """Client requests may be refused (not leader, change pending, ...): that is fine."""
    try:
        action(*arguments)
    except (RaftError, ValueError):
        pass


def _change_membership(cluster: Cluster, leader: str, rng: random.Random) -> None:
    configuration = cluster[leader].configuration
    outsiders = [n for n in cluster.nodes if not configuration.contains(n)]
    choices = []
    if outsiders:
        choices.append(ConfChange(ConfChangeKind.ADD_LEARNER, rng.choice(outsiders)))
    if configuration.learners:
        choices.append(ConfChange(ConfChangeKind.PROMOTE, rng.choice(configuration.learners)))
    if len(configuration.voters) > 2:
        choices.append(ConfChange(ConfChangeKind.REMOVE, rng.choice(configuration.voters)))
    if configuration.learners:
        choices.append(ConfChange(ConfChangeKind.REMOVE, rng.choice(configuration.learners)))
    if choices:
        cluster[leader].propose_conf_change(rng.choice(choices))
        cluster.observe(leader)


EPISODES = [
    "elect",
    "elect quietly",
    "write",
    "crash",
    "restart",
    "crash and restart",
    "read",
    "membership",
    "compact",
    "heal",
    "old term race",
    "stale leader",
]
EPISODE_WEIGHTS = [5.0, 3.0, 8.0, 2.0, 3.0, 2.0, 2.0, 1.0, 2.0, 2.0, 1.0, 1.0]
VOTE_MESSAGES = (VoteRequest, VoteResponse)

EPISODE_PROFILES: dict[str, dict[str, float]] = {
    "all": {},
    # Leaders that come and go with their entries half replicated: the races of Figure 8.
    "terms": {
        "elect": 3.0,
        "elect quietly": 3.0,
        "write": 6.0,
        "crash and restart": 1.0,
        "heal": 0.5,
        "old term race": 3.0,
        "stale leader": 2.0,
    },
    # Membership changes racing leader changes and partitions (the RethinkDB lesson).
    "membership": {
        "elect": 2.0,
        "elect quietly": 4.0,
        "write": 2.0,
        "membership": 6.0,
        "crash and restart": 1.0,
        "heal": 0.5,
    },
}


class Episodes:
    """A coarser nemesis: each episode acts on a random group of nodes (see run_episodes)."""

    def __init__(self, cluster: Cluster, rng: random.Random, params: Params, flush: float) -> None:
        self.cluster = cluster
        self.rng = rng
        self.params = params
        self.flush = flush
        self.counter = 0

    def alive(self) -> list[str]:
        return [n for n, node in self.cluster.nodes.items() if node.alive]

    def leaders(self) -> list[str]:
        return [n for n in self.alive() if self.cluster[n].role is Role.LEADER]

    def group_with(self, member: str, others: int | None = None) -> list[str]:
        rest = [n for n in self.cluster.nodes if n != member]
        self.rng.shuffle(rest)
        count = self.rng.randint(0, len(rest)) if others is None else min(others, len(rest))
        return [member, *rest[:count]]

    def settle(self, budget: int) -> None:
        """Deliver in-flight messages (some dropped or duplicated), processing as we go."""
        cluster, rng = self.cluster, self.rng
        cluster.process_all()
        while cluster.in_flight and budget > 0:
            budget -= 1
            position = rng.randrange(len(cluster.in_flight)) if rng.random() < 0.3 else 0
            if rng.random() < 0.05:
                cluster.drop(position)
                continue
            if rng.random() < 0.05:
                cluster.duplicate(position)
            cluster.deliver(position, process=rng.random() < 0.9)
            if rng.random() < 0.1:
                cluster.process_all()
        cluster.process_all()

    def elect(
        self,
        candidate: str,
        quiet: bool,
        group: list[str] | None = None,
        budget: int | None = None,
    ) -> None:
        """Campaign inside a group; quietly = votes only, the winner's first entries are lost."""
        cluster, rng = self.cluster, self.rng
        if cluster[candidate].role is Role.LEADER:
            # A leader cut off without CheckQuorum never steps down by itself.
            cluster.crash(candidate)
            cluster.restart(candidate)
        cluster.heal()
        cluster.partition(group if group is not None else self.group_with(candidate))
        for _ in range(rng.randint(1, 3)):
            if cluster[candidate].role is Role.LEADER:
                break
            cluster.campaign(candidate)
            if quiet:
                cluster.stabilize(only=lambda m: isinstance(m, VOTE_MESSAGES))
                cluster.in_flight.clear()
            else:
                self.settle(budget if budget is not None else rng.randint(2, 60))
        if not quiet and budget is None:
            for _ in range(rng.randint(0, 2 * self.params.election_tick)):
                cluster.tick_all()
                self.settle(rng.randint(0, 20))

    def write(self, leader: str, group: list[str] | None = None, budget: int | None = None) -> None:
        cluster, rng = self.cluster, self.rng
        cluster.heal()
        cluster.partition(group if group is not None else self.group_with(leader))
        self.counter += 1
        batch = [f"{self.counter}:{k}".encode() for k in range(rng.randint(1, 3))]
        _try(cluster.propose, leader, batch)
        self.settle(budget if budget is not None else rng.randint(1, 40))

    def old_term_race(self) -> None:
        """Leader A writes to few; B wins quietly; A returns and finishes the old write; B returns.

        The shape of Raft's Figure 8, with every choice (groups, budgets) left to the seed.
        """
        alive = self.alive()
        if len(alive) < 3:
            return
        rng = self.rng
        first, second = rng.sample(alive, 2)
        self.elect(first, quiet=False)
        if self.cluster[first].role is Role.LEADER:
            self.write(first, self.group_with(first, rng.randint(0, 1)))
        self.elect(second, quiet=True, group=self.group_without(second, first))
        # A short window: the old entry may reach a majority before the new NOOP does.
        self.elect(first, quiet=False, group=self.group_without(first, second), budget=rng.randint(2, 16))
        if rng.random() < 0.7:
            self.cluster.in_flight.clear()
        self.elect(second, quiet=rng.random() < 0.5, group=self.group_without(second, first))

    def group_without(self, member: str, excluded: str) -> list[str]:
        rest = [n for n in self.cluster.nodes if n not in (member, excluded)]
        self.rng.shuffle(rest)
        return [member, *rest[: self.rng.randint(1, len(rest))]]

    def stale_leader(self) -> None:
        """A leader is cut off, the others elect and write; then the old one acts again.

        Without CheckQuorum it still believes it leads: its writes and reads must fail.
        """
        cluster, rng = self.cluster, self.rng
        leaders = self.leaders()
        if not leaders:
            return
        old = rng.choice(leaders)
        others = [n for n in self.alive() if n != old]
        if not others:
            return
        new = rng.choice(others)
        self.elect(new, quiet=False, group=self.group_without(new, old))
        if cluster[new].role is Role.LEADER:
            self.write(new, group=self.group_without(new, old))
        cluster.heal()
        cluster.partition(self.group_with(old))
        if cluster[old].role is Role.LEADER:
            self.counter += 1
            _try(cluster.propose, old, [f"stale {self.counter}".encode()])
            _try(cluster.read, old, f"stale read {self.counter}".encode())
        self.settle(rng.randint(5, 80))

    def play(self, episode: str) -> None:
        cluster, rng = self.cluster, self.rng
        alive = self.alive()
        leaders = self.leaders()
        self.counter += 1
        if episode in ("elect", "elect quietly") and alive:
            if rng.random() < 0.5:
                candidate = rng.choice(alive)
            else:
                # The most up-to-date log: the node whose win can overwrite the most.
                candidate = max(alive, key=lambda n: (cluster[n].last_term, rng.random()))
            self.elect(candidate, quiet=episode == "elect quietly")
        elif episode == "write" and leaders:
            self.write(rng.choice(leaders))
        elif episode == "crash" and alive:
            cluster.crash(rng.choice(alive))
        elif episode == "restart":
            dead = [n for n, node in cluster.nodes.items() if not node.alive]
            if dead:
                cluster.restart(rng.choice(dead))
        elif episode == "crash and restart" and alive:
            victim = rng.choice(alive)
            cluster.crash(victim)
            cluster.restart(victim)
        elif episode == "read" and alive:
            _try(cluster.read, rng.choice(alive), f"read:{self.counter}".encode())
            self.settle(rng.randint(1, 30))
        elif episode == "membership" and leaders:
            leader = rng.choice(leaders)
            # Back-to-back changes: all but the first must be refused until it commits.
            for _ in range(rng.randint(1, 3)):
                _try(_change_membership, cluster, leader, rng)
            self.settle(rng.randint(1, 30))
        elif episode == "compact" and alive:
            cluster.compact(rng.choice(alive), retain_entries=rng.choice([0, 1]))
        elif episode == "heal":
            cluster.heal()
            self.settle(rng.randint(10, 200))
        elif episode == "old term race":
            self.old_term_race()
        elif episode == "stale leader":
            self.stale_leader()
        if rng.random() < self.flush:
            # The connections drop: whatever was still in flight is lost.
            cluster.in_flight.clear()


def run_episodes(
    seed: int, rounds: int = 60, wire: bool = False, profile: str = "all"
) -> Outcome:
    """A coarser nemesis: each round is an episode acting on a random group of nodes.

    Episodes: an election inside a random group (the rest cut off; "quietly" loses the
    winner's first entries), a write replicated to a random subset, a crash or restart, a
    read, a membership change, a compaction, a full heal, or an "old term race" (Figure 8).
    Groups that change every round give the multi-term histories (diverged tails, stale
    leaders, old-term entries) that uniform message-level faults reach only rarely.
    """
    rng = random.Random(seed)
    focus = EPISODE_PROFILES[profile]
    nodes = rng.choice([3, 5])
    params = attrs.evolve(
        sample(rng),
        nodes=nodes,
        spares=rng.choice([1, 2]) if profile == "membership" else rng.choice([0, 1]),
        election_tick=3,
        max_size_per_message_bytes=1 if focus else rng.choice([1, 1, 1 << 20]),
        pre_vote=rng.random() < 0.5,
        check_quorum=rng.random() < 0.5,
    )
    ids = [f"n{i}" for i in range(1, params.nodes + params.spares + 1)]
    cluster = Cluster(
        ids,
        voters=ids[:nodes],
        seed=seed,
        wire=wire,
        pre_vote=params.pre_vote,
        check_quorum=params.check_quorum,
        election_tick=params.election_tick,
        max_size_per_message_bytes=params.max_size_per_message_bytes,
        max_inflight_messages=params.max_inflight_messages,
        snapshot_chunk_bytes=params.snapshot_chunk_bytes,
        promotion_lag_entries_max=8,
    )
    outcome = Outcome(seed, params, cluster=cluster)
    if focus:
        weights = [focus.get(name, 0.0) for name in EPISODES]
    else:
        scale = [rng.choice([0.25, 1.0, 3.0]) for _ in EPISODES]
        weights = [w * k for w, k in zip(EPISODE_WEIGHTS, scale, strict=True)]
    episodes = Episodes(cluster, rng, params, flush=rng.choice([0.0, 0.3, 0.7]))
    try:
        for round_number in range(rounds):
            outcome.steps = round_number + 1
            episodes.play(rng.choices(EPISODES, weights)[0])
    except (SafetyViolation, RaftInvariantError) as violation:
        outcome.violation = violation
    return outcome
