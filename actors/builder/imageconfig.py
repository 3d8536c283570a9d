"""The part of an image's config that Dockerfile instructions change.

Field for field this is the `config` object of a Docker image config (the runtime
defaults: Env, Cmd, Entrypoint, ...), immutable so that config evolution is a chain of
pure functions. `to_docker()` / `from_docker()` convert to and from the JSON shape that
image configs and the Engine API use (`{"Env": [...], "ExposedPorts": {"80/tcp": {}}}`).

`None` and empty differ where Docker distinguishes them: `Cmd: null` (inherit nothing)
versus `Cmd: []` (`CMD []`), and the same for Entrypoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")


@attrs.frozen
class HealthConfig:
    # ("NONE",), ("CMD", ...), ("CMD-SHELL", command); () means "inherit".
    test: tuple[str, ...] = ()
    interval_nanoseconds: int = 0
    timeout_nanoseconds: int = 0
    start_period_nanoseconds: int = 0
    start_interval_nanoseconds: int = 0
    retries: int = 0

    def to_docker(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.test:
            out["Test"] = list(self.test)
        for key, value in (
            ("Interval", self.interval_nanoseconds),
            ("Timeout", self.timeout_nanoseconds),
            ("StartPeriod", self.start_period_nanoseconds),
            ("StartInterval", self.start_interval_nanoseconds),
            ("Retries", self.retries),
        ):
            if value:
                out[key] = value
        return out

    @classmethod
    def from_docker(cls, data: Mapping[str, Any]) -> HealthConfig:
        return cls(
            test=tuple(data.get("Test") or ()),
            interval_nanoseconds=int(data.get("Interval") or 0),
            timeout_nanoseconds=int(data.get("Timeout") or 0),
            start_period_nanoseconds=int(data.get("StartPeriod") or 0),
            start_interval_nanoseconds=int(data.get("StartInterval") or 0),
            retries=int(data.get("Retries") or 0),
        )


def _tuple_or_none(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen
class ImageConfig:
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    healthcheck: HealthConfig | None = None
    args_escaped: bool = False
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    entrypoint: tuple[str, ...] | None = None
    on_build: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    shell: tuple[str, ...] = ()

    def env_value(self, name: str) -> str | None:
        for entry in self.env:
            key, _, value = entry.partition("=")
            if key == name:
                return value
        return None

    def labels_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def effective_shell(self) -> tuple[str, ...]:
        return self.shell or DEFAULT_SHELL

    def to_docker(self) -> dict[str, Any]:
        """The Docker JSON `config` object (keys as Docker writes them)."""
        out: dict[str, Any] = {
            "User": self.user,
            "Env": list(self.env) if self.env else None,
            "Cmd": None if self.cmd is None else list(self.cmd),
            "WorkingDir": self.working_dir,
            "Entrypoint": None if self.entrypoint is None else list(self.entrypoint),
            "OnBuild": list(self.on_build) if self.on_build else None,
            "Labels": dict(sorted(self.labels)) if self.labels else None,
        }
        if self.exposed_ports:
            out["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.volumes:
            out["Volumes"] = {volume: {} for volume in self.volumes}
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_docker()
        if self.args_escaped:
            out["ArgsEscaped"] = True
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.shell:
            out["Shell"] = list(self.shell)
        return out

    @classmethod
    def from_docker(cls, data: Mapping[str, Any] | None) -> ImageConfig:
        """From a Docker JSON `config` object; unknown keys are ignored."""
        if not data:
            return cls()
        healthcheck = data.get("Healthcheck")
        return cls(
            user=data.get("User") or "",
            exposed_ports=tuple(sorted(data.get("ExposedPorts") or {})),
            env=tuple(data.get("Env") or ()),
            cmd=_tuple_or_none(data.get("Cmd")),
            healthcheck=HealthConfig.from_docker(healthcheck) if healthcheck else None,
            args_escaped=bool(data.get("ArgsEscaped")),
            volumes=tuple(sorted(data.get("Volumes") or {})),
            working_dir=data.get("WorkingDir") or "",
            entrypoint=_tuple_or_none(data.get("Entrypoint")),
            on_build=tuple(data.get("OnBuild") or ()),
            labels=tuple(sorted((data.get("Labels") or {}).items())),
            stop_signal=data.get("StopSignal") or "",
            shell=tuple(data.get("Shell") or ()),
        )


def set_env(env: tuple[str, ...], name: str, value: str) -> tuple[str, ...]:
    """Replace NAME's entry in place, or append it (Docker keeps first-seen order)."""
    entry = f"{name}={value}"
    for index, existing in enumerate(env):
        if existing.partition("=")[0] == name:
            return (*env[:index], entry, *env[index + 1 :])
    return (*env, entry)


def set_label(labels: tuple[tuple[str, str], ...], key: str, value: str) -> tuple[tuple[str, str], ...]:
    kept = tuple(pair for pair in labels if pair[0] != key)
    return tuple(sorted((*kept, (key, value))))
