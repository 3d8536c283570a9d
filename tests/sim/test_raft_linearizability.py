"""The linearizability checker and the KV model, on small hand-made histories."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import kvmodel
from consensus.client import Operation
from consensus.storeapi import StoredObject, WriteResult
from sim.linearizability import check_history, check_partition

_ids = iter(range(1_000_000))


def op(
    client: str,
    name: str,
    start: float,
    end: float | None,
    output: object = None,
    value: bytes | None = None,
    expected: int = 0,
    key: str = "k",
) -> Operation:
    operation = Operation(next(_ids), client, name, "kv", key, value, expected, start)
    operation.return_seconds = end
    operation.output = output
    return operation


def ok(version: int, status: str = "ok") -> WriteResult:
    return WriteResult(status, version, version)


def read(value: bytes, version: int) -> StoredObject:
    return StoredObject("kv", "k", version, 1, value)


def test_a_sequential_history_is_linearizable() -> None:
    history = [
        op("a", "create", 0, 1, ok(2), b"x"),
        op("a", "get", 2, 3, read(b"x", 2)),
        op("a", "update", 4, 5, ok(7), b"y", expected=2),
        op("a", "get", 6, 7, read(b"y", 7)),
        op("a", "delete", 8, 9, ok(7), expected=7),
        op("a", "get", 10, 11, None),
    ]
    verdict = check_history(history)
    assert verdict.ok and verdict.operations == 6 and verdict.partitions == 1


def test_a_stale_read_is_caught() -> None:
    history = [
        op("a", "create", 0, 1, ok(2), b"x"),
        op("a", "update", 2, 3, ok(5), b"y"),
        op("b", "get", 4, 5, read(b"x", 2)),  # after the update returned: stale
    ]
    verdict = check_history(history)
    assert not verdict.ok and not verdict.unknown
    assert "object kv/k" in verdict.detail and "get" in verdict.detail


def test_concurrent_operations_may_take_effect_in_either_order() -> None:
    history = [
        op("a", "create", 0, 1, ok(2), b"x"),
        op("a", "update", 2, 6, ok(5), b"y"),
        op("b", "get", 3, 4, read(b"x", 2)),  # overlaps the update: may precede it
        op("c", "get", 3, 5, read(b"y", 5)),
    ]
    assert check_history(history).ok
    history.append(op("d", "get", 5.5, 5.8, read(b"x", 2)))  # after c saw y: stale
    assert not check_history(history).ok


def test_an_indeterminate_write_may_or_may_not_have_happened() -> None:
    base = [op("a", "create", 0, 1, ok(2), b"x"), op("a", "update", 2, None, None, b"y")]
    assert check_history([*base, op("b", "get", 3, 4, read(b"x", 2))]).ok
    assert check_history([*base, op("b", "get", 3, 4, read(b"y", 9))]).ok
    # ... but not both ways back and forth:
    flip = [*base, op("b", "get", 3, 4, read(b"y", 9)), op("b", "get", 5, 6, read(b"x", 2))]
    assert not check_history(flip).ok


def test_a_lost_acknowledged_write_is_caught() -> None:
    history = [
        op("a", "create", 0, 1, ok(2), b"x"),
        op("a", "update", 2, 3, ok(4), b"y"),
        op("b", "update", 2.5, 3.5, ok(6), b"z", expected=2),  # CAS on a version already gone
    ]
    assert not check_history(history).ok


def test_conflicts_and_exists_pin_the_current_version() -> None:
    history = [
        op("a", "create", 0, 1, ok(2), b"x"),
        op("b", "create", 2, 3, ok(2, "exists"), b"q"),
        op("b", "update", 4, 5, ok(2, "conflict"), b"q", expected=9),
        op("a", "delete", 6, 7, ok(2, "conflict"), expected=3),
    ]
    assert check_history(history).ok
    wrong_version = [*history[:1], op("b", "update", 4, 5, ok(8, "conflict"), b"q", expected=9)]
    assert not check_history(wrong_version).ok


def test_objects_are_checked_separately() -> None:
    history = [
        op("a", "create", 0, 1, ok(2), b"x", key="k1"),
        op("a", "create", 0, 1, ok(3), b"y", key="k2"),
        op("b", "get", 2, 3, StoredObject("kv", "k2", 3, 3, b"y"), key="k2"),
    ]
    verdict = check_history(history)
    assert verdict.ok and verdict.partitions == 2


def test_a_search_over_budget_is_unknown_not_a_pass() -> None:
    history = [op(f"c{i}", "update", 0, None, None, b"v%d" % i) for i in range(12)]
    history.append(op("r", "get", 1, 2, read(b"zz", 99)))
    verdict = check_partition("kv/k", history, steps_max=50)
    assert not verdict.ok and verdict.unknown


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(["create", "update", "delete", "get"]), st.booleans()), max_size=25))
def test_histories_of_a_sequential_store_are_linearizable(steps: list[tuple[str, bool]]) -> None:
    """Run a real sequential store and record its answers: always linearizable."""
    from consensus.storeapi import Create, Delete, Update
    from consensus.storestate import StoreState, encode_write

    state = StoreState()
    history = []
    clock = 0.0
    for number, (name, use_version) in enumerate(steps, start=1):
        current = state.get("kv", "k")
        expected = current.version if (use_version and current is not None) else 0
        value = f"v{number}".encode()
        if name == "get":
            output: object = current
        else:
            if name == "create":
                write: Create | Update | Delete = Create("c", number, "kv", "k", value)
            elif name == "update":
                write = Update("c", number, "kv", "k", value, expected)
            else:
                write = Delete("c", number, "kv", "k", expected)
            output, _ = state.apply(number, encode_write(write))
        history.append(op("c", name, clock, clock + 0.5, output, value if name in ("create", "update") else None, expected))
        clock += 1
    assert check_history(history).ok


def test_the_model_rejects_impossible_outputs() -> None:
    assert kvmodel.step(None, "get", None, 0, (b"x", 1)) == []
    assert kvmodel.step((b"x", 3), "update", b"y", 0, ("ok", 2)) == []  # versions only grow
    assert kvmodel.step((b"x", 3), "create", b"y", 0, ("ok", 5)) == []
    assert kvmodel.step(None, "delete", None, 0, ("not_found", 0)) == [None]
    assert kvmodel.step((b"x", kvmodel.UNKNOWN_VERSION), "update", b"y", 4, None) == [
        (b"y", kvmodel.UNKNOWN_VERSION),
        (b"x", kvmodel.UNKNOWN_VERSION),
    ]
