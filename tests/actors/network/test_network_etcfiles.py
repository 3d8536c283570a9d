"""resolv.conf, hosts and hostname as Docker writes them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import errdefs
from actors.network import etcfiles
from actors.network.etcfiles import ResolvConf

HOST = etcfiles.parse_resolv_conf(
    "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2 # office\nnameserver fe80::1%eth0\n"
    "nameserver not-an-address\nsearch corp.example lab.example\noptions edns0 trust-ad\n"
)


def test_parse_host_resolv_conf() -> None:
    assert ResolvConf(("127.0.0.53", "10.0.0.2", "fe80::1"), ("corp.example", "lab.example"),
                              ("edns0", "trust-ad")) == HOST
    assert etcfiles.parse_resolv_conf("domain a.example\nsearch b.example\n").search == ("b.example",)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_user_network_points_at_the_embedded_server_with_ndots_zero() -> None:
    text = etcfiles.container_resolv_conf(HOST, embedded_dns=True)
    assert lines(text) == ["nameserver 127.0.0.11", "search corp.example lab.example",
                           "options edns0 trust-ad ndots:0"]
    custom = etcfiles.container_resolv_conf(HOST, embedded_dns=True, dns_search=["."], dns_options=["ndots:2"])
    assert lines(custom) == ["nameserver 127.0.0.11", "options ndots:2"]


def test_default_bridge_copies_reachable_host_servers_or_falls_back() -> None:
    assert lines(etcfiles.container_resolv_conf(HOST, embedded_dns=False))[:1] == ["nameserver 10.0.0.2"]
    loopback_only = ResolvConf(("127.0.0.53", "::1"))
    assert lines(etcfiles.container_resolv_conf(loopback_only, embedded_dns=False)) == [
        "nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    given_servers = etcfiles.container_resolv_conf(HOST, embedded_dns=False, dns=["1.1.1.1"])
    assert lines(given_servers)[0] == "nameserver 1.1.1.1"
    with pytest.raises(errdefs.InvalidParameter, match="bogus is not an ip address"):
        etcfiles.container_resolv_conf(HOST, embedded_dns=False, dns=["bogus"])


def test_upstreams_keep_loopback_but_not_ipv6() -> None:
    # The forwarder runs in the host's netns, where a loopback resolver is reachable.
    assert etcfiles.upstream_servers(HOST) == ("127.0.0.53", "10.0.0.2")
    assert etcfiles.upstream_servers(HOST, ["9.9.9.9"]) == ("9.9.9.9",)


def test_hosts_file() -> None:
    extra = [etcfiles.parse_extra_host("db:10.1.2.3"), etcfiles.parse_extra_host("gw=host-gateway", "172.28.0.1"),
             etcfiles.parse_extra_host("v6:[2001:db8::1]")]
    text = etcfiles.hosts_file("abc123", ["172.28.0.2", "172.18.0.5"], domainname="example.org", extra_hosts=extra)
    assert text == (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
        "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        "10.1.2.3\tdb\n172.28.0.1\tgw\n2001:db8::1\tv6\n172.28.0.2\tabc123.example.org\tabc123\n"
        "172.18.0.5\tabc123.example.org\tabc123\n"
    )
    assert etcfiles.hostname_file("abc123") == "abc123\n"
    for bad in ("nocolon", "db:", "db:not-ip", "gw:host-gateway"):
        with pytest.raises(errdefs.InvalidParameter):
            etcfiles.parse_extra_host(bad)


def test_files_are_written(tmp_path) -> None:
    files = etcfiles.EtcFiles("hosts\n", "resolv\n", "name\n")
    paths = files.write(tmp_path / "c1")
    assert {name: path.read_text() for name, path in paths.items()} == {
        "hosts": "hosts\n", "resolv.conf": "resolv\n", "hostname": "name\n"}


@given(st.text(max_size=300))
def test_parser_never_crashes(text: str) -> None:
    parsed = etcfiles.parse_resolv_conf(text)
    assert all(isinstance(server, str) for server in parsed.nameservers)


addresses = st.ip_addresses(v=4).map(str)
domains = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True)


@given(st.lists(addresses, min_size=1, max_size=3), st.lists(domains, max_size=3),
       st.lists(st.sampled_from(["edns0", "rotate", "ndots:3", "timeout:1"]), max_size=3, unique=True))
def test_rendered_file_parses_back(servers: list[str], search: list[str], options: list[str]) -> None:
    text = etcfiles.container_resolv_conf(ResolvConf(), embedded_dns=False, dns=servers, dns_search=search,
                                          dns_options=options)
    assert etcfiles.parse_resolv_conf(text) == ResolvConf(tuple(servers), tuple(search), tuple(options))
