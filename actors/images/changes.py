"""Dockerfile-style `--change` lines applied to an image's `config` (import and commit).

Accepted instructions, as `docker import -c` / `docker commit -c` accept them: CMD,
ENTRYPOINT (JSON array or shell form, which becomes ["/bin/sh", "-c", ...]), ENV and
LABEL (`k=v ...` pairs with quotes, or the old `ENV k v` form), EXPOSE (`80`,
`53/udp`, `8000-8002`), USER, WORKDIR (relative paths join the previous WORKDIR),
VOLUME (JSON array or words), STOPSIGNAL. Anything else raises ChangeError naming it.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import shlex
from collections.abc import Iterable
from typing import Any

from actors.images.errors import InvalidImage

_PORT_RE = re.compile(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?")


class ChangeError(InvalidImage):
    """A `--change` line that is not a supported Dockerfile instruction."""


def _json_or_none(text: str) -> list[str] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _command(text: str) -> list[str]:
    as_json = _json_or_none(text)
    return as_json if as_json is not None else ["/bin/sh", "-c", text]


def _pairs(instruction: str, text: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(text, posix=True)
    except ValueError as error:
        raise ChangeError(f"{instruction} {text}: {error}") from None
    if not words:
        raise ChangeError(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        # The legacy form, ENV only: `ENV key value with spaces`.
        key, _, value = text.strip().partition(" ")
        if instruction != "ENV" or not value.strip():
            raise ChangeError(f"{instruction} {text}: must be of the form name=value")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or not key:
            raise ChangeError(f"{instruction} {text}: {word!r} is not key=value")
        pairs.append((key, value))
    return pairs


def _ports(text: str) -> list[str]:
    ports: list[str] = []
    for word in text.split():
        match = _PORT_RE.fullmatch(word)
        if match is None:
            raise ChangeError(f"EXPOSE {text}: invalid port {word!r}")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        protocol = match.group(3) or "tcp"
        if not 0 < first <= last <= 65535:
            raise ChangeError(f"EXPOSE {text}: invalid port range {word!r}")
        ports.extend(f"{port}/{protocol}" for port in range(first, last + 1))
    return ports


def apply_changes(config: dict[str, Any] | None, changes: Iterable[str]) -> dict[str, Any]:
    """A new image `config` section with `changes` applied (the input is not modified)."""
    result = copy.deepcopy(config) if config else {}
    for line in changes:
        line = line.strip()
        if not line:
            continue
        instruction, _, argument = line.partition(" ")
        instruction = instruction.upper()
        argument = argument.strip()
        if not argument:
            raise ChangeError(f"{instruction} requires an argument")
        if instruction in ("CMD", "ENTRYPOINT"):
            result["Cmd" if instruction == "CMD" else "Entrypoint"] = _command(argument)
        elif instruction == "ENV":
            env = list(result.get("Env") or [])
            for key, value in _pairs("ENV", argument):
                env = [item for item in env if item.partition("=")[0] != key]
                env.append(f"{key}={value}")
            result["Env"] = env
        elif instruction == "LABEL":
            labels = dict(result.get("Labels") or {})
            labels.update(_pairs("LABEL", argument))
            result["Labels"] = labels
        elif instruction == "EXPOSE":
            exposed = dict(result.get("ExposedPorts") or {})
            exposed.update({port: {} for port in _ports(argument)})
            result["ExposedPorts"] = exposed
        elif instruction == "USER":
            result["User"] = argument
        elif instruction == "WORKDIR":
            result["WorkingDir"] = posixpath.normpath(
                posixpath.join(result.get("WorkingDir") or "/", argument))
        elif instruction == "VOLUME":
            volumes = dict(result.get("Volumes") or {})
            paths = _json_or_none(argument) or argument.split()
            volumes.update({path: {} for path in paths})
            result["Volumes"] = volumes
        elif instruction == "STOPSIGNAL":
            result["StopSignal"] = argument
        else:
            raise ChangeError(f"{instruction} is not a valid change command")
    return result
