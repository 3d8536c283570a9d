"""Values and functions of the Go text/template subset (see actors.client.gotemplate).

How values print (fmt's %v), what is true, how `json` encodes, and the function table: Go's
builtins plus the ones the docker CLI adds.
"""

import json

from actors.client.gotemplate_parse import TemplateError


class _NoValue:
    """What Go's text/template yields for a missing map key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


# --------------------------------------------------------------------------- values


def truth(value) -> bool:
    """Go template truthiness: false, 0, nil, empty string/slice/map are false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def _format_float(value: float) -> str:
    """Go's %v for a float64: shortest digits, exponent form when exp < -4 or >= 6."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    text = repr(abs(value))
    sign = "-" if value < 0 else ""
    mantissa, _, exponent_text = text.partition("e")
    integer, _, fraction = mantissa.partition(".")
    digits = integer + fraction
    # `point` is where the decimal point falls, counted in digits from the left.
    point = len(integer) + (int(exponent_text) if exponent_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def format_value(value) -> str:
    """fmt's %v for template values."""
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: str(item[0]))
        return "map[" + " ".join(f"{format_value(k)}:{format_value(v)}" for k, v in items) + "]"
    text = getattr(value, "template_string", None)
    if callable(text):
        return text()
    return str(value)


def _looks_like_struct(mapping: dict) -> bool:
    """Go marshals structs in field order but maps with sorted keys; JSON objects whose keys
    all look like exported Go field names are taken for structs."""
    return all(isinstance(key, str) and key[:1].isupper() and key.replace("_", "").isalnum()
               for key in mapping)


def _json_ready(value):
    if value is NO_VALUE:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        items = value.items() if _looks_like_struct(value) else sorted(
            value.items(), key=lambda item: str(item[0]))
        return {str(key): _json_ready(item) for key, item in items}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    to_json = getattr(value, "template_json", None)
    if callable(to_json):
        return _json_ready(to_json())
    return value


def to_json(value) -> str:
    """docker's `json` function: compact JSON, no HTML escaping, no trailing newline.

    A context object marshals itself with Go's default json.Marshal, which does escape
    <, > and & (that is what `--format json` prints), so those keep the escapes.
    """
    text = json.dumps(_json_ready(value), ensure_ascii=False, separators=(",", ":"))
    if callable(getattr(value, "template_json", None)):
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


# --------------------------------------------------------------------------- functions


def _index(item, *keys):
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, NO_VALUE)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise TemplateError(f"cannot index slice/array with type {type(key).__name__}")
            if not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key]
        elif item is None or item is NO_VALUE:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"can't index item of type {type(item).__name__}")
    return item


def _slice(item, *bounds):
    if not isinstance(item, (list, tuple, str)):
        raise TemplateError(f"can't slice item of type {type(item).__name__}")
    if len(bounds) > 2:
        raise TemplateError("too many slice indexes")
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise TemplateError(f"error calling slice: index out of range: {start}:{end}")
    return item[start:end]


def _length(item):
    if isinstance(item, (list, tuple, dict, str)):
        return len(item)
    raise TemplateError(f"error calling len: len of type {type(item).__name__}")


def _sprint(*args) -> str:
    out = []
    for position, arg in enumerate(args):
        if position and not isinstance(arg, str) and not isinstance(args[position - 1], str):
            out.append(" ")
        out.append(format_value(arg))
    return "".join(out)


def _sprintln(*args) -> str:
    return " ".join(format_value(arg) for arg in args) + "\n"


def _sprintf(pattern: str, *args) -> str:
    out = []
    index = 0
    argument = 0
    while index < len(pattern):
        char = pattern[index]
        if char != "%":
            out.append(char)
            index += 1
            continue
        end = index + 1
        while end < len(pattern) and pattern[end] in "-+# 0123456789.":
            end += 1
        if end >= len(pattern):
            out.append("%!(NOVERB)")
            break
        verb = pattern[end]
        flags = pattern[index + 1 : end]
        index = end + 1
        if verb == "%":
            out.append("%")
            continue
        if argument >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[argument]
        argument += 1
        if verb in "sv":
            text = format_value(value)
        elif verb == "q":
            text = json.dumps(format_value(value), ensure_ascii=False)
        elif verb == "t":
            text = format_value(value)
        elif verb in "dxXob" and isinstance(value, int) and not isinstance(value, bool):
            python_verb = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
            text = format(value, python_verb)
        elif verb in "feEgG" and isinstance(value, (int, float)):
            precision = flags.split(".")[1] if "." in flags else "6"
            flags = flags.split(".")[0]
            text = format(float(value), f".{precision}{verb}")
        else:
            text = f"%!{verb}({type(value).__name__}={format_value(value)})"
        width_text = flags.lstrip("-+# 0")
        if "." in width_text:
            width_text = width_text.split(".")[0]
        if width_text.isdigit():
            width = int(width_text)
            text = text.ljust(width) if "-" in flags else text.rjust(width)
        out.append(text)
    if argument < len(args):
        extra = ", ".join(f"{type(a).__name__}={format_value(a)}" for a in args[argument:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _compare(name: str):
    def compare(left, *rights):
        if not rights:
            raise TemplateError(f"error calling {name}: missing argument for comparison")
        for right in rights if name == "eq" else rights[:1]:
            left_value = None if left is NO_VALUE else left
            right_value = None if right is NO_VALUE else right
            if name in ("eq", "ne"):
                equal = left_value == right_value
                if name == "eq":
                    if equal:
                        return True
                    continue
                return not equal
            try:
                if name == "lt":
                    return left_value < right_value
                if name == "le":
                    return left_value <= right_value
                if name == "gt":
                    return left_value > right_value
                return left_value >= right_value
            except TypeError:
                raise TemplateError(
                    f"error calling {name}: incompatible types for comparison"
                ) from None
        return False

    return compare


def _title(text) -> str:
    text = format_value(text)
    out = []
    previous = " "
    for char in text:
        out.append(char.upper() if not (previous.isalnum() or previous in "_'") else char)
        previous = char
    return "".join(out)


def _truncate(text, length) -> str:
    text = format_value(text)
    return text[:length] if len(text) > length else text


def _split(text, separator):
    return format_value(text).split(separator) if separator else list(format_value(text))


def _join(items, separator) -> str:
    if isinstance(items, (list, tuple)):
        return separator.join(format_value(item) for item in items)
    return format_value(items)


def _html(*args) -> str:
    text = _sprint(*args)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


def _js(*args) -> str:
    return json.dumps(_sprint(*args))[1:-1].replace("'", "\\'").replace("<", "\\u003C")


def _urlquery(*args) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint(*args))


# Functions whose arguments are evaluated lazily (Go's and/or short-circuit).
LAZY_FUNCTIONS = {"and", "or"}

FUNCTIONS = {
    "not": lambda value: not truth(value),
    "len": _length,
    "index": _index,
    "slice": _slice,
    "print": _sprint,
    "printf": _sprintf,
    "println": _sprintln,
    "eq": _compare("eq"),
    "ne": _compare("ne"),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
    "html": _html,
    "js": _js,
    "urlquery": _urlquery,
    "json": to_json,
    "split": _split,
    "join": _join,
    "title": _title,
    "lower": lambda text: format_value(text).lower(),
    "upper": lambda text: format_value(text).upper(),
    "pad": lambda text, before, after: " " * before + format_value(text) + " " * after,
    "truncate": _truncate,
}

# docker renders table headers by running the template over a map of header names with
# these functions, which leave the header text alone.
HEADER_FUNCTIONS = {
    "json": lambda value: value,
    "split": lambda value, separator: value,
    "join": lambda value, separator: value,
    "title": lambda value: value,
    "lower": lambda value: value,
    "upper": lambda value: value,
    "pad": lambda value, before, after: value,
    "truncate": lambda value, length: value,
}
