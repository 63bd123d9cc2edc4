"""Rebuild projections from the log into a new generation, and digest their tables.

The log is the truth and projections are disposable: `rebuild` fills generation N+1 of each
projection (fresh schema, fresh runtime name, so its progress is its own) by running the
projection from the beginning of the log until it has read everything that was on the log when
the rebuild started, then makes N+1 the active generation in one transaction. `digest` gives a
hash per table over what the log determines, so a rebuild can be compared with the live tables.

    report = await rebuild(transport, pool)                  # audit, early warning, structured desk
    report = await rebuild(transport, pool, projections=[EarlyWarningProjection])
    report.digests  # {"audit": {"audit_events": "…", "audit_chain_heads": "…"}, "early_warning": {…}, …}

What the switch means for running processes: live runners of the replaced generation keep writing
to its (retired, kept) schema until they are restarted; restart them with
`await AuditTrailProjection.active(pool)` and they continue from where the rebuild stopped (any
events that arrived meanwhile are folded again in the new generation; alerts they cause have
generation-independent ids, so nothing is announced twice). A process that starts a retired
generation is refused (see `projections.generations`).

The previous generation is kept (retired) by default and the ones before it dropped: keeping it
lets live runners that have not been restarted yet keep working, allows comparing the rebuilt
tables with the old ones (digests, `audit.verify` of the old chains) and switching back by hand.
A generation is never dropped while a runner of it is seen running (its outbox relay holds an
advisory lock); it stays retired and the report says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from bus.database import session_unlock, try_session_lock
from bus.migrations import apply_migrations
from bus.runtime.runner import RUNTIME_MIGRATIONS, ActorRunner, RuntimeOptions
from bus.transport import TopicPartition, Transport
from projections.audit import AuditTrailProjection
from projections.early_warning import EarlyWarningProjection
from projections.generations import (
    PROJECTIONS,
    REGISTRY_MIGRATION,
    SCHEMA_PREFIX,
    Projection,
    quote_identifier,
    schema_name,
)
from projections.structured_desk import StructuredDeskProjection

DEFAULT_PROJECTIONS: tuple[type[Projection], ...] = (
    AuditTrailProjection,
    EarlyWarningProjection,
    StructuredDeskProjection,
)
_SCHEMA = re.compile(rf"^{SCHEMA_PREFIX}(?P<name>[a-z][a-z0-9_]*)_g(?P<generation>[1-9][0-9]*)$")
Progress = Callable[[str, int, int], None]
"""on_progress(projection, records read, records to read)."""


class RebuildError(Exception):
    """A rebuild that could not run or finish (another one is running, a runner failed, timeout)."""


@dataclass(frozen=True)
class ProjectionRebuild:
    """What rebuilding one projection did."""

    projection: str
    previous_generation: int
    generation: int
    schema: str
    records: int
    """Records on the projection's topics when the rebuild started (all of them were read)."""
    events: int
    """Events the projection handled (its accepted types, first deliveries only)."""
    digests: dict[str, str]
    dropped_schemas: tuple[str, ...]
    kept_in_use: tuple[str, ...]
    """Old schemas not dropped because a runner of them was running."""
    discarded_outbox: int
    """Events the rebuild's runtime wrote to the outbox (dead letters of events already dead-lettered
    on the live run), discarded instead of being published twice."""
    seconds: float


@dataclass(frozen=True)
class RebuildReport:
    """The result of `rebuild`: one entry per projection."""

    projections: tuple[ProjectionRebuild, ...] = field(default_factory=tuple)

    @property
    def digests(self) -> dict[str, dict[str, str]]:
        """{projection: {table: digest}} of the new generation."""
        return {p.projection: p.digests for p in self.projections}


def _consumer(projection: str, generation: int) -> str:
    return f"{projection}@g{generation}"


async def _forget_consumer(conn: asyncpg.Connection, consumer: str) -> None:
    """Remove the runtime's bookkeeping of a generation that is gone (progress, dedup ids)."""
    await conn.execute("DELETE FROM processed_events WHERE actor = $1", consumer)
    await conn.execute("DELETE FROM consumer_offsets WHERE actor = $1", consumer)


async def _relay_running(conn: asyncpg.Connection, consumer: str) -> bool:
    """Whether a runner of `consumer` is running: its outbox relay holds this advisory lock."""
    got = await try_session_lock(conn, "outbox:" + consumer)
    if got:
        await session_unlock(conn, "outbox:" + consumer)
    return not got


async def _prepare(conn: asyncpg.Connection, cls: type[Projection]) -> tuple[int, int]:
    """Register the new generation as `building`; returns (previous active, new)."""
    name = cls.name
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "projection-registry")
        await conn.execute(
            """INSERT INTO projection_generations (projection, generation, schema_name, state, activated_at)
               SELECT $1, 1, $2, 'active', now()
               WHERE NOT EXISTS (SELECT 1 FROM projection_generations WHERE projection = $1)
               ON CONFLICT DO NOTHING""",
            name,
            schema_name(name, 1),
        )
        for row in await conn.fetch(
            "SELECT generation, schema_name FROM projection_generations WHERE projection = $1 AND state = 'building'",
            name,
        ):  # left by a rebuild that died: its tables are incomplete
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(row['schema_name'])} CASCADE")
            await _forget_consumer(conn, _consumer(name, row["generation"]))
            await conn.execute(
                "DELETE FROM outbox WHERE actor = $1 AND sent_at IS NULL", _consumer(name, row["generation"])
            )
            await conn.execute(
                "UPDATE projection_generations SET state = 'abandoned' WHERE projection = $1 AND generation = $2",
                name,
                row["generation"],
            )
        previous = await conn.fetchval(
            "SELECT generation FROM projection_generations WHERE projection = $1 AND state = 'active'", name
        )
        new = await conn.fetchval("SELECT max(generation) + 1 FROM projection_generations WHERE projection = $1", name)
        await conn.execute(
            "INSERT INTO projection_generations (projection, generation, schema_name, state) "
            "VALUES ($1, $2, $3, 'building')",
            name,
            new,
            schema_name(name, new),
        )
    return previous, new


async def _abandon(pool: asyncpg.Pool, name: str, generation: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(schema_name(name, generation))} CASCADE")
        await _forget_consumer(conn, _consumer(name, generation))
        await conn.execute("DELETE FROM outbox WHERE actor = $1 AND sent_at IS NULL", _consumer(name, generation))
        await conn.execute(
            "UPDATE projection_generations SET state = 'abandoned' "
            "WHERE projection = $1 AND generation = $2 AND state = 'building'",
            name,
            generation,
        )


async def _progress(conn: asyncpg.Connection, consumer: str, ends: Mapping[TopicPartition, int]) -> int:
    rows = await conn.fetch('SELECT topic, "partition", next_offset FROM consumer_offsets WHERE actor = $1', consumer)
    stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
    return sum(min(stored.get(tp, 0), end) for tp, end in ends.items())


async def rebuild(
    transport: Transport,
    pool: asyncpg.Pool,
    *,
    projections: Sequence[type[Projection]] = DEFAULT_PROJECTIONS,
    options: RuntimeOptions | None = None,
    keep_previous: bool = True,
    timeout_seconds: float | None = None,
    on_progress: Progress | None = None,
) -> RebuildReport:
    """Rebuild `projections` from the log into new generations and switch to them.

    1. Registers generation N+1 of each projection as `building` (cleaning up any generation a
       crashed rebuild left behind) — under a lock per projection, so two rebuilds of the same
       projection cannot run at once.
    2. Takes the end offsets of each projection's topics, then runs each projection's rebuild
       instance (`for_rebuild`: alerts off) with the real runtime, from offset 0, under its own
       runtime name (`<name>@g<N+1>`), without an outbox relay.
    3. When every projection's stored offsets reach those end offsets, stops the runners and in
       one transaction retires generation N, activates N+1, discards what the rebuild's runtime
       put in the outbox (dead letters of events the live run already dead-lettered) and drops
       generations older than N (N too with `keep_previous=False`), with their runtime rows.
    4. Returns the digests of the new tables.

    On failure or timeout the new generations are dropped and marked abandoned; the active ones
    are untouched.
    """
    if not projections:
        return RebuildReport()
    names = [cls.name for cls in projections]
    if len(set(names)) != len(names):
        raise ValueError(f"each projection once, got {names}")
    started = time.monotonic()
    async with pool.acquire() as conn:
        await apply_migrations(conn, [*RUNTIME_MIGRATIONS, REGISTRY_MIGRATION])
    lock_conn: asyncpg.Connection = await pool.acquire()
    locked: list[str] = []
    building: dict[str, int] = {}
    try:
        for name in sorted(names):
            if not await try_session_lock(lock_conn, "projection-rebuild:" + name):
                raise RebuildError(f"a rebuild of projection {name!r} is already running")
            locked.append(name)
        previous: dict[str, int] = {}
        for cls in projections:
            previous[cls.name], building[cls.name] = await _prepare(lock_conn, cls)

        actors = [cls.for_rebuild(building[cls.name]) for cls in projections]
        ends = {a.name: await transport.end_offsets(list(a.topics)) for a in actors}
        totals = {name: sum(e.values()) for name, e in ends.items()}
        stops = {a.name: asyncio.Event() for a in actors}
        runners = {a.name: ActorRunner(a, transport, pool, options, relay=False) for a in actors}
        tasks = {name: asyncio.create_task(runners[name].run(stops[name])) for name in runners}
        try:
            await _wait_caught_up(lock_conn, actors, ends, totals, tasks, started, timeout_seconds, on_progress)
        finally:
            for stop in stops.values():
                stop.set()
            results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        for name, result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException):
                raise RebuildError(f"rebuilding {name!r} failed: {result!r}") from result

        outcome = await _switch(lock_conn, actors, previous, keep_previous)
        building.clear()  # switched: from here on nothing may abandon the new generations
        entries = []
        for actor in actors:
            dropped, kept, discarded = outcome[actor.name]
            entries.append(
                ProjectionRebuild(
                    projection=actor.name,
                    previous_generation=previous[actor.name],
                    generation=actor.generation,
                    schema=actor.schema,
                    records=totals[actor.name],
                    events=runners[actor.name].processed,
                    digests=await digest(lock_conn, actor.schema),
                    dropped_schemas=dropped,
                    kept_in_use=kept,
                    discarded_outbox=discarded,
                    seconds=time.monotonic() - started,
                )
            )
        return RebuildReport(tuple(entries))
    finally:
        for name, generation in building.items():
            with contextlib.suppress(Exception):
                await _abandon(pool, name, generation)
        for name in locked:
            with contextlib.suppress(Exception):
                await session_unlock(lock_conn, "projection-rebuild:" + name)
        await pool.release(lock_conn)


async def _wait_caught_up(
    conn: asyncpg.Connection,
    actors: Sequence[Projection],
    ends: Mapping[str, Mapping[TopicPartition, int]],
    totals: Mapping[str, int],
    tasks: Mapping[str, asyncio.Task[None]],
    started: float,
    timeout_seconds: float | None,
    on_progress: Progress | None,
) -> None:
    pending = {a.name: a.consumer_name for a in actors}
    delay = 0.02
    while True:
        for name, consumer in list(pending.items()):
            done = await _progress(conn, consumer, ends[name])
            if on_progress is not None:
                on_progress(name, done, totals[name])
            if done >= totals[name]:
                del pending[name]
        if not pending:
            return
        for name, task in tasks.items():
            if task.done():
                exc = task.exception() if not task.cancelled() else asyncio.CancelledError()
                raise RebuildError(f"the runner rebuilding {name!r} stopped early: {exc!r}")
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise RebuildError(f"rebuild not caught up after {timeout_seconds:.0f} s: {sorted(pending)} behind")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)


async def _switch(
    conn: asyncpg.Connection, actors: Sequence[Projection], previous: Mapping[str, int], keep_previous: bool
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...], int]]:
    """Activate the new generations and retire/drop the old ones, all in one transaction."""
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...], int]] = {}
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "projection-registry")
        for actor in actors:
            name, new = actor.name, actor.generation
            await conn.execute(
                "UPDATE projection_generations SET state = 'retired', retired_at = now() "
                "WHERE projection = $1 AND state = 'active'",
                name,
            )
            activated = await conn.execute(
                "UPDATE projection_generations SET state = 'active', activated_at = now() "
                "WHERE projection = $1 AND generation = $2 AND state = 'building'",
                name,
                new,
            )
            if activated != "UPDATE 1":
                raise RebuildError(f"generation {new} of {name!r} is no longer being built")
            discarded = await conn.fetchval(
                "WITH d AS (DELETE FROM outbox WHERE actor = $1 AND sent_at IS NULL RETURNING 1) "
                "SELECT count(*) FROM d",
                actor.consumer_name,
            )
            keep_from = previous[name] if keep_previous else new
            dropped: list[str] = []
            kept: list[str] = []
            for row in await conn.fetch(
                "SELECT generation, schema_name FROM projection_generations "
                "WHERE projection = $1 AND state = 'retired' AND generation < $2 ORDER BY generation",
                name,
                keep_from,
            ):
                consumer = _consumer(name, row["generation"])
                if await _relay_running(conn, consumer):
                    kept.append(row["schema_name"])
                    continue
                await conn.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(row['schema_name'])} CASCADE")
                await _forget_consumer(conn, consumer)
                await conn.execute(
                    "UPDATE projection_generations SET state = 'dropped' WHERE projection = $1 AND generation = $2",
                    name,
                    row["generation"],
                )
                dropped.append(row["schema_name"])
            out[name] = (tuple(dropped), tuple(kept), discarded)
    return out


def projection_of(schema: str) -> tuple[type[Projection], int]:
    """The projection class and generation a schema name (`proj_<name>_g<N>`) belongs to."""
    match = _SCHEMA.fullmatch(schema)
    if match is None or match["name"] not in PROJECTIONS:
        raise ValueError(f"{schema!r} is not the schema of a known projection (known: {sorted(PROJECTIONS)})")
    return PROJECTIONS[match["name"]], int(match["generation"])


_PINNED = (("TimeZone", "UTC"), ("extra_float_digits", "1"), ("bytea_output", "hex"))


async def digest(conn: asyncpg.Connection, schema: str) -> dict[str, str]:
    """{table: sha256 hex} over the rows of a projection generation's tables.

    Each table's digest covers only the columns the log determines (the projection's
    `digest_tables`), each row as the JSON array of those columns, in a canonical row order, read
    in one snapshot with the time zone, float and bytea output pinned — so a rebuild from the same
    log gives the same digests as the live tables. Wall-clock columns (`recorded_at`) are left out,
    and so are the audit trail's chain columns (seq, prev_hash, row_hash): they depend on the order
    in which partitions happened to be processed; `audit_events` is digested by event_id, and
    `audit_chain_heads` by correlation with its seq (the number of events of the correlation).

    Inside a caller's transaction the pinned settings are restored afterwards.
    """
    cls, _ = projection_of(schema)
    qschema = quote_identifier(schema)
    out: dict[str, str] = {}

    async def read() -> None:
        for name, value in _PINNED:
            await conn.execute("SELECT set_config($1, $2, true)", name, value)
        for table, spec in sorted(cls.digest_tables.items()):
            h = hashlib.sha256()
            # Only code constants and validated identifiers go into this text (no outside input).
            query = (
                f"SELECT jsonb_build_array({', '.join(spec.columns)})::text "  # noqa: S608
                f"FROM {qschema}.{quote_identifier(table)} ORDER BY {', '.join(spec.order_by)}"
            )
            async for row in conn.cursor(query, prefetch=5000):
                h.update(row[0].encode())
                h.update(b"\n")
            out[table] = h.hexdigest()

    if conn.is_in_transaction():  # the caller's: put its settings back afterwards
        saved = [(name, await conn.fetchval("SELECT current_setting($1)", name)) for name, _ in _PINNED]
        await read()
        for name, value in saved:
            await conn.execute("SELECT set_config($1, $2, true)", name, value)
    else:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await read()
    return out
