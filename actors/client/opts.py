"""Parsers for option values, with the docker CLI's rules and error wording.

Each parser raises `OptionError(message)`; callers add the flag name around it
(`invalid argument "x" for "--cpus" flag: <message>`) where docker does.
"""

import os


class OptionError(ValueError):
    pass


# --------------------------------------------------------------------------- sizes, times

_BINARY_MULTIPLIERS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DECIMAL_MULTIPLIERS = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def _parse_size(text: str, multipliers: dict) -> int:
    separator = max(text.rfind(char) for char in "0123456789. ")
    if separator < 0:
        raise OptionError(f"invalid size: '{text}'")
    if text[separator] == " ":
        number, suffix = text[:separator], text[separator + 1 :]
    else:
        number, suffix = text[: separator + 1], text[separator + 1 :]
    try:
        size = float(number)
    except ValueError:
        raise OptionError(f'strconv.ParseFloat: parsing "{number}": invalid syntax') from None
    if size < 0:
        raise OptionError(f"invalid size: '{text}'")
    if not suffix:
        return int(size)
    lowered = suffix.lower()
    if len(lowered) > 3:
        raise OptionError(f"invalid suffix: '{lowered}'")
    if lowered[0] == "b":
        if len(lowered) > 1:
            raise OptionError(f"invalid suffix: '{lowered}'")
        return int(size)
    multiplier = multipliers.get(lowered[0])
    if multiplier is None:
        raise OptionError(f"invalid suffix: '{lowered}'")
    if (len(lowered) == 2 and lowered[1] != "b") or (len(lowered) == 3 and lowered[1:] != "ib"):
        raise OptionError(f"invalid suffix: '{lowered}'")
    return int(size * multiplier)


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "64m" -> 67108864 (binary multiples, optional b/ib suffix)."""
    return _parse_size(text, _BINARY_MULTIPLIERS)


def from_human_size(text: str) -> int:
    """go-units FromHumanSize: decimal multiples ("1kB" -> 1000)."""
    return _parse_size(text, _DECIMAL_MULTIPLIERS)


def memory_swap_bytes(text: str) -> int:
    """--memory-swap: a size, or -1 for unlimited."""
    return -1 if text == "-1" else ram_in_bytes(text)


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration ("1m30s", "300ms", "-1.5h") in nanoseconds."""
    original = text
    if not text:
        raise OptionError(f'time: invalid duration "{original}"')
    sign = 1
    if text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise OptionError(f'time: invalid duration "{original}"')
    total = 0.0
    while text:
        index = 0
        while index < len(text) and (text[index].isdigit() or text[index] == "."):
            index += 1
        number = text[:index]
        if not number or number == "." or number.count(".") > 1:
            raise OptionError(f'time: invalid duration "{original}"')
        text = text[index:]
        index = 0
        while index < len(text) and not (text[index].isdigit() or text[index] == "."):
            index += 1
        unit = text[:index]
        text = text[index:]
        if not unit:
            raise OptionError(f'time: missing unit in duration "{original}"')
        if unit not in _DURATION_UNITS:
            raise OptionError(f'time: unknown unit "{unit}" in duration "{original}"')
        total += float(number) * _DURATION_UNITS[unit]
    return sign * round(total)


def format_go_duration(nanoseconds: int) -> str:
    """Go's Duration.String() for whole values: "1m30s", "5s", "0s", "300ms"."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if value >= size:
                return sign + _trim_fraction(value / size) + unit
    hours, rest = divmod(value, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = rest / 1_000_000_000
    text = ""
    if hours:
        text += f"{hours}h"
    if hours or minutes:
        text += f"{minutes}m"
    text += _trim_fraction(seconds) + "s"
    return sign + text


def _trim_fraction(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def parse_nano_cpus(text: str) -> int:
    """--cpus: a decimal number of CPUs -> NanoCpus (must be exact in nanoCPUs)."""
    from fractions import Fraction

    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise OptionError(f"failed to parse {text} as a rational number") from None
    nano = value * 1_000_000_000
    if nano.denominator != 1:
        raise OptionError("value is too precise")
    return int(nano)


# --------------------------------------------------------------------------- key=value


def validate_env(value: str, environ=None) -> str:
    """-e: "K=V" as is; "K" takes K's value from our environment when it is set."""
    environ = os.environ if environ is None else environ
    name, equals, _ = value.partition("=")
    if not name.strip() and equals:
        raise OptionError(f"invalid environment variable: {value}")
    if not equals and name in environ:
        return f"{name}={environ[name]}"
    return value


def read_env_file(path: str, environ=None) -> list[str]:
    """--env-file: "K=V" lines kept verbatim; bare "K" lines take K from our environment."""
    environ = os.environ if environ is None else environ
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise OptionError(f"open {path}: {_go_error_text(error)}") from None
    text = raw.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = []
    for line in text.splitlines():
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        name = name.lstrip(" \t")
        if any(char in name for char in " \t\n\v\f\r"):
            raise OptionError(f"variable '{name}' contains whitespaces")
        if not name:
            raise OptionError(f"no variable name on line '{line}'")
        if equals:
            lines.append(f"{name}={value}")
        elif name in environ:
            lines.append(f"{name.strip()}={environ[name]}")
    return lines


def _go_error_text(error: OSError) -> str:
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]


def validate_label(value: str) -> str:
    name = value.split("=", 1)[0]
    if not name.strip():
        raise OptionError(f"invalid label '{value}': empty name")
    return value


def labels_to_map(values: list[str]) -> dict:
    labels = {}
    for value in values:
        name, _, text = value.partition("=")
        labels[name] = text
    return labels


def read_label_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            content = handle.read()
    except OSError as error:
        raise OptionError(f"open {path}: {_go_error_text(error)}") from None
    return [line.strip() for line in content.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def validate_extra_host(value: str) -> str:
    """--add-host "name:ip" or "name=ip" -> "name:ip" (ip may be host-gateway)."""
    name, equals, address = value.partition("=")
    if not equals:
        name, colon, address = value.partition(":")
        if not colon:
            raise OptionError(f'bad format for add-host: "{value}"')
    if not name:
        raise OptionError(f'bad format for add-host: "{value}"')
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if address != "host-gateway" and not _is_ip(address):
        raise OptionError(f'invalid IP address in add-host: "{address}"')
    return f"{name}:{address}"


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def validate_attach(value: str) -> str:
    lowered = value.lower()
    if lowered not in ("stdin", "stdout", "stderr"):
        raise OptionError("valid streams are STDIN, STDOUT and STDERR")
    return lowered


def parse_restart_policy(text: str) -> dict:
    if not text:
        return {"Name": "", "MaximumRetryCount": 0}
    name, colon, count = text.partition(":")
    if colon and not name:
        raise OptionError("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = int(count)
        except ValueError:
            raise OptionError(
                "invalid restart policy format: maximum retry count must be an integer"
            ) from None
    return {"Name": name, "MaximumRetryCount": retries}


def normalize_capabilities(values: list[str]) -> list[str] | None:
    normalized: list[str] = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        upper = value.upper()
        if upper == "ALL":
            capability = "ALL"
        else:
            capability = upper if upper.startswith("CAP_") else "CAP_" + upper
        if capability not in normalized:
            normalized.append(capability)
    return normalized or None


def effective_capabilities(add: list[str], drop: list[str]):
    """docker's EffectiveCapAddCapDrop: ALL trumps the rest; adding beats dropping."""
    capabilities_add = normalize_capabilities(add) or []
    capabilities_drop = normalize_capabilities(drop) or []
    if "ALL" in capabilities_add:
        capabilities_add = ["ALL"]
    if "ALL" in capabilities_drop:
        capabilities_drop = ["ALL"]
    capabilities_drop = [cap for cap in capabilities_drop if cap not in capabilities_add]
    return capabilities_add or None, capabilities_drop or None


def parse_detach_keys(text: str) -> bytes:
    """"ctrl-p,ctrl-q" -> b"\\x10\\x11" (docker's term.ToBytes)."""
    out = bytearray()
    for key in text.split(","):
        key = key.strip()
        if len(key) > 1 and key.lower().startswith("ctrl-"):
            rest = key[5:].lower()
            if len(rest) != 1:
                raise OptionError(f"Unknown character: '{key}'")
            char = rest
            if "a" <= char <= "z":
                out.append(ord(char) - ord("a") + 1)
            elif char in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[char])
            else:
                raise OptionError(f"Unknown character: '{key}'")
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise OptionError(f"Unknown character: '{key}'")
    return bytes(out)


# --------------------------------------------------------------------------- ports


def _split_proto_port(text: str) -> tuple[str, str]:
    parts = text.split("/")
    if not text or not parts[0]:
        return "", ""
    if len(parts) == 1:
        return "tcp", text
    if not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def parse_port_range(text: str) -> tuple[int, int]:
    if not text:
        raise OptionError("empty string specified for ports")
    start_text, dash, end_text = text.partition("-")
    try:
        start = int(start_text)
        end = int(end_text) if dash else start
    except ValueError:
        raise OptionError(f"invalid port range: {text}") from None
    if not (0 <= start <= 65535 and 0 <= end <= 65535) or end < start:
        raise OptionError(f"invalid port range: {text}")
    return start, end


def parse_port_spec(raw: str) -> list[tuple[str, dict]]:
    """One -p value -> [("80/tcp", {"HostIp": ..., "HostPort": ...}), ...]."""
    parts = raw.split(":")
    container_part = parts[-1]
    if len(parts) == 1:
        address, host_port = "", ""
    elif len(parts) == 2:
        address, host_port = "", parts[0]
    else:
        address, host_port = ":".join(parts[:-2]), parts[-2]
    proto, container_port = _split_proto_port(container_part)
    if address.startswith("["):
        if not address.endswith("]"):
            raise OptionError(f"invalid IP address {address}: missing ']' in address")
        address = address[1:-1]
    if address and not _is_ip(address):
        raise OptionError(f"invalid IP address: {address}")
    if not container_port:
        raise OptionError(f"no port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container_port)
    except OptionError:
        raise OptionError(f"invalid containerPort: {container_port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = parse_port_range(host_port)
        except OptionError:
            raise OptionError(f"invalid hostPort: {host_port}") from None
    if host_port and (end - start) != (host_end - host_start) and end != start:
        raise OptionError(
            f"invalid ranges specified for container and host Ports: "
            f"{container_port} and {host_port}"
        )
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise OptionError(f"invalid proto: {proto}")
    mappings = []
    for offset in range(end - start + 1):
        binding_port = str(host_start + offset) if host_port else ""
        if start == end and host_start != host_end:
            binding_port = f"{binding_port}-{host_end}"
        mappings.append(
            (f"{start + offset}/{proto.lower()}", {"HostIp": address, "HostPort": binding_port})
        )
    return mappings


def parse_publish(values: list[str]) -> tuple[dict, dict]:
    """All -p values -> (ExposedPorts, PortBindings)."""
    exposed: dict = {}
    bindings: dict = {}
    for value in values:
        for port, binding in parse_port_spec(value):
            exposed[port] = {}
            bindings.setdefault(port, []).append(binding)
    return exposed, bindings


def parse_expose(values: list[str]) -> dict:
    exposed: dict = {}
    for value in values:
        if ":" in value:
            raise OptionError(f"invalid port format for --expose: {value}")
        proto, port = _split_proto_port(value)
        start, end = parse_port_range(port)
        for number in range(start, end + 1):
            exposed[f"{number}/{proto}"] = {}
    return exposed


# --------------------------------------------------------------------------- volumes, mounts

_BIND_PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")


def parse_volume(spec: str) -> dict:
    """-v value -> {"Type", "Source", "Target", "ReadOnly"} (compose loader semantics)."""
    if not spec:
        raise OptionError("invalid empty volume spec")
    if len(spec) <= 2:
        return {"Type": "volume", "Source": "", "Target": spec, "ReadOnly": False}
    sections = spec.split(":")
    volume = {"Type": "volume", "Source": "", "Target": "", "ReadOnly": False}
    for index, section in enumerate(sections):
        last = index == len(sections) - 1
        if not section:
            raise OptionError(f"invalid spec: {spec}: empty section between colons")
        if not volume["Source"] and last and index == 0:
            volume["Target"] = section
        elif not volume["Source"]:
            volume["Source"] = section
        elif not volume["Target"]:
            volume["Target"] = section
        elif not last:
            raise OptionError(f"invalid spec: {spec}: too many colons")
        else:
            for option in section.split(","):
                if option == "ro":
                    volume["ReadOnly"] = True
                elif option == "rw":
                    volume["ReadOnly"] = False
    if volume["Source"] and volume["Source"][0] in "./~":
        volume["Type"] = "bind"
    return volume


def bind_string(spec: str) -> str:
    """A -v bind as the daemon gets it: a relative host path made absolute."""
    host, colon, rest = spec.partition(":")
    if colon and not host.startswith("/") and host.startswith("."):
        host = os.path.abspath(host)
    return f"{host}:{rest}" if colon else spec


def _split_csv(text: str) -> list[str]:
    import csv

    try:
        rows = list(csv.reader([text]))
    except csv.Error as error:
        raise OptionError(str(error)) from None
    return rows[0] if rows else []


_TRUE_WORDS = ("1", "t", "T", "true", "TRUE", "True")
_FALSE_WORDS = ("0", "f", "F", "false", "FALSE", "False")


def _bool_value(key: str, value: str | None) -> bool:
    if value is None:
        return True
    if value in _TRUE_WORDS:
        return True
    if value in _FALSE_WORDS:
        return False
    raise OptionError(f"invalid value for {key}: {value}")


def parse_mount(text: str) -> dict:
    """--mount "type=bind,src=/a,dst=/b,readonly" -> a HostConfig.Mounts entry."""
    mount: dict = {"Type": "volume"}
    source = target = ""
    read_only = False
    bind: dict = {}
    volume: dict | None = None
    tmpfs: dict = {}

    def volume_options() -> dict:
        nonlocal volume
        if volume is None:
            volume = {"Labels": {}, "DriverConfig": {}}
        return volume

    for field in _split_csv(text):
        key, equals, value = field.partition("=")
        key = key.strip().lower()
        raw_value: str | None = value if equals else None
        if key == "type":
            mount["Type"] = value.lower()
        elif key in ("source", "src"):
            source = value
        elif key in ("target", "dst", "destination"):
            target = value
        elif key in ("readonly", "ro"):
            read_only = _bool_value(key, raw_value)
        elif key == "consistency":
            mount["Consistency"] = value
        elif key == "bind-propagation":
            bind["Propagation"] = value.lower()
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = _bool_value(key, raw_value)
        elif key == "volume-nocopy":
            volume_options()["NoCopy"] = _bool_value(key, raw_value)
        elif key == "volume-label":
            name, _, label = value.partition("=")
            volume_options()["Labels"][name] = label
        elif key == "volume-driver":
            volume_options()["DriverConfig"]["Name"] = value
        elif key == "volume-opt":
            name, opt_equals, option = value.partition("=")
            if not opt_equals:
                raise OptionError(f"invalid value for volume-opt: {value}")
            volume_options()["DriverConfig"].setdefault("Options", {})[name] = option
        elif key == "volume-subpath":
            volume_options()["Subpath"] = value
        elif key == "tmpfs-size":
            try:
                tmpfs["SizeBytes"] = ram_in_bytes(value)
            except OptionError:
                raise OptionError(f"invalid value for tmpfs-size: {value}") from None
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(value, 8)
            except ValueError:
                raise OptionError(f"invalid value for tmpfs-mode: {value}") from None
        else:
            raise OptionError(f"unexpected key '{key}' in '{field}'")
    kind = mount["Type"]
    if kind not in ("bind", "volume", "tmpfs", "image", "npipe", "cluster"):
        raise OptionError(f"invalid mount type '{kind}'")
    if not target:
        raise OptionError("target is required")
    if volume is not None and kind != "volume":
        raise OptionError(f"cannot mix 'volume-*' options with mount type '{kind}'")
    if bind and kind != "bind":
        raise OptionError(f"cannot mix 'bind-*' options with mount type '{kind}'")
    if tmpfs and kind != "tmpfs":
        raise OptionError(f"cannot mix 'tmpfs-*' options with mount type '{kind}'")
    if kind == "bind" and not source:
        raise OptionError("source is required when specifying bind mounts")
    result = {"Type": kind}
    if source:
        result["Source"] = source
    result["Target"] = target
    if read_only:
        result["ReadOnly"] = True
    if "Consistency" in mount:
        result["Consistency"] = mount["Consistency"]
    if bind:
        result["BindOptions"] = bind
    if volume is not None:
        options = {}
        if volume.get("NoCopy"):
            options["NoCopy"] = True
        if volume["Labels"]:
            options["Labels"] = volume["Labels"]
        options["DriverConfig"] = volume["DriverConfig"]
        if volume.get("Subpath"):
            options["Subpath"] = volume["Subpath"]
        result["VolumeOptions"] = options
    if tmpfs:
        result["TmpfsOptions"] = tmpfs
    return result


def parse_tmpfs(value: str) -> tuple[str, str]:
    path, _, options = value.partition(":")
    if not path.startswith("/"):
        raise OptionError(f"invalid tmpfs mount path {path!r}: must be absolute")
    return path, options


def parse_network(value: str) -> dict:
    """--network "name" or the advanced "name=n,alias=a,ip=x,ip6=y,driver-opt=k=v"."""
    if "=" not in value:
        return {"Target": value, "Aliases": [], "IPv4": "", "IPv6": "", "DriverOpts": {}}
    attachment = {"Target": "", "Aliases": [], "IPv4": "", "IPv6": "", "DriverOpts": {}}
    for field in _split_csv(value):
        key, equals, text = field.partition("=")
        key = key.strip().lower()
        if not equals:
            raise OptionError(f"invalid field '{field}' must be a key=value pair")
        if key == "name":
            attachment["Target"] = text
        elif key == "alias":
            attachment["Aliases"].append(text)
        elif key == "ip":
            attachment["IPv4"] = text
        elif key == "ip6":
            attachment["IPv6"] = text
        elif key == "driver-opt":
            name, _, option = text.partition("=")
            attachment["DriverOpts"][name] = option
        else:
            raise OptionError(f"invalid field key {key}")
    if not attachment["Target"]:
        raise OptionError("network name is required")
    return attachment
