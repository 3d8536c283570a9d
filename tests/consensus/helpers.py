"""Small tools for driving single cores by hand in unit tests."""

from __future__ import annotations

import random

from consensus.messages import (
    Configuration,
    Message,
    PersistedState,
    Ready,
    Role,
    VoteRequest,
    VoteResponse,
)
from consensus.raft import Raft, RaftConfig


def core(
    node_id: str = "n1",
    voters: tuple[str, ...] = ("n1", "n2", "n3"),
    learners: tuple[str, ...] = (),
    persisted: PersistedState | None = None,
    seed: int = 0,
    **options: object,
) -> Raft:
    options.setdefault("pre_vote", False)
    options.setdefault("check_quorum", False)
    config = RaftConfig(
        node_id=node_id,
        initial_configuration=Configuration(tuple(sorted(voters)), tuple(sorted(learners))),
        **options,  # type: ignore[arg-type]
    )
    return Raft(config, random.Random(seed), persisted)


def drain(raft: Raft) -> list[Ready]:
    """Take every Ready (as a driver that persists and applies instantly would)."""
    readies = []
    while raft.has_ready():
        ready = raft.ready()
        if ready is None:
            break
        readies.append(ready)
        raft.advance(ready)
    return readies


def sent(raft: Raft) -> list[Message]:
    """The messages the core wants to send now (its pending Readies are handled)."""
    return [message for ready in drain(raft) for message in ready.messages]


def of_type(messages: list[Message], kind: type) -> list:  # type: ignore[type-arg]
    return [m for m in messages if isinstance(m, kind)]


def elect(raft: Raft) -> None:
    """Make a core leader by granting every vote (and pre-vote) it asks for."""
    raft.campaign()
    for _ in range(2):
        for request in of_type(sent(raft), VoteRequest):
            raft.step(
                VoteResponse(request.term, request.to, raft.id, True, pre_vote=request.pre_vote)
            )
    drain(raft)
    assert raft.role is Role.LEADER, f"{raft.id} did not win: {raft.role}"
