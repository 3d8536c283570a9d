"""nftables rules for bridge networks and published ports, applied with the `nft` CLI.

flotta owns two tables and nothing else there:
- `table ip flotta`: NAT. DNAT of published ports (prerouting for other hosts, output for
  the host itself, loopback included), masquerade of outbound traffic from each
  non-internal bridge subnet, masquerade of 127.0.0.0/8 sources sent to a bridge (the
  route_localnet path for `curl 127.0.0.1:<port>`) and of hairpin traffic (a container
  reaching a published port that leads back into its own bridge).
- `table inet flotta-filter`: isolation. Internal networks can neither leave nor be
  entered; different bridge networks cannot reach each other.

Every change re-renders both tables from the driver's state and replaces them in ONE
`nft -f -` transaction (`add table` + `delete table` + the new table): atomic, and
idempotent, so a restarted daemon re-adopts what is there by replacing it with the same
thing instead of adding duplicates.

The host-firewall pitfall (host-primitives G1): when another engine set a `forward` base
chain to `policy drop` (Docker's iptables `filter FORWARD`), a drop in ANY base chain is
final, so accepting in our own table is not enough. flotta then inserts accept rules for
its bridges at the top of that foreign chain, marked `comment "flotta"`, and deletes them
(by handle) in the same transaction whenever it re-renders, so they are never duplicated
and are gone after cleanup. It never changes the foreign chain's policy or other rules.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Sequence

import attrs

NAT_TABLE = "flotta"
FILTER_TABLE = "flotta-filter"
RULE_COMMENT = "flotta"
DNS_TABLE = "flotta-dns"
NFT = "nft"
NFT_TIMEOUT_SECONDS = 30.0


class FirewallError(RuntimeError):
    """nft refused a transaction; the message carries nft's own error text."""


@attrs.frozen
class BridgeRules:
    device: str
    subnet: str
    internal: bool = False
    masquerade: bool = True
    icc: bool = True  # inter-container communication on this bridge


@attrs.frozen
class PortRule:
    protocol: str  # tcp | udp
    host_ip: str  # "" or 0.0.0.0: every local address
    host_port: int
    container_ip: str
    container_port: int


@attrs.frozen
class ForeignChain:
    """A forward base chain of another table whose policy drops what flotta forwards."""

    family: str
    table: str
    chain: str
    flotta_rule_handles: tuple[int, ...] = ()


def _quote(name: str) -> str:
    if not name or any(c in name for c in '"\\\n'):
        raise ValueError(f"refusing to put {name!r} into an nft rule")
    return f'"{name}"'


def _port_match(rule: PortRule) -> str:
    if rule.protocol not in ("tcp", "udp"):
        raise ValueError(f"unsupported protocol {rule.protocol!r}")
    address = "" if rule.host_ip in ("", "0.0.0.0") else f"ip daddr {rule.host_ip} "
    return f"{address}{rule.protocol} dport {rule.host_port}"


def render_nat_table(bridges: Sequence[BridgeRules], ports: Sequence[PortRule]) -> str:
    published = [
        f"\t\t{_port_match(rule)} dnat to {rule.container_ip}:{rule.container_port}"
        for rule in sorted(ports, key=lambda r: (r.protocol, r.host_port, r.host_ip))
    ]
    postrouting = []
    for bridge in bridges:
        device = _quote(bridge.device)
        if bridge.masquerade and not bridge.internal:
            postrouting.append(f"\t\tip saddr {bridge.subnet} oifname != {device} masquerade")
        postrouting.append(f"\t\toifname {device} ip saddr 127.0.0.0/8 masquerade")
        postrouting.append(f"\t\toifname {device} ip saddr {bridge.subnet} ct status dnat masquerade")
    lines = [
        f"table ip {NAT_TABLE} {{",
        "\tchain published {",
        *published,
        "\t}",
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        "\t\tfib daddr type local jump published",
        "\t}",
        "\tchain output {",
        # nft 1.0.6 rejects `priority dstnat` in a nat output chain (host-primitives G5).
        "\t\ttype nat hook output priority -100; policy accept;",
        "\t\tfib daddr type local jump published",
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        *postrouting,
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_filter_table(bridges: Sequence[BridgeRules]) -> str:
    devices = [_quote(bridge.device) for bridge in bridges]
    rules = ["\t\tct state established,related accept"]
    for bridge in bridges:
        if bridge.internal:
            device = _quote(bridge.device)
            rules.append(f"\t\tiifname {device} oifname != {device} drop")
            rules.append(f"\t\toifname {device} iifname != {device} drop")
    # Published ports (never on internal networks) may cross bridges, as with Docker's proxy.
    rules.append("\t\tct status dnat accept")
    for bridge in bridges:
        device = _quote(bridge.device)
        if not bridge.icc:
            rules.append(f"\t\tiifname {device} oifname {device} drop")
        rules.append(f"\t\tiifname {device} oifname != {device} oifname @bridges drop")
    elements = [f"\t\telements = {{ {', '.join(devices)} }}"] if devices else []
    lines = [
        f"table inet {FILTER_TABLE} {{",
        "\tset bridges {",
        "\t\ttype ifname",
        *elements,
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        *rules,
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _foreign_accepts(chain: ForeignChain, bridges: Sequence[BridgeRules]) -> list[str]:
    lines = [
        f"delete rule {chain.family} {chain.table} {chain.chain} handle {handle}"
        for handle in chain.flotta_rule_handles
    ]
    where = f"{chain.family} {chain.table} {chain.chain}"
    comment = f"comment {_quote(RULE_COMMENT)}"
    for bridge in bridges:
        device = _quote(bridge.device)
        # `insert` puts a rule first; issued in reverse so they end up in this order.
        lines.append(f"insert rule {where} oifname {device} ct status dnat accept {comment}")
        lines.append(f"insert rule {where} oifname {device} ct state established,related accept {comment}")
        lines.append(f"insert rule {where} iifname {device} accept {comment}")
    return lines


def render_transaction(
    bridges: Sequence[BridgeRules],
    ports: Sequence[PortRule],
    foreign: Sequence[ForeignChain] = (),
) -> str:
    """The whole desired state as one nft script that replaces what flotta had."""
    parts = [
        f"add table ip {NAT_TABLE}",
        f"delete table ip {NAT_TABLE}",
        f"add table inet {FILTER_TABLE}",
        f"delete table inet {FILTER_TABLE}",
        render_nat_table(bridges, ports).rstrip("\n"),
        render_filter_table(bridges).rstrip("\n"),
    ]
    for chain in foreign:
        parts.extend(_foreign_accepts(chain, bridges))
    return "\n".join(parts) + "\n"


def render_removal(foreign: Sequence[ForeignChain]) -> str:
    """Delete flotta's tables and its rules in foreign chains; fine when already gone."""
    parts = [
        f"add table ip {NAT_TABLE}",
        f"delete table ip {NAT_TABLE}",
        f"add table inet {FILTER_TABLE}",
        f"delete table inet {FILTER_TABLE}",
    ]
    for chain in foreign:
        parts.extend(_foreign_accepts(chain, ()))
    return "\n".join(parts) + "\n"


def render_dns_redirect(udp_port: int, tcp_port: int, address: str = "127.0.0.11") -> str:
    """For a container's netns: port 53 on the embedded DNS address goes to our sockets."""
    return (
        f"add table ip {DNS_TABLE}\n"
        f"delete table ip {DNS_TABLE}\n"
        f"table ip {DNS_TABLE} {{\n"
        "\tchain output {\n"
        "\t\ttype nat hook output priority -100; policy accept;\n"
        f"\t\tip daddr {address} udp dport 53 dnat to {address}:{udp_port}\n"
        f"\t\tip daddr {address} tcp dport 53 dnat to {address}:{tcp_port}\n"
        "\t}\n"
        "}\n"
    )


# ---- running nft (in the calling thread's netns) -------------------------------------------


def run_nft(arguments: Sequence[str], script: str | None = None) -> str:
    """Run nft in the calling thread's netns (the child inherits it); FirewallError on failure."""
    try:
        completed = subprocess.run(
            [NFT, *arguments],
            input=script,
            capture_output=True,
            text=True,
            timeout=NFT_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise FirewallError("the nft command is missing: install the nftables package") from None
    except subprocess.TimeoutExpired:
        raise FirewallError(f"nft {' '.join(arguments)} did not finish in {NFT_TIMEOUT_SECONDS} s") from None
    if completed.returncode != 0:
        raise FirewallError(f"nft {' '.join(arguments)} failed: {completed.stderr.strip()}")
    return completed.stdout


def apply(script: str) -> None:
    """One atomic transaction: all of `script` takes effect, or none of it."""
    run_nft(["-f", "-"], script)


def _json_items(text: str) -> list[dict]:
    try:
        return list(json.loads(text).get("nftables", []))
    except (ValueError, AttributeError) as error:
        raise FirewallError(f"nft printed JSON flotta cannot read: {error}") from None


def foreign_drop_chains() -> list[ForeignChain]:
    """Forward base chains outside flotta's tables with policy drop, with the handles of
    the rules flotta put there earlier (found by their comment)."""
    result = []
    for item in _json_items(run_nft(["-j", "list", "chains"])):
        chain = item.get("chain")
        if not chain or chain.get("hook") != "forward" or chain.get("policy") != "drop":
            continue
        family, table, name = chain.get("family"), chain.get("table"), chain.get("name")
        if family not in ("ip", "inet") or table in (NAT_TABLE, FILTER_TABLE):
            continue
        listing = _json_items(run_nft(["-j", "-a", "list", "chain", family, table, name]))
        handles = tuple(
            int(entry["rule"]["handle"])
            for entry in listing
            if "rule" in entry and entry["rule"].get("comment") == RULE_COMMENT
        )
        result.append(ForeignChain(family, table, name, handles))
    return result


def flotta_tables() -> list[str]:
    """`family name` of flotta's tables present in this netns."""
    names = []
    for item in _json_items(run_nft(["-j", "list", "tables"])):
        table = item.get("table")
        if table and table.get("name") in (NAT_TABLE, FILTER_TABLE, DNS_TABLE):
            names.append(f"{table['family']} {table['name']}")
    return sorted(names)


def synchronize(bridges: Iterable[BridgeRules], ports: Iterable[PortRule]) -> list[ForeignChain]:
    """Make the netns's flotta rules exactly this state; returns the foreign chains it
    patched. Retries once if a foreign chain changed between listing and applying."""
    bridge_list, port_list = list(bridges), list(ports)
    for attempt in range(2):
        foreign = foreign_drop_chains()
        try:
            apply(render_transaction(bridge_list, port_list, foreign))
            return foreign
        except FirewallError:
            if attempt == 1 or not foreign:
                raise
    raise AssertionError("unreachable")


def remove_everything() -> None:
    """Delete flotta's tables and its accept rules in foreign chains."""
    apply(render_removal(foreign_drop_chains()))
