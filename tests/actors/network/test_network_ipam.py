"""IPAM: unit tests, and a Hypothesis state machine comparing it with a tiny model."""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from actors import errdefs
from actors.network.ipam import Ipam, IpamStore, default_pools

A = ipaddress.IPv4Address
N = ipaddress.IPv4Network


def test_default_pools_follow_docker_order() -> None:
    pools = default_pools()
    assert pools[0] == N("172.17.0.0/16")
    assert pools[14] == N("172.31.0.0/16")
    assert pools[15] == N("192.168.0.0/20")
    assert pools[16] == N("192.168.16.0/20")
    assert len(pools) == 15 + 16


def test_auto_subnet_skips_existing_and_avoided_prefixes() -> None:
    ipam = Ipam()
    ipam.add_network("bridge", subnet="172.28.0.0/16")
    first = ipam.add_network("a", avoid=[N("172.17.0.0/16")])
    assert first.subnet == N("172.18.0.0/16")
    assert first.gateway == A("172.18.0.1")
    second = ipam.add_network("b")
    assert second.subnet == N("172.17.0.0/16")
    for index in range(3, 30):
        ipam.add_network(f"n{index}")
    assert not any(
        p.subnet.overlaps(q.subnet)
        for i, p in enumerate(ipam._pools.values())
        for q in list(ipam._pools.values())[i + 1 :]
    )
    assert N("172.28.0.0/16") not in [ipam.pool(f"n{i}").subnet for i in range(3, 30)]


def test_user_subnet_overlap_is_refused_with_docker_text() -> None:
    ipam = Ipam()
    ipam.add_network("a", subnet="10.1.0.0/16")
    with pytest.raises(errdefs.Forbidden, match=r"^Pool overlaps with other one on this address space$"):
        ipam.add_network("b", subnet="10.1.2.0/24")
    assert ipam.network_ids() == ["a"]


def test_bad_gateway_and_range_change_nothing() -> None:
    ipam = Ipam()
    with pytest.raises(errdefs.InvalidParameter, match=r"gateway 10.2.0.1"):
        ipam.add_network("a", subnet="10.1.0.0/16", gateway="10.2.0.1")
    with pytest.raises(errdefs.InvalidParameter, match="not a subset"):
        ipam.add_network("a", subnet="10.1.0.0/16", ip_range="10.2.0.0/24")
    assert ipam.network_ids() == []


def test_gateway_is_first_address_and_allocation_is_serial() -> None:
    ipam = Ipam()
    ipam.add_network("a", subnet="10.1.0.0/29")
    got = [ipam.allocate("a", f"e{i}") for i in range(3)]
    assert got == [A("10.1.0.2"), A("10.1.0.3"), A("10.1.0.4")]
    ipam.release("a", "10.1.0.3")
    # Serial: the freed address is not reused until the search wraps around.
    assert ipam.allocate("a", "e3") == A("10.1.0.5")
    assert ipam.allocate("a", "e4") == A("10.1.0.6")
    assert ipam.allocate("a", "e5") == A("10.1.0.3")
    with pytest.raises(errdefs.Unavailable, match="no available IPv4 addresses"):
        ipam.allocate("a", "e6")


def test_ip_range_limits_automatic_but_not_requested_addresses() -> None:
    ipam = Ipam()
    ipam.add_network("a", subnet="10.1.0.0/24", ip_range="10.1.0.128/30")
    assert ipam.allocate("a", "x") == A("10.1.0.128")
    assert ipam.allocate("a", "y", requested="10.1.0.50") == A("10.1.0.50")
    with pytest.raises(errdefs.Conflict, match=r"^Address already in use$"):
        ipam.allocate("a", "z", requested="10.1.0.50")
    with pytest.raises(errdefs.Conflict):
        ipam.allocate("a", "z", requested="10.1.0.1")  # the gateway
    with pytest.raises(errdefs.InvalidParameter, match="does not belong"):
        ipam.allocate("a", "z", requested="10.9.0.5")


def test_store_round_trip_and_corruption_is_reported(tmp_path: Path) -> None:
    store = IpamStore(tmp_path)
    assert store.load().network_ids() == []
    ipam = store.load()
    ipam.add_network("a", subnet="10.1.0.0/24", aux_addresses={"router": "10.1.0.9"})
    ipam.allocate("a", "e1")
    store.save(ipam)
    again = store.load()
    assert again.allocations("a") == {A("10.1.0.2"): "e1"}
    assert again.pool("a").reserved == {"router": A("10.1.0.9")}
    (tmp_path / "ipam.json").write_text('{"version": 1, "pools": [{"network_id": 3}]}')
    with pytest.raises(ValueError, match=r"ipam.json: malformed IPAM state"):
        store.load()


SUBNETS = ["10.0.0.0/28", "10.0.0.0/29", "10.0.0.8/29", "10.0.0.16/30", "10.0.1.0/29", ""]
TEST_POOLS = [N("10.9.0.0/29"), N("10.9.0.8/29"), N("10.9.0.16/30")]


class IpamMachine(RuleBasedStateMachine):
    """The real Ipam, saved and reloaded at random, against a dictionary model."""

    networks = Bundle("networks")

    def __init__(self) -> None:
        super().__init__()
        # tmpfs when there is one: the rule under test is the atomic replace, not the disk.
        memory = "/dev/shm" if Path("/dev/shm").is_dir() else None
        self.directory = Path(tempfile.mkdtemp(prefix="flotta-ipam-", dir=memory))
        self.store = IpamStore(self.directory, TEST_POOLS)
        self.ipam = self.store.load()
        # model: network id -> {"subnet", "gateway", "range", "allocated": {addr: owner}, "last"}
        self.model: dict[str, dict] = {}
        self.counter = 0

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _overlaps(self, subnet: N) -> bool:
        return any(subnet.overlaps(entry["subnet"]) for entry in self.model.values())

    @rule(target=networks, subnet=st.sampled_from(SUBNETS))
    def add_network(self, subnet: str) -> str:
        self.counter += 1
        network_id = f"net{self.counter}"
        if subnet:
            expected = N(subnet)
            if self._overlaps(expected):
                with pytest.raises(errdefs.Forbidden):
                    self.ipam.add_network(network_id, subnet=subnet)
                return network_id
        else:
            free = [p for p in TEST_POOLS if not self._overlaps(p)]
            if not free:
                with pytest.raises(errdefs.Unavailable):
                    self.ipam.add_network(network_id)
                return network_id
            expected = free[0]
        pool = self.ipam.add_network(network_id, subnet=subnet)
        assert pool.subnet == expected
        assert pool.gateway == expected.network_address + 1
        self.model[network_id] = {
            "subnet": expected,
            "gateway": expected.network_address + 1,
            "allocated": {},
            "last": int(expected.broadcast_address),
        }
        return network_id

    @rule(network_id=consumes(networks))
    def remove_network(self, network_id: str) -> None:
        self.ipam.remove_network(network_id)
        self.model.pop(network_id, None)

    @rule(network_id=networks, owner=st.sampled_from(["a", "b", "c", "d"]))
    def allocate(self, network_id: str, owner: str) -> None:
        entry = self.model.get(network_id)
        if entry is None:
            with pytest.raises(errdefs.NotFound):
                self.ipam.allocate(network_id, owner)
            return
        subnet = entry["subnet"]
        first, last = int(subnet.network_address), int(subnet.broadcast_address)
        candidates = [
            A(first + ((entry["last"] - first + step) % (last - first + 1)))
            for step in range(1, last - first + 2)
        ]
        free = [
            address
            for address in candidates
            if address not in (subnet.network_address, subnet.broadcast_address, entry["gateway"])
            and address not in entry["allocated"]
        ]
        if not free:
            with pytest.raises(errdefs.Unavailable):
                self.ipam.allocate(network_id, owner)
            return
        address = self.ipam.allocate(network_id, owner)
        assert address == free[0]
        entry["allocated"][address] = owner
        entry["last"] = int(address)

    @rule(network_id=networks, offset=st.integers(0, 15), owner=st.sampled_from(["a", "b"]))
    def allocate_requested(self, network_id: str, offset: int, owner: str) -> None:
        entry = self.model.get(network_id)
        if entry is None:
            return
        subnet = entry["subnet"]
        address = subnet.network_address + offset
        if address not in subnet:
            with pytest.raises(errdefs.InvalidParameter):
                self.ipam.allocate(network_id, owner, requested=str(address))
        elif address in (
            subnet.network_address,
            subnet.broadcast_address,
            entry["gateway"],
        ) or address in entry["allocated"]:
            with pytest.raises(errdefs.Conflict):
                self.ipam.allocate(network_id, owner, requested=str(address))
        else:
            assert self.ipam.allocate(network_id, owner, requested=str(address)) == address
            entry["allocated"][address] = owner

    @rule(network_id=networks, data=st.data())
    def release(self, network_id: str, data: st.DataObject) -> None:
        entry = self.model.get(network_id)
        if entry is None or not entry["allocated"]:
            return
        address = data.draw(st.sampled_from(sorted(entry["allocated"])))
        self.ipam.release(network_id, address)
        del entry["allocated"][address]

    @rule(owner=st.sampled_from(["a", "b", "c", "d"]))
    def release_owner(self, owner: str) -> None:
        self.ipam.release_owner(owner)
        for entry in self.model.values():
            entry["allocated"] = {a: o for a, o in entry["allocated"].items() if o != owner}

    @rule()
    def restart(self) -> None:
        self.store.save(self.ipam)
        self.ipam = self.store.load()

    @invariant()
    def agrees_with_model(self) -> None:
        assert self.ipam.network_ids() == sorted(self.model)
        for network_id, entry in self.model.items():
            assert self.ipam.allocations(network_id) == entry["allocated"]
            assert self.ipam.pool(network_id).subnet == entry["subnet"]

    @invariant()
    def pools_never_overlap(self) -> None:
        subnets = [self.ipam.pool(n).subnet for n in self.ipam.network_ids()]
        for index, subnet in enumerate(subnets):
            assert not any(subnet.overlaps(other) for other in subnets[index + 1 :])


TestIpamMachine = IpamMachine.TestCase
