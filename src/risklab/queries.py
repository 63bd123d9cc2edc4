"""Read side for the CLI and the API: the projections' queries as JSON-ready rows."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from projections import audit, early_warning, structured_desk
from projections.generations import active_schema, quote_identifier
from risklab.servers import database_url
from risklab.settings import Settings

HIGH = early_warning.HIGH_RATIO
CRITICAL = early_warning.CRITICAL_RATIO


def _jsonable(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dataclasses.asdict(row).items():
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[key] = value
    return out


@asynccontextmanager
async def connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the database the settings name (or the local stack's)."""
    conn = await asyncpg.connect(database_url(settings))
    try:
        yield conn
    finally:
        await conn.close()


async def _audit_table_schema(conn: asyncpg.Connection) -> str:
    """The quoted schema of the audit trail's active generation (built by code, never user text)."""
    return quote_identifier(await active_schema(conn, audit.PROJECTION))


async def audit_show(conn: asyncpg.Connection, correlation_id: uuid.UUID) -> list[dict[str, Any]]:
    """The events of one correlation in chain order."""
    return [_jsonable(r) for r in await audit.show(conn, correlation_id)]


async def audit_lineage(conn: asyncpg.Connection, event_id: uuid.UUID) -> list[dict[str, Any]]:
    """From the event back to the user's input."""
    return [_jsonable(r) for r in await audit.lineage(conn, event_id)]


async def audit_verify(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Problems in the hash chains, each naming its row; empty when intact."""
    return [_jsonable(p) for p in await audit.verify(conn)]


async def board(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The early-warning board, most severe first."""
    return [_jsonable(r) for r in await early_warning.board(conn)]


async def audit_summary(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Audit rows per topic and event type."""
    schema = await _audit_table_schema(conn)
    rows = await conn.fetch(
        f"SELECT topic, type, count(*) AS events FROM {schema}.audit_events "  # noqa: S608
        "GROUP BY topic, type ORDER BY topic, type"
    )
    return [dict(r) for r in rows]


async def recent_alerts(conn: asyncpg.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The latest alerts raised and cleared, as recorded in the audit trail, oldest first."""
    schema = await _audit_table_schema(conn)
    rows = await conn.fetch(
        f"SELECT type, payload, occurred_at FROM {schema}.audit_events "  # noqa: S608
        "WHERE type IN ('risk.alert_raised', 'risk.alert_cleared') "
        "ORDER BY payload->>'observed_at' DESC, occurred_at DESC LIMIT $1",
        limit,
    )
    return [{"type": r["type"], **_payload(r["payload"])} for r in reversed(rows)]


def _payload(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


# -- the structured desk ------------------------------------------------------------------------

Database = asyncpg.Pool | asyncpg.Connection
"""A pool (a connection is taken for the query) or a connection (used as it is)."""


@asynccontextmanager
async def _acquired(db: Database) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


async def structured_request(db: Database, request_id: str) -> dict[str, Any] | None:
    """One design request of the structured desk, or None when the desk view has never seen it.

    `status` (requested, in_progress, proposed, rejected), `timeline` (stage, event type, event id
    and occurred_at of each stage seen), the rejection (`rejected_by`, `rejected_field`,
    `rejected_reason`), `recommendation` and `proposal`, and the rows of every stage: `structures`
    with their metrics (ranking order), `assumptions`, `scenarios`, `stress`, `segments`,
    `suitability` (the matrix, assigned pairs marked), `compliance` and `ranking`. Each row names
    the event it came from (`event_id`), whose lineage `risklab audit lineage` walks.
    """
    async with _acquired(db) as conn:
        return await structured_desk.request_view(conn, request_id)


async def structured_requests(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """The most recently updated design requests, newest first, with their status."""
    async with _acquired(db) as conn:
        return await structured_desk.recent_requests(conn, limit)
