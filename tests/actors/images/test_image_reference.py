import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.images import reference
from actors.images.reference import InvalidReference, Reference

HEX64 = "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "short"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("user/x:tag", "docker.io/user/x:tag", "user/x:tag"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("host:5000/a/b:tag", "host:5000/a/b:tag", "host:5000/a/b:tag"),
        ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
        ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
        ("Registry/x", "Registry/x:latest", "Registry/x:latest"),
        ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
        (f"name@sha256:{HEX64}", f"docker.io/library/name@sha256:{HEX64}", f"name@sha256:{HEX64}"),
        (f"name:tag@sha256:{HEX64}", f"docker.io/library/name:tag@sha256:{HEX64}",
         f"name:tag@sha256:{HEX64}"),
        ("a.b/c__d/e-f--g.h_i", "a.b/c__d/e-f--g.h_i:latest", "a.b/c__d/e-f--g.h_i:latest"),
    ],
)
def test_normalize_and_familiar(text, full, short):
    assert reference.normalize(text) == full
    assert reference.parse_tagged(text).familiar() == short
    assert reference.familiar(full) == short


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("Busybox", "must be lowercase"),
        ("busybox:", "invalid tag"),
        ("busybox:-x", "invalid tag"),
        ("busybox:" + "a" * 129, "invalid tag"),
        ("a//b", "invalid repository name"),
        ("a/", "invalid repository name"),
        ("-a", "invalid repository name"),
        ("a..b", "invalid repository name"),
        ("a b", "whitespace"),
        ("name@sha256:abc", "invalid digest"),
        (f"name@sha256:{'A' * 64}", "invalid sha256 digest"),
        (f"name@md5:{'a' * 32}", "unsupported digest algorithm"),
        (HEX64, "64-byte hexadecimal"),
        ("a" * 256, "255 characters"),
        ("host:port/x", "invalid registry host"),
        ("ho_st.com/x", "invalid registry host"),
    ],
)
def test_invalid_references(text, why):
    with pytest.raises(InvalidReference) as caught:
        reference.parse(text)
    assert str(caught.value).startswith("invalid reference format")
    assert why in str(caught.value)


def test_repository_tag_pair():
    assert str(reference.parse_repository_tag("docker.io/library/b", "1")) == "docker.io/library/b:1"
    assert str(reference.parse_repository_tag("b")) == "docker.io/library/b:latest"
    with pytest.raises(InvalidReference):
        reference.parse_repository_tag("b:2", "1")


def test_ids():
    assert reference.is_full_id("sha256:" + HEX64)
    assert reference.is_full_id(HEX64)
    assert reference.is_id_prefix("abc123")
    assert reference.is_id_prefix("sha256:abc")
    assert not reference.is_id_prefix("busybox")


alnum = st.text(alphabet="abcz0189", min_size=1, max_size=5)
separator = st.sampled_from([".", "_", "__", "-", "--"])
component = st.builds(
    lambda first, rest: first + "".join(s + a for s, a in rest),
    alnum, st.lists(st.tuples(separator, alnum), max_size=3))
domain_label = st.builds(lambda a, b: a + b, st.text(alphabet="aZ09", min_size=1, max_size=4),
                         st.sampled_from(["", "-x", "b-2"]))
domains = st.one_of(
    st.just("docker.io"),
    st.just("localhost"),
    st.builds(lambda a, b: f"{a}.{b}", domain_label, domain_label),
    st.builds(lambda a, p: f"{a}:{p}", domain_label, st.integers(1, 65535)),
)
tags = st.builds(lambda a, b: a + b, st.sampled_from(["a", "Z", "0", "_"]),
                 st.text(alphabet="aZ0_.-", max_size=20))
digests = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())


@st.composite
def reference_texts(draw):
    parts = draw(st.lists(component, min_size=1, max_size=3))
    text = "/".join(parts)
    if draw(st.booleans()):
        text = draw(domains) + "/" + text
    if draw(st.booleans()):
        text += ":" + draw(tags)
    if draw(st.booleans()):
        text += "@" + draw(digests)
    return text


@given(reference_texts())
def test_parse_format_round_trip(text):
    try:
        parsed = reference.parse(text)
    except InvalidReference:
        # Generated names Docker refuses too (a first part that reads as a bad host).
        return
    assert reference.parse(str(parsed)) == parsed
    assert reference.parse(parsed.familiar()) == parsed
    tagged = parsed.with_default_tag()
    assert reference.parse(str(tagged)) == tagged
    assert isinstance(parsed, Reference)


@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_raises_the_one_error(text):
    try:
        parsed = reference.parse(text)
    except InvalidReference as error:
        assert str(error).startswith("invalid reference format")
    else:
        assert reference.parse(str(parsed)) == parsed


@given(st.text(alphabet="abc:/@._-0123456789ABsha", max_size=40))
def test_reference_alphabet_fuzz(text):
    test_arbitrary_text_parses_or_raises_the_one_error.hypothesis.inner_test(text)
