"""Errors of the event bus: each names the field or limit at fault and why."""

from __future__ import annotations


class BusError(Exception):
    """Base of every error raised by the bus."""


class InvalidEvent(BusError):
    """An event that cannot be accepted: bad bytes, unknown type or version, or a payload that
    does not validate. `field` is a dotted path ("payload.notional") when one field is at fault."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)


class UnknownEventType(InvalidEvent):
    """The envelope names a type the catalog does not hold."""


class UnsupportedVersion(InvalidEvent):
    """The envelope's version is newer than the catalog knows, or has no upcaster."""


class MessageTooLarge(BusError):
    """An encoded event exceeds the topic's maximum message size."""

    def __init__(self, topic: str, size: int, limit: int) -> None:
        self.topic, self.size, self.limit = topic, size, limit
        super().__init__(
            f"event of {size} bytes exceeds the {limit}-byte limit of topic {topic!r}; "
            "put large content in the artifact store and send a reference"
        )


class UnknownTopic(BusError):
    """A topic that is not declared in the topic catalog."""


class CommitFailed(BusError):
    """Offsets could not be committed because the partition is no longer assigned to this member."""


class TransportClosed(BusError):
    """The transport or subscription was used after it was closed."""


class DeliveryFailed(BusError):
    """The broker refused a record, or the producer failed, for a reason other than its size."""


class DeliveryTimeout(DeliveryFailed, TimeoutError):
    """The broker did not acknowledge in time (it is probably down); the record may still land."""
