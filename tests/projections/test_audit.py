"""The audit trail on a real PostgreSQL with the memory transport and the real actor runtime."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from projection_helpers import (
    ExposureWatcher,
    memory_transport,
    observation,
    pool_for,
    rewind,
    run_until_caught_up,
    trade,
)

from bus.codec import DecodedEvent
from bus.runtime.actor import HandlerContext
from bus.runtime.runner import RuntimeOptions, ensure_runtime_schema
from bus.topics import DESK_MARGIN, MARKET_DATA, PORTFOLIO_TRADES, RISK_INDICATORS
from bus.transport import Record
from projections.audit import (
    GENESIS_HASH,
    REWRITE_SETTING,
    AuditTrailProjection,
    canonical_json,
    lineage,
    show,
    verify,
)
from projections.early_warning import EarlyWarningProjection

pytestmark = pytest.mark.integration


async def count(conn: asyncpg.Connection) -> int:
    return await conn.fetchval('SELECT count(*) FROM "proj_audit_g1".audit_events')


async def rewrite(conn: asyncpg.Connection, sql: str, *args: object) -> str:
    """Run a statement with the append-only guard switched off for its transaction."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL {REWRITE_SETTING} = 'on'")
        return await conn.execute(sql, *args)


async def chain_of(transport, correlation: uuid.UUID, n: int) -> list[uuid.UUID]:
    """Publish `n` events of one correlation over several subjects (so several partitions)."""
    ids = []
    for i in range(n):
        env = observation(f"desk-{i}", 10.0 + i, correlation_id=correlation)
        await transport.publish(RISK_INDICATORS, env)
        ids.append(env.event_id)
    return ids


async def test_records_every_envelope_once_despite_redelivery(database_url: str) -> None:
    transport = memory_transport()
    envelopes = [observation(f"pf-{i}", float(i)) for i in range(40)] + [trade(f"pf-{i}", 1000.0) for i in range(20)]
    for env in envelopes:
        topic = RISK_INDICATORS if env.type == "risk.indicator_observed" else PORTFOLIO_TRADES
        await transport.publish(topic, env)
    again = envelopes[3]
    await transport.publish(RISK_INDICATORS, again)  # the same envelope published twice
    # an event type this process does not validate is still recorded (the audit does not judge payloads)
    odd = again.model_copy(update={"event_id": uuid.uuid4(), "type": "desk.some_future_event", "payload": {"x": -0.0}})
    await transport.publish(DESK_MARGIN, odd)

    async with pool_for(database_url) as pool:
        [runner] = await run_until_caught_up(pool, transport, AuditTrailProjection())
        assert runner.processed == 61
        assert runner.dead_lettered == 0
        async with pool.acquire() as conn:
            assert await count(conn) == 61
        # redelivery: everything is delivered again to a restarted runner, plus one more duplicate
        await rewind(pool, AuditTrailProjection())
        await transport.publish(RISK_INDICATORS, again)
        [runner] = await run_until_caught_up(pool, transport, AuditTrailProjection())
        assert runner.processed == 0
        async with pool.acquire() as conn:
            assert await count(conn) == 61
            assert await verify(conn) == []
            row = await conn.fetchrow(
                'SELECT topic, "partition", "offset", payload FROM "proj_audit_g1".audit_events WHERE event_id = $1',
                odd.event_id,
            )
            assert row["topic"] == DESK_MARGIN and json.loads(row["payload"]) == {"x": 0.0}


async def test_chain_per_correlation_in_order(database_url: str) -> None:
    transport = memory_transport()
    correlation = uuid.uuid4()
    ids = await chain_of(transport, correlation, 12)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, AuditTrailProjection())
        async with pool.acquire() as conn:
            rows = await show(conn, correlation)
            assert sorted(r.event_id for r in rows) == sorted(ids)
            assert [r.seq for r in rows] == list(range(1, 13))
            assert rows[0].prev_hash == GENESIS_HASH.hex()
            assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(rows))
            head = await conn.fetchrow(
                'SELECT seq, row_hash FROM "proj_audit_g1".audit_chain_heads WHERE correlation_id = $1', correlation
            )
            assert head["seq"] == 12 and bytes(head["row_hash"]).hex() == rows[-1].row_hash
            assert await verify(conn) == []
            assert await show(conn, uuid.uuid4()) == []


async def test_append_only_in_the_database(database_url: str) -> None:
    transport = memory_transport()
    await chain_of(transport, uuid.uuid4(), 2)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, AuditTrailProjection())
        async with pool.acquire() as conn:
            for sql in (
                "UPDATE \"proj_audit_g1\".audit_events SET producer = 'mallory'",
                'DELETE FROM "proj_audit_g1".audit_events',
                'TRUNCATE "proj_audit_g1".audit_events',
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                    await conn.execute(sql)
            assert await count(conn) == 2


async def test_verify_names_a_changed_row(database_url: str) -> None:
    transport = memory_transport()
    correlation = uuid.uuid4()
    ids = await chain_of(transport, correlation, 5)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, AuditTrailProjection())
        async with pool.acquire() as conn:
            target = (await show(conn, correlation))[2]
            assert target.event_id in ids
            status = await rewrite(
                conn,
                """UPDATE "proj_audit_g1".audit_events SET payload = jsonb_set(payload, '{value}', '999')
                   WHERE event_id = $1""",
                target.event_id,
            )
            assert status == "UPDATE 1"
            problems = await verify(conn)
            assert [(p.kind, p.event_id, p.correlation_id, p.seq) for p in problems] == [
                ("changed", target.event_id, correlation, 3)
            ]
            assert str(target.event_id) in str(problems[0]) and str(correlation) in str(problems[0])


async def test_verify_names_a_deleted_middle_row(database_url: str) -> None:
    transport = memory_transport()
    correlation = uuid.uuid4()
    await chain_of(transport, correlation, 5)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, AuditTrailProjection())
        async with pool.acquire() as conn:
            rows = await show(conn, correlation)
            await rewrite(conn, 'DELETE FROM "proj_audit_g1".audit_events WHERE event_id = $1', rows[1].event_id)
            problems = await verify(conn)
            assert [(p.kind, p.seq) for p in problems] == [("missing", 3)]
            message = str(problems[0])
            assert "no seq 2" in message
            assert str(rows[0].event_id) in message and str(rows[2].event_id) in message


async def test_verify_names_a_deleted_tail(database_url: str) -> None:
    transport = memory_transport()
    correlation, other = uuid.uuid4(), uuid.uuid4()
    await chain_of(transport, correlation, 4)
    await chain_of(transport, other, 1)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, AuditTrailProjection())
        async with pool.acquire() as conn:
            rows = await show(conn, correlation)
            await rewrite(
                conn,
                'DELETE FROM "proj_audit_g1".audit_events WHERE correlation_id = $1 AND seq >= 3',
                correlation,
            )
            await rewrite(conn, 'DELETE FROM "proj_audit_g1".audit_events WHERE correlation_id = $1', other)
            problems = sorted(await verify(conn), key=lambda p: p.correlation_id != correlation)
            assert [(p.kind, p.correlation_id) for p in problems] == [
                ("tail_missing", correlation),
                ("tail_missing", other),
            ]
            assert "head says seq 4" in str(problems[0]) and "stop at seq 2" in str(problems[0])
            assert str(rows[1].event_id) in str(problems[0]) and "seq 3..4 deleted" in str(problems[0])
            assert "stop before seq 1" in str(problems[1])


async def test_lineage_walks_back_to_the_users_input(database_url: str) -> None:
    transport = memory_transport()
    booked = trade("pf-lineage", 950_000.0)
    await transport.publish(PORTFOLIO_TRADES, booked)
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, ExposureWatcher(), EarlyWarningProjection(), AuditTrailProjection())
        async with pool.acquire() as conn:
            alert_id = await conn.fetchval(
                """SELECT event_id FROM "proj_audit_g1".audit_events
                   WHERE type = 'risk.alert_raised' AND correlation_id = $1""",
                booked.correlation_id,
            )
            steps = await lineage(conn, alert_id)
            assert [s.type for s in steps] == [
                "risk.alert_raised",
                "risk.indicator_observed",
                "portfolio.trade_booked",
            ]
            assert [s.producer for s in steps] == ["early_warning@1", "exposure_watcher@1", "user:risk-desk"]
            assert [s.topic for s in steps] == ["alerts", RISK_INDICATORS, PORTFOLIO_TRADES]
            assert steps[-1].event_id == booked.event_id and steps[-1].causation_id is None
            assert [s.depth for s in steps] == [0, 1, 2]
            assert await lineage(conn, uuid.uuid4()) == []
            assert [r.seq for r in await show(conn, booked.correlation_id)] == [1, 2, 3]
            assert await verify(conn) == []


def test_canonical_json_survives_jsonb() -> None:
    assert canonical_json({"b": 1e16, "a": -0.0, "c": [1.5e300, 2, 0.1]}) == (
        '{"a":0.0,"b":10000000000000000,"c":[' + str(int(1.5e300)) + ",2,0.1]}"
    )
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    with pytest.raises(ValueError, match="NUL"):
        canonical_json({"x": "a\x00b"})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON.filter(lambda v: "\\u0000" not in json.dumps(v)))
def test_canonical_json_is_sorted_compact_json(value: object) -> None:
    """The encoder built once in the module writes what `json.dumps` with sorted keys, no spaces
    and non-ASCII kept would (after the jsonb number rewrites, which the test applies too)."""
    text = canonical_json(value)
    assert json.loads(text) == json.loads(canonical_json(json.loads(text)))
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if "e+" not in expected and "-0.0" not in expected:
        assert text == expected


async def test_payloads_round_trip_through_jsonb(database_url: str) -> None:
    """Numbers jsonb rewrites (exponents, -0.0) still verify after they are read back."""
    transport = memory_transport()
    base = observation("pf-x", 1.0)
    payloads = [
        {"big": 1e16, "neg_zero": -0.0, "small": 1e-7, "huge": 1.5e300, "int": 2**70, "s": 'é\\u0000 "q"'},
        {"nested": [{"z": 1, "a": [0.30000000000000004, -1e-300]}], "t": True, "n": None},
    ]
    for p in payloads:
        await transport.publish(MARKET_DATA, base.model_copy(update={"event_id": uuid.uuid4(), "payload": p}))
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, AuditTrailProjection())
        async with pool.acquire() as conn:
            assert await count(conn) == 2
            assert await verify(conn) == []


async def test_concurrent_partitions_and_members_keep_chains_intact(database_url: str) -> None:
    """Correlations spread over topics and partitions, consumed by two members of the group at
    once: every chain is still gapless and verifies."""
    transport = memory_transport()
    correlations = [uuid.uuid4() for _ in range(40)]
    expected: dict[uuid.UUID, int] = dict.fromkeys(correlations, 0)
    for i in range(1500):
        correlation = correlations[i % len(correlations)]
        env = observation(f"s-{i % 97}", float(i % 100), correlation_id=correlation)
        await transport.publish([RISK_INDICATORS, MARKET_DATA, DESK_MARGIN][i % 3], env)
        expected[correlation] += 1
    async with pool_for(database_url) as pool:
        small_rounds = RuntimeOptions(poll_timeout_seconds=0.05, max_records=100)  # both members get work
        runners = await run_until_caught_up(
            pool, transport, AuditTrailProjection(), AuditTrailProjection(), options=small_rounds
        )
        assert sum(r.processed for r in runners) == 1500
        assert all(r.processed > 0 for r in runners)  # both members took part
        async with pool.acquire() as conn:
            assert await verify(conn) == []
            for correlation in correlations[:5]:
                assert [r.seq for r in await show(conn, correlation)] == list(range(1, expected[correlation] + 1))


async def test_two_partitions_starting_one_chain_at_once(database_url: str) -> None:
    """Two transactions append to the same new correlation from different partitions at once: the
    second waits for the first's head, then continues its chain (seq 2 and 3 after 1), not a
    second chain from the genesis hash."""
    projection = AuditTrailProjection()
    correlation = uuid.uuid4()
    first = observation("s-1", 1.0, correlation_id=correlation)
    later = [observation("s-2", 2.0, correlation_id=correlation), observation("s-3", 3.0, correlation_id=correlation)]

    def batch(conn: asyncpg.Connection, partition: int, envelopes: list) -> list:
        return [
            (
                DecodedEvent(env, projection.catalog.parse(env)),
                HandlerContext(
                    conn, env, projection.name, projection.producer, projection.catalog, None,
                    Record(RISK_INDICATORS, partition, offset, env.key.encode(), b"", (), 0),
                ),
            )
            for offset, env in enumerate(envelopes)
        ]  # fmt: skip

    async with pool_for(database_url) as pool:
        await ensure_runtime_schema(pool, projection)
        async with pool.acquire() as c1, pool.acquire() as c2:
            t1 = c1.transaction()
            await t1.start()
            await projection.handle_batch(batch(c1, 0, [first]))
            async with c2.transaction():
                second = asyncio.create_task(projection.handle_batch(batch(c2, 1, later)))
                await asyncio.sleep(0.3)
                assert not second.done()  # waiting for the first transaction's new head
                await t1.commit()
                await second
        async with pool.acquire() as conn:
            rows = await show(conn, correlation)
            assert [(r.seq, r.partition) for r in rows] == [(1, 0), (2, 1), (3, 1)]
            assert rows[1].prev_hash == rows[0].row_hash
            assert await conn.fetchval(
                'SELECT seq FROM "proj_audit_g1".audit_chain_heads WHERE correlation_id = $1', correlation
            ) == 3
            assert await verify(conn) == []
