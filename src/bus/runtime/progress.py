"""How far actors are behind the log, and waiting until a system has nothing left in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from bus.transport import TopicPartition, Transport


@dataclass(frozen=True)
class Progress:
    """Records an actor has not yet processed, and emitted events not yet published."""

    lag: dict[str, int]
    unsent: int

    @property
    def settled(self) -> bool:
        return self.unsent == 0 and not any(self.lag.values())


async def progress(
    pool: asyncpg.Pool, transport: Transport, consumers: Sequence[tuple[str, Sequence[str]]]
) -> Progress:
    """Lag of each (consumer name, topics) against the end of the log, and the unsent outbox rows."""
    topics = sorted({t for _, ts in consumers for t in ts})
    ends = await transport.end_offsets(topics)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT actor, topic, "partition", next_offset FROM consumer_offsets WHERE actor = ANY($1::text[])
               UNION ALL
               SELECT NULL, NULL, NULL, count(*) FROM outbox WHERE sent_at IS NULL""",
            [name for name, _ in consumers],
        )
    # one round trip for both questions: the row without an actor is the count of unsent rows
    unsent = next(r["next_offset"] for r in rows if r["actor"] is None)
    rows = [r for r in rows if r["actor"] is not None]
    done = {(r["actor"], TopicPartition(r["topic"], r["partition"])): r["next_offset"] for r in rows}
    lag = {
        name: sum(max(0, end - done.get((name, tp), 0)) for tp, end in ends.items() if tp.topic in set(ts))
        for name, ts in consumers
    }
    return Progress(lag, int(unsent))


async def wait_settled(
    pool: asyncpg.Pool,
    transport: Transport,
    consumers: Sequence[tuple[str, Sequence[str]]],
    *,
    timeout: float = 120.0,
    interval: float = 0.1,
) -> Progress:
    """Wait until every consumer has processed the whole log and every outbox row is published.

    Checked twice in a row, since publishing an outbox row can extend another consumer's log.
    Raises `TimeoutError` with the remaining lag.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    streak = 0
    while True:
        p = await progress(pool, transport, consumers)
        streak = streak + 1 if p.settled else 0
        if streak >= 2:
            return p
        if loop.time() > deadline:
            raise TimeoutError(f"not settled after {timeout:.0f}s: lag {p.lag}, unsent outbox rows {p.unsent}")
        await asyncio.sleep(interval)
