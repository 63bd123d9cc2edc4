"""Connecting to PostgreSQL: a pool that waits for the server instead of failing at start-up."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from bus.runtime.transient import is_transient

log = logging.getLogger("risklab.database")


async def connect_pool(url: str, *, min_size: int = 2, max_size: int = 12, wait_seconds: float = 60.0) -> asyncpg.Pool:
    """A connection pool to `url`, retrying while the server is not reachable for `wait_seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = 0.2
    while True:
        try:
            return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, command_timeout=60)
        except Exception as exc:
            if not is_transient(exc) or loop.time() + delay > deadline:
                raise
            log.warning("database not reachable yet (%s); retrying", type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
