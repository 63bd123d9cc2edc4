"""What an actor is: a named consumer of some topics whose handler reacts to events.

A handler runs inside the runtime's PostgreSQL transaction: it may read and write the actor's
own state rows through `ctx.conn` and emit events through `ctx.emit`; all of it commits together
with the record that the input was processed, or none of it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import asyncpg

from bus.catalog import CATALOG, Event, EventCatalog
from bus.codec import DecodedEvent
from bus.envelope import Envelope
from bus.migrations import Migration
from bus.transport import Record


class Rejected(Exception):
    """A handler's verdict that an event can never be processed (e.g. amending an unknown trade).

    Not retried: the event goes to `deadletter` at once with this message as the reason.
    """


@dataclass
class Emitted:
    """An event a handler emitted, with the topic and key it goes to."""

    envelope: Envelope
    topic: str


@dataclass(slots=True)
class HandlerContext:
    """What a handler gets besides the event: the transaction's connection and `emit`.

    `actor` is the actor's stable name, from which emitted ids are derived, so that a rebuilt
    projection generation or a renamed consumer group emits the same ids for the same cause."""

    conn: asyncpg.Connection
    cause: Envelope
    actor: str
    producer: str
    catalog: EventCatalog
    prepared: Any = None
    record: Record | None = None
    """Where the event sits on the log (topic, partition, offset)."""
    emitted: list[Emitted] = field(default_factory=list)

    def emit(self, event: Event, *, topic: str | None = None, key: str | None = None) -> Envelope:
        """Emit `event` in reaction to the current input; its id is derived deterministically."""
        envelope = self.catalog.derived_envelope(
            event, cause=self.cause, actor=self.actor, producer=self.producer, index=len(self.emitted), key=key
        )
        self.emitted.append(Emitted(envelope, topic or event.default_topic))
        return envelope


class Actor:
    """Base of every actor and projection run by the runtime.

    Subclasses set `name` (stable: it keys processed events, offsets and emitted ids), `topics`,
    optionally `accepts` (event types to handle; others on the topics are skipped), `migrations`
    for their state tables, and implement `handle` (or `handle_batch` for set-based writes).
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    topics: tuple[str, ...] = ()
    accepts: frozenset[str] | None = None
    migrations: Sequence[Migration] = ()
    catalog: EventCatalog = CATALOG
    max_batch: int | None = None
    """Most records handled in one transaction; e.g. 1 for long computations whose answers should
    leave as soon as each is ready. None: the runtime's default."""

    @property
    def producer(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def consumer_name(self) -> str:
        """Name under which the runtime records this actor's progress (group id, processed events)."""
        return self.name

    def wants(self, event_type: str) -> bool:
        return self.accepts is None or event_type in self.accepts

    async def prepare(self, event: DecodedEvent) -> Any:
        """Work done outside the transaction before `handle` (e.g. a long computation); its result
        reaches the handler as `ctx.prepared`. Must not have side effects."""
        return None

    async def handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        raise NotImplementedError

    async def handle_batch(self, items: Sequence[tuple[DecodedEvent, HandlerContext]]) -> None:
        """Handle several events of one partition, in order, in one transaction."""
        for event, ctx in items:
            await self.handle(event, ctx)

    async def on_start(self, conn: asyncpg.Connection) -> None:
        """Called once the migrations are applied, before consuming."""
