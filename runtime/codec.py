"""Messages and their wire codec.

A message is a frozen attrs class registered once under a tag:

    @message("ping")
    @attrs.frozen
    class Ping:
        seq: int

On the wire a message is a msgpack map of its fields plus the key `_t` holding the tag;
nested messages carry their own `_t`, so a field typed as a union of messages decodes to
the right class. Decoding is strict, unlike cattrs' defaults: no `"1"` becomes `1`, no
`True` becomes `1`, no string becomes a list of characters, and unknown fields are
rejected. Every way decoding can fail surfaces as one exception, `DecodeError`: a bad
frame from a peer is data to drop and count, never a crash of the receiving actor.

This module imports neither trio nor the OS, so `consensus/` can define messages.
"""

from __future__ import annotations

import enum
import linecache
import threading
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import cattrs
import cattrs.fns
import msgpack
from attr._make import _frozen_setattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

T = TypeVar("T")

TAG_KEY = "_t"
nesting_depth_max = 64

_class_by_tag: dict[str, type] = {}
_tag_by_class: dict[type, str] = {}


class DecodeError(ValueError):
    """Bytes or a value that do not decode to a registered message."""


class EncodeError(TypeError):
    """A value that cannot be encoded (not a registered message, or a field of the wrong type)."""


def message(tag: str) -> Callable[[type[T]], type[T]]:
    """Register a frozen attrs class as a message under `tag`."""

    def register(cls: type[T]) -> type[T]:
        if not attrs.has(cls):
            raise TypeError(f"{cls.__qualname__}: a message must be an attrs class")
        if getattr(cls, "__setattr__", None) is not _frozen_setattrs:
            raise TypeError(f"{cls.__qualname__}: a message must be frozen (@attrs.frozen)")
        if not tag or not isinstance(tag, str):
            raise ValueError(f"{cls.__qualname__}: message tag must be a non-empty string")
        if tag in _class_by_tag and _class_by_tag[tag] is not cls:
            other = _class_by_tag[tag]
            if (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
                raise ValueError(f"message tag {tag!r} already used by {other.__qualname__}")
        _class_by_tag[tag] = cls
        _tag_by_class[cls] = tag
        _decoders_by_tag.pop(tag, None)
        return cls

    return register


def registered_messages() -> dict[str, type]:
    """Tag → class for every registered message (for tests and tooling)."""
    return dict(_class_by_tag)


def tag_of(cls: type) -> str:
    return _tag_by_class[cls]


# --- strict primitive hooks -------------------------------------------------------------


def _strict(expected: type, name: str) -> Callable[[Any, Any], Any]:
    def structure(value: Any, target: Any) -> Any:
        if target is not expected and isinstance(target, type) and issubclass(target, enum.Enum):
            # cattrs dispatches an IntEnum (an int subclass) to the int hook.
            return _structure_enum(value, target)
        if type(value) is not expected:
            raise DecodeError(f"expected {name}, got {type(value).__name__}")
        return value

    return structure


def _structure_enum(value: Any, cls: type[enum.Enum]) -> Any:
    value_types = {type(member.value) for member in cls}
    if type(value) not in value_types:
        raise DecodeError(f"expected a {cls.__name__} value, got {type(value).__name__}")
    try:
        return cls(value)
    except ValueError:
        raise DecodeError(f"{value!r} is not a valid {cls.__name__}") from None


def _structure_float(value: Any, _: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise DecodeError(f"expected float, got {type(value).__name__}")


def _structure_any(value: Any, _: Any) -> Any:
    return value


def _is_message_class(cls: Any) -> bool:
    return isinstance(cls, type) and cls in _tag_by_class


def _message_union_members(tp: Any) -> tuple[type, ...] | None:
    """The message classes of a union made only of messages (and maybe None)."""
    origin = typing.get_origin(tp)
    if origin not in (typing.Union, types.UnionType):
        return None
    members = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    if members and all(_is_message_class(arg) for arg in members):
        return tuple(members)
    return None


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=False)
    for primitive, hook in (
        (int, _strict(int, "int")),
        (str, _strict(str, "str")),
        (bytes, _strict(bytes, "bytes")),
        (bool, _strict(bool, "bool")),
        (float, _structure_float),
    ):
        converter.register_structure_hook(primitive, hook)
    converter.register_structure_hook(Any, _structure_any)

    def enum_hook(cls: type[enum.Enum]) -> Callable[[Any, Any], Any]:
        return lambda value, _: _structure_enum(value, cls)

    converter.register_structure_hook_factory(
        lambda tp: isinstance(tp, type) and issubclass(tp, enum.Enum), enum_hook
    )
    converter.register_unstructure_hook_factory(
        lambda tp: isinstance(tp, type) and issubclass(tp, enum.Enum),
        lambda cls: lambda member: member.value,
    )

    def sequence_hook(tp: Any) -> Callable[[Any, Any], Any]:
        origin = typing.get_origin(tp) or tp
        args = typing.get_args(tp)
        if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
            element_hooks = [converter.get_structure_hook(arg) for arg in args]

            def structure_fixed(value: Any, _: Any) -> Any:
                if type(value) not in (list, tuple) or len(value) != len(element_hooks):
                    raise DecodeError(f"expected a sequence of {len(element_hooks)} items")
                return tuple(
                    hook(item, arg) for hook, item, arg in zip(element_hooks, value, args, strict=True)
                )

            return structure_fixed
        element = args[0] if args else Any
        element_hook = converter.get_structure_hook(element)
        make = tuple if origin is tuple else list

        def structure(value: Any, _: Any) -> Any:
            if type(value) not in (list, tuple):
                raise DecodeError(f"expected a list, got {type(value).__name__}")
            return make(element_hook(item, element) for item in value)

        return structure

    def is_sequence(tp: Any) -> bool:
        origin = typing.get_origin(tp) or tp
        return origin in (list, tuple, Sequence, typing.List, typing.Tuple)  # noqa: UP006

    converter.register_structure_hook_factory(is_sequence, sequence_hook)

    def mapping_hook(tp: Any) -> Callable[[Any, Any], Any]:
        args = typing.get_args(tp)
        key_type, value_type = args if args else (Any, Any)
        key_hook = converter.get_structure_hook(key_type)
        value_hook = converter.get_structure_hook(value_type)

        def structure(value: Any, _: Any) -> Any:
            if type(value) is not dict:
                raise DecodeError(f"expected a map, got {type(value).__name__}")
            return {
                key_hook(key, key_type): value_hook(item, value_type) for key, item in value.items()
            }

        return structure

    def is_mapping(tp: Any) -> bool:
        origin = typing.get_origin(tp) or tp
        return origin in (dict, Mapping, typing.Dict)  # noqa: UP006

    converter.register_structure_hook_factory(is_mapping, mapping_hook)

    def message_unstructure(cls: type) -> Callable[[Any], Any]:
        tag = _tag_by_class[cls]
        fields = make_dict_unstructure_fn(cls, converter)

        def unstructure(value: Any) -> Any:
            result = fields(value)
            result[TAG_KEY] = tag
            return result

        return unstructure

    def message_structure(cls: type) -> Callable[[Any, Any], Any]:
        tag = _tag_by_class[cls]
        fields = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)

        def structure(value: Any, _: Any) -> Any:
            if type(value) is not dict:
                raise DecodeError(f"expected a {cls.__name__} map, got {type(value).__name__}")
            if value.get(TAG_KEY) != tag:
                raise DecodeError(f"expected message {tag!r}, got {value.get(TAG_KEY)!r}")
            body = dict(value)
            del body[TAG_KEY]
            return fields(body, cls)

        return structure

    converter.register_unstructure_hook_factory(_is_message_class, message_unstructure)
    converter.register_structure_hook_factory(_is_message_class, message_structure)

    def union_structure(tp: Any) -> Callable[[Any, Any], Any]:
        members = _message_union_members(tp) or ()
        by_tag = {_tag_by_class[cls]: cls for cls in members}
        optional = type(None) in typing.get_args(tp)

        def structure(value: Any, _: Any) -> Any:
            if value is None and optional:
                return None
            if type(value) is not dict:
                raise DecodeError(f"expected a message map, got {type(value).__name__}")
            cls = by_tag.get(value.get(TAG_KEY))  # type: ignore[arg-type]
            if cls is None:
                raise DecodeError(f"unexpected message tag {value.get(TAG_KEY)!r} here")
            return converter.structure(value, cls)

        return structure

    converter.register_structure_hook_factory(
        lambda tp: _message_union_members(tp) is not None, union_structure
    )
    converter.register_unstructure_hook_factory(
        lambda tp: _message_union_members(tp) is not None,
        lambda tp: lambda value: None if value is None else converter.unstructure(value),
    )
    return converter


converter = _make_converter()


def _slow_to_wire(value: Any, cls: type) -> Any:
    return converter.unstructure(value, cls)


def _slow_from_wire(data: Any, cls: type) -> Any:
    hook = _structure_hooks.get(cls)
    if hook is None:
        hook = _structure_hooks[cls] = converter.get_structure_hook(cls)
    return hook(data, cls)


_structure_hooks: dict[type, Callable[[Any, Any], Any]] = {}


# --- generated fast paths -------------------------------------------------------------
# The converter defines what the codec accepts and which error each mistake gets, but
# going through it costs a dispatch per value, a copy of every map (to drop `_t`) and a
# call per field: most of a small message's cost. So each message class also gets an
# encoder and a decoder generated on first use, straight-line code over its fields:
# - the encoder builds exactly the map the converter would (same keys in the same order,
#   so the same bytes), calling the converter's hook for any field that is not plain;
# - the decoder accepts only the well-formed case (every field present with exactly its
#   type, nothing else in the map) and gives up on anything else; `from_wire` then runs
#   the converter, which raises its usual error. So a fast path never changes a result
#   or an error, only the time taken; tests/runtime/test_codec.py compares both paths.
# Classes using attrs features the generator does not model (init=False, kw_only,
# aliases, type variables) simply keep the converter's path.


class _GiveUp(Exception):
    """A generated decoder met something only the converter may judge."""


_PLAIN_TYPES: dict[Any, str] = {int: "int", str: "str", bytes: "bytes", bool: "bool"}
_encoders: dict[type, Callable[[Any], Any]] = {}
_decoders: dict[type, Callable[[Any], Any]] = {}
_decoders_by_tag: dict[str, Callable[[Any], Any]] = {}
_building: set[tuple[str, type]] = set()


def _generated_fields(cls: type) -> tuple[Any, ...] | None:
    """The attrs fields of `cls` if the generator handles all of them, else None."""
    try:
        attrs.resolve_types(cls)
    except Exception:
        return None
    fields = attrs.fields(cls)
    for field in fields:
        kind = field.type
        if (
            not field.init
            or field.kw_only
            or field.alias != field.name
            or field.name == TAG_KEY
            or kind is None
            or isinstance(kind, (TypeVar, str))
            or kind is typing.Final
            or typing.get_origin(kind) is typing.Final
        ):
            return None
    return fields


def _late(table: dict[type, Callable[[Any], Any]], cls: type) -> Callable[[Any], Any]:
    """For a class that (indirectly) contains itself: look its function up when called."""
    return lambda value: table[cls](value)


def _compile(source: str, name: str, namespace: dict[str, Any], label: str) -> Callable[[Any], Any]:
    filename = f"<codec {label}>"
    # Registered with linecache so that tracebacks through generated code show it.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return typing.cast(Callable[[Any], Any], namespace[name])


def _encoder_of(cls: type) -> Callable[[Any], Any]:
    encoder = _encoders.get(cls)
    if encoder is not None:
        return encoder
    if ("encode", cls) in _building:
        return _late(_encoders, cls)
    _building.add(("encode", cls))
    try:
        encoder = _make_encoder(cls)
    finally:
        _building.discard(("encode", cls))
    _encoders[cls] = encoder
    return encoder


def _make_encoder(cls: type) -> Callable[[Any], Any]:
    tag = _tag_by_class[cls]
    fields = _generated_fields(cls)
    if fields is None:
        return lambda value: _slow_to_wire(value, cls)
    namespace: dict[str, Any] = {}
    items = []
    for index, field in enumerate(fields):
        kind = field.type
        if _is_message_class(kind):
            hook: Callable[[Any], Any] | None = _encoder_of(kind)
        elif _message_union_members(kind) is not None:
            hook = _encode_message_or_none
        else:
            # As cattrs' generated code does: a field whose hook is the identity is
            # copied as it is, anything else goes through its hook.
            hook = converter.get_unstructure_hook(kind, cache_result=False)
            if hook is cattrs.fns.identity:
                hook = None
        if hook is None:
            items.append(f"{field.name!r}: value.{field.name}")
        else:
            namespace[f"encode_{index}"] = hook
            items.append(f"{field.name!r}: encode_{index}(value.{field.name})")
    items.append(f"{TAG_KEY!r}: {tag!r}")
    source = "def encode(value):\n    return {" + ", ".join(items) + "}\n"
    return _compile(source, "encode", namespace, f"encoder {tag}")


def _encode_message_or_none(value: Any) -> Any:
    """A union-of-messages field: the converter dispatches on the value's class."""
    if value is None:
        return None
    cls = type(value)
    if cls in _tag_by_class:
        return _encoder_of(cls)(value)
    return converter.unstructure(value)


def _decoder_of(cls: type) -> Callable[[Any], Any]:
    """The decoder of a message class: raises (anything) on input it does not accept."""
    decoder = _decoders.get(cls)
    if decoder is not None:
        return decoder
    if ("decode", cls) in _building:
        return _late(_decoders, cls)
    _building.add(("decode", cls))
    try:
        decoder = _make_decoder(cls)
    except Exception:
        decoder = None
    finally:
        _building.discard(("decode", cls))
    if decoder is None:
        hook = converter.get_structure_hook(cls)

        def decoder(data: Any) -> Any:
            return hook(data, cls)

    _decoders[cls] = decoder
    return decoder


def _message_decoder(kind: Any) -> Callable[[Any], Any] | None:
    """A decoder for a message class or a union of messages (maybe with None)."""
    if _is_message_class(kind):
        return _decoder_of(kind)
    members = _message_union_members(kind)
    if members is None:
        return None
    by_tag = {_tag_by_class[member]: _decoder_of(member) for member in members}
    if type(None) in typing.get_args(kind):
        return lambda value: None if value is None else by_tag[value[TAG_KEY]](value)
    return lambda value: by_tag[value[TAG_KEY]](value)


def _make_decoder(cls: type) -> Callable[[Any], Any] | None:
    tag = _tag_by_class[cls]
    fields = _generated_fields(cls)
    if fields is None:
        return None
    namespace: dict[str, Any] = {"cls": cls, "GiveUp": _GiveUp, "structure_float": _structure_float}
    lines = [
        "def decode(data):",
        f"    if type(data) is not dict or len(data) != {len(fields) + 1}"
        f" or data.get({TAG_KEY!r}) != {tag!r}:",
        "        raise GiveUp",
    ]
    for index, field in enumerate(fields):
        lines.append(f"    v{index} = data[{field.name!r}]")
        lines.extend(_decode_field(f"v{index}", field.type, namespace))
    arguments = ", ".join(f"v{index}" for index in range(len(fields)))
    lines.append(f"    return cls({arguments})")
    return _compile("\n".join(lines) + "\n", "decode", namespace, f"decoder {tag}")


def _decode_field(value: str, kind: Any, namespace: dict[str, Any]) -> list[str]:
    """Lines that check (and convert) the variable `value`, a field of type `kind`."""
    if kind in _PLAIN_TYPES:
        return [f"    if type({value}) is not {_PLAIN_TYPES[kind]}:", "        raise GiveUp"]
    if kind is float:
        return [f"    if type({value}) is not float:", f"        {value} = structure_float({value}, None)"]
    if kind is Any:
        return []
    decoder = _message_decoder(kind)
    if decoder is not None:
        namespace[f"decode_{value}"] = decoder
        return [f"    {value} = decode_{value}({value})"]
    origin = typing.get_origin(kind)
    arguments = typing.get_args(kind)
    homogeneous = (origin is list and len(arguments) == 1) or (
        origin is tuple and len(arguments) == 2 and arguments[1] is Ellipsis
    )
    element = _message_decoder(arguments[0]) if homogeneous else None
    if element is not None:
        namespace[f"decode_{value}"] = element
        make = "list" if origin is list else "tuple"
        return [
            f"    if type({value}) is not list:",
            "        raise GiveUp",
            f"    {value} = {make}([decode_{value}(item) for item in {value}])",
        ]
    namespace[f"hook_{value}"] = converter.get_structure_hook(kind)
    namespace[f"type_{value}"] = kind
    return [f"    {value} = hook_{value}({value}, type_{value})"]


def to_wire(value: Any) -> Any:
    """A registered message (or None) as plain msgpack-able data."""
    if value is None:
        return None
    cls = type(value)
    encoder = _encoders.get(cls)
    if encoder is None and cls not in _tag_by_class:
        raise EncodeError(f"{cls.__qualname__} is not a registered message")
    try:
        if encoder is None:
            encoder = _encoder_of(cls)
        return encoder(value)
    except Exception as error:
        raise EncodeError(f"cannot encode {cls.__qualname__}: {error}") from error


def from_wire(data: Any) -> Any:
    """The inverse of `to_wire`; raises only DecodeError."""
    if data is None:
        return None
    if type(data) is not dict:
        raise DecodeError(f"a message is a map, got {type(data).__name__}")
    tag = data.get(TAG_KEY)
    if type(tag) is str:
        decoder = _decoders_by_tag.get(tag)
        if decoder is not None:
            try:
                return decoder(data)
            except Exception:
                pass  # the converter decodes it again and names what is wrong
    cls = _class_by_tag.get(tag) if type(tag) is str else None
    if cls is None:
        raise DecodeError(f"unknown message tag {tag!r}")
    try:
        if tag not in _decoders_by_tag:
            _decoders_by_tag[tag] = _decoder_of(cls)  # type: ignore[index]
        return _slow_from_wire(data, cls)
    except DecodeError as error:
        raise DecodeError(f"{tag}: {error}") from None
    except RecursionError:
        raise DecodeError(f"{tag}: nested too deeply") from None
    except Exception as error:
        raise DecodeError(f"{tag}: {_describe(error)}") from None


def _describe(error: BaseException) -> str:
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        return f"unknown fields {sorted(map(str, error.extra_fields))}"
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}" if error.args else "missing field"
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"


_packers = threading.local()


def pack(data: Any) -> bytes:
    """Plain data → msgpack; raises EncodeError (e.g. an int beyond 64 bits)."""
    # A Packer per thread, reused: creating one per call costs more than packing.
    packer = getattr(_packers, "packer", None)
    if packer is None:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    try:
        return packer.pack(data)
    except (OverflowError, TypeError, ValueError) as error:
        packer.reset()
        raise EncodeError(f"cannot encode: {error}") from error


_unpackb = msgpack.unpackb


def unpack(frame: bytes) -> Any:
    """msgpack bytes → data; raises only DecodeError."""
    try:
        # raw=False and use_list=True are msgpack's defaults; map keys may be any type.
        return _unpackb(frame, strict_map_key=False)
    except Exception as error:
        raise DecodeError(f"malformed msgpack: {type(error).__name__}: {error}") from None


def encode(value: Any) -> bytes:
    """A registered message → bytes."""
    return pack(to_wire(value))


def decode(frame: bytes) -> Any:
    """bytes → the registered message they encode; raises only DecodeError."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(frame).__name__}")
    return from_wire(unpack(bytes(frame)))
