"""Fault plans drawn from a seed (swarm testing).

Each seed samples its own fault parameters — how often faults come, which kinds, how
long outages last, how lossy the network gets — so a sweep explores many different
mixes rather than one average. Rules:
- faults come until `quiet_after_fraction` of the run, then one `heal-all` ends them
  all, so scenarios can check that the system converges once the faults stop;
- at most `down_max` nodes are down at once (default: a minority, so a majority is
  always up; partitions still split any majority);
- each partition, cut and isolation is healed after its own outage; clogs expire.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import attrs

from runtime.host import derive_seed
from sim.faults import (
    PROFILES,
    ClockDrift,
    ClockStep,
    Clog,
    Corrupt,
    Crash,
    Duplicate,
    Fault,
    FaultPlan,
    Heal,
    HealAll,
    Isolate,
    Loss,
    OneWay,
    Partition,
    PlanEntry,
    PlanError,
    Restart,
    Unclog,
)


def parse_profiles(text: str) -> tuple[str, ...]:
    """'all', 'none', or a comma list of PROFILES."""
    text = text.strip()
    if text == "all":
        return PROFILES
    if text == "none":
        return ()
    chosen = tuple(part.strip() for part in text.split(","))
    unknown = [part for part in chosen if part not in PROFILES]
    if unknown or not chosen:
        raise PlanError(
            f"unknown fault profile {', '.join(unknown) or text!r}: "
            f"use all, none, or a comma list of {', '.join(PROFILES)}"
        )
    return tuple(dict.fromkeys(chosen))


@attrs.frozen
class FaultRates:
    """Swarm parameters of one seed: how often and how hard each kind of fault hits."""

    mean_gap_seconds: float
    weights: dict[str, float]
    loss_max: float
    duplicate_max: float
    outage_max_seconds: float

    @classmethod
    def sample(cls, rng: random.Random, profiles: Sequence[str]) -> FaultRates:
        return cls(
            mean_gap_seconds=rng.uniform(0.5, 5.0),
            weights={profile: rng.uniform(0.2, 1.0) for profile in profiles},
            loss_max=rng.choice([0.0, 0.01, 0.05, 0.2]),
            duplicate_max=rng.choice([0.0, 0.01, 0.05, 0.2]),
            outage_max_seconds=rng.uniform(0.5, 10.0),
        )


def generate_plan(
    seed: int,
    nodes: Sequence[str],
    duration_seconds: float,
    profiles: Iterable[str] = PROFILES,
    quiet_after_fraction: float = 0.8,
    down_max: int | None = None,
) -> FaultPlan:
    """A plan drawn from `seed`: faults until `quiet_after_fraction` of the run, then heal-all.

    At most `down_max` nodes are down at once (default: a minority, so a majority is
    always up; a consensus scenario's safety still gets tested by partitions).
    """
    profiles = tuple(profiles)
    nodes = sorted(nodes)
    unknown = [profile for profile in profiles if profile not in PROFILES]
    if unknown:
        raise PlanError(f"unknown fault profile {', '.join(unknown)}")
    if not profiles or not nodes or duration_seconds <= 0:
        return FaultPlan()
    rng = random.Random(derive_seed(seed, "fault-plan"))
    rates = FaultRates.sample(rng, profiles)
    if down_max is None:
        down_max = (len(nodes) - 1) // 2
    quiet_after = round(duration_seconds * quiet_after_fraction, 3)
    generator = _Generator(rng, nodes, rates, down_max, quiet_after)
    time_seconds = 0.0
    while True:
        time_seconds = round(time_seconds + rng.expovariate(1.0 / rates.mean_gap_seconds), 3)
        if time_seconds >= quiet_after:
            break
        generator.step(time_seconds)
    generator.add(quiet_after, HealAll())
    entries = sorted(generator.entries, key=lambda entry: entry.time_seconds)
    return FaultPlan(tuple(entries))


class _Generator:
    def __init__(
        self,
        rng: random.Random,
        nodes: list[str],
        rates: FaultRates,
        down_max: int,
        quiet_after: float,
    ) -> None:
        self.rng = rng
        self.nodes = nodes
        self.rates = rates
        self.down_max = down_max
        self.quiet_after = quiet_after
        self.entries: list[PlanEntry] = []
        # When each node is back up (crash windows), to respect down_max.
        self.down_until: dict[str, float] = {}

    def add(self, time_seconds: float, fault: Fault) -> None:
        self.entries.append(PlanEntry(time_seconds, fault))

    def _outage(self) -> float:
        return round(self.rng.uniform(0.2, self.rates.outage_max_seconds), 3)

    def _end(self, start: float) -> float:
        return min(round(start + self._outage(), 3), self.quiet_after)

    def step(self, now: float) -> None:
        rng = self.rng
        kinds = list(self.rates.weights)
        kind = rng.choices(kinds, weights=[self.rates.weights[k] for k in kinds])[0]
        getattr(self, f"_{kind}")(now)

    def _network(self, now: float) -> None:
        rng = self.rng
        nodes = self.nodes
        choice = rng.randrange(7)
        if choice == 0 and len(nodes) >= 2:
            shuffled = nodes[:]
            rng.shuffle(shuffled)
            cut = rng.randrange(1, len(shuffled))
            groups = (tuple(sorted(shuffled[:cut])), tuple(sorted(shuffled[cut:])))
            self.add(now, Partition(groups))
            self.add(self._end(now), Heal())
        elif choice == 1:
            self.add(now, Isolate(rng.choice(nodes)))
            self.add(self._end(now), Heal())
        elif choice == 2 and len(nodes) >= 2:
            source, target = rng.sample(nodes, 2)
            self.add(now, OneWay((source,), (target,)))
            self.add(self._end(now), Heal())
        elif choice == 3:
            self.add(now, Clog(rng.choice(nodes), self._outage()))
        elif choice == 4:
            # Swizzle-clog: clog a random subset one by one, unclog in random order.
            subset = rng.sample(nodes, rng.randint(1, len(nodes)))
            at = now
            for node in subset:
                self.add(at, Clog(node, round(self.rates.outage_max_seconds * 4, 3)))
                at = round(at + rng.uniform(0.05, 1.0), 3)
            rng.shuffle(subset)
            for node in subset:
                at = round(at + rng.uniform(0.05, 1.0), 3)
                self.add(min(at, self.quiet_after), Unclog(node))
        elif choice == 5:
            self.add(now, Loss(round(rng.uniform(0.0, self.rates.loss_max), 4)))
        else:
            self.add(now, Duplicate(round(rng.uniform(0.0, self.rates.duplicate_max), 4)))

    def _crashes(self, now: float) -> None:
        down = [node for node, until in self.down_until.items() if until > now]
        if len(down) >= self.down_max:
            return
        candidates = [node for node in self.nodes if node not in down]
        node = self.rng.choice(candidates)
        back = self._end(now)
        self.add(now, Crash(node))
        self.add(back, Restart(node))
        self.down_until[node] = back

    def _disk(self, now: float) -> None:
        self.add(now, Corrupt(self.rng.choice(self.nodes)))

    def _clock(self, now: float) -> None:
        rng = self.rng
        node = rng.choice(self.nodes)
        if rng.random() < 0.5:
            self.add(now, ClockStep(node, round(rng.uniform(-2.0, 2.0), 3)))
        else:
            self.add(now, ClockDrift(node, round(rng.uniform(-1e-3, 1e-3), 6)))
