"""The codec: round trips for every registered message, strictness, and fuzzing."""

from __future__ import annotations

import enum
import importlib
import types
import typing
from pathlib import Path

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.actor import Ref
from runtime.codec import DecodeError, EncodeError, decode, encode, message, registered_messages

ROOT = Path(__file__).resolve().parents[2]


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@message("test.codec.inner")
@attrs.frozen
class Inner:
    number: int


@message("test.codec.other")
@attrs.frozen
class Other:
    text: str


@message("test.codec.sample")
@attrs.frozen
class Sample:
    number: int
    text: str = ""
    blob: bytes = b""
    ratio: float = 0.0
    flag: bool = False
    items: tuple[int, ...] = ()
    names: list[str] = attrs.field(factory=list)
    counts: dict[str, int] = attrs.field(factory=dict)
    color: Color = Color.RED
    level: Level = Level.LOW
    inner: Inner | None = None
    either: Inner | Other | None = None
    pair: tuple[str, int] = ("", 0)
    target: Ref | None = None


def import_every_message_module() -> None:
    """Import each project module that registers messages, so the registry is complete."""
    for package in ("runtime", "consensus", "actors", "sim"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "@message(" in path.read_text(errors="replace"):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                importlib.import_module(module)


# Wire integers are 64-bit; message fields hold ids, terms, indexes and sizes.
st.register_type_strategy(int, st.integers(-(2**63), 2**63 - 1))
# NaN never equals itself; everything else must survive the trip exactly.
st.register_type_strategy(float, st.floats(allow_nan=False))
st.register_type_strategy(Ref, st.builds(Ref, st.text(max_size=12), st.text(max_size=12)))
import_every_message_module()
ALL_MESSAGES = sorted(registered_messages().items())


# `Any` fields carry JSON-shaped documents (Docker API bodies): generate those for them.
JsonValue = typing.NewType("JsonValue", object)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
st.register_type_strategy(JsonValue, json_values)


def without_any(tp: object) -> object:
    """The type with every `Any` replaced by JsonValue, so Hypothesis can build it."""
    if tp is typing.Any:
        return JsonValue
    origin = typing.get_origin(tp)
    arguments = typing.get_args(tp)
    if origin is None or not arguments:
        return tp
    replaced = tuple(without_any(argument) for argument in arguments)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[replaced]  # noqa: UP007
    return origin[replaced if len(replaced) > 1 else replaced[0]]


def strategy_for(cls: type) -> st.SearchStrategy[object]:
    hints = typing.get_type_hints(cls)
    fields = {
        field.name: st.from_type(without_any(hints[field.name]))
        for field in attrs.fields(cls)
        if field.init
    }
    return st.builds(cls, **fields)


# Nested messages with `Any` fields need the same treatment wherever they appear.
for _, _message_class in ALL_MESSAGES:
    st.register_type_strategy(_message_class, st.deferred(lambda cls=_message_class: strategy_for(cls)))


@pytest.mark.parametrize(("tag", "cls"), ALL_MESSAGES, ids=[tag for tag, _ in ALL_MESSAGES])
def test_every_registered_message_round_trips(tag: str, cls: type) -> None:
    @settings(max_examples=25)
    @given(strategy_for(cls))
    def round_trip(value: object) -> None:
        assert decode(encode(value)) == value

    round_trip()


def test_registry_is_not_empty() -> None:
    assert "test.codec.sample" in registered_messages()


def test_nested_union_decodes_to_the_right_class() -> None:
    value = Sample(number=1, either=Other("x"), target=Ref("n1", "raft"))
    assert decode(encode(value)) == value
    assert decode(encode(Sample(number=1, either=Inner(2)))).either == Inner(2)


def wire(**fields: object) -> bytes:
    return msgpack.packb({"_t": "test.codec.sample", **fields}, use_bin_type=True)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"number": "1"}, "expected int, got str"),
        ({"number": True}, "expected int, got bool"),
        ({"number": 1.0}, "expected int, got float"),
        ({"number": 1, "text": 5}, "expected str, got int"),
        ({"number": 1, "blob": "x"}, "expected bytes, got str"),
        ({"number": 1, "flag": 1}, "expected bool, got int"),
        ({"number": 1, "names": "abc"}, "expected a list, got str"),
        ({"number": 1, "counts": [1]}, "expected a map, got list"),
        ({"number": 1, "color": "green"}, "'green' is not a valid Color"),
        ({"number": 1, "level": "1"}, "expected a Level value"),
        ({"number": 1, "level": 7}, "7 is not a valid Level"),
        ({"number": 1, "surprise": 2}, "unknown fields ['surprise']"),
        ({}, "missing field 'number'"),
        ({"number": 1, "inner": {"_t": "test.codec.other", "text": "x"}}, "expected message"),
        ({"number": 1, "either": {"_t": "test.codec.sample", "number": 1}}, "unexpected message tag"),
        ({"number": 1, "pair": ["a"]}, "expected a sequence of 2 items"),
        ({"number": 1, "target": ["n"]}, "expected a ref"),
    ],
)
def test_decoding_is_strict(fields: dict, complaint: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(wire(**fields))
    assert complaint in str(caught.value)
    assert "test.codec.sample" in str(caught.value)


def test_unknown_tag_and_non_map_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match="unknown message tag 'nope'"):
        decode(msgpack.packb({"_t": "nope"}))
    with pytest.raises(DecodeError, match="a message is a map"):
        decode(msgpack.packb([1, 2]))
    with pytest.raises(DecodeError, match="expected bytes"):
        decode("text")  # type: ignore[arg-type]


def test_int_enum_decodes_to_the_enum() -> None:
    assert decode(encode(Sample(number=1, level=Level.HIGH))).level is Level.HIGH


def test_out_of_range_integer_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        encode(Sample(number=2**70))


def test_encoding_refuses_unregistered_values() -> None:
    @attrs.frozen
    class Unregistered:
        x: int

    with pytest.raises(EncodeError, match="not a registered message"):
        encode(Unregistered(1))


def test_registration_requires_frozen_attrs_and_unique_tags() -> None:
    with pytest.raises(TypeError, match="frozen"):

        @message("test.codec.mutable")
        @attrs.define
        class Mutable:
            x: int

    with pytest.raises(TypeError, match="attrs class"):

        @message("test.codec.plain")
        class Plain:
            pass

    with pytest.raises(ValueError, match="already used"):

        @message("test.codec.sample")
        @attrs.frozen
        class Impostor:
            x: int


@given(st.binary(max_size=512))
def test_decoding_arbitrary_bytes_raises_only_decode_error(data: bytes) -> None:
    try:
        decode(data)
    except DecodeError:
        pass


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text() | st.binary(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.just("_t"), children, max_size=4),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(["number", "text", "blob", "names", "counts", "inner", "either", "pair", "target", "x"]),
        msgpack_values,
        max_size=6,
    ),
    st.sampled_from([tag for tag, _ in ALL_MESSAGES]),
)
def test_decoding_near_miss_structures_raises_only_decode_error(fields: dict, tag: str) -> None:
    try:
        decode(msgpack.packb({**fields, "_t": tag}, use_bin_type=True))
    except DecodeError:
        pass


# --- the generated fast paths agree with the converter -----------------------------------


@pytest.mark.parametrize(("tag", "cls"), ALL_MESSAGES, ids=[tag for tag, _ in ALL_MESSAGES])
def test_generated_encoder_and_decoder_agree_with_the_converter(tag: str, cls: type) -> None:
    from runtime import codec

    @settings(max_examples=15)
    @given(strategy_for(cls))
    def agree(value: object) -> None:
        fast = codec.to_wire(value)
        slow = codec._slow_to_wire(value, cls)
        # Same map, same key order: the same bytes on the wire.
        assert codec.pack(fast) == codec.pack(slow)
        assert codec._decoder_of(cls)(fast) == codec._slow_from_wire(slow, cls) == value

    agree()


@given(
    st.dictionaries(
        st.sampled_from(["number", "text", "blob", "names", "counts", "inner", "either", "pair", "target", "x"]),
        msgpack_values,
        max_size=6,
    ),
    st.sampled_from(ALL_MESSAGES),
)
def test_a_generated_decoder_accepts_only_what_the_converter_accepts(fields: dict, entry: tuple) -> None:
    from runtime import codec

    tag, cls = entry
    data = {**fields, "_t": tag}
    try:
        fast = codec._decoder_of(cls)(dict(data))
    except Exception:
        return  # the fast path gave up: from_wire falls back to the converter
    assert codec._slow_from_wire(dict(data), cls) == fast
