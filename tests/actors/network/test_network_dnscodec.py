"""The DNS codec: known bytes, round trips, and arbitrary bytes never escaping as crashes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.network import dnscodec
from actors.network.dnscodec import DnsFormatError, Message, Question, Record

labels = st.binary(min_size=1, max_size=20)
names = st.lists(labels, min_size=0, max_size=5).map(tuple)


@st.composite
def records(draw: st.DrawFn) -> Record:
    name = draw(names)
    kind = draw(st.sampled_from(["a", "aaaa", "ptr", "cname", "txt", "other"]))
    ttl = draw(st.integers(0, 2**32 - 1))
    rclass = draw(st.integers(0, 0xFFFF))
    if kind == "a":
        return Record(name, dnscodec.TYPE_A, rclass, ttl, draw(st.binary(min_size=4, max_size=4)))
    if kind == "aaaa":
        return Record(name, dnscodec.TYPE_AAAA, rclass, ttl, draw(st.binary(min_size=16, max_size=16)))
    if kind in ("ptr", "cname"):
        rtype = dnscodec.TYPE_PTR if kind == "ptr" else dnscodec.TYPE_CNAME
        return Record(name, rtype, rclass, ttl, dnscodec.encode_name_uncompressed(draw(names)))
    rtype = dnscodec.TYPE_TXT if kind == "txt" else draw(st.sampled_from([99, 16, 41, 257]))
    return Record(name, rtype, rclass, ttl, draw(st.binary(max_size=40)))


messages = st.builds(
    Message,
    id=st.integers(0, 0xFFFF),
    is_response=st.booleans(),
    opcode=st.integers(0, 15),
    authoritative=st.booleans(),
    truncated=st.booleans(),
    recursion_desired=st.booleans(),
    recursion_available=st.booleans(),
    authentic_data=st.booleans(),
    checking_disabled=st.booleans(),
    rcode=st.integers(0, 15),
    questions=st.lists(
        st.builds(Question, names, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)), max_size=3
    ).map(tuple),
    answers=st.lists(records(), max_size=4).map(tuple),
    authorities=st.lists(records(), max_size=2).map(tuple),
    additionals=st.lists(records(), max_size=2).map(tuple),
)


@given(messages)
def test_round_trip(message: Message) -> None:
    encoded = dnscodec.encode(message)
    assert dnscodec.decode(encoded) == message
    # Encoding is a function of the message: decoding and encoding again is stable.
    assert dnscodec.encode(dnscodec.decode(encoded)) == encoded


@given(st.binary(max_size=600))
def test_arbitrary_bytes_decode_or_raise_format_error(data: bytes) -> None:
    try:
        message = dnscodec.decode(data)
    except DnsFormatError:
        return
    assert dnscodec.decode(dnscodec.encode(message)) == message


@given(messages, st.data())
def test_mutated_messages_never_crash(message: Message, data: st.DataObject) -> None:
    encoded = bytearray(dnscodec.encode(message))
    if encoded:
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(0, len(encoded) - 1))
            encoded[index] = data.draw(st.integers(0, 255))
    try:
        dnscodec.decode(bytes(encoded))
    except DnsFormatError:
        pass


def test_decodes_a_known_query() -> None:
    # A query for "web.net" type A, RD set, as dig would send it.
    data = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x03web\x03net\x00" + b"\x00\x01\x00\x01"
    message = dnscodec.decode(data)
    assert message.id == 0x1234
    assert message.recursion_desired and not message.is_response
    assert message.questions == (Question((b"web", b"net"), dnscodec.TYPE_A, dnscodec.CLASS_IN),)
    assert dnscodec.encode(message) == data


def test_compression_is_used_and_followed() -> None:
    name = dnscodec.name_from_text("web.mynet")
    query = Message(id=1, questions=(Question(name),))
    response = dnscodec.response_to(query, dnscodec.RCODE_NOERROR, [dnscodec.a_record(name, "172.28.0.2", 600)])
    encoded = dnscodec.encode(response)
    assert encoded.count(b"\x03web") == 1  # the answer's owner name is a pointer
    assert dnscodec.decode(encoded).answers[0].rdata == bytes([172, 28, 0, 2])


def test_pointer_loops_and_forward_pointers_are_rejected() -> None:
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    with pytest.raises(DnsFormatError, match="backwards"):
        dnscodec.decode(header + b"\xc0\x0c\x00\x01\x00\x01")  # points at itself
    with pytest.raises(DnsFormatError, match="backwards"):
        dnscodec.decode(header + b"\xc0\x20\x00\x01\x00\x01")
    with pytest.raises(DnsFormatError, match="shorter than a header"):
        dnscodec.decode(b"\x00\x01")
    with pytest.raises(DnsFormatError, match="after the last record"):
        dnscodec.decode(header + b"\x00\x00\x01\x00\x01extra")


def test_reverse_names() -> None:
    assert dnscodec.reverse_pointer_name("172.28.0.2") == (b"2", b"0", b"28", b"172", b"in-addr", b"arpa")
    assert dnscodec.address_from_reverse_name(dnscodec.name_from_text("2.0.28.172.IN-ADDR.ARPA")) == "172.28.0.2"
    assert dnscodec.address_from_reverse_name(dnscodec.name_from_text("2.0.28.in-addr.arpa")) is None
    assert dnscodec.address_from_reverse_name(dnscodec.name_from_text("999.0.28.1.in-addr.arpa")) is None


def test_udp_truncation_sets_tc() -> None:
    name = dnscodec.name_from_text("many")
    query = Message(id=7, questions=(Question(name),))
    answers = [dnscodec.a_record(name, f"10.0.{i // 250}.{i % 250 + 1}", 600) for i in range(60)]
    response = dnscodec.response_to(query, dnscodec.RCODE_NOERROR, answers)
    data = dnscodec.fit_for_udp(response, 512)
    decoded = dnscodec.decode(data)
    assert decoded.truncated and decoded.answers == () and len(data) <= 512
    assert len(dnscodec.decode(dnscodec.fit_for_udp(response, 4096)).answers) == 60


def test_names_text_forms() -> None:
    assert dnscodec.name_from_text("a.b.") == (b"a", b"b")
    assert dnscodec.name_from_text(".") == ()
    assert dnscodec.name_to_text((b"a.b", b"c")) == "a\\.b.c"
    with pytest.raises(DnsFormatError):
        dnscodec.name_from_text("a" * 64 + ".com")
