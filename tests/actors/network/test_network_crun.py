"""A real crun container joins a sandbox the driver made, with its /etc files bind-mounted,
and finds its peer through the embedded DNS server (root; crun from Debian's package)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import trio
from network_world import BUSYBOX, World

from actors.network.driver import NetworkDriver
from actors.network.model import EndpointSpec, NetworkSpec
from actors.supervisor import cgroups

pytestmark = pytest.mark.root

WEB, CLIENT = "a1" + "0" * 62, "b2" + "0" * 62


def bundle(directory: Path, netns_path: str, files: dict[str, Path], script: str, cgroup: str) -> Path:
    root = directory / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "cat", "ip", "nslookup", "hostname"):
        (root / "bin" / applet).symlink_to("busybox")
    for name in files:
        (root / "etc" / name).touch()
    subprocess.run(["crun", "spec"], cwd=directory, check=True)
    config = json.loads((directory / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", script]
    config["hostname"] = "clienthost"
    for namespace in config["linux"]["namespaces"]:
        if namespace["type"] == "network":
            namespace["path"] = netns_path
    config["mounts"] += [
        {"destination": f"/etc/{name}", "type": "bind", "source": str(path), "options": ["rbind", "rprivate", "ro"]}
        for name, path in files.items()
    ]
    config["linux"]["cgroupsPath"] = cgroup
    (directory / "config.json").write_text(json.dumps(config))
    return directory


async def test_crun_container_uses_the_sandbox_files_and_dns(world: World, driver: NetworkDriver, tmp_path: Path) -> None:
    cgroups.ensure_cgroup_hierarchy()
    await driver.create_network(NetworkSpec(name="front"))
    web = await driver.setup_sandbox(WEB, container_name="web", hostname="webhost", endpoints=[EndpointSpec("front")])
    client = await driver.setup_sandbox(CLIENT, container_name="client", hostname="clienthost",
                                        endpoints=[EndpointSpec("front")])
    paths = client.files.write(tmp_path / "etc")
    web_address = web.endpoints[0][1].ipv4_address
    client_address = client.endpoints[0][1].ipv4_address
    parent = f"/flotta-nettest-{secrets.token_hex(3)}"
    # "web." with the dot: busybox's nslookup tries search domains first, ignoring ndots:0.
    directory = bundle(tmp_path / "bundle", client.netns_path, paths,
                       "ip addr show eth0; cat /etc/hosts; hostname; nslookup web.", f"{parent}/c1")
    state = tmp_path / "crun-state"
    try:
        with trio.fail_after(60):
            result = await trio.run_process(
                ["crun", "--root", str(state), "run", "--bundle", str(directory), f"nettest-{secrets.token_hex(3)}"],
                capture_stdout=True, capture_stderr=True, check=False,
            )
    finally:
        for controller in Path("/sys/fs/cgroup").iterdir():
            leftover = controller / parent.lstrip("/")
            if leftover.is_dir():
                for child in sorted(leftover.rglob("*"), reverse=True):
                    if child.is_dir():
                        os.rmdir(child)
                os.rmdir(leftover)
    output = result.stdout.decode()
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert f"inet {client_address}/" in output
    assert f"{client_address}\tclienthost\n" in output
    assert "clienthost\n" in output
    assert output.rstrip().endswith(f"Address: {web_address}") or f"Address: {web_address}\n" in output
