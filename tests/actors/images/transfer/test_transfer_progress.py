"""The progress streams of pull and push compared with Docker's: message shapes byte for
byte, each layer's lifecycle, Waiting beyond the concurrency limits (3 downloads, 5
uploads), extraction in manifest order, and `Already exists` for shared base layers."""

from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path

from transfer_helpers import layer_tar, make_layered_image, per_layer, summarize

from actors.images.content import chain_ids
from actors.images.pull import pull
from actors.images.push import push
from actors.images.store import ImageStore

PROGRESS_RE = re.compile(r"\[=*> *\] +\S+/\S+")


def compact(body: dict) -> str:
    return json.dumps(body, separators=(",", ":"))


async def test_seven_layers_wait_their_turn(registry, tmp_path: Path) -> None:
    domain = f"127.0.0.1:{registry.port}"
    source = ImageStore(tmp_path / "source")
    image_id = make_layered_image(source, 7, f"{domain}/layers:7", file_bytes=300_000)
    diff_ids = source.image(image_id).diff_ids
    pushed_messages: list[dict] = []
    pushed = await push(source, f"{domain}/layers:7", progress=pushed_messages.append)

    top_first = [d[7:19] for d in reversed(diff_ids)]
    assert [m["id"] for m in pushed_messages if m.get("status") == "Preparing"] == top_first
    lifecycles = per_layer(pushed_messages)
    for short in top_first[:5]:
        assert lifecycles[short] == ["Preparing", "Pushing", "Pushed"]
    for short in top_first[5:]:
        assert lifecycles[short] == ["Preparing", "Waiting", "Pushing", "Pushed"]
    assert summarize(pushed_messages)[-2:] == [
        (f"7: digest: {pushed.digest} size: {pushed.size}", None), ("aux", None)]

    target = ImageStore(tmp_path / "target")
    messages: list[dict] = []
    pulled = await pull(target, f"{domain}/layers:7", progress=messages.append)
    assert pulled.image_id == image_id
    layer_ids = [m["id"] for m in messages if m.get("status") == "Pulling fs layer"]
    assert len(layer_ids) == 7
    # Docker announces every layer, then which ones wait, before any download starts.
    assert [m["status"] for m in messages[1:12]] == ["Pulling fs layer"] * 7 + ["Waiting"] * 4
    lifecycles = per_layer(messages)
    done = ["Downloading", "Verifying Checksum", "Download complete", "Extracting",
            "Pull complete"]
    for position, short in enumerate(layer_ids):
        waiting = ["Waiting"] if position >= 3 else []
        assert lifecycles[short] == ["Pulling fs layer", *waiting, *done]
    completions = [m["id"] for m in messages if m.get("status") == "Pull complete"]
    assert completions == layer_ids
    for earlier, later in itertools.pairwise(layer_ids):
        finished = next(i for i, m in enumerate(messages)
                        if m.get("id") == earlier and m["status"] == "Pull complete")
        started = next(i for i, m in enumerate(messages)
                       if m.get("id") == later and m["status"] == "Extracting")
        assert finished < started
    assert target.image(image_id).chain_ids == tuple(chain_ids(list(diff_ids)))
    assert target.verify() == []


async def test_message_shapes_are_dockers(registry, busybox_store, tmp_path: Path) -> None:
    source, image_id = busybox_store
    domain = f"127.0.0.1:{registry.port}"
    source.tag(image_id, f"{domain}/busybox:1")
    pushed_messages: list[dict] = []
    pushed = await push(source, f"{domain}/busybox:1", progress=pushed_messages.append)
    target = ImageStore(tmp_path / "target")
    messages: list[dict] = []
    await pull(target, f"{domain}/busybox:1", progress=messages.append)

    layer = next(m["id"] for m in messages if m["status"] == "Pulling fs layer")
    diff = pushed_messages[1]["id"]
    # Lines as dockerd writes them (key order of its JSONMessage struct).
    assert compact(messages[0]) == '{"status":"Pulling from busybox","id":"1"}'
    assert compact(messages[1]) == f'{{"status":"Pulling fs layer","progressDetail":{{}},"id":"{layer}"}}'
    for status in ("Verifying Checksum", "Download complete", "Pull complete"):
        (line,) = [compact(m) for m in messages if m["status"] == status]
        assert line == f'{{"status":"{status}","progressDetail":{{}},"id":"{layer}"}}'
    for body in messages:
        if body["status"] in ("Downloading", "Extracting"):
            assert list(body) == ["status", "progressDetail", "progress", "id"]
            assert list(body["progressDetail"]) == ["current", "total"]
            assert PROGRESS_RE.fullmatch(body["progress"]), body["progress"]
            assert body["id"] == layer
    assert compact(messages[-2]) == f'{{"status":"Digest: {pushed.digest}"}}'
    assert compact(messages[-1]) == (
        f'{{"status":"Status: Downloaded newer image for {domain}/busybox:1"}}')

    assert compact(pushed_messages[0]) == (
        f'{{"status":"The push refers to repository [{domain}/busybox]"}}')
    assert compact(pushed_messages[1]) == f'{{"status":"Preparing","progressDetail":{{}},"id":"{diff}"}}'
    assert compact(pushed_messages[-3]) == f'{{"status":"Pushed","progressDetail":{{}},"id":"{diff}"}}'
    assert compact(pushed_messages[-2]) == (
        f'{{"status":"1: digest: {pushed.digest} size: {pushed.size}"}}')
    assert compact(pushed_messages[-1]) == (
        f'{{"progressDetail":{{}},"aux":{{"Tag":"1","Digest":"{pushed.digest}",'
        f'"Size":{pushed.size}}}}}')


async def test_shared_base_layers_already_exist(registry, tmp_path: Path) -> None:
    domain = f"127.0.0.1:{registry.port}"
    source = ImageStore(tmp_path / "source")
    base_id = make_layered_image(source, 2, f"{domain}/base:1")
    base = source.image(base_id)
    extra = source.add_layer_from_tar(io.BytesIO(layer_tar({"app": b"app" * 1000})))
    child_id = source.create_image({"config": {"Cmd": ["app"]}}, [*base.diff_ids, extra])
    source.tag(child_id, f"{domain}/child:1")
    for name in ("base:1", "child:1"):
        await push(source, f"{domain}/{name}", progress=lambda _: None)

    target = ImageStore(tmp_path / "target")
    await pull(target, f"{domain}/base:1", progress=lambda _: None)
    messages: list[dict] = []
    await pull(target, f"{domain}/child:1", progress=messages.append)
    statuses = summarize(messages)
    assert [status for status, _ in statuses[1:4]] == [
        "Already exists", "Already exists", "Pulling fs layer"]
    assert [status for status, _ in statuses].count("Pull complete") == 1
    assert target.image(child_id).diff_ids == (*base.diff_ids, extra)
    assert target.verify() == []
