"""The build context: directories and tar streams, .dockerignore, safe extraction, source
resolution for COPY/ADD, --chown lookup, URL sources, and copying into a rootfs."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import io
import lzma
import os
import stat
import tarfile
import threading

import pytest

from actors.builder.archive import detect_compression, extract_tar, is_archive_file, looks_like_tar
from actors.builder.context import BuildContext, SourceTree, resolve_copy_spec, resolve_sources
from actors.builder.errors import ContextError
from actors.builder.instructions import InlineSource
from actors.builder.remote import fetch_url
from actors.builder.transfer import copy_into_rootfs, copy_owner
from actors.builder.users import resolve_chown, resolve_chown_in_rootfs


def write(root, relative: str, data: bytes | str = b"x", mode: int | None = None) -> str:
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(path, mode)
    return path


def tar_bytes(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755
    return info


@pytest.fixture
def context_dir(tmp_path):
    root = tmp_path / "context"
    root.mkdir()
    write(root, "Dockerfile", "FROM scratch\nCOPY . /\n")
    write(root, "a.txt", "alpha\n")
    write(root, "b.txt", "beta\n")
    write(root, "src/x.py", "x\n")
    write(root, "src/sub/y.py", "y\n", mode=0o600)
    write(root, "docs/keep.md", "keep\n")
    write(root, "docs/drop.md", "drop\n")
    write(root, "app.log", "log\n")
    os.symlink("a.txt", root / "link.txt")
    os.symlink("/etc/hostname", root / "absolute-link")
    os.symlink("../../outside", root / "climbing-link")
    write(root, ".dockerignore", "*.log\ndocs\n!docs/keep.md\n")
    return root


def names(sources) -> list[tuple[str, str, list[str]]]:
    return [(source.origin, source.kind, [entry.relative_path for entry in source.entries]) for source in sources]


def test_resolution_of_files_directories_and_wildcards(context_dir):
    tree = BuildContext.from_directory(str(context_dir)).tree()
    sources = resolve_sources(tree, "COPY", ("*.txt", "./src", "/docs"), "/dst/")
    assert names(sources) == [
        ("a.txt", "file", ["a.txt"]),
        ("b.txt", "file", ["b.txt"]),
        ("link.txt", "file", ["link.txt"]),
        ("src", "dir", [".", "sub", "sub/y.py", "x.py"]),
        ("docs", "dir", [".", "keep.md"]),
    ]
    link = sources[2]
    assert link.entries[0].host_path == os.path.realpath(context_dir / "a.txt")
    mode = next(entry.mode for entry in sources[3].entries if entry.relative_path == "sub/y.py")
    assert mode == 0o600


def test_wildcards_follow_go_match(context_dir):
    tree = BuildContext.from_directory(str(context_dir)).tree()
    assert names(resolve_sources(tree, "COPY", ("src/*.py",), "/d/")) == [("src/x.py", "file", ["x.py"])]
    assert names(resolve_sources(tree, "COPY", ("[ab].txt",), "/d/"))[0][0] == "a.txt"
    assert [source.origin for source in resolve_sources(tree, "COPY", ("?.txt",), "/d/")] == ["a.txt", "b.txt"]


@pytest.mark.parametrize(
    ("sources", "destination", "message"),
    [
        (("missing",), "/x", "COPY failed: file not found in build context or excluded by .dockerignore: stat missing: file does not exist"),
        (("../x",), "/x", "COPY failed: forbidden path outside the build context: ../x"),
        (("src/../../x",), "/x", "COPY failed: forbidden path outside the build context: src/../../x"),
        (("app.log",), "/x", "COPY failed: file not found in build context or excluded by .dockerignore: stat app.log: file does not exist"),
        (("docs/drop.md",), "/x", "excluded by .dockerignore: stat docs/drop.md"),
        (("absolute-link",), "/x", "stat absolute-link: file does not exist"),
        (("climbing-link",), "/x", "stat climbing-link: file does not exist"),
        (("*.nothing",), "/x", "COPY failed: no source files were specified"),
        (("a.txt", "b.txt"), "/x", "When using COPY with more than one source file, the destination must be a directory and end with a /"),
        (("*.txt",), "/x", "When using COPY with more than one source file"),
        (("https://example.com/f",), "/x", "COPY failed: source can't be a URL for COPY"),
    ],
)
def test_resolution_errors(context_dir, sources, destination, message):
    tree = BuildContext.from_directory(str(context_dir)).tree()
    with pytest.raises(ContextError) as caught:
        resolve_sources(tree, "COPY", sources, destination)
    assert message in caught.value.message


def test_other_stage_tree_has_plain_not_found_message(tmp_path):
    tree = SourceTree(str(tmp_path), is_context=False)
    with pytest.raises(ContextError) as caught:
        resolve_sources(tree, "COPY", ("/bin/app",), "/app")
    assert caught.value.message == "COPY failed: stat bin/app: file does not exist"


def test_exclude_flag(context_dir):
    tree = BuildContext.from_directory(str(context_dir)).tree()
    sources = resolve_sources(tree, "COPY", ("src",), "/d", excludes=("**/y.py",))
    assert names(sources) == [("src", "dir", [".", "sub", "x.py"])]


def test_inline_sources(context_dir):
    sources = resolve_sources(None, "COPY", (), "/etc/", inline_sources=(InlineSource("motd", "hi\n", True),))
    assert sources[0].data == b"hi\n"
    assert sources[0].name == "motd"


def test_add_detects_archives_by_content(context_dir):
    write(context_dir, "data.bin", gzip.compress(tar_bytes([("inner.txt", b"inner")])))
    write(context_dir, "fake.tar.gz", "not an archive")
    tree = BuildContext.from_directory(str(context_dir)).tree()
    archive, fake = resolve_sources(tree, "ADD", ("data.bin", "fake.tar.gz"), "/d/", unpack_local=True)
    assert archive.is_archive and not fake.is_archive
    (copied,) = resolve_sources(tree, "COPY", ("data.bin",), "/d/")
    assert not copied.is_archive


def test_add_url_needs_a_fetcher_and_checksum_only_for_urls(context_dir):
    tree = BuildContext.from_directory(str(context_dir)).tree()
    with pytest.raises(ContextError) as caught:
        resolve_sources(tree, "ADD", ("http://127.0.0.1:9/x",), "/x")
    assert "cannot download http://127.0.0.1:9/x" in caught.value.message
    with pytest.raises(ContextError) as caught:
        resolve_sources(tree, "ADD", ("a.txt",), "/x", checksum="sha256:" + "0" * 64)
    assert caught.value.message == "ADD failed: checksum can't be specified for non-HTTP(S) sources"


@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    write(served, "file.txt", "downloaded\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_add_url_with_fetcher(http_server, tmp_path, context_dir):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    tree = BuildContext.from_directory(str(context_dir)).tree()
    digest = hashlib.sha256(b"downloaded\n").hexdigest()
    (source,) = resolve_sources(
        tree, "ADD", (f"{http_server}/file.txt",), "/d/",
        checksum=f"sha256:{digest}", fetch=lambda url: fetch_url(url, str(downloads)),
    )
    assert source.kind == "url" and source.name == "file.txt"
    with open(source.host_path, "rb") as handle:
        assert handle.read() == b"downloaded\n"
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(ContextError) as caught:
        resolve_sources(
            tree, "ADD", (f"{http_server}/file.txt",), "/d/",
            checksum="sha256:" + "1" * 64, fetch=lambda url: fetch_url(url, str(other)),
        )
    assert caught.value.message == f"ADD failed: digest mismatch sha256:{digest}: expected sha256:{'1' * 64}"
    with pytest.raises(ContextError) as caught:
        fetch_url(f"{http_server}/missing", str(downloads))
    assert "status 404" in caught.value.message


# --- contexts from tar streams --------------------------------------------------------


CONTEXT_TAR = tar_bytes([("Dockerfile", b"FROM scratch\n"), ("dir/file", b"content"), (".dockerignore", b"Dockerfile\n")])


@pytest.mark.parametrize(
    "compress",
    [lambda data: data, gzip.compress, bz2.compress, lzma.compress],
    ids=["plain", "gzip", "bzip2", "xz"],
)
def test_context_from_tar_stream(tmp_path, compress):
    with BuildContext.from_tar_stream(io.BytesIO(compress(CONTEXT_TAR)), temporary_parent=str(tmp_path)) as context:
        assert context.read_dockerfile() == b"FROM scratch\n"
        tree = context.tree()
        assert names(resolve_sources(tree, "COPY", ("dir",), "/d")) == [("dir", "dir", [".", "file"])]
        with pytest.raises(ContextError):
            resolve_sources(tree, "COPY", ("Dockerfile",), "/d")
        root = context.root
    assert not os.path.exists(root)


def test_bare_dockerfile_body(tmp_path):
    with BuildContext.from_tar_stream(io.BytesIO(b"FROM busybox\nRUN echo hi\n"), temporary_parent=str(tmp_path)) as context:
        assert context.read_dockerfile() == b"FROM busybox\nRUN echo hi\n"
    with BuildContext.from_tar_stream(io.BytesIO(gzip.compress(b"FROM x\n")), dockerfile_name="custom.Dockerfile", temporary_parent=str(tmp_path)) as context:
        assert context.read_dockerfile("custom.Dockerfile") == b"FROM x\n"


def test_empty_body_gives_an_empty_context(tmp_path):
    with BuildContext.from_tar_stream(io.BytesIO(b""), temporary_parent=str(tmp_path)) as context:
        with pytest.raises(ContextError) as caught:
            context.read_dockerfile()
        assert caught.value.message == "Cannot locate specified Dockerfile: Dockerfile"


def test_zstd_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ContextError) as caught:
        BuildContext.from_tar_stream(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 100), temporary_parent=str(tmp_path))
    assert "zstd" in caught.value.message
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("../evil", b"x")], "leaves the target directory"),
        ([("a/../../evil", b"x")], "leaves the target directory"),
        ([("/abs", b"x")], "absolute path"),
        ([special("link", tarfile.SYMTYPE, "/"), ("link/evil", b"x")], "is not a directory"),
        ([special("link", tarfile.SYMTYPE, ".."), ("link/evil", b"x")], "is not a directory"),
        ([special("hard", tarfile.LNKTYPE, "../outside")], "leaves the target directory"),
        ([special("hard", tarfile.LNKTYPE, "missing")], "not in the archive"),
    ],
)
def test_malicious_context_tars_are_refused(tmp_path, entries, message):
    parent = tmp_path / "parent"
    parent.mkdir()
    with pytest.raises(ContextError) as caught:
        BuildContext.from_tar_stream(io.BytesIO(tar_bytes(entries)), temporary_parent=str(parent))
    assert message in caught.value.message
    assert os.listdir(parent) == []
    assert not (tmp_path / "evil").exists()
    assert sorted(os.listdir(tmp_path)) == ["parent"]


def test_symlink_entry_is_replaced_not_followed(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("original")
    data = tar_bytes([special("f", tarfile.SYMTYPE, str(outside)), ("f", b"replaced")])
    extract_tar(io.BytesIO(data), str(target))
    assert outside.read_text() == "original"
    assert (target / "f").read_bytes() == b"replaced"
    assert not (target / "f").is_symlink()


def test_extraction_keeps_modes_links_and_skips_devices(tmp_path):
    directory = special("ro", tarfile.DIRTYPE)
    directory.mode = 0o555
    fifo = special("fifo", tarfile.FIFOTYPE)
    data = tar_bytes([directory, ("ro/file", b"data"), special("ro/link", tarfile.SYMTYPE, "file"), special("hard", tarfile.LNKTYPE, "ro/file"), fifo])
    result = extract_tar(io.BytesIO(data), str(tmp_path))
    assert stat.S_IMODE(os.stat(tmp_path / "ro").st_mode) == 0o555
    assert os.readlink(tmp_path / "ro" / "link") == "file"
    assert os.stat(tmp_path / "hard").st_ino == os.stat(tmp_path / "ro" / "file").st_ino
    assert result.skipped == ("fifo",)
    os.chmod(tmp_path / "ro", 0o755)


def test_extraction_limits(tmp_path):
    data = tar_bytes([("a", b"12345"), ("b", b"12345")])
    with pytest.raises(ContextError):
        extract_tar(io.BytesIO(data), str(tmp_path), bytes_max=8)
    with pytest.raises(ContextError):
        extract_tar(io.BytesIO(data), str(tmp_path), entries_max=1)


def test_truncated_archive(tmp_path):
    data = gzip.compress(tar_bytes([("a", b"x" * 5000)]))[:-20]
    with pytest.raises(ContextError) as caught:
        extract_tar(io.BytesIO(data), str(tmp_path))
    assert "invalid tar archive" in caught.value.message


def test_compression_and_tar_detection(tmp_path):
    assert detect_compression(gzip.compress(b"x")) == "gzip"
    assert detect_compression(bz2.compress(b"x")) == "bzip2"
    assert detect_compression(lzma.compress(b"x")) == "xz"
    assert detect_compression(b"plain") == "none"
    assert looks_like_tar(tar_bytes([("a", b"b")])[:512])
    assert not looks_like_tar(b"FROM x\n".ljust(512, b" "))
    assert not looks_like_tar(bytes(512))
    for name, data in [("t.xz", lzma.compress(tar_bytes([("a", b"b")]))), ("t", tar_bytes([("a", b"b")]))]:
        assert is_archive_file(write(tmp_path, name, data))
    assert not is_archive_file(write(tmp_path, "empty", b""))
    assert not is_archive_file(write(tmp_path, "text.tar", b"hello"))


def test_dockerfile_lookup(tmp_path):
    write(tmp_path, "dockerfile", "FROM lower\n")
    write(tmp_path, "sub/Other", "FROM other\n")
    write(tmp_path, "Empty", "")
    context = BuildContext.from_directory(str(tmp_path))
    assert context.read_dockerfile() == b"FROM lower\n"
    assert context.read_dockerfile("sub/Other") == b"FROM other\n"
    with pytest.raises(ContextError) as caught:
        context.read_dockerfile("Nope")
    assert caught.value.message == "Cannot locate specified Dockerfile: Nope"
    with pytest.raises(ContextError) as caught:
        context.read_dockerfile("Empty")
    assert caught.value.message == "the Dockerfile (Empty) cannot be empty"
    with pytest.raises(ContextError):
        context.read_dockerfile("../x")


def test_bad_dockerignore(tmp_path):
    write(tmp_path, ".dockerignore", "!\n")
    with pytest.raises(ContextError) as caught:
        BuildContext.from_directory(str(tmp_path))
    assert "error reading .dockerignore" in caught.value.message


# --- --chown ------------------------------------------------------------------------

PASSWD = "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1001::/home/app:/bin/sh\nbroken line\n"
GROUP = "root:x:0:\napp:x:1001:\nstaff:x:50:\n"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("app", (1000, 1001)), ("app:staff", (1000, 50)), ("1:2", (1, 2)), ("7", (7, 7)), ("app:3", (1000, 3)), ("0:app", (0, 1001))],
)
def test_chown_resolution(spec, expected):
    assert resolve_chown(spec, PASSWD, GROUP) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nobody", "can't find uid for user nobody: no such user: nobody"),
        ("app:nogroup", "can't find gid for group nogroup: no such group: nogroup"),
        ("a:b:c", "invalid chown string format: a:b:c"),
        ("-1", "negative uid"),
    ],
)
def test_chown_errors(spec, message):
    with pytest.raises(ContextError) as caught:
        resolve_chown(spec, PASSWD, GROUP)
    assert message in caught.value.message


def test_chown_in_rootfs_follows_symlinks_inside(tmp_path):
    write(tmp_path, "real/passwd", PASSWD)
    write(tmp_path, "etc/group", GROUP)
    os.symlink("/real/passwd", tmp_path / "etc" / "passwd")
    assert resolve_chown_in_rootfs("app", str(tmp_path)) == (1000, 1001)
    assert resolve_chown_in_rootfs("5:6", str(tmp_path / "nothing")) == (5, 6)
    with pytest.raises(ContextError) as caught:
        resolve_chown_in_rootfs("app", str(tmp_path / "nothing"))
    assert "the image has no /etc/passwd" in caught.value.message


# --- copying into a rootfs --------------------------------------------------------------


def listing(root) -> dict[str, tuple[str, int]]:
    found = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            kind = "l" if stat.S_ISLNK(info.st_mode) else "d" if stat.S_ISDIR(info.st_mode) else "f"
            found[os.path.relpath(path, root)] = (kind, stat.S_IMODE(info.st_mode))
    return found


def test_copy_directory_contents_file_and_rename(context_dir, tmp_path):
    tree = BuildContext.from_directory(str(context_dir)).tree()
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    copy_into_rootfs(str(rootfs), resolve_sources(tree, "COPY", ("src",), "/app"), "/app")
    copy_into_rootfs(str(rootfs), resolve_sources(tree, "COPY", ("a.txt", "link.txt"), "/app/"), "/app/")
    copy_into_rootfs(str(rootfs), resolve_sources(tree, "COPY", ("b.txt",), "/opt/deep/renamed"), "/opt/deep/renamed", chmod=0o600)
    files = listing(rootfs)
    assert files["app/x.py"] == ("f", 0o644)
    assert files["app/sub/y.py"] == ("f", 0o600)
    assert files["app/link.txt"] == ("f", 0o644)
    assert (rootfs / "app" / "link.txt").read_text() == "alpha\n"
    assert files["opt/deep"] == ("d", 0o755)
    assert files["opt/deep/renamed"] == ("f", 0o600)
    assert "app/src" not in files


def test_copy_into_existing_directory_without_slash(context_dir, tmp_path):
    tree = BuildContext.from_directory(str(context_dir)).tree()
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    copy_into_rootfs(str(rootfs), resolve_sources(tree, "COPY", ("a.txt",), "/etc"), "/etc")
    assert (rootfs / "etc" / "a.txt").read_text() == "alpha\n"


def test_copy_never_leaves_the_rootfs(context_dir, tmp_path):
    tree = BuildContext.from_directory(str(context_dir)).tree()
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), rootfs / "escape")
    os.symlink("../../../outside/file", rootfs / "climb")
    copy_into_rootfs(str(rootfs), resolve_sources(tree, "COPY", ("a.txt",), "/escape/"), "/escape/")
    copy_into_rootfs(str(rootfs), resolve_sources(tree, "COPY", ("b.txt",), "/climb"), "/climb")
    assert os.listdir(outside) == []
    assert (rootfs / str(outside).lstrip("/") / "a.txt").read_text() == "alpha\n"
    assert not (rootfs / "climb").is_symlink()


def test_add_extracts_archives_with_their_owners(context_dir, tmp_path):
    info = tarfile.TarInfo("pkg/bin/tool")
    data = b"#!/bin/sh\n"
    info.size = len(data)
    info.mode = 0o755
    info.uid, info.gid = 123, 456
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.addfile(info, io.BytesIO(data))
    write(context_dir, "release.bin", buffer.getvalue())
    tree = BuildContext.from_directory(str(context_dir)).tree()
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    sources = resolve_sources(tree, "ADD", ("release.bin",), "/opt", unpack_local=True)
    copy_into_rootfs(str(rootfs), sources, "/opt", owner=(1, 1))
    tool = rootfs / "opt" / "pkg" / "bin" / "tool"
    assert tool.read_bytes() == data
    if os.geteuid() == 0:
        assert (os.stat(tool).st_uid, os.stat(tool).st_gid) == (123, 456)


@pytest.mark.root
def test_copy_owners(context_dir, tmp_path):
    tree = BuildContext.from_directory(str(context_dir)).tree()
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "existing").mkdir()
    copy_into_rootfs(str(rootfs), resolve_sources(tree, "COPY", ("src",), "/new/app"), "/new/app", owner=(1000, 1001))
    for relative in ("new", "new/app", "new/app/x.py", "new/app/sub/y.py"):
        info = os.lstat(rootfs / relative)
        assert (info.st_uid, info.st_gid) == (1000, 1001), relative
    copy_into_rootfs(str(rootfs), resolve_sources(tree, "COPY", ("src",), "/existing"), "/existing", owner=(5, 5))
    assert os.lstat(rootfs / "existing").st_uid == 0
    assert os.lstat(rootfs / "existing" / "x.py").st_uid == 5
    other_stage = tmp_path / "stage"
    write(other_stage, "bin/app", "app")
    os.chown(other_stage / "bin" / "app", 77, 88)
    stage_tree = SourceTree(str(other_stage), is_context=False)
    copy_into_rootfs(str(rootfs), resolve_sources(stage_tree, "COPY", ("/bin/app",), "/usr/bin/app"), "/usr/bin/app", owner=None)
    info = os.lstat(rootfs / "usr" / "bin" / "app")
    assert (info.st_uid, info.st_gid) == (77, 88)


def test_copy_owner_helper(tmp_path):
    write(tmp_path, "etc/passwd", PASSWD)
    write(tmp_path, "etc/group", GROUP)
    assert copy_owner("app", False, str(tmp_path)) == (1000, 1001)
    assert copy_owner(None, True, str(tmp_path)) is None
    assert copy_owner(None, False, str(tmp_path)) == (0, 0)


def test_resolve_copy_spec(context_dir):
    from builderhelpers import evaluate

    tree = BuildContext.from_directory(str(context_dir)).tree()
    step = evaluate("FROM x\nCOPY --exclude=*.py src /app/\n").steps[-1]
    assert names(resolve_copy_spec(tree, step.copy)) == [("src", "dir", [".", "sub", "sub/y.py"])]
    step = evaluate("FROM x\nCOPY --exclude=**/*.py src *.txt /app/\n").steps[-1]
    assert names(resolve_copy_spec(tree, step.copy)) == [
        ("src", "dir", [".", "sub"]),
        ("a.txt", "file", ["a.txt"]),
        ("b.txt", "file", ["b.txt"]),
        ("link.txt", "file", ["link.txt"]),
    ]
    step = evaluate("FROM x\nCOPY --exclude=b.txt *.txt /app/\n").steps[-1]
    assert [source.origin for source in resolve_copy_spec(tree, step.copy)] == ["a.txt", "link.txt"]


def test_inline_and_downloaded_files_are_written(http_server, tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    inline = resolve_sources(None, "COPY", (), "/etc/motd", inline_sources=(InlineSource("EOF", "hello\n", True),))
    copy_into_rootfs(str(rootfs), inline, "/etc/motd")
    assert (rootfs / "etc" / "motd").read_text() == "hello\n"
    assert stat.S_IMODE(os.stat(rootfs / "etc" / "motd").st_mode) == 0o644
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    fetched = resolve_sources(
        None, "ADD", (f"{http_server}/file.txt",), "/srv/",
        fetch=lambda url: fetch_url(url, str(downloads)),
    )
    copy_into_rootfs(str(rootfs), fetched, "/srv/")
    assert (rootfs / "srv" / "file.txt").read_text() == "downloaded\n"
    assert stat.S_IMODE(os.stat(rootfs / "srv" / "file.txt").st_mode) == 0o600


def test_dockerignore_inside_a_context_tar(tmp_path):
    data = tar_bytes([
        ("Dockerfile", b"FROM x\n"),
        (".dockerignore", b"secret\n*.key\n"),
        ("secret/token", b"t"),
        ("app.key", b"k"),
        ("app.py", b"print()"),
    ])
    with BuildContext.from_tar_stream(io.BytesIO(data), temporary_parent=str(tmp_path)) as context:
        tree = context.tree()
        assert tree.all_paths() == [".dockerignore", "Dockerfile", "app.py"]
        for hidden in ("secret/token", "app.key"):
            with pytest.raises(ContextError):
                resolve_sources(tree, "COPY", (hidden,), "/x")
