"""Image references as docker's distribution/reference package reads them.

`busybox` is `docker.io/library/busybox`; a first component with a dot or a colon, or
`localhost`, names a registry. The "familiar" form drops `docker.io/` and `library/`.
"""

import re

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPOSITORY_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_DOMAIN_COMPONENT = re.compile(r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\Z")
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}\Z")
NAME_BYTES_MAX = 255


class ReferenceError(ValueError):
    pass


class Reference:
    """A parsed, normalized reference: domain, path, optional tag and digest."""

    __slots__ = ("digest", "domain", "path", "tag")

    def __init__(self, domain: str, path: str, tag: str = "", digest: str = "") -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self) -> str:
        """The full repository name: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_REPOSITORY_PREFIX) and path.count("/") == 1:
            return path[len(OFFICIAL_REPOSITORY_PREFIX) :]
        return path

    def familiar_string(self) -> str:
        text = self.familiar_name()
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    def with_default_tag(self) -> "Reference":
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG)


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"
                     and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPOSITORY_PREFIX + remainder
    return domain, remainder


def parse_normalized_named(text: str) -> Reference:
    """Parse `text` (familiar or full form) into a normalized Reference."""
    if not text:
        raise ReferenceError("invalid reference format")
    if re.fullmatch(r"[a-f0-9]{64}", text):
        raise ReferenceError(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    name, at, digest = text.partition("@")
    if at and not _DIGEST.match(digest):
        raise ReferenceError("invalid reference format")
    tag = ""
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise ReferenceError("invalid reference format")
    domain, path = _split_domain(name)
    if not path:
        raise ReferenceError("invalid reference format")
    host, _, port = domain.partition(":")
    if port and not port.isdigit():
        raise ReferenceError("invalid reference format")
    if host.startswith("[") and host.endswith("]"):
        pass
    elif not all(_DOMAIN_COMPONENT.match(part) for part in host.split(".")):
        raise ReferenceError("invalid reference format")
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            if component.lower() != component and _COMPONENT.match(component.lower()):
                raise ReferenceError(
                    f"invalid reference format: repository name ({path}) must be lowercase"
                )
            raise ReferenceError("invalid reference format")
    if len(domain) + 1 + len(path) > NAME_BYTES_MAX:
        raise ReferenceError(f"repository name must not be more than {NAME_BYTES_MAX} characters")
    return Reference(domain, path, tag, digest)


def familiar_string(text: str) -> str:
    """`docker.io/library/busybox:latest` -> `busybox:latest`; invalid input unchanged."""
    try:
        return parse_normalized_named(text).familiar_string()
    except ReferenceError:
        return text


def registry_host(reference: Reference) -> str:
    """The key under which docker's config.json keeps credentials for this reference."""
    if reference.domain == DEFAULT_DOMAIN:
        return "https://index.docker.io/v1/"
    return reference.domain
