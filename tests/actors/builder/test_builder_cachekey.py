"""Cache keys: content checksums ignore mtimes and listing order but see every byte, mode,
owner and symlink target; a changed file changes its instruction's key and those after."""

from __future__ import annotations

import os
import tempfile

from builderhelpers import evaluate
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.builder.apply import StepKind
from actors.builder.cachekey import cache_key, sources_checksum, step_cache_key, step_created_by
from actors.builder.context import BuildContext, resolve_copy_spec, resolve_sources


def valid_tree(tree: dict[str, tuple[bytes, int]]) -> bool:
    paths = set(tree)
    return not any(other.startswith(path + "/") for path in paths for other in paths)


file_trees = st.dictionaries(
    keys=st.from_regex(r"[a-c]{1,2}(/[a-c]{1,2}){0,2}", fullmatch=True),
    values=st.tuples(st.binary(max_size=48), st.sampled_from([0o644, 0o755, 0o600, 0o4755])),
    min_size=1,
    max_size=8,
).filter(valid_tree)


def build(root: str, items: list[tuple[str, tuple[bytes, int]]]) -> None:
    for relative, (data, mode) in items:
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, mode)


def checksum(root: str, owner=(0, 0), chmod=None) -> str:
    tree = BuildContext.from_directory(root).tree()
    return sources_checksum(resolve_sources(tree, "COPY", (".",), "/"), owner, chmod)


@settings(max_examples=40, deadline=None)
@given(file_trees, st.lists(st.floats(min_value=0, max_value=2e9), min_size=1))
def test_touching_mtimes_never_changes_the_checksum(tree, times):
    with tempfile.TemporaryDirectory() as root:
        build(root, list(tree.items()))
        before = checksum(root)
        paths = [os.path.join(directory, name) for directory, dirs, files in os.walk(root) for name in dirs + files]
        for index, path in enumerate(paths):
            moment = times[index % len(times)]
            os.utime(path, (moment, moment))
        assert checksum(root) == before


@settings(max_examples=40, deadline=None)
@given(file_trees, st.data())
def test_changing_any_byte_changes_the_checksum(tree, data):
    with tempfile.TemporaryDirectory() as root:
        build(root, list(tree.items()))
        before = checksum(root)
        relative = data.draw(st.sampled_from(sorted(tree)))
        content = tree[relative][0]
        path = os.path.join(root, relative)
        if content:
            position = data.draw(st.integers(0, len(content) - 1))
            flipped = bytes([content[position] ^ data.draw(st.integers(1, 255))])
            changed = content[:position] + flipped + content[position + 1 :]
        else:
            changed = b"\0"
        with open(path, "wb") as handle:
            handle.write(changed)
        assert checksum(root) != before


@settings(max_examples=40, deadline=None)
@given(file_trees, st.randoms(use_true_random=False))
def test_creation_order_on_disk_does_not_matter(tree, random):
    items = list(tree.items())
    shuffled = items[:]
    random.shuffle(shuffled)
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        build(first, items)
        build(second, shuffled)
        assert checksum(first) == checksum(second)


def test_modes_owners_chmod_names_and_symlinks_count(tmp_path):
    root = str(tmp_path)
    build(root, [("a", (b"x", 0o644))])
    base = checksum(root)
    assert checksum(root, owner=(1000, 1000)) != base
    assert checksum(root, chmod=0o600) != base
    os.chmod(tmp_path / "a", 0o755)
    assert checksum(root) != base
    os.chmod(tmp_path / "a", 0o644)
    assert checksum(root) == base
    os.symlink("a", tmp_path / "link")
    with_link = checksum(root)
    os.unlink(tmp_path / "link")
    os.symlink("b", tmp_path / "link")
    assert checksum(root) != with_link
    os.unlink(tmp_path / "link")
    os.rename(tmp_path / "a", tmp_path / "renamed")
    assert checksum(root) != base


def test_multiple_sources_combine_and_prefixes(tmp_path):
    build(str(tmp_path), [("a", (b"1", 0o644)), ("b", (b"2", 0o644)), ("d/c", (b"3", 0o644))])
    tree = BuildContext.from_directory(str(tmp_path)).tree()
    single = sources_checksum(resolve_sources(tree, "COPY", ("a",), "/"))
    directory = sources_checksum(resolve_sources(tree, "COPY", ("d",), "/"))
    both = sources_checksum(resolve_sources(tree, "COPY", ("a", "b"), "/x/"))
    assert single.startswith("file:") and directory.startswith("dir:") and both.startswith("multi:")
    reordered = sources_checksum(resolve_sources(tree, "COPY", ("b", "a"), "/x/"))
    assert reordered != both


DOCKERFILE = "FROM busybox\nCOPY a.txt /a\nCOPY b.txt /b\nRUN make\nENV DONE=1\n"


def chain_keys(context_root: str) -> list[str]:
    """Keys of every step, each keyed on the previous key as its parent image."""
    tree = BuildContext.from_directory(context_root).tree()
    parent = "sha256:" + "0" * 64
    keys = []
    for step in evaluate(DOCKERFILE).steps:
        checksum_text = None
        if step.kind in (StepKind.COPY, StepKind.ADD):
            checksum_text = sources_checksum(resolve_copy_spec(tree, step.copy), (0, 0), step.copy.chmod)
        parent = step_cache_key(parent, step, checksum_text)
        keys.append(parent)
    return keys


def test_changing_one_file_changes_only_its_step_and_later(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    before = chain_keys(str(tmp_path))
    assert len(set(before)) == 4
    os.utime(tmp_path / "a.txt", (1, 1))
    assert chain_keys(str(tmp_path)) == before
    (tmp_path / "b.txt").write_text("B")
    after = chain_keys(str(tmp_path))
    assert after[0] == before[0]
    assert all(new != old for new, old in zip(after[1:], before[1:], strict=True))


def test_copy_created_by_embeds_the_checksum(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    step = evaluate("FROM busybox\nCOPY --chown=1:1 a.txt /dst\n").steps[0]
    tree = BuildContext.from_directory(str(tmp_path)).tree()
    text = sources_checksum(resolve_copy_spec(tree, step.copy), (1, 1))
    assert step_created_by(step, text) == f"/bin/sh -c #(nop) COPY --chown=1:1 {text} in /dst "


def test_key_parts_all_count():
    base = cache_key("p", "c", {"Env": []}, ["A=1"], "file:x", "me")
    assert base.startswith("sha256:") and len(base) == 71
    variants = [
        cache_key("q", "c", {"Env": []}, ["A=1"], "file:x", "me"),
        cache_key("p", "d", {"Env": []}, ["A=1"], "file:x", "me"),
        cache_key("p", "c", {"Env": ["X=1"]}, ["A=1"], "file:x", "me"),
        cache_key("p", "c", {"Env": []}, ["A=2"], "file:x", "me"),
        cache_key("p", "c", {"Env": []}, ["A=1"], "file:y", "me"),
        cache_key("p", "c", {"Env": []}, ["A=1"], "file:x", "you"),
    ]
    assert base not in variants and len(set(variants)) == len(variants)
    assert cache_key("p", "c", {}, ["B=1", "A=1"]) == cache_key("p", "c", {}, ["A=1", "B=1"])


def test_build_arg_changes_run_key_only_when_in_effect():
    first = evaluate("FROM x\nARG V\nRUN make\n", build_args={"V": "1"}).steps[-1]
    second = evaluate("FROM x\nARG V\nRUN make\n", build_args={"V": "2"}).steps[-1]
    assert step_cache_key("p", first) != step_cache_key("p", second)
    proxy_one = evaluate("FROM x\nRUN make\n", build_args={"HTTP_PROXY": "a"}).steps[-1]
    proxy_two = evaluate("FROM x\nRUN make\n", build_args={"HTTP_PROXY": "b"}).steps[-1]
    assert step_cache_key("p", proxy_one) == step_cache_key("p", proxy_two)
