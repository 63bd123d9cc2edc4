"""Turning what a user submits into envelopes, all or nothing.

Used by `risklab publish` and the HTTP API alike: every line is validated against the event
catalog and the target topic before anything is published, and the first problem is reported with
its line, field and reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

import bus.events  # noqa: F401 - registers the generic event types
from bus.catalog import CATALOG, EventCatalog, invalid_from_validation
from bus.codec import encode
from bus.envelope import EVENT_TYPE_PATTERN, Envelope, utc_now
from bus.errors import InvalidEvent
from bus.partitioning import record_size
from bus.topics import USER_TOPICS


class IngestError(ValueError):
    """A submission refused before anything was published; names line, field and reason."""

    def __init__(self, line: int, field: str | None, reason: str) -> None:
        self.line, self.field, self.reason = line, field, reason
        where = f"line {line}" + (f", field {field}" if field else "")
        super().__init__(f"{where}: {reason}")


class EventTooLarge(IngestError):
    """An event over the message size limit (the API answers 413 rather than 422)."""


class Submission(BaseModel):
    """One event as a user submits it: type and payload, with the envelope fields optional."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(pattern=EVENT_TYPE_PATTERN)
    payload: dict[str, Any]
    version: int | None = Field(default=None, ge=1, description="Default: the latest version of the type.")
    key: str | None = Field(default=None, description="Default: the type's key field.")
    event_id: uuid.UUID | None = None
    correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None
    producer: str | None = Field(default=None, min_length=1, max_length=200)
    occurred_at: AwareDatetime | None = None


def envelope_for(sub: Submission, *, producer: str, catalog: EventCatalog = CATALOG) -> Envelope:
    """The envelope of a submission, its payload validated (and upcast) by the catalog."""
    latest = catalog.latest(sub.type)
    version = sub.version or latest.event_version
    catalog.model_for(sub.type, version)
    event_id = sub.event_id or uuid.uuid4()
    key = sub.key
    if key is None:
        payload_key = sub.payload.get(latest.key_field) if latest.key_field else None
        if payload_key is None:
            raise InvalidEvent(f"no key given and payload has no {latest.key_field or 'key field'}", field="key")
        key = str(payload_key)
    envelope = Envelope(
        event_id=event_id,
        type=sub.type,
        version=version,
        key=key,
        correlation_id=sub.correlation_id or event_id,
        causation_id=sub.causation_id,
        producer=sub.producer or producer,
        occurred_at=sub.occurred_at or utc_now(),
        payload=sub.payload,
    )
    catalog.parse(envelope)
    return envelope


def parse_submissions(
    topic: str,
    lines: Iterable[str | dict[str, Any]],
    *,
    producer: str,
    max_message_bytes: int,
    catalog: EventCatalog = CATALOG,
) -> list[Envelope]:
    """Validate every line (JSON text or an already-parsed object) for `topic`; refuse all on any error."""
    if topic not in USER_TOPICS:
        raise IngestError(0, "topic", f"{topic!r} is not a topic users publish to; use one of {list(USER_TOPICS)}")
    out: list[Envelope] = []
    for number, line in enumerate(lines, start=1):
        if isinstance(line, str):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise IngestError(number, None, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
        else:
            data = line
        if not isinstance(data, dict):
            raise IngestError(
                number, None, f'expected a JSON object {{"type": ..., "payload": {{...}}}}, got {type(data).__name__}'
            )
        try:
            sub = Submission.model_validate(data)
            envelope = envelope_for(sub, producer=producer, catalog=catalog)
        except ValidationError as exc:
            err = invalid_from_validation(exc, prefix="")
            raise IngestError(number, err.field, err.reason) from None
        except InvalidEvent as exc:
            raise IngestError(number, exc.field, exc.reason) from None
        expected_topic = catalog.latest(sub.type).default_topic
        if expected_topic != topic:
            raise IngestError(number, "type", f"{sub.type} belongs on topic {expected_topic!r}, not {topic!r}")
        enc = encode(envelope)
        size = record_size(enc.key, enc.value, enc.headers)
        if size > max_message_bytes:
            raise EventTooLarge(
                number,
                "payload",
                f"event of {size} bytes exceeds the {max_message_bytes}-byte limit; "
                "put large content in the artifact store and send a reference",
            )
        out.append(envelope)
    if not out:
        raise IngestError(0, None, "no events given")
    return out
