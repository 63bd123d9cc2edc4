"""The structured desk view on a real PostgreSQL with the memory transport and the real runtime:
rows of every stage, idempotence under redelivery, out-of-order stages, replacement by a later
answer, and replay giving the same digests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from projection_helpers import memory_transport, pool_for, rewind, run_until_caught_up

from bus.envelope import Envelope
from bus.memory import MemoryTransport
from bus.topics import DESK_STRUCTURED
from projections.generations import active_generation
from projections.replay import DEFAULT_PROJECTIONS, digest, rebuild
from projections.structured_desk import (
    TABLES,
    StructuredDeskProjection,
    at_99,
    recent_requests,
    request_view,
    timeline,
)
from structured_desk_events import (
    MARKET_SHA,
    RECOMMENDED,
    STRUCTURE_IDS,
    T0,
    chain,
    full_request,
    rejection,
    requested,
    structures,
)

pytestmark = pytest.mark.integration
SCHEMA = "proj_structured_desk_g1"


async def publish(transport: MemoryTransport, envelopes: list[Envelope]) -> None:
    for env in envelopes:
        await transport.publish(DESK_STRUCTURED, env)


async def view_of(pool: asyncpg.Pool, request_id: str) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        return await request_view(conn, request_id)


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    async with pool.acquire() as conn:
        return {
            t: await conn.fetchval(f'SELECT count(*) FROM "{SCHEMA}".{t}')
            for t in ["structured_requests", *(t.name for t in TABLES)]
        }


# -- pure helpers ----------------------------------------------------------------------------


def test_at_99_reads_the_level_however_it_is_spelt() -> None:
    assert at_99({"0.95": 1.0, "0.99": 2.0}) == 2.0
    assert at_99({"99": 3.0}) == 3.0
    assert at_99({"0.95": 1.0}) is None


def test_timeline_is_chronological_and_names_the_rejecting_agent() -> None:
    stages = {
        "structured.product_design_rejected": {"event_id": "b", "occurred_at": "2026-01-01T09:01:00+00:00"},
        "structured.product_design_requested": {"event_id": "a", "occurred_at": "2026-01-01T09:00:00+00:00"},
        "structured.structures_proposed": {"event_id": "c", "occurred_at": "2026-01-01T09:01:00+00:00"},
    }
    assert [(s["stage"], s["event_id"]) for s in timeline(stages, "quant-researcher")] == [
        ("requester", "a"),
        ("quant-researcher", "c"),  # same instant: in the desk's order
        ("quant-researcher", "b"),
    ]


def test_replay_rebuilds_the_desk_view_by_default() -> None:
    assert StructuredDeskProjection in DEFAULT_PROJECTIONS
    assert set(StructuredDeskProjection.digest_tables) == {"structured_requests", *(t.name for t in TABLES)}


# -- the fold --------------------------------------------------------------------------------


async def test_every_stage_lands_in_its_table_with_its_event_id(database_url: str) -> None:
    transport = memory_transport()
    envelopes = full_request("REQ-1")
    by_type = {e.type: e for e in envelopes}
    await publish(transport, envelopes)
    async with pool_for(database_url) as pool:
        [runner] = await run_until_caught_up(pool, transport, StructuredDeskProjection())
        assert runner.processed == len(envelopes)
        assert await counts(pool) == {
            "structured_requests": 1,
            "structured_structures": 3,
            "structured_assumptions": 3,
            "structured_scenarios": 4,
            "structured_stress": 3,
            "structured_segments": 2,
            "structured_suitability": 6,
            "structured_compliance": 3,
            "structured_ranking": 3,
        }
        view = await view_of(pool, "REQ-1")
        assert view is not None
        request = envelopes[0]
        assert view["status"] == "proposed"
        assert view["correlation_id"] == str(request.event_id)
        assert view["requested_at"] == T0.isoformat()
        assert view["updated_at"] == (T0 + timedelta(minutes=7)).isoformat()
        assert view["market_sha256"] == MARKET_SHA and view["market_uri"] == "file:///artifacts/market.json"
        assert view["requirements"]["base"]["currency"] == "EUR"
        assert view["requirements"]["targets"]["issuer_margin"] == 0.03
        assert view["constraints"]["seed"] == 20261124
        assert view["market_checks"] == [{"check": "vol surface", "status": "ok", "detail": "arbitrage free"}]
        assert [(s["stage"], s["event_id"]) for s in view["timeline"]] == [
            ("requester", str(request.event_id)),
            ("quant-researcher", str(envelopes[1].event_id)),
            ("market-strategist", str(envelopes[2].event_id)),
            ("market-strategist", str(envelopes[3].event_id)),
            ("risk-manager", str(envelopes[4].event_id)),
            ("distribution-specialist", str(envelopes[5].event_id)),
            ("compliance-officer", str(envelopes[6].event_id)),
            ("desk-integrator", str(envelopes[7].event_id)),
        ]

        # every row names the event it came from
        source = {
            "structures": "structured.structures_proposed",
            "assumptions": "structured.assumptions_validated",
            "scenarios": "structured.scenarios_generated",
            "stress": "structured.stress_tested",
            "segments": "structured.distribution_planned",
            "suitability": "structured.distribution_planned",
            "compliance": "structured.compliance_reviewed",
            "ranking": "structured.product_proposal_published",
        }
        for key, event_type in source.items():
            assert {r["event_id"] for r in view[key]} == {str(by_type[event_type].event_id)}, key

        # structures in ranking order, with their metrics
        assert [s["structure_id"] for s in view["structures"]] == ["AC-60-8", "AC-50-7", "AC-70-9"]
        first = view["structures"][0]
        assert first["price"] == 0.965 and first["issuer_margin"] == pytest.approx(0.035)
        assert first["greeks"] == {"delta": [0.4], "vega": [-0.1]} and first["meets_targets"] is True
        assert first["spec"]["name"] == "AC-60-8" and first["autocall_by_date"] == [0.5, 0.15, 0.07, 0.0]
        assert [(r["structure_id"], r["rank"], r["eligible"]) for r in view["ranking"]] == [
            ("AC-60-8", 1, True),
            ("AC-50-7", 2, True),
            ("AC-70-9", 3, False),
        ]
        stress = {s["structure_id"]: s for s in view["stress"]}
        assert (stress["AC-70-9"]["passes"], stress["AC-70-9"]["breaches"]) == (False, ["capital_at_risk"])
        assert (stress["AC-60-8"]["var_99"], stress["AC-60-8"]["es_99"]) == (0.02, 0.025)
        assert stress["AC-60-8"]["hedge"]["within_targets"] is True
        rejected = {a["structure_id"]: a for a in view["assumptions"]}["AC-70-9"]
        assert rejected["accepted"] is False and rejected["rejected"][0]["scenarios"] == ["fwd-12-stressed"]
        assert [s["scenario_id"] for s in view["scenarios"]] == [
            "fwd-12-calm",
            "fwd-12-stressed",
            "hist-2008",
            "fwd-36-calm",
        ]
        assert view["scenarios"][0]["figures"]["equity_return"] == {"SX5E": 0.05}
        assigned = {
            (c["segment_id"], c["structure_id"]): c["value_proposition"] for c in view["suitability"] if c["assigned"]
        }
        assert assigned == {("SEG-A", "AC-60-8"): "8% with protection", ("SEG-B", "AC-50-7"): "deep barrier"}
        assert {s["segment_id"]: s["size"] for s in view["segments"]} == {"SEG-A": 900, "SEG-B": 600}
        assert view["segments"][0]["attributes"]["jurisdictions"] == ["DE", "FR"]
        decisions = {c["structure_id"]: c for c in view["compliance"]}
        assert {k: c["decision"] for k, c in decisions.items()} == {
            "AC-60-8": "approve",
            "AC-70-9": "reject",
            "AC-50-7": "approve_with_conditions",
        }
        assert {c["rulebook_version"] for c in view["compliance"]} == {"2026.1"}
        assert [r["effect"] for r in decisions["AC-70-9"]["rules_fired"]] == ["block", "warning"]
        assert decisions["AC-60-8"]["kid"] == {"sri": 4, "mrm": 4, "crm": 2}
        assert view["recommendation"] == RECOMMENDED
        assert view["proposal"]["segments"] == ["SEG-A"] and view["proposal"]["pareto_set"] == ["AC-60-8", "AC-50-7"]
        assert [d["kind"] for d in view["proposal"]["documents"]] == ["kid", "term_sheet"]
        assert "narrative" in view["proposal"] and "ranking" not in view["proposal"]

        async with pool.acquire() as conn:
            assert await request_view(conn, "REQ-unknown") is None
            [listed] = await recent_requests(conn)
        assert (listed["request_id"], listed["status"], listed["structures"]) == ("REQ-1", "proposed", 3)
        assert listed["recommendation"] == RECOMMENDED


async def test_status_follows_the_stages(database_url: str) -> None:
    transport = memory_transport()
    envelopes = full_request("REQ-S")
    async with pool_for(database_url) as pool:
        expected = ["requested", "in_progress", "in_progress", "in_progress", "in_progress", "in_progress"]
        expected += ["in_progress", "proposed"]
        for env, status in zip(envelopes, expected, strict=True):
            await publish(transport, [env])
            await run_until_caught_up(pool, transport, StructuredDeskProjection())
            view = await view_of(pool, "REQ-S")
            assert view is not None and view["status"] == status, env.type


async def test_redelivery_does_not_duplicate(database_url: str) -> None:
    transport = memory_transport()
    envelopes = full_request("REQ-R")
    await publish(transport, envelopes)
    await publish(transport, envelopes[1:3])  # published twice: the same event ids
    async with pool_for(database_url) as pool:
        [runner] = await run_until_caught_up(pool, transport, StructuredDeskProjection())
        assert runner.processed == len(envelopes)
        async with pool.acquire() as conn:
            before = await digest(conn, SCHEMA)
        rows = await counts(pool)
        view = await view_of(pool, "REQ-R")

        # a runner that lost its commits gets everything again: the runtime skips it all
        await rewind(pool, StructuredDeskProjection())
        [runner] = await run_until_caught_up(pool, transport, StructuredDeskProjection())
        assert runner.processed == 0

        # and with its processed-events record gone too, the handler's own writes are idempotent
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM processed_events WHERE actor = 'structured_desk@g1'")
        await rewind(pool, StructuredDeskProjection())
        [runner] = await run_until_caught_up(pool, transport, StructuredDeskProjection())
        assert runner.processed == len(envelopes)
        async with pool.acquire() as conn:
            assert await digest(conn, SCHEMA) == before
        assert await counts(pool) == rows
        assert await view_of(pool, "REQ-R") == view


async def test_a_rejection_before_the_request_is_kept(database_url: str) -> None:
    transport = memory_transport()
    [reject] = chain([rejection("REQ-X", agent="quant-researcher")], start=T0 + timedelta(minutes=5))
    [request] = chain([requested("REQ-X")])
    await publish(transport, [reject])
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, StructuredDeskProjection())
        view = await view_of(pool, "REQ-X")
        assert view is not None
        assert (view["status"], view["requested_at"], view["requirements"]) == ("rejected", None, None)
        assert (view["rejected_by"], view["rejected_field"]) == (
            "quant-researcher",
            "requirements.limits.capital_at_risk",
        )
        assert view["rejected_reason"].startswith("no structure can meet")

        await publish(transport, [request])  # the request arrives afterwards
        await run_until_caught_up(pool, transport, StructuredDeskProjection())
        view = await view_of(pool, "REQ-X")
        assert view is not None
        assert view["status"] == "rejected"  # the rejection stands
        assert view["requested_at"] == T0.isoformat()
        assert view["updated_at"] == (T0 + timedelta(minutes=5)).isoformat()  # the latest event, not the last folded
        assert view["correlation_id"] == str(request.event_id)
        assert [(s["stage"], s["event_id"]) for s in view["timeline"]] == [
            ("requester", str(request.event_id)),
            ("quant-researcher", str(reject.event_id)),
        ]


async def test_a_later_answer_replaces_the_stage_rows(database_url: str) -> None:
    transport = memory_transport()
    first = chain([requested("REQ-T"), structures("REQ-T")])
    [again] = chain([structures("REQ-T", ids=("AC-60-8", "AC-80-10"))], start=T0 + timedelta(hours=1))
    await publish(transport, [*first, again])
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, StructuredDeskProjection())
        view = await view_of(pool, "REQ-T")
        assert view is not None
        assert sorted(s["structure_id"] for s in view["structures"]) == ["AC-60-8", "AC-80-10"]
        assert {s["event_id"] for s in view["structures"]} == {str(again.event_id)}
        assert view["status"] == "in_progress"


# -- replay ----------------------------------------------------------------------------------


async def test_rebuild_gives_the_same_desk_view(database_url: str) -> None:
    transport = memory_transport()
    await publish(transport, full_request("REQ-1"))
    await publish(transport, full_request("REQ-2", start=T0 + timedelta(days=1))[:5])
    await publish(transport, chain([rejection("REQ-3")]))
    async with pool_for(database_url) as pool:
        await run_until_caught_up(pool, transport, StructuredDeskProjection())
        async with pool.acquire() as conn:
            live = await digest(conn, SCHEMA)
            listed = await recent_requests(conn)
        assert set(live) == {"structured_requests", *(t.name for t in TABLES)}
        assert [(r["request_id"], r["status"]) for r in listed] == [
            ("REQ-2", "in_progress"),
            ("REQ-1", "proposed"),
            ("REQ-3", "rejected"),
        ]
        views = {r: await view_of(pool, r) for r in ("REQ-1", "REQ-2", "REQ-3")}

        report = await rebuild(transport, pool, projections=[StructuredDeskProjection])

        assert report.digests == {"structured_desk": live}
        [entry] = report.projections
        assert (entry.previous_generation, entry.generation, entry.events) == (1, 2, 14)
        async with pool.acquire() as conn:
            assert await active_generation(conn, "structured_desk") == 2
            assert await digest(conn, "proj_structured_desk_g2") == live
        assert {r: await view_of(pool, r) for r in views} == views  # queries now read generation 2
        assert [s["structure_id"] for s in views["REQ-1"]["structures"]] == [RECOMMENDED, "AC-50-7", "AC-70-9"]
        assert sorted(STRUCTURE_IDS) == sorted(s["structure_id"] for s in views["REQ-2"]["structures"])
