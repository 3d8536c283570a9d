"""flottad's configuration: command-line flags and the data-root layout."""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs

DEFAULT_DATA_ROOT = "/var/lib/flotta"
DEFAULT_SOCKET = "unix:///run/flotta.sock"
DEFAULT_EXEC_ROOT = "/run/flotta"


class ConfigError(ValueError):
    """A flag combination flottad refuses to start with."""


@attrs.frozen
class Listen:
    kind: str  # "unix" or "tcp"
    address: str  # a path, or host:port
    host: str = ""
    port: int = 0


@attrs.frozen
class DaemonConfig:
    data_root: Path
    exec_root: Path
    listens: tuple[Listen, ...]
    tls_verify: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_tcp: bool = False
    socket_mode: int = 0o660
    runtime: str = "crun"
    insecure_registries: tuple[str, ...] = ()
    bridge_subnet: str = "172.28.0.0/16"
    log_level: str = "info"
    shutdown_timeout_seconds: float = 15.0

    @property
    def containers_dir(self) -> Path:
        return self.data_root / "containers"

    @property
    def images_dir(self) -> Path:
        return self.data_root / "images"


def parse_listen(value: str) -> Listen:
    if value.startswith("unix://"):
        path = value[len("unix://") :]
        if not path.startswith("/"):
            raise ConfigError(f"--host {value}: a UNIX socket path must be absolute")
        return Listen("unix", path)
    if value.startswith("tcp://"):
        rest = value[len("tcp://") :].rstrip("/")
        host, separator, port = rest.rpartition(":")
        if not separator or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"--host {value}: expected tcp://ADDRESS:PORT")
        return Listen("tcp", rest, host.strip("[]") or "0.0.0.0", int(port))
    if value.startswith("fd://"):
        raise ConfigError(f"--host {value}: socket activation is not supported")
    raise ConfigError(f"--host {value}: expected unix:///PATH or tcp://ADDRESS:PORT")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flottad",
        description="The flotta daemon: containers, images, networks and volumes behind the Docker Engine API.",
    )
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where flotta keeps its state (default %(default)s)")
    parser.add_argument("--exec-root", default=DEFAULT_EXEC_ROOT, help="runtime state: sockets, crun state (default %(default)s)")
    parser.add_argument("-H", "--host", action="append", default=[], help="unix:///PATH or tcp://ADDR:PORT to listen on (repeatable; default unix:///run/flotta.sock)")
    parser.add_argument("--tlsverify", action="store_true", help="require TLS and verify client certificates on TCP")
    parser.add_argument("--tlscacert", help="CA certificate that signs client certificates")
    parser.add_argument("--tlscert", help="server certificate")
    parser.add_argument("--tlskey", help="server key")
    parser.add_argument("--insecure-tcp", action="store_true", help="allow TCP without TLS (dangerous: anyone who can connect is root)")
    parser.add_argument("--socket-mode", default="0660", help="permissions of the UNIX socket (default %(default)s)")
    parser.add_argument("--runtime", default="crun", choices=["crun", "runc"], help="the OCI runtime (default %(default)s)")
    parser.add_argument("--insecure-registry", action="append", default=[], help="registry reachable over plain HTTP or with an unverified certificate (repeatable)")
    parser.add_argument("--bridge-subnet", default="172.28.0.0/16", help="subnet of the default bridge network (default %(default)s)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--shutdown-timeout", type=float, default=15.0, help="seconds to let requests finish on SIGTERM")
    return parser


def config_from_arguments(arguments: argparse.Namespace) -> DaemonConfig:
    listens = tuple(parse_listen(value) for value in (arguments.host or [DEFAULT_SOCKET]))
    tcp = [listen for listen in listens if listen.kind == "tcp"]
    if tcp and not arguments.tlsverify and not arguments.insecure_tcp:
        raise ConfigError(
            "refusing to listen on TCP without --tlsverify and certificates: anyone who can "
            "connect would control this host; pass --tlsverify --tlscacert --tlscert --tlskey, "
            "or --insecure-tcp to force it"
        )
    if arguments.tlsverify and not (arguments.tlscacert and arguments.tlscert and arguments.tlskey):
        raise ConfigError("--tlsverify needs --tlscacert, --tlscert and --tlskey")
    for flag in ("tlscacert", "tlscert", "tlskey"):
        value = getattr(arguments, flag)
        if value and not Path(value).is_file():
            raise ConfigError(f"--{flag} {value}: no such file")
    try:
        socket_mode = int(arguments.socket_mode, 8)
    except ValueError:
        raise ConfigError(f"--socket-mode {arguments.socket_mode}: expected an octal mode") from None
    return DaemonConfig(
        data_root=Path(arguments.data_root).absolute(),
        exec_root=Path(arguments.exec_root).absolute(),
        listens=listens,
        tls_verify=arguments.tlsverify,
        tls_ca=Path(arguments.tlscacert) if arguments.tlscacert else None,
        tls_cert=Path(arguments.tlscert) if arguments.tlscert else None,
        tls_key=Path(arguments.tlskey) if arguments.tlskey else None,
        insecure_tcp=arguments.insecure_tcp,
        socket_mode=socket_mode,
        runtime=arguments.runtime,
        insecure_registries=tuple(arguments.insecure_registry),
        bridge_subnet=arguments.bridge_subnet,
        log_level=arguments.log_level,
        shutdown_timeout_seconds=arguments.shutdown_timeout,
    )
