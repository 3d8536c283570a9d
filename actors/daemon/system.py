"""System endpoints: _ping, version, info, events, auth, df."""

from __future__ import annotations

import os
import platform
import time
from typing import TYPE_CHECKING, Any

import trio

from actors.daemon.api import (
    API_VERSION,
    ENGINE_VERSION,
    MIN_API_VERSION,
    ApiError,
    Router,
    check_filter_keys,
    query_filters,
)
from actors.daemon.events import FILTER_KEYS, EndOfEvents, Event, Subscribe, Unsubscribe
from runtime.httpserver import Request, Response, json_response, text_response

if TYPE_CHECKING:
    from actors.daemon.context import DaemonContext


def _ping_headers(context: DaemonContext) -> list[tuple[str, str]]:
    return [
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
        ("Builder-Version", "1"),
        ("Swarm", context.swarm_ping_state()),
    ]


def kernel_version() -> str:
    return platform.release()


def operating_system() -> str:
    try:
        with open("/etc/os-release") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def memory_total_bytes() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def version_body() -> dict[str, Any]:
    details = {
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "flotta",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": "amd64" if platform.machine() == "x86_64" else platform.machine(),
        "KernelVersion": kernel_version(),
        "BuildTime": "",
        "Experimental": "false",
    }
    return {
        "Platform": {"Name": "flotta"},
        "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details}],
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "flotta",
        "GoVersion": details["GoVersion"],
        "Os": "linux",
        "Arch": details["Arch"],
        "KernelVersion": details["KernelVersion"],
        "Experimental": False,
        "BuildTime": "",
    }


def parse_timestamp(value: str | None) -> int | None:
    """Docker's since/until: unix seconds with optional fraction, or an RFC 3339 time."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        from datetime import datetime

        try:
            seconds = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise ApiError(400, f"invalid timestamp {value!r}") from None
    return int(seconds * 1_000_000_000)


def build_router(context: DaemonContext) -> Router:
    router = Router()

    @router.route("GET", "/_ping")
    async def ping(request: Request) -> Response:
        headers = _ping_headers(context)
        if request.method == "HEAD":
            return Response(200, b"", headers, "text/plain; charset=utf-8")
        return text_response("OK", headers=headers)

    @router.route("GET", "/version")
    async def version(request: Request) -> Response:
        return json_response(version_body())

    @router.route("GET", "/info")
    async def info(request: Request) -> Response:
        counts = await context.container_counts()
        image_count = await context.image_count()
        body = {
            "ID": context.daemon_id,
            "Containers": counts["total"],
            "ContainersRunning": counts["running"],
            "ContainersPaused": counts["paused"],
            "ContainersStopped": counts["stopped"],
            "Images": image_count,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "null", "overlay"],
                "Authorization": None,
                "Log": ["json-file"],
            },
            "MemoryLimit": True,
            "SwapLimit": True,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "PidsLimit": True,
            "IPv4Forwarding": True,
            "Debug": context.config.log_level == "debug",
            "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": trio.lowlevel.current_statistics().tasks_living,
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": "1",
            "NEventsListener": 0,
            "KernelVersion": kernel_version(),
            "OperatingSystem": operating_system(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": platform.machine(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": [],
                "AllowNondistributableArtifactsHostnames": [],
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "IndexConfigs": {},
                "Mirrors": [],
            },
            "NCPU": os.cpu_count() or 1,
            "MemTotal": memory_total_bytes(),
            "DockerRootDir": str(context.config.data_root),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": platform.node(),
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": ENGINE_VERSION,
            "Runtimes": {"crun": {"path": "crun"}, "runc": {"path": "runc"}},
            "DefaultRuntime": context.config.runtime,
            "Swarm": await context.swarm_info(),
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": [],
            "Warnings": [],
        }
        return json_response(body)

    @router.route("GET", "/events")
    async def events(request: Request) -> None:
        filters = query_filters(request)
        check_filter_keys(filters, FILTER_KEYS)
        since = parse_timestamp(request.query.get("since"))
        until = parse_timestamp(request.query.get("until"))
        async with context.node.open_inbox(capacity=4096, prefix="events-stream") as inbox:
            await context.events.ask(Subscribe(inbox.ref, filters, since, until))
            stream = await request.start_stream()
            try:
                while True:
                    item: object = None
                    if until is None:
                        item = await inbox.receive()
                    else:
                        remaining = until / 1e9 - time.time()
                        if remaining <= 0:
                            try:
                                item = inbox.receive_nowait()
                            except trio.WouldBlock:
                                break
                        else:
                            with trio.move_on_after(remaining):
                                item = await inbox.receive()
                    if item is None or isinstance(item, EndOfEvents):
                        break
                    if isinstance(item, Event):
                        await stream.send_json(item.to_api())
            finally:
                context.events.tell_nowait(Unsubscribe(inbox.ref))
        return None

    return router
