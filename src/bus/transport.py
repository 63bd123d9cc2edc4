"""The transport protocol: publish envelopes to topics, consume them in consumer groups.

Two implementations honour it with the same rules (checked by one contract test suite): `memory`
for the embedded default and fast tests, `kafka` for distributed runs. A subscription is a member
of a consumer group: the group's partitions are shared among its members, each partition is read
in order, offsets are committed explicitly, and uncommitted records are delivered again to
whichever member owns the partition next.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from bus.codec import Headers
from bus.envelope import Envelope
from bus.topics import TopicSpec


class TopicPartition(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True)
class Record:
    """One record read from a partition."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode(errors="replace")
        return None


@dataclass(frozen=True)
class RecordMetadata:
    """Where a published record landed."""

    topic: str
    partition: int
    offset: int


AssignCallback = Callable[[frozenset[TopicPartition]], Awaitable[Mapping[TopicPartition, int]]]
"""Called when partitions are assigned; returns the offset to start each from (missing: committed)."""
RevokeCallback = Callable[[frozenset[TopicPartition]], Awaitable[None]]
"""Called before partitions are taken away, so work in hand can finish."""


class Subscription(Protocol):
    """One member of a consumer group."""

    async def poll(self, timeout: float = 1.0, max_records: int = 1000) -> dict[TopicPartition, list[Record]]:
        """Records from the assigned partitions, in offset order per partition; empty after `timeout` s."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the next offset to read for each partition; raises `CommitFailed` if not assigned."""
        ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    async def seek(self, tp: TopicPartition, offset: int) -> None: ...

    async def close(self) -> None:
        """Leave the group; uncommitted records go to the next owner of each partition."""
        ...


class Transport(Protocol):
    """Publish and subscribe on the event log."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        """Create missing topics with their settings; existing topics are left as they are."""
        ...

    async def publish(self, topic: str, envelope: Envelope) -> RecordMetadata:
        """Publish one envelope, keyed by `envelope.key`; returns once it is durable."""
        ...

    async def publish_many(self, topic: str, envelopes: Sequence[Envelope]) -> list[RecordMetadata]:
        """Publish envelopes in order; returns once all are durable."""
        ...

    async def publish_raw(self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> RecordMetadata:
        """Publish bytes as they are (dead letters, fault tests); size limits still apply."""
        ...

    async def publish_records(self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]) -> None:
        """Publish encoded records (topic, key, value, headers) in order; returns once all are durable.
        Used by the outbox relay, whose rows are already encoded."""
        ...

    async def subscribe(
        self,
        group: str,
        topics: Sequence[str],
        *,
        on_assign: AssignCallback | None = None,
        on_revoke: RevokeCallback | None = None,
    ) -> Subscription:
        """Join `group` on `topics`; a group with no committed offset starts from the beginning."""
        ...

    async def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """The next offset to be written on each partition of `topics`."""
        ...


async def subscribe_from_now(transport: Transport, group: str, topics: Sequence[str]) -> Subscription:
    """Join `group` on `topics` reading only what is written from now on.

    Each partition starts at the end it had when this was called, so a caller that subscribes
    before publishing a request misses none of the answers and reads none of the older records.
    """
    start = await transport.end_offsets(topics)

    async def from_start(tps: frozenset[TopicPartition]) -> Mapping[TopicPartition, int]:
        return {tp: start[tp] for tp in tps if tp in start}

    return await transport.subscribe(group, topics, on_assign=from_start)
