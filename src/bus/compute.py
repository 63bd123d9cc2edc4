"""Splitting heavy work into compute chunks and gathering the answers by request id.

A requester emits one `ComputeRequested` per chunk (each with its own recorded seed), and
folds every `ComputeCompleted` / `ComputeFailed` it receives into `compute_chunks` inside its
actor transaction; once all chunks of a request are in, it gets them back in chunk order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from bus.events.compute import ComputeCompleted, ComputeFailed, ComputeRequested


def chunk_seed(seed: int, chunk_index: int) -> int:
    """An independent, reproducible seed for chunk `chunk_index` of a request seeded with `seed`."""
    digest = hashlib.sha256(f"{seed}/{chunk_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def chunk_requests(
    request_id: str, kind: str, chunk_inputs: Sequence[dict[str, Any]], seed: int | None = None
) -> list[ComputeRequested]:
    """One request per chunk of inputs, all sharing `request_id`."""
    n = len(chunk_inputs)
    if n == 0:
        raise ValueError("chunk_inputs: at least one chunk is needed")
    return [
        ComputeRequested(
            request_id=request_id,
            kind=kind,
            chunk_index=i,
            chunk_count=n,
            inputs=dict(inputs),
            seed=None if seed is None else chunk_seed(seed, i),
        )
        for i, inputs in enumerate(chunk_inputs)
    ]


@dataclass(frozen=True)
class GatheredRequest:
    """All chunks of a request: results in chunk order, and the failures by chunk index."""

    request_id: str
    kind: str
    results: list[dict[str, Any] | None]
    failures: dict[int, str]

    @property
    def complete(self) -> bool:
        return not self.failures


async def record_chunk(
    conn: asyncpg.Connection, requester: str, answer: ComputeCompleted | ComputeFailed
) -> GatheredRequest | None:
    """Store one chunk's answer; returns the gathered request when this was its last missing chunk.

    Run inside the requester's actor transaction, so a redelivered answer cannot complete a
    request twice. Results given by reference (`result_ref`) are returned as {"result_ref": ...}.
    """
    completed = isinstance(answer, ComputeCompleted)
    result = (answer.result if answer.result is not None else {"result_ref": answer.result_ref}) if completed else None
    inserted = await conn.fetchval(
        """INSERT INTO compute_chunks (requester, request_id, chunk_index, chunk_count, status, result, error)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT DO NOTHING RETURNING true""",
        requester,
        answer.request_id,
        answer.chunk_index,
        answer.chunk_count,
        "completed" if completed else "failed",
        json.dumps(result) if result is not None else None,
        None if completed else f"{answer.error_type}: {answer.error}",
    )
    if not inserted:
        return None
    rows = await conn.fetch(
        "SELECT chunk_index, status, result, error FROM compute_chunks WHERE requester = $1 AND request_id = $2 "
        "ORDER BY chunk_index",
        requester,
        answer.request_id,
    )
    if len(rows) < answer.chunk_count:
        return None
    return GatheredRequest(
        request_id=answer.request_id,
        kind=answer.kind,
        results=[json.loads(r["result"]) if r["result"] is not None else None for r in rows],
        failures={r["chunk_index"]: r["error"] for r in rows if r["status"] == "failed"},
    )
