"""The exactly-once actor runtime.

For each partition batch an actor runs one PostgreSQL transaction that records the processed
event ids and the partition's high-water mark, lets the handler write its state rows, and writes
what it emits into the outbox. Kafka offsets are committed only afterwards and are advisory: on
assignment the consumer starts from the offsets stored in PostgreSQL. A handler that raises sends
the batch through one transaction per event, retried with backoff; after the limit (or at once
for `Rejected`, undecodable bytes and payloads that do not validate) the event goes to
`deadletter` with its reason, and the partition moves on. When the database is unavailable the
actor pauses and retries; nothing is dead-lettered for the infrastructure's faults.

A poll's records are shared between the partitions in hand, and each partition's share is one
transaction; the partitions' transactions run concurrently. The next poll's transactions start
while the previous poll's finish (a partition's batches still one after the other), so the process
decodes and hashes while PostgreSQL writes. Partitions being revoked finish their batches first,
and after a stop nothing new begins.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import asyncpg

from bus.codec import DecodedEvent, decode_envelope, encode
from bus.envelope import RISKLAB_NAMESPACE, Envelope, derived_event_id
from bus.errors import CommitFailed, InvalidEvent, UnknownEventType
from bus.events.deadletter import DeadLettered
from bus.migrations import apply_migrations, package_migrations
from bus.runtime.actor import Actor, Emitted, HandlerContext, Rejected
from bus.runtime.relay import OutboxRelay
from bus.runtime.transient import is_transient
from bus.topics import DEADLETTER
from bus.transport import Record, Subscription, TopicPartition, Transport

log = logging.getLogger("risklab.runtime")
T = TypeVar("T")

RUNTIME_MIGRATIONS = package_migrations("runtime", "bus.runtime")


@dataclass(frozen=True)
class RuntimeOptions:
    """How persistently the runtime retries, and how much it reads at once."""

    retries: int = 5
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    poll_timeout_seconds: float = 0.2
    max_records: int = 2000
    """Most records gathered for one round, shared between the partitions in hand; each partition's
    share is one transaction, so larger rounds spread each transaction's fixed cost (its round
    trips) over more events."""
    linger_seconds: float = 0.01
    """After records arrive, keep gathering for up to this long so that a trickle of events is
    handled in a few larger transactions rather than one each (cf. Kafka's fetch.max.wait.ms)."""


class HandlerFailed(Exception):
    """The handler raised for a reason that is the event's, not the infrastructure's."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(f"{type(cause).__name__}: {cause}")


@dataclass(slots=True)
class _Item:
    record: Record
    event_id: uuid.UUID
    decoded: DecodedEvent | None
    error: InvalidEvent | None = None
    failure: str | None = None  # reason set when the handler gave up on the event
    failure_type: str | None = None
    attempts: int = 1

    @property
    def dead(self) -> bool:
        return self.error is not None or self.failure is not None


@dataclass(frozen=True)
class _Round:
    """One poll's batches, each being processed by its task."""

    batches: dict[TopicPartition, list[Record]]
    tasks: list[asyncio.Task[bool]]


def record_id(record: Record) -> uuid.UUID:
    """A stable id for a record whose envelope cannot be read."""
    return uuid.uuid5(RISKLAB_NAMESPACE, f"record/{record.topic}/{record.partition}/{record.offset}")


async def ensure_runtime_schema(pool: asyncpg.Pool, actor: Actor | None = None) -> None:
    """Apply the runtime's migrations and the actor's own."""
    async with pool.acquire() as conn:
        await apply_migrations(conn, [*RUNTIME_MIGRATIONS, *(actor.migrations if actor else ())])
        if actor is not None:
            await actor.on_start(conn)


class ActorRunner:
    """Runs one actor against a transport and a PostgreSQL pool with exactly-once effects."""

    def __init__(
        self,
        actor: Actor,
        transport: Transport,
        pool: asyncpg.Pool,
        options: RuntimeOptions | None = None,
        *,
        relay: bool = True,
    ) -> None:
        self.actor = actor
        self.transport = transport
        self.pool = pool
        self.options = options or RuntimeOptions()
        self.name = actor.consumer_name
        self.relay = OutboxRelay(pool, transport, self.name, options=self.options) if relay else None
        self.processed = 0
        self.dead_lettered = 0
        self.idle = asyncio.Event()
        self._max_records = min(self.options.max_records, actor.max_batch or self.options.max_records)
        self._producer = actor.producer
        self._prepares = type(actor).prepare is not Actor.prepare
        self._outbox_written = False
        self._tails: dict[TopicPartition, asyncio.Task[bool]] = {}
        self._stop = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the batch in hand is finished before returning."""
        await self._until_available(lambda: ensure_runtime_schema(self.pool, self.actor), "apply migrations")
        # The relay stops only once the consumer has finished the batch in hand, so that what that
        # batch emitted is published before `run` returns.
        relay_stop = asyncio.Event()
        relay_task = asyncio.create_task(self.relay.run(relay_stop)) if self.relay else None
        sub = await self.transport.subscribe(
            self.name, self.actor.topics, on_assign=self._start_offsets, on_revoke=self._finish_revoked
        )
        self._stop = stop
        in_hand: list[_Round] = []
        try:
            while not stop.is_set():
                batches = await self._gather(sub)
                if not batches:
                    while in_hand:
                        await self._settle(sub, in_hand.pop(0))
                    self.idle.set()
                    continue
                self.idle.clear()
                # The next round starts while the previous one's transactions finish: a partition's
                # batches still run one after the other, and at most two rounds are in hand.
                in_hand.append(self._launch(batches))
                while len(in_hand) > 1:
                    await self._settle(sub, in_hand.pop(0))
        finally:
            try:
                for round_ in in_hand:  # everything begun ends before the subscription does
                    await asyncio.gather(*round_.tasks, return_exceptions=True)
                while in_hand:
                    await self._settle(sub, in_hand.pop(0))
            finally:
                await sub.close()
                if relay_task is not None:
                    relay_stop.set()
                    await relay_task

    def _launch(self, batches: dict[TopicPartition, list[Record]]) -> _Round:
        """Start each partition's batch once that partition's previous batch is done."""
        tasks = []
        for tp, records in batches.items():
            task = asyncio.create_task(self._after(self._tails.get(tp), records))
            self._tails[tp] = task
            tasks.append(task)
        return _Round(batches, tasks)

    async def _after(self, previous: asyncio.Task[bool] | None, records: Sequence[Record]) -> bool:
        """Process `records` after `previous`; False if the runner stopped before they began."""
        if previous is not None:
            await previous  # a failure there fails this batch too: the runner is stopping
        if self._stop.is_set():
            return False  # not begun, not committed: the partition's next owner reads them
        await self._process_partition(records)
        return True

    async def _settle(self, sub: Subscription, round_: _Round) -> None:
        """Wait for a round's transactions, then commit its offsets and wake the relay."""
        results = await asyncio.gather(*round_.tasks, return_exceptions=True)
        for tp, task in zip(round_.batches, round_.tasks, strict=True):
            if self._tails.get(tp) is task:
                del self._tails[tp]
        for result in results:
            if isinstance(result, BaseException):
                raise result
        done = {tp: recs[-1].offset + 1 for (tp, recs), ok in zip(round_.batches.items(), results, strict=True) if ok}
        if not done:
            return
        try:
            await sub.commit(done)
        except CommitFailed as exc:  # the database holds the truth; the next owner seeks there
            log.info("%s: offset commit skipped after a rebalance: %s", self.name, exc)
        if self.relay and self._outbox_written:
            self._outbox_written = False
            self.relay.wake()

    async def _finish_revoked(self, tps: frozenset[TopicPartition]) -> None:
        """Before partitions move to another member, finish the batches of theirs still in hand."""
        tails = [self._tails[tp] for tp in tps if tp in self._tails]
        if tails:
            await asyncio.gather(*tails, return_exceptions=True)

    async def _gather(self, sub: Subscription) -> dict[TopicPartition, list[Record]]:
        """Records for one round of transactions: the first poll, topped up for `linger_seconds`."""
        batches = await sub.poll(self.options.poll_timeout_seconds, self._max_records)
        count = sum(len(r) for r in batches.values())
        if not batches or count >= self._max_records or self.options.linger_seconds <= 0:
            return batches
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.linger_seconds
        while count < self._max_records and (remaining := deadline - loop.time()) > 0:
            more = await sub.poll(remaining, self._max_records - count)
            for tp, records in more.items():
                batches.setdefault(tp, []).extend(records)
                count += len(records)
        return batches

    async def _start_offsets(self, tps: frozenset[TopicPartition]) -> Mapping[TopicPartition, int]:
        async def load() -> dict[TopicPartition, int]:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(
                    'SELECT topic, "partition", next_offset FROM consumer_offsets WHERE actor = $1',
                    self.name,
                )
            stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            return {tp: stored[tp] for tp in tps if tp in stored}

        return await self._until_available(load, "load offsets")

    async def _until_available(self, fn: Callable[[], Awaitable[T]], what: str) -> T:
        delay = self.options.backoff_seconds
        while True:
            try:
                return await fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning(
                    "%s: cannot %s (%s: %s); retrying in %.1fs", self.name, what, type(exc).__name__, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.max_backoff_seconds)

    def _item(self, record: Record) -> _Item:
        try:
            envelope = decode_envelope(record.value)
        except InvalidEvent as exc:
            return _Item(record, record_id(record), None, exc)
        try:
            event = self.actor.catalog.parse(envelope)
        except UnknownEventType as exc:
            if self.actor.accepts is not None:
                return _Item(record, envelope.event_id, None, None)  # not ours: skip, as for any other type
            return _Item(record, envelope.event_id, None, exc)
        except InvalidEvent as exc:
            return _Item(record, envelope.event_id, None, exc)
        return _Item(record, envelope.event_id, DecodedEvent(envelope, event))

    def _relevant(self, item: _Item) -> bool:
        return item.dead or (item.decoded is not None and self.actor.wants(item.decoded.envelope.type))

    async def _process_partition(self, records: Sequence[Record]) -> None:
        items = [self._item(r) for r in records]
        try:
            prepared = await self._until_available(lambda: self._prepare(items), "prepare a batch")
            await self._until_available(lambda: self._transact(items, prepared), "process a batch")
        except HandlerFailed as exc:
            if len(items) > 1:
                log.info("%s: batch failed (%s); processing its events one by one", self.name, exc)
            handled = [it for it in items if not it.dead and it.decoded and self.actor.wants(it.decoded.envelope.type)]
            for item in items:
                # a batch of one event to handle was that event's first attempt: it counts
                await self._process_one(item, exc if len(handled) == 1 and item is handled[0] else None)

    async def _prepare(self, items: Sequence[_Item]) -> dict[int, Any]:
        out: dict[int, Any] = {}
        if not self._prepares:
            return out
        for i, item in enumerate(items):
            if item.decoded is not None and not item.dead and self.actor.wants(item.decoded.envelope.type):
                try:
                    out[i] = await self.actor.prepare(item.decoded)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    raise HandlerFailed(exc) from exc
        return out

    async def _process_one(self, item: _Item, failed_first: HandlerFailed | None = None) -> None:
        """Process one event with retries; `failed_first`: its first attempt was made and failed so."""
        attempt = 0 if failed_first is None else 1
        failure = failed_first
        while True:
            if failure is None:
                attempt += 1
                try:
                    prepared = await self._until_available(lambda: self._prepare([item]), "prepare an event")
                    await self._until_available(lambda p=prepared: self._transact([item], p), "process an event")
                    return
                except HandlerFailed as exc:
                    failure = exc
            cause = failure.cause
            final = isinstance(cause, Rejected) or attempt > self.options.retries
            if not final:
                delay = min(self.options.backoff_seconds * 2 ** (attempt - 1), self.options.max_backoff_seconds)
                log.warning("%s: handler failed on %s (attempt %d): %s", self.name, item.event_id, attempt, failure)
                failure = None
                await asyncio.sleep(delay)
                continue
            failed = replace(
                item,
                failure=f"{type(cause).__name__}: {cause}",
                failure_type="rejected" if isinstance(cause, Rejected) else "handler_failed",
                attempts=attempt,
            )
            await self._until_available(lambda f=failed: self._transact([f], {}), "dead-letter an event")
            return

    async def _transact(self, items: Sequence[_Item], prepared: Mapping[int, Any]) -> None:
        relevant = [(i, it) for i, it in enumerate(items) if self._relevant(it)]
        last = items[-1].record
        async with self.pool.acquire() as conn, conn.transaction():
            new: set[uuid.UUID] = set()
            if relevant:
                rows = await conn.fetch(
                    """INSERT INTO processed_events (actor, event_id, topic, "partition", "offset")
                       SELECT $1, e, $2, $3, o FROM unnest($4::uuid[], $5::bigint[]) AS t(e, o)
                       ON CONFLICT DO NOTHING RETURNING event_id""",
                    self.name,
                    last.topic,
                    last.partition,
                    [it.event_id for _, it in relevant],
                    [it.record.offset for _, it in relevant],
                )
                new = {r["event_id"] for r in rows}
            work: list[tuple[DecodedEvent, HandlerContext]] = []
            outputs: list[list[Emitted]] = []
            rejected: list[_Item] = []
            for i, item in relevant:
                if item.event_id not in new:
                    continue  # a duplicate delivery: processed before
                new.discard(item.event_id)  # a second copy in the same batch is a duplicate too
                if item.dead:
                    if item.record.topic == DEADLETTER:
                        rejected.append(item)
                    else:
                        outputs.append([self._dead_letter(item)])
                    continue
                assert item.decoded is not None
                ctx = HandlerContext(
                    conn,
                    item.decoded.envelope,
                    self.actor.name,
                    self._producer,
                    self.actor.catalog,
                    prepared.get(i),
                    item.record,
                )
                work.append((item.decoded, ctx))
                outputs.append(ctx.emitted)
            if work:
                try:
                    await self.actor.handle_batch(work)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    raise HandlerFailed(exc) from exc
            emitted = [e for group in outputs for e in group]
            if emitted:
                await _insert_outbox(conn, self.name, emitted)
                self._outbox_written = True
            for item in rejected:
                await conn.execute(
                    """INSERT INTO rejected_records (actor, topic, "partition", "offset", reason, value)
                       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                    self.name,
                    item.record.topic,
                    item.record.partition,
                    item.record.offset,
                    str(item.error or item.failure),
                    item.record.value,
                )
            await conn.execute(
                """INSERT INTO consumer_offsets (actor, topic, "partition", next_offset) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (actor, topic, "partition")
                   DO UPDATE SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset)""",
                self.name,
                last.topic,
                last.partition,
                last.offset + 1,
            )
        self.processed += len(work)
        self.dead_lettered += sum(1 for _, it in relevant if it.dead)

    def _dead_letter(self, item: _Item) -> Emitted:
        rec = item.record
        envelope: Envelope | None = item.decoded.envelope if item.decoded else None
        if envelope is None:
            try:
                envelope = decode_envelope(rec.value)
            except InvalidEvent:
                envelope = None
        if item.error is not None:
            error_type = "unknown_type" if isinstance(item.error, UnknownEventType) else "invalid_event"
            reason = str(item.error)
        else:
            error_type, reason = item.failure_type or "handler_failed", item.failure or ""
        event = DeadLettered(
            actor=self.name,
            reason=reason,
            error_type=error_type,
            attempts=item.attempts,
            original_topic=rec.topic,
            original_partition=rec.partition,
            original_offset=rec.offset,
            original_key=rec.key.decode(errors="replace") if rec.key is not None else None,
            original_event_id=str(envelope.event_id) if envelope else None,
            original_type=envelope.type if envelope else None,
            original_value_base64=base64.b64encode(rec.value).decode(),
        )
        dl_id = derived_event_id(item.event_id, f"{self.actor.name}/deadletter", 0)
        envelope_out = self.actor.catalog.envelope(
            event,
            producer=self.actor.producer,
            correlation_id=envelope.correlation_id if envelope else item.event_id,
            causation_id=envelope.event_id if envelope else None,
            event_id=dl_id,
        )
        log.warning("%s: dead-lettered %s[%d]@%d: %s", self.name, rec.topic, rec.partition, rec.offset, reason)
        return Emitted(envelope_out, DEADLETTER)


async def _insert_outbox(conn: asyncpg.Connection, actor: str, emitted: Sequence[Emitted]) -> None:
    encoded = [encode(e.envelope) for e in emitted]
    await conn.execute(
        """INSERT INTO outbox (actor, event_id, topic, key, value, headers)
           SELECT $1, e, t, k, v, h::jsonb
           FROM unnest($2::uuid[], $3::text[], $4::bytea[], $5::bytea[], $6::text[])
                WITH ORDINALITY AS x(e, t, k, v, h, n)
           ORDER BY n
           ON CONFLICT (event_id) DO NOTHING""",
        actor,
        [e.envelope.event_id for e in emitted],
        [e.topic for e in emitted],
        [enc.key for enc in encoded],
        [enc.value for enc in encoded],
        [json.dumps([[k, v.decode()] for k, v in enc.headers]) for enc in encoded],
    )
