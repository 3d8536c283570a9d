"""Go's filepath.Match (COPY wildcards), and .dockerignore as the builder applies it (the
matcher itself is actors/client/dockerignore.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.builder.context import BuildContext
from actors.builder.errors import ContextError
from actors.builder.pathmatch import BadPattern, contains_wildcards, match
from actors.client.dockerignore import PatternMatcher

ERROR = "error"

# Cases from Go's documented filepath.Match behaviour.
MATCH_CASES = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a\u263ab", True),
    ("a[^a]b", "a\u263ab", True),
    ("a???b", "a\u263ab", False),
    ("[a-\u03b6]*", "\u03b1", True),
    ("*[a-\u03b6]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", ERROR),
    ("[-]", "-", ERROR),
    ("[x-]", "x", ERROR),
    ("[-x]", "x", ERROR),
    ("\\", "a", ERROR),
    ("[a-b-c]", "a", ERROR),
    ("[", "a", ERROR),
    ("[^", "a", ERROR),
    ("[^bc", "a", ERROR),
    ("a[", "a", ERROR),
    ("a[", "x", ERROR),
    ("*x", "xxx", True),
    ("[z-a]", "m", False),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), MATCH_CASES)
def test_go_filepath_match(pattern, name, expected):
    if expected == ERROR:
        with pytest.raises(BadPattern):
            match(pattern, name)
    else:
        assert match(pattern, name) is expected


def test_contains_wildcards():
    assert contains_wildcards("*.txt")
    assert contains_wildcards("a[bc]")
    assert contains_wildcards("a?")
    assert not contains_wildcards("plain/file.txt")
    assert not contains_wildcards("a\\*b")


def context_with(tmp_path, ignore: bytes | str) -> BuildContext:
    data = ignore.encode() if isinstance(ignore, str) else ignore
    (tmp_path / ".dockerignore").write_bytes(data)
    return BuildContext.from_directory(str(tmp_path))


def test_dockerignore_file_is_read_like_the_cli(tmp_path):
    context = context_with(tmp_path, b"\xef\xbb\xbf# comment\n  *.log  \n\n/build/\n!  /build/keep\n./a//b/../c\n #x\n")
    assert context.ignore_patterns == ["*.log", "build", "!build/keep", "a/c", "#x"]


# What COPY can see, given a .dockerignore (Docker's semantics).
IGNORE_CASES = [
    (["*.md"], "a.md", True),
    (["*.md"], "sub/a.md", False),
    (["**/*.md"], "sub/deeper/a.md", True),
    (["**/*.md"], "a.md", True),
    (["build"], "build/out/x", True),
    (["build"], "rebuild", False),
    (["docs/**"], "docs/a/b", True),
    (["**/node_modules"], "a/b/node_modules/x", True),
    (["**/node_modules"], "node_modules", True),
    (["**"], "anything/at/all", True),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a/**/b"], "a/x/y/c", False),
    (["temp?"], "temp1", True),
    (["temp?"], "temp12", False),
    (["[a-c]x"], "bx", True),
    (["[a-c]x"], "dx", False),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["*.md", "!README.md", "README.md"], "README.md", True),
    (["docs", "!docs/keep.md"], "docs/keep.md", False),
    (["docs", "!docs/keep.md"], "docs/other.md", True),
    (["a.b"], "axb", False),
    (["a+b"], "a+b", True),
    (["(x)"], "(x)", True),
    ([], "anything", False),
    (["*"], ".", False),
]


@pytest.mark.parametrize(("patterns", "path", "expected"), IGNORE_CASES)
def test_dockerignore_table(tmp_path, patterns, path, expected):
    tree = context_with(tmp_path, "\n".join(patterns) + "\n").tree()
    assert tree.excluded(path) is expected


def test_invalid_dockerignore_is_a_context_error(tmp_path):
    with pytest.raises(ContextError):
        context_with(tmp_path, "!\n")
    with pytest.raises(ContextError):
        context_with(tmp_path, "[a\n")


names = st.from_regex(r"[a-z]{1,3}(/[a-z]{1,3}){0,3}", fullmatch=True)


@given(names, names)
def test_directory_pattern_covers_everything_below(directory, rest):
    assert PatternMatcher([directory]).matches(f"{directory}/{rest}")


@given(names)
def test_exception_after_pattern_reincludes(path):
    assert not PatternMatcher([path, "!" + path]).matches(path)
    assert PatternMatcher(["!" + path, path]).matches(path)
