"""Linearizability of a store history: the Wing–Gong/Lowe search (as in Porcupine), per object.

The history is split by object (P-compositionality: a history is linearizable iff each
object's sub-history is), and each part is searched on its own:

- calls and returns become a doubly linked list in time order (a return at the same
  instant as a call comes after it, so touching operations count as concurrent);
- the search walks the list; at a call it tries to linearize that operation now: if the
  model accepts it, the call and its return are lifted out of the list and the choice is
  pushed on a stack; reaching a return means the operation it ends was not linearized in
  time, so the search backtracks (pops, unlifts, tries the next call);
- a cache of (set of linearized operations, model state) prunes states already explored;
- the model is nondeterministic (kvmodel.step returns every possible next state), so the
  search runs on sets of states, as Porcupine does for nondeterministic models;
- an indeterminate operation (no answer) has its return at +∞: it may take effect
  anywhere after its call, or at the very end (which is the same as never).

Reads that got no answer say nothing and are left out. A search that exceeds its step
budget is reported as unknown, never as a pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from consensus import kvmodel
from consensus.client import Operation
from consensus.storeapi import StoredObject, WriteResult

STEPS_MAX = 2_000_000


@attrs.frozen
class Verdict:
    ok: bool
    unknown: bool = False
    key: str = ""
    detail: str = ""
    operations: int = 0
    partitions: int = 0


def model_output(operation: Operation) -> Any:
    """The model's view of an operation's answer (None: absent / indeterminate)."""
    output = operation.output
    if operation.op == "get":
        if output is None:
            return None
        assert isinstance(output, StoredObject)
        return (output.data, output.version)
    if not operation.done:
        return None
    assert isinstance(output, WriteResult)
    return (output.status, output.version)


class _Entry:
    __slots__ = ("call", "id", "match", "next", "operation", "previous", "time")

    def __init__(self, time: float, call: bool, operation: Operation, op_id: int) -> None:
        self.time = time
        self.call = call
        self.operation = operation
        self.id = op_id
        self.match: _Entry | None = None
        self.previous: _Entry | None = None
        self.next: _Entry | None = None


def _describe(operation: Operation) -> str:
    end = f"{operation.return_seconds:.6f}" if operation.return_seconds is not None else "never"
    value = operation.value if operation.value is None else operation.value.decode(errors="replace")
    expected = f" expected={operation.expected_version}" if operation.expected_version else ""
    return (
        f"#{operation.id} {operation.client} {operation.op}({value}{expected}) "
        f"[{operation.invoke_seconds:.6f}, {end}] -> {model_output(operation)!r}"
    )


def check_partition(
    key: str, operations: Sequence[Operation], steps_max: int = STEPS_MAX
) -> Verdict:
    """Search one object's history."""
    events: list[tuple[float, int, _Entry]] = []
    for op_id, operation in enumerate(operations):
        call = _Entry(operation.invoke_seconds, True, operation, op_id)
        end = operation.return_seconds if operation.return_seconds is not None else math.inf
        ret = _Entry(end, False, operation, op_id)
        call.match = ret
        # Calls sort before returns at the same instant: touching operations are concurrent.
        events.append((operation.invoke_seconds, 0, call))
        events.append((end, 1, ret))
    events.sort(key=lambda item: (item[0], item[1], item[2].id))
    head = _Entry(-math.inf, False, operations[0], -1) if operations else None
    if head is None:
        return Verdict(True, key=key)
    previous = head
    for _, _, entry in events:
        previous.next = entry
        entry.previous = previous
        previous = entry

    def lift(entry: _Entry) -> None:
        for item in (entry, entry.match):
            assert item is not None and item.previous is not None
            item.previous.next = item.next
            if item.next is not None:
                item.next.previous = item.previous

    def unlift(entry: _Entry) -> None:
        for item in (entry.match, entry):
            assert item is not None and item.previous is not None
            item.previous.next = item
            if item.next is not None:
                item.next.previous = item

    states: frozenset[kvmodel.State] = frozenset([None])
    linearized = 0
    cache: set[tuple[int, frozenset[kvmodel.State]]] = set()
    stack: list[tuple[_Entry, frozenset[kvmodel.State]]] = []
    entry = head.next
    steps = 0
    deepest = 0
    deepest_linearized = 0
    while head.next is not None:
        steps += 1
        if steps > steps_max:
            return Verdict(
                False,
                unknown=True,
                key=key,
                detail=f"search gave up after {steps_max} steps on {len(operations)} operations",
                operations=len(operations),
            )
        assert entry is not None
        if entry.call:
            operation = entry.operation
            output = model_output(operation)
            following: set[kvmodel.State] = set()
            for state in states:
                following.update(
                    kvmodel.step(state, operation.op, operation.value, operation.expected_version, output)
                )
            if following:
                candidate = linearized | (1 << entry.id)
                new_states = frozenset(following)
                if (candidate, new_states) not in cache:
                    cache.add((candidate, new_states))
                    stack.append((entry, states))
                    states = new_states
                    linearized = candidate
                    lift(entry)
                    if len(stack) > deepest:
                        deepest = len(stack)
                        deepest_linearized = linearized
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not stack:
                return Verdict(
                    False,
                    key=key,
                    detail=_failure_detail(key, operations, deepest_linearized),
                    operations=len(operations),
                )
            entry, states = stack.pop()
            linearized &= ~(1 << entry.id)
            unlift(entry)
            entry = entry.next
    return Verdict(True, key=key, operations=len(operations))


def _failure_detail(key: str, operations: Sequence[Operation], linearized: int) -> str:
    """The first operation (by call time) no linearization reached, and its neighbours."""
    remaining = [
        (operation.invoke_seconds, op_id)
        for op_id, operation in enumerate(operations)
        if not linearized >> op_id & 1
    ]
    remaining.sort()
    stuck_id = remaining[0][1]
    stuck = operations[stuck_id]
    lines = [
        f"object {key}: no linearization of its {len(operations)} operations; "
        f"the longest prefix found linearizes {bin(linearized).count('1')} and cannot place:",
        f"  {_describe(stuck)}",
        "operations around it (by call time):",
    ]
    ordered = sorted(range(len(operations)), key=lambda i: operations[i].invoke_seconds)
    position = ordered.index(stuck_id)
    for op_id in ordered[max(0, position - 8) : position + 6]:
        marker = "*" if op_id == stuck_id else ("+" if linearized >> op_id & 1 else " ")
        lines.append(f" {marker} {_describe(operations[op_id])}")
    return "\n".join(lines)


def partition(operations: Iterable[Operation]) -> dict[str, list[Operation]]:
    """Operations by object ("kind/id"), answerless reads left out (they say nothing)."""
    parts: dict[str, list[Operation]] = {}
    for operation in operations:
        if operation.op == "get" and not operation.done:
            continue
        parts.setdefault(f"{operation.kind}/{operation.key}", []).append(operation)
    return parts


def check_history(operations: Iterable[Operation], steps_max: int = STEPS_MAX) -> Verdict:
    """Every object's history must be linearizable; the first failure (or unknown) is returned."""
    parts = partition(operations)
    total = 0
    unknown: Verdict | None = None
    for key in sorted(parts):
        verdict = check_partition(key, parts[key], steps_max)
        total += verdict.operations
        if not verdict.ok and not verdict.unknown:
            return attrs.evolve(verdict, partitions=len(parts))
        if verdict.unknown and unknown is None:
            unknown = verdict
    if unknown is not None:
        return attrs.evolve(unknown, operations=total, partitions=len(parts))
    return Verdict(True, operations=total, partitions=len(parts))
