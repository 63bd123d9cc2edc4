"""Running the structured desk in a test: its six agents, engine workers and the desk projection on
a given transport and a real PostgreSQL, with a small design request so a run takes seconds."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

import bus.events  # noqa: F401
from agents.narrator import Narrator, TemplateNarrator
from bus.artifacts import LocalArtifactStore
from bus.codec import decode
from bus.envelope import Envelope
from bus.runtime.actor import Actor
from bus.runtime.runner import ActorRunner, RuntimeOptions, ensure_runtime_schema
from bus.topics import DESK_STRUCTURED
from bus.transport import Transport
from projections.structured_desk import StructuredDeskProjection
from risklab.engine_worker import EngineWorker
from risklab.structured_desk import STAGE_OF_TYPE, desk_actors, sample_request_data

OPTIONS = RuntimeOptions(retries=2, backoff_seconds=0.1, poll_timeout_seconds=0.05)
DESK_TYPES = tuple(t for t in STAGE_OF_TYPE if t != "structured.product_design_rejected")
"""Every event type of a request that ends in a proposal, each exactly once."""


def small_request(**changes: Any) -> dict[str, Any]:
    """The sample request on an 18-variation grid, 8,192 paths in 2 chunks and 16 stress scenarios."""
    data = copy.deepcopy(sample_request_data())
    data["requirements"]["grid"] = {"barriers": [0.55, 0.6, 0.65], "coupons": [0.06, 0.09]}
    data["constraints"] = {
        "min_variations": 18,
        "paths": 8192,
        "seed": 7,
        "chunks": 2,
        "stress_scenarios": 16,
        "documents_for": 2,
    }
    for path, value in changes.items():
        node = data
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return data


@dataclass
class DeskRun:
    """A running desk: its runners by name (restartable) and the transport and pool they use."""

    transport: Transport
    pool: asyncpg.Pool
    store: LocalArtifactStore
    narrator: Narrator
    runners: dict[str, tuple[ActorRunner, asyncio.Task[None], asyncio.Event]] = field(default_factory=dict)

    def start(self, actor: Actor, key: str | None = None) -> None:
        runner = ActorRunner(actor, self.transport, self.pool, OPTIONS)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop), name=f"actor:{key or actor.name}")
        self.runners[key or actor.name] = (runner, task, stop)

    async def kill(self, key: str) -> None:
        """Cancel the runner's task wherever it is (mid-transaction included): a crash, not a stop."""
        _, task, _ = self.runners.pop(key)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def agent(self, name: str) -> Actor:
        return next(a for a in desk_actors(self.store, self.narrator) if a.name == name)

    async def stop_all(self) -> None:
        for _, _, stop in self.runners.values():
            stop.set()
        await asyncio.gather(*(t for _, t, _ in self.runners.values()), return_exceptions=True)
        self.runners.clear()


@asynccontextmanager
async def desk(
    transport: Transport, pool: asyncpg.Pool, artifacts: Path, *, workers: int = 2, narrator: Narrator | None = None
) -> AsyncIterator[DeskRun]:
    """The six agents, `workers` engine workers and the desk projection, running until the block ends."""
    await ensure_runtime_schema(pool)
    store = LocalArtifactStore(artifacts)
    run = DeskRun(transport, pool, store, narrator or TemplateNarrator())
    for actor in desk_actors(store, run.narrator):
        run.start(actor)
    for i in range(workers):
        run.start(EngineWorker(store, worker=f"worker-{i}"), key=f"engine-worker-{i}")
    run.start(await StructuredDeskProjection.active(pool))
    try:
        yield run
    finally:
        await run.stop_all()


async def desk_log(transport: Transport) -> list[Envelope]:
    """Every envelope on `desk.structured` (read with a fresh consumer group), in offset order per partition."""
    ends = await transport.end_offsets([DESK_STRUCTURED])
    sub = await transport.subscribe(f"desk-reader-{uuid.uuid4().hex}", [DESK_STRUCTURED])
    got: dict[tuple[int, int], Envelope] = {}
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(got) < sum(ends.values()) and loop.time() < deadline:
            for records in (await sub.poll(0.5, 10_000)).values():
                for r in records:
                    if r.offset < ends[r.tp]:
                        got[(r.partition, r.offset)] = decode(r.value).envelope
    finally:
        await sub.close()
    return [got[k] for k in sorted(got)]


def counts(envelopes: list[Envelope], request_id: str) -> Counter[str]:
    """Distinct events of each type for the request.

    A relay killed between publishing an outbox row and marking it sent publishes it again after
    the restart: the same event id and payload, which every consumer skips as already processed.
    Exactly once means one distinct event per conclusion, so copies are checked equal and counted once.
    """
    by_id: dict[object, Envelope] = {}
    for e in envelopes:
        if e.key != request_id:
            continue
        first = by_id.setdefault(e.event_id, e)
        assert (first.type, first.payload) == (e.type, e.payload), f"two different events share the id {e.event_id}"
    return Counter(e.type for e in by_id.values())


def payload(envelopes: list[Envelope], request_id: str, event_type: str) -> dict[str, Any]:
    (only,) = [e for e in envelopes if e.key == request_id and e.type == event_type]
    return json.loads(only.model_dump_json())["payload"]
