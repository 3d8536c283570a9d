""".dockerignore semantics: Docker's documented examples, edge cases, and properties."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.client import dockerignore
from actors.client.dockerignore import PatternMatcher, matches, read_patterns

# (patterns, path, ignored?) — the examples from Docker's .dockerignore documentation plus
# the rules of its pattern matcher.
CASES = [
    (["*/temp*"], "somedir/temporary.txt", True),
    (["*/temp*"], "somedir/temp", True),
    (["*/temp*"], "temp", False),
    (["*/temp*"], "a/b/temp", False),
    (["*/*/temp*"], "somedir/subdir/temporary.txt", True),
    (["*/*/temp*"], "somedir/temporary.txt", False),
    (["temp?"], "tempa", True),
    (["temp?"], "tempab", False),
    (["temp?"], "temp/", False),
    (["**/*.go"], "main.go", True),
    (["**/*.go"], "a/b/c/main.go", True),
    (["**/*.go"], "main.gox", False),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-public.md", False),
    (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
    (["foo"], "foo/bar/baz.txt", True),
    (["foo"], "foobar", False),
    (["foo/"], "foo/x", True),
    (["/foo"], "foo/x", True),
    (["./foo"], "foo", True),
    (["foo/../bar"], "bar", True),
    (["a/**"], "a/b/c", True),
    (["a/**"], "a", False),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a/**/b"], "a/x/y/bc", False),
    (["**"], "anything/at/all", True),
    (["**/x"], "x", True),
    (["**/x"], "a/x", True),
    (["*"], "a/b", True),
    (["[ab]c"], "ac", True),
    (["[^ab]c"], "ac", False),
    (["[^ab]c"], "zc", True),
    (["a\\*b"], "a*b", True),
    (["a\\*b"], "axb", False),
    (["file.txt"], "fileXtxt", False),
    (["a+b(c)"], "a+b(c)", True),
    (["dir", "!dir/keep"], "dir/keep", False),
    (["dir", "!dir/keep"], "dir/drop", True),
    (["dir/*", "!dir/keep*"], "dir/keep.me", False),
    ([], "anything", False),
]


@pytest.mark.parametrize(("patterns", "path", "ignored"), CASES)
def test_documented_semantics(patterns, path, ignored):
    assert matches(path, read_patterns("\n".join(patterns))) is ignored


def test_reading_a_file():
    text = "\ufeff# comment\n  *.log  \n\n!keep.log\n/abs/path/\n./rel//x/\n   # not a comment\n!\n"
    assert read_patterns(text) == ["*.log", "!keep.log", "abs/path", "rel/x", "# not a comment",
                                   "!"]


def test_lone_exclamation_is_an_error():
    with pytest.raises(dockerignore.PatternError):
        PatternMatcher(["!"])


def test_unclosed_class_is_an_error():
    with pytest.raises(dockerignore.PatternError):
        PatternMatcher(["[abc"])


def test_build_files_are_always_kept():
    patterns = dockerignore.trim_build_files(["*", "!src"], "Dockerfile")
    assert not matches("Dockerfile", patterns)
    assert not matches(".dockerignore", patterns)
    assert matches("other", patterns)
    custom = dockerignore.trim_build_files(["docker/"], "docker/Dockerfile.prod")
    assert not matches("docker/Dockerfile.prod", custom)
    assert matches("docker/other", custom)
    assert dockerignore.trim_build_files(["*.py"], "Dockerfile") == ["*.py"]


def _make_tree(root, files):
    for path in files:
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as handle:
            handle.write(path)


def test_walk_descends_only_where_an_exception_points(tmp_path):
    _make_tree(tmp_path, ["a/keep.txt", "a/drop.txt", "b/x/keep.txt", "c.log", "d.txt"])
    entries = [path for path, _ in dockerignore.walk(str(tmp_path),
                                                     ["a", "!a/keep.txt", "b", "*.log"])]
    assert entries == ["a/keep.txt", "d.txt"]
    # Docker's quirk: an exception that does not literally name a path below the ignored
    # directory does not make it descend.
    entries = [path for path, _ in dockerignore.walk(str(tmp_path), ["b", "!**/keep.txt"])]
    assert "b/x/keep.txt" not in entries
    assert "a/keep.txt" in entries


segment = st.sampled_from(["a", "b", "c", "d.txt", "e.log"])
relative_paths = st.lists(segment, min_size=1, max_size=4).map("/".join)


@given(relative_paths, relative_paths)
def test_literal_pattern_matches_itself_and_below(pattern, suffix):
    assert matches(pattern, [pattern])
    assert matches(f"{pattern}/{suffix}", [pattern])
    assert not matches(pattern, [pattern, "!" + pattern])


@given(relative_paths, relative_paths)
def test_literal_pattern_does_not_match_unrelated_paths(pattern, path):
    related = path == pattern or path.startswith(pattern + "/")
    assert matches(path, [pattern]) is related


@given(relative_paths)
def test_double_star_matches_at_any_depth(path):
    name = path.rsplit("/", 1)[-1]
    assert matches(path, ["**/" + name])
    assert matches(path, ["**"])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(relative_paths, min_size=1, max_size=8, unique=True),
       st.lists(st.sampled_from(["a", "b/*", "*.log", "**/c", "d.txt", "a/b", "c/*.txt", "*"]),
                max_size=3))
def test_walk_sends_exactly_the_files_not_ignored(tmp_path_factory, files, patterns):
    root = tmp_path_factory.mktemp("ctx")
    files = [f for f in files if not any(other.startswith(f + "/") for other in files)]
    _make_tree(str(root), files)
    sent = {path for path, info in dockerignore.walk(str(root), patterns)
            if not os.path.isdir(os.path.join(root, path))}
    expected = {path for path in files if not matches(path, patterns)}
    assert sent == expected
