"""The outbox relay: publishes what actors emitted, in order, and marks it sent.

One relay per actor holds a PostgreSQL advisory lock so that only one instance publishes an
actor's outbox at a time (order is kept); the others wait to take over. A crash between publish
and marking sent republishes the same events with the same ids, which consumers deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING

import asyncpg

from bus.database import session_unlock, try_session_lock
from bus.errors import DeliveryFailed
from bus.runtime.transient import is_transient
from bus.transport import Transport

if TYPE_CHECKING:
    from bus.runtime.runner import RuntimeOptions

log = logging.getLogger("risklab.relay")

SENT_RETENTION_SECONDS = 3600


class OutboxRelay:
    """Publishes one actor's outbox rows in id order."""

    def __init__(
        self, pool: asyncpg.Pool, transport: Transport, actor: str, *, options: RuntimeOptions, batch_size: int = 2000
    ) -> None:
        self.pool = pool
        self.transport = transport
        self.actor = actor
        self.options = options
        self.batch_size = batch_size
        self.published = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Tell the relay there is something to publish (it also polls on its own)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set, then publish what is left and return."""
        delay = self.options.backoff_seconds
        while True:
            try:
                async with self.pool.acquire() as lock_conn:
                    got = await try_session_lock(lock_conn, "outbox:" + self.actor)
                    if not got:
                        if stop.is_set():
                            return
                        await self._sleep(stop, 1.0)
                        continue
                    try:
                        await self._publish_loop(stop)
                        return
                    finally:
                        with contextlib.suppress(Exception):
                            await session_unlock(lock_conn, "outbox:" + self.actor)
            except Exception as exc:
                if not is_transient(exc) and not _is_transport_outage(exc):
                    raise
                log.warning("relay %s: paused (%s: %s); retrying in %.1fs", self.actor, type(exc).__name__, exc, delay)
                if stop.is_set() and delay >= self.options.max_backoff_seconds:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.max_backoff_seconds)

    async def _publish_loop(self, stop: asyncio.Event) -> None:
        last_purge = time.monotonic()
        while True:
            sent = await self.publish_pending()
            if sent:
                continue
            if stop.is_set():
                return
            if time.monotonic() - last_purge > 60:
                await self._purge()
                last_purge = time.monotonic()
            await self._sleep(stop, 0.25)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        self._wake.clear()
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many were sent."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox WHERE actor = $1 AND sent_at IS NULL "
                "ORDER BY id LIMIT $2",
                self.actor,
                self.batch_size,
            )
        if not rows:
            return 0
        await self.transport.publish_records(
            [
                (r["topic"], r["key"], r["value"], tuple((k, v.encode()) for k, v in json.loads(r["headers"])))
                for r in rows
            ]
        )
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        self.published += len(rows)
        return len(rows)

    async def _purge(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE actor = $1 AND sent_at < now() - make_interval(secs => $2)",
                self.actor,
                float(SENT_RETENTION_SECONDS),
            )


def _is_transport_outage(exc: BaseException) -> bool:
    from aiokafka.errors import KafkaError

    return isinstance(exc, (KafkaError, DeliveryFailed))
