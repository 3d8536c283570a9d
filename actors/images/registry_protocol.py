"""Facts of the distribution protocol shared by the registry server and the client.

Media types, the grammar of repository names, tags and digests, the error codes with
their HTTP statuses, the `Content-Range`/`Range` forms uploads use, and what a manifest
references (the blobs or manifests that must exist before it may be stored). Pure: no
I/O, so both sides and the tests use the same definitions.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import attrs

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

IMAGE_MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES
# What a client asks for, best first (schema1 is refused, as moby 28 does).
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
MANIFEST_BYTES_MAX = 4 * 1024 * 1024

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
NAME_LENGTH_MAX = 255
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}


# ---------------------------------------------------------------------------- errors

STATUS_BY_CODE = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "RANGE_INVALID": 416,
    "PAGINATION_NUMBER_INVALID": 400,
}

MESSAGE_BY_CODE = {
    "BLOB_UNKNOWN": "blob unknown to registry",
    "BLOB_UPLOAD_INVALID": "blob upload invalid",
    "BLOB_UPLOAD_UNKNOWN": "blob upload unknown to registry",
    "DIGEST_INVALID": "provided digest did not match uploaded content",
    "MANIFEST_BLOB_UNKNOWN": "manifest references a manifest or blob unknown to registry",
    "MANIFEST_INVALID": "manifest invalid",
    "MANIFEST_UNKNOWN": "manifest unknown",
    "NAME_INVALID": "invalid repository name",
    "NAME_UNKNOWN": "repository name not known to registry",
    "SIZE_INVALID": "provided length did not match content length",
    "TAG_INVALID": "manifest tag did not match URI",
    "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied",
    "UNSUPPORTED": "The operation is unsupported.",
    "TOOMANYREQUESTS": "too many requests",
    "RANGE_INVALID": "invalid content range",
    "PAGINATION_NUMBER_INVALID": "invalid number of results requested",
}


class RegistryError(Exception):
    """A distribution-protocol error: `code` from the spec, a message and optional detail."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        detail: Any = None,
        status: int | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.code = code
        self.message = message or MESSAGE_BY_CODE.get(code, code.lower())
        self.detail = detail
        self.status = status or STATUS_BY_CODE.get(code, 400)
        self.headers = tuple(headers)
        super().__init__(f"{self.code}: {self.message}")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}


def parse_error_body(data: bytes) -> list[dict[str, Any]]:
    """The `errors` of an error body; [] when the body is not one."""
    try:
        document = json.loads(data)
    except ValueError:
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    return [error for error in errors if isinstance(error, dict)]


# ---------------------------------------------------------------------------- names, tags, digests


def check_name(name: str) -> str:
    if len(name) > NAME_LENGTH_MAX or not NAME_RE.fullmatch(name):
        raise RegistryError("NAME_INVALID", detail={"name": name})
    return name


def check_tag(tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise RegistryError("TAG_INVALID", f"invalid tag {tag!r}", detail={"tag": tag})
    return tag


def is_digest(reference: str) -> bool:
    return ":" in reference


def check_digest(digest: str) -> str:
    """A supported digest (sha256 or sha512, lower-case hex of the right length)."""
    match = DIGEST_RE.fullmatch(digest)
    if match is None:
        raise RegistryError("DIGEST_INVALID", f"invalid digest {digest!r}", {"digest": digest})
    algorithm, encoded = match.groups()
    length = _HEX_LENGTH.get(algorithm)
    if length is None:
        raise RegistryError("UNSUPPORTED", f"unsupported digest algorithm {algorithm!r}",
                            {"digest": digest}, status=400)
    if len(encoded) != length or not re.fullmatch(r"[0-9a-f]+", encoded):
        raise RegistryError("DIGEST_INVALID", f"invalid {algorithm} digest {digest!r}",
                            {"digest": digest})
    return digest


def new_hasher(digest: str) -> Any:
    algorithm = digest.split(":", 1)[0]
    return hashlib.new(algorithm)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


# ---------------------------------------------------------------------------- ranges


def parse_content_range(value: str) -> tuple[int, int]:
    """`start-end` (inclusive), optionally with a `bytes ` prefix and `/size` suffix, as a
    PATCH carries it; RegistryError RANGE_INVALID otherwise."""
    text = value.strip()
    if text.startswith("bytes "):
        text = text[len("bytes "):].strip()
    elif text.startswith("bytes="):
        text = text[len("bytes="):].strip()
    text = text.split("/", 1)[0]
    match = re.fullmatch(r"(\d{1,19})-(\d{1,19})", text)
    if match is None:
        raise RegistryError("RANGE_INVALID", f"malformed Content-Range {value!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RegistryError("RANGE_INVALID", f"Content-Range {value!r} ends before it starts")
    return start, end


def parse_byte_range(value: str, size: int) -> tuple[int, int] | None:
    """A GET `Range: bytes=a-b | a- | -n` header as an inclusive (start, end) within `size`;
    None when it cannot be satisfied or is not a single byte range."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value)
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        length = int(last)
        if length == 0 or size == 0:
            return None
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def upload_range_header(size: int) -> str:
    """The `Range` of an upload session holding `size` bytes (`0-0` when empty, as the
    reference registry answers; clients read `end + 1` as the next offset only when size)."""
    return f"0-{max(size - 1, 0)}"


# ---------------------------------------------------------------------------- manifests


@attrs.frozen
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] | None = None
    artifact_type: str | None = None


@attrs.frozen
class ParsedManifest:
    media_type: str
    blobs: tuple[Descriptor, ...]  # config and layers of an image manifest
    manifests: tuple[Descriptor, ...]  # entries of an index
    subject: Descriptor | None
    artifact_type: str | None


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise RegistryError("MANIFEST_INVALID", f"{where} is not a descriptor object")
    digest = value.get("digest")
    size = value.get("size")
    media_type = value.get("mediaType", "")
    if not isinstance(digest, str):
        raise RegistryError("MANIFEST_INVALID", f"{where} has no digest")
    try:
        check_digest(digest)
    except RegistryError as exc:
        raise RegistryError("MANIFEST_INVALID", f"{where}: {exc.message}") from exc
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError("MANIFEST_INVALID", f"{where} has no valid size")
    if not isinstance(media_type, str):
        raise RegistryError("MANIFEST_INVALID", f"{where} has a non-string mediaType")
    platform = value.get("platform")
    annotations = value.get("annotations")
    artifact_type = value.get("artifactType")
    return Descriptor(
        media_type, digest, size,
        platform if isinstance(platform, dict) else None,
        annotations if isinstance(annotations, dict) else None,
        artifact_type if isinstance(artifact_type, str) else None,
    )


def parse_manifest(data: bytes, content_type: str | None) -> ParsedManifest:
    """Parse a manifest or index; its media type comes from the body's `mediaType`, else
    from `content_type`. RegistryError MANIFEST_INVALID names what is wrong."""
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise RegistryError("MANIFEST_INVALID", f"manifest is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise RegistryError("MANIFEST_INVALID", "manifest is not a JSON object")
    declared = document.get("mediaType")
    header_type = (content_type or "").split(";", 1)[0].strip()
    media_type = declared if isinstance(declared, str) and declared else header_type
    if not media_type:
        media_type = OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if media_type in (DOCKER_MANIFEST_SCHEMA1, DOCKER_MANIFEST_SCHEMA1_SIGNED):
        raise RegistryError("MANIFEST_INVALID", "schema1 manifests are not supported")
    if media_type not in MANIFEST_TYPES:
        raise RegistryError("MANIFEST_INVALID", f"unsupported manifest media type {media_type!r}")
    if document.get("schemaVersion") != 2:
        raise RegistryError("MANIFEST_INVALID", "manifest schemaVersion must be 2")
    subject = document.get("subject")
    artifact_type = document.get("artifactType")
    parsed_subject = _descriptor(subject, "subject") if subject is not None else None
    if media_type in INDEX_TYPES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise RegistryError("MANIFEST_INVALID", "index has no manifests list")
        manifests = tuple(_descriptor(entry, f"manifests[{number}]")
                          for number, entry in enumerate(entries))
        return ParsedManifest(media_type, (), manifests, parsed_subject,
                              artifact_type if isinstance(artifact_type, str) else None)
    config = _descriptor(document.get("config"), "config")
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise RegistryError("MANIFEST_INVALID", "manifest has no layers list")
    blobs = (config, *(_descriptor(layer, f"layers[{number}]")
                       for number, layer in enumerate(layers)))
    return ParsedManifest(media_type, blobs, (), parsed_subject,
                          artifact_type if isinstance(artifact_type, str) else None)


def platform_matches(platform: dict[str, Any] | None, os_name: str, architecture: str,
                     variant: str | None = None) -> bool:
    if not platform:
        return False
    if platform.get("os") != os_name or platform.get("architecture") != architecture:
        return False
    return variant is None or platform.get("variant") in (None, "", variant)
