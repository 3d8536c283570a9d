"""nftables rules: rendering (pure), and applying them inside a scratch netns (root)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.network import firewall, netns
from actors.network.firewall import BridgeRules, ForeignChain, PortRule

BRIDGES = [BridgeRules("flotta0", "172.28.0.0/16"), BridgeRules("br-0123456789ab", "172.18.0.0/16", internal=True)]
PORTS = [PortRule("tcp", "", 8080, "172.28.0.2", 80), PortRule("udp", "127.0.0.1", 5353, "172.28.0.3", 53)]


def test_nat_table_masquerades_non_internal_subnets_and_publishes_ports() -> None:
    text = firewall.render_nat_table(BRIDGES, PORTS)
    assert 'ip saddr 172.28.0.0/16 oifname != "flotta0" masquerade' in text
    assert "ip saddr 172.18.0.0/16 oifname" not in text  # internal: no way out, no masquerade
    assert "tcp dport 8080 dnat to 172.28.0.2:80" in text
    assert "ip daddr 127.0.0.1 udp dport 5353 dnat to 172.28.0.3:53" in text
    assert "type nat hook output priority -100" in text  # nft 1.0.6: no `dstnat` in output
    assert 'oifname "flotta0" ip saddr 127.0.0.0/8 masquerade' in text


def test_filter_table_isolates_bridges_and_seals_internal_ones() -> None:
    text = firewall.render_filter_table(BRIDGES)
    assert 'iifname "br-0123456789ab" oifname != "br-0123456789ab" drop' in text
    assert 'oifname "br-0123456789ab" iifname != "br-0123456789ab" drop' in text
    assert 'iifname "flotta0" oifname != "flotta0" oifname @bridges drop' in text
    # Internal drops come before the published-port accept, so DNAT cannot open them.
    assert text.index("iifname \"br-0123456789ab\" oifname != \"br-0123456789ab\" drop") < text.index(
        "ct status dnat accept"
    )


def test_transaction_replaces_tables_and_foreign_rules() -> None:
    text = firewall.render_transaction(BRIDGES[:1], [], [ForeignChain("ip", "filter", "FORWARD", (7,))])
    assert text.startswith("add table ip flotta\ndelete table ip flotta\nadd table inet flotta-filter\n")
    assert "delete rule ip filter FORWARD handle 7" in text
    assert text.count('comment "flotta"') == 3
    assert 'insert rule ip filter FORWARD iifname "flotta0" accept comment "flotta"' in text


def test_names_that_could_break_a_rule_are_refused() -> None:
    with pytest.raises(ValueError):
        firewall.render_filter_table([BridgeRules('bad"name', "10.0.0.0/8")])
    with pytest.raises(ValueError):
        firewall.render_nat_table([], [PortRule("sctp", "", 1, "10.0.0.2", 1)])


@pytest.fixture
def scratch() -> Iterator[str]:
    name = f"ftf-{secrets.token_hex(3)}"
    netns.create_netns(name)
    try:
        yield name
    finally:
        netns.remove_netns(name)


def ruleset(namespace: str) -> str:
    return netns.call_in_thread(namespace, firewall.run_nft, ["list", "ruleset"])


@pytest.mark.root
def test_synchronize_is_idempotent_and_removal_is_complete(scratch: str) -> None:
    foreign = "table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\n"
    netns.call_in_thread(scratch, firewall.apply, foreign)
    patched = netns.call_in_thread(scratch, firewall.synchronize, BRIDGES, PORTS)
    assert [(c.family, c.table, c.chain) for c in patched] == [("ip", "filter", "FORWARD")]
    first = ruleset(scratch)
    netns.call_in_thread(scratch, firewall.synchronize, BRIDGES, PORTS)
    assert ruleset(scratch) == first  # re-adoption: same rules, none doubled
    assert first.count('comment "flotta"') == 6
    assert netns.call_in_thread(scratch, firewall.flotta_tables) == ["inet flotta-filter", "ip flotta"]
    netns.call_in_thread(scratch, firewall.remove_everything)
    assert netns.call_in_thread(scratch, firewall.flotta_tables) == []
    after = ruleset(scratch)
    assert "flotta" not in after and "policy drop" in after
    netns.call_in_thread(scratch, firewall.remove_everything)  # nothing left to remove: fine


@pytest.mark.root
def test_nft_errors_are_reported_with_nft_text(scratch: str) -> None:
    with pytest.raises(firewall.FirewallError, match=r"nft -f - failed: .*syntax error"):
        netns.call_in_thread(scratch, firewall.apply, "table ip flotta { chain x { nonsense } }\n")
    assert netns.call_in_thread(scratch, firewall.flotta_tables) == []


devices = st.from_regex(r"br-[0-9a-f]{12}", fullmatch=True)
subnets = st.integers(0, 255).map(lambda n: f"10.{n}.0.0/16")
bridge_sets = st.lists(st.builds(BridgeRules, devices, subnets, st.booleans(), st.booleans(), st.booleans()),
                       max_size=4, unique_by=lambda b: b.device)
port_sets = st.lists(
    st.builds(PortRule, st.sampled_from(["tcp", "udp"]), st.sampled_from(["", "127.0.0.1", "10.9.9.9"]),
              st.integers(1, 65535), st.integers(1, 254).map(lambda n: f"10.0.0.{n}"), st.integers(1, 65535)),
    max_size=5,
)


@pytest.fixture(scope="module")
def checking_netns() -> Iterator[str]:
    name = f"ftf-{secrets.token_hex(3)}"
    netns.create_netns(name)
    try:
        yield name
    finally:
        netns.remove_netns(name)


@pytest.mark.root
def test_every_rendered_state_is_accepted_by_nft(checking_netns: str) -> None:
    @settings(max_examples=25, deadline=None)
    @given(bridge_sets, port_sets)
    def check(bridges: list[BridgeRules], ports: list[PortRule]) -> None:
        script = firewall.render_transaction(bridges, ports)
        checked = subprocess.run(["ip", "netns", "exec", checking_netns, "nft", "-c", "-f", "-"], input=script,
                                 capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr

    check()
