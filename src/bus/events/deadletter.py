"""Dead letters: events that could not be processed, with the reason, kept on the log."""

from __future__ import annotations

from pydantic import Field

from bus.catalog import CATALOG, Event
from bus.topics import DEADLETTER


@CATALOG.register
class DeadLettered(Event, type="bus.dead_lettered", version=1, topic=DEADLETTER, key="original_topic"):
    """An input an actor gave up on: bad bytes, a payload that does not validate, or a handler that
    kept failing. The original record travels with it so nothing is lost."""

    actor: str = Field(description="The actor or projection that could not process the event.")
    reason: str = Field(description="Why, in words: the error message.")
    error_type: str = Field(description="invalid_event, unknown_type, handler_failed, ...")
    attempts: int = Field(ge=1)
    original_topic: str
    original_partition: int = Field(ge=0)
    original_offset: int = Field(ge=0)
    original_key: str | None = None
    original_event_id: str | None = Field(default=None, description="When the envelope could be read.")
    original_type: str | None = None
    original_value_base64: str = Field(description="The original record's bytes, base64.")
