"""The store's state machine alone: semantics against a model, sessions, snapshots, M11."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from consensus import storemutants
from consensus.storeapi import Create, Delete, Update, WriteResult
from consensus.storestate import SnapshotFormatError, StoreState, decode_write, encode_write

keys = st.sampled_from(["a", "b", "c"])
clients = st.sampled_from(["x", "y"])
values = st.binary(max_size=8)


class StoreAgainstModel(RuleBasedStateMachine):
    """Apply random writes (and retries) to StoreState and to a dict; they must agree."""

    def __init__(self) -> None:
        super().__init__()
        self.state = StoreState(sessions_max=8)
        self.model: dict[str, tuple[bytes, int]] = {}
        self.index = 0
        self.seq = {"x": 0, "y": 0}
        self.last: dict[str, tuple[bytes, WriteResult]] = {}

    def _apply(self, client: str, data: bytes, retry: bool = False) -> WriteResult:
        self.index += 1
        result, _ = self.state.apply(self.index, data)
        return result

    def _expect(self, op: str, key: str, value: bytes, expected: int) -> WriteResult:
        current = self.model.get(key)
        index = self.index
        if op == "create":
            if current is not None:
                return WriteResult("exists", current[1], index)
            self.model[key] = (value, index)
            return WriteResult("ok", index, index)
        if current is None:
            return WriteResult("not_found", 0, index)
        if expected and current[1] != expected:
            return WriteResult("conflict", current[1], index)
        if op == "update":
            self.model[key] = (value, index)
            return WriteResult("ok", index, index)
        del self.model[key]
        return WriteResult("ok", current[1], index)

    @rule(client=clients, op=st.sampled_from(["create", "update", "delete"]), key=keys, value=values,
          use_version=st.booleans(), stale=st.booleans())
    def write(self, client: str, op: str, key: str, value: bytes, use_version: bool, stale: bool) -> None:
        self.seq[client] += 1
        seq = self.seq[client]
        current = self.model.get(key)
        expected = 0
        if use_version:
            expected = current[1] if current is not None and not stale else 999_999
        if op == "create":
            write = Create(client, seq, "kv", key, value)
        elif op == "update":
            write = Update(client, seq, "kv", key, value, expected)
        else:
            write = Delete(client, seq, "kv", key, expected)
        data = encode_write(write)
        result = self._apply(client, data)
        self.index_of_result = self.index
        assert result == self._expect(op, key, value, expected)
        self.last[client] = (data, result)

    @precondition(lambda self: self.last)
    @rule(client=clients)
    def retry_the_last_write(self, client: str) -> None:
        if client not in self.last:
            return
        data, first = self.last[client]
        before = self.state.digest()
        again = self._apply(client, data, retry=True)
        assert again == first
        assert self.state.digest() == before

    @rule()
    def snapshot_round_trip(self) -> None:
        copy = StoreState(sessions_max=8)
        copy.restore(self.state.snapshot())
        assert copy.digest() == self.state.digest()
        assert copy.chain == self.state.chain
        self.state = copy

    @invariant()
    def objects_match_the_model(self) -> None:
        assert {o.id: (o.data, o.version) for o in self.state.list("kv")} == self.model


TestStoreAgainstModel = StoreAgainstModel.TestCase


def test_an_old_request_of_a_client_that_moved_on_is_stale() -> None:
    state = StoreState()
    first = encode_write(Create("c", 1, "kv", "a", b"1"))
    state.apply(1, first)
    state.apply(2, encode_write(Update("c", 2, "kv", "a", b"2")))
    result, change = state.apply(3, first)
    assert result == WriteResult("stale", 0, 3) and change is None
    assert state.get("kv", "a").data == b"2"  # type: ignore[union-attr]


def test_sessions_are_bounded_least_recently_used_first() -> None:
    state = StoreState(sessions_max=2)
    for index, client in enumerate(["a", "b", "a", "c"], start=1):
        state.apply(index, encode_write(Create(client, index, "kv", f"k{index}", b"")))
    assert list(state.sessions) == ["a", "c"]


def test_undecodable_entries_apply_as_invalid_and_change_nothing_but_the_chain() -> None:
    state = StoreState()
    before = state.digest()
    result, change = state.apply(1, b"\x93garbage")
    assert result.status == "invalid" and change is None
    assert state.digest() == before and state.chain != bytes(16)
    assert decode_write(encode_write(Delete("c", 1, "k", "i", 3))) == (3, "c", 1, "k", "i", b"", 3)


def test_a_bad_snapshot_leaves_the_state_unchanged() -> None:
    state = StoreState()
    state.apply(1, encode_write(Create("c", 1, "kv", "a", b"1")))
    before = (state.digest(), state.chain)
    for garbage in (b"", b"\x01", b"\x95\x02\x00\x00\x90\x90", b"\x95\x01\x01\xc4\x01x\x91\x01\x90"):
        with pytest.raises(SnapshotFormatError):
            state.restore(garbage)
        assert (state.digest(), state.chain) == before


def test_mutant_m11_applies_a_retry_twice() -> None:
    data = encode_write(Update("c", 1, "kv", "a", b"2"))
    with storemutants.active("M11"):
        state = StoreState()
        state.record_executed = True
        state.apply(1, encode_write(Create("o", 1, "kv", "a", b"1")))
        state.apply(2, data)
        state.apply(3, data)
        assert [(client, seq) for client, seq, _ in state.take_executed()] == [("o", 1), ("c", 1), ("c", 1)]
    state = StoreState()
    state.record_executed = True
    state.apply(1, encode_write(Create("o", 1, "kv", "a", b"1")))
    state.apply(2, data)
    state.apply(3, data)
    assert [(client, seq) for client, seq, _ in state.take_executed()] == [("o", 1), ("c", 1)]


def test_store_mutants_share_the_core_environment_variable() -> None:
    assert storemutants.parse("M1, M11") == (frozenset({"M1"}), frozenset({"M11"}))
    with pytest.raises(ValueError, match="unknown mutant.*M99"):
        storemutants.parse("M11,M99")
    try:
        assert storemutants.configure_from_environment({"FLOTTA_RAFT_MUTANT": "M3,M11"}) == {"M3", "M11"}
        assert storemutants.switches.M11 and storemutants.enabled() == {"M3", "M11"}
    finally:
        storemutants.enable()
    assert storemutants.enabled() == frozenset()
