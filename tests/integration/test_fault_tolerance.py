"""Fault tests on real Kafka and PostgreSQL with actors in their own processes.

A stream of 10,000 portfolio events goes through `risklab run platform` (the portfolio monitor)
and `risklab run projector` (audit trail, early-warning board). In each test something goes wrong
mid-stream: the actor is killed with SIGKILL and restarted, the broker restarts, a poison message
arrives, PostgreSQL is unavailable for a while. Afterwards every input is in the audit trail
exactly once, every expected output exists exactly once with the id derived from its cause, and
the board and the alerts match an expectation computed independently from the inputs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from harness import (
    Book,
    Deployment,
    deployment_env,
    expected_outcome,
    new_namespace,
    publish_in_batches,
    trade_stream,
    wait_for,
)

from bus.catalog import CATALOG
from bus.codec import decode
from bus.database import connect_pool
from bus.envelope import derived_event_id
from bus.runtime.progress import progress
from bus.topics import DEADLETTER, topic_specs
from projections import audit
from risklab.servers import open_transport
from risklab.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STREAM = 10_000
CONSUMERS = (
    ("portfolio-monitor", ("portfolio.trades",)),
    ("audit@g1", ("market.data", "portfolio.trades", "risk.indicators", "alerts", "deadletter")),
    ("early_warning@g1", ("risk.indicators",)),
)


@contextlib.asynccontextmanager
async def deployment(
    servers, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Deployment, object, asyncpg.Pool]]:
    namespace = new_namespace()
    env = deployment_env(servers.kafka_bootstrap, database_url, namespace, tmp_path / "home")
    logs = tmp_path / "logs"
    logs.mkdir()
    dep = Deployment(env, logs)
    transport = open_transport(
        Settings(transport="kafka", kafka_bootstrap=servers.kafka_bootstrap, namespace=namespace, partitions=6),
        client_id="fault-test",
    )
    await transport.start()
    await transport.ensure_topics(topic_specs(6))
    pool = await connect_pool(database_url)
    try:
        dep.start("projector")
        dep.start("platform")
        yield dep, transport, pool
    finally:
        dep.close()
        await pool.close()
        await transport.close()


async def settled(pool: asyncpg.Pool, transport, dep: Deployment, timeout: float = 300) -> None:
    async def check() -> bool:
        dep.check_alive()
        try:
            p = await progress(pool, transport, CONSUMERS)
        except asyncpg.UndefinedTableError:
            return False
        return p.settled

    await wait_for(check, timeout, "the deployment to process the whole log")
    await wait_for(check, 30, "the deployment to stay settled")


async def assert_exactly_once(pool: asyncpg.Pool, book: Book, *, extra_inputs: int = 0) -> dict[str, int]:
    """Every input once in the audit trail, every indicator once with its derived id, the board and
    alert counts as expected. Returns the audit row count per event type."""
    expected = expected_outcome(book)
    inputs = book.inputs()
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT event_id, type FROM proj_audit_g1.audit_events")
        ids = [r["event_id"] for r in rows]
        assert len(ids) == len(set(ids)), "an event appears twice in the audit trail"
        recorded = set(ids)
        missing = [e.event_id for e in inputs if e.event_id not in recorded]
        assert not missing, f"{len(missing)} inputs missing from the audit trail, e.g. {missing[:3]}"
        by_type: dict[str, int] = {}
        for r in rows:
            by_type[r["type"]] = by_type.get(r["type"], 0) + 1
        assert by_type["risk.indicator_observed"] == expected.indicators
        indicator_ids = {r["event_id"] for r in rows if r["type"] == "risk.indicator_observed"}
        assert indicator_ids == {derived_event_id(e.event_id, "portfolio-monitor", 0) for e in inputs}
        assert by_type.get("risk.alert_raised", 0) == expected.raised
        assert by_type.get("risk.alert_cleared", 0) == expected.cleared
        processed = await conn.fetchval("SELECT count(*) FROM processed_events WHERE actor = 'portfolio-monitor'")
        assert processed == len(inputs) + extra_inputs
        board = {
            r["subject"]: (r["value"], r["level"])
            for r in await conn.fetch("SELECT subject, value, level FROM proj_early_warning_g1.early_warning")
        }
        assert board.keys() == expected.final.keys()
        for pid, (gross, lvl) in expected.final.items():
            assert board[pid][0] == pytest.approx(gross), pid
            assert board[pid][1] == lvl, pid
        assert await audit.verify(conn) == []
    return by_type


async def test_actor_killed_mid_stream_and_restarted(servers, database_url, tmp_path):
    book = trade_stream(STREAM)
    async with deployment(servers, database_url, tmp_path) as (dep, transport, pool):
        killed = False

        async def chaos(published: int) -> None:
            nonlocal killed
            if not killed and published >= 3_000:
                # let the monitor get into the stream, then pull the plug in the middle of it
                await wait_for(
                    lambda: _processed(pool, "portfolio-monitor", at_least=1_000), 120, "the monitor to start"
                )
                dep.kill("platform")
                killed = True
                await asyncio.sleep(1.0)  # the stream goes on while the actor is down
                dep.start("platform")

        await publish_in_batches(transport, book.events, on_batch=chaos)
        assert killed
        await settled(pool, transport, dep)
        await assert_exactly_once(pool, book)


async def test_broker_restarted_mid_stream(servers, database_url, tmp_path):
    if not servers.controllable:
        pytest.skip("the broker is external: it cannot be restarted from here")
    book = trade_stream(STREAM)
    async with deployment(servers, database_url, tmp_path) as (dep, transport, pool):
        restarted = False

        async def chaos(published: int) -> None:
            nonlocal restarted
            if not restarted and published >= 4_000:
                await asyncio.to_thread(servers.restart_kafka)
                restarted = True

        await publish_in_batches(transport, book.events, on_batch=chaos)
        assert restarted
        await settled(pool, transport, dep)
        await assert_exactly_once(pool, book)


async def test_poison_messages_go_to_deadletter_and_the_stream_goes_on(servers, database_url, tmp_path):
    book = trade_stream(STREAM)
    garbage = b"\x00\x01 this is not an event"
    wrong = json.dumps(
        {
            "event_id": "5b0c7c3e-0000-4000-8000-000000000001",
            "type": "portfolio.trade_booked",
            "version": 1,
            "key": "P001",
            "correlation_id": "5b0c7c3e-0000-4000-8000-000000000001",
            "producer": "fault-test",
            "occurred_at": "2026-11-02T08:00:00+00:00",
            "payload": {"portfolio_id": "P001", "trade_id": "X"},
        }
    ).encode()
    async with deployment(servers, database_url, tmp_path) as (dep, transport, pool):
        poisoned = False

        async def poison(published: int) -> None:
            nonlocal poisoned
            if not poisoned and published >= 5_000:
                await transport.publish_raw("portfolio.trades", b"P001", garbage)
                await transport.publish_raw("portfolio.trades", b"P001", wrong)
                poisoned = True

        await publish_in_batches(transport, book.events, on_batch=poison)
        await settled(pool, transport, dep)
        # the monitor recorded the two poison records as processed (dead-lettered), nothing else changed
        by_type = await assert_exactly_once(pool, book, extra_inputs=2)
        letters = await _dead_letters(transport)
        mine = [d for d in letters if d["actor"] == "portfolio-monitor"]
        assert len(mine) == 2, letters
        reasons = {base64.b64decode(d["original_value_base64"]): d for d in mine}
        assert reasons[garbage]["error_type"] == "invalid_event"
        assert "JSON" in reasons[garbage]["reason"]
        assert reasons[wrong]["error_type"] == "invalid_event"
        assert "payload.instrument_type" in reasons[wrong]["reason"] and "required" in reasons[wrong]["reason"]
        assert reasons[wrong]["original_event_id"] == "5b0c7c3e-0000-4000-8000-000000000001"
        # the dead letters are on the log, so the audit trail has them too (one per consuming actor)
        assert by_type["bus.dead_lettered"] == len(letters)


async def test_postgres_unavailable_for_a_while(servers, database_url, tmp_path):
    if not servers.controllable:
        pytest.skip("PostgreSQL is external: it cannot be stopped from here")
    book = trade_stream(STREAM)
    async with deployment(servers, database_url, tmp_path) as (dep, transport, pool):
        stopped = False

        async def outage(published: int) -> None:
            nonlocal stopped
            if not stopped and published >= 4_000:
                await asyncio.to_thread(servers.stop_postgres)
                stopped = True
                await asyncio.sleep(5)
                dep.check_alive()  # actors pause, they do not die
                await asyncio.to_thread(servers.start_postgres)

        await publish_in_batches(transport, book.events, on_batch=outage)
        assert stopped
        await settled(pool, transport, dep)
        await assert_exactly_once(pool, book)


async def _processed(pool: asyncpg.Pool, actor: str, *, at_least: int) -> bool:
    try:
        async with pool.acquire() as conn:
            n = await conn.fetchval("SELECT count(*) FROM processed_events WHERE actor = $1", actor)
    except asyncpg.UndefinedTableError:
        return False
    return n >= at_least


async def _dead_letters(transport) -> list[dict]:
    ends = await transport.end_offsets([DEADLETTER])
    total = sum(ends.values())
    sub = await transport.subscribe(f"dl-reader-{new_namespace()}", [DEADLETTER])
    out: list[dict] = []
    try:

        async def read() -> bool:
            for records in (await sub.poll(1.0, 1000)).values():
                out.extend(decode(r.value, CATALOG).envelope.payload for r in records)
            return len(out) >= total

        await wait_for(read, 60, "the dead letters", interval=0)
    finally:
        await sub.close()
    return out
