"""Graceful shutdown of an actor process on real Kafka and PostgreSQL.

`risklab run platform` (the portfolio monitor) gets SIGTERM while portfolio events stream in: it
finishes the batch in hand, publishes what that batch emitted and exits 0 within seconds. A new
process then completes the stream. Every input is processed exactly once and every indicator is
emitted once: one outbox row, one record on Kafka, with the id derived from its cause.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from harness import Deployment, deployment_env, expected_outcome, new_namespace, trade_stream, wait_for

from bus.catalog import CATALOG
from bus.codec import decode
from bus.database import connect_pool
from bus.envelope import derived_event_id
from bus.runtime.progress import progress
from bus.topics import PORTFOLIO_TRADES, RISK_INDICATORS, topic_specs
from risklab.servers import open_transport
from risklab.settings import Settings

pytestmark = pytest.mark.integration

STREAM = 3_000
MONITOR = "portfolio-monitor"


async def read_all(transport, topic: str) -> list:
    """Every envelope on `topic` (read with a fresh consumer group)."""
    ends = await transport.end_offsets([topic])
    total = sum(ends.values())
    sub = await transport.subscribe(f"reader-{new_namespace()}", [topic])
    out: list = []
    try:

        async def read() -> bool:
            for records in (await sub.poll(1.0, 5_000)).values():
                out.extend(decode(r.value, CATALOG).envelope for r in records)
            return len(out) >= total

        await wait_for(read, 60, f"the records of {topic}", interval=0)
    finally:
        await sub.close()
    return out


async def test_sigterm_mid_stream_exits_cleanly_and_a_restart_completes_the_stream(
    servers, database_url: str, tmp_path
) -> None:
    book = trade_stream(STREAM, portfolios=30)
    inputs = book.inputs()
    expected = expected_outcome(book)
    namespace = new_namespace()
    logs = tmp_path / "logs"
    logs.mkdir()
    dep = Deployment(deployment_env(servers.kafka_bootstrap, database_url, namespace, tmp_path / "home"), logs)
    transport = open_transport(
        Settings(transport="kafka", kafka_bootstrap=servers.kafka_bootstrap, namespace=namespace, partitions=6),
        client_id="shutdown-test",
    )
    await transport.start()
    await transport.ensure_topics(topic_specs(6))
    pool = await connect_pool(database_url)

    async def processed() -> int:
        try:
            return await pool.fetchval("SELECT count(*) FROM processed_events WHERE actor = $1", MONITOR)
        except Exception:  # the process has not created its tables yet
            return 0

    published = 0

    async def stream() -> None:
        """A first thousand at once, then the rest trickling in for a few seconds."""
        nonlocal published
        await transport.publish_many(PORTFOLIO_TRADES, inputs[:1000])
        published = 1000
        while published < len(inputs):
            chunk = inputs[published : published + 50]
            await transport.publish_many(PORTFOLIO_TRADES, chunk)
            published += len(chunk)
            await asyncio.sleep(0.1)

    try:
        dep.start("platform")
        publisher = asyncio.create_task(stream())

        async def well_under_way() -> bool:
            dep.check_alive()
            return await processed() >= 600

        await wait_for(well_under_way, 60, "the monitor to get into the stream", interval=0.05)
        published_at_sigterm = published
        started = time.monotonic()
        code = await asyncio.to_thread(dep.stop, "platform", 20)
        took = time.monotonic() - started
        assert code == 0, dep.log_tail("platform")
        assert took < 10, f"SIGTERM took {took:.1f}s"
        assert "group platform stopped" in dep.log_tail("platform")
        at_stop = await processed()
        assert 600 <= at_stop < len(inputs), "the process was not stopped mid-stream"
        assert published_at_sigterm < len(inputs), "the stream was over before SIGTERM"
        # what the last batch emitted was published before the process exited
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        outbox_at_stop = await pool.fetchval("SELECT count(*) FROM outbox WHERE actor = $1", MONITOR)
        assert outbox_at_stop == at_stop  # every processed input emitted its indicator, nothing more

        await publisher
        await asyncio.sleep(0.5)
        assert await processed() == at_stop  # nobody is consuming while the process is down

        dep.restarts["platform"] += 1
        dep.start("platform")

        async def caught_up() -> bool:
            dep.check_alive()
            if await processed() < len(inputs):
                return False
            return (await progress(pool, transport, [(MONITOR, (PORTFOLIO_TRADES,))])).settled

        await wait_for(caught_up, 60, "the restarted monitor to complete the stream", interval=0.1)

        assert await processed() == len(inputs)
        ids = {
            r["event_id"] for r in await pool.fetch("SELECT event_id FROM processed_events WHERE actor = $1", MONITOR)
        }
        assert ids == {e.event_id for e in inputs}
        outbox = await pool.fetch("SELECT event_id, topic FROM outbox WHERE actor = $1", MONITOR)
        expected_ids = {derived_event_id(e.event_id, MONITOR, 0) for e in inputs}
        assert len(outbox) == expected.indicators == len(inputs)
        assert {r["event_id"] for r in outbox} == expected_ids
        assert {r["topic"] for r in outbox} == {RISK_INDICATORS}  # nothing dead-lettered

        on_kafka = await read_all(transport, RISK_INDICATORS)
        assert len(on_kafka) == expected.indicators  # each indicator once: no republished batch
        assert {e.event_id for e in on_kafka} == expected_ids

        live = await pool.fetch(
            "SELECT portfolio_id, sum(notional) AS gross FROM portfolio_monitor_trades WHERE live GROUP BY 1"
        )
        gross = {r["portfolio_id"]: r["gross"] for r in live}
        assert {pid: gross.get(pid, 0.0) for pid in expected.final} == pytest.approx(
            {pid: g for pid, (g, _) in expected.final.items()}
        )

        assert dep.stop("platform", 20) == 0
    finally:
        dep.close()
        await pool.close()
        await transport.close()
