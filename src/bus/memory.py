"""The in-process transport: partitioned topics, consumer groups, commits and redelivery.

Not a call-through fake: it keeps Kafka's rules. Records are appended to partitions chosen by
Kafka's partitioner; each partition of a group belongs to one member at a time and is handed to a
new owner only after the old one has let it go (on its next poll or when it closes); a new owner
starts from the committed offset, so uncommitted records are delivered again; a group with no
commit starts from the beginning. Everything runs on one asyncio loop.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bus.codec import Headers, encode
from bus.envelope import Envelope
from bus.errors import CommitFailed, TransportClosed, UnknownTopic
from bus.partitioning import check_size, partition_for
from bus.topics import TopicSpec
from bus.transport import AssignCallback, Record, RecordMetadata, RevokeCallback, TopicPartition


@dataclass
class _Topic:
    spec: TopicSpec
    partitions: list[list[Record]]


@dataclass(eq=False)
class _Group:
    name: str
    members: list[MemorySubscription] = field(default_factory=list)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    owner: dict[TopicPartition, MemorySubscription] = field(default_factory=dict)
    target: dict[int, frozenset[TopicPartition]] = field(default_factory=dict)

    def rebalance(self, transport: MemoryTransport) -> None:
        """Spread the partitions of every member's topics over the members, round robin."""
        self.target = {}
        if not self.members:
            return
        topics = sorted({t for m in self.members for t in m.topics})
        tps = [TopicPartition(t, p) for t in topics for p in range(len(transport._topic(t).partitions))]
        shares: dict[int, set[TopicPartition]] = {m.member_id: set() for m in self.members}
        for i, tp in enumerate(tps):
            candidates = [m for m in self.members if tp.topic in m.topics]
            shares[candidates[i % len(candidates)].member_id].add(tp)
        self.target = {k: frozenset(v) for k, v in shares.items()}


class MemoryTransport:
    """An in-process event log with Kafka's partitioning, ordering and consumer-group rules."""

    def __init__(self, specs: Iterable[TopicSpec] = ()) -> None:
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._changed = asyncio.Condition()
        self._member_ids = itertools.count(1)
        self._closed = False
        for spec in specs:
            self._create(spec)

    def _create(self, spec: TopicSpec) -> None:
        if spec.name not in self._topics:
            self._topics[spec.name] = _Topic(spec, [[] for _ in range(spec.partitions)])

    def _topic(self, name: str) -> _Topic:
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopic(f"topic {name!r} does not exist; known: {sorted(self._topics)}") from None

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        for group in self._groups.values():
            for member in list(group.members):
                await member.close()
        self._closed = True

    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        for spec in specs:
            self._create(spec)

    async def publish(self, topic: str, envelope: Envelope) -> RecordMetadata:
        enc = encode(envelope)
        return await self.publish_raw(topic, enc.key, enc.value, enc.headers)

    async def publish_many(self, topic: str, envelopes: Sequence[Envelope]) -> list[RecordMetadata]:
        encoded = [encode(e) for e in envelopes]
        t = self._topic(topic)
        for enc in encoded:  # all or nothing: check every size before appending any
            check_size(t.spec, enc.key, enc.value, enc.headers)
        if self._closed:
            raise TransportClosed("memory transport is closed")
        now_ms = time.time_ns() // 1_000_000
        metas = [self._append(t, enc.key, enc.value, enc.headers, now_ms) for enc in encoded]
        await self._notify()
        return metas

    async def publish_raw(self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> RecordMetadata:
        if self._closed:
            raise TransportClosed("memory transport is closed")
        t = self._topic(topic)
        check_size(t.spec, key, value, headers)
        meta = self._append(t, key, value, headers)
        await self._notify()
        return meta

    async def publish_records(self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]) -> None:
        if self._closed:
            raise TransportClosed("memory transport is closed")
        for topic, key, value, headers in records:
            check_size(self._topic(topic).spec, key, value, headers)
        for topic, key, value, headers in records:
            self._append(self._topic(topic), key, value, headers)
        await self._notify()

    def _append(
        self, t: _Topic, key: bytes | None, value: bytes, headers: Headers, now_ms: int | None = None
    ) -> RecordMetadata:
        p = partition_for(key, len(t.partitions))
        log = t.partitions[p]
        stamp = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        log.append(Record(t.spec.name, p, len(log), key, value, tuple(headers), stamp))
        return RecordMetadata(t.spec.name, p, len(log) - 1)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def subscribe(
        self,
        group: str,
        topics: Sequence[str],
        *,
        on_assign: AssignCallback | None = None,
        on_revoke: RevokeCallback | None = None,
    ) -> MemorySubscription:
        for t in topics:
            self._topic(t)
        g = self._groups.setdefault(group, _Group(group))
        member = MemorySubscription(self, g, next(self._member_ids), tuple(topics), on_assign, on_revoke)
        g.members.append(member)
        g.rebalance(self)
        await self._notify()
        return member

    async def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        return {TopicPartition(t, p): len(log) for t in topics for p, log in enumerate(self._topic(t).partitions)}

    def committed(self, group: str) -> dict[TopicPartition, int]:
        """The committed offsets of a group (for inspection and tests)."""
        g = self._groups.get(group)
        return dict(g.committed) if g else {}


class MemorySubscription:
    """A member of a consumer group on the memory transport."""

    def __init__(
        self,
        transport: MemoryTransport,
        group: _Group,
        member_id: int,
        topics: tuple[str, ...],
        on_assign: AssignCallback | None,
        on_revoke: RevokeCallback | None,
    ) -> None:
        self._transport = transport
        self._group = group
        self.member_id = member_id
        self.topics = topics
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._owned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._closed = False

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._owned)

    async def _sync_ownership(self) -> None:
        g = self._group
        target = g.target.get(self.member_id, frozenset())
        released = self._owned - target
        if released:
            if self._on_revoke is not None:
                await self._on_revoke(frozenset(released))
            for tp in released:
                self._owned.discard(tp)
                self._positions.pop(tp, None)
                if g.owner.get(tp) is self:
                    del g.owner[tp]
            await self._transport._notify()
        acquired = {tp for tp in target - self._owned if tp not in g.owner}
        if acquired:
            for tp in acquired:
                g.owner[tp] = self
                self._owned.add(tp)
            starts: Mapping[TopicPartition, int] = {}
            if self._on_assign is not None:
                starts = await self._on_assign(frozenset(acquired))
            for tp in acquired:
                self._positions[tp] = starts.get(tp, g.committed.get(tp, 0))

    async def poll(self, timeout: float = 1.0, max_records: int = 1000) -> dict[TopicPartition, list[Record]]:
        if self._closed:
            raise TransportClosed("subscription is closed")
        deadline = time.monotonic() + timeout
        while True:
            await self._sync_ownership()
            out = self._fetch(max_records)
            if out:
                return out
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {}
            cond = self._transport._changed
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the inner result when a
            # cancellation arrives just as the condition is notified, and the cancellation is lost.
            async with cond:
                try:
                    async with asyncio.timeout(min(remaining, 0.05)):
                        await cond.wait()
                except TimeoutError:
                    pass

    def _fetch(self, max_records: int) -> dict[TopicPartition, list[Record]]:
        """Up to `max_records` records, shared evenly between the owned partitions that have any
        (as a Kafka fetch returns several partitions' data at once), so that a consumer's
        partitions progress together and none waits behind a busy one."""
        ready: list[tuple[TopicPartition, list[Record], int]] = []
        for tp in sorted(self._owned):
            log = self._transport._topic(tp.topic).partitions[tp.partition]
            pos = self._positions.get(tp, 0)
            if pos < len(log):
                ready.append((tp, log, pos))
        out: dict[TopicPartition, list[Record]] = {}
        budget = max_records
        while ready and budget > 0:
            share = max(1, budget // len(ready))
            waiting = []
            for tp, log, pos in ready:
                if budget <= 0:
                    break
                chunk = log[pos : pos + min(share, budget)]
                out.setdefault(tp, []).extend(chunk)
                pos += len(chunk)
                self._positions[tp] = pos
                budget -= len(chunk)
                if pos < len(log):
                    waiting.append((tp, log, pos))
            ready = waiting
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self._closed:
            raise TransportClosed("subscription is closed")
        for tp in offsets:
            if tp not in self._owned:
                raise CommitFailed(f"{tp.topic}[{tp.partition}] is not assigned to this member of {self._group.name}")
        self._group.committed.update(offsets)

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._owned:
            raise CommitFailed(f"cannot seek {tp.topic}[{tp.partition}]: not assigned")
        self._positions[tp] = offset

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        g = self._group
        for tp in list(self._owned):
            if g.owner.get(tp) is self:
                del g.owner[tp]
        self._owned.clear()
        if self in g.members:
            g.members.remove(self)
        g.rebalance(self._transport)
        await self._transport._notify()
