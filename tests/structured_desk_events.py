"""A hand-built design request of the structured desk, event by event, for the desk view's tests.

Three structures (AC-60-8 is recommended, AC-70-9 fails the stress test and is rejected by
compliance, AC-50-7 is approved with conditions), two client segments, four scenarios. Each event
is built from its pydantic model and wrapped with the catalog's envelope helper, caused by the one
before it and correlated with the request, a minute apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import bus.events  # noqa: F401  (registers the event types)
from bus.catalog import CATALOG, Event
from bus.envelope import Envelope
from bus.events.common import ArtifactRef
from bus.events.narrative import Narrative
from bus.events.structured import (
    Assignment,
    AssumptionsValidated,
    ClientSegment,
    ComplianceDecision,
    ComplianceReviewed,
    DesignRequirements,
    DistributionPlanned,
    DocumentRef,
    FiredRule,
    HedgeProposal,
    MarketCheck,
    MarketScenario,
    ProductDesignRejected,
    ProductDesignRequested,
    ProductProposalPublished,
    RankedStructure,
    RejectedAssumption,
    Rulebook,
    ScenariosGenerated,
    StressTested,
    StructureAssumptions,
    StructureFigures,
    StructuresProposed,
    StructureStress,
    Suitability,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MARKET_SHA = "1" * 64
RULEBOOK_SHA = "ab" * 32
STRUCTURE_IDS = ("AC-60-8", "AC-70-9", "AC-50-7")
RECOMMENDED = "AC-60-8"
NARRATIVE = Narrative(text="Figures from the engines, explained.", source="template")
BASE = {"name": "EURO STOXX autocall", "underlyings": ["SX5E"], "currency": "EUR", "maturity_years": 5}


def _artifact(name: str, media_type: str) -> ArtifactRef:
    return ArtifactRef(uri=f"file:///artifacts/{name}", sha256=(name.encode().hex() * 64)[:64], media_type=media_type)


KID = DocumentRef(kind="kid", format="html", artifact=_artifact("kid-AC-60-8.html", "text/html"))
TERM_SHEET = DocumentRef(kind="term_sheet", format="pdf", artifact=_artifact("ts-AC-60-8.pdf", "application/pdf"))


def requested(request_id: str) -> ProductDesignRequested:
    return ProductDesignRequested(
        request_id=request_id,
        requirements=DesignRequirements(base=BASE),
        market_ref=_artifact("market.json", "application/json").model_copy(update={"sha256": MARKET_SHA}),
    )


def _figures(sid: str, price: float, score: float) -> StructureFigures:
    return StructureFigures(
        structure_id=sid,
        spec={**BASE, "name": sid},
        price=price,
        stderr=0.002,
        issuer_margin=1 - price,
        coupon_rate=0.08,
        fair_coupon=0.081,
        autocall_probability=0.72,
        autocall_by_date=[0.5, 0.15, 0.07, 0.0],
        expected_life_years=2.1,
        knock_in_probability=0.12,
        capital_loss_probability=0.09,
        irr_mean=0.041,
        irr_median=0.08,
        greeks={"delta": [0.4], "vega": [-0.1]},
        target_score=score,
        meets_targets=score > 0.6,
        target_gaps={"issuer_margin": 1 - price - 0.03},
    )


def structures(request_id: str, ids: tuple[str, ...] = STRUCTURE_IDS) -> StructuresProposed:
    prices = {"AC-60-8": 0.965, "AC-70-9": 0.95, "AC-50-7": 0.975}
    scores = {"AC-60-8": 0.9, "AC-70-9": 0.5, "AC-50-7": 0.7}
    return StructuresProposed(
        request_id=request_id,
        structures=[_figures(s, prices.get(s, 0.97), scores.get(s, 0.6)) for s in ids],
        paths=10_000,
        seed=20261124,
        compute_request_id=f"{request_id}/price",
        market_sha256=MARKET_SHA,
        narrative=NARRATIVE,
    )


def scenarios(request_id: str) -> ScenariosGenerated:
    def scenario(sid: str, kind: Any, regime: str, months: int, p: float) -> MarketScenario:
        return MarketScenario(
            scenario_id=sid,
            kind=kind,
            regime=regime,
            horizon_months=months,
            probability=p,
            equity_return={"SX5E": -0.1 if regime == "stressed" else 0.05},
            realised_vol={"SX5E": 0.3},
            correlation=0.6,
            rate_shift=0.0,
        )

    return ScenariosGenerated(
        request_id=request_id,
        horizons_months=[12, 36],
        scenarios=[
            scenario("fwd-12-calm", "forward", "calm", 12, 0.7),
            scenario("fwd-12-stressed", "forward", "stressed", 12, 0.3),
            scenario("fwd-36-calm", "forward", "calm", 36, 1.0),
            scenario("hist-2008", "historical", "crisis", 12, 0.0),
        ],
        seed=7,
        narrative=NARRATIVE,
    )


def assumptions(request_id: str) -> AssumptionsValidated:
    return AssumptionsValidated(
        request_id=request_id,
        market_checks=[MarketCheck(check="vol surface", status="ok", detail="arbitrage free")],
        structures=[
            StructureAssumptions(structure_id="AC-60-8", accepted=True),
            StructureAssumptions(
                structure_id="AC-70-9",
                accepted=False,
                rejected=[RejectedAssumption(assumption="flat vol", reason="skew", scenarios=["fwd-12-stressed"])],
            ),
            StructureAssumptions(structure_id="AC-50-7", accepted=True),
        ],
        narrative=NARRATIVE,
    )


def stress(request_id: str) -> StressTested:
    def result(sid: str, car: float) -> StructureStress:
        passes = car <= 0.05
        return StructureStress(
            structure_id=sid,
            var={"0.95": 0.01, "0.99": 0.02, "0.999": 0.035},
            es={"0.95": 0.015, "0.99": 0.025, "0.999": 0.04},
            stressed_var_99=0.04,
            gap_risk=0.01,
            trigger_risk=0.003,
            capital_at_risk=car,
            capital_at_risk_delta_hedged=car,
            capital_at_risk_unhedged=2 * car,
            worst_scenario="crash-30",
            hedge=HedgeProposal(
                instruments=[{"instrument": "future", "underlying": "SX5E", "quantity": -0.4}],
                residual={"delta": [0.01], "gamma": [0.0], "vega": [0.0]},
                targets={"delta": 0.05, "gamma": 0.05, "vega": 0.05},
                within_targets=True,
            ),
            passes=passes,
            breaches=[] if passes else ["capital_at_risk"],
        )

    return StressTested(
        request_id=request_id,
        scenario_count=320,
        paths=10_000,
        seed=20261124,
        limits={"capital_at_risk": 0.05},
        results=[result("AC-60-8", 0.03), result("AC-70-9", 0.08), result("AC-50-7", 0.04)],
        compute_request_id=f"{request_id}/stress",
        narrative=NARRATIVE,
    )


def distribution(request_id: str) -> DistributionPlanned:
    def segment(sid: str, label: str, size: int) -> ClientSegment:
        return ClientSegment(
            segment_id=sid,
            label=label,
            size=size,
            risk_tolerance="medium",
            horizon_years=5,
            sophistication="informed",
            median_portfolio=250_000,
            jurisdictions=["DE", "FR"],
        )

    scores = {("AC-60-8", "SEG-A"): 0.82, ("AC-60-8", "SEG-B"): 0.55, ("AC-70-9", "SEG-A"): 0.3}
    scores |= {("AC-70-9", "SEG-B"): 0.41, ("AC-50-7", "SEG-A"): 0.6, ("AC-50-7", "SEG-B"): 0.77}
    return DistributionPlanned(
        request_id=request_id,
        client_base="sample",
        client_count=1500,
        segments=[segment("SEG-A", "Balanced savers", 900), segment("SEG-B", "Yield seekers", 600)],
        suitability=[
            Suitability(structure_id=t, segment_id=s, score=v, reasons=["horizon"]) for (t, s), v in scores.items()
        ],
        assignments=[
            Assignment(segment_id="SEG-A", structure_id="AC-60-8", score=0.82, value_proposition="8% with protection"),
            Assignment(segment_id="SEG-B", structure_id="AC-50-7", score=0.77, value_proposition="deep barrier"),
        ],
        narrative=NARRATIVE,
    )


def compliance(request_id: str) -> ComplianceReviewed:
    return ComplianceReviewed(
        request_id=request_id,
        rulebook=Rulebook(name="eu-retail", version="2026.1", sha256=RULEBOOK_SHA),
        decisions=[
            ComplianceDecision(
                structure_id="AC-60-8",
                decision="approve",
                rules_fired=[FiredRule(rule_id="W-1", effect="warning", message="complex product")],
                target_market=["SEG-A", "SEG-B"],
                kid={"sri": 4, "mrm": 4, "crm": 2},
                documents=[KID, TERM_SHEET],
            ),
            ComplianceDecision(
                structure_id="AC-70-9",
                decision="reject",
                rules_fired=[
                    FiredRule(rule_id="B-7", effect="block", message="capital at risk over limit"),
                    FiredRule(rule_id="W-1", effect="warning", message="complex product"),
                ],
                negative_target_market=["SEG-A"],
            ),
            ComplianceDecision(
                structure_id="AC-50-7",
                decision="approve_with_conditions",
                rules_fired=[FiredRule(rule_id="C-2", effect="condition", message="advice only", segment_id="SEG-B")],
                conditions=["advised sales only"],
                target_market=["SEG-B"],
            ),
        ],
        narrative=NARRATIVE,
    )


def proposal(request_id: str) -> ProductProposalPublished:
    components = {"client_value": 0.8, "issuer_margin": 0.7, "risk": 0.9, "distribution": 0.8, "compliance": 1.0}
    return ProductProposalPublished(
        request_id=request_id,
        weights={"client_value": 0.3, "issuer_margin": 0.2, "risk": 0.2, "distribution": 0.2, "compliance": 0.1},
        ranking=[
            RankedStructure(
                structure_id="AC-60-8",
                score=0.81,
                components=components,
                pareto_optimal=True,
                eligible=True,
                segments=["SEG-A"],
            ),
            RankedStructure(
                structure_id="AC-50-7",
                score=0.7,
                components=components,
                pareto_optimal=True,
                eligible=True,
                segments=["SEG-B"],
            ),
            RankedStructure(
                structure_id="AC-70-9", score=0.4, components=components, pareto_optimal=False, eligible=False
            ),
        ],
        pareto_set=["AC-60-8", "AC-50-7"],
        recommendation=RECOMMENDED,
        segments=["SEG-A"],
        rationale="Best client value within the risk limits, approved for balanced savers.",
        documents=[KID, TERM_SHEET],
        narrative=NARRATIVE,
    )


def rejection(request_id: str, agent: str = "risk-manager") -> ProductDesignRejected:
    return ProductDesignRejected(
        request_id=request_id,
        agent=agent,
        field="requirements.limits.capital_at_risk",
        reason="no structure can meet a capital-at-risk limit of 0.1%",
    )


PRODUCERS = {
    ProductDesignRequested: "risklab-cli",
    StructuresProposed: "quant-researcher@1",
    ScenariosGenerated: "market-strategist@1",
    AssumptionsValidated: "market-strategist@1",
    StressTested: "risk-manager@1",
    DistributionPlanned: "distribution-specialist@1",
    ComplianceReviewed: "compliance-officer@1",
    ProductProposalPublished: "desk-integrator@1",
    ProductDesignRejected: "risk-manager@1",
}


def chain(events: list[Event], *, start: datetime = T0) -> list[Envelope]:
    """The events as envelopes of one correlation (the first event's id), each caused by the one
    before it, a minute apart."""
    out: list[Envelope] = []
    for i, event in enumerate(events):
        prev = out[-1] if out else None
        out.append(
            CATALOG.envelope(
                event,
                producer=PRODUCERS[type(event)],
                correlation_id=out[0].event_id if out else None,
                causation_id=prev.event_id if prev else None,
                occurred_at=start + timedelta(minutes=i),
            )
        )
    return out


def full_request(request_id: str, *, start: datetime = T0) -> list[Envelope]:
    """Every stage of a request that ends with a proposal, in the desk's order."""
    events: list[Event] = [
        requested(request_id),
        structures(request_id),
        scenarios(request_id),
        assumptions(request_id),
        stress(request_id),
        distribution(request_id),
        compliance(request_id),
        proposal(request_id),
    ]
    return chain(events, start=start)
