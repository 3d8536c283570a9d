"""The events actor: what `GET /events` streams and `docker events` prints.

Components tell it `Event`s as things happen (container create/start/die/destroy, image
pull/tag/delete, network and volume changes). It keeps the last `history_max` events for
`since` queries and forwards each new event to every subscriber whose filters match. A
subscriber is an inbox (see `Node.open_inbox`) held by an HTTP handler; a subscriber that
cannot keep up (its inbox full) is dropped, as Docker drops slow event readers.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

from runtime.actor import Actor, Ref
from runtime.codec import message
from runtime.errors import ActorBusy, NoSuchActor

history_max = 1000


@message("events.event")
@attrs.frozen
class Event:
    type: str
    action: str
    actor_id: str
    attributes: dict[str, str] = attrs.field(factory=dict)
    scope: str = "local"
    time_nano: int = 0

    def to_api(self) -> dict[str, Any]:
        seconds = self.time_nano // 1_000_000_000
        body: dict[str, Any] = {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope,
            "time": seconds,
            "timeNano": self.time_nano,
        }
        if self.type == "container":
            body["status"] = self.action
            body["id"] = self.actor_id
            body["from"] = self.attributes.get("image", "")
        return body


@message("events.subscribe")
@attrs.frozen
class Subscribe:
    inbox: Ref
    filters: dict[str, list[str]] = attrs.field(factory=dict)
    since_nano: int | None = None
    until_nano: int | None = None


@message("events.subscribed")
@attrs.frozen
class Subscribed:
    replayed: int


@message("events.unsubscribe")
@attrs.frozen
class Unsubscribe:
    inbox: Ref


@message("events.end")
@attrs.frozen
class EndOfEvents:
    """Told to a subscriber whose `until` has passed, or that was dropped."""

    reason: str = ""


FILTER_KEYS = {
    "type", "event", "container", "image", "label", "network", "volume", "daemon",
    "scope", "node", "service", "secret", "config",
}


def matches(event: Event, filters: dict[str, list[str]]) -> bool:
    """Docker's event filter semantics: AND across keys, OR within a key."""
    for key, wanted in filters.items():
        if not wanted:
            continue
        if key == "type":
            ok = event.type in wanted
        elif key == "event":
            ok = event.action in wanted or event.action.split(":")[0] in wanted
        elif key in ("container", "network", "volume", "node", "service", "secret", "config"):
            ok = event.type == key and any(
                value in (event.actor_id, event.attributes.get("name", ""))
                or (len(value) >= 3 and event.actor_id.startswith(value))
                for value in wanted
            )
        elif key == "image":
            ok = any(
                value in (event.attributes.get("image", ""), event.actor_id)
                for value in wanted
            )
        elif key == "label":
            ok = all(_label_matches(event.attributes, value) for value in wanted)
        elif key == "scope":
            ok = event.scope in wanted
        elif key == "daemon":
            ok = event.type == "daemon"
        else:
            ok = True
        if not ok:
            return False
    return True


def _label_matches(attributes: dict[str, str], expression: str) -> bool:
    key, separator, value = expression.partition("=")
    if not separator:
        return key in attributes
    return attributes.get(key) == value


class EventsActor(Actor):
    mailbox_capacity = 8192

    def __init__(self) -> None:
        self.history: deque[Event] = deque(maxlen=history_max)
        self.subscribers: dict[Ref, Subscribe] = {}
        self.dropped_subscribers = 0

    async def receive(self, message: Any) -> Any:
        match message:
            case Event():
                self.history.append(message)
                for inbox, subscription in list(self.subscribers.items()):
                    if subscription.until_nano is not None and message.time_nano > subscription.until_nano:
                        continue
                    if matches(message, subscription.filters):
                        self._deliver(inbox, message)
            case Subscribe(inbox=inbox):
                replayed = 0
                if message.since_nano is not None:
                    for event in self.history:
                        if event.time_nano < message.since_nano:
                            continue
                        if message.until_nano is not None and event.time_nano > message.until_nano:
                            continue
                        if matches(event, message.filters):
                            self._deliver(inbox, event)
                            replayed += 1
                self.subscribers[inbox] = message
                return Subscribed(replayed)
            case Unsubscribe(inbox=inbox):
                self.subscribers.pop(inbox, None)
        return None

    def _deliver(self, inbox: Ref, event: Event) -> None:
        try:
            self.node.tell_nowait(inbox, event)
        except (ActorBusy, NoSuchActor):
            self.subscribers.pop(inbox, None)
            self.dropped_subscribers += 1


def publish(events: Ref, event: Event) -> None:
    """Tell the events actor, never blocking and never failing the caller."""
    try:
        events.tell_nowait(event)
    except (ActorBusy, NoSuchActor):
        pass
