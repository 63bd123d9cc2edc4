"""The portfolio monitor with the real actor runtime: memory transport, real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

import bus.events  # noqa: F401
from agents.platform.portfolio_monitor import PortfolioMonitor, indicator_metric
from bus.catalog import CATALOG, Event
from bus.codec import decode_envelope
from bus.database import connect_pool
from bus.envelope import Envelope, derived_event_id
from bus.events import (
    DeadLettered,
    IndicatorObserved,
    PortfolioLimitSet,
    TradeAmended,
    TradeBooked,
    TradeTerminated,
)
from bus.memory import MemoryTransport
from bus.runtime.progress import wait_settled
from bus.runtime.runner import ActorRunner, RuntimeOptions, ensure_runtime_schema
from bus.topics import DEADLETTER, PORTFOLIO_TRADES, RISK_INDICATORS, topic_specs

pytestmark = pytest.mark.integration

# retries with a long backoff: a rejection that were retried would show as a pause
OPTIONS = RuntimeOptions(retries=5, backoff_seconds=2.0, poll_timeout_seconds=0.05)
T0 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
MONITOR = "portfolio-monitor"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await connect_pool(database_url, min_size=1, max_size=8)
    try:
        yield p
    finally:
        await p.close()


class Stream:
    """Builds the monitor's input, each event a second after the previous one."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def add(self, event: Event) -> Envelope:
        at = T0 + dt.timedelta(seconds=len(self.envelopes))
        env = CATALOG.envelope(event, producer="tests@1", occurred_at=at)
        self.envelopes.append(env)
        return env

    def limit(self, pid: str, capacity: float, currency: str = "USD") -> Envelope:
        return self.add(
            PortfolioLimitSet(portfolio_id=pid, metric="gross_notional", capacity=capacity, currency=currency)
        )

    def book(self, pid: str, tid: str, notional: float, currency: str = "USD", direction: str = "long") -> Envelope:
        return self.add(
            TradeBooked(
                portfolio_id=pid,
                trade_id=tid,
                instrument_type="equity_swap",
                underlying="SPX",
                direction=direction,
                notional=notional,
                currency=currency,
                trade_date=T0.date(),
            )
        )

    def amend(self, pid: str, tid: str, *, notional: float | None = None, direction: str | None = None) -> Envelope:
        return self.add(
            TradeAmended(portfolio_id=pid, trade_id=tid, notional=notional, direction=direction, reason="correction")
        )

    def terminate(self, pid: str, tid: str) -> Envelope:
        return self.add(TradeTerminated(portfolio_id=pid, trade_id=tid, termination_date=T0.date(), reason="unwind"))


@asynccontextmanager
async def monitor_running(pool: asyncpg.Pool, transport: MemoryTransport) -> AsyncIterator[ActorRunner]:
    actor = PortfolioMonitor()
    await ensure_runtime_schema(pool, actor)
    runner = ActorRunner(actor, transport, pool, OPTIONS)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield runner
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def run_monitor(pool: asyncpg.Pool, envelopes: list[Envelope]) -> tuple[MemoryTransport, ActorRunner]:
    """Publish the envelopes, run the monitor until it has processed and published everything."""
    transport = MemoryTransport(topic_specs())
    for env in envelopes:
        await transport.publish(PORTFOLIO_TRADES, env)
    async with monitor_running(pool, transport) as runner:
        await wait_settled(pool, transport, [(MONITOR, (PORTFOLIO_TRADES,))], timeout=20, interval=0.02)
    return transport, runner


async def read_topic(transport: MemoryTransport, topic: str) -> list[Envelope]:
    """Every envelope on `topic`, partition by partition, in offset order."""
    ends = await transport.end_offsets([topic])
    sub = await transport.subscribe(f"reader-{uuid.uuid4().hex}", [topic])
    got: dict[tuple[int, int], Envelope] = {}
    try:
        deadline = time.monotonic() + 10
        while len(got) < sum(ends.values()):
            assert time.monotonic() < deadline
            for recs in (await sub.poll(0.05, 10_000)).values():
                for r in recs:
                    got[(r.partition, r.offset)] = decode_envelope(r.value)
    finally:
        await sub.close()
    return [got[k] for k in sorted(got)]


async def indicators(transport: MemoryTransport) -> list[tuple[Envelope, IndicatorObserved]]:
    return [(e, IndicatorObserved.model_validate(e.payload)) for e in await read_topic(transport, RISK_INDICATORS)]


async def dead_letters(transport: MemoryTransport) -> list[DeadLettered]:
    return [DeadLettered.model_validate(e.payload) for e in await read_topic(transport, DEADLETTER)]


async def trades(pool: asyncpg.Pool) -> dict[tuple[str, str], tuple[str, float, str, bool]]:
    rows = await pool.fetch("SELECT * FROM portfolio_monitor_trades")
    return {(r["portfolio_id"], r["trade_id"]): (r["currency"], r["notional"], r["direction"], r["live"]) for r in rows}


async def test_gross_notional_per_currency_against_the_limit(pool: asyncpg.Pool) -> None:
    s = Stream()
    expected: list[tuple[Envelope, str, float, float]] = []  # cause, currency, gross, capacity

    def expect(env: Envelope, currency: str, gross: float, capacity: float) -> None:
        expected.append((env, currency, gross, capacity))

    expect(s.limit("P1", 100e6), "USD", 0.0, 100e6)
    expect(s.book("P1", "T1", 10e6), "USD", 10e6, 100e6)
    expect(s.book("P1", "T2", 5e6, direction="short"), "USD", 15e6, 100e6)  # gross: sides add up
    s.book("P1", "T3", 7e6, currency="EUR")  # no EUR limit yet: nothing to measure against
    expect(s.limit("P1", 50e6, "EUR"), "EUR", 7e6, 50e6)  # only EUR trades count
    expect(s.amend("P1", "T1", notional=20e6), "USD", 25e6, 100e6)
    expect(s.amend("P1", "T2", direction="long"), "USD", 25e6, 100e6)  # notional kept
    expect(s.book("P1", "T4", 3e6, currency="EUR"), "EUR", 10e6, 50e6)
    expect(s.terminate("P1", "T2"), "USD", 20e6, 100e6)
    expect(s.limit("P1", 30e6), "USD", 20e6, 30e6)  # a new limit replaces the old one
    expect(s.terminate("P1", "T3"), "EUR", 3e6, 50e6)
    # P2 has no limit: its trades are tracked but not reported (same trade id as in P1 is fine)
    s.book("P2", "T1", 1e6)
    s.amend("P2", "T1", notional=2e6)
    s.terminate("P2", "T1")
    s.book("P2", "T5", 4e6, currency="GBP")
    expect(s.limit("P2", 8e6, "GBP"), "GBP", 4e6, 8e6)
    expect(s.limit("P3", 1e6, "JPY"), "JPY", 0.0, 1e6)  # a limit alone: zero usage

    transport, runner = await run_monitor(pool, s.envelopes)

    assert runner.processed == len(s.envelopes)
    assert runner.dead_lettered == 0
    assert await dead_letters(transport) == []
    got = await indicators(transport)
    assert len(got) == len(expected)
    by_subject: dict[str, list[tuple[Envelope, IndicatorObserved]]] = {}
    for env, ind in got:
        by_subject.setdefault(ind.subject, []).append((env, ind))
    want: dict[str, list[tuple[Envelope, str, float, float]]] = {}
    for cause, currency, gross, capacity in expected:
        want.setdefault(cause.key, []).append((cause, currency, gross, capacity))
    assert by_subject.keys() == want.keys()
    for subject, rows in want.items():
        seen = by_subject[subject]
        assert len(seen) == len(rows), subject
        for (env, ind), (cause, currency, gross, capacity) in zip(seen, rows, strict=True):
            assert ind.metric == indicator_metric(currency) == f"gross_notional_{currency.lower()}"
            assert ind.unit == currency
            assert ind.value == pytest.approx(gross)
            assert ind.capacity == pytest.approx(capacity)
            assert ind.observed_at == cause.occurred_at
            assert ind.window is None
            assert env.event_id == derived_event_id(cause.event_id, MONITOR, 0)
            assert env.causation_id == cause.event_id
            assert env.key == subject
            assert env.producer == "portfolio-monitor@1"

    assert await trades(pool) == {
        ("P1", "T1"): ("USD", 20e6, "long", True),
        ("P1", "T2"): ("USD", 5e6, "long", False),
        ("P1", "T3"): ("EUR", 7e6, "long", False),
        ("P1", "T4"): ("EUR", 3e6, "long", True),
        ("P2", "T1"): ("USD", 2e6, "long", False),
        ("P2", "T5"): ("GBP", 4e6, "long", True),
    }
    limits = await pool.fetch("SELECT portfolio_id, currency, capacity FROM portfolio_monitor_limits ORDER BY 1, 2")
    assert [tuple(r) for r in limits] == [
        ("P1", "EUR", 50e6),
        ("P1", "USD", 30e6),
        ("P2", "GBP", 8e6),
        ("P3", "JPY", 1e6),
    ]


async def test_contradicting_trade_events_are_rejected_and_change_nothing(pool: asyncpg.Pool) -> None:
    s = Stream()
    s.limit("P1", 100e6)
    booked = s.book("P1", "T1", 10e6)
    rejected = {
        "again": s.book("P1", "T1", 99e6),  # a second booking of one trade id
        "amend-unknown": s.amend("P1", "T9", notional=1e6),
        "terminate-unknown": s.terminate("P1", "T8"),
        "other-portfolio": s.terminate("P2", "T1"),  # T1 lives in P1, not P2
    }
    s.terminate("P1", "T1")
    rejected |= {
        "terminate-terminated": s.terminate("P1", "T1"),
        "amend-terminated": s.amend("P1", "T1", notional=5e6),
        "rebook-terminated": s.book("P1", "T1", 1e6),
    }
    inputs = [*s.envelopes]
    envelopes = [*inputs[:2], booked, *inputs[2:]]  # the booking redelivered as is: a duplicate, not a contradiction

    started = time.monotonic()
    transport, runner = await run_monitor(pool, envelopes)
    assert time.monotonic() - started < OPTIONS.backoff_seconds  # no rejection waited for a retry

    letters = await dead_letters(transport)
    assert runner.dead_lettered == len(rejected) == len(letters)
    by_cause = {dl.original_event_id: dl for dl in letters}
    assert set(by_cause) == {str(e.event_id) for e in rejected.values()}
    for name, env in rejected.items():
        dl = by_cause[str(env.event_id)]
        trade_id = env.payload["trade_id"]
        pid = env.payload["portfolio_id"]
        assert dl.error_type == "rejected", name
        assert dl.attempts == 1, name
        assert dl.actor == MONITOR
        assert dl.original_type == env.type
        assert dl.reason.startswith("Rejected: "), dl.reason
        assert f"trade_id {trade_id!r}" in dl.reason and f"portfolio {pid!r}" in dl.reason, dl.reason
    assert "already booked" in by_cause[str(rejected["again"].event_id)].reason
    assert "is not a live trade" in by_cause[str(rejected["amend-terminated"].event_id)].reason

    # the state is that of the accepted events alone: the first booking, then its termination
    assert await trades(pool) == {("P1", "T1"): ("USD", 10e6, "long", False)}
    got = await indicators(transport)
    assert [ind.value for _, ind in got] == [0.0, 10e6, 0.0]
    assert [env.causation_id for env, _ in got] == [inputs[0].event_id, booked.event_id, inputs[6].event_id]
    assert runner.processed == len(inputs) - len(rejected)
    n = await pool.fetchval("SELECT count(*) FROM processed_events WHERE actor = $1", MONITOR)
    assert n == len(inputs)


async def test_batch_and_event_by_event_paths_agree(database_url: str) -> None:
    """The set-based batch path and the one-statement-per-event path give the same indicators,
    state and dead letters, also when a contradiction in the middle forces the fallback."""
    s = Stream()
    for p in ("A", "B", "C"):
        s.limit(p, 100e6)
        s.limit(p, 80e6, "EUR")
    for i in range(60):
        p = "ABC"[i % 3]
        s.book(p, f"{p}{i}", 1e6 * (1 + i % 7), "EUR" if i % 4 == 0 else "USD")
        if i % 5 == 4:
            s.amend(p, f"{p}{i}", notional=2.5e6 + i)
        if i % 9 == 8:
            s.terminate(p, f"{p}{i - 3}")
    s.book("A", "A0", 5e6)  # duplicate booking: rejected in both paths
    s.terminate("B", "B-unknown")  # unknown trade: rejected in both paths
    s.book("A", "A-late", 3e6)

    outcomes = []
    for max_batch in (None, 1):
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()
        p = await connect_pool(database_url, min_size=1, max_size=8)
        try:
            PortfolioMonitor.max_batch = max_batch
            transport, _ = await run_monitor(p, s.envelopes)
            outcomes.append(
                (
                    [(e.event_id, i.model_dump()) for e, i in await indicators(transport)],
                    sorted((d.original_event_id, d.error_type, d.reason) for d in await dead_letters(transport)),
                    await trades(p),
                )
            )
        finally:
            PortfolioMonitor.max_batch = None
            await p.close()
    batched, one_by_one = outcomes
    assert len(batched[0]) == len(s.envelopes) - 2  # every accepted event reports its portfolio's usage
    assert len(batched[1]) == 2
    assert batched == one_by_one
