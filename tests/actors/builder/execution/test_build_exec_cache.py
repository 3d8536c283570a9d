"""The build cache, end to end: what is reused, what is rebuilt, and what survives."""

from __future__ import annotations

import json
import secrets

import pytest
from buildexec_helpers import BuildDaemon, Entry

pytestmark = [pytest.mark.root]

DOCKERFILE = """\
FROM busybox
ARG FLAVOUR=plain
ENV STAMP={stamp}
COPY first.txt /app/first.txt
RUN cat /app/first.txt > /app/first.copy && echo "$FLAVOUR" > /app/flavour
COPY second/ /app/second/
RUN ls /app/second > /app/second.list
CMD ["cat", "/app/first.copy"]
"""
# Steps: 1 FROM, 2 ARG, 3 ENV, 4 COPY first, 5 RUN, 6 COPY second, 7 RUN, 8 CMD.
STEPS_AFTER_FROM = 7


def context(stamp: str, *, first: str = "first\n", second: str = "b\n", mtime: float = 1_700_000_000.0) -> dict[str, str | bytes | Entry]:
    return {
        "Dockerfile": DOCKERFILE.format(stamp=stamp),
        "first.txt": Entry(data=first.encode(), mtime=mtime),
        "second/a.txt": Entry(data=b"a\n", mtime=mtime),
        "second/b.txt": Entry(data=second.encode(), mtime=mtime),
    }


@pytest.fixture
def stamp() -> str:
    """Makes each test's Dockerfile its own, so tests never share cache entries."""
    return secrets.token_hex(8)


def test_a_rebuild_with_nothing_changed_makes_nothing_new(daemon: BuildDaemon, stamp: str) -> None:
    first = daemon.build(context(stamp), {"t": f"cached:{stamp}"})
    assert first.cache_hits == 0 and len(first.containers) == 2
    images_before = daemon.image_ids()
    again = daemon.build(context(stamp), {"t": f"cached:{stamp}"})
    assert again.cache_hits == STEPS_AFTER_FROM
    assert again.containers == []
    assert again.image_id == first.image_id
    assert again.step_ids == first.step_ids
    assert daemon.image_ids() == images_before


def test_modification_times_do_not_invalidate_copies(daemon: BuildDaemon, stamp: str) -> None:
    first = daemon.build(context(stamp))
    touched = daemon.build(context(stamp, mtime=1_800_000_000.0))
    assert touched.cache_hits == STEPS_AFTER_FROM
    assert touched.image_id == first.image_id


def test_changing_one_copied_file_rebuilds_from_that_instruction(daemon: BuildDaemon, stamp: str) -> None:
    first = daemon.build(context(stamp))
    changed = daemon.build(context(stamp, second="changed\n"))
    # ARG, ENV, COPY first.txt, RUN are reused; COPY second/ and everything after is not.
    assert changed.cache_hits == 4
    assert changed.step_ids[:5] == first.step_ids[:5]
    assert all(new != old for new, old in zip(changed.step_ids[5:], first.step_ids[5:], strict=True))
    assert len(changed.containers) == 1
    earlier = daemon.build(context(stamp, first="other\n"))
    assert earlier.cache_hits == 2 and len(earlier.containers) == 2


def test_a_changed_build_arg_reruns_the_steps_that_see_it(daemon: BuildDaemon, stamp: str) -> None:
    first = daemon.build(context(stamp))
    spicy = daemon.build(context(stamp), {"buildargs": {"FLAVOUR": "spicy"}})
    # ARG/ENV/COPY do not depend on the value; both RUNs see it (`|1 FLAVOUR=spicy`).
    assert spicy.cache_hits == 3
    assert spicy.image_id != first.image_id
    assert daemon.output_of(spicy.image_id, "cat /app/flavour") == "spicy\n"
    assert daemon.build(context(stamp), {"buildargs": {"FLAVOUR": "spicy"}}).image_id == spicy.image_id


def test_no_cache_rebuilds_every_step(daemon: BuildDaemon, stamp: str) -> None:
    first = daemon.build(context(stamp))
    fresh = daemon.build(context(stamp), {"nocache": "1"})
    assert fresh.cache_hits == 0 and len(fresh.containers) == 2
    assert fresh.image_id != first.image_id
    # The cache now points at the newer images.
    assert daemon.build(context(stamp)).image_id == fresh.image_id


def test_an_entry_whose_image_was_deleted_is_dropped(daemon: BuildDaemon, stamp: str) -> None:
    first = daemon.build(context(stamp), {"t": f"deleted:{stamp}"})
    final = first.image_id
    removed = daemon.flottad.api("DELETE", f"/images/deleted:{stamp}?noprune=1")
    assert removed.status == 200, removed.body
    assert final not in daemon.image_ids()
    again = daemon.build(context(stamp))
    # Everything up to the final CMD is still cached; the CMD image is made again.
    assert again.cache_hits == STEPS_AFTER_FROM - 1
    assert again.image_id != final


def test_cache_from_reuses_the_history_of_another_image(daemon: BuildDaemon, stamp: str) -> None:
    original = daemon.build(context(stamp), {"t": f"cachefrom:{stamp}"})
    assert daemon.flottad.api("POST", "/build/prune").status == 200
    without = daemon.build({**context(stamp), "Dockerfile": DOCKERFILE.format(stamp=stamp) + "LABEL x=y\n"})
    assert without.cache_hits == 0
    daemon.flottad.api("POST", "/build/prune")
    reused = daemon.build(context(stamp), {"cachefrom": json.dumps([f"cachefrom:{stamp}", "missing:image"])})
    assert reused.cache_hits == STEPS_AFTER_FROM
    assert reused.image_id == original.image_id


