"""Build arguments: which ARG is visible where, and with which value.

The rules (Docker's classic builder, plus BuildKit's automatic platform ARGs):

- ARGs before the first FROM are *global*: usable in FROM lines (image name and
  `--platform`), and inside a stage only after the stage redeclares them (`ARG NAME`,
  which then takes the global value unless it gives its own default).
- A stage ARG is visible from its declaration to the end of the stage; every stage
  starts with none.
- `--build-arg NAME=value` overrides the default of a declared ARG (global or stage).
  A build arg given without a value (JSON null) overrides nothing.
- ENV beats ARG: a name set by ENV (or by the base image's Env) expands to the ENV value.
- The proxy variables (HTTP_PROXY, https_proxy, NO_PROXY, ...) are predefined: a
  `--build-arg` for them reaches RUN without an ARG line, and stays out of the history
  and the cache key unless the Dockerfile declares it.
- TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS,
  BUILDARCH, BUILDVARIANT are set automatically in the global scope (from the build's
  `--platform` and the daemon's platform) and inside a stage when declared (`ARG
  TARGETARCH`). The classic builder lacks them; flotta follows BuildKit here.
- A `--build-arg` that no processed ARG declares is reported as Docker does:
  `[Warning] One or more build-args [NAME] were not consumed`.
"""

from __future__ import annotations

import platform as host_platform
from collections.abc import Iterable, Mapping

import attrs

from .errors import BuildError

PROXY_ARGS = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
)
PLATFORM_ARGS = (
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
)
_ARCHITECTURE_ALIASES = {
    "x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""), "arm64": ("arm64", ""), "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "i386": ("386", ""), "i686": ("386", ""), "386": ("386", ""),
}


@attrs.frozen
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`os/arch[/variant]` (or a bare `arch`, which means linux); BuildError if malformed."""
        parts = text.strip().lower().split("/")
        if len(parts) == 1 and parts[0]:
            parts = ["linux", parts[0]]
        if len(parts) not in (2, 3) or not all(parts):
            raise BuildError(f"failed to parse platform {text}: expected os/arch[/variant]")
        os_name, architecture = parts[0], parts[1]
        variant = parts[2] if len(parts) == 3 else ""
        known = _ARCHITECTURE_ALIASES.get(architecture)
        if known is not None:
            architecture = known[0]
            variant = variant or known[1]
        if architecture == "arm64" and variant == "v8":
            variant = ""
        return cls(os=os_name, architecture=architecture, variant=variant)

    @classmethod
    def host(cls) -> Platform:
        return cls.parse(f"linux/{host_platform.machine() or 'amd64'}")


def platform_args(target: Platform, build: Platform) -> dict[str, str]:
    return {
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
    }


def _env_keys(env: Iterable[str]) -> set[str]:
    return {entry.partition("=")[0] for entry in env}


@attrs.frozen
class ArgScope:
    """The ARGs visible at one point of one stage. Immutable: declare() returns a new one."""

    # --build-arg values; None means "given without a value".
    options: Mapping[str, str | None] = attrs.field(factory=dict)
    # Global ARGs (defaults already substituted), including the automatic platform ARGs.
    meta: Mapping[str, str | None] = attrs.field(factory=dict)
    # ARGs declared in this stage so far, with their (substituted) defaults.
    declared: Mapping[str, str | None] = attrs.field(factory=dict)

    def declare(self, name: str, default: str | None) -> ArgScope:
        return attrs.evolve(self, declared={**self.declared, name: default})

    def declare_global(self, name: str, default: str | None) -> ArgScope:
        """A global ARG: visible to FROM lines, and to the rest of the global ARGs."""
        return attrs.evolve(
            self,
            meta={**self.meta, name: default},
            declared={**self.declared, name: default},
        )

    def enter_stage(self) -> ArgScope:
        return attrs.evolve(self, declared={})

    def _lookup(self, name: str, mapping: Mapping[str, str | None]) -> str | None:
        override = self.options.get(name)
        if override is not None:
            return override
        default = mapping.get(name)
        if default is None:
            return self.meta.get(name)
        return default

    def _values(self, mapping: Mapping[str, str | None]) -> dict[str, str]:
        values: dict[str, str] = {}
        for name in (*mapping, *PROXY_ARGS):
            value = self._lookup(name, mapping)
            if value is not None:
                values[name] = value
        return values

    def allowed(self) -> dict[str, str]:
        """Values of the ARGs usable here: declared ones plus predefined proxies given."""
        return self._values(self.declared)

    def global_values(self) -> dict[str, str]:
        """Values usable in FROM lines: the global ARGs plus predefined proxies given."""
        return self._values(self.meta)

    def run_args(self, config_env: Iterable[str]) -> dict[str, str]:
        """ARG values that reach RUN's environment (those not shadowed by ENV)."""
        shadowed = _env_keys(config_env)
        return {name: value for name, value in self.allowed().items() if name not in shadowed}

    def history_args(self, config_env: Iterable[str]) -> tuple[str, ...]:
        """The `NAME=value` list the classic builder writes before a RUN (`|2 A=1 B=2 ...`).

        Sorted; predefined proxy args only when this stage declares them, so that a proxy
        setting never changes the history or busts the cache.
        """
        entries = [
            f"{name}={value}"
            for name, value in self.run_args(config_env).items()
            if name in self.declared or name not in PROXY_ARGS
        ]
        return tuple(sorted(entries))

    def expansion_env(self, config_env: Iterable[str]) -> dict[str, str]:
        """The variables `$NAME` sees in an instruction: Env first, then visible ARGs."""
        env: dict[str, str] = {}
        for entry in config_env:
            key, _, value = entry.partition("=")
            env[key] = value
        for name, value in self.run_args(config_env).items():
            env[name] = value
        return env


def unused_build_args(
    options: Mapping[str, str | None], referenced: Iterable[str]
) -> tuple[str, ...]:
    seen = set(referenced)
    return tuple(
        sorted(name for name in options if name not in seen and name not in PROXY_ARGS)
    )


def unused_build_args_warning(options: Mapping[str, str | None], referenced: Iterable[str]) -> str | None:
    """Docker's warning line for build args nobody declared, or None."""
    unused = unused_build_args(options, referenced)
    if not unused:
        return None
    return f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed"
