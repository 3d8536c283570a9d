"""Helpers for the build execution tests: build contexts as tars, `POST /build` through a
real flottad, and reading what a built image holds by running it."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tests.harness import ApiResponse, Flottad


@attrs.frozen
class Entry:
    """One context entry: a file (data, mode, owner), a directory, or a symlink."""

    data: bytes = b""
    mode: int = 0o644
    kind: str = "file"
    link: str = ""
    uid: int = 0
    gid: int = 0
    mtime: float = 1_700_000_000.0


def directory(mode: int = 0o755) -> Entry:
    return Entry(kind="dir", mode=mode)


def symlink(target: str) -> Entry:
    return Entry(kind="symlink", link=target, mode=0o777)


def context_tar(
    files: Mapping[str, str | bytes | Entry], *, mtime: float | None = None, pax: bool = True
) -> bytes:
    """A build context tar; parent directories are implied, entries sorted by name.

    `pax=False` writes a plain ustar archive with whole-second times, as `tar` does (the
    docker CLI recognises a tar on stdin only when its first header is a file's)."""
    buffer = io.BytesIO()
    tar_format = tarfile.PAX_FORMAT if pax else tarfile.USTAR_FORMAT
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for name in sorted(files):
            value = files[name]
            entry = value if isinstance(value, Entry) else Entry(
                data=value.encode() if isinstance(value, str) else value
            )
            info = tarfile.TarInfo(name)
            info.mode = entry.mode
            info.uid, info.gid = entry.uid, entry.gid
            info.mtime = entry.mtime if mtime is None else mtime
            if not pax:
                info.mtime = int(info.mtime)
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.link
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def tar_bytes(files: Mapping[str, bytes], *, uid: int = 0, gid: int = 0) -> bytes:
    """A plain tar archive (for ADD's extraction)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.uid, info.gid = uid, gid
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@attrs.frozen
class BuildOutput:
    status: int
    messages: list[dict[str, Any]]
    body: bytes

    @property
    def text(self) -> str:
        return "".join(str(message.get("stream", "")) for message in self.messages)

    @property
    def error(self) -> str | None:
        if self.status != 200:
            return json.loads(self.body)["message"]
        for message in self.messages:
            if "error" in message:
                return str(message["error"])
        return None

    @property
    def error_code(self) -> int | None:
        for message in self.messages:
            if "errorDetail" in message:
                return message["errorDetail"].get("code")
        return None

    @property
    def image_id(self) -> str:
        ids = [message["aux"]["ID"] for message in self.messages if "aux" in message]
        assert ids, f"no aux ID in the output:\n{self.text}\n{self.error}"
        return ids[-1]

    @property
    def step_ids(self) -> list[str]:
        """The short ids printed after each step (` ---> <id>`)."""
        return re.findall(r"^ ---> ([0-9a-f]{12})$", self.text, re.MULTILINE)

    @property
    def cache_hits(self) -> int:
        return self.text.count(" ---> Using cache\n")

    @property
    def containers(self) -> list[str]:
        return re.findall(r"^ ---> Running in ([0-9a-f]{12})$", self.text, re.MULTILINE)


class BuildDaemon:
    """A flottad with busybox, and the calls the tests make to it."""

    def __init__(self, flottad: Flottad) -> None:
        self.flottad = flottad

    @property
    def data_root(self) -> Path:
        return self.flottad.data_root

    def build_raw(self, body: bytes, query: Mapping[str, Any] | str = "", headers: Mapping[str, str] | None = None) -> ApiResponse:
        """POST /build. RUN steps get no network unless the query says otherwise: every
        flottad on a host shares the default bridge device, and another daemon's shutdown
        (a test's, or anyone's on this machine) removes it (see the builder's report)."""
        if not isinstance(query, str) and "networkmode" not in query:
            query = {**query, "networkmode": "none"}
        elif isinstance(query, str) and "networkmode=" not in query:
            query = f"{query}&networkmode=none" if query else "networkmode=none"
        if not isinstance(query, str):
            pairs: list[tuple[str, str]] = []
            for key, value in query.items():
                for item in value if isinstance(value, list) else [value]:
                    pairs.append((key, item if isinstance(item, str) else json.dumps(item)))
            query = urllib.parse.urlencode(pairs)
        path = "/build" + (f"?{query}" if query else "")
        return self.flottad.api("POST", path, body=body, headers={"Content-Type": "application/x-tar", **(headers or {})}, timeout=300)

    def build(
        self,
        files: Mapping[str, str | bytes | Entry],
        query: Mapping[str, Any] | str = "",
        *,
        ok: bool = True,
    ) -> BuildOutput:
        response = self.build_raw(context_tar(files), query)
        messages = response.lines() if response.status == 200 else []
        output = BuildOutput(response.status, messages, response.body)
        if ok:
            assert output.status == 200 and output.error is None, (
                f"build failed ({output.status}): {output.error}\n{output.text}"
            )
        return output

    def inspect(self, name: str) -> dict[str, Any]:
        response = self.flottad.api("GET", f"/images/{name}/json")
        assert response.status == 200, response.body
        return response.json()

    def image_ids(self) -> set[str]:
        return {image["Id"] for image in self.flottad.api("GET", "/images/json?all=1").json()}

    def output_of(self, image: str, script: str, *, user: str = "root") -> str:
        """What `script` prints when run by sh in a container of `image` (a one-step
        build FROM it, never cached)."""
        dockerfile = f"FROM {image}\nUSER {user}\nRUN {script}\n"
        built = self.build({"Dockerfile": dockerfile}, {"nocache": "1"})
        text = built.text
        start = text.rindex(" ---> Running in ")
        start = text.index("\n", start) + 1
        end = text.index("Removing intermediate container", start)
        return text[start:end]

    def builder_leftovers(self) -> dict[str, list[str]]:
        """What the builder keeps while builds run: none of it may outlive a build."""
        root = self.data_root / "builder"
        found: dict[str, list[str]] = {}
        for name in ("containers", "tmp", "builds", "contexts"):
            directory = root / name
            entries = sorted(p for p in os.listdir(directory) if not p.startswith(".")) if directory.is_dir() else []
            if entries:
                found[name] = entries
        return found


def mounted_under(directory: Path) -> list[str]:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(prefix)]
