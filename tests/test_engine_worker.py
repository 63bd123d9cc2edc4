"""The engine worker on the actor runtime: real PostgreSQL, memory transport.

Requests go through `risklab.compute_client.request_and_gather` (or straight onto the topic) and
answers are read back from `compute.results`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bus.artifacts import LocalArtifactStore, content_key
from bus.catalog import CATALOG
from bus.codec import decode
from bus.compute import chunk_requests
from bus.database import connect_pool
from bus.envelope import Envelope, derived_event_id
from bus.events.compute import ComputeCompleted, ComputeFailed, ComputeRequested
from bus.memory import MemoryTransport
from bus.runtime.runner import ActorRunner, RuntimeOptions
from bus.topics import COMPUTE_REQUESTS, COMPUTE_RESULTS, topic_specs
from engines import registry
from engines.common.black_scholes import black_scholes_price
from risklab.compute_client import ComputeRequestFailed, ComputeTimedOut, artifact_path, request_and_gather
from risklab.engine_worker import EngineWorker, worker_identity

OPTIONS = RuntimeOptions(max_records=1, poll_timeout_seconds=0.05, backoff_seconds=0.05)
OPTION = {
    "spot": 100.0,
    "strike": 105.0,
    "rate": 0.02,
    "dividend_yield": 0.01,
    "volatility": 0.3,
    "maturity_years": 0.75,
    "option": "call",
}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database_url, min_size=1, max_size=8)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def transport() -> MemoryTransport:
    return MemoryTransport(topic_specs())


@asynccontextmanager
async def running(runner: ActorRunner) -> AsyncIterator[ActorRunner]:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield runner
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def answers(transport: MemoryTransport, request_id: str) -> list[ComputeCompleted | ComputeFailed]:
    """Every answer on compute.results for `request_id`, in log order (duplicates included)."""
    end = await transport.end_offsets([COMPUTE_RESULTS])
    total = sum(end.values())
    sub = await transport.subscribe(f"test-reader-{uuid.uuid4().hex}", [COMPUTE_RESULTS])
    out: list[Any] = []
    seen = 0
    try:
        while seen < total:
            batches = await sub.poll(2.0)
            assert batches, f"compute.results not drained: read {seen} of {total}"
            for records in batches.values():
                seen += len(records)
                out += [decode(r.value).event for r in records]
    finally:
        await sub.close()
    return [a for a in out if a.request_id == request_id]


async def wait_for_answers(
    transport: MemoryTransport, request_id: str, count: int, timeout: float = 60.0
) -> list[ComputeCompleted | ComputeFailed]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await answers(transport, request_id)
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def publish_requests(
    transport: MemoryTransport, kind: str, chunks: list[dict[str, Any]], seed: int | None = 1
) -> tuple[str, list[Envelope]]:
    request_id = f"test-{uuid.uuid4().hex[:12]}"
    envelopes = [CATALOG.envelope(r, producer="test") for r in chunk_requests(request_id, kind, chunks, seed)]
    await transport.publish_many(COMPUTE_REQUESTS, envelopes)
    return request_id, envelopes


async def test_chunked_monte_carlo_request_agrees_with_closed_form(
    pool: asyncpg.Pool, transport: MemoryTransport, tmp_path: Path
) -> None:
    inputs = {**OPTION, "paths": 50_000}
    async with running(ActorRunner(EngineWorker(LocalArtifactStore(tmp_path)), transport, pool, OPTIONS)):
        result = await request_and_gather(
            transport, "mc.european_option", [inputs] * 4, seed=2024, timeout=120, request_id="mc-four-chunks"
        )
        found = await answers(transport, "mc-four-chunks")
    exact = float(black_scholes_price(*(OPTION[f] for f in OPTION)))
    print(f"4 chunks via workers: {result['price']:.5f} ± {result['standard_error']:.5f} vs closed form {exact:.5f}")
    assert result["paths"] == 200_000 and result["chunks"] == 4
    assert abs(result["price"] - exact) < 4 * result["standard_error"]
    assert sorted(a.chunk_index for a in found) == [0, 1, 2, 3]
    assert all(isinstance(a, ComputeCompleted) and a.result is not None for a in found)
    assert {a.worker for a in found} == {worker_identity()}
    # each chunk ran with its own recorded seed: four different estimates
    assert len({a.result["sum"] for a in found if isinstance(a, ComputeCompleted) and a.result}) == 4


async def test_unknown_kind_and_invalid_inputs_come_back_as_compute_failed(
    pool: asyncpg.Pool, transport: MemoryTransport, tmp_path: Path
) -> None:
    async with running(ActorRunner(EngineWorker(LocalArtifactStore(tmp_path)), transport, pool, OPTIONS)) as runner:
        unknown_id, _ = await publish_requests(transport, "mc.asian_option", [OPTION])
        [unknown] = await wait_for_answers(transport, unknown_id, 1)
        assert isinstance(unknown, ComputeFailed)
        assert unknown.error_type == "unknown_kind"
        assert "'mc.asian_option'" in unknown.error and unknown.worker == worker_identity()

        bad = {**OPTION, "volatility": -0.2, "paths": 1_000}
        with pytest.raises(ComputeRequestFailed) as info:
            await request_and_gather(transport, "mc.european_option", [bad, bad], seed=3, timeout=60)
        assert set(info.value.failures) == {0, 1}
        assert "invalid_inputs: volatility: must be positive" in info.value.failures[0]
        assert "volatility: must be positive" in str(info.value)

        # a request without seed: the Monte Carlo engine refuses to produce an unreproducible result
        with pytest.raises(ComputeRequestFailed, match="seed: is required"):
            await request_and_gather(transport, "mc.european_option", [{**OPTION, "paths": 10}], seed=None, timeout=60)
    assert runner.dead_lettered == 0  # answered, not dead-lettered


async def test_requester_refuses_an_unknown_kind_before_publishing(transport: MemoryTransport) -> None:
    with pytest.raises(registry.UnknownKind):
        await request_and_gather(transport, "mc.asian_option", [OPTION], seed=1, timeout=1)
    assert sum((await transport.end_offsets([COMPUTE_REQUESTS])).values()) == 0


async def test_engine_exception_comes_back_as_compute_failed(
    pool: asyncpg.Pool, transport: MemoryTransport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.kinds()
    monkeypatch.setattr(registry, "_kinds", dict(registry._kinds))

    @registry.register("test.broken")
    def broken(inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
        return {"ratio": 1 / inputs["denominator"]}

    async with running(ActorRunner(EngineWorker(LocalArtifactStore(tmp_path)), transport, pool, OPTIONS)):
        with pytest.raises(ComputeRequestFailed) as info:
            await request_and_gather(transport, "test.broken", [{"denominator": 0}], seed=None, timeout=60)
    assert "engine_error: ZeroDivisionError: division by zero" in info.value.failures[0]


async def test_large_results_travel_by_artifact_reference(
    pool: asyncpg.Pool, transport: MemoryTransport, tmp_path: Path
) -> None:
    inputs = {**OPTION, "paths": 2_000}
    # every MC result is larger than 100 bytes
    worker = EngineWorker(LocalArtifactStore(tmp_path / "artifacts"), inline_limit_bytes=100)
    async with running(ActorRunner(worker, transport, pool, OPTIONS)):
        by_ref = await request_and_gather(
            transport, "mc.european_option", [inputs, inputs], seed=9, timeout=60, request_id="by-ref"
        )
        found = await answers(transport, "by-ref")
    assert all(isinstance(a, ComputeCompleted) and a.result is None and a.result_ref for a in found)
    refs = [a.result_ref for a in found if isinstance(a, ComputeCompleted) and a.result_ref]
    assert all(r.startswith("file://") and artifact_path(r).is_file() for r in refs)
    assert all(artifact_path(r).is_relative_to(tmp_path / "artifacts" / "sha256") for r in refs)  # content-addressed
    # the same chunks computed locally combine to the same answer
    local = registry.combine(
        "mc.european_option",
        [registry.run("mc.european_option", r.inputs, r.seed) for r in chunk_requests("x", "mc", [inputs] * 2, 9)],
    )
    assert by_ref == local


async def test_inputs_by_reference_are_read_through_the_store(
    pool: asyncpg.Pool, transport: MemoryTransport, tmp_path: Path
) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    ref = store.put_json({**OPTION, "paths": 1_000})
    elsewhere = LocalArtifactStore(tmp_path / "elsewhere").put_json({**OPTION, "paths": 1_000})
    missing = (store.root / content_key("0" * 64)).as_uri()
    requests = [
        ComputeRequested(request_id=f"by-ref-{i}", kind="mc.european_option", chunk_index=0, chunk_count=1, **extra)
        for i, extra in enumerate(
            [{"inputs_ref": ref.uri, "seed": 1}, {"inputs_ref": elsewhere.uri}, {"inputs_ref": missing}]
        )
    ]
    await transport.publish_many(COMPUTE_REQUESTS, [CATALOG.envelope(r, producer="test") for r in requests])
    async with running(ActorRunner(EngineWorker(store), transport, pool, OPTIONS)):
        [read], [foreign], [absent] = [await wait_for_answers(transport, r.request_id, 1) for r in requests]
    assert isinstance(read, ComputeCompleted) and read.result is not None and read.result["paths"] == 1_000
    assert isinstance(foreign, ComputeFailed) and foreign.error_type == "invalid_inputs"
    assert elsewhere.uri in foreign.error and "not in this store" in foreign.error
    assert isinstance(absent, ComputeFailed) and absent.error_type == "inputs_unavailable"
    assert absent.error == f"artifact not found: {missing}"


async def test_a_redelivered_request_gets_no_second_answer(
    pool: asyncpg.Pool, transport: MemoryTransport, tmp_path: Path
) -> None:
    inputs = {**OPTION, "paths": 1_000}
    async with running(ActorRunner(EngineWorker(LocalArtifactStore(tmp_path)), transport, pool, OPTIONS)):
        request_id, [request] = await publish_requests(transport, "mc.european_option", [inputs], seed=5)
        [first] = await wait_for_answers(transport, request_id, 1)
        # a producer retry: the very same envelope a second time
        await transport.publish(COMPUTE_REQUESTS, request)
        await asyncio.sleep(0.5)
        assert len(await answers(transport, request_id)) == 1

    # Rewind the worker in PostgreSQL (the offsets' source of truth): every request is read again.
    async with pool.acquire() as conn:
        before = dict(
            await conn.fetch('SELECT "partition", next_offset FROM consumer_offsets WHERE actor = $1', "engine-worker")
        )
        outbox_before = await conn.fetchval("SELECT count(*) FROM outbox WHERE actor = $1", "engine-worker")
        await conn.execute("UPDATE consumer_offsets SET next_offset = 0 WHERE actor = $1", "engine-worker")
    assert outbox_before == 1

    async with running(ActorRunner(EngineWorker(LocalArtifactStore(tmp_path)), transport, pool, OPTIONS)) as again:
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # until the rewound partitions are consumed up to where they were
            async with pool.acquire() as conn:
                now = dict(
                    await conn.fetch(
                        'SELECT "partition", next_offset FROM consumer_offsets WHERE actor = $1', "engine-worker"
                    )
                )
            if now == before:
                break
            assert asyncio.get_running_loop().time() < deadline, (now, before)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # let the relay run
    assert again.processed == 0  # everything it read was a duplicate

    [only] = await answers(transport, request_id)
    answer_ids = {
        r["event_id"] for r in await pool.fetch("SELECT event_id FROM outbox WHERE actor = $1", "engine-worker")
    }
    assert answer_ids == {derived_event_id(request.event_id, "engine-worker", 0)}
    assert only == first


async def test_gather_times_out_naming_the_missing_chunks(transport: MemoryTransport) -> None:
    # no worker is running
    with pytest.raises(ComputeTimedOut) as info:
        await request_and_gather(transport, "mc.european_option", [{**OPTION, "paths": 10}] * 3, seed=1, timeout=0.3)
    assert info.value.missing == [0, 1, 2]
    assert "no answer for chunks 0-2" in str(info.value)


async def test_the_avalanche_split_by_paths_over_two_workers_is_the_unsplit_run(
    pool: asyncpg.Pool, transport: MemoryTransport, tmp_path: Path
) -> None:
    """`margin.avalanche` chunked by path ranges across two engine workers and gathered gives exactly the
    run made in one piece: the counter-based random numbers make each path independent of its chunk."""
    inputs = {"book": "sample", "settings": {"paths": 96, "hours": 24, "seed": 11}}
    whole = registry.run("margin.avalanche", inputs, 11)
    chunks = registry.get("margin.avalanche").split(inputs, 3)
    assert [c["first_path"] for c in chunks] == [0, 32, 64]
    store = LocalArtifactStore(tmp_path)
    workers = [ActorRunner(EngineWorker(store, worker=f"w{i}"), transport, pool, OPTIONS) for i in range(2)]
    async with running(workers[0]), running(workers[1]):
        gathered = await request_and_gather(
            transport, "margin.avalanche", chunks, seed=11, timeout=300, request_id="avalanche-3", store=store
        )
        found = await answers(transport, "avalanche-3")
    assert sorted(a.chunk_index for a in found) == [0, 1, 2]
    assert all(isinstance(a, ComputeCompleted) for a in found)
    assert gathered["summary"] == whole["summary"]
    assert gathered["per_path"] == whole["per_path"]


async def test_the_xva_run_split_by_netting_sets_over_two_workers_is_the_unsplit_run(
    pool: asyncpg.Pool, transport: MemoryTransport, tmp_path: Path
) -> None:
    """`xva.run` chunked by netting sets across two engine workers and gathered: every netting set's figures
    and the book's totals (BA-CVA recomputed over all counterparties) equal the run made in one piece."""
    inputs = {
        "book": "sample",
        "counterparties": 8,
        "trades": 80,
        "options": {"seed": 5, "paths": 128, "grid": "1M:monthly,2Y:quarterly,10Y:annual,20Y"},
    }
    whole = registry.run("xva.run", inputs, 5)
    chunks = registry.get("xva.run").split(inputs, 3)
    assert [c["part"] for c in chunks] == [[0, 3], [1, 3], [2, 3]]
    store = LocalArtifactStore(tmp_path)
    workers = [ActorRunner(EngineWorker(store, worker=f"w{i}"), transport, pool, OPTIONS) for i in range(2)]
    async with running(workers[0]), running(workers[1]):
        gathered = await request_and_gather(
            transport, "xva.run", chunks, seed=5, timeout=300, request_id="xva-3", store=store
        )
        found = await answers(transport, "xva-3")
    assert sorted(a.chunk_index for a in found) == [0, 1, 2]
    assert all(isinstance(a, ComputeCompleted) for a in found)
    assert [r["id"] for r in gathered["netting_sets"]] == [r["id"] for r in whole["netting_sets"]]
    for mine, theirs in zip(gathered["netting_sets"], whole["netting_sets"], strict=True):
        for key in ("cva", "dva", "fca", "mva", "kva", "wrong_way", "ead", "total_with_wrong_way"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-6), (mine["id"], key)
    for key, value in whole["totals"].items():
        assert gathered["totals"][key] == pytest.approx(value, rel=1e-9, abs=1e-6), key
