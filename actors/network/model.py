"""Network and endpoint records, their Docker API shapes, and Docker's error texts.

Records are frozen attrs classes of plain values so they persist as JSON and can travel
inside actor messages. The JSON builders produce exactly the shapes `GET /networks`,
`GET /networks/{id}` and `NetworkSettings.Networks[...]` have in Docker Engine API 1.45+;
clients (the docker CLI, docker-py, Compose) read these fields by name.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import cattrs

from actors import errdefs

PREDEFINED_NETWORKS = ("bridge", "host", "none")
DRIVER_BY_PREDEFINED = {"bridge": "bridge", "host": "host", "none": "null"}
DEFAULT_BRIDGE_DEVICE = "flotta0"
EMBEDDED_DNS_ADDRESS = "127.0.0.11"

# Docker's name rule for containers, volumes and networks.
_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@attrs.frozen
class IpamConfig:
    """One IPv4 pool of a network: subnet, gateway, optional allocation range."""

    subnet: str
    gateway: str = ""
    ip_range: str = ""
    aux_addresses: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class NetworkSpec:
    """What `POST /networks/create` asks for, validated."""

    name: str
    driver: str = "bridge"
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    enable_ipv4: bool = True
    enable_ipv6: bool = False
    ipam_driver: str = "default"
    ipam_options: dict[str, str] = attrs.field(factory=dict)
    ipam_configs: tuple[IpamConfig, ...] = ()
    options: dict[str, str] = attrs.field(factory=dict)
    labels: dict[str, str] = attrs.field(factory=dict)
    config_only: bool = False
    config_from: str = ""
    scope: str = "local"


@attrs.frozen
class Network:
    """A network flotta knows. `bridge_device` is "" for host/none."""

    id: str
    name: str
    created: str
    driver: str
    bridge_device: str = ""
    scope: str = "local"
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    enable_ipv4: bool = True
    enable_ipv6: bool = False
    ipam_driver: str = "default"
    ipam_options: dict[str, str] = attrs.field(factory=dict)
    ipam_configs: tuple[IpamConfig, ...] = ()
    options: dict[str, str] = attrs.field(factory=dict)
    labels: dict[str, str] = attrs.field(factory=dict)
    config_only: bool = False
    config_from: str = ""
    # True when the subnet was given by the user: Docker only allows `--ip` then.
    user_subnet: bool = False

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED_NETWORKS

    @property
    def is_default_bridge(self) -> bool:
        return self.name == "bridge" and self.driver == "bridge"

    @property
    def embedded_dns(self) -> bool:
        """User-defined bridge networks get the embedded DNS server; the default bridge does not."""
        return self.driver == "bridge" and not self.is_default_bridge

    @property
    def subnet(self) -> ipaddress.IPv4Network | None:
        return ipaddress.IPv4Network(self.ipam_configs[0].subnet) if self.ipam_configs else None

    @property
    def gateway(self) -> str:
        return self.ipam_configs[0].gateway if self.ipam_configs else ""


@attrs.frozen
class Endpoint:
    """A container's attachment to one network: its interface in the container's netns."""

    id: str
    network_id: str
    container_id: str
    container_name: str
    sandbox_key: str  # the netns path the container joins
    interface: str  # eth0, eth1, ... inside the netns ("" on host/none)
    host_interface: str  # the veth end on the bridge ("" on host/none)
    ipv4_address: str = ""
    prefix_length: int = 0
    gateway: str = ""
    mac_address: str = ""
    aliases: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    requested_ipv4: str = ""
    links: tuple[str, ...] = ()
    driver_options: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class EndpointSpec:
    """One network a container asks to join (NetworkingConfig.EndpointsConfig[...] or
    `docker network connect`); same field names as messages.EndpointRequest."""

    network: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str = ""
    ipv6_address: str = ""
    mac_address: str = ""
    links: tuple[str, ...] = ()
    driver_options: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class PortRequest:
    """One `-p [ip:]hostPort[-end]:containerPort/proto`; host_port_start 0 means ephemeral."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port_start: int = 0
    host_port_end: int = 0


@attrs.frozen
class PublishedPort:
    """A port actually published: host_ip:host_port -> container_ip:container_port."""

    container_id: str
    network_id: str
    container_ip: str
    container_port: int
    protocol: str
    host_ip: str
    host_port: int


@attrs.frozen
class NetworkMode:
    """`HostConfig.NetworkMode` parsed: kind is bridge/host/none/container/network."""

    kind: str
    value: str = ""


def parse_network_mode(mode: str) -> NetworkMode:
    """Docker's NetworkMode: "" and "default" are the default bridge."""
    if mode in ("", "default", "bridge"):
        return NetworkMode("bridge", "bridge")
    if mode in ("host", "none"):
        return NetworkMode(mode, mode)
    if mode.startswith("container:"):
        target = mode[len("container:") :]
        if not target:
            raise errdefs.InvalidParameter("invalid container format container:<name|id>")
        return NetworkMode("container", target)
    return NetworkMode("network", mode)


# ---- errors with Docker's texts -------------------------------------------------------------


def network_not_found(reference: str) -> errdefs.NotFound:
    return errdefs.NotFound(f"network {reference} not found")


def network_exists(name: str) -> errdefs.Conflict:
    return errdefs.Conflict(f"network with name {name} already exists")


def network_has_endpoints(name: str, network_id: str) -> errdefs.Forbidden:
    return errdefs.Forbidden(
        f"error while removing network: network {name} id {network_id} has active endpoints"
    )


def network_predefined(name: str) -> errdefs.Forbidden:
    return errdefs.Forbidden(f"{name} is a pre-defined network and cannot be removed")


def pool_overlaps() -> errdefs.Forbidden:
    return errdefs.Forbidden("Pool overlaps with other one on this address space")


def port_already_allocated(host_ip: str, host_port: int) -> errdefs.Conflict:
    return errdefs.Conflict(f"Bind for {host_ip or '0.0.0.0'}:{host_port} failed: port is already allocated")


# ---- parsing POST /networks/create ----------------------------------------------------------


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise errdefs.InvalidParameter("network name must not be empty")
    if not _NAME_PATTERN.match(name):
        raise errdefs.InvalidParameter(
            f'invalid network name "{name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'
        )
    return name


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise errdefs.InvalidParameter(f"{field} must be an object of strings")
    return dict(value)


def _bool(value: Any, field: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise errdefs.InvalidParameter(f"{field} must be a boolean")
    return value


def _ipv4_network(text: Any, field: str) -> ipaddress.IPv4Network:
    if not isinstance(text, str):
        raise errdefs.InvalidParameter(f"{field} must be a string")
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        if ":" in text:
            raise errdefs.InvalidParameter(f"{field} {text}: IPv6 networks are not supported") from None
        raise errdefs.InvalidParameter(f"invalid CIDR address: {text}") from None


def _ipv4_address(text: Any, field: str) -> ipaddress.IPv4Address:
    if not isinstance(text, str):
        raise errdefs.InvalidParameter(f"{field} must be a string")
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise errdefs.InvalidParameter(f"invalid {field} address: {text}") from None


def parse_ipam_config(entry: Any) -> IpamConfig:
    """One element of `IPAM.Config`, checked; subnet is normalised (host bits cleared)."""
    if not isinstance(entry, Mapping):
        raise errdefs.InvalidParameter("IPAM.Config entries must be objects")
    subnet_text = entry.get("Subnet") or ""
    if not subnet_text:
        if entry.get("Gateway") or entry.get("IPRange"):
            raise errdefs.InvalidParameter("every ip-range or gateway must have a corresponding subnet")
        raise errdefs.InvalidParameter("IPAM.Config entry without a Subnet")
    subnet = _ipv4_network(subnet_text, "subnet")
    if subnet.prefixlen > 30:
        raise errdefs.InvalidParameter(f"subnet {subnet} is too small: at least a /30 is needed")
    gateway = ""
    if entry.get("Gateway"):
        address = _ipv4_address(entry["Gateway"], "gateway")
        if address not in subnet:
            raise errdefs.InvalidParameter(f"no matching subnet for gateway {address}")
        gateway = str(address)
    ip_range = ""
    if entry.get("IPRange"):
        range_network = _ipv4_network(entry["IPRange"], "ip-range")
        if not range_network.subnet_of(subnet):
            raise errdefs.InvalidParameter(f"ip-range {range_network} is not a subset of subnet {subnet}")
        ip_range = str(range_network)
    aux = _string_map(entry.get("AuxiliaryAddresses"), "AuxiliaryAddresses")
    for key, value in aux.items():
        address = _ipv4_address(value, f"auxiliary address {key}")
        if address not in subnet:
            raise errdefs.InvalidParameter(f"auxiliary address {key}={value} is not in subnet {subnet}")
    return IpamConfig(subnet=str(subnet), gateway=gateway, ip_range=ip_range, aux_addresses=aux)


def network_spec_from_body(body: Mapping[str, Any]) -> NetworkSpec:
    """Validate a `POST /networks/create` body; the error names the field at fault."""
    if not isinstance(body, Mapping):
        raise errdefs.InvalidParameter("network create body must be a JSON object")
    name = validate_name(body.get("Name"))
    driver = body.get("Driver") or "bridge"
    if not isinstance(driver, str):
        raise errdefs.InvalidParameter("Driver must be a string")
    if driver in ("host", "null"):
        raise errdefs.Forbidden(f'only one instance of "{driver}" network is allowed')
    if driver == "overlay":
        raise errdefs.Unavailable(
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
            "to connect this node to swarm and try again."
        )
    if driver != "bridge":
        raise errdefs.NotFound(f'plugin "{driver}" not found')
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, Mapping):
        raise errdefs.InvalidParameter("IPAM must be an object")
    ipam_driver = ipam.get("Driver") or "default"
    if ipam_driver != "default":
        raise errdefs.NotFound(f'plugin "{ipam_driver}" not found')
    raw_configs = ipam.get("Config") or []
    if not isinstance(raw_configs, Sequence) or isinstance(raw_configs, str):
        raise errdefs.InvalidParameter("IPAM.Config must be a list")
    configs = tuple(parse_ipam_config(entry) for entry in raw_configs)
    if len(configs) > 1:
        raise errdefs.InvalidParameter("flotta supports one IPv4 subnet per network")
    enable_ipv6 = _bool(body.get("EnableIPv6"), "EnableIPv6", False)
    if enable_ipv6:
        raise errdefs.InvalidParameter("IPv6 networks are not supported by flotta")
    enable_ipv4 = _bool(body.get("EnableIPv4"), "EnableIPv4", True)
    if not enable_ipv4:
        raise errdefs.InvalidParameter("IPv4 cannot be disabled on a bridge network")
    if _bool(body.get("Ingress"), "Ingress", False):
        raise errdefs.Forbidden("ingress networks need swarm mode")
    config_from = body.get("ConfigFrom") or {}
    if not isinstance(config_from, Mapping):
        raise errdefs.InvalidParameter("ConfigFrom must be an object")
    if _bool(body.get("ConfigOnly"), "ConfigOnly", False) or config_from.get("Network"):
        raise errdefs.InvalidParameter("config-only networks are not supported by flotta")
    scope = body.get("Scope") or "local"
    if scope != "local":
        raise errdefs.InvalidParameter(f'scope "{scope}" is not supported by the bridge driver')
    return NetworkSpec(
        name=name,
        driver=driver,
        internal=_bool(body.get("Internal"), "Internal", False),
        attachable=_bool(body.get("Attachable"), "Attachable", False),
        enable_ipv4=True,
        enable_ipv6=False,
        ipam_driver="default",
        ipam_options=_string_map(ipam.get("Options"), "IPAM.Options"),
        ipam_configs=configs,
        options=_string_map(body.get("Options"), "Options"),
        labels=_string_map(body.get("Labels"), "Labels"),
    )


def port_requests_from_bindings(bindings: Mapping[str, Any] | None) -> list[PortRequest]:
    """`HostConfig.PortBindings` ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}) parsed."""
    requests: list[PortRequest] = []
    for key, entries in (bindings or {}).items():
        port_text, _, protocol = str(key).partition("/")
        protocol = protocol or "tcp"
        if protocol not in ("tcp", "udp"):
            raise errdefs.InvalidParameter(f"invalid proto: {protocol}")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise errdefs.InvalidParameter(f"invalid port specification: {key!r}")
        for entry in entries or [{}]:
            entry = entry or {}
            host_ip = entry.get("HostIp") or ""
            if host_ip and host_ip != "0.0.0.0":
                _ipv4_address(host_ip, "host IP")
            start, end = _host_port_range(entry.get("HostPort") or "")
            requests.append(PortRequest(int(port_text), protocol, host_ip, start, end))
    return requests


def _host_port_range(text: str) -> tuple[int, int]:
    if not text:
        return 0, 0
    first, _, last = text.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise errdefs.InvalidParameter(f"invalid hostPort: {text}")
    start, end = int(first), int(last or first)
    if not 0 < start <= end < 65536:
        raise errdefs.InvalidParameter(f"invalid hostPort: {text}")
    return start, end


# ---- lookup and filters ----------------------------------------------------------------------


def find_network(networks: Iterable[Network], reference: str) -> Network:
    """Docker's order: full ID, then exact name, then unique ID prefix."""
    candidates = list(networks)
    for network in candidates:
        if network.id == reference:
            return network
    named = [n for n in candidates if n.name == reference]
    if len(named) == 1:
        return named[0]
    by_prefix = [n for n in candidates if reference and n.id.startswith(reference)]
    if len(by_prefix) == 1:
        return by_prefix[0]
    if len(by_prefix) > 1:
        raise errdefs.InvalidParameter(
            f"network {reference} is ambiguous ({len(by_prefix)} matches found based on ID prefix)"
        )
    raise network_not_found(reference)


FILTER_KEYS = ("driver", "id", "label", "name", "scope", "type", "dangling")


def filter_networks(
    networks: Iterable[Network],
    filters: Mapping[str, Sequence[str]],
    in_use: set[str] | frozenset[str] = frozenset(),
) -> list[Network]:
    """`GET /networks?filters=...`: values of one key are OR'ed, keys are AND'ed."""
    for key in filters:
        if key not in FILTER_KEYS:
            raise errdefs.InvalidParameter(f"invalid filter '{key}'")
    for value in filters.get("type", ()):
        if value not in ("custom", "builtin"):
            raise errdefs.InvalidParameter(f"invalid filter: 'type'='{value}'")
    for value in filters.get("dangling", ()):
        if value.lower() not in ("true", "false", "1", "0"):
            raise errdefs.InvalidParameter(f"invalid filter 'dangling={value}'")

    def matches(network: Network) -> bool:
        checks = {
            "driver": lambda v: network.driver == v,
            "id": lambda v: network.id.startswith(v),
            "name": lambda v: v in network.name,
            "scope": lambda v: network.scope == v,
            "type": lambda v: network.predefined == (v == "builtin"),
            "label": lambda v: _label_matches(network.labels, v),
            "dangling": lambda v: (network.id not in in_use and not network.predefined)
            == (v.lower() in ("true", "1")),
        }
        return all(any(checks[key](value) for value in values) for key, values in filters.items() if values)

    return [network for network in networks if matches(network)]


def _label_matches(labels: Mapping[str, str], expression: str) -> bool:
    key, separator, value = expression.partition("=")
    if not separator:
        return key in labels
    return labels.get(key) == value


# ---- Docker JSON shapes -----------------------------------------------------------------------


def rfc3339_nano(seconds: float) -> str:
    """Docker's timestamp format, in UTC: 2024-05-01T12:34:56.123456789Z."""
    whole = int(seconds)
    nanoseconds = round((seconds - whole) * 1e9)
    if nanoseconds >= 1_000_000_000:
        whole, nanoseconds = whole + 1, nanoseconds - 1_000_000_000
    stamp = datetime.datetime.fromtimestamp(whole, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanoseconds:09d}Z"


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch from an RFC 3339 stamp (nanoseconds allowed)."""
    match = _RFC3339.match(text)
    if match is None:
        raise errdefs.InvalidParameter(f"invalid timestamp {text!r}")
    whole, fraction, zone = match.groups()
    stamp = datetime.datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return stamp.timestamp() + (float("0." + fraction) if fraction else 0.0)


def parse_until(value: str, now: float) -> float:
    """A prune `until` filter: a Go duration ("24h", "1h30m"), Unix seconds or RFC 3339."""
    compact = value.replace(" ", "")
    if _DURATION.match(compact):
        return now - sum(float(amount) * _DURATION_UNITS[unit] for amount, unit in _DURATION_PART.findall(compact))
    try:
        return float(value)
    except ValueError:
        return parse_rfc3339(value)


def _ipam_config_json(config: IpamConfig) -> dict[str, Any]:
    result: dict[str, Any] = {"Subnet": config.subnet}
    if config.ip_range:
        result["IPRange"] = config.ip_range
    if config.gateway:
        result["Gateway"] = config.gateway
    if config.aux_addresses:
        result["AuxiliaryAddresses"] = dict(config.aux_addresses)
    return result


def network_options(network: Network) -> dict[str, str]:
    """The driver options Docker reports; the default bridge shows its built-in ones."""
    if network.is_default_bridge:
        return {
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": network.bridge_device,
            "com.docker.network.driver.mtu": "1500",
        }
    return dict(network.options)


def network_json(network: Network, endpoints: Iterable[Endpoint] = ()) -> dict[str, Any]:
    """`GET /networks/{id}`; pass no endpoints for the `GET /networks` list shape."""
    containers = {
        endpoint.container_id: {
            "Name": endpoint.container_name,
            "EndpointID": endpoint.id,
            "MacAddress": endpoint.mac_address,
            "IPv4Address": f"{endpoint.ipv4_address}/{endpoint.prefix_length}"
            if endpoint.ipv4_address
            else "",
            "IPv6Address": "",
        }
        for endpoint in endpoints
    }
    return {
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": network.scope,
        "Driver": network.driver,
        "EnableIPv4": network.enable_ipv4,
        "EnableIPv6": network.enable_ipv6,
        "IPAM": {
            "Driver": network.ipam_driver,
            "Options": None if network.is_default_bridge else dict(network.ipam_options),
            "Config": [_ipam_config_json(config) for config in network.ipam_configs],
        },
        "Internal": network.internal,
        "Attachable": network.attachable,
        "Ingress": network.ingress,
        "ConfigFrom": {"Network": network.config_from},
        "ConfigOnly": network.config_only,
        "Containers": containers,
        "Options": network_options(network),
        "Labels": dict(network.labels),
    }


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    """`NetworkSettings.Networks[<name>]` of a running container."""
    return {
        "IPAMConfig": {"IPv4Address": endpoint.requested_ipv4} if endpoint.requested_ipv4 else None,
        "Links": list(endpoint.links) or None,
        "Aliases": list(endpoint.aliases) or None,
        "MacAddress": endpoint.mac_address,
        "DriverOpts": dict(endpoint.driver_options) or None,
        "GwPriority": 0,
        "NetworkID": endpoint.network_id,
        "EndpointID": endpoint.id,
        "Gateway": endpoint.gateway,
        "IPAddress": endpoint.ipv4_address,
        "IPPrefixLen": endpoint.prefix_length,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": list(endpoint.dns_names) or None,
    }


def ports_json(
    published: Iterable[PublishedPort], exposed: Iterable[str] = ()
) -> dict[str, list[dict[str, str]] | None]:
    """`NetworkSettings.Ports`: every exposed port, with its host bindings or null."""
    result: dict[str, list[dict[str, str]] | None] = {key: None for key in exposed}
    for port in sorted(published, key=lambda p: (p.container_port, p.protocol, p.host_ip, p.host_port)):
        key = f"{port.container_port}/{port.protocol}"
        entries = result.get(key) or []
        entries.append({"HostIp": port.host_ip or "0.0.0.0", "HostPort": str(port.host_port)})
        result[key] = entries
    return result


def ports_list_json(published: Iterable[PublishedPort]) -> list[dict[str, Any]]:
    """The `Ports` array of `GET /containers/json`."""
    return [
        {
            "IP": port.host_ip or "0.0.0.0",
            "PrivatePort": port.container_port,
            "PublicPort": port.host_port,
            "Type": port.protocol,
        }
        for port in published
    ]


# ---- persistence ------------------------------------------------------------------------------

_converter = cattrs.Converter()


def to_plain(record: Any) -> Any:
    """A record as JSON-ready dicts and lists."""
    return _converter.unstructure(record)


def from_plain(value: Any, cls: type[Any]) -> Any:
    """A record back from `to_plain`'s output; ValueError names what was wrong."""
    try:
        return _converter.structure(value, cls)
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"malformed {cls.__name__} record: {error}") from None


def is_full_id(text: str) -> bool:
    return bool(_HEX64.match(text))
