"""Serving one actor group as a process against Kafka and PostgreSQL, and checking health."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from bus.database import connect_pool
from bus.runtime.runner import ensure_runtime_schema
from bus.topics import topic_specs
from risklab.groups import actors_of, check_group
from risklab.process import run_until_stopped, runtime_options
from risklab.servers import database_url, open_transport
from risklab.settings import Settings

log = logging.getLogger("risklab.serve")


async def serve_group(settings: Settings, group: str) -> None:
    """Run `group`'s actors until SIGTERM/SIGINT; topics are created from code when missing."""
    check_group(group)
    transport = open_transport(settings, client_id=f"risklab-{group}")
    await transport.start()
    pool = await connect_pool(database_url(settings), max_size=24)
    try:
        await ensure_runtime_schema(pool)
        actors = await actors_of(group, settings, pool)
        await transport.ensure_topics(topic_specs(settings.partitions, settings.max_message_bytes))
        log.info("group %s running: %s", group, ", ".join(a.consumer_name for a in actors))
        await run_until_stopped(actors, transport, pool, runtime_options(settings))
        log.info("group %s stopped", group)
    finally:
        await pool.close()
        await transport.close()


async def check_health(settings: Settings, group: str | None = None) -> list[str]:
    """Problems reaching PostgreSQL and Kafka (empty when healthy)."""
    problems: list[str] = []
    try:
        conn = await asyncio.wait_for(asyncpg.connect(database_url(settings)), 10)
        try:
            await conn.fetchval("SELECT 1")
            if group is not None:
                for actor in actors_of(group, settings):
                    known = await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE component = 'runtime'")
                    if not known:
                        problems.append(f"{actor.consumer_name}: runtime tables not created yet")
                        break
        finally:
            await conn.close()
    except Exception as exc:
        problems.append(f"postgresql: {type(exc).__name__}: {exc}")
    transport = open_transport(settings, client_id="risklab-health")
    try:
        await asyncio.wait_for(transport.start(), 15)
        await asyncio.wait_for(transport.end_offsets(["alerts"]), 10)
    except Exception as exc:
        problems.append(f"kafka: {type(exc).__name__}: {exc}")
    finally:
        await transport.close()
    return problems
