"""The envelope every event travels in, and the rule that derives agent output ids.

The envelope is the same for every event type: identity, type and version, partition key,
correlation and causation for lineage, producer, time, and the payload. Emitted ids are a
function of (causation id, producer, output index), so a redelivered input produces the same
output ids and downstream deduplication holds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
RISKLAB_NAMESPACE = uuid.UUID("6f1c2b9e-3c1d-5a57-9a2e-7d1b4c0e8f31")


class Envelope(BaseModel):
    """One event on the log: metadata plus a payload validated by the event catalog."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(description="Unique id; deterministic for agent output.")
    type: str = Field(pattern=EVENT_TYPE_PATTERN, description="Stable event type name, e.g. margin.margins_computed.")
    version: int = Field(ge=1, description="Schema version of the payload.")
    key: str = Field(min_length=1, max_length=512, description="Partition key: the aggregate the event belongs to.")
    correlation_id: uuid.UUID = Field(description="The user request or run that started the chain.")
    causation_id: uuid.UUID | None = Field(default=None, description="The event that caused this one.")
    producer: str = Field(min_length=1, max_length=200, description="Agent or user name and code version.")
    occurred_at: AwareDatetime = Field(description="When the event happened, with its time zone.")
    payload: dict[str, Any] = Field(description="The event's content; its schema is the catalog's.")


def derived_event_id(causation_id: uuid.UUID, actor: str, output_index: int) -> uuid.UUID:
    """The id of the `output_index`-th event `actor` emits in reaction to `causation_id`.

    The actor name, not its code version, enters the id: a redelivery handled by a newer build
    of the same actor must still produce the same ids.
    """
    return uuid.uuid5(RISKLAB_NAMESPACE, f"{causation_id}/{actor}/{output_index}")


def utc_now() -> datetime:
    return datetime.now(UTC)
