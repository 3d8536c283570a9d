"""The store's sequential specification for one object, for checking histories.

The linearizability checker (sim/linearizability.py) splits a history by object (every
operation touches exactly one) and asks, for each object, whether some order of its
operations that respects real time is a legal sequential run of this model.

A state is `None` (absent) or `(value, version)`. A version of `UNKNOWN_VERSION` means a
write whose answer never came (indeterminate) may have set it: the next operation that
reports the version pins it. Steps are nondeterministic (they return every possible next
state; an empty list means the operation is impossible here), because an indeterminate
write may find its precondition true or false when the version is unknown.

Operations are (op, value, expected_version, output):
- get:    output None (absent) or (value, version)
- create: output (status, version): ok → absent before, now (value, version);
          exists → present (version is its current one)
- update: ok / not_found / conflict, with compare-and-set on expected_version (0: any)
- delete: ok (version: the deleted one) / not_found / conflict
- output None for a write: indeterminate (it took effect here, or never)

Versions of successful writes strictly increase (they are Raft indexes).
"""

from __future__ import annotations

from typing import Any

UNKNOWN_VERSION = -1

State = tuple[bytes, int] | None


def _version_matches(known: int, reported: int) -> bool:
    return known == UNKNOWN_VERSION or known == reported


def step(state: State, op: str, value: bytes | None, expected: int, output: Any) -> list[State]:
    if op == "get":
        if output is None:
            return [None] if state is None else []
        if state is None:
            return []
        read_value, read_version = output
        current_value, current_version = state
        if read_value != current_value or not _version_matches(current_version, read_version):
            return []
        return [(current_value, read_version)]
    if op == "create":
        return _create(state, value, output)
    if op == "update":
        return _update(state, value, expected, output)
    if op == "delete":
        return _delete(state, expected, output)
    raise ValueError(f"unknown operation {op!r}")


def _newer(state: State, version: int) -> bool:
    return state is None or state[1] == UNKNOWN_VERSION or version > state[1]


def _create(state: State, value: bytes | None, output: Any) -> list[State]:
    assert value is not None
    if output is None:
        return [state] if state is not None else [(value, UNKNOWN_VERSION)]
    status, version = output
    if status == "ok":
        return [(value, version)] if state is None else []
    if status == "exists":
        if state is None or not _version_matches(state[1], version):
            return []
        return [(state[0], version)]
    return []


def _update(state: State, value: bytes | None, expected: int, output: Any) -> list[State]:
    assert value is not None
    if output is None:
        if state is None:
            return [None]
        if not expected or state[1] == expected:
            return [(value, UNKNOWN_VERSION)]
        if state[1] == UNKNOWN_VERSION:
            return [(value, UNKNOWN_VERSION), state]
        return [state]
    status, version = output
    if status == "ok":
        if state is None or not _newer(state, version):
            return []
        if expected and not _version_matches(state[1], expected):
            return []
        return [(value, version)]
    if status == "not_found":
        return [None] if state is None else []
    if status == "conflict":
        if state is None or not expected or expected == version:
            return []
        if not _version_matches(state[1], version):
            return []
        return [(state[0], version)]
    return []


def _delete(state: State, expected: int, output: Any) -> list[State]:
    if output is None:
        if state is None:
            return [None]
        if not expected or state[1] == expected:
            return [None]
        if state[1] == UNKNOWN_VERSION:
            return [None, state]
        return [state]
    status, version = output
    if status == "ok":
        if state is None or not _version_matches(state[1], version):
            return []
        if expected and expected != version:
            return []
        return [None]
    if status == "not_found":
        return [None] if state is None else []
    if status == "conflict":
        if state is None or not expected or expected == version:
            return []
        if not _version_matches(state[1], version):
            return []
        return [(state[0], version)]
    return []
