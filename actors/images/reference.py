"""Docker image references: parse, validate, normalize and print them.

The grammar is Docker's (the distribution reference package):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path            (255 characters at most)
    domain     := host [ ":" port ]              (host: DNS labels, IPv4, or [IPv6])
    path       := component ( "/" component )*
    component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex              (sha256: exactly 64 lowercase hex)

Normalization follows `docker`: the first path element is a domain only when it contains
"." or ":", is "localhost", or has an upper-case letter; otherwise the domain is
`docker.io`, and a single-element name on docker.io gets the `library/` prefix.
`index.docker.io` is spelled `docker.io`. The familiar form drops both again.

Every failure raises `InvalidReference`, whose message starts with Docker's
`invalid reference format` and names the offending input.
"""

from __future__ import annotations

import re

import attrs

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255
TAG_LENGTH_MAX = 128

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[a-fA-F0-9:]+\])"
_DOMAIN_RE = re.compile(rf"{_HOST}(?::[0-9]+)?")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_SHA256_RE = re.compile(r"sha256:[0-9a-f]{64}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")


class InvalidReference(ValueError):
    """The one error for a malformed image reference."""


@attrs.frozen
class Reference:
    """A normalized reference: `domain/path[:tag][@digest]`."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, e.g. `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as `docker` prints it, e.g. `busybox` or `host:5000/x`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX) :]:
            return self.path[len(OFFICIAL_PREFIX) :]
        first = self.path.partition("/")[0]
        if "." in first or first == "localhost":
            # Docker would print "a.b/c", which reads back as registry "a.b": keep the domain.
            return self.name
        return self.path

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        """The short form for display: `busybox:latest`, `user/x:tag`, `host:5000/x:tag`."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        text = ""
        if self.tag is not None:
            text += ":" + self.tag
        if self.digest is not None:
            text += "@" + self.digest
        return text

    def with_default_tag(self) -> Reference:
        """`latest` added when the reference has neither a tag nor a digest."""
        if self.tag is None and self.digest is None:
            return attrs.evolve(self, tag=DEFAULT_TAG)
        return self

    def with_tag(self, tag: str) -> Reference:
        check_tag(tag)
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        check_digest(digest)
        return Reference(self.domain, self.path, None, digest)

    def repository(self) -> Reference:
        """The name alone, without tag or digest."""
        return Reference(self.domain, self.path)


def _fail(text: str, why: str = "") -> InvalidReference:
    detail = f": {why}" if why else ""
    return InvalidReference(f"invalid reference format{detail} (in {text!r})")


def check_tag(tag: str) -> None:
    if not _TAG_RE.fullmatch(tag):
        raise _fail(tag, f"invalid tag {tag!r}")


def check_digest(digest: str) -> None:
    if not _DIGEST_RE.fullmatch(digest):
        raise _fail(digest, f"invalid digest {digest!r}")
    algorithm = digest.split(":", 1)[0]
    if algorithm == "sha256":
        if not _SHA256_RE.fullmatch(digest):
            raise _fail(digest, f"invalid sha256 digest {digest!r}: want 64 lower-case hex digits")
    elif algorithm not in ("sha384", "sha512"):
        raise _fail(digest, f"unsupported digest algorithm {algorithm!r}")
    else:
        want = {"sha384": 96, "sha512": 128}[algorithm]
        hex_part = digest.split(":", 1)[1]
        if len(hex_part) != want or hex_part != hex_part.lower():
            raise _fail(digest, f"invalid {algorithm} digest {digest!r}")


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    is_domain = slash and (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    if not is_domain:
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse(text: str) -> Reference:
    """Parse and normalize `text` (no default tag is added; see `parse_tagged`)."""
    if not isinstance(text, str) or not text:
        raise _fail(str(text), "empty reference")
    if any(character.isspace() for character in text):
        raise _fail(text, "whitespace in reference")
    if _HEX64_RE.fullmatch(text):
        raise _fail(text, "cannot specify 64-byte hexadecimal strings as a repository name")
    remainder, at, digest = text.partition("@")
    digest_value: str | None = None
    if at:
        check_digest(digest)
        digest_value = digest
    # A ":" after the last "/" separates the tag; one before it is a registry port.
    tag_value: str | None = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    name = remainder
    if colon > last_slash:
        name, tag_value = remainder[:colon], remainder[colon + 1 :]
        check_tag(tag_value)
    if not name:
        raise _fail(text, "repository name must have at least one component")
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise _fail(text, f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    domain, path = _split_domain(name)
    if not _DOMAIN_RE.fullmatch(domain):
        raise _fail(text, f"invalid registry host {domain!r}")
    if path.lower() != path and _PATH_RE.fullmatch(path.lower()):
        raise _fail(text, f"repository name ({path}) must be lowercase")
    if not _PATH_RE.fullmatch(path):
        raise _fail(text, f"invalid repository name {path!r}")
    full_name = f"{domain}/{path}"
    if len(full_name) > NAME_TOTAL_LENGTH_MAX:
        raise _fail(text, f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    return Reference(domain, path, tag_value, digest_value)


def parse_tagged(text: str) -> Reference:
    """Parse, normalize and add `:latest` when neither tag nor digest is given."""
    return parse(text).with_default_tag()


def parse_repository_tag(repository: str, tag: str = "") -> Reference:
    """The pair the API's `repo=`/`tag=` parameters give (tag/commit/import)."""
    reference = parse(repository)
    if reference.tag is not None or reference.digest is not None:
        if tag:
            raise _fail(repository, "repository must not carry a tag when a tag is given")
        return reference.with_default_tag()
    return reference.with_tag(tag or DEFAULT_TAG)


def normalize(text: str) -> str:
    """`busybox` -> `docker.io/library/busybox:latest`."""
    return str(parse_tagged(text))


def familiar(text: str) -> str:
    """`docker.io/library/busybox:latest` -> `busybox:latest`."""
    return parse(text).familiar()


def is_full_id(text: str) -> bool:
    """`sha256:<64 hex>` or bare 64 hex digits."""
    return bool(_SHA256_RE.fullmatch(text) or _HEX64_RE.fullmatch(text))


def is_id_prefix(text: str) -> bool:
    """A possible short image id: hex (at least one digit), optionally after `sha256:`."""
    body = text[len("sha256:") :] if text.startswith("sha256:") else text
    return 0 < len(body) <= 64 and all(character in "0123456789abcdef" for character in body)
