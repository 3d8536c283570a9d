"""A small DNS message codec (RFC 1035, with EDNS OPT records kept as they are).

Enough for the embedded DNS server: decode any query, encode our answers (A, PTR, and
whatever else is given as raw rdata), and pick apart upstream answers far enough to check
them. Names are tuples of byte labels so any name round-trips, dots inside labels included.

Decoding is defensive: every malformed input raises `DnsFormatError` and nothing else.
Compression pointers are followed a bounded number of times and must point backwards, so
a hostile message cannot loop or read outside itself.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

import attrs

Name = tuple[bytes, ...]

TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_OPT = 41
TYPE_ANY = 255
CLASS_IN = 1

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5

OPCODE_QUERY = 0

HEADER_BYTES = 12
LABEL_BYTES_MAX = 63
NAME_BYTES_MAX = 255
POINTER_JUMPS_MAX = 32
MESSAGE_BYTES_MAX = 65535
# Record types whose rdata is exactly one domain name (decompressed on decode).
_NAME_RDATA_TYPES = frozenset({TYPE_NS, TYPE_CNAME, TYPE_PTR})


class DnsFormatError(ValueError):
    """Bytes that are not a well-formed DNS message (the sender's fault)."""


@attrs.frozen
class Question:
    name: Name
    qtype: int = TYPE_A
    qclass: int = CLASS_IN


@attrs.frozen
class Record:
    """A resource record; `rdata` is raw bytes, except that name-valued types hold the
    encoded uncompressed name (so it can be re-encoded into another message)."""

    name: Name
    rtype: int
    rclass: int
    ttl: int
    rdata: bytes


@attrs.frozen
class Message:
    id: int
    is_response: bool = False
    opcode: int = OPCODE_QUERY
    authoritative: bool = False
    truncated: bool = False
    recursion_desired: bool = False
    recursion_available: bool = False
    authentic_data: bool = False
    checking_disabled: bool = False
    rcode: int = RCODE_NOERROR
    questions: tuple[Question, ...] = ()
    answers: tuple[Record, ...] = ()
    authorities: tuple[Record, ...] = ()
    additionals: tuple[Record, ...] = ()

    @property
    def flags(self) -> int:
        return (
            (self.is_response << 15)
            | ((self.opcode & 0xF) << 11)
            | (self.authoritative << 10)
            | (self.truncated << 9)
            | (self.recursion_desired << 8)
            | (self.recursion_available << 7)
            | (self.authentic_data << 5)
            | (self.checking_disabled << 4)
            | (self.rcode & 0xF)
        )

    def edns_payload_bytes(self) -> int:
        """The UDP payload size the sender accepts: 512 unless it sent an OPT record."""
        for record in self.additionals:
            if record.rtype == TYPE_OPT:
                return max(512, record.rclass)
        return 512


# ---- names -----------------------------------------------------------------------------------


def name_from_text(text: str) -> Name:
    """"web.mynet." or "web.mynet" -> (b"web", b"mynet"); "" and "." are the root."""
    stripped = text.rstrip(".")
    if not stripped:
        return ()
    try:
        labels = tuple(label.encode("ascii") for label in stripped.split("."))
    except UnicodeEncodeError:
        raise DnsFormatError(f"name {text!r} is not ASCII (use its punycode form)") from None
    _check_name(labels)
    return labels


def name_to_text(name: Name) -> str:
    """Labels joined with dots; non-printable bytes and dots inside labels escaped."""
    if not name:
        return "."
    return ".".join(_escape_label(label) for label in name)


def _escape_label(label: bytes) -> str:
    out = []
    for byte in label:
        character = chr(byte)
        if character in ".\\":
            out.append("\\" + character)
        elif 0x21 <= byte <= 0x7E:
            out.append(character)
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


def _check_name(labels: Sequence[bytes]) -> None:
    if any(not label or len(label) > LABEL_BYTES_MAX for label in labels):
        raise DnsFormatError("a label is empty or longer than 63 bytes")
    if sum(len(label) + 1 for label in labels) + 1 > NAME_BYTES_MAX:
        raise DnsFormatError("name longer than 255 bytes")


def encode_name_uncompressed(name: Name) -> bytes:
    _check_name(name)
    return b"".join(bytes([len(label)]) + label for label in name) + b"\x00"


def reverse_pointer_name(address: str) -> Name:
    """172.28.0.2 -> 2.0.28.172.in-addr.arpa."""
    return name_from_text(ipaddress.IPv4Address(address).reverse_pointer)


def address_from_reverse_name(name: Name) -> str | None:
    """The IPv4 address a PTR query name stands for, or None if it is not one."""
    lowered = tuple(label.lower() for label in name)
    if len(lowered) != 6 or lowered[4:] != (b"in-addr", b"arpa"):
        return None
    octets = lowered[:4]
    if not all(octet.isdigit() and len(octet) <= 3 and int(octet) <= 255 for octet in octets):
        return None
    return ".".join(octet.decode() for octet in reversed(octets))


# ---- decoding --------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, count: int) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise DnsFormatError(f"message ends early at byte {len(self.data)} (needed {end})")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def name(self) -> Name:
        labels: list[bytes] = []
        total = 1
        position = self.offset
        jumps = 0
        resume: int | None = None
        while True:
            if position >= len(self.data):
                raise DnsFormatError("name runs past the end of the message")
            length = self.data[position]
            if length & 0xC0 == 0xC0:
                if position + 1 >= len(self.data):
                    raise DnsFormatError("truncated compression pointer")
                target = ((length & 0x3F) << 8) | self.data[position + 1]
                if target >= position:
                    raise DnsFormatError("compression pointer does not point backwards")
                jumps += 1
                if jumps > POINTER_JUMPS_MAX:
                    raise DnsFormatError("too many compression pointers")
                if resume is None:
                    resume = position + 2
                position = target
                continue
            if length & 0xC0:
                raise DnsFormatError(f"unsupported label type 0x{length & 0xC0:02x}")
            position += 1
            if length == 0:
                break
            label = self.data[position : position + length]
            if len(label) != length:
                raise DnsFormatError("label runs past the end of the message")
            total += length + 1
            if total > NAME_BYTES_MAX:
                raise DnsFormatError("name longer than 255 bytes")
            labels.append(label)
            position += length
        self.offset = resume if resume is not None else position
        return tuple(labels)


def _decode_record(reader: _Reader) -> Record:
    name = reader.name()
    rtype, rclass, ttl, length = reader.unpack("!HHIH")
    start = reader.offset
    if rtype in _NAME_RDATA_TYPES:
        target = reader.name()
        if reader.offset - start != length:
            raise DnsFormatError(f"rdata length {length} does not match its name")
        rdata = encode_name_uncompressed(target)
    else:
        rdata = reader.take(length)
        if rtype == TYPE_A and length != 4:
            raise DnsFormatError(f"A record with {length} bytes of rdata")
        if rtype == TYPE_AAAA and length != 16:
            raise DnsFormatError(f"AAAA record with {length} bytes of rdata")
    return Record(name, rtype, rclass, ttl, rdata)


def decode(data: bytes) -> Message:
    """Bytes to a Message; DnsFormatError on anything malformed (trailing bytes included)."""
    if len(data) < HEADER_BYTES:
        raise DnsFormatError(f"message of {len(data)} bytes is shorter than a header")
    if len(data) > MESSAGE_BYTES_MAX:
        raise DnsFormatError("message longer than 65535 bytes")
    reader = _Reader(data)
    identifier, flags, qd, an, ns, ar = reader.unpack("!HHHHHH")
    questions = []
    for _ in range(qd):
        name = reader.name()
        qtype, qclass = reader.unpack("!HH")
        questions.append(Question(name, qtype, qclass))
    sections: list[list[Record]] = [[], [], []]
    for section, count in zip(sections, (an, ns, ar), strict=True):
        for _ in range(count):
            section.append(_decode_record(reader))
    if reader.offset != len(data):
        raise DnsFormatError(f"{len(data) - reader.offset} bytes after the last record")
    return Message(
        id=identifier,
        is_response=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        authoritative=bool(flags & 0x0400),
        truncated=bool(flags & 0x0200),
        recursion_desired=bool(flags & 0x0100),
        recursion_available=bool(flags & 0x0080),
        authentic_data=bool(flags & 0x0020),
        checking_disabled=bool(flags & 0x0010),
        rcode=flags & 0xF,
        questions=tuple(questions),
        answers=tuple(sections[0]),
        authorities=tuple(sections[1]),
        additionals=tuple(sections[2]),
    )


# ---- encoding --------------------------------------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.suffixes: dict[tuple[bytes, ...], int] = {}

    def name(self, name: Name) -> None:
        _check_name(name)
        for index in range(len(name)):
            suffix = name[index:]  # exact case: resolvers using 0x20 randomisation check it
            known = self.suffixes.get(suffix)
            if known is not None:
                self.buffer += struct.pack("!H", 0xC000 | known)
                return
            if len(self.buffer) < 0x3FFF:
                self.suffixes[suffix] = len(self.buffer)
            label = name[index]
            self.buffer += bytes([len(label)]) + label
        self.buffer += b"\x00"

    def record(self, record: Record) -> None:
        self.name(record.name)
        if record.rtype in _NAME_RDATA_TYPES:
            target = _Reader(record.rdata).name()
            self.buffer += struct.pack("!HHIH", record.rtype, record.rclass, record.ttl, 0)
            length_at = len(self.buffer) - 2
            start = len(self.buffer)
            self.name(target)
            struct.pack_into("!H", self.buffer, length_at, len(self.buffer) - start)
        else:
            if len(record.rdata) > 0xFFFF:
                raise DnsFormatError("rdata longer than 65535 bytes")
            self.buffer += struct.pack("!HHIH", record.rtype, record.rclass, record.ttl, len(record.rdata))
            self.buffer += record.rdata


def encode(message: Message) -> bytes:
    """A Message to bytes, names compressed. DnsFormatError if a field cannot be encoded."""
    writer = _Writer()
    try:
        writer.buffer += struct.pack(
            "!HHHHHH",
            message.id,
            message.flags,
            len(message.questions),
            len(message.answers),
            len(message.authorities),
            len(message.additionals),
        )
        for question in message.questions:
            writer.name(question.name)
            writer.buffer += struct.pack("!HH", question.qtype, question.qclass)
        for record in (*message.answers, *message.authorities, *message.additionals):
            writer.record(record)
    except struct.error as error:
        raise DnsFormatError(f"field out of range: {error}") from None
    if len(writer.buffer) > MESSAGE_BYTES_MAX:
        raise DnsFormatError("message longer than 65535 bytes")
    return bytes(writer.buffer)


def a_record(name: Name, address: str, ttl: int) -> Record:
    return Record(name, TYPE_A, CLASS_IN, ttl, ipaddress.IPv4Address(address).packed)


def ptr_record(name: Name, target: Name, ttl: int) -> Record:
    return Record(name, TYPE_PTR, CLASS_IN, ttl, encode_name_uncompressed(target))


def response_to(
    query: Message, rcode: int, answers: Sequence[Record] = (), *, authoritative: bool = False
) -> Message:
    """A response echoing the query's id, question, RD bit and EDNS record."""
    opt = tuple(
        Record((), TYPE_OPT, 4096, 0, b"") for record in query.additionals if record.rtype == TYPE_OPT
    )[:1]
    return Message(
        id=query.id,
        is_response=True,
        opcode=query.opcode,
        recursion_desired=query.recursion_desired,
        recursion_available=True,
        rcode=rcode,
        questions=query.questions,
        answers=tuple(answers),
        additionals=opt,
        authoritative=authoritative,
    )


def fit_for_udp(message: Message, payload_bytes: int) -> bytes:
    """Encode; if too big for the client's UDP payload, drop answers and set TC (RFC 2181)."""
    data = encode(message)
    if len(data) <= payload_bytes:
        return data
    return encode(attrs.evolve(message, truncated=True, answers=(), authorities=()))
