"""The event catalog: every event type the system knows, by stable name and version.

The catalog is the public contract. Each payload model declares its type name, version, default
topic and which payload field is the partition key; older versions stay readable through
upcasters that turn an old payload into the next version's. `schemas/` holds the JSON Schema of
every version (see `bus.schemas`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from bus.envelope import EVENT_TYPE_PATTERN, Envelope, derived_event_id, utc_now
from bus.errors import InvalidEvent, UnknownEventType, UnsupportedVersion

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Event(BaseModel):
    """Base of every event payload. Subclasses declare their catalog entry as class arguments:

    `class TradeBooked(Event, type="portfolio.trade_booked", version=1, topic="portfolio.trades",
    key="portfolio_id")`
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    event_version: ClassVar[int]
    default_topic: ClassVar[str]
    key_field: ClassVar[str | None]

    def __init_subclass__(
        cls,
        *,
        type: str | None = None,
        version: int = 1,
        topic: str | None = None,
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if type is None:
            return
        if not re.match(EVENT_TYPE_PATTERN, type):
            raise ValueError(f"event type {type!r} must be dotted lower-case words")
        if topic is None:
            raise ValueError(f"event type {type!r} needs a default topic")
        cls.event_type = type
        cls.event_version = version
        cls.default_topic = topic
        cls.key_field = key

    def partition_key(self) -> str | None:
        """The key this event must carry, taken from its key field, if it declares one."""
        if self.key_field is None:
            return None
        return str(getattr(self, self.key_field))

    def accepts_key(self, key: str) -> bool:
        """Whether an envelope may carry this event under `key` (by default: exactly its key field)."""
        expected = self.partition_key()
        return expected is None or key == expected


class EventCatalog:
    """Event types by (name, version), with upcasters between consecutive versions."""

    def __init__(self) -> None:
        self._models: dict[str, dict[int, type[Event]]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, model: type[Event]) -> type[Event]:
        """Add an event model; usable as a class decorator."""
        versions = self._models.setdefault(model.event_type, {})
        existing = versions.get(model.event_version)
        if existing is not None and existing is not model:
            raise ValueError(f"{model.event_type} v{model.event_version} is already registered by {existing}")
        versions[model.event_version] = model
        return model

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning a payload of `from_version` into one of `from_version + 1`."""

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return decorate

    def has_upcaster(self, event_type: str, from_version: int) -> bool:
        return (event_type, from_version) in self._upcasters

    def types(self) -> list[str]:
        return sorted(self._models)

    def __iter__(self) -> Iterator[type[Event]]:
        for name in self.types():
            yield from (self._models[name][v] for v in sorted(self._models[name]))

    def latest(self, event_type: str) -> type[Event]:
        versions = self._models.get(event_type)
        if not versions:
            raise UnknownEventType(f"unknown event type {event_type!r}", field="type")
        return versions[max(versions)]

    def model_for(self, event_type: str, version: int) -> type[Event]:
        latest = self.latest(event_type)
        if version > latest.event_version:
            raise UnsupportedVersion(
                f"{event_type} version {version} is newer than the latest known version {latest.event_version}",
                field="version",
            )
        return latest

    def upcast(self, event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload brought from `version` up to the latest version of its type."""
        latest = self.latest(event_type).event_version
        while version < latest:
            fn = self._upcasters.get((event_type, version))
            if fn is None:
                raise UnsupportedVersion(
                    f"{event_type} version {version} has no upcaster to version {version + 1}",
                    field="version",
                )
            payload = fn(dict(payload))
            version += 1
        return payload

    def parse(self, envelope: Envelope) -> Event:
        """The envelope's payload as its (latest) event model; raises `InvalidEvent` naming the field."""
        model = self.model_for(envelope.type, envelope.version)
        payload = self.upcast(envelope.type, envelope.version, envelope.payload)
        try:
            event = model.model_validate(payload)
        except ValidationError as exc:
            raise invalid_from_validation(exc, prefix="payload") from None
        expected_key = event.partition_key()
        if not event.accepts_key(envelope.key):
            raise InvalidEvent(
                f"key {envelope.key!r} must equal payload.{model.key_field} {expected_key!r} "
                "so that one subject's events stay in order on one partition",
                field="key",
            )
        return event

    def envelope(
        self,
        event: Event,
        *,
        producer: str,
        correlation_id: uuid.UUID | None = None,
        causation_id: uuid.UUID | None = None,
        key: str | None = None,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """Wrap an event in an envelope. Without a correlation id the event starts a new chain."""
        self.latest(event.event_type)  # refuse events that are not in this catalog
        event_id = event_id or uuid.uuid4()
        key = key or event.partition_key()
        if key is None:
            raise InvalidEvent(f"{event.event_type} declares no key field: give a key", field="key")
        return Envelope(
            event_id=event_id,
            type=event.event_type,
            version=event.event_version,
            key=key,
            correlation_id=correlation_id or event_id,
            causation_id=causation_id,
            producer=producer,
            occurred_at=occurred_at or utc_now(),
            payload=event.model_dump(mode="json"),
        )

    def derived_envelope(
        self, event: Event, *, cause: Envelope, actor: str, producer: str, index: int, key: str | None = None
    ) -> Envelope:
        """The envelope of the `index`-th event `actor` emits in reaction to `cause`."""
        return self.envelope(
            event,
            producer=producer,
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            key=key,
            event_id=derived_event_id(cause.event_id, actor, index),
        )


def invalid_from_validation(exc: ValidationError, *, prefix: str) -> InvalidEvent:
    """The first error of a pydantic validation as an `InvalidEvent` naming its field."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    more = len(exc.errors()) - 1
    reason = err["msg"] + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
    return InvalidEvent(reason, field=loc)


CATALOG = EventCatalog()
"""The process-wide catalog; event modules register into it on import (see `bus.events`)."""
