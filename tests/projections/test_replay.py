"""Replay: rebuilding projections into a new generation gives the same tables and switches to them."""

from __future__ import annotations

import random
from datetime import timedelta

import asyncpg
import pytest
from projection_helpers import (
    T0,
    ExposureWatcher,
    memory_transport,
    observation,
    pool_for,
    read_topic,
    run_until_caught_up,
    trade,
)

from bus.memory import MemoryTransport
from bus.topics import ALERTS, ALL_TOPICS, PORTFOLIO_TRADES, RISK_INDICATORS
from projections.audit import AuditTrailProjection, show, verify
from projections.early_warning import EarlyWarningProjection, board
from projections.generations import GenerationError, active_generation, generations
from projections.replay import digest, rebuild
from projections.structured_desk import StructuredDeskProjection

pytestmark = pytest.mark.integration


async def workload(transport: MemoryTransport, seed: int = 7, n: int = 300) -> None:
    """Trades (turned into indicators by the watcher) and direct observations over many subjects,
    with shared correlations across partitions, out-of-order and duplicate deliveries."""
    rng = random.Random(seed)
    published = []
    for i in range(n):
        subject = f"pf-{rng.randrange(12)}"
        if rng.random() < 0.3:
            env = trade(subject, rng.uniform(1e5, 1.2e6))
            await transport.publish(PORTFOLIO_TRADES, env)
        else:
            minute = i + (-5 if rng.random() < 0.1 else 0)
            env = observation(subject, rng.uniform(0, 110), at=T0 + timedelta(minutes=minute))
            await transport.publish(RISK_INDICATORS, env)
        published.append(env)
        if rng.random() < 0.05:
            dup = rng.choice(published)
            await transport.publish(PORTFOLIO_TRADES if dup.type.startswith("portfolio") else RISK_INDICATORS, dup)


def live_actors() -> tuple[ExposureWatcher, EarlyWarningProjection, AuditTrailProjection, StructuredDeskProjection]:
    return ExposureWatcher(), EarlyWarningProjection(), AuditTrailProjection(), StructuredDeskProjection()


async def test_rebuild_gives_identical_digests_and_switches(database_url: str) -> None:
    transport = memory_transport()
    await workload(transport)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, *live_actors())
        alerts_before = await transport.end_offsets([ALERTS])
        log_before = await transport.end_offsets(list(ALL_TOPICS))
        async with pool.acquire() as conn:
            live = {
                "audit": await digest(conn, "proj_audit_g1"),
                "early_warning": await digest(conn, "proj_early_warning_g1"),
                "structured_desk": await digest(conn, "proj_structured_desk_g1"),
            }
            board_before = await board(conn)
            assert len(board_before) > 5 and await verify(conn) == []
            audit_rows = await conn.fetchval('SELECT count(*) FROM "proj_audit_g1".audit_events')

        progress: list[tuple[str, int, int]] = []
        report = await rebuild(transport, pool, on_progress=lambda *p: progress.append(p))

        assert report.digests == live
        assert {p.projection: (p.previous_generation, p.generation) for p in report.projections} == {
            "audit": (1, 2),
            "early_warning": (1, 2),
            "structured_desk": (1, 2),
        }
        entry = {p.projection: p for p in report.projections}
        assert entry["audit"].events == audit_rows
        assert entry["audit"].records == sum(log_before.values())
        assert progress[-1][1] == progress[-1][2] > 0
        # alerts off: the rebuild emitted nothing
        assert await transport.end_offsets(list(ALL_TOPICS)) == log_before
        assert await transport.end_offsets([ALERTS]) == alerts_before
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox WHERE actor LIKE '%@g2'") == 0
            assert await active_generation(conn, "audit") == 2
            assert await active_generation(conn, "early_warning") == 2
            assert await board(conn) == board_before  # queries now read generation 2
            assert await verify(conn) == []
            assert await verify(conn, schema="proj_audit_g1") == []  # the previous generation is kept
            states = {(g.projection, g.generation): g.state for g in await generations(conn)}
            assert states == {
                ("audit", 1): "retired",
                ("audit", 2): "active",
                ("early_warning", 1): "retired",
                ("early_warning", 2): "active",
                ("structured_desk", 1): "retired",
                ("structured_desk", 2): "active",
            }

        # a process still configured for generation 1 is refused; the active one continues
        with pytest.raises(GenerationError, match="retired"):
            await run_until_caught_up(pool, transport, AuditTrailProjection(), timeout=5)
        audit2 = await AuditTrailProjection.active(pool)
        early2 = await EarlyWarningProjection.active(pool)
        assert (audit2.consumer_name, early2.consumer_name) == ("audit@g2", "early_warning@g2")
        extra = observation("pf-new", 99.0, at=T0 + timedelta(days=1))
        await transport.publish(RISK_INDICATORS, extra)
        [w, e2, a2] = await run_until_caught_up(pool, transport, ExposureWatcher(), early2, audit2)
        assert (w.processed, e2.processed, a2.processed) == (0, 1, 2)  # the observation and its alert only
        alerts = await read_topic(transport, ALERTS)
        assert any(a.causation_id == extra.event_id for a in alerts)
        async with pool.acquire() as conn:
            assert [r.seq for r in await show(conn, extra.correlation_id)] == [1, 2]

        # a second rebuild drops generation 1 and keeps 2 (the one just replaced)
        report = await rebuild(transport, pool)
        assert {p.projection: p.dropped_schemas for p in report.projections} == {
            "audit": ("proj_audit_g1",),
            "early_warning": ("proj_early_warning_g1",),
            "structured_desk": ("proj_structured_desk_g1",),
        }
        async with pool.acquire() as conn:
            assert report.digests["audit"] == await digest(conn, "proj_audit_g2")
            assert report.digests["early_warning"] == await digest(conn, "proj_early_warning_g2")
            schemas = {r[0] for r in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'proj_%'")}
            assert schemas == {
                "proj_audit_g2",
                "proj_audit_g3",
                "proj_early_warning_g2",
                "proj_early_warning_g3",
                "proj_structured_desk_g2",
                "proj_structured_desk_g3",
            }
            assert await conn.fetchval("SELECT count(*) FROM processed_events WHERE actor LIKE '%@g1'") == 0


async def test_rebuild_of_the_board_alone_emits_nothing(database_url: str) -> None:
    transport = memory_transport()
    await workload(transport, seed=3, n=120)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, *live_actors())
        alerts_before = await read_topic(transport, ALERTS)
        assert alerts_before
        async with pool.acquire() as conn:
            live = await digest(conn, "proj_early_warning_g1")
        report = await rebuild(transport, pool, projections=[EarlyWarningProjection])
        assert report.digests == {"early_warning": live}
        assert await read_topic(transport, ALERTS) == alerts_before
        async with pool.acquire() as conn:
            assert await active_generation(conn, "early_warning") == 2
            assert await active_generation(conn, "audit") == 1  # untouched
            assert await conn.fetchval("SELECT count(*) FROM outbox WHERE actor = 'early_warning@g2'") == 0


async def test_alert_ids_do_not_depend_on_the_generation(database_url: str) -> None:
    """A new generation that folds events an older one already announced emits the same alert ids,
    which the outbox deduplicates: nothing is announced twice."""
    transport = memory_transport()
    await workload(transport, seed=5, n=120)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, ExposureWatcher(), EarlyWarningProjection())
        alerts_before = await read_topic(transport, ALERTS)
        await rebuild(transport, pool, projections=[EarlyWarningProjection])
        async with pool.acquire() as conn:  # make generation 2 start over, as if it lagged behind
            await conn.execute('DELETE FROM "proj_early_warning_g2".early_warning')
            await conn.execute("DELETE FROM processed_events WHERE actor = 'early_warning@g2'")
            await conn.execute("UPDATE consumer_offsets SET next_offset = 0 WHERE actor = 'early_warning@g2'")
        [runner] = await run_until_caught_up(pool, transport, await EarlyWarningProjection.active(pool))
        assert runner.processed > 0
        assert await read_topic(transport, ALERTS) == alerts_before


async def test_a_failed_rebuild_leaves_the_active_generation_alone(database_url: str) -> None:
    transport = memory_transport()
    await workload(transport, seed=9, n=40)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, EarlyWarningProjection())
        async with pool.acquire() as conn:
            live = await digest(conn, "proj_early_warning_g1")
            # sabotage: generation 2's table cannot be created (a clashing object in its schema)
            await conn.execute('CREATE SCHEMA "proj_early_warning_g2"')
            await conn.execute('CREATE TABLE "proj_early_warning_g2".early_warning (x int)')
        with pytest.raises(Exception, match="early_warning"):
            await rebuild(transport, pool, projections=[EarlyWarningProjection], timeout_seconds=20)
        async with pool.acquire() as conn:
            assert await active_generation(conn, "early_warning") == 1
            assert await digest(conn, "proj_early_warning_g1") == live
            states = {g.generation: g.state for g in await generations(conn, "early_warning")}
            assert states == {1: "active", 2: "abandoned"}
            assert await conn.fetchval("SELECT to_regnamespace('proj_early_warning_g2')") is None
        report = await rebuild(transport, pool, projections=[EarlyWarningProjection])  # the next one works
        assert report.projections[0].generation == 3 and report.digests == {"early_warning": live}


async def test_digest_refuses_unknown_schemas(database_url: str) -> None:
    async with pool_for(database_url) as pool, pool.acquire() as conn:
        for bad in ("public", 'proj_audit_g1"; DROP TABLE x; --', "proj_nothing_g1"):
            with pytest.raises(ValueError):
                await digest(conn, bad)
        with pytest.raises(asyncpg.UndefinedTableError):
            await digest(conn, "proj_audit_g1")
