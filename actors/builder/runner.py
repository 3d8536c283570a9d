"""Running a RUN step in a real container, as Docker's classic builder does.

The container is the previous step's image (its layers as overlay lower dirs) with a
fresh upper dir, created by the builder's own `Executor` (its own state and run roots
and cgroup parent, so it never meets the containers actor's). It runs the step's command
(the shell form already wrapped in the stage's SHELL, or the exec form as is) with no
entrypoint and no healthcheck, as the step's USER in its WORKDIR, with the image's Env
plus the build args in effect, and the container id's first 12 digits as hostname.

Its output is streamed while it runs: stdout as it comes, stderr wrapped in the ANSI red
the classic builder uses. A heredoc script with `#!` is provided read-only under
/dev/pipes.

The network, as Docker's classic builder: by default the container joins the default
bridge through the network actor (`SetupSandbox` with one endpoint on "bridge"; the
/etc/hosts and /etc/resolv.conf are the ones the actor renders, with the build's extra
hosts), and the sandbox is torn down with the container. With `--network none`, or when
the daemon has no network actor, it gets a namespace with only loopback and an /etc/hosts
with localhost and the extra hosts; `--network host` shares the host's (with a copy of
the host's resolv.conf).

After the command ends the container's mount is undone; its upper dir — minus the empty
mount points the runtime had to create and the image lacks — is the step's layer. The
caller commits it, then `remove()`s the container, which also happens when anything
fails or the build is cancelled.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import attrs
import trio

from actors.network.messages import EndpointRequest, Sandbox, SetupSandbox, TeardownSandbox
from actors.supervisor import ocispec
from actors.supervisor.attach import AttachError, Stream
from actors.supervisor.conmon import CreateError
from actors.supervisor.monitor import Container, Executor
from actors.supervisor.states import ContainerNotFound, ContainerStateError
from runtime.actor import Ref
from runtime.errors import ActorError, RemoteError

from .apply import INLINE_SCRIPT_DIRECTORY, RunSpec
from .messages import BuildRequest
from .overlay import remove_runtime_mountpoints

log = logging.getLogger("flotta.builder")

STDERR_START = "\x1b[91m"
STDERR_END = "\x1b[0m"
_NETWORK_SECONDS = 60.0
_HOSTS_LOCAL = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

Emit = Callable[[str], Awaitable[None]]


class RunStepError(Exception):
    """A RUN step failed; `code` is what Docker puts in errorDetail (the exit code)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def new_container_id() -> str:
    return secrets.token_hex(32)


def hosts_file_text(extra_hosts: Sequence[str]) -> str:
    lines = [_HOSTS_LOCAL]
    for entry in extra_hosts:
        name, _, address = entry.partition(":")
        lines.append(f"{address}\t{name}\n")
    return "".join(lines)


@attrs.frozen
class StepNetwork:
    """Where a RUN container's network comes from: a netns path (a sandbox on the default
    bridge), "none" or "host"; and the /etc files to bind (None: flotta's own)."""

    namespace: str
    hosts: str | None = None
    resolv_conf: str | None = None


def container_spec(
    run: RunSpec,
    container_id: str,
    request: BuildRequest,
    files_directory: Path,
    network: StepNetwork,
) -> tuple[ocispec.ContainerSpec, tuple[str, ...]]:
    """The container's spec, and the paths the runtime mounts onto (see the module doc)."""
    mounts: list[ocispec.MountSpec] = []
    destinations = ["/proc", "/dev", "/sys", "/etc/hosts"]
    if run.inline_files:
        pipes = files_directory / "pipes"
        pipes.mkdir(mode=0o755)
        for inline in run.inline_files:
            name = os.path.basename(inline.path)
            target = pipes / name
            target.write_text(inline.data, encoding="utf-8", errors="surrogateescape")
            target.chmod(inline.mode)
        mounts.append(
            ocispec.MountSpec(destination=INLINE_SCRIPT_DIRECTORY, source=str(pipes), readonly=True)
        )
    hostname = container_id[:12]
    hosts = files_directory / "hosts"
    hosts.write_text(network.hosts if network.hosts is not None else hosts_file_text(request.extra_hosts))
    resolv = ""
    resolv_path = files_directory / "resolv.conf"
    if network.resolv_conf is not None:
        resolv_path.write_text(network.resolv_conf)
    elif network.namespace == "host":
        with contextlib.suppress(OSError):
            shutil.copyfile("/etc/resolv.conf", resolv_path)
    if resolv_path.exists():
        resolv = str(resolv_path)
        destinations.append("/etc/resolv.conf")
    spec = ocispec.ContainerSpec(
        args=tuple(run.command),
        env=tuple(run.env),
        cwd=run.working_dir or "/",
        user=run.user,
        hostname=hostname,
        network=network.namespace,
        mounts=tuple(mounts),
        hosts_file=str(hosts),
        resolv_conf_file=resolv,
        shm_size_bytes=request.shm_size_bytes or ocispec.DEFAULT_SHM_BYTES,
        resources=ocispec.Resources(
            memory_bytes=request.memory_bytes,
            cpu_shares=request.cpu_shares,
            cpu_quota_microseconds=request.cpu_quota_microseconds,
            cpu_period_microseconds=request.cpu_period_microseconds,
            cpuset_cpus=request.cpuset_cpus,
        ),
        ulimits=tuple(ocispec.Ulimit(item.name, item.soft, item.hard) for item in request.ulimits),
    )
    return spec, tuple(destinations)


@attrs.define
class RunOutcome:
    container: Container
    upper: Path


async def _pump(container: Container, emit: Emit) -> None:
    """Start the container and forward its output until it ends."""
    try:
        stream = await container.attach()
    except AttachError:
        await container.start()
        return
    decoders = {
        Stream.STDOUT: codecs.getincrementaldecoder("utf-8")("replace"),
        Stream.STDERR: codecs.getincrementaldecoder("utf-8")("replace"),
    }
    try:
        await container.start()
        while True:
            item = await stream.receive()
            if item is None:
                break
            which, data = item
            await _emit_text(emit, which, decoders[which].decode(data))
    finally:
        await stream.aclose()
    for which, decoder in decoders.items():
        await _emit_text(emit, which, decoder.decode(b"", final=True))


async def _emit_text(emit: Emit, which: Stream, text: str) -> None:
    if not text:
        return
    if which is Stream.STDERR:
        text = STDERR_START + text + STDERR_END
    await emit(text)


class StepRunner:
    """RUN steps' containers on the builder's Executor (and sandboxes from the network
    actor, when the daemon has one)."""

    def __init__(self, executor: Executor, networks: Ref | None = None) -> None:
        self.executor = executor
        self.networks = networks
        self._sandboxes: set[str] = set()

    async def _network(self, container_id: str, request: BuildRequest) -> StepNetwork:
        if request.network_mode in ("none", "host") or self.networks is None:
            return StepNetwork("host" if request.network_mode == "host" else "none")
        self._sandboxes.add(container_id)
        try:
            sandbox: Sandbox = await self.networks.ask(
                SetupSandbox(
                    container_id=container_id,
                    container_name=f"builder-{container_id[:12]}",
                    hostname=container_id[:12],
                    endpoints=[EndpointRequest(network="bridge")],
                    extra_hosts=list(request.extra_hosts),
                ),
                timeout=_NETWORK_SECONDS,
            )
        except RemoteError as error:
            raise RunStepError(f"cannot attach the RUN container to the default bridge: {error.message}", 1) from None
        return StepNetwork(sandbox.netns_path, sandbox.hosts, sandbox.resolv_conf)

    async def run(
        self,
        container_id: str,
        run: RunSpec,
        request: BuildRequest,
        lower_dirs: Sequence[str],
        files_directory: Path,
        emit: Emit,
    ) -> RunOutcome:
        """Create, run and clean up the step's container; its upper dir is the layer.

        Raises RunStepError for a command that cannot start or exits non-zero. The
        container exists (exited) when this returns; the caller removes it with
        `remove` whatever happens.
        """
        network = await self._network(container_id, request)
        spec, destinations = await trio.to_thread.run_sync(
            container_spec, run, container_id, request, files_directory, network
        )
        try:
            created = await self.executor.create(container_id, spec, list(lower_dirs))
        except CreateError as error:
            raise RunStepError(error.message, error.exit_code) from None
        except ocispec.SpecError as error:
            raise RunStepError(str(error), 1) from None
        container = created.container
        await _pump(container, emit)
        status = await container.wait()
        await container.cleanup()
        if status.exit_code != 0:
            command = " ".join(run.command)
            raise RunStepError(
                f"The command '{command}' returned a non-zero code: {status.exit_code}",
                status.exit_code,
            )
        upper = container.layout.upper
        await trio.to_thread.run_sync(remove_runtime_mountpoints, upper, destinations, list(lower_dirs))
        return RunOutcome(container, upper)

    async def remove(self, container_id: str) -> None:
        """Remove the step's container if it exists (killing it if it still runs), and
        its network sandbox."""
        with trio.CancelScope(shield=True):
            try:
                container = self.executor.get(container_id)
            except ContainerNotFound:
                pass
            else:
                with contextlib.suppress(ContainerStateError, ContainerNotFound):
                    await container.remove(force=True)
            if container_id in self._sandboxes and self.networks is not None:
                self._sandboxes.discard(container_id)
                try:
                    await self.networks.ask(TeardownSandbox(container_id), timeout=_NETWORK_SECONDS)
                except ActorError as error:
                    log.warning("RUN container %s: network teardown: %s", container_id[:12], error)
