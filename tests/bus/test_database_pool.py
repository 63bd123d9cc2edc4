"""Pooled connections go back to the pool without a reset round trip, yet never with a lock."""

from __future__ import annotations

import pytest

from bus.database import connect_pool, try_session_lock

pytestmark = pytest.mark.integration


async def test_a_session_lock_left_behind_is_released_with_the_connection(database_url: str) -> None:
    pool = await connect_pool(database_url, min_size=1, max_size=1)
    other = await connect_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            assert await try_session_lock(conn, "pool-test")
            backend = await conn.fetchval("SELECT pg_backend_pid()")
        async with other.acquire() as conn:
            assert await try_session_lock(conn, "pool-test")  # free again: the pool unlocked it
            await conn.execute("SELECT pg_advisory_unlock_all()")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == backend  # the same session, reused
            assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    finally:
        await pool.close()
        await other.close()


async def test_an_open_transaction_is_rolled_back_on_release(database_url: str) -> None:
    pool = await connect_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS pool_reset_probe (x int)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO pool_reset_probe VALUES (1)")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM pool_reset_probe") == 0
            assert not conn.is_in_transaction()
            await conn.execute("DROP TABLE pool_reset_probe")
    finally:
        await pool.close()
