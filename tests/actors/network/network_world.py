"""Helpers for the network root tests: a world of namespaces and a driver inside it.

    outside (10.231.250.2) --wan0/uplink0-- host (10.231.250.1, default route via outside)

`host` plays the machine flotta runs on: the driver creates its bridges, tables and
containers' namespaces from inside it, so nothing touches the real host's interfaces or
ruleset. `outside` plays the rest of the world (a server there sees masqueraded traffic,
a client there is a remote host reaching published ports).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import attrs
import trio

from actors.network import netns
from actors.network.driver import NetworkDriver

HOST_UPLINK = "10.231.250.1"
OUTSIDE_ADDRESS = "10.231.250.2"
BUSYBOX = "/bin/busybox"


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


@attrs.define
class World:
    tag: str
    host: str
    outside: str
    container_prefix: str
    directory: Path
    resolv_conf: Path
    processes: list[subprocess.Popen] = attrs.field(factory=list)

    def spawn(self, namespace: str, *command: str) -> subprocess.Popen:
        """A long-running process inside a namespace, killed at teardown."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", netns.netns_path(namespace).rsplit("/", 1)[1], *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def serve_http(self, namespace: str, port: int, body: str) -> None:
        """busybox httpd serving `body` as /index.html on `port` inside `namespace`."""
        root = self.directory / f"www-{namespace.rsplit('/', 1)[-1]}-{port}"
        root.mkdir()
        (root / "index.html").write_text(body)
        self.spawn(namespace, BUSYBOX, "httpd", "-f", "-p", str(port), "-h", str(root))

    async def run_in(
        self, namespace: str, *command: str, stdin: bytes = b"", timeout_seconds: float = 20.0
    ) -> subprocess.CompletedProcess:
        """Run a command inside a namespace without blocking Trio (the DNS server is served
        by this very process); killed after `timeout_seconds` (returncode -9 then)."""
        name = netns.netns_path(namespace).rsplit("/", 1)[1]
        argv = ["ip", "netns", "exec", name, *command]
        with trio.move_on_after(timeout_seconds):
            return await trio.run_process(argv, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False)
        return subprocess.CompletedProcess(argv, -9, b"", b"timed out")

    async def fetch_once(self, namespace: str, url: str) -> str | None:
        """GET `url` (http://address:port/) with busybox nc (busybox-static's wget crashes
        in its libc lookups); the body on a 200 answer, else None."""
        address, _, port = url.removeprefix("http://").rstrip("/").partition(":")
        result = await self.run_in(
            namespace, BUSYBOX, "nc", "-w", "2", address, port or "80", stdin=b"GET / HTTP/1.0\r\n\r\n"
        )
        head, _, body = result.stdout.decode(errors="replace").partition("\r\n\r\n")
        if result.returncode != 0 or not (head.startswith("HTTP/1.") and head[8:13] == " 200 "):
            return None
        return body

    async def fetch(self, namespace: str, url: str, attempts: int = 20) -> str | None:
        """`fetch_once` with retries (a server may still be starting)."""
        for _ in range(attempts):
            body = await self.fetch_once(namespace, url)
            if body is not None:
                return body
            await trio.sleep(0.1)
        return None

    async def python_in(self, namespace: str, code: str, resolv_conf: Path | None = None) -> subprocess.CompletedProcess:
        """Python inside a namespace; with `resolv_conf`, that file is bind-mounted over
        /etc/resolv.conf in a private mount namespace (the real file is never touched)."""
        if resolv_conf is None:
            return await self.run_in(namespace, sys.executable, "-c", code)
        script = f'mount --bind "{resolv_conf}" /etc/resolv.conf && exec "{sys.executable}" -c "$0"'
        return await self.run_in(
            namespace, "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, code
        )


def flotta_leftovers(world: World) -> list[str]:
    leftovers = [f"netns {name}" for name in netns.list_netns(world.container_prefix)]
    if netns.netns_exists(world.host):
        links = run("ip", "-n", world.host, "-br", "link")
        leftovers += [f"link {line.split()[0]}" for line in links.splitlines()
                      if line.split()[0].split("@")[0] not in ("lo", "uplink0")]
        tables = run("ip", "netns", "exec", world.host, "nft", "list", "tables")
        leftovers += [f"nft {line}" for line in tables.splitlines() if "flotta" in line]
    return leftovers


async def start_driver(world: World, state: Path, nursery: trio.Nursery, **options: object) -> NetworkDriver:
    driver = NetworkDriver(
        state,
        host_netns=world.host,
        netns_prefix=world.container_prefix,
        resolv_conf_path=world.resolv_conf,
        dns_forward_timeout_seconds=0.5,
        **options,  # type: ignore[arg-type]
    )
    await driver.restore()
    await nursery.start(driver.serve)
    return driver


async def stop_driver(driver: NetworkDriver) -> None:
    """What the daemon does at the end: release every container, then clean the host."""
    for container_id in list(driver.state.sandboxes):
        await driver.release_container(container_id)
    for network in list(driver.state.networks.values()):
        if not network.predefined:
            await driver.remove_network(network.id)
    await driver.shutdown(no_containers_left=True)
