"""The early-warning board on a real PostgreSQL with the memory transport and the real runtime."""

from __future__ import annotations

from datetime import timedelta

import pytest
from projection_helpers import T0, memory_transport, observation, pool_for, read_topic, rewind, run_until_caught_up

from bus.topics import ALERTS, RISK_INDICATORS
from projections.early_warning import CRITICAL_RATIO, HIGH_RATIO, EarlyWarningProjection, board, level_of

pytestmark = pytest.mark.integration


def at(minutes: int):
    return T0 + timedelta(minutes=minutes)


def test_levels_and_thresholds() -> None:
    assert (HIGH_RATIO, CRITICAL_RATIO) == (0.7, 0.9)
    assert [level_of(r) for r in (0.0, 0.69, 0.7, 0.89, 0.9, 1.5)] == [
        "ok",
        "ok",
        "high",
        "high",
        "critical",
        "critical",
    ]


async def test_transitions_raise_and_clear_exactly_once(database_url: str) -> None:
    transport = memory_transport()
    values = [50.0, 75.0, 95.0, 80.0, 10.0, 20.0]  # ok, high, critical, high, ok, ok
    envelopes = [observation("pf-1", v, at=at(i)) for i, v in enumerate(values)]
    for env in envelopes:
        await transport.publish(RISK_INDICATORS, env)
    await transport.publish(RISK_INDICATORS, envelopes[2])  # a duplicate delivery of the critical one

    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, EarlyWarningProjection())
        alerts = await read_topic(transport, ALERTS)
        assert [(a.type, a.payload["level"]) for a in alerts] == [
            ("risk.alert_raised", "high"),
            ("risk.alert_raised", "critical"),
            ("risk.alert_cleared", "high"),
            ("risk.alert_cleared", "ok"),
        ]
        assert [a.payload.get("previous_level") for a in alerts[:2]] == ["ok", "high"]
        assert [a.payload["threshold"] for a in alerts[:2]] == [HIGH_RATIO, CRITICAL_RATIO]
        assert [a.payload["cleared_level"] for a in alerts[2:]] == ["critical", "high"]
        assert [a.causation_id for a in alerts] == [e.event_id for e in envelopes[1:5]]
        assert [a.payload["indicator_event_id"] for a in alerts] == [str(e.event_id) for e in envelopes[1:5]]
        assert all(a.correlation_id == e.correlation_id for a, e in zip(alerts, envelopes[1:5], strict=True))
        assert all(a.key == "pf-1" for a in alerts)

        [row] = await board_of(pool)
        assert (row.level, row.value, row.ratio, row.trend) == ("ok", 20.0, 0.2, "up")
        assert row.since == at(4)  # the level has been ok since the observation that cleared it
        assert row.updated_at == at(5) and row.last_event_id == envelopes[5].event_id

        # redelivery of everything (a restarted runner that lost its commits) changes nothing
        await rewind(pool, EarlyWarningProjection())
        [runner] = await run_until_caught_up(pool, transport, EarlyWarningProjection())
        assert runner.processed == 0
        assert len(await read_topic(transport, ALERTS)) == 4
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox WHERE actor = 'early_warning@g1'") == 4
        assert await board_of(pool) == [row]


async def board_of(pool):
    async with pool.acquire() as conn:
        return await board(conn)


async def test_since_tracks_the_observation_that_moved_the_level(database_url: str) -> None:
    transport = memory_transport()
    async with pool_for(database_url) as pool:
        steps = [
            (72.0, 0, "high", "flat"),
            (75.0, 1, "high", "up"),
            (91.0, 2, "critical", "up"),
            (91.0, 3, "critical", "flat"),
        ]
        expected_since = [0, 0, 2, 2]
        for (value, minute, level, trend), since in zip(steps, expected_since, strict=True):
            await transport.publish(RISK_INDICATORS, observation("pf-2", value, at=at(minute)))
            await run_until_caught_up(pool, transport, EarlyWarningProjection())
            [row] = await board_of(pool)
            assert (row.level, row.trend, row.since, row.updated_at) == (level, trend, at(since), at(minute))
        alerts = await read_topic(transport, ALERTS)
        # the first observation is already high: raised from ok
        assert [(a.payload["previous_level"], a.payload["level"]) for a in alerts] == [
            ("ok", "high"),
            ("high", "critical"),
        ]


async def test_out_of_order_observation_is_ignored(database_url: str) -> None:
    transport = memory_transport()
    newer = observation("pf-3", 95.0, at=at(10))
    older = observation("pf-3", 10.0, at=at(5))
    await transport.publish(RISK_INDICATORS, newer)
    await transport.publish(RISK_INDICATORS, older)
    async with pool_for(database_url) as pool:
        [runner] = await run_until_caught_up(pool, transport, EarlyWarningProjection())
        assert runner.processed == 2
        [row] = await board_of(pool)
        assert (row.level, row.value, row.last_event_id, row.updated_at) == ("critical", 95.0, newer.event_id, at(10))
        assert [a.payload["level"] for a in await read_topic(transport, ALERTS)] == ["critical"]


async def test_board_orders_by_severity_then_ratio(database_url: str) -> None:
    transport = memory_transport()
    for subject, value, metric in [
        ("a", 10.0, "m"),
        ("b", 95.0, "m"),
        ("c", 75.0, "m"),
        ("d", 99.0, "m"),
        ("e", 80.0, "m"),
        ("f", 50.0, "m"),
        ("b", 71.0, "other"),
    ]:
        await transport.publish(RISK_INDICATORS, observation(subject, value, metric=metric))
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, EarlyWarningProjection(emit_alerts=False))
        rows = await board_of(pool)
        assert [(r.subject, r.metric, r.level) for r in rows] == [
            ("d", "m", "critical"),
            ("b", "m", "critical"),
            ("e", "m", "high"),
            ("c", "m", "high"),
            ("b", "other", "high"),
            ("f", "m", "ok"),
            ("a", "m", "ok"),
        ]
        assert await read_topic(transport, ALERTS) == []  # alerts off: nothing emitted
