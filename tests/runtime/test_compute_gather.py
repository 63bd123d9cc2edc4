"""Splitting compute work into chunks and gathering the answers (bus.compute) on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from bus.compute import chunk_requests, chunk_seed, record_chunk
from bus.events import ComputeCompleted, ComputeFailed
from bus.migrations import apply_migrations
from bus.runtime.runner import RUNTIME_MIGRATIONS

pytestmark = pytest.mark.integration

KIND = "mc.european_option"


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database_url)
    try:
        await apply_migrations(c, RUNTIME_MIGRATIONS)
        yield c
    finally:
        await c.close()


def done(request_id: str, index: int, count: int, value: float, *, kind: str = KIND) -> ComputeCompleted:
    return ComputeCompleted(
        request_id=request_id,
        kind=kind,
        chunk_index=index,
        chunk_count=count,
        result={"value": value, "chunk": index},
        elapsed_seconds=0.5,
        worker="w1",
    )


def failed(request_id: str, index: int, count: int, error: str) -> ComputeFailed:
    return ComputeFailed(
        request_id=request_id,
        kind=KIND,
        chunk_index=index,
        chunk_count=count,
        error_type="ValueError",
        error=error,
        worker="w2",
    )


# ------------------------------------------------------------------------------------------------
# chunk_requests
# ------------------------------------------------------------------------------------------------


def test_chunk_requests_have_distinct_reproducible_seeds() -> None:
    inputs = [{"paths": 10_000, "block": i} for i in range(16)]
    first = chunk_requests("req-1", KIND, inputs, seed=42)
    again = chunk_requests("req-1", KIND, inputs, seed=42)
    assert [r.seed for r in first] == [r.seed for r in again]
    seeds = [r.seed for r in first]
    assert len(set(seeds)) == 16
    assert all(isinstance(s, int) and 0 <= s < 2**63 for s in seeds)
    assert seeds == [chunk_seed(42, i) for i in range(16)]
    # another base seed gives other chunk seeds
    other = [r.seed for r in chunk_requests("req-1", KIND, inputs, seed=43)]
    assert set(other).isdisjoint(seeds)
    # the chunks carry their index, the count, the shared id and their own inputs
    assert [r.chunk_index for r in first] == list(range(16))
    assert {r.chunk_count for r in first} == {16}
    assert {r.request_id for r in first} == {"req-1"}
    assert {r.kind for r in first} == {KIND}
    assert [r.inputs for r in first] == inputs
    assert all(r.partition_key() == "req-1" for r in first)


def test_chunk_requests_without_seed_or_inputs() -> None:
    assert [r.seed for r in chunk_requests("req-2", KIND, [{}, {}])] == [None, None]
    with pytest.raises(ValueError, match="at least one chunk"):
        chunk_requests("req-3", KIND, [])


def test_chunk_requests_copy_the_inputs() -> None:
    inputs = [{"paths": 1}]
    [request] = chunk_requests("req-4", KIND, inputs, seed=1)
    inputs[0]["paths"] = 2
    assert request.inputs == {"paths": 1}


# ------------------------------------------------------------------------------------------------
# record_chunk
# ------------------------------------------------------------------------------------------------


async def test_gathers_results_in_chunk_order_once_the_last_chunk_is_in(conn: asyncpg.Connection) -> None:
    assert await record_chunk(conn, "pricer", done("r1", 2, 4, 2.0)) is None
    assert await record_chunk(conn, "pricer", done("r1", 0, 4, 0.0)) is None
    assert await record_chunk(conn, "pricer", done("r1", 3, 4, 3.0)) is None
    gathered = await record_chunk(conn, "pricer", done("r1", 1, 4, 1.0))
    assert gathered is not None
    assert gathered.request_id == "r1"
    assert gathered.kind == KIND
    assert gathered.results == [{"value": float(i), "chunk": i} for i in range(4)]
    assert gathered.failures == {}
    assert gathered.complete


async def test_a_duplicate_answer_does_not_complete_twice(conn: asyncpg.Connection) -> None:
    assert await record_chunk(conn, "pricer", done("r2", 0, 2, 0.0)) is None
    assert await record_chunk(conn, "pricer", done("r2", 0, 2, 0.0)) is None  # redelivered before the end
    assert await record_chunk(conn, "pricer", done("r2", 1, 2, 1.0)) is not None
    # redelivered after completion: neither the last nor any other chunk completes it again
    assert await record_chunk(conn, "pricer", done("r2", 1, 2, 1.0)) is None
    assert await record_chunk(conn, "pricer", done("r2", 0, 2, 0.0)) is None
    # a different answer to a stored chunk is ignored too: the first answer stands
    assert await record_chunk(conn, "pricer", done("r2", 1, 2, 99.0)) is None
    stored = await conn.fetch(
        "SELECT chunk_index, result FROM compute_chunks WHERE request_id = 'r2' ORDER BY chunk_index"
    )
    assert [r["chunk_index"] for r in stored] == [0, 1]
    assert '"value": 1.0' in stored[1]["result"]


async def test_failures_are_reported_by_chunk(conn: asyncpg.Connection) -> None:
    assert await record_chunk(conn, "pricer", failed("r3", 1, 3, "volatility must be positive")) is None
    assert await record_chunk(conn, "pricer", done("r3", 0, 3, 0.0)) is None
    gathered = await record_chunk(conn, "pricer", failed("r3", 2, 3, "no convergence"))
    assert gathered is not None
    assert not gathered.complete
    assert gathered.failures == {1: "ValueError: volatility must be positive", 2: "ValueError: no convergence"}
    assert gathered.results == [{"value": 0.0, "chunk": 0}, None, None]


async def test_results_by_reference_and_single_chunk_requests(conn: asyncpg.Connection) -> None:
    answer = ComputeCompleted(
        request_id="r4",
        kind=KIND,
        chunk_index=0,
        chunk_count=1,
        result_ref="file:///artifacts/r4/0.npz",
        elapsed_seconds=1.0,
        worker="w1",
    )
    gathered = await record_chunk(conn, "pricer", answer)
    assert gathered is not None
    assert gathered.results == [{"result_ref": "file:///artifacts/r4/0.npz"}]
    assert gathered.complete


async def test_requests_and_requesters_are_kept_apart(conn: asyncpg.Connection) -> None:
    # the same request id from two requesters, and two requests of one requester, interleaved
    assert await record_chunk(conn, "pricer", done("r5", 0, 2, 0.0)) is None
    assert await record_chunk(conn, "hedger", done("r5", 1, 2, 10.0)) is None
    assert await record_chunk(conn, "pricer", done("r6", 1, 2, 21.0)) is None
    mine = await record_chunk(conn, "pricer", done("r5", 1, 2, 1.0))
    assert mine is not None and [r["value"] for r in mine.results] == [0.0, 1.0]
    theirs = await record_chunk(conn, "hedger", done("r5", 0, 2, 9.0))
    assert theirs is not None and [r["value"] for r in theirs.results] == [9.0, 10.0]
    other = await record_chunk(conn, "pricer", done("r6", 0, 2, 20.0))
    assert other is not None and [r["value"] for r in other.results] == [20.0, 21.0]


async def test_rolled_back_answer_is_not_kept(conn: asyncpg.Connection) -> None:
    """Inside the actor transaction: a rolled-back transaction leaves no chunk behind, so the
    redelivered answer completes the request then."""
    assert await record_chunk(conn, "pricer", done("r7", 0, 2, 0.0)) is None

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with conn.transaction():
            assert await record_chunk(conn, "pricer", done("r7", 1, 2, 1.0)) is not None
            raise Boom
    gathered = await record_chunk(conn, "pricer", done("r7", 1, 2, 1.0))
    assert gathered is not None and [r["value"] for r in gathered.results] == [0.0, 1.0]
