"""Records, Docker JSON shapes, request parsing, lookup and filters."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import errdefs
from actors.network import model
from actors.network.model import Endpoint, IpamConfig, Network, PortRequest, PublishedPort
from runtime.errors import ReplyError

NET_ID = "ab" * 32


def user_network(**changes: object) -> Network:
    values: dict = dict(
        id=NET_ID, name="front", created="2026-01-01T00:00:00.000000000Z", driver="bridge",
        bridge_device="br-" + NET_ID[:12],
        ipam_configs=(IpamConfig(subnet="172.18.0.0/16", gateway="172.18.0.1"),), labels={"a": "1"},
    )
    values.update(changes)
    return Network(**values)


def test_create_body_parsing_and_docker_errors() -> None:
    spec = model.network_spec_from_body({
        "Name": "front", "Driver": "bridge", "Internal": True, "Labels": {"x": "y"},
        "IPAM": {"Driver": "default", "Options": {}, "Config": [
            {"Subnet": "10.5.0.0/16", "Gateway": "10.5.0.254", "IPRange": "10.5.1.0/24",
             "AuxiliaryAddresses": {"r": "10.5.0.9"}}]},
        "Options": {"com.docker.network.bridge.name": "mybr"}, "CheckDuplicate": True,
    })
    assert spec.internal and spec.labels == {"x": "y"}
    assert spec.ipam_configs == (IpamConfig("10.5.0.0/16", "10.5.0.254", "10.5.1.0/24", {"r": "10.5.0.9"}),)
    failures = {
        "invalid CIDR address: 10.5.0.0/33": {"Name": "n", "IPAM": {"Config": [{"Subnet": "10.5.0.0/33"}]}},
        "no matching subnet for gateway 10.6.0.1": {
            "Name": "n", "IPAM": {"Config": [{"Subnet": "10.5.0.0/16", "Gateway": "10.6.0.1"}]}},
        "not a subset": {"Name": "n", "IPAM": {"Config": [{"Subnet": "10.5.0.0/16", "IPRange": "10.9.0.0/24"}]}},
        "every ip-range or gateway must have a corresponding subnet": {
            "Name": "n", "IPAM": {"Config": [{"Gateway": "10.5.0.1"}]}},
        'plugin "macvlan" not found': {"Name": "n", "Driver": "macvlan"},
        'only one instance of "host" network is allowed': {"Name": "n", "Driver": "host"},
        "invalid network name": {"Name": "-bad"},
        "network name must not be empty": {"Name": ""},
        "IPv6 networks are not supported": {"Name": "n", "EnableIPv6": True},
        "Internal must be a boolean": {"Name": "n", "Internal": "yes"},
    }
    for message, body in failures.items():
        with pytest.raises(ReplyError, match=re.escape(message)):
            model.network_spec_from_body(body)


def test_docker_error_texts() -> None:
    assert str(model.network_not_found("foo")) == "network foo not found"
    assert str(model.network_exists("foo")) == "network with name foo already exists"
    assert str(model.network_has_endpoints("foo", "abc")) == (
        "error while removing network: network foo id abc has active endpoints"
    )
    assert str(model.network_predefined("bridge")) == "bridge is a pre-defined network and cannot be removed"
    assert str(model.port_already_allocated("", 8080)) == "Bind for 0.0.0.0:8080 failed: port is already allocated"
    assert model.network_not_found("x").kind == "not_found"
    assert model.network_predefined("x").kind == "forbidden"


def test_lookup_order_and_ambiguity() -> None:
    first = user_network()
    second = user_network(id="ac" * 32, name=NET_ID[:4])
    networks = [first, second]
    assert model.find_network(networks, NET_ID) is first
    assert model.find_network(networks, NET_ID[:4]) is second  # exact name beats ID prefix
    assert model.find_network(networks, "front") is first
    with pytest.raises(errdefs.InvalidParameter, match="ambiguous"):
        model.find_network(networks, "a")
    with pytest.raises(errdefs.NotFound, match=r"^network zzz not found$"):
        model.find_network(networks, "zzz")


def test_filters() -> None:
    bridge = Network(id="b" * 64, name="bridge", created="x", driver="bridge", bridge_device="flotta0")
    host = Network(id="c" * 64, name="host", created="x", driver="host")
    front = user_network()
    networks = [bridge, host, front]

    def names(filters: dict, in_use: frozenset = frozenset()) -> list[str]:
        return [n.name for n in model.filter_networks(networks, filters, in_use)]

    assert names({"driver": ["bridge"]}) == ["bridge", "front"]
    assert names({"type": ["custom"]}) == ["front"]
    assert names({"type": ["builtin"], "driver": ["host"]}) == ["host"]
    assert names({"label": ["a=1"]}) == ["front"] and names({"label": ["a=2"]}) == []
    assert names({"name": ["ro"]}) == ["front"]
    assert names({"id": [NET_ID[:5]]}) == ["front"]
    assert names({"dangling": ["true"]}) == ["front"]
    assert names({"dangling": ["true"]}, frozenset({NET_ID})) == []
    with pytest.raises(errdefs.InvalidParameter, match="invalid filter 'colour'"):
        names({"colour": ["red"]})


def test_network_json_shapes() -> None:
    bridge = Network(
        id="b" * 64, name="bridge", created="2026-01-01T00:00:00.000000000Z", driver="bridge",
        bridge_device="flotta0", ipam_configs=(IpamConfig("172.28.0.0/16", "172.28.0.1"),),
    )
    endpoint = Endpoint(
        id="e" * 64, network_id=bridge.id, container_id="f" * 64, container_name="web",
        sandbox_key="/var/run/netns/flotta-fff", interface="eth0", host_interface="flveee",
        ipv4_address="172.28.0.2", prefix_length=16, gateway="172.28.0.1", mac_address="02:42:ac:1c:00:02",
    )
    body = model.network_json(bridge, [endpoint])
    assert list(body) == ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv4", "EnableIPv6", "IPAM",
                          "Internal", "Attachable", "Ingress", "ConfigFrom", "ConfigOnly", "Containers",
                          "Options", "Labels"]
    assert body["IPAM"] == {"Driver": "default", "Options": None,
                            "Config": [{"Subnet": "172.28.0.0/16", "Gateway": "172.28.0.1"}]}
    assert body["Containers"]["f" * 64]["IPv4Address"] == "172.28.0.2/16"
    assert body["Options"]["com.docker.network.bridge.name"] == "flotta0"
    assert body["ConfigFrom"] == {"Network": ""} and body["Scope"] == "local"
    assert model.network_json(user_network())["IPAM"]["Options"] == {}
    settings = model.endpoint_json(endpoint)
    assert settings["IPAddress"] == "172.28.0.2" and settings["IPPrefixLen"] == 16
    assert settings["Aliases"] is None and settings["DNSNames"] is None and settings["IPAMConfig"] is None
    assert set(settings) >= {"IPAMConfig", "Links", "Aliases", "DNSNames", "MacAddress", "NetworkID",
                             "EndpointID", "Gateway", "IPv6Gateway", "GlobalIPv6Address",
                             "GlobalIPv6PrefixLen", "DriverOpts"}


def test_ports_json_and_bindings_parsing() -> None:
    requests = model.port_requests_from_bindings({
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": ""}],
        "53/udp": [{"HostIp": "", "HostPort": "5300-5310"}],
        "443": None,
    })
    assert requests == [
        PortRequest(80, "tcp", "", 8080, 8080), PortRequest(80, "tcp", "127.0.0.1", 0, 0),
        PortRequest(53, "udp", "", 5300, 5310), PortRequest(443, "tcp", "", 0, 0),
    ]
    for bad in ({"80/sctp": []}, {"x/tcp": []}, {"80/tcp": [{"HostPort": "70000"}]},
                {"80/tcp": [{"HostIp": "nonsense", "HostPort": "1"}]}):
        with pytest.raises(errdefs.InvalidParameter):
            model.port_requests_from_bindings(bad)
    published = [PublishedPort("c" * 64, NET_ID, "172.28.0.2", 80, "tcp", "", 8080)]
    assert model.ports_json(published, ["80/tcp", "443/tcp"]) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}
    assert model.ports_list_json(published) == [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]


def test_network_modes() -> None:
    assert model.parse_network_mode("default") == model.NetworkMode("bridge", "bridge")
    assert model.parse_network_mode("") == model.NetworkMode("bridge", "bridge")
    assert model.parse_network_mode("host").kind == "host"
    assert model.parse_network_mode("none").kind == "none"
    assert model.parse_network_mode("container:web") == model.NetworkMode("container", "web")
    assert model.parse_network_mode("front") == model.NetworkMode("network", "front")
    with pytest.raises(errdefs.InvalidParameter):
        model.parse_network_mode("container:")


def test_timestamps() -> None:
    assert model.rfc3339_nano(1767225600.5) == "2026-01-01T00:00:00.500000000Z"
    assert model.parse_rfc3339("2026-01-01T01:00:00.25+01:00") == 1767225600.25
    assert model.parse_until("1h30m", 10_000.0) == 4_600.0
    assert model.parse_until("1767225600", 0) == 1767225600.0
    with pytest.raises(errdefs.InvalidParameter):
        model.parse_until("yesterday", 0)


text = st.text(alphabet="abcdef0123456789-_.", min_size=1, max_size=12)
endpoints = st.builds(
    Endpoint, id=text, network_id=text, container_id=text, container_name=text, sandbox_key=text,
    interface=text, host_interface=text, ipv4_address=text, prefix_length=st.integers(0, 32),
    aliases=st.lists(text, max_size=3).map(tuple), dns_names=st.lists(text, max_size=3).map(tuple),
    driver_options=st.dictionaries(text, text, max_size=2),
)
networks = st.builds(
    Network, id=text, name=text, created=text, driver=text, internal=st.booleans(),
    ipam_configs=st.lists(st.builds(IpamConfig, subnet=text, aux_addresses=st.dictionaries(text, text, max_size=2)),
                          max_size=2).map(tuple),
    labels=st.dictionaries(text, text, max_size=3),
)


@given(endpoints)
def test_endpoint_records_round_trip(endpoint: Endpoint) -> None:
    assert model.from_plain(model.to_plain(endpoint), Endpoint) == endpoint


@given(networks)
def test_network_records_round_trip(network: Network) -> None:
    assert model.from_plain(model.to_plain(network), Network) == network


def test_malformed_record_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="malformed Network record"):
        model.from_plain({"id": 1}, Network)
