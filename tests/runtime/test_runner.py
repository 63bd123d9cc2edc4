"""The exactly-once actor runtime on a real PostgreSQL, with the memory transport.

A small test actor (`Recorder`) writes one state row per booked trade and emits one indicator per
input; the trade id tells it how to misbehave. The tests count what it left behind: state rows,
processed events, outbox rows and what reached the log, each of which must be exact.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ClassVar

import asyncpg
import pytest

import bus.events  # noqa: F401  (registers the event types)
from bus.catalog import CATALOG
from bus.codec import DecodedEvent, decode_envelope, encode
from bus.database import connect_pool
from bus.envelope import Envelope, derived_event_id
from bus.events import DeadLettered, IndicatorObserved, TradeBooked
from bus.memory import MemoryTransport
from bus.migrations import Migration
from bus.partitioning import partition_for
from bus.runtime.actor import Actor, HandlerContext, Rejected
from bus.runtime.progress import progress, wait_settled
from bus.runtime.relay import OutboxRelay
from bus.runtime.runner import ActorRunner, RuntimeOptions, ensure_runtime_schema, record_id
from bus.topics import DEADLETTER, PORTFOLIO_TRADES, RISK_INDICATORS, topic_specs
from bus.transport import Record, TopicPartition

pytestmark = pytest.mark.integration

OPTIONS = RuntimeOptions(retries=3, backoff_seconds=0.01, max_backoff_seconds=0.05, poll_timeout_seconds=0.05)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PARTITIONS = 6

_STATE = """
CREATE TABLE recorder_state (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL,
    portfolio_id text NOT NULL,
    trade_id     text NOT NULL
)
"""  # deliberately no unique constraint: a second application would show as a second row


# ------------------------------------------------------------------------------------------------
# The test actor and helpers
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One handler invocation."""

    trade_id: str
    portfolio_id: str
    partition: int
    batch: int  # how many events the transaction handled
    start: float
    end: float


class Recorder(Actor):
    """Writes a state row per booking and emits one indicator; misbehaves by trade id:

    `flaky<k>-...` fails its first k invocations, `bad-...` always fails, `reject-...` is rejected.
    """

    name: ClassVar[str] = "recorder"
    topics = (PORTFOLIO_TRADES,)
    accepts = frozenset({TradeBooked.event_type})
    migrations = (Migration("test-recorder", 1, "state", _STATE),)

    def __init__(self, *, delay: float = 0.0, max_batch: int | None = None) -> None:
        self.delay = delay
        self.max_batch = max_batch
        self.calls: list[Call] = []
        self.started = asyncio.Event()
        self._batch = 0
        self._tries: Counter[str] = Counter()

    async def handle_batch(self, items: Sequence[tuple[DecodedEvent, HandlerContext]]) -> None:
        self._batch = len(items)
        await super().handle_batch(items)

    async def handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        booked = event.event
        assert isinstance(booked, TradeBooked)
        assert ctx.record is not None
        start = time.monotonic()
        self.started.set()
        try:
            self._tries[booked.trade_id] += 1
            tid = booked.trade_id
            if tid.startswith("flaky"):
                times = int(tid.removeprefix("flaky").split("-", 1)[0])
                if self._tries[tid] <= times:
                    raise RuntimeError(f"flaky failure {self._tries[tid]} on {tid}")
            if tid.startswith("bad-"):
                raise RuntimeError(f"boom on {tid}")
            if tid.startswith("reject-"):
                raise Rejected(f"trade {tid} cannot be booked")
            if self.delay:
                await asyncio.sleep(self.delay)
            await ctx.conn.execute(
                "INSERT INTO recorder_state (event_id, portfolio_id, trade_id) VALUES ($1, $2, $3)",
                event.envelope.event_id,
                booked.portfolio_id,
                booked.trade_id,
            )
            ctx.emit(
                IndicatorObserved(
                    subject=booked.portfolio_id,
                    metric="trade_notional",
                    value=booked.notional,
                    capacity=1e9,
                    unit=booked.currency,
                    observed_at=event.envelope.occurred_at,
                )
            )
        finally:
            self.calls.append(
                Call(booked.trade_id, booked.portfolio_id, ctx.record.partition, self._batch, start, time.monotonic())
            )

    def calls_of(self, trade_id: str) -> list[Call]:
        return [c for c in self.calls if c.trade_id == trade_id]


class CountingTransport(MemoryTransport):
    """The memory transport, counting the records each consumer group is handed."""

    def __init__(self) -> None:
        super().__init__(topic_specs(PARTITIONS))
        self.delivered: Counter[str] = Counter()

    async def subscribe(self, group, topics, **kwargs):  # type: ignore[override]
        sub = await super().subscribe(group, topics, **kwargs)
        poll = sub.poll

        async def counting(timeout: float = 1.0, max_records: int = 1000) -> dict[TopicPartition, list[Record]]:
            out = await poll(timeout, max_records)
            self.delivered[group] += sum(len(recs) for recs in out.values())
            return out

        sub.poll = counting  # type: ignore[method-assign]
        return sub

    def lose_commits(self, group: str) -> None:
        """Forget the group's committed offsets, as if the broker had lost them."""
        self._groups[group].committed.clear()


def booking(portfolio: str, trade_id: str, notional: float = 1_000_000.0) -> Envelope:
    event = TradeBooked(
        portfolio_id=portfolio,
        trade_id=trade_id,
        instrument_type="equity",
        underlying="ACME",
        direction="long",
        notional=notional,
        currency="USD",
        trade_date=T0.date(),
    )
    return CATALOG.envelope(event, producer="tests@1", occurred_at=T0)


def keys_on_distinct_partitions(n: int, prefix: str = "K") -> list[str]:
    """`n` keys that the partitioner puts on `n` different partitions."""
    out: dict[int, str] = {}
    for i in itertools.count():
        key = f"{prefix}{i}"
        out.setdefault(partition_for(key.encode(), PARTITIONS), key)
        if len(out) == n:
            return list(out.values())
    raise AssertionError("unreachable")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await connect_pool(database_url, min_size=1, max_size=16)
    try:
        yield p
    finally:
        await p.close()


@dataclass
class Running:
    runner: ActorRunner
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until the actor has stored offsets at the end of its topics and nothing is unsent."""
        runner = self.runner
        waiter = asyncio.ensure_future(
            wait_settled(
                runner.pool,
                runner.transport,
                [(runner.name, runner.actor.topics)],
                timeout=timeout,
                interval=0.02,
            )
        )
        done, _ = await asyncio.wait({waiter, self.task}, timeout=timeout + 5, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self.task in done:
                self.task.result()
            raise AssertionError("the runner stopped before it settled")
        waiter.result()


@asynccontextmanager
async def running(
    actor: Actor, transport: MemoryTransport, pool: asyncpg.Pool, options: RuntimeOptions = OPTIONS, **kwargs
) -> AsyncIterator[Running]:
    await ensure_runtime_schema(pool, actor)  # so that progress can be read from the start
    runner = ActorRunner(actor, transport, pool, options, **kwargs)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield Running(runner, task, stop)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def read_topic(transport: MemoryTransport, topic: str) -> list[Record]:
    """Every record on `topic`, partition by partition, in offset order."""
    ends = await transport.end_offsets([topic])
    sub = await transport.subscribe(f"reader-{uuid.uuid4().hex}", [topic])
    got: dict[tuple[int, int], Record] = {}
    try:
        deadline = time.monotonic() + 10
        while len(got) < sum(ends.values()):
            assert time.monotonic() < deadline, "could not read the topic back"
            for recs in (await sub.poll(0.05, 10_000)).values():
                for r in recs:
                    if r.offset < ends[r.tp]:
                        got[(r.partition, r.offset)] = r
    finally:
        await sub.close()
    return [got[k] for k in sorted(got)]


async def dead_letters(transport: MemoryTransport) -> list[tuple[Envelope, DeadLettered]]:
    out = []
    for r in await read_topic(transport, DEADLETTER):
        env = decode_envelope(r.value)
        out.append((env, DeadLettered.model_validate(env.payload)))
    return out


async def state_rows(db: asyncpg.Pool | asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch("SELECT event_id, portfolio_id, trade_id FROM recorder_state ORDER BY id")


async def count(db: asyncpg.Pool | asyncpg.Connection, sql: str, *args: object) -> int:
    return await db.fetchval(sql, *args)


async def assert_effects_exactly_once(pool: asyncpg.Pool, transport: MemoryTransport, inputs: list[Envelope]) -> None:
    """One state row, one processed event, one outbox row and one published indicator per input."""
    rows = await state_rows(pool)
    assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in inputs)
    assert await count(pool, "SELECT count(*) FROM processed_events WHERE actor = 'recorder'") == len(inputs)
    async with pool.acquire() as conn:
        outbox = await conn.fetch("SELECT event_id, topic, sent_at FROM outbox WHERE actor = 'recorder'")
    expected_ids = sorted(derived_event_id(e.event_id, "recorder", 0) for e in inputs)
    assert sorted(r["event_id"] for r in outbox) == expected_ids
    assert {r["topic"] for r in outbox} == {RISK_INDICATORS}
    assert all(r["sent_at"] is not None for r in outbox)
    published = [decode_envelope(r.value) for r in await read_topic(transport, RISK_INDICATORS)]
    assert sorted(e.event_id for e in published) == expected_ids
    causes = {e.event_id for e in inputs}
    assert all(e.causation_id in causes and e.producer == "recorder@1" for e in published)


# ------------------------------------------------------------------------------------------------
# Exactly-once effects
# ------------------------------------------------------------------------------------------------


async def test_effects_are_exactly_once_despite_duplicates_and_lost_commits(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    inputs = [booking(f"P{i % 7}", f"T{i}", 1000.0 + i) for i in range(40)]
    await transport.publish_many(PORTFOLIO_TRADES, inputs)

    first = Recorder()
    async with running(first, transport, pool) as r:
        await r.settle()
        # a producer retry publishes the same envelopes again, at new offsets
        await transport.publish_many(PORTFOLIO_TRADES, inputs)
        await r.settle()
    assert r.runner.processed == len(inputs)
    assert r.runner.dead_lettered == 0
    assert sorted(c.trade_id for c in first.calls) == sorted(e.payload["trade_id"] for e in inputs)
    assert transport.delivered["recorder"] == 2 * len(inputs)
    await assert_effects_exactly_once(pool, transport, inputs)

    # the transport's commits are lost: the runtime starts from the offsets PostgreSQL holds
    transport.lose_commits("recorder")
    second = Recorder()
    async with running(second, transport, pool) as r:
        await r.settle()
        await asyncio.wait_for(r.runner.idle.wait(), 5)
    assert transport.delivered["recorder"] == 2 * len(inputs), "records were delivered again"
    assert second.calls == []

    # both are lost: everything is delivered again and processed_events turns it all away
    transport.lose_commits("recorder")
    async with pool.acquire() as conn:
        await conn.execute("UPDATE consumer_offsets SET next_offset = 0 WHERE actor = 'recorder'")
    third = Recorder()
    async with running(third, transport, pool) as r:
        await r.settle()
    assert transport.delivered["recorder"] == 4 * len(inputs)
    assert third.calls == []
    assert r.runner.processed == 0
    await assert_effects_exactly_once(pool, transport, inputs)
    async with pool.acquire() as conn:
        offsets = await conn.fetch(
            "SELECT \"partition\", next_offset FROM consumer_offsets WHERE actor = 'recorder' AND topic = $1",
            PORTFOLIO_TRADES,
        )
    ends = await transport.end_offsets([PORTFOLIO_TRADES])
    assert {r["partition"]: r["next_offset"] for r in offsets} == {tp.partition: n for tp, n in ends.items() if n}


async def test_emitted_ids_are_derived_from_cause_actor_and_index(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    env = booking("P1", "T1")
    await transport.publish(PORTFOLIO_TRADES, env)
    async with running(Recorder(), transport, pool) as r:
        await r.settle()
    [published] = [decode_envelope(rec.value) for rec in await read_topic(transport, RISK_INDICATORS)]
    assert published.event_id == derived_event_id(env.event_id, "recorder", 0)
    assert published.causation_id == env.event_id
    assert published.correlation_id == env.correlation_id
    assert published.key == "P1"


# ------------------------------------------------------------------------------------------------
# Failures: retries, dead letters, rejections, poison records
# ------------------------------------------------------------------------------------------------


async def test_handler_failing_twice_then_succeeding_is_processed_once_with_growing_backoff(
    pool: asyncpg.Pool,
) -> None:
    transport = CountingTransport()
    env = booking("P1", "flaky2-T1")
    await transport.publish(PORTFOLIO_TRADES, env)
    actor = Recorder()
    options = replace(OPTIONS, retries=5, backoff_seconds=0.1, max_backoff_seconds=5.0)
    async with running(actor, transport, pool, options) as r:
        await r.settle()
    calls = actor.calls_of("flaky2-T1")
    assert len(calls) == 3, calls  # two failures, one success: no extra attempt
    gaps = [b.start - a.end for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.1 * 0.9, gaps  # first retry waits the backoff
    assert gaps[1] >= 0.2 * 0.9, gaps  # then twice as long
    assert gaps[1] > gaps[0] * 1.5, gaps
    assert r.runner.processed == 1
    assert r.runner.dead_lettered == 0
    assert await dead_letters(transport) == []
    await assert_effects_exactly_once(pool, transport, [env])


async def test_handler_that_always_fails_is_dead_lettered_and_the_partition_goes_on(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    before = booking("P1", "ok-1")
    bad = booking("P1", "bad-1")
    after = [booking("P1", "ok-2"), booking("P1", "ok-3")]
    inputs = [before, bad, *after]
    metas = await transport.publish_many(PORTFOLIO_TRADES, inputs)  # one partition, read as one batch
    actor = Recorder()
    async with running(actor, transport, pool) as r:
        await r.settle()
        # a failing event alone: tried exactly retries + 1 times
        lone = booking("P2", "bad-2")
        lone_meta = await transport.publish(PORTFOLIO_TRADES, lone)
        await r.settle()
        later = booking("P2", "ok-4")
        await transport.publish(PORTFOLIO_TRADES, later)
        await r.settle()

    attempts = OPTIONS.retries + 1
    # the batch of four failed; each event was then tried on its own, bad-1 retries + 1 times
    assert len([c for c in actor.calls_of("bad-1") if c.batch == 1]) == attempts
    assert len(actor.calls_of("bad-2")) == attempts
    # the partition went on, in order
    assert [r["trade_id"] for r in await state_rows(pool)] == ["ok-1", "ok-2", "ok-3", "ok-4"]
    assert r.runner.dead_lettered == 2

    letters = await dead_letters(transport)
    assert len(letters) == 2
    by_cause = {dl.original_event_id: (env, dl) for env, dl in letters}
    for failed, meta in ((bad, metas[1]), (lone, lone_meta)):
        env, dl = by_cause[str(failed.event_id)]
        trade_id = failed.payload["trade_id"]
        assert dl.reason == f"RuntimeError: boom on {trade_id}"
        assert dl.error_type == "handler_failed"
        assert dl.attempts == attempts
        assert dl.actor == "recorder"
        assert (dl.original_topic, dl.original_partition, dl.original_offset) == (
            PORTFOLIO_TRADES,
            meta.partition,
            meta.offset,
        )
        assert dl.original_key == failed.key
        assert dl.original_type == "portfolio.trade_booked"
        assert base64.b64decode(dl.original_value_base64) == encode(failed).value
        assert env.event_id == derived_event_id(failed.event_id, "recorder/deadletter", 0)
        assert env.causation_id == failed.event_id
        assert env.correlation_id == failed.correlation_id
        assert env.key == PORTFOLIO_TRADES

    # the dead-lettered inputs count as processed (they are not delivered to the handler again)
    assert await count(pool, "SELECT count(*) FROM processed_events WHERE actor = 'recorder'") == 6
    async with pool.acquire() as conn:
        outbox = await conn.fetch("SELECT topic, count(*) AS n FROM outbox GROUP BY topic ORDER BY topic")
    assert {r["topic"]: r["n"] for r in outbox} == {DEADLETTER: 2, RISK_INDICATORS: 4}


async def test_rejected_is_dead_lettered_at_once(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    env = booking("P1", "reject-1")
    await transport.publish(PORTFOLIO_TRADES, env)
    actor = Recorder()
    options = replace(OPTIONS, retries=5, backoff_seconds=1.0)  # a retry would show as a 1 s pause
    async with running(actor, transport, pool, options) as r:
        t0 = time.monotonic()
        await r.settle()
        assert time.monotonic() - t0 < 1.0
        await transport.publish(PORTFOLIO_TRADES, booking("P1", "ok-1"))
        await r.settle()
    assert len(actor.calls_of("reject-1")) == 1
    [(_, dl)] = await dead_letters(transport)
    assert dl.error_type == "rejected"
    assert dl.attempts == 1
    assert dl.reason == "Rejected: trade reject-1 cannot be booked"
    assert dl.original_event_id == str(env.event_id)
    assert [r["trade_id"] for r in await state_rows(pool)] == ["ok-1"]


async def test_invalid_bytes_and_payloads_are_dead_lettered_at_once_naming_the_field(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    garbage = b"\x00\x01 not an event"
    good = booking("P1", "ok-1")
    negative = good.model_copy(update={"event_id": uuid.uuid4(), "payload": {**good.payload, "notional": -5.0}})
    no_key = encode(booking("P1", "x")).value.replace(b'"key":"P1",', b"")
    assert no_key != encode(booking("P1", "x")).value
    g_meta = await transport.publish_raw(PORTFOLIO_TRADES, b"P1", garbage)
    await transport.publish(PORTFOLIO_TRADES, negative)
    await transport.publish_raw(PORTFOLIO_TRADES, b"P1", no_key)
    await transport.publish(PORTFOLIO_TRADES, good)
    actor = Recorder()
    options = replace(OPTIONS, retries=5, backoff_seconds=1.0)
    async with running(actor, transport, pool, options) as r:
        t0 = time.monotonic()
        await r.settle()
        assert time.monotonic() - t0 < 1.0  # nothing was retried
    assert [c.trade_id for c in actor.calls] == ["ok-1"]
    letters = await dead_letters(transport)
    assert len(letters) == 3
    assert all(dl.error_type == "invalid_event" and dl.attempts == 1 for _, dl in letters)
    by_value = {base64.b64decode(dl.original_value_base64): (env, dl) for env, dl in letters}

    env, dl = by_value[garbage]
    assert dl.reason.startswith("value: not valid JSON"), dl.reason
    assert dl.original_event_id is None and dl.original_type is None
    assert dl.original_key == "P1"
    g_record = Record(PORTFOLIO_TRADES, g_meta.partition, g_meta.offset, b"P1", garbage, (), 0)
    assert env.event_id == derived_event_id(record_id(g_record), "recorder/deadletter", 0)

    _, dl = by_value[encode(negative).value]
    assert dl.reason.startswith("payload.notional:") and "greater than 0" in dl.reason, dl.reason
    assert dl.original_event_id == str(negative.event_id)
    assert dl.original_type == "portfolio.trade_booked"

    _, dl = by_value[no_key]
    assert dl.reason.startswith("key:") and "required" in dl.reason.lower(), dl.reason

    assert [r["trade_id"] for r in await state_rows(pool)] == ["ok-1"]
    assert await count(pool, "SELECT count(*) FROM processed_events WHERE actor = 'recorder'") == 4


class DeadLetterReader(Actor):
    """Consumes the dead-letter topic; fails on letters whose reason starts with `poison`."""

    name: ClassVar[str] = "dl-reader"
    topics = (DEADLETTER,)
    accepts = frozenset({DeadLettered.event_type})

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        letter = event.event
        assert isinstance(letter, DeadLettered)
        self.seen.append(letter.reason)
        if letter.reason.startswith("poison"):
            raise RuntimeError(f"cannot read {letter.reason}")


def letter(reason: str) -> Envelope:
    event = DeadLettered(
        actor="someone",
        reason=reason,
        error_type="handler_failed",
        attempts=1,
        original_topic=PORTFOLIO_TRADES,
        original_partition=0,
        original_offset=0,
        original_value_base64="",
    )
    return CATALOG.envelope(event, producer="tests@1")


async def test_failures_on_the_deadletter_topic_are_kept_in_rejected_records(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    garbage = b"{ not json"
    g_meta = await transport.publish_raw(DEADLETTER, b"x", garbage)
    p_meta = await transport.publish(DEADLETTER, letter("poison pill"))
    await transport.publish(DEADLETTER, letter("fine"))
    actor = DeadLetterReader()
    async with running(actor, transport, pool) as r:
        await r.settle()
    assert actor.seen.count("fine") == 1
    assert r.runner.processed == 1
    # nothing was dead-lettered again: the topic holds the three records it was given
    assert sum((await transport.end_offsets([DEADLETTER])).values()) == 3
    assert await count(pool, "SELECT count(*) FROM outbox") == 0
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            'SELECT "partition", "offset", reason, value FROM rejected_records WHERE actor = $1', "dl-reader"
        )
    by_offset = {(r["partition"], r["offset"]): r for r in rows}
    assert set(by_offset) == {(g_meta.partition, g_meta.offset), (p_meta.partition, p_meta.offset)}
    g = by_offset[(g_meta.partition, g_meta.offset)]
    assert g["reason"].startswith("value: not valid JSON") and bytes(g["value"]) == garbage
    p = by_offset[(p_meta.partition, p_meta.offset)]
    assert p["reason"] == "RuntimeError: cannot read poison pill"
    assert await count(pool, "SELECT count(*) FROM processed_events WHERE actor = 'dl-reader'") == 3


# ------------------------------------------------------------------------------------------------
# Ordering, offsets, progress
# ------------------------------------------------------------------------------------------------


async def test_per_key_order_is_kept_while_partitions_run_concurrently(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    keys = keys_on_distinct_partitions(3, "A") + keys_on_distinct_partitions(3, "B")
    per_key = 8
    inputs = [booking(key, f"{key}-{seq}") for seq in range(per_key) for key in keys]
    await transport.publish_many(PORTFOLIO_TRADES, inputs)
    actor = Recorder(delay=0.01)
    async with running(actor, transport, pool) as r:
        await r.settle()
    rows = await state_rows(pool)
    for key in keys:
        expected = [f"{key}-{seq}" for seq in range(per_key)]
        assert [c.trade_id for c in actor.calls if c.portfolio_id == key] == expected
        assert [r["trade_id"] for r in rows if r["portfolio_id"] == key] == expected
    # work on different partitions overlapped in time
    overlapping = any(
        a.partition != b.partition and a.start < b.end and b.start < a.end
        for a, b in itertools.combinations(actor.calls, 2)
    )
    assert overlapping, "partitions were processed one after the other"
    assert len({c.partition for c in actor.calls}) >= 3
    await assert_effects_exactly_once(pool, transport, inputs)


async def test_offsets_stored_in_postgres_win_on_assignment(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    a, b = keys_on_distinct_partitions(2)
    pa, pb = (partition_for(k.encode(), PARTITIONS) for k in (a, b))
    await transport.publish_many(PORTFOLIO_TRADES, [booking(k, f"{k}-{i}") for k in (a, b) for i in range(5)])
    actor = Recorder()
    await ensure_runtime_schema(pool, actor)
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO consumer_offsets (actor, topic, \"partition\", next_offset) VALUES ('recorder', $1, $2, $3)",
            [(PORTFOLIO_TRADES, pa, 3), (PORTFOLIO_TRADES, pb, 2)],
        )
    # the transport's committed offsets are behind those
    sub = await transport.subscribe("recorder", [PORTFOLIO_TRADES])
    await sub.poll(0.01, 0)
    await sub.commit({TopicPartition(PORTFOLIO_TRADES, pa): 1, TopicPartition(PORTFOLIO_TRADES, pb): 1})
    await sub.close()

    async with running(actor, transport, pool) as r:
        await r.settle()
    assert sorted(c.trade_id for c in actor.calls) == sorted([f"{a}-3", f"{a}-4", f"{b}-2", f"{b}-3", f"{b}-4"])
    committed = transport.committed("recorder")
    assert committed[TopicPartition(PORTFOLIO_TRADES, pa)] == 5
    assert committed[TopicPartition(PORTFOLIO_TRADES, pb)] == 5


async def test_wait_settled_reports_lag_and_unsent_rows(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    actor = Recorder()
    consumers = [("recorder", actor.topics)]
    await ensure_runtime_schema(pool, actor)
    await transport.publish_many(PORTFOLIO_TRADES, [booking(f"P{i}", f"T{i}") for i in range(7)])
    p = await progress(pool, transport, consumers)
    assert p.lag == {"recorder": 7}
    assert p.unsent == 0
    assert not p.settled
    with pytest.raises(TimeoutError, match=r"lag \{'recorder': 7\}"):
        await wait_settled(pool, transport, consumers, timeout=0.2, interval=0.05)

    # processed but not yet published: no lag, seven unsent rows
    async with running(actor, transport, pool, relay=False) as r:
        deadline = time.monotonic() + 10
        while (await progress(pool, transport, consumers)).lag["recorder"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert r.runner.processed == 7
    p = await progress(pool, transport, consumers)
    assert p.lag == {"recorder": 0}
    assert p.unsent == 7
    assert not p.settled
    with pytest.raises(TimeoutError, match="unsent outbox rows 7"):
        await wait_settled(pool, transport, consumers, timeout=0.2, interval=0.05)

    assert await OutboxRelay(pool, transport, "recorder", options=OPTIONS).publish_pending() == 7
    p = await wait_settled(pool, transport, consumers, timeout=5, interval=0.02)
    assert p.lag == {"recorder": 0} and p.unsent == 0 and p.settled


# ------------------------------------------------------------------------------------------------
# Shutdown and database outages
# ------------------------------------------------------------------------------------------------


async def test_stop_lets_the_event_in_hand_commit(pool: asyncpg.Pool) -> None:
    transport = CountingTransport()
    inputs = [booking("P1", f"T{i}") for i in range(3)]
    await transport.publish_many(PORTFOLIO_TRADES, inputs)
    actor = Recorder(delay=0.5, max_batch=1)
    await ensure_runtime_schema(pool, actor)
    runner = ActorRunner(actor, transport, pool, OPTIONS)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.wait_for(actor.started.wait(), 10)
    stop.set()  # mid-event: the handler is sleeping
    await asyncio.wait_for(task, 10)
    assert len(actor.calls) == 1
    assert actor.calls[0].end - actor.calls[0].start >= 0.5  # it ran to its end
    assert [r["trade_id"] for r in await state_rows(pool)] == ["T0"]
    assert await count(pool, "SELECT next_offset FROM consumer_offsets WHERE actor = 'recorder'") == 1
    # the relay published what was emitted before returning
    assert await count(pool, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    assert len(await read_topic(transport, RISK_INDICATORS)) == 1
    assert list(transport.committed("recorder").values()) == [1]

    rest = Recorder(max_batch=1)
    async with running(rest, transport, pool) as r:
        await r.settle()
    assert [c.trade_id for c in rest.calls] == ["T1", "T2"]
    await assert_effects_exactly_once(pool, transport, inputs)


async def test_database_connections_killed_mid_run_pause_and_resume(
    pool: asyncpg.Pool, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="risklab")
    transport = CountingTransport()
    inputs = [booking(f"P{i % 12}", f"T{i}") for i in range(90)]
    await transport.publish_many(PORTFOLIO_TRADES, inputs)
    actor = Recorder(delay=0.02, max_batch=3)
    admin = await asyncpg.connect(database_url)  # spared by the kills; the checks read through it
    try:
        kills = 0
        async with running(actor, transport, pool) as r:
            for threshold in (15, 45):
                deadline = time.monotonic() + 20
                while await count(admin, "SELECT count(*) FROM recorder_state") < threshold:
                    assert time.monotonic() < deadline, "the actor did not get going"
                    assert not r.task.done()
                    await asyncio.sleep(0.005)
                kills += await admin.fetchval(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t"
                )
            deadline = time.monotonic() + 30
            while await count(admin, "SELECT count(*) FROM recorder_state") < len(inputs):
                assert time.monotonic() < deadline, "the actor did not resume"
                assert not r.task.done()
                await asyncio.sleep(0.02)
            await r.settle(timeout=30)
            assert not r.task.done()
        assert kills >= 2
        paused = [rec for rec in caplog.records if rec.name == "risklab.runtime" and "retrying" in rec.getMessage()]
        assert paused, "no transient failure was met: the connections were not killed mid-transaction"
        assert await dead_letters(transport) == []
        rows = await state_rows(admin)
        assert len(rows) == len(inputs)
        for key in {e.key for e in inputs}:  # per key still in order
            expected = [e.payload["trade_id"] for e in inputs if e.key == key]
            assert [r["trade_id"] for r in rows if r["portfolio_id"] == key] == expected
        outbox = await admin.fetch("SELECT event_id FROM outbox WHERE actor = 'recorder'")
        assert sorted(r["event_id"] for r in outbox) == sorted(
            derived_event_id(e.event_id, "recorder", 0) for e in inputs
        )
        assert await count(admin, "SELECT count(*) FROM processed_events") == len(inputs)
        assert await count(admin, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    finally:
        await admin.close()
    # the relay may republish a batch whose `sent` mark was lost; consumers deduplicate by id
    published = {decode_envelope(rec.value).event_id for rec in await read_topic(transport, RISK_INDICATORS)}
    assert published == {derived_event_id(e.event_id, "recorder", 0) for e in inputs}
