"""`kill -9` at every step of a scenario leaves a consistent store.

A child process runs the scenario with a fault hook that SIGKILLs itself at the k-th
step the store reports; the test then reopens the store and checks it, for every k. The
scenario covers layers from tars, from directories (copied and handed over), pulled
layers kept without their tar, and a save that makes those tars again.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from image_tars import TarBuilder, directory_layers, make_image, tree

from actors.images import archive
from actors.images.layers import extract_layer
from actors.images.store import ImageStore

REPOSITORY = Path(__file__).resolve().parents[3]

SCENARIO = """
import os, signal, sys
from pathlib import Path
from image_tars import directory_layers, make_image
from actors.images import archive
from actors.images.store import ImageStore

kill_at = int(sys.argv[2])
steps = []

def hook(step):
    steps.append(step)
    if len(steps) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

store = ImageStore(Path(sys.argv[1]), fault_hook=hook)
a = make_image(store, [{"base": b"b"}, {"a": b"a"}], tag="a")
b = make_image(store, [{"base": b"b"}, {"c": b"c"}], tag="b")
store.tag(a, "a2")
store.delete("a2")
store.delete("a")
with open(sys.argv[3], "rb") as handle:
    archive.load(store, handle)
directory_layers(store, Path(sys.argv[1] + "-upper"), b)
store.delete(b, force=True)
print(len(steps))
"""


def run_scenario(root: Path, archive_path: Path, kill_at: int) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=f"{REPOSITORY}:{Path(__file__).parent}")
    return subprocess.run([sys.executable, "-c", SCENARIO, str(root), str(kill_at), str(archive_path)],
                          cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=120)


def assert_consistent(root: Path, scratch: Path) -> None:
    store = ImageStore(root)
    assert store.verify() == []
    scratch.mkdir(exist_ok=True)
    for image in store.images():
        for chain, diff_id in zip(image.chain_ids, image.diff_ids, strict=True):
            fresh = scratch / chain[7:19]
            if not fresh.exists():
                with store.open_blob(diff_id) as handle:
                    extract_layer(handle, fresh)
            assert tree(store._layer_dir(chain) / "diff") == tree(fresh), f"layer {chain} incomplete"
    for summary in store.list_images(all=True):
        for tag in summary["RepoTags"]:
            assert store.resolve(tag) == summary["Id"]


@pytest.fixture(scope="module")
def saved_archive(tmp_path_factory):
    directory = tmp_path_factory.mktemp("archive")
    source = ImageStore(directory / "source")
    make_image(source, [{"base": b"b"}, {"loaded": b"l"}], tag="loaded:1")
    path = directory / "saved.tar"
    with open(path, "wb") as handle:
        archive.save(source, ["loaded:1"], handle)
    return path


def kill_at_steps(tmp_path, saved_archive, stride):
    complete = run_scenario(tmp_path / "full", saved_archive, kill_at=0)
    assert complete.returncode == 0, complete.stderr
    step_count = int(complete.stdout.strip())
    assert step_count > 20, "the scenario should pass through many steps"
    assert_consistent(tmp_path / "full", tmp_path / "scratch-full")
    for kill_at in sorted({*range(1, step_count + 1, stride), step_count}):
        root = tmp_path / f"run{kill_at}"
        result = run_scenario(root, saved_archive, kill_at)
        assert result.returncode == -signal.SIGKILL, (kill_at, result.stderr)
        assert_consistent(root, tmp_path / f"scratch{kill_at}")
        # A crashed store can carry on: the same work succeeds afterwards.
        store = ImageStore(root)
        again = make_image(store, [{"base": b"b"}, {"a": b"a"}], tag="again")
        with open(saved_archive, "rb") as handle:
            assert archive.load(store, handle) == ["Loaded image: loaded:1"]
        directory_layers(store, tmp_path / f"again{kill_at}-upper", again)
        assert store.verify() == []


def test_kill_at_a_sample_of_steps_leaves_a_consistent_store(tmp_path, saved_archive):
    kill_at_steps(tmp_path, saved_archive, stride=6)


@pytest.mark.slow
def test_kill_at_every_step_leaves_a_consistent_store(tmp_path, saved_archive):
    kill_at_steps(tmp_path, saved_archive, stride=1)


def test_interrupted_layer_never_appears(tmp_path):
    """A failure while unpacking leaves neither a layer dir nor an image."""
    calls = []

    def hook(step):
        calls.append(step)
        if step == "layer-unpacked":
            raise RuntimeError("injected failure")

    store = ImageStore(tmp_path / "s", fault_hook=hook)
    diff_id = store.add_layer_from_tar(TarBuilder().file("x", b"1").stream())
    with pytest.raises(RuntimeError, match="injected"):
        store.create_image({}, [diff_id])
    assert list((store.root / "layers").iterdir()) == []
    assert list((store.root / "tmp").iterdir()) == []
    assert store.images() == []
