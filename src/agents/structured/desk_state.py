"""What each structured-desk agent remembers between events: the parts of a request it has seen
and the compute requests it is waiting for.

Every agent joins several upstream events of one design request (the risk manager waits for the
structures and the validated assumptions; the integrator for four conclusions). The parts are kept
as JSON in `structured_agent_parts`, written in the same transaction as the agent's outbox, so a
restarted agent resumes the join where it stood. A request some agent rejected is marked, and no
agent works on it further. Compute requests an agent sent are recorded in
`structured_agent_compute`, so that answers on `compute.results` are recognised as its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from bus.catalog import Event
from bus.compute import GatheredRequest, chunk_requests, record_chunk
from bus.events.compute import ComputeCompleted, ComputeFailed
from bus.events.structured import ProductDesignRejected
from bus.migrations import Migration
from bus.runtime.actor import HandlerContext

_SCHEMA = """
CREATE TABLE structured_agent_parts (
    actor      text  NOT NULL,
    request_id text  NOT NULL,
    part       text  NOT NULL,
    payload    jsonb NOT NULL,
    PRIMARY KEY (actor, request_id, part)
);
CREATE TABLE structured_agent_compute (
    actor              text NOT NULL,
    compute_request_id text NOT NULL,
    request_id         text NOT NULL,
    purpose            text NOT NULL,
    chunk_count        int  NOT NULL,
    PRIMARY KEY (actor, compute_request_id)
);
"""

DESK_STATE_MIGRATIONS = (Migration("structured-desk-agents", 1, "parts_and_compute", _SCHEMA),)
REJECTED = "rejected"
DONE = "done"


@dataclass(frozen=True)
class OwnCompute:
    """A gathered compute request of this agent: which design request and what it was for."""

    request_id: str
    purpose: str
    gathered: GatheredRequest


class DeskState:
    """An agent's view of its own rows in the desk's state tables."""

    def __init__(self, actor: str) -> None:
        self.actor = actor

    async def put(self, conn: asyncpg.Connection, request_id: str, part: str, payload: Any) -> None:
        """Remember `payload` (JSON-able) as `part` of the request, replacing an earlier one."""
        await conn.execute(
            """INSERT INTO structured_agent_parts (actor, request_id, part, payload) VALUES ($1, $2, $3, $4::jsonb)
               ON CONFLICT (actor, request_id, part) DO UPDATE SET payload = EXCLUDED.payload""",
            self.actor,
            request_id,
            part,
            json.dumps(payload, allow_nan=False),
        )

    async def parts(self, conn: asyncpg.Connection, request_id: str) -> dict[str, Any]:
        """Every part remembered for the request, by name."""
        rows = await conn.fetch(
            "SELECT part, payload FROM structured_agent_parts WHERE actor = $1 AND request_id = $2",
            self.actor,
            request_id,
        )
        return {r["part"]: json.loads(r["payload"]) for r in rows}

    async def closed(self, conn: asyncpg.Connection, request_id: str) -> bool:
        """Whether the agent has finished the request or the request was rejected."""
        return bool(
            await conn.fetchval(
                "SELECT true FROM structured_agent_parts WHERE actor = $1 AND request_id = $2 AND part = ANY($3)",
                self.actor,
                request_id,
                [DONE, REJECTED],
            )
        )

    async def emit_compute(
        self,
        ctx: HandlerContext,
        request_id: str,
        purpose: str,
        kind: str,
        chunk_inputs: Sequence[Mapping[str, Any]],
        seed: int | None = None,
    ) -> str:
        """Send `kind` to the engine workers in chunks and remember them as this agent's; returns the id."""
        compute_request_id = f"{request_id}.{self.actor}.{purpose}"
        requests = chunk_requests(compute_request_id, kind, [dict(c) for c in chunk_inputs], seed)
        await ctx.conn.execute(
            """INSERT INTO structured_agent_compute (actor, compute_request_id, request_id, purpose, chunk_count)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            self.actor,
            compute_request_id,
            request_id,
            purpose,
            len(requests),
        )
        for r in requests:
            ctx.emit(r, key=r.chunk_key())
        return compute_request_id

    async def gather(self, conn: asyncpg.Connection, answer: ComputeCompleted | ComputeFailed) -> OwnCompute | None:
        """Record an answer if it is one of this agent's; the gathered request once all chunks are in."""
        row = await conn.fetchrow(
            "SELECT request_id, purpose FROM structured_agent_compute WHERE actor = $1 AND compute_request_id = $2",
            self.actor,
            answer.request_id,
        )
        if row is None:
            return None
        gathered = await record_chunk(conn, self.actor, answer)
        if gathered is None:
            return None
        return OwnCompute(row["request_id"], row["purpose"], gathered)


def reject(ctx: HandlerContext, request_id: str, agent: str, reason: str, field: str | None = None) -> Event:
    """Emit the rejection that ends a request, naming the agent, the field at fault and why."""
    event = ProductDesignRejected(request_id=request_id, agent=agent, field=field, reason=reason[:4000])
    ctx.emit(event)
    return event
