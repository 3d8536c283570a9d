"""Network set-ups the containers actor does without the network actor, and /etc files.

- `none`: a new network namespace with only loopback; /etc/resolv.conf is the host's (as
  Docker does), /etc/hosts has the localhost lines and `--add-host` entries.
- `host`: the host's namespace; /etc/hosts and /etc/resolv.conf are copies of the host's
  (plus `--add-host` entries); the hostname is the host's.
- `container:<id>`: the other container's namespace (`/proc/<its init>/ns/net`) and its
  /etc files and hostname.

The files are written into the container's own directory and bind-mounted by the runtime.
Each is replaced by rename; they are regenerated at every start, so they are not fsynced.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

import attrs

from actors.errdefs import InvalidParameter
from actors.network import etcfiles

HOST_RESOLV_CONF = "/etc/resolv.conf"
HOST_HOSTS = "/etc/hosts"


@attrs.frozen
class EtcFiles:
    hostname: str
    hosts: str
    resolv_conf: str


def host_hostname() -> str:
    return socket.gethostname()


def _read(path: str) -> str | None:
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _resolv_conf(dns: Sequence[str], dns_search: Sequence[str], dns_options: Sequence[str]) -> str:
    if dns or dns_search or dns_options:
        return etcfiles.container_resolv_conf(
            etcfiles.read_host_resolv_conf(HOST_RESOLV_CONF), embedded_dns=False,
            dns=dns, dns_search=dns_search, dns_options=dns_options,
        )  # fmt: skip
    host = _read(HOST_RESOLV_CONF)
    if host is None:
        return etcfiles.container_resolv_conf(etcfiles.ResolvConf(), embedded_dns=False)
    return host


def _extra_hosts(entries: Sequence[str]) -> list[tuple[str, str]]:
    try:
        return [etcfiles.parse_extra_host(entry) for entry in entries]
    except InvalidParameter:
        raise
    except ValueError as error:
        raise InvalidParameter(str(error)) from None


def none_files(
    hostname: str,
    *,
    domainname: str = "",
    extra_hosts: Sequence[str] = (),
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> EtcFiles:
    hosts = etcfiles.hosts_file(hostname, [], domainname=domainname, extra_hosts=_extra_hosts(extra_hosts))
    return EtcFiles(hostname, hosts, _resolv_conf(dns, dns_search, dns_options))


def host_files(
    *,
    extra_hosts: Sequence[str] = (),
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> EtcFiles:
    base = _read(HOST_HOSTS)
    if base is None:
        base = etcfiles.hosts_file("", [])
    if base and not base.endswith("\n"):
        base += "\n"
    hosts = base + "".join(f"{address}\t{name}\n" for name, address in _extra_hosts(extra_hosts))
    return EtcFiles(host_hostname(), hosts, _resolv_conf(dns, dns_search, dns_options))


def write_files(directory: Path, files: EtcFiles) -> None:
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    for name, text in (
        ("hostname", files.hostname + "\n"),
        ("hosts", files.hosts),
        ("resolv.conf", files.resolv_conf),
    ):
        target = directory / name
        temporary = directory / f".{name}.tmp"
        temporary.write_text(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
