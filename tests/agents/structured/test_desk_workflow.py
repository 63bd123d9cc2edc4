"""The structured desk end to end on the memory transport and a real PostgreSQL: a design request
becomes a ranked, documented proposal through the six agents and two engine workers; bad requests
end in a rejection naming the field; an agent killed mid-request resumes, and every event exists
exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from desk_harness import DESK_TYPES, counts, desk, desk_log, payload, small_request

from bus.artifacts import LocalArtifactStore
from bus.codec import decode
from bus.database import connect_pool
from bus.envelope import Envelope
from bus.memory import MemoryTransport
from bus.topics import COMPUTE_RESULTS, topic_specs
from risklab import queries
from risklab.structured_desk import build_request, submit_and_follow

pytestmark = pytest.mark.integration
TIMEOUT = 600


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await connect_pool(database_url, min_size=1, max_size=20)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def transport() -> AsyncIterator[MemoryTransport]:
    t = MemoryTransport(topic_specs(4))
    try:
        yield t
    finally:
        await t.close()


async def workers_that_answered(transport: MemoryTransport) -> set[str]:
    ends = await transport.end_offsets([COMPUTE_RESULTS])
    sub = await transport.subscribe("workers-reader", [COMPUTE_RESULTS])
    seen: set[str] = set()
    got = 0
    try:
        while got < sum(ends.values()):
            for records in (await sub.poll(0.2, 10_000)).values():
                for r in records:
                    got += 1
                    seen.add(decode(r.value).event.worker)  # type: ignore[attr-defined]
    finally:
        await sub.close()
    return seen


async def test_a_request_becomes_a_ranked_documented_proposal(
    transport: MemoryTransport, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    async with desk(transport, pool, tmp_path / "artifacts"):
        request = build_request(small_request(), store)
        outcome = await submit_and_follow(transport, request, timeout=TIMEOUT)
        assert outcome.final.type == "structured.product_proposal_published", outcome.final.payload
        await asyncio.sleep(0.5)
        log = await desk_log(transport)
    rid = request.request_id
    assert counts(log, rid) == dict.fromkeys(DESK_TYPES, 1)

    proposed = payload(log, rid, "structured.structures_proposed")
    assert len(proposed["structures"]) == 18
    assert all(s["greeks"]["delta"] and s["fair_coupon"] is not None for s in proposed["structures"])
    scenarios = payload(log, rid, "structured.scenarios_generated")
    assert 40 <= len(scenarios["scenarios"]) <= 60
    assert {s["horizon_months"] for s in scenarios["scenarios"]} == {1, 3, 6, 12, 24, 36, 60}
    stress = payload(log, rid, "structured.stress_tested")
    assert stress["scenario_count"] == 16 and len(stress["results"]) == 18
    assert store.get_json(stress["report_ref"]["uri"])["paths"] == 8192
    plan = payload(log, rid, "structured.distribution_planned")
    assert all(s["size"] >= 50 for s in plan["segments"])
    review = payload(log, rid, "structured.compliance_reviewed")
    assert review["rulebook"]["version"]
    final = payload(log, rid, "structured.product_proposal_published")
    assert len(final["ranking"]) == 18 and final["pareto_set"]
    weights = final["weights"]
    assert weights == {"client_value": 0.3, "issuer_margin": 0.2, "risk": 0.2, "distribution": 0.15, "compliance": 0.15}

    # never proposed to a segment in its negative target market
    decisions = {d["structure_id"]: d for d in review["decisions"]}
    for ranked in final["ranking"]:
        assert not set(ranked["segments"]) & set(decisions[ranked["structure_id"]]["negative_target_market"])
    if final["recommendation"] is not None:
        chosen = decisions[final["recommendation"]]
        assert final["segments"] and not set(final["segments"]) & set(chosen["negative_target_market"])
        for doc in final["documents"]:
            assert store.get(doc["artifact"]["uri"])  # the documents exist and verify against their hash
    else:
        assert "No structure" in final["rationale"] or "none of them" in final["rationale"]

    # every narrative is recorded with its source
    for t in DESK_TYPES[1:]:
        assert payload(log, rid, t)["narrative"]["source"] == "template"

    # both engine workers took part in the compute
    assert await workers_that_answered(transport) == {"worker-0", "worker-1"}

    # the desk view answers for the request
    view = await queries.structured_request(pool, rid)
    assert view is not None and view["status"] == "proposed"


@pytest.mark.parametrize(
    ("changes", "agent", "field", "words"),
    [
        ({"requirements__base__underlyings": ["SX5E", "ACME"]}, None, "market_ref", "ACME"),
        (
            {"requirements__targets__client_return": 0.6},
            "quant-researcher",
            "requirements.targets.client_return",
            "impossible targets",
        ),
        (
            {"requirements__grid": {"barriers": [0.6], "coupons": [0.07]}},
            "quant-researcher",
            "requirements.grid",
            "fewer",
        ),
    ],
    ids=["unknown-underlying", "impossible-targets", "too-few-variations"],
)
async def test_bad_requests_end_in_a_rejection_naming_the_field(
    transport: MemoryTransport,
    pool: asyncpg.Pool,
    tmp_path: Path,
    changes: dict,
    agent: str | None,
    field: str,
    words: str,
) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    async with desk(transport, pool, tmp_path / "artifacts", workers=1):
        request = build_request(small_request(**changes), store)
        outcome = await submit_and_follow(transport, request, timeout=TIMEOUT)
    assert outcome.final.type == "structured.product_design_rejected"
    rejected = outcome.final.payload
    assert rejected["field"] == field, rejected
    assert words in rejected["reason"]
    if agent is not None:
        assert rejected["agent"] == agent


async def test_missing_market_data_is_rejected(transport: MemoryTransport, pool: asyncpg.Pool, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    request = build_request(small_request(), store)
    await asyncio.to_thread(Path(request.market_ref.uri.removeprefix("file://")).unlink)
    async with desk(transport, pool, tmp_path / "artifacts", workers=1):
        outcome = await submit_and_follow(transport, request, timeout=TIMEOUT)
    assert outcome.final.type == "structured.product_design_rejected"
    assert outcome.final.payload["field"] == "market_ref"
    assert "cannot be read" in outcome.final.payload["reason"]


@pytest.mark.parametrize(
    ("victim", "after"),
    [
        ("risk-manager", "structured.assumptions_validated"),
        ("compliance-officer", "structured.distribution_planned"),
        ("quant-researcher", "structured.product_design_requested"),
    ],
)
async def test_an_agent_killed_mid_request_resumes_and_every_event_exists_once(
    transport: MemoryTransport, pool: asyncpg.Pool, tmp_path: Path, victim: str, after: str
) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    async with desk(transport, pool, tmp_path / "artifacts") as run:
        request = build_request(small_request(), store)
        killed = asyncio.Event()

        def on_event(envelope: Envelope) -> None:
            if envelope.type == after and not killed.is_set():
                killed.set()

        follow = asyncio.create_task(submit_and_follow(transport, request, timeout=TIMEOUT, on_event=on_event))
        await asyncio.wait_for(killed.wait(), TIMEOUT)
        await asyncio.sleep(0.05)  # let it get into its work
        await run.kill(victim)
        await asyncio.sleep(0.5)
        run.start(run.agent(victim))
        outcome = await follow
        assert outcome.final.type == "structured.product_proposal_published"
        await asyncio.sleep(0.5)
        log = await desk_log(transport)
    assert counts(log, request.request_id) == dict.fromkeys(DESK_TYPES, 1)
    view = await queries.structured_request(pool, request.request_id)
    assert view is not None and view["status"] == "proposed"


async def test_narratives_from_the_language_model_are_recorded_and_a_slow_one_falls_back(
    transport: MemoryTransport, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The desk with the real `anthropic` SDK pointed at a local Messages API: the stress narrative
    stalls past the timeout and falls back to the template (saying so); the others are the model's."""
    import sys

    import anthropic

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from messages_api_server import MessagesApiServer, ReplyWith, StallFor

    from agents.narrator import LanguageModelNarrator

    def answer(request):  # type: ignore[no-untyped-def]
        if "risk-manager" in request.text_sent():
            return StallFor(5.0)
        return ReplyWith("The engines' figures, explained for the committee.")

    store = LocalArtifactStore(tmp_path / "artifacts")
    with MessagesApiServer() as server:
        server.behaviour = answer
        client = anthropic.AsyncAnthropic(api_key="test-key", base_url=server.base_url, max_retries=0)
        narrator = LanguageModelNarrator(client, model="claude-test", timeout_seconds=1.0)
        async with desk(transport, pool, tmp_path / "artifacts", workers=1, narrator=narrator):
            request = build_request(small_request(), store)
            outcome = await submit_and_follow(transport, request, timeout=TIMEOUT)
            assert outcome.final.type == "structured.product_proposal_published"
            await asyncio.sleep(0.5)
            log = await desk_log(transport)
        sent = [r.body for r in server.requests]
    rid = request.request_id
    quant = payload(log, rid, "structured.structures_proposed")["narrative"]
    assert quant["source"] == "language_model" and quant["model"] == "claude-test"
    assert quant["reply"] == "The engines' figures, explained for the committee."
    assert quant["text"] == quant["reply"]
    assert "quant-researcher" in quant["prompt"] and '"count": 18' in quant["prompt"]
    assert any("quant-researcher" in json.dumps(b) for b in sent)
    risk = payload(log, rid, "structured.stress_tested")["narrative"]
    assert risk["source"] == "template" and "timed out" in risk["fallback_reason"]
    assert risk["prompt"] and risk["text"].startswith("Stressed 18 structures")
