"""The driver end to end, inside namespaces the tests create (see conftest.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio
from network_world import (
    BUSYBOX,
    HOST_UPLINK,
    OUTSIDE_ADDRESS,
    World,
    run,
    start_driver,
    stop_driver,
)

from actors import errdefs
from actors.network import model, netns
from actors.network.driver import NetworkDriver
from actors.network.model import EndpointSpec, NetworkSpec, PortRequest

pytestmark = pytest.mark.root

C1 = "c1" + "0" * 62
C2 = "c2" + "0" * 62
C3 = "c3" + "0" * 62


async def nslookup(world: World, namespace: str, name: str, server: str = "127.0.0.11") -> str:
    result = await world.run_in(namespace, BUSYBOX, "nslookup", name, server)
    return result.stdout.decode() + result.stderr.decode()


def answered_addresses(output: str) -> list[str]:
    """The addresses in busybox nslookup's answer section (after the server lines)."""
    lines = output.split("\n\n", 1)[-1].splitlines()
    return [line.split()[-1] for line in lines if line.startswith("Address")]


async def test_user_network_names_resolve_and_other_networks_are_isolated(world: World, driver: NetworkDriver) -> None:
    front = await driver.create_network(NetworkSpec(name="front"))
    other = await driver.create_network(NetworkSpec(name="other"))
    web = await driver.attach(C1, "front", container_name="web", aliases=("www", "shared"))
    client = await driver.attach(C2, "front", container_name="client", aliases=("shared",))
    stranger = await driver.attach(C3, "other", container_name="stranger")
    assert web.interface == "eth0" and web.mac_address == links_mac(web.ipv4_address)
    assert web.gateway == front.gateway
    world.serve_http(web.sandbox_key, 80, "hello from web")

    # Name, alias, short id and name.network resolve through 127.0.0.11 (nft redirect).
    for name in ("web", "www", C1[:12], "web.front", "WEB"):
        assert answered_addresses(await nslookup(world, client.sandbox_key, name)) == [web.ipv4_address]
    shared = answered_addresses(await nslookup(world, client.sandbox_key, "shared"))
    assert sorted(shared) == sorted([web.ipv4_address, client.ipv4_address])
    reverse = await nslookup(world, client.sandbox_key, web.ipv4_address)
    assert "web.front" in reverse

    # The container's own resolver (resolv.conf -> 127.0.0.11) finds its peer by name.
    files = driver.etc_files(C2, hostname=C2[:12])
    assert "nameserver 127.0.0.11" in files.resolv_conf
    resolv = world.directory / "client-resolv.conf"
    resolv.write_text(files.resolv_conf)
    code = (
        "import socket, urllib.request;"
        "print(socket.gethostbyname('web'));"
        "print(urllib.request.urlopen('http://web/', timeout=5).read().decode())"
    )
    for _ in range(30):
        result = await world.python_in(client.sandbox_key, code, resolv_conf=resolv)
        if result.returncode == 0:
            break
        await trio.sleep(0.1)
    assert result.stdout.decode().split() == [web.ipv4_address, "hello", "from", "web"], result.stderr

    # Another network neither resolves these names nor reaches these addresses.
    assert await world.fetch(client.sandbox_key, f"http://{web.ipv4_address}/") == "hello from web"
    assert await world.fetch_once(stranger.sandbox_key, f"http://{web.ipv4_address}/") is None
    assert answered_addresses(await nslookup(world, stranger.sandbox_key, "web")) == []
    assert other.subnet != front.subnet


def links_mac(address: str) -> str:
    return "02:42:" + ":".join(f"{int(part):02x}" for part in address.split("."))


async def test_published_ports_reach_the_container_from_loopback_and_other_hosts(
    world: World, driver: NetworkDriver
) -> None:
    endpoint = await driver.attach(C1, "bridge", container_name="web")
    world.serve_http(endpoint.sandbox_key, 80, "published page")
    published = await driver.publish_ports(
        C1, [PortRequest(80, "tcp", "", 8080, 8080), PortRequest(80, "tcp", "", 0, 0)]
    )
    assert published[0].host_port == 8080
    ephemeral = published[1].host_port
    assert 32768 <= ephemeral <= 60999
    assert model.ports_json(published) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "0.0.0.0", "HostPort": str(ephemeral)}]
    }
    assert await world.fetch(world.host, "http://127.0.0.1:8080/") == "published page"
    assert await world.fetch(world.host, f"http://127.0.0.1:{ephemeral}/") == "published page"
    assert await world.fetch(world.outside, f"http://{HOST_UPLINK}:8080/") == "published page"
    assert await world.fetch(world.outside, f"http://{HOST_UPLINK}:{ephemeral}/") == "published page"

    # Hairpin: containers reach the published port through the host's address too, from
    # the same bridge (masqueraded so replies come back the same way), from the container
    # itself, and from another network (published ports cross the isolation, as Docker's).
    late = await driver.attach(C2, "bridge", container_name="late")
    await driver.create_network(NetworkSpec(name="elsewhere"))
    remote = await driver.attach(C3, "elsewhere", container_name="remote")
    for namespace in (late.sandbox_key, endpoint.sandbox_key, remote.sandbox_key):
        assert await world.fetch(namespace, f"http://{HOST_UPLINK}:8080/") == "published page"
    assert driver.joined_sandbox_key(C1) == endpoint.sandbox_key
    with pytest.raises(errdefs.Conflict, match="non running container"):
        driver.joined_sandbox_key("f" * 64)

    # A second container cannot take the same host port; nothing of it is published.
    with pytest.raises(errdefs.Conflict, match=r"^Bind for 0\.0\.0\.0:8080 failed: port is already allocated$"):
        await driver.publish_ports(C2, [PortRequest(81, "tcp", "", 9090, 9090), PortRequest(80, "tcp", "", 8080, 8080)])
    assert driver.published_ports(C2) == []
    with pytest.raises(errdefs.Conflict, match="already allocated"):
        await driver.publish_ports(C2, [PortRequest(80, "tcp", "127.0.0.1", 8080, 8080)])

    # A port another program holds on the host is refused at start, with Docker's text.
    holder = netns.socket_in_netns(world.host, socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("0.0.0.0", 7070))
        with pytest.raises(errdefs.Conflict, match=r"7070.*address already in use"):
            await driver.publish_ports(C2, [PortRequest(80, "tcp", "", 7070, 7070)])
    finally:
        holder.close()

    # Unpublishing withdraws the DNAT: the port no longer leads anywhere.
    await driver.unpublish(C1)
    assert await world.fetch_once(world.host, "http://127.0.0.1:8080/") is None
    # ...and the host port is free again for the next container.
    again = await driver.publish_ports(C2, [PortRequest(80, "tcp", "", 8080, 8080)])
    assert again[0].host_port == 8080


async def test_udp_published_port(world: World, driver: NetworkDriver) -> None:
    endpoint = await driver.attach(C1, "bridge", container_name="udp")
    receiver = netns.socket_in_netns(endpoint.sandbox_key, socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("0.0.0.0", 5353))
    udp = trio.socket.from_stdlib_socket(receiver)
    published = await driver.publish_ports(C1, [PortRequest(5353, "udp", "", 5000, 5000)])
    assert published[0].protocol == "udp"
    sender = trio.socket.from_stdlib_socket(netns.socket_in_netns(world.outside, socket.AF_INET, socket.SOCK_DGRAM))
    with udp, sender:
        with trio.fail_after(10):
            await sender.sendto(b"ping over udp", (HOST_UPLINK, 5000))
            data, peer = await udp.recvfrom(100)
    assert data == b"ping over udp"
    assert peer[0] == OUTSIDE_ADDRESS  # DNAT keeps the client's address


async def test_outbound_traffic_is_masqueraded_and_internal_networks_stay_inside(
    world: World, driver: NetworkDriver
) -> None:
    listener = trio.socket.from_stdlib_socket(
        netns.socket_in_netns(world.outside, socket.AF_INET, socket.SOCK_STREAM)
    )
    await listener.bind((OUTSIDE_ADDRESS, 9000))
    listener.listen(8)
    peers: list[str] = []

    async def serve_one() -> None:
        while True:
            connection, address = await listener.accept()
            peers.append(address[0])
            with connection:
                await connection.recv(1000)
                await connection.send(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\noutside")

    await driver.create_network(NetworkSpec(name="private", internal=True))
    inside = await driver.attach(C2, "private", container_name="inside")
    endpoint = await driver.attach(C1, "bridge", container_name="client")
    with listener:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_one)
            assert await world.fetch(endpoint.sandbox_key, f"http://{OUTSIDE_ADDRESS}:9000/") == "outside"
            nursery.cancel_scope.cancel()
    assert set(peers) == {HOST_UPLINK}  # the server sees the host's address, not 172.28.x
    routes = run("ip", "-n", netns.netns_path(inside.sandbox_key).rsplit("/", 1)[1], "route")
    assert "default" not in routes
    assert await world.fetch_once(inside.sandbox_key, f"http://{OUTSIDE_ADDRESS}:9000/") is None
    assert await driver.publish_ports(C2, [PortRequest(80)]) == []


async def test_dns_forwards_other_names_and_fails_fast_without_upstreams(
    world: World, driver: NetworkDriver
) -> None:
    from actors.network import dnscodec

    upstream = trio.socket.from_stdlib_socket(netns.socket_in_netns(world.outside, socket.AF_INET, socket.SOCK_DGRAM))
    await upstream.bind((OUTSIDE_ADDRESS, 53))

    async def answer_everything() -> None:
        while True:
            data, peer = await upstream.recvfrom(4096)
            query = dnscodec.decode(data)
            question = query.questions[0]
            answers = [dnscodec.a_record(question.name, "192.0.2.77", 30)] if question.qtype == dnscodec.TYPE_A else []
            await upstream.sendto(dnscodec.encode(dnscodec.response_to(query, 0, answers)), peer)

    await driver.create_network(NetworkSpec(name="front"))
    client = await driver.attach(C1, "front", container_name="client")
    with upstream:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_everything)
            assert answered_addresses(await nslookup(world, client.sandbox_key, "far.example.org")) == ["192.0.2.77"]
            nursery.cancel_scope.cancel()
    # No upstream listening: SERVFAIL (busybox reports it), never a hang.
    before = driver.dns.statistics["servfail"]
    output = await nslookup(world, client.sandbox_key, "far.example.org")
    assert "SERVFAIL" in output
    # A host whose only resolver is on its loopback: asked from the host's netns, refused.
    world.resolv_conf.write_text("nameserver 127.0.0.1\n")
    assert "SERVFAIL" in await nslookup(world, client.sandbox_key, "far.example.org")
    # No resolver at all: SERVFAIL at once.
    world.resolv_conf.write_text("")
    assert "SERVFAIL" in await nslookup(world, client.sandbox_key, "far.example.org")
    assert driver.dns.statistics["servfail"] >= before + 3


async def test_none_host_and_etc_files(world: World, driver: NetworkDriver) -> None:
    none = await driver.attach(C1, "none", container_name="alone")
    assert none.interface == "" and netns.netns_exists(driver.sandbox_key(C1))
    interfaces = run("ip", "-n", netns.netns_path(driver.sandbox_key(C1)).rsplit("/", 1)[1], "-br", "link")
    assert [line.split()[0] for line in interfaces.splitlines()] == ["lo"]
    with pytest.raises(errdefs.Forbidden):
        await driver.attach(C1, "bridge", container_name="alone")
    host = await driver.attach(C2, "host", container_name="hosted")
    assert driver.sandbox_key(C2) == netns.netns_path(world.host) == host.sandbox_key
    endpoint = await driver.attach(C3, "bridge", container_name="plain")
    files = driver.etc_files(C3, hostname="plain-host", extra_hosts=["db:10.1.2.3", "gw:host-gateway"])
    assert files.hosts.endswith(f"10.1.2.3\tdb\n172.28.0.1\tgw\n{endpoint.ipv4_address}\tplain-host\n")
    assert f"nameserver {OUTSIDE_ADDRESS}" in files.resolv_conf and "search example.test" in files.resolv_conf
    assert files.hostname == "plain-host\n"


async def test_restart_readopts_without_duplicates_and_keeps_addresses(
    world: World, tmp_path: Path, nursery: trio.Nursery
) -> None:
    state = tmp_path / "state"
    first = await start_driver(world, state, nursery)
    try:
        await first.create_network(NetworkSpec(name="front"))
        web = await first.attach(C1, "front", container_name="web")
        await first.attach(C2, "front", container_name="client")
        world.serve_http(web.sandbox_key, 80, "still here")
        await first.publish_ports(C1, [PortRequest(80, "tcp", "", 8080, 8080)])
        ruleset = run("ip", "netns", "exec", world.host, "nft", "list", "ruleset")
        links_before = run("ip", "-n", world.host, "-br", "link")
        # The daemon dies (containers keep running): DNS sockets and reservations go away.
        await first.shutdown(no_containers_left=False)

        second = await start_driver(world, state, nursery)
        assert run("ip", "netns", "exec", world.host, "nft", "list", "ruleset") == ruleset
        assert sorted(run("ip", "-n", world.host, "-br", "link").splitlines()) == sorted(links_before.splitlines())
        await second.restore()  # a second restore in a row changes nothing either
        assert run("ip", "netns", "exec", world.host, "nft", "list", "ruleset") == ruleset
        assert await world.fetch(world.host, "http://127.0.0.1:8080/") == "still here"
        client_key = second.sandbox_key(C2)
        assert answered_addresses(await nslookup(world, client_key, "web")) == [web.ipv4_address]
        # Addresses survived: a new endpoint gets a fresh one, not web's or client's.
        third = await second.attach(C3, "front", container_name="third")
        taken = {e.ipv4_address for _, e in second.endpoints(C1) + second.endpoints(C2)}
        assert third.ipv4_address not in taken
        with pytest.raises(errdefs.Conflict, match="already allocated"):
            await second.publish_ports(C3, [PortRequest(80, "tcp", "", 8080, 8080)])
    finally:
        with trio.CancelScope(shield=True):
            await stop_driver(second if "second" in locals() else first)


async def test_foreign_forward_drop_policy_is_worked_around_and_left_intact(
    world: World, tmp_path: Path, nursery: trio.Nursery
) -> None:
    # What Docker or podman leave on a host: ip filter FORWARD with policy drop.
    foreign = "table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\n"
    await trio.run_process(["ip", "netns", "exec", world.host, "nft", "-f", "-"], stdin=foreign.encode())
    driver = await start_driver(world, tmp_path / "state", nursery)
    try:
        assert driver.diagnostics.foreign_forward_drop_chains == ("ip filter FORWARD",)
        assert driver.diagnostics.bridge_netfilter
        await driver.create_network(NetworkSpec(name="front"))
        web = await driver.attach(C1, "front", container_name="web")
        client = await driver.attach(C2, "front", container_name="client")
        world.serve_http(web.sandbox_key, 80, "through the foreign drop")
        assert await world.fetch(client.sandbox_key, f"http://{web.ipv4_address}/") == "through the foreign drop"
        await driver.publish_ports(C1, [PortRequest(80, "tcp", "", 8080, 8080)])
        assert await world.fetch(world.outside, f"http://{HOST_UPLINK}:8080/") == "through the foreign drop"
        await driver.restore()
        chain = run("ip", "netns", "exec", world.host, "nft", "list", "chain", "ip", "filter", "FORWARD")
        assert chain.count('comment "flotta"') == 6  # 3 per bridge (default + front), not doubled
    finally:
        with trio.CancelScope(shield=True):
            await stop_driver(driver)
    chain = run("ip", "netns", "exec", world.host, "nft", "list", "chain", "ip", "filter", "FORWARD")
    assert "flotta" not in chain and "policy drop" in chain
    await trio.run_process(["ip", "netns", "exec", world.host, "nft", "delete", "table", "ip", "filter"])


async def test_network_lifecycle_errors_and_json(world: World, driver: NetworkDriver) -> None:
    network = await driver.create_network(
        NetworkSpec(name="lab", ipam_configs=(model.IpamConfig(subnet="10.77.0.0/24", ip_range="10.77.0.128/25"),),
                    labels={"team": "a"})
    )
    assert network.bridge_device == f"br-{network.id[:12]}"
    with pytest.raises(errdefs.Conflict, match=r"^network with name lab already exists$"):
        await driver.create_network(NetworkSpec(name="lab"))
    with pytest.raises(errdefs.Forbidden, match=r"^Pool overlaps with other one on this address space$"):
        await driver.create_network(NetworkSpec(name="lab2", ipam_configs=(model.IpamConfig(subnet="10.77.0.0/16"),)))
    assert [n.name for n in driver.list_networks()].count("lab2") == 0
    endpoint = await driver.attach(C1, "lab", container_name="box", ipv4_address="10.77.0.9")
    assert endpoint.ipv4_address == "10.77.0.9"
    auto = await driver.attach(C2, network.id[:6], container_name="auto")
    assert auto.ipv4_address == "10.77.0.128"
    with pytest.raises(errdefs.InvalidParameter, match="user defined networks only"):
        await driver.attach(C3, "bridge", container_name="x", ipv4_address="172.28.5.5")
    assert netns.list_netns(world.container_prefix) == sorted(
        [f"{world.container_prefix}{C1[:12]}", f"{world.container_prefix}{C2[:12]}"]
    )
    body = driver.network_json("lab")
    assert body["IPAM"] == {"Driver": "default", "Options": {},
                            "Config": [{"Subnet": "10.77.0.0/24", "IPRange": "10.77.0.128/25", "Gateway": "10.77.0.1"}]}
    assert body["Containers"][C1] == {"Name": "box", "EndpointID": endpoint.id, "MacAddress": "02:42:0a:4d:00:09",
                                      "IPv4Address": "10.77.0.9/24", "IPv6Address": ""}
    with pytest.raises(errdefs.Forbidden, match=f"^error while removing network: network lab id {network.id} has active endpoints$"):
        await driver.remove_network("lab")
    with pytest.raises(errdefs.Forbidden, match=r"^bridge is a pre-defined network and cannot be removed$"):
        await driver.remove_network("bridge")
    with pytest.raises(errdefs.NotFound, match=r"^network nope not found$"):
        await driver.remove_network("nope")
    await driver.detach(C2, "lab")
    assert driver.endpoints(C2) == []
    await driver.release_container(C1)
    assert await driver.prune({"label": ["team=b"]}) == []
    assert await driver.prune({"label": ["team=a"]}) == ["lab"]
    assert sorted(n.name for n in driver.list_networks()) == ["bridge", "host", "none"]
    assert sorted(n.name for n in driver.list_networks({"type": ["builtin"]})) == ["bridge", "host", "none"]


async def test_cleanup_leaves_nothing(world: World, tmp_path: Path, nursery: trio.Nursery) -> None:
    driver = await start_driver(world, tmp_path / "state", nursery)
    await driver.create_network(NetworkSpec(name="front"))
    await driver.attach(C1, "front", container_name="a")
    await driver.attach(C1, "bridge", container_name="a")
    await driver.publish_ports(C1, [PortRequest(80, "udp")])
    await stop_driver(driver)
    assert netns.list_netns(world.container_prefix) == []
    assert run("ip", "netns", "exec", world.host, "nft", "list", "ruleset") == ""
    links = run("ip", "-n", world.host, "-br", "link").splitlines()
    assert sorted(line.split()[0].split("@")[0] for line in links) == ["lo", "uplink0"]


async def test_detaching_the_gateway_network_moves_the_default_route(world: World, driver: NetworkDriver) -> None:
    await driver.create_network(NetworkSpec(name="vault", internal=True))
    back = await driver.create_network(NetworkSpec(name="back"))
    await driver.attach(C1, "vault", container_name="multi")
    first = await driver.attach(C1, "bridge", container_name="multi")
    second = await driver.attach(C1, "back", container_name="multi")
    assert [e.interface for _, e in driver.endpoints(C1)] == ["eth0", "eth1", "eth2"]
    namespace = netns.netns_path(driver.sandbox_key(C1)).rsplit("/", 1)[1]
    assert f"default via {first.gateway} dev eth1" in run("ip", "-n", namespace, "route")
    await driver.detach(C1, "bridge")
    assert f"default via {back.gateway} dev eth2" in run("ip", "-n", namespace, "route")
    assert [e.interface for _, e in driver.endpoints(C1)] == ["eth0", "eth2"]
    again = await driver.attach(C1, "bridge", container_name="multi")
    assert again.interface == "eth1" and second.interface == "eth2"
    with pytest.raises(errdefs.Forbidden, match="already exists in network back"):
        await driver.attach(C1, "back", container_name="multi")
    with pytest.raises(errdefs.NotFound, match="is not connected to network bridge"):
        await driver.detach(C2, "bridge")


async def test_restore_forgets_containers_whose_namespace_vanished(
    world: World, tmp_path: Path, nursery: trio.Nursery
) -> None:
    state = tmp_path / "state"
    first = await start_driver(world, state, nursery)
    await first.create_network(NetworkSpec(name="front", ipam_configs=(model.IpamConfig(subnet="10.88.0.0/29"),)))
    gone = await first.attach(C1, "front", container_name="gone")
    kept = await first.attach(C2, "front", container_name="kept")
    await first.publish_ports(C1, [PortRequest(80, "tcp", "", 8080, 8080)])
    await first.shutdown(no_containers_left=False)
    # The host rebooted under one container, say: its netns and veth are gone.
    netns.remove_netns(gone.sandbox_key)
    second = await start_driver(world, state, nursery)
    try:
        assert [e.container_id for _, e in second.endpoints(C2)] == [C2]
        assert second.endpoints(C1) == [] and second.published_ports(C1) == []
        assert gone.host_interface not in run("ip", "-n", world.host, "-br", "link")
        assert kept.host_interface in run("ip", "-n", world.host, "-br", "link")
        assert "dport 8080" not in run("ip", "netns", "exec", world.host, "nft", "list", "table", "ip", "flotta")
        # gone's address is free again (serially: after kept's, then wrapping around).
        addresses = [(await second.attach(f"{i}" * 64, "front", container_name=f"n{i}")).ipv4_address
                     for i in range(3, 7)]
        assert gone.ipv4_address in addresses and kept.ipv4_address not in addresses
    finally:
        with trio.CancelScope(shield=True):
            await stop_driver(second)


async def test_setup_sandbox_is_all_or_nothing_and_idempotent(world: World, driver: NetworkDriver) -> None:
    await driver.create_network(NetworkSpec(name="front"))
    assert {name: n.name for name, n in driver.check_networks(["default", "front"]).items()} == {
        "default": "bridge", "front": "front"}
    with pytest.raises(errdefs.NotFound, match=r"^network nope not found$"):
        driver.check_networks(["front", "nope"])
    info = await driver.setup_sandbox(
        C1, container_name="web", hostname="webhost", domainname="example.org",
        endpoints=[EndpointSpec("front", aliases=("www",)), EndpointSpec("default")],
        port_bindings={"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, publish_all=True,
        exposed_ports=["80/tcp", "443/tcp"], extra_hosts=["db:10.1.2.3"], dns_search=["corp.example"],
    )
    front, bridge = (e for _, e in info.endpoints)
    assert info.netns_path == driver.sandbox_key(C1) and len(info.sandbox_id) == 64
    assert info.ports["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "8080"}]
    assert 32768 <= int(info.ports["443/tcp"][0]["HostPort"]) <= 60999  # -P: ephemeral
    assert info.endpoint_settings()["front"]["DNSNames"] == ["web", "www", C1[:12]]
    assert info.endpoint_settings()["bridge"]["DNSNames"] is None
    assert "nameserver 127.0.0.11" in info.files.resolv_conf and "search corp.example" in info.files.resolv_conf
    assert info.files.hosts.endswith(
        f"10.1.2.3\tdb\n{front.ipv4_address}\twebhost.example.org\twebhost\n"
        f"{bridge.ipv4_address}\twebhost.example.org\twebhost\n"
    )
    # A second setup (the previous run's teardown was lost) replaces the sandbox.
    again = await driver.setup_sandbox(C1, container_name="web", hostname="webhost",
                                       endpoints=[EndpointSpec("front")])
    assert len(again.endpoints) == 1 and driver.published_ports(C1) == []
    assert netns.list_netns(world.container_prefix) == [f"{world.container_prefix}{C1[:12]}"]

    # A failing setup leaves nothing: the port is taken, so no netns, no address, no port.
    await driver.publish_ports(C1, [PortRequest(80, "tcp", "", 9090, 9090)])
    before = dict(driver.ipam.allocations(driver.inspect_network("front").id))
    with pytest.raises(errdefs.Conflict, match="9090 failed: port is already allocated"):
        await driver.setup_sandbox(C2, container_name="late", hostname="late",
                                   endpoints=[EndpointSpec("front")],
                                   port_bindings={"80/tcp": [{"HostPort": "9090"}]})
    assert C2 not in driver.state.sandboxes
    assert driver.ipam.allocations(driver.inspect_network("front").id) == before
    assert netns.list_netns(world.container_prefix) == [f"{world.container_prefix}{C1[:12]}"]
    with pytest.raises(errdefs.InvalidParameter, match="bad format for add-host"):
        await driver.setup_sandbox(C2, container_name="late", hostname="late",
                                   endpoints=[EndpointSpec("front")], extra_hosts=["nonsense"])

    # connect/disconnect of the running container, with its /etc/hosts re-rendered.
    endpoint, hosts = await driver.connect(C1, "web", EndpointSpec("bridge"))
    assert hosts.endswith(f"{endpoint.ipv4_address}\twebhost\n")
    await driver.disconnect(C1, "bridge")
    await driver.disconnect(C1, "bridge", force=True)  # not connected: fine with force
    with pytest.raises(errdefs.NotFound):
        await driver.disconnect(C1, "bridge")
    await driver.teardown_sandbox(C1)
    await driver.teardown_sandbox(C1)  # idempotent
    assert netns.list_netns(world.container_prefix) == []
