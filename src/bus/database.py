"""Connecting to PostgreSQL: a pool that waits for the server instead of failing at start-up, and
session advisory locks that the pool knows to release.

asyncpg resets every connection it takes back into a pool with a round trip (advisory locks,
cursors, LISTEN registrations, session settings), which costs as much as a small statement on
every transaction. risklab keeps no session state on pooled connections (settings are `SET LOCAL`,
cursors live in transactions, nothing LISTENs) except session advisory locks, and those are taken
through `try_session_lock`, which marks the connection; the pool then unlocks all only on marked
connections. An open transaction is still rolled back on release, as asyncpg always does.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from bus.runtime.transient import is_transient

log = logging.getLogger("risklab.database")


class PooledConnection(asyncpg.Connection):
    """A connection that remembers whether it took a session advisory lock."""

    __slots__ = ("_session_locks",)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._session_locks = False

    def note_session_lock(self) -> None:
        """Record that this session holds an advisory lock: the pool will release it."""
        self._session_locks = True

    async def release_session_locks(self) -> None:
        """Unlock every session advisory lock if one was taken (the pool's reset)."""
        if self._session_locks:
            await self.execute("SELECT pg_advisory_unlock_all()")
            self._session_locks = False


async def try_session_lock(conn: asyncpg.Connection, name: str) -> bool:
    """Take the session advisory lock `name` if it is free; the connection's pool releases it
    when the connection goes back, should the holder not have unlocked it."""
    got = bool(await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", name))
    if got:
        note = getattr(conn, "note_session_lock", None)  # a pool proxy forwards it to its connection
        if note is not None:
            note()
    return got


async def session_unlock(conn: asyncpg.Connection, name: str) -> None:
    """Release the session advisory lock `name`."""
    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", name)


async def connect_pool(url: str, *, min_size: int = 2, max_size: int = 12, wait_seconds: float = 60.0) -> asyncpg.Pool:
    """A connection pool to `url`, retrying while the server is not reachable for `wait_seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = 0.2
    while True:
        try:
            return await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                command_timeout=60,
                connection_class=PooledConnection,
                reset=PooledConnection.release_session_locks,
            )
        except Exception as exc:
            if not is_transient(exc) or loop.time() + delay > deadline:
                raise
            log.warning("database not reachable yet (%s); retrying", type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
