"""Fault plans: what goes wrong in a simulated run, and when.

A plan is a list of `(time_seconds, fault)` entries. It prints one entry per line and
parses back to the same plan, so a plan can be saved, edited and replayed:

    1.5 partition n1,n2|n3,n4,n5
    2.0 one-way n1->n2,n3
    3.25 isolate n2
    4.0 heal
    5.0 clog n3 2.5
    5.0 clog-link n1 n2 1.0
    6.0 unclog n3
    7.0 loss 0.05
    7.0 loss 0.2 n1 n2
    7.5 duplicate 0.02
    8.0 crash n4
    9.0 restart n4
    10.0 corrupt n1 wal/
    11.0 clock-step n2 -0.5
    11.0 clock-drift n2 0.0001
    48.0 heal-all

Blank lines and lines starting with '#' are ignored. Plans drawn from a seed come from
sim/fault_generation.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import attrs


class PlanError(ValueError):
    """A fault plan line that does not parse, or a fault with bad parameters."""


def _node(text: str) -> str:
    if not text or any(character in text for character in ",|> \t"):
        raise PlanError(f"bad node name {text!r}")
    return text


def _nodes(text: str) -> tuple[str, ...]:
    names = tuple(_node(part) for part in text.split(","))
    if len(set(names)) != len(names):
        raise PlanError(f"node listed twice in {text!r}")
    return names


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PlanError(f"{what} must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise PlanError(f"{what} must be finite, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _number(text, "probability")
    if not 0.0 <= value <= 1.0:
        raise PlanError(f"probability must be within [0, 1], got {text}")
    return value


def _seconds(text: str) -> float:
    value = _number(text, "duration")
    if value < 0:
        raise PlanError(f"duration must be >= 0 seconds, got {text}")
    return value


def _arity(verb: str, args: Sequence[str], *counts: int) -> None:
    if len(args) not in counts:
        expected = " or ".join(str(count) for count in counts)
        raise PlanError(f"{verb} takes {expected} arguments, got {len(args)}")


class Fault:
    verb: ClassVar[str]

    def arguments(self) -> list[str]:
        raise NotImplementedError

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        raise NotImplementedError

    def __str__(self) -> str:
        return " ".join([self.verb, *self.arguments()])


@attrs.frozen
class Partition(Fault):
    """Nodes in different groups cannot reach each other (both directions)."""

    verb: ClassVar[str] = "partition"
    groups: tuple[tuple[str, ...], ...]

    def arguments(self) -> list[str]:
        return ["|".join(",".join(group) for group in self.groups)]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 1)
        groups = tuple(_nodes(part) for part in args[0].split("|"))
        if len(groups) < 2:
            raise PlanError("partition needs at least two groups separated by '|'")
        seen = [name for group in groups for name in group]
        if len(set(seen)) != len(seen):
            raise PlanError("partition lists a node in two groups")
        return cls(groups)


@attrs.frozen
class OneWay(Fault):
    """Frames from `sources` to `targets` are lost; the other direction still works."""

    verb: ClassVar[str] = "one-way"
    sources: tuple[str, ...]
    targets: tuple[str, ...]

    def arguments(self) -> list[str]:
        return [f"{','.join(self.sources)}->{','.join(self.targets)}"]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 1)
        if args[0].count("->") != 1:
            raise PlanError("one-way takes sources->targets")
        sources, targets = args[0].split("->")
        return cls(_nodes(sources), _nodes(targets))


@attrs.frozen
class Isolate(Fault):
    verb: ClassVar[str] = "isolate"
    node: str

    def arguments(self) -> list[str]:
        return [self.node]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 1)
        return cls(_node(args[0]))


@attrs.frozen
class Heal(Fault):
    """Remove every partition, one-way cut and isolation."""

    verb: ClassVar[str] = "heal"

    def arguments(self) -> list[str]:
        return []

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 0)
        return cls()


@attrs.frozen
class Clog(Fault):
    """Every link to and from `node` holds its frames for `seconds` (FoundationDB's clog)."""

    verb: ClassVar[str] = "clog"
    node: str
    seconds: float

    def arguments(self) -> list[str]:
        return [self.node, repr(self.seconds)]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 2)
        return cls(_node(args[0]), _seconds(args[1]))


@attrs.frozen
class ClogLink(Fault):
    verb: ClassVar[str] = "clog-link"
    source: str
    target: str
    seconds: float

    def arguments(self) -> list[str]:
        return [self.source, self.target, repr(self.seconds)]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 3)
        return cls(_node(args[0]), _node(args[1]), _seconds(args[2]))


@attrs.frozen
class Unclog(Fault):
    verb: ClassVar[str] = "unclog"
    node: str

    def arguments(self) -> list[str]:
        return [self.node]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 1)
        return cls(_node(args[0]))


@attrs.frozen
class Loss(Fault):
    """Set the loss probability of one directed link, or of every link."""

    verb: ClassVar[str] = "loss"
    probability: float
    source: str | None = None
    target: str | None = None

    def arguments(self) -> list[str]:
        link = [self.source, self.target] if self.source is not None else []
        return [repr(self.probability), *[name for name in link if name is not None]]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 1, 3)
        if len(args) == 3:
            return cls(_probability(args[0]), _node(args[1]), _node(args[2]))
        return cls(_probability(args[0]))


@attrs.frozen
class Duplicate(Fault):
    """Set the duplication probability of one directed link, or of every link."""

    verb: ClassVar[str] = "duplicate"
    probability: float
    source: str | None = None
    target: str | None = None

    def arguments(self) -> list[str]:
        link = [self.source, self.target] if self.source is not None else []
        return [repr(self.probability), *[name for name in link if name is not None]]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 1, 3)
        if len(args) == 3:
            return cls(_probability(args[0]), _node(args[1]), _node(args[2]))
        return cls(_probability(args[0]))


@attrs.frozen
class Crash(Fault):
    verb: ClassVar[str] = "crash"
    node: str

    def arguments(self) -> list[str]:
        return [self.node]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 1)
        return cls(_node(args[0]))


@attrs.frozen
class Restart(Fault):
    verb: ClassVar[str] = "restart"
    node: str

    def arguments(self) -> list[str]:
        return [self.node]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 1)
        return cls(_node(args[0]))


@attrs.frozen
class Corrupt(Fault):
    """Flip one bit of a durable byte in a random file of `node` under `path_prefix`."""

    verb: ClassVar[str] = "corrupt"
    node: str
    path_prefix: str = ""

    def arguments(self) -> list[str]:
        return [self.node, self.path_prefix] if self.path_prefix else [self.node]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 1, 2)
        return cls(_node(args[0]), args[1] if len(args) == 2 else "")


@attrs.frozen
class ClockStep(Fault):
    """Jump `node`'s wall clock by `seconds` (its monotonic clock is unaffected)."""

    verb: ClassVar[str] = "clock-step"
    node: str
    seconds: float

    def arguments(self) -> list[str]:
        return [self.node, repr(self.seconds)]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 2)
        return cls(_node(args[0]), _number(args[1], "clock step"))


@attrs.frozen
class ClockDrift(Fault):
    """Set `node`'s clock drift rate (seconds gained per second)."""

    verb: ClassVar[str] = "clock-drift"
    node: str
    rate: float

    def arguments(self) -> list[str]:
        return [self.node, repr(self.rate)]

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 2)
        rate = _number(args[1], "drift rate")
        if not -0.5 < rate < 0.5:
            raise PlanError(f"drift rate must be within (-0.5, 0.5), got {args[1]}")
        return cls(_node(args[0]), rate)


@attrs.frozen
class HealAll(Fault):
    """End every fault: heal, unclog, restore link defaults, restart every down node."""

    verb: ClassVar[str] = "heal-all"

    def arguments(self) -> list[str]:
        return []

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fault:
        _arity(cls.verb, args, 0)
        return cls()


FAULT_TYPES: dict[str, type[Fault]] = {
    cls.verb: cls
    for cls in (
        Partition,
        OneWay,
        Isolate,
        Heal,
        Clog,
        ClogLink,
        Unclog,
        Loss,
        Duplicate,
        Crash,
        Restart,
        Corrupt,
        ClockStep,
        ClockDrift,
        HealAll,
    )
}


@attrs.frozen
class PlanEntry:
    time_seconds: float
    fault: Fault

    def __str__(self) -> str:
        return f"{self.time_seconds!r} {self.fault}"


@attrs.frozen
class FaultPlan:
    entries: tuple[PlanEntry, ...] = ()

    def __str__(self) -> str:
        return "".join(f"{entry}\n" for entry in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def nodes(self) -> list[str]:
        """Every node name the plan mentions (sorted)."""
        names: dict[str, None] = {}
        for entry in self.entries:
            for field in attrs.fields(type(entry.fault)):  # type: ignore[arg-type]
                value = getattr(entry.fault, field.name)
                if field.name in ("node", "source", "target") and isinstance(value, str):
                    names[value] = None
                elif field.name in ("sources", "targets"):
                    names.update(dict.fromkeys(value))
                elif field.name == "groups":
                    for group in value:
                        names.update(dict.fromkeys(group))
        return sorted(names)


def parse_plan(text: str) -> FaultPlan:
    """Parse the text format above; raises PlanError naming the line at fault."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            if len(parts) < 2:
                raise PlanError("expected '<time> <fault> [arguments]'")
            time_seconds = _number(parts[0], "time")
            if time_seconds < 0:
                raise PlanError(f"time must be >= 0, got {parts[0]}")
            fault_type = FAULT_TYPES.get(parts[1])
            if fault_type is None:
                raise PlanError(
                    f"unknown fault {parts[1]!r} (known: {', '.join(sorted(FAULT_TYPES))})"
                )
            fault = fault_type.parse(parts[2:])
        except PlanError as error:
            raise PlanError(f"fault plan line {number}: {error}: {line!r}") from None
        entries.append(PlanEntry(time_seconds, fault))
    entries.sort(key=lambda entry: entry.time_seconds)
    return FaultPlan(tuple(entries))


PROFILES = ("network", "crashes", "disk", "clock")
