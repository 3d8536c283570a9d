"""Basic and token auth on the built-in registry, driven by the distribution client and by
raw HTTP (challenges, scopes, the token service)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import pytest
import trio
from registry_helpers import Collector, make_image, opener, start_registry

from actors.images import registry_protocol as protocol
from actors.images.distribution import (
    AccessDenied,
    Credentials,
    DistributionClient,
    Repository,
    Unauthorized,
)
from actors.images.registry_access import Access, AccessControl

USERS = ["alice:wonderland", "bob:builder"]
ALICE = Credentials("alice", "wonderland")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def push_and_pull(client: DistributionClient, repository: Repository) -> None:
    image = make_image(layer_sizes=(2000,))
    for digest, data in image.blobs():
        assert await client.push_blob(repository, digest, len(data), opener(data)) == "pushed"
    await client.push_manifest(repository, "v1", image.manifest, image.media_type)
    pulled = await client.pull_manifest(repository, "v1")
    assert pulled.manifest == image.manifest
    sink = Collector()
    await client.fetch_blob(repository, image.layer_digests[0], sink)
    assert bytes(sink.data) == image.layers[0]


async def test_basic_auth(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "r", users=USERS)
        domain = f"127.0.0.1:{running.port}"
        repository = Repository(domain, "app")
        async with httpx.AsyncClient(base_url=running.url) as raw:
            refused = await raw.get("/v2/")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == 'Basic realm="flotta-registry"'
            assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
            assert (await raw.get("/v2/", headers=basic("bob", "builder"))).status_code == 200
            assert (await raw.get("/v2/", headers=basic("bob", "wrong"))).status_code == 401

        async with DistributionClient(credentials={domain: ALICE}) as client:
            await push_and_pull(client, repository)
            assert await client.login(domain) == ""
        async with DistributionClient() as anonymous:
            with pytest.raises(AccessDenied, match="pull access denied for"):
                await anonymous.pull_manifest(repository, "v1")
            data = b"not logged in"
            with pytest.raises(Unauthorized, match=r"^no basic auth credentials$"):
                await anonymous.push_blob(repository, protocol.sha256_digest(data), len(data),
                                          opener(data))
        async with DistributionClient(credentials={domain: Credentials("alice", "x")}) as wrong:
            with pytest.raises(Unauthorized, match="incorrect username or password"):
                await wrong.pull_manifest(repository, "v1")
            with pytest.raises(Unauthorized, match="incorrect username or password"):
                await wrong.fetch_blob(repository, protocol.sha256_digest(b"x"), Collector())
            with pytest.raises(Unauthorized):
                await wrong.login(domain)
        await running.server.shutdown()


async def test_token_flow_with_scopes(tmp_path: Path) -> None:
    token_requests: list[str] = []
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "r", users=USERS, token_auth=True)
        handle = running.server.handler

        async def spy(request):
            if request.path == "/token":
                token_requests.append(request.query_string)
            return await handle(request)

        running.server.handler = spy
        domain = f"127.0.0.1:{running.port}"
        async with httpx.AsyncClient(base_url=running.url) as raw:
            challenge = (await raw.get("/v2/team/app/tags/list")).headers["www-authenticate"]
            assert challenge == (f'Bearer realm="{running.url}/token",service="flotta-registry",'
                                 'scope="repository:team/app:pull"')
            token = (await raw.get("/token", params={"service": "flotta-registry",
                                                     "scope": "repository:team/app:pull"},
                                   headers=basic("alice", "wonderland"))).json()
            assert token["expires_in"] > 0 and token["token"] == token["access_token"]
            bearer = {"Authorization": f"Bearer {token['token']}"}
            listed = await raw.get("/v2/team/app/tags/list", headers=bearer)
            assert listed.status_code == 404  # allowed, the repository just does not exist
            other = await raw.get("/v2/other/tags/list", headers=bearer)
            assert other.status_code == 401
            assert 'scope="repository:other:pull"' in other.headers["www-authenticate"]
            push = await raw.post("/v2/team/app/blobs/uploads/", headers=bearer)
            assert push.status_code == 401
            assert 'error="insufficient_scope"' in push.headers["www-authenticate"]
            catalog = await raw.get("/v2/_catalog", headers=bearer)
            assert 'scope="registry:catalog:*"' in catalog.headers["www-authenticate"]
            forged = {"Authorization": f"Bearer {token['token'][:-4]}AAAA"}
            assert (await raw.get("/v2/team/app/tags/list", headers=forged)).status_code == 401
            bad_login = await raw.get("/token", params={"scope": "repository:team/app:pull"},
                                      headers=basic("alice", "nope"))
            assert bad_login.status_code == 401

        token_requests.clear()
        async with DistributionClient(credentials={domain: ALICE}) as client:
            await push_and_pull(client, Repository(domain, "team/app"))
            data = os.urandom(3000)
            digest = protocol.sha256_digest(data)
            await client.push_blob(Repository(domain, "team/app"), digest, len(data), opener(data))
            outcome = await client.push_blob(Repository(domain, "team/copy"), digest, len(data),
                                             opener(data), mount_from="team/app")
            assert outcome == "mounted"
        # One token per scope set, each fetched once and then reused: team/app for push and
        # for pull, team/copy for push, and team/copy plus pull on team/app for the mount.
        assert len(token_requests) == len(set(token_requests)) == 4, token_requests
        assert any("team%2Fcopy%3Apull%2Cpush&scope=repository%3Ateam%2Fapp%3Apull" in query
                   for query in token_requests)
        await running.server.shutdown()


async def test_anonymous_clients_and_anonymous_pull(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        closed = await start_registry(nursery, tmp_path / "closed", users=USERS, token_auth=True)
        public = await start_registry(nursery, tmp_path / "public", users=USERS, token_auth=True,
                                      anonymous_pull=True)
        for running in (closed, public):
            domain = f"127.0.0.1:{running.port}"
            async with DistributionClient(credentials={domain: ALICE}) as client:
                await push_and_pull(client, Repository(domain, "lib/app"))
        async with DistributionClient() as anonymous:
            with pytest.raises(AccessDenied) as denied:
                await anonymous.pull_manifest(Repository(f"127.0.0.1:{closed.port}", "lib/app"),
                                              "v1")
            assert "may require 'docker login'" in str(denied.value)
            # As on Docker Hub: an anonymous token lacks push scope, so the push is denied.
            with pytest.raises(AccessDenied, match=r"^denied: requested access"):
                await anonymous.push_blob(Repository(f"127.0.0.1:{closed.port}", "lib/app"),
                                          protocol.sha256_digest(b"x"), 1, opener(b"x"))
            pulled = await anonymous.pull_manifest(Repository(f"127.0.0.1:{public.port}",
                                                              "lib/app"), "v1")
            assert pulled.media_type == protocol.DOCKER_MANIFEST
            data = b"anonymous push"
            with pytest.raises(AccessDenied, match="denied: requested access"):
                await anonymous.push_blob(Repository(f"127.0.0.1:{public.port}", "lib/app"),
                                          protocol.sha256_digest(data), len(data), opener(data))
        async with DistributionClient(
            credentials={f"127.0.0.1:{closed.port}": Credentials("alice", "bad")}
        ) as wrong:
            with pytest.raises(Unauthorized, match="incorrect username or password"):
                await wrong.pull_manifest(Repository(f"127.0.0.1:{closed.port}", "lib/app"), "v1")
        await closed.server.shutdown()
        await public.server.shutdown()


async def test_login_returns_an_identity_token_that_works_later(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        running = await start_registry(nursery, tmp_path / "r", users=USERS, token_auth=True)
        domain = f"127.0.0.1:{running.port}"
        async with DistributionClient(credentials={domain: Credentials("bob", "builder")}) as c:
            identity_token = await c.login(domain)
        assert identity_token
        by_refresh = Credentials(username="bob", identity_token=identity_token)
        async with DistributionClient(credentials={domain: by_refresh}) as client:
            await push_and_pull(client, Repository(domain, "bob/app"))
        async with DistributionClient(
            credentials={domain: Credentials(identity_token=identity_token[:-3] + "xyz")}
        ) as forged:
            with pytest.raises(Unauthorized):
                await forged.pull_manifest(Repository(domain, "bob/app"), "v1")
        async with DistributionClient(credentials={domain: Credentials("bob", "x")}) as wrong:
            with pytest.raises(Unauthorized):
                await wrong.login(domain)
        await running.server.shutdown()


def test_tokens_expire_and_are_bound_to_their_key() -> None:
    now = [1_000_000.0]
    access = AccessControl("token", {"alice": "pw"}, clock=lambda: now[0])
    answer = access.issue("alice", [Access("repository", "x", ("pull",))])
    assert access.verify_token(answer["token"])["access"] == [
        {"type": "repository", "name": "x", "actions": ["pull"]}]
    assert access.verify_token(answer["token"], refresh=True) is None
    now[0] += 301
    assert access.verify_token(answer["token"]) is None
    other = AccessControl("token", {"alice": "pw"}, clock=lambda: now[0])
    assert other.verify_token(access.issue("alice", [])["token"]) is None
    anonymous = AccessControl("token", {"alice": "pw"}, anonymous_pull=True).grant(
        None, [Access("repository", "x", ("pull", "push"))])
    assert anonymous == [{"type": "repository", "name": "x", "actions": ["pull"]}]
    with pytest.raises(ValueError, match="needs at least one user"):
        AccessControl("basic", {})
