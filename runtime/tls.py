"""TLS contexts for the daemon's API, the built-in registry and node-to-node links.

Two builders, both from PEM files, both refusing anything older than TLS 1.2:

- `server_context`: the certificate the server presents and, when a CA is given, the
  demand that clients present a certificate signed by it (`verify_mode = CERT_REQUIRED`),
  which is what `dockerd --tlsverify` does for its TCP socket.
- `client_context`: verification against a CA (or the system store) plus an optional
  client certificate; `verify=False` is for registries the user declared insecure.
"""

from __future__ import annotations

import os
import ssl


class TLSConfigError(ValueError):
    """A certificate, key or CA file that cannot be used; the message names the file."""


def _check_readable(kind: str, path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TLSConfigError(f"TLS {kind} file not found: {path}")
    return path


def server_context(
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    ca_file: str | os.PathLike[str] | None = None,
    *,
    require_client_cert: bool = True,
) -> ssl.SSLContext:
    """A server-side context; with `ca_file`, client certificates are verified against it.

    `require_client_cert` only has an effect with a CA: then a client without a valid
    certificate fails the handshake (True) or may connect unauthenticated (False).
    """
    cert_path = _check_readable("certificate", cert_file)
    key_path = _check_readable("key", key_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(
            f"cannot load TLS certificate {cert_path} with key {key_path}: {exc}"
        ) from exc
    if ca_file is not None:
        ca_path = _check_readable("CA", ca_file)
        try:
            context.load_verify_locations(cafile=ca_path)
        except (ssl.SSLError, OSError) as exc:
            raise TLSConfigError(f"cannot load TLS CA {ca_path}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_context(
    ca_file: str | os.PathLike[str] | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
) -> ssl.SSLContext:
    """A client-side context: verify the server against `ca_file` (default: system CAs)
    unless `verify` is False, and present `cert_file`/`key_file` when given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_file is not None:
        ca_path = _check_readable("CA", ca_file)
        try:
            context.load_verify_locations(cafile=ca_path)
        except (ssl.SSLError, OSError) as exc:
            raise TLSConfigError(f"cannot load TLS CA {ca_path}: {exc}") from exc
    if cert_file is not None or key_file is not None:
        if cert_file is None or key_file is None:
            raise TLSConfigError("a TLS client certificate needs both a certificate and a key")
        cert_path = _check_readable("certificate", cert_file)
        key_path = _check_readable("key", key_file)
        try:
            context.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, OSError) as exc:
            raise TLSConfigError(
                f"cannot load TLS certificate {cert_path} with key {key_path}: {exc}"
            ) from exc
    return context
