"""Envelopes to Kafka records and back: JSON value, metadata mirrored into headers.

Decoding checks everything a consumer needs before a handler sees the event: the bytes are JSON,
the envelope is well formed, the type and version are known, and the payload validates. Each
failure is an `InvalidEvent` naming the field, which the actor runtime sends to `deadletter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from pydantic import ValidationError

from bus.catalog import CATALOG, Event, EventCatalog, invalid_from_validation
from bus.envelope import Envelope
from bus.errors import InvalidEvent

Headers = tuple[tuple[str, bytes], ...]


class EncodedEvent(NamedTuple):
    """An envelope ready for the wire (a named tuple: one is built per published event)."""

    key: bytes
    value: bytes
    headers: Headers


def encode(envelope: Envelope) -> EncodedEvent:
    """The record for an envelope: key, JSON value and metadata headers."""
    headers: tuple[tuple[str, bytes], ...] = (
        ("event_id", str(envelope.event_id).encode()),
        ("type", envelope.type.encode()),
        ("version", str(envelope.version).encode()),
        ("correlation_id", str(envelope.correlation_id).encode()),
        ("producer", envelope.producer.encode()),
        ("occurred_at", envelope.occurred_at.isoformat().encode()),
    )
    if envelope.causation_id is not None:
        headers += (("causation_id", str(envelope.causation_id).encode()),)
    return EncodedEvent(envelope.key.encode(), _to_json(envelope), headers)


_to_json = Envelope.__pydantic_serializer__.to_json
"""`model_dump_json` without its keyword handling: the same bytes."""


def decode_envelope(value: bytes) -> Envelope:
    """The envelope in a record's value, or `InvalidEvent` naming what is wrong."""
    try:
        return Envelope.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise InvalidEvent(f"not valid JSON: {first['msg']}", field="value") from None
        raise invalid_from_validation(exc, prefix="") from None


@dataclass(frozen=True)
class DecodedEvent:
    """An envelope and its payload parsed into the latest model of its type."""

    envelope: Envelope
    event: Event


def decode(value: bytes, catalog: EventCatalog = CATALOG) -> DecodedEvent:
    """Envelope and validated payload of a record; raises `InvalidEvent` naming the field."""
    envelope = decode_envelope(value)
    return DecodedEvent(envelope, catalog.parse(envelope))
