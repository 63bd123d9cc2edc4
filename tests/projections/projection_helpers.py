"""Helpers for the projection tests: a pool on the test database, runners driven until the log is
fully consumed, sample events, and reading a topic back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import asyncpg

import bus.events  # noqa: F401
from bus.catalog import CATALOG
from bus.codec import DecodedEvent, decode_envelope
from bus.database import connect_pool
from bus.envelope import Envelope
from bus.events import IndicatorObserved, TradeBooked
from bus.memory import MemoryTransport
from bus.runtime.actor import Actor, HandlerContext
from bus.runtime.runner import ActorRunner, RuntimeOptions
from bus.topics import PORTFOLIO_TRADES, topic_specs

OPTIONS = RuntimeOptions(poll_timeout_seconds=0.05, backoff_seconds=0.05, max_backoff_seconds=0.2)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def memory_transport() -> MemoryTransport:
    return MemoryTransport(topic_specs())


@asynccontextmanager
async def pool_for(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database_url, min_size=1, max_size=16)
    try:
        yield pool
    finally:
        await pool.close()


async def caught_up(pool: asyncpg.Pool, transport: MemoryTransport, actors: Sequence[Actor]) -> bool:
    """Every actor has stored offsets at the end of its topics and nothing left unsent."""
    async with pool.acquire() as conn:
        if await conn.fetchval("SELECT to_regclass('consumer_offsets') IS NULL"):
            return False
        for actor in actors:
            ends = await transport.end_offsets(list(actor.topics))
            rows = await conn.fetch(
                'SELECT topic, "partition", next_offset FROM consumer_offsets WHERE actor = $1', actor.consumer_name
            )
            stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            if any(stored.get((tp.topic, tp.partition), 0) < end for tp, end in ends.items()):
                return False
        unsent = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND actor = ANY($1::text[])",
            [a.consumer_name for a in actors],
        )
        return unsent == 0


async def run_until_caught_up(
    pool: asyncpg.Pool,
    transport: MemoryTransport,
    *actors: Actor,
    timeout: float = 60.0,
    options: RuntimeOptions = OPTIONS,
) -> list[ActorRunner]:
    """Run the actors together until all of them have consumed everything (including what they
    emit to one another), then stop them; returns the runners."""
    stops = [asyncio.Event() for _ in actors]
    runners = [ActorRunner(a, transport, pool, options) for a in actors]
    tasks = [asyncio.create_task(r.run(s)) for r, s in zip(runners, stops, strict=True)]
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        stable = 0
        while stable < 3:
            for t in tasks:
                if t.done():
                    t.result()
                    raise AssertionError("a runner stopped early")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("actors did not catch up in time")
            stable = stable + 1 if await caught_up(pool, transport, actors) else 0
            await asyncio.sleep(0.05)
    finally:
        for s in stops:
            s.set()
        await asyncio.gather(*tasks)
    return runners


async def rewind(pool: asyncpg.Pool, actor: Actor) -> None:
    """Make the runtime deliver everything again: its stored offsets go back to 0 (the runtime
    seeks there on assignment), as after a crash that lost the transport's commits."""
    async with pool.acquire() as conn:
        await conn.execute("UPDATE consumer_offsets SET next_offset = 0 WHERE actor = $1", actor.consumer_name)


async def read_topic(transport: MemoryTransport, topic: str) -> list[Envelope]:
    """Every envelope on `topic`, partition by partition, in offset order."""
    ends = await transport.end_offsets([topic])
    sub = await transport.subscribe(f"reader-{uuid.uuid4().hex}", [topic])
    got: dict[tuple[int, int], Envelope] = {}
    try:
        while len(got) < sum(ends.values()):
            for recs in (await sub.poll(0.1, 10_000)).values():
                for r in recs:
                    if r.offset < ends[r.tp]:
                        got[(r.partition, r.offset)] = decode_envelope(r.value)
    finally:
        await sub.close()
    return [got[k] for k in sorted(got)]


def observation(
    subject: str,
    value: float,
    *,
    capacity: float = 100.0,
    at: datetime = T0,
    metric: str = "gross_notional",
    correlation_id: uuid.UUID | None = None,
) -> Envelope:
    event = IndicatorObserved(
        subject=subject, metric=metric, value=value, capacity=capacity, unit="USD", observed_at=at
    )
    return CATALOG.envelope(event, producer="tests@1", correlation_id=correlation_id, occurred_at=at)


def trade(portfolio: str, notional: float, *, trade_id: str | None = None) -> Envelope:
    event = TradeBooked(
        portfolio_id=portfolio,
        trade_id=trade_id or uuid.uuid4().hex[:10],
        instrument_type="equity",
        underlying="ACME",
        direction="long",
        notional=notional,
        currency="USD",
        trade_date=T0.date(),
    )
    return CATALOG.envelope(event, producer="user:risk-desk", occurred_at=T0)


class ExposureWatcher(Actor):
    """A tiny agent: turns each booked trade into an indicator of its notional against a 1M line."""

    name: ClassVar[str] = "exposure_watcher"
    topics = (PORTFOLIO_TRADES,)
    accepts = frozenset({TradeBooked.event_type})

    async def handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        booked = event.event
        assert isinstance(booked, TradeBooked)
        ctx.emit(
            IndicatorObserved(
                subject=booked.portfolio_id,
                metric="trade_notional",
                value=booked.notional,
                capacity=1_000_000.0,
                unit="USD",
                observed_at=event.envelope.occurred_at + timedelta(seconds=1),
            )
        )
