"""Which images `up` builds or pulls, the build request, and the command line's errors
(no daemon needed for any of these)."""

from __future__ import annotations

import io
import json
import textwrap

import pytest

from actors.compose import cli
from actors.compose.images import ImageError, Images
from actors.compose.loader import load_files
from actors.compose.progress import Progress


def project(text: str, tmp_path):
    return load_files([(str(tmp_path / "compose.yaml"), textwrap.dedent(text))],
                      working_dir=str(tmp_path), project_name="demo").project


class FakeEngine:
    def __init__(self, present: set[str]) -> None:
        self.present = set(present)

    def image(self, name):
        return {"Id": f"sha256:{name}"} if name in self.present else None


class Recording(Images):
    def __init__(self, present: set[str]) -> None:
        super().__init__(FakeEngine(present), Progress(io.StringIO()), config_directory="/none")
        self.done: list[str] = []

    def build(self, project, service, **options):
        self.done.append(f"build {service.name}")
        self.engine.present.add(f"demo-{service.name}" if not service.image else service.image)
        return "sha256:built"

    def pull(self, service, image, quiet=False):
        self.done.append(f"pull {image}")
        self.engine.present.add(image)


SERVICES = """
services:
  pulled: {image: "registry.example/app:1"}
  built: {build: ./app}
  both: {image: "example/both:2", build: ./app}
  always: {image: "example/always", pull_policy: always}
  never: {image: "example/never", pull_policy: never}
"""


@pytest.mark.parametrize(("present", "flags", "expected"), [
    (set(), {}, ["pull registry.example/app:1", "build built", "build both",
                 "pull example/always"]),
    ({"registry.example/app:1", "demo-built", "example/both:2", "example/always"}, {},
     ["pull example/always"]),
    ({"registry.example/app:1", "demo-built", "example/both:2", "example/always"},
     {"build": True}, ["build built", "build both", "pull example/always"]),
    ({"registry.example/app:1", "demo-built", "example/both:2", "example/always"},
     {"pull_policy": "always"}, ["pull registry.example/app:1", "pull example/always"]),
])
def test_what_is_built_and_pulled(tmp_path, present, flags, expected):
    (tmp_path / "app").mkdir()
    p = project(SERVICES, tmp_path)
    helper = Recording(present)
    digests = helper.ensure(p, ["pulled", "built", "both", "always"], **flags)
    assert helper.done == expected
    assert set(digests) == {"pulled", "built", "both", "always"}


def test_missing_images_that_may_not_be_fetched(tmp_path):
    (tmp_path / "app").mkdir()
    p = project(SERVICES, tmp_path)
    with pytest.raises(ImageError, match="No such image: example/never"):
        Recording(set()).ensure(p, ["never"])
    with pytest.raises(ImageError, match="image demo-built for service built is missing and "
                                         "was not built"):
        Recording(set()).ensure(p, ["built"], no_build=True)


def test_build_request(tmp_path):
    (tmp_path / "app").mkdir()
    p = project("""
        services:
          web:
            build:
              context: ./app
              args: {GREETING: hi}
              target: final
              labels: {com.example: x}
              tags: ["example/web:extra"]
        """, tmp_path)
    helper = Images(FakeEngine(set()), Progress(io.StringIO()), config_directory="/none")
    query = helper.build_query(p, p.services["web"], "Dockerfile", no_cache=True, pull=False,
                               build_args={"EXTRA": "1"})
    assert query["t"] == ["demo-web", "example/web:extra"]
    assert query["dockerfile"] == "Dockerfile"
    assert json.loads(query["buildargs"]) == {"EXTRA": "1", "GREETING": "hi"}
    assert json.loads(query["labels"]) == {
        "com.example": "x", "com.docker.compose.project": "demo",
        "com.docker.compose.service": "web", "com.docker.compose.version": "2.40.0"}
    assert (query["nocache"], query["pull"], query["target"]) == ("1", None, "final")


def run(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_usage_errors(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _out, err = run(["up", "--bogus"], capsys)
    assert (code, err.splitlines()[0]) == (125, "unknown flag: --bogus")
    code, out, err = run(["frobnicate"], capsys)
    assert (code, err) == (1, 'unknown docker command: "compose frobnicate"\n')
    assert out.startswith("Usage:  flotta compose [OPTIONS] COMMAND")
    code, _out, err = run(["port", "web"], capsys)
    assert code == 1 and "'flotta compose port' requires 2 arguments" in err
    code, out, _err = run(["up", "--help"], capsys)
    assert code == 0 and "--abort-on-container-exit" in out


def test_cli_errors_before_anything_is_created(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: busybox}\n")
    monkeypatch.setenv("FLOTTA_HOST", f"unix://{tmp_path}/no-daemon.sock")
    code, _out, err = run(["up", "-d", "--abort-on-container-exit"], capsys)
    assert (code, err) == (1, "--abort-on-container-exit and --detach are incompatible\n")
    code, _out, err = run(["up", "--scale", "web"], capsys)
    assert (code, err) == (1, "invalid scale specifier: web\n")
    code, _out, err = run(["up", "--scale", "db=2"], capsys)
    assert (code, err) == (1, "no such service: db\n")
    code, _out, err = run(["up", "-d"], capsys)
    assert code == 1
    assert err.startswith(f"Cannot connect to the flotta daemon at unix://{tmp_path}")


def test_cli_config_and_version(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text(
        "name: demo\nservices:\n  web: {image: busybox}\n  db: {image: busybox}\n")
    code, out, _err = run(["config", "--services"], capsys)
    assert (code, out) == (0, "db\nweb\n")
    code, out, _err = run(["config", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["services"]["web"]["image"] == "busybox"
    code, out, _err = run(["config", "-q"], capsys)
    assert (code, out) == (0, "")
    code, out, _err = run(["version", "--short"], capsys)
    assert (code, out) == (0, "2.40.0\n")
    code, out, _err = run(["-p", "other", "config", "--images"], capsys)
    assert (code, out) == (0, "busybox\nbusybox\n")
