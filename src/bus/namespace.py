"""A namespace on a shared cluster: topics and consumer groups carry a prefix on the wire.

Several risklab deployments (or test runs) can share one Kafka cluster without seeing each other's
events. The application keeps speaking the logical topic names of `bus.topics`; only the wire
names change, `<namespace>.<topic>` and `<namespace>.<group>`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence

from bus.codec import Headers
from bus.envelope import Envelope
from bus.topics import TopicSpec
from bus.transport import (
    AssignCallback,
    Record,
    RecordMetadata,
    RevokeCallback,
    Subscription,
    TopicPartition,
    Transport,
)

_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def validate_namespace(namespace: str) -> str:
    if not _NAMESPACE.match(namespace):
        raise ValueError(f"namespace {namespace!r}: lower-case letters, digits, _ and -, at most 63 characters")
    return namespace


class NamespacedTransport:
    """A transport whose topics and groups live under a prefix of an inner transport."""

    def __init__(self, inner: Transport, namespace: str) -> None:
        self.inner = inner
        self.namespace = validate_namespace(namespace)
        self._prefix = f"{namespace}."

    def wire(self, topic: str) -> str:
        return self._prefix + topic

    def logical(self, topic: str) -> str:
        return topic.removeprefix(self._prefix)

    def _wire_tp(self, tp: TopicPartition) -> TopicPartition:
        return TopicPartition(self.wire(tp.topic), tp.partition)

    def _logical_tp(self, tp: TopicPartition) -> TopicPartition:
        return TopicPartition(self.logical(tp.topic), tp.partition)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        await self.inner.ensure_topics([dataclasses.replace(s, name=self.wire(s.name)) for s in specs])

    def _meta(self, m: RecordMetadata) -> RecordMetadata:
        return RecordMetadata(self.logical(m.topic), m.partition, m.offset)

    async def publish(self, topic: str, envelope: Envelope) -> RecordMetadata:
        return self._meta(await self.inner.publish(self.wire(topic), envelope))

    async def publish_many(self, topic: str, envelopes: Sequence[Envelope]) -> list[RecordMetadata]:
        return [self._meta(m) for m in await self.inner.publish_many(self.wire(topic), envelopes)]

    async def publish_raw(self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> RecordMetadata:
        return self._meta(await self.inner.publish_raw(self.wire(topic), key, value, headers))

    async def publish_records(self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]) -> None:
        await self.inner.publish_records([(self.wire(t), k, v, h) for t, k, v, h in records])

    async def subscribe(
        self,
        group: str,
        topics: Sequence[str],
        *,
        on_assign: AssignCallback | None = None,
        on_revoke: RevokeCallback | None = None,
    ) -> Subscription:
        async def assigned(tps: frozenset[TopicPartition]) -> Mapping[TopicPartition, int]:
            assert on_assign is not None
            starts = await on_assign(frozenset(self._logical_tp(tp) for tp in tps))
            return {self._wire_tp(tp): offset for tp, offset in starts.items()}

        async def revoked(tps: frozenset[TopicPartition]) -> None:
            assert on_revoke is not None
            await on_revoke(frozenset(self._logical_tp(tp) for tp in tps))

        inner = await self.inner.subscribe(
            self._prefix + group,
            [self.wire(t) for t in topics],
            on_assign=assigned if on_assign else None,
            on_revoke=revoked if on_revoke else None,
        )
        return _NamespacedSubscription(self, inner)

    async def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        ends = await self.inner.end_offsets([self.wire(t) for t in topics])
        return {self._logical_tp(tp): end for tp, end in ends.items()}


class _NamespacedSubscription:
    def __init__(self, ns: NamespacedTransport, inner: Subscription) -> None:
        self._ns = ns
        self._inner = inner

    async def poll(self, timeout: float = 1.0, max_records: int = 1000) -> dict[TopicPartition, list[Record]]:
        out = await self._inner.poll(timeout, max_records)
        ns = self._ns
        return {
            ns._logical_tp(tp): [dataclasses.replace(r, topic=ns.logical(r.topic)) for r in records]
            for tp, records in out.items()
        }

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self._inner.commit({self._ns._wire_tp(tp): o for tp, o in offsets.items()})

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._ns._logical_tp(tp) for tp in self._inner.assignment())

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        await self._inner.seek(self._ns._wire_tp(tp), offset)

    async def close(self) -> None:
        await self._inner.close()
