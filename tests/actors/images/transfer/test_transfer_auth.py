"""Pull, push and login with credentials: basic auth and the token flow of flotta's
registry, with Docker's errors for wrong or missing credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from registry_helpers import start_registry

from actors.images.distribution import AccessDenied, Credentials, Unauthorized
from actors.images.login import LOGIN_SUCCEEDED, LoginResult, login, login_domain
from actors.images.pull import pull
from actors.images.push import push
from actors.images.registry_auth import AuthConfig, decode_registry_auth, encode_registry_auth
from actors.images.store import ImageStore

ALICE = Credentials("alice", "wonderland")
WRONG = Credentials("alice", "rabbit")


async def test_basic_auth(busybox_store, tmp_path: Path) -> None:
    source, image_id = busybox_store
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "registry", users=["alice:wonderland"])
        domain = f"127.0.0.1:{running.port}"
        source.tag(image_id, f"{domain}/secret:1")
        with pytest.raises(Unauthorized, match="unauthorized: incorrect username or password"):
            await push(source, f"{domain}/secret:1", credentials=WRONG, progress=lambda _: None)
        # What the daemon gets from the X-Registry-Auth header.
        header = encode_registry_auth(AuthConfig(username="alice", password="wonderland"))
        pushed = await push(source, f"{domain}/secret:1", progress=lambda _: None,
                            credentials=decode_registry_auth(header).credentials())

        target = ImageStore(tmp_path / "target")
        with pytest.raises(AccessDenied, match="pull access denied") as anonymous:
            await pull(target, f"{domain}/secret:1", progress=lambda _: None)
        assert anonymous.value.status == 404
        with pytest.raises(Unauthorized) as wrong:
            await pull(target, f"{domain}/secret:1", credentials=WRONG, progress=lambda _: None)
        assert wrong.value.status == 401
        assert target.images() == []
        pulled = await pull(target, f"{domain}/secret:1", progress=lambda _: None,
                            credentials={domain: ALICE})
        assert (pulled.image_id, pulled.digest) == (image_id, pushed.digest)

        assert await login(domain, "alice", "wonderland") == LoginResult(LOGIN_SUCCEEDED, "")
        with pytest.raises(Unauthorized, match="unauthorized: incorrect username or password"
                           ) as refused:
            await login(f"http://{domain}/", "alice", "rabbit")
        assert refused.value.status == 401
        await running.server.shutdown(grace_seconds=1)


async def test_token_auth(busybox_store, tmp_path: Path) -> None:
    source, image_id = busybox_store
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "registry",
                                       users=["alice:wonderland"], token_auth=True)
        domain = f"127.0.0.1:{running.port}"
        source.tag(image_id, f"{domain}/team/app:1")
        with pytest.raises(Unauthorized, match="unauthorized: incorrect username or password"):
            await push(source, f"{domain}/team/app:1", credentials=WRONG,
                       progress=lambda _: None)
        pushed = await push(source, f"{domain}/team/app:1", credentials=ALICE,
                            progress=lambda _: None)

        target = ImageStore(tmp_path / "target")
        with pytest.raises(AccessDenied) as anonymous:
            await pull(target, f"{domain}/team/app:1", progress=lambda _: None)
        assert str(anonymous.value) == (
            f"pull access denied for {domain}/team/app, repository does not exist or may "
            f"require 'docker login': denied: requested access to the resource is denied")

        result = await login(domain, "alice", "wonderland")
        assert result.status == LOGIN_SUCCEEDED and result.identity_token
        with pytest.raises(Unauthorized):
            await login(domain, "alice", "rabbit")
        # `docker login` stores the identity token; later pulls send it instead of a password.
        pulled = await pull(target, f"{domain}/team/app:1", progress=lambda _: None,
                            credentials=Credentials("alice", "",
                                                    identity_token=result.identity_token))
        assert (pulled.image_id, pulled.digest) == (image_id, pushed.digest)
        await running.server.shutdown(grace_seconds=1)


def test_login_domain() -> None:
    assert login_domain("https://index.docker.io/v1/") == "docker.io"
    assert login_domain("") == "docker.io"
    assert login_domain("registry-1.docker.io") == "docker.io"
    assert login_domain("http://localhost:5000/") == "localhost:5000"
    assert login_domain("myreg.example:443/path") == "myreg.example:443"
