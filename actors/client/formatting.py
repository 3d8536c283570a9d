"""Docker's ways of showing things: aligned tables, human durations and sizes, ports, times.

The table layout is Go's text/tabwriter as the docker CLI configures it (minimum cell width
10, padding 3, spaces): each tab-terminated cell is padded to the widest cell of its column
block; the text after a line's last tab is not aligned.
"""

import time

from actors.units import human_duration

TABLE_MIN_WIDTH = 10
TABLE_PADDING = 3


def tabwrite(text: str, min_width: int = TABLE_MIN_WIDTH, padding: int = TABLE_PADDING) -> str:
    """Align tab-separated `text` like Go's tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)."""
    if not text:
        return text
    ends_with_newline = text.endswith("\n")
    lines = (text[:-1] if ends_with_newline else text).split("\n")
    rows = [line.split("\t") for line in lines]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for row in rows[line0:line1]:
            parts = []
            for column, cell in enumerate(row):
                if column < len(widths) and column < len(row) - 1:
                    parts.append(cell + " " * (widths[column] - len(cell)))
                else:
                    parts.append(cell)
            out.append("".join(parts))

    def format_block(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(rows[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = min_width
            while this < line1 and column < len(rows[this]) - 1:
                width = max(width, len(rows[this][column]) + padding)
                this += 1
            widths.append(width)
            format_block(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    format_block(0, len(rows))
    return "\n".join(out) + ("\n" if ends_with_newline else "")


def since(unix_seconds: float, now: float | None = None) -> str:
    """"3 minutes ago" for a unix timestamp (docker's RunningFor / CreatedSince)."""
    if now is None:
        now = time.time()
    return human_duration(now - unix_seconds) + " ago"


_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _go_g(value: float, precision: int) -> str:
    """Go's %.<precision>g (Python's %g agrees except for a two-digit exponent minimum)."""
    return f"{value:.{precision}g}"


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: decimal units, "4.26MB" with precision 3."""
    index = 0
    value = float(size)
    while value >= 1000.0 and index < len(_DECIMAL_UNITS) - 1:
        value /= 1000.0
        index += 1
    return _go_g(value, precision) + _DECIMAL_UNITS[index]


def binary_size(size: float) -> str:
    """go-units BytesSize: binary units with %.4g, "1.5MiB" (docker stats)."""
    index = 0
    value = float(size)
    while value >= 1024.0 and index < len(_BINARY_UNITS) - 1:
        value /= 1024.0
        index += 1
    return _go_g(value, 4) + _BINARY_UNITS[index]


def truncate_id(identifier: str) -> str:
    """docker's TruncateID: drop an algorithm prefix, keep 12 characters."""
    if ":" in identifier:
        identifier = identifier.split(":", 1)[1]
    return identifier[:12]


def ellipsis(text: str, width: int) -> str:
    """Shorten to `width` characters ending with "…" (docker's formatter.Ellipsis)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return text[: width - 1] + "…"


def go_quote(text: str) -> str:
    """Go's strconv.Quote for the characters commands contain."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def join_host_port(host: str, port) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def displayable_ports(ports: list[dict]) -> str:
    """Render a container's Ports like `docker ps`: "0.0.0.0:8080->80/tcp, 9000-9001/tcp"."""

    def sort_key(port: dict):
        return (
            port.get("PrivatePort") or 0,
            port.get("IP") or "",
            port.get("PublicPort") or 0,
            port.get("Type") or "",
        )

    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    host_mappings: list[str] = []
    for port in sorted(ports or [], key=sort_key):
        current = port.get("PrivatePort") or 0
        kind = port.get("Type") or ""
        key = kind
        address = port.get("IP") or ""
        if address:
            public = port.get("PublicPort") or 0
            if public != current:
                host_mappings.append(
                    f"{join_host_port(address, public)}->{current}/{kind}"
                )
                continue
            key = f"{address}/{kind}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            order.append(key)
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(_port_group(key, group[0], group[1]))
        groups[key] = [current, current]
    for key in order:
        first, last = groups[key]
        result.append(_port_group(key, first, last))
    result.extend(host_mappings)
    return ", ".join(result)


def _port_group(key: str, first: int, last: int) -> str:
    address, _, kind = key.rpartition("/")
    text = str(first) if first == last else f"{first}-{last}"
    if address:
        text = f"{join_host_port(address, text)}->{text}"
    return f"{text}/{kind}"


def natural_key(text: str) -> tuple:
    """Sort key of docker's sortorder.NaturalLess: digit runs compare as numbers."""
    import re

    parts = []
    for chunk in re.findall(r"\d+|\D+", text):
        parts.append((0, int(chunk), chunk) if chunk.isdigit() else (1, 0, chunk))
    return tuple(parts)


def go_time_string(unix_seconds: float) -> str:
    """Go's time.Time.String() in local time: "2024-05-01 10:20:30 +0200 CEST"."""
    moment = time.localtime(unix_seconds)
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", moment)


def parse_rfc3339(text: str) -> float | None:
    """Parse an RFC 3339 timestamp (nanoseconds allowed) to unix seconds; None if invalid."""
    parsed = parse_rfc3339_nanoseconds(text)
    return None if parsed is None else parsed[0] + parsed[1] / 1e9


def parse_rfc3339_nanoseconds(text: str) -> tuple[int, int] | None:
    """(unix seconds, nanoseconds) of an RFC 3339 timestamp, exactly; None if invalid."""
    import calendar

    if not text or len(text) < 19:
        return None
    try:
        base = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    rest = text[19:]
    nanoseconds = 0
    if rest.startswith("."):
        digits = ""
        index = 1
        while index < len(rest) and rest[index].isdigit():
            digits += rest[index]
            index += 1
        nanoseconds = int((digits + "000000000")[:9]) if digits else 0
        rest = rest[index:]
    offset = 0
    if rest in ("Z", "z", ""):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        try:
            offset = int(rest[1:3]) * 3600 + int(rest[4:6]) * 60
        except ValueError:
            return None
        if rest[0] == "-":
            offset = -offset
    else:
        return None
    return calendar.timegm(base) - offset, nanoseconds


def go_time_string_rfc3339(text: str) -> str:
    """Go's Time.String() of an RFC 3339 timestamp, in local time; Go's zero time if empty."""
    parsed = parse_rfc3339_nanoseconds(text or "")
    if parsed is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    seconds, nanoseconds = parsed
    moment = time.localtime(seconds)
    fraction = f".{nanoseconds:09d}".rstrip("0") if nanoseconds else ""
    return (time.strftime("%Y-%m-%d %H:%M:%S", moment) + fraction +
            time.strftime(" %z %Z", moment))


def format_rfc3339(unix_seconds: float) -> str:
    """UTC RFC 3339 with seconds: "2024-05-01T08:20:30Z"."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix_seconds))
