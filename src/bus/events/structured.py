"""Events of the structured-products desk, all on `desk.structured` and keyed by the design request.

A user publishes `ProductDesignRequested`; the quant researcher answers with
`StructuresProposed`; the market strategist with `ScenariosGenerated` and `AssumptionsValidated`;
the risk manager, once it has both, with `StressTested`; the distribution specialist with
`DistributionPlanned`; the compliance officer with `ComplianceReviewed`; and the desk integrator
ends the request with `ProductProposalPublished`. Any agent that finds the request cannot be
served ends it with `ProductDesignRejected`, naming the field and the reason.

Figures are fractions of notional unless a field says otherwise (0.03 = 3% of notional); rates
and returns are decimals per annum. Product specs travel as the engine's `AutocallSpec` JSON
(schema in schemas/structured.autocall_spec/).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bus.catalog import CATALOG, Event
from bus.events.common import ArtifactRef, Finite, Identifier
from bus.events.narrative import Narrative
from bus.topics import DESK_STRUCTURED

STAGES = ("quant-researcher", "market-strategist", "risk-manager", "distribution-specialist", "compliance-officer")


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DesignTargets(_Part):
    """What the desk optimises toward."""

    client_return: float = Field(0.08, gt=0, le=1.0, description="Target coupon per annum for the client.")
    autocall_probability: float = Field(0.7, ge=0, le=1, description="Target probability of early redemption.")
    issuer_margin: float = Field(0.03, ge=0, le=0.2, description="Target issuer margin, fraction of notional.")
    max_gap_risk: float = Field(0.02, gt=0, le=1, description="Largest acceptable gap risk, fraction of notional.")


class RiskLimits(_Part):
    """Limits the risk manager checks each structure against."""

    capital_at_risk: float = Field(0.05, gt=0, le=1, description="Largest stressed loss of the hedged issuer.")
    var_99: float | None = Field(None, gt=0, le=1, description="Largest 99% VaR of the issuer held to maturity.")


class DesignRequirements(_Part):
    """The product asked for: a base note, the design grid to vary it over, targets and limits."""

    base: dict[str, Any] = Field(description="The base note as an AutocallSpec (underlyings, currency, maturity...).")
    grid: dict[str, Any] | None = Field(None, description="The design grid (LabGrid); default: the lab's grid.")
    targets: DesignTargets = DesignTargets()
    limits: RiskLimits = RiskLimits()


class DesignConstraints(_Part):
    """How much work to do and how to split it."""

    min_variations: int = Field(75, ge=1, le=2000, description="Fewest variations the grid must produce.")
    paths: int = Field(10_000, ge=256, le=5_000_000, description="Monte Carlo paths for pricing and stress.")
    seed: int = Field(20261124, ge=0, description="Seed of every simulation of the request (recorded).")
    chunks: int = Field(4, ge=1, le=256, description="Compute chunks per engine request.")
    stress_scenarios: int | None = Field(
        None, ge=1, le=320, description="Use only the first N of the 320 stress scenarios (quick looks); None: all."
    )
    documents_for: int = Field(
        5, ge=1, le=2000, description="How many of the best-scoring structures get a KID and term sheet."
    )


class ProductDesignRequested(
    Event, type="structured.product_design_requested", version=1, topic=DESK_STRUCTURED, key="request_id"
):
    """A user asks the desk to design, price, stress, distribute and document an autocallable."""

    request_id: Identifier
    requirements: DesignRequirements
    market_ref: ArtifactRef = Field(description="The market data (MarketData JSON) in the artifact store.")
    client_base: str = Field(
        "sample", min_length=1, max_length=2000, description='"sample" (the bundled base) or an artifact URI.'
    )
    constraints: DesignConstraints = DesignConstraints()


class StructureFigures(_Part):
    """One variation as priced by the engines."""

    structure_id: str = Field(min_length=1, max_length=300)
    spec: dict[str, Any]
    price: Finite
    stderr: Finite = Field(ge=0)
    issuer_margin: Finite = Field(description="1 - price: what the issuer keeps when selling at par.")
    coupon_rate: Finite
    fair_coupon: Finite | None = Field(description="Coupon p.a. that gives the target issuer margin.")
    autocall_probability: Finite = Field(ge=0, le=1, description="Probability of any early redemption.")
    autocall_by_date: list[float] = Field(description="Probability of redemption at each observation date.")
    expected_life_years: Finite
    knock_in_probability: Finite = Field(ge=0, le=1)
    capital_loss_probability: Finite = Field(ge=0, le=1)
    irr_mean: Finite = Field(description="Mean client IRR p.a.")
    irr_median: Finite
    greeks: dict[str, Any]
    target_score: Finite = Field(ge=0, le=1, description="1 = on every target; 0 = far from all.")
    meets_targets: bool
    target_gaps: dict[str, float] = Field(description="Distance to each target (figure - target).")


class StructuresProposed(
    Event, type="structured.structures_proposed", version=1, topic=DESK_STRUCTURED, key="request_id"
):
    """The quant researcher's priced variations, scored against the request's targets."""

    request_id: Identifier
    structures: list[StructureFigures] = Field(min_length=1)
    paths: int
    seed: int
    compute_request_id: str
    market_sha256: str
    narrative: Narrative


class MarketScenario(_Part):
    """A forward-looking or historical scenario at one horizon."""

    scenario_id: str = Field(min_length=1, max_length=200)
    kind: Literal["forward", "historical"]
    regime: str = Field(description="Market regime, e.g. calm, stressed, crisis, recovery.")
    horizon_months: int = Field(ge=1, le=120)
    probability: Finite = Field(ge=0, le=1, description="Weight of the scenario among those of its horizon.")
    equity_return: dict[str, float] = Field(description="Return of each underlying over the horizon.")
    realised_vol: dict[str, float] = Field(description="Annualised volatility of each underlying over the horizon.")
    correlation: Finite = Field(ge=-1, le=1, description="Average pairwise correlation in the regime.")
    rate_shift: Finite = Field(description="Parallel shift of the rate curve, decimal.")
    description: str = ""


class ScenariosGenerated(
    Event, type="structured.scenarios_generated", version=1, topic=DESK_STRUCTURED, key="request_id"
):
    """The market strategist's scenario set for a request."""

    request_id: Identifier
    horizons_months: list[int]
    scenarios: list[MarketScenario] = Field(min_length=1)
    seed: int
    narrative: Narrative


class MarketCheck(_Part):
    check: str
    status: Literal["ok", "warning", "failed"]
    detail: str


class RejectedAssumption(_Part):
    assumption: str
    reason: str
    scenarios: list[str] = Field(default_factory=list, description="Scenario ids that contradict it.")


class StructureAssumptions(_Part):
    structure_id: str
    accepted: bool
    rejected: list[RejectedAssumption] = Field(default_factory=list)


class AssumptionsValidated(
    Event, type="structured.assumptions_validated", version=1, topic=DESK_STRUCTURED, key="request_id"
):
    """The market strategist's verdict on the market data and on each structure's pricing assumptions."""

    request_id: Identifier
    market_checks: list[MarketCheck]
    structures: list[StructureAssumptions]
    narrative: Narrative


class HedgeProposal(_Part):
    """The issuer's hedge and the Greeks left after it, against the desk's targets."""

    instruments: list[dict[str, Any]] = Field(description="Hedge legs: instrument, underlying, quantity (notional).")
    residual: dict[str, list[float]] = Field(description="delta, gamma, vega per underlying after the hedge.")
    targets: dict[str, float] = Field(description="Absolute bounds: delta, gamma, vega.")
    within_targets: bool


class StructureStress(_Part):
    structure_id: str
    var: dict[str, float] = Field(description="Issuer VaR held to maturity at 95/99/99.9% (base market).")
    es: dict[str, float]
    stressed_var_99: Finite = Field(description="Worst 99% VaR over the stress scenarios.")
    gap_risk: Finite
    trigger_risk: Finite = Field(description="Largest |gamma| near the trigger and the barrier.")
    capital_at_risk: Finite
    capital_at_risk_delta_hedged: Finite
    capital_at_risk_unhedged: Finite
    worst_scenario: str
    hedge: HedgeProposal
    passes: bool
    breaches: list[str] = Field(default_factory=list, description="Each limit or target the structure breaches.")


class StressTested(Event, type="structured.stress_tested", version=1, topic=DESK_STRUCTURED, key="request_id"):
    """The risk manager's stress results per structure, with pass/fail against the request's limits."""

    request_id: Identifier
    scenario_count: int = Field(ge=1)
    paths: int
    seed: int
    limits: RiskLimits
    results: list[StructureStress] = Field(min_length=1)
    report_ref: ArtifactRef | None = Field(None, description="The full stress report (P&L per scenario).")
    compute_request_id: str
    narrative: Narrative


class ClientSegment(_Part):
    segment_id: str
    label: str
    size: int = Field(ge=1)
    risk_tolerance: str
    horizon_years: Finite
    sophistication: str
    median_portfolio: Finite = Field(description="Median portfolio size, in the note's currency.")
    jurisdictions: list[str]


class Suitability(_Part):
    structure_id: str
    segment_id: str
    score: Finite = Field(ge=0, le=1)
    reasons: list[str] = Field(default_factory=list)


class Assignment(_Part):
    segment_id: str
    structure_id: str
    score: Finite
    value_proposition: str


class DistributionPlanned(
    Event, type="structured.distribution_planned", version=1, topic=DESK_STRUCTURED, key="request_id"
):
    """The distribution specialist's segments, suitability matrix and variant-to-segment plan."""

    request_id: Identifier
    client_base: str
    client_count: int = Field(ge=1)
    segments: list[ClientSegment] = Field(min_length=1)
    suitability: list[Suitability]
    assignments: list[Assignment]
    narrative: Narrative


class FiredRule(_Part):
    rule_id: str
    effect: Literal["block", "condition", "warning"]
    message: str
    segment_id: str | None = None


class DocumentRef(_Part):
    kind: Literal["term_sheet", "kid"]
    format: Literal["html", "pdf"]
    artifact: ArtifactRef


class ComplianceDecision(_Part):
    structure_id: str
    decision: Literal["approve", "approve_with_conditions", "reject"]
    rules_fired: list[FiredRule]
    conditions: list[str] = Field(default_factory=list)
    negative_target_market: list[str] = Field(default_factory=list, description="Segments it must never reach.")
    target_market: list[str] = Field(default_factory=list, description="Segments it may be offered to.")
    kid: dict[str, Any] | None = Field(None, description="PRIIPs indicators: MRM, CRM, SRI, performance scenarios.")
    documents: list[DocumentRef] = Field(default_factory=list)


class Rulebook(_Part):
    name: str
    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ComplianceReviewed(
    Event, type="structured.compliance_reviewed", version=1, topic=DESK_STRUCTURED, key="request_id"
):
    """The compliance officer's decision per structure and every rule that fired, under one rulebook version."""

    request_id: Identifier
    rulebook: Rulebook
    decisions: list[ComplianceDecision] = Field(min_length=1)
    narrative: Narrative


class RankedStructure(_Part):
    structure_id: str
    score: Finite
    components: dict[str, float] = Field(description="client_value, issuer_margin, risk, distribution, compliance.")
    pareto_optimal: bool
    eligible: bool = Field(description="Passes risk and is approved by compliance for at least one segment.")
    segments: list[str] = Field(default_factory=list, description="Segments it is proposed to.")


class ProductProposalPublished(
    Event, type="structured.product_proposal_published", version=1, topic=DESK_STRUCTURED, key="request_id"
):
    """The desk's ranked recommendation for a request, with its rationale and documents."""

    request_id: Identifier
    weights: dict[str, float]
    ranking: list[RankedStructure] = Field(min_length=1)
    pareto_set: list[str]
    recommendation: str | None = Field(description="The recommended structure, or None when none is eligible.")
    segments: list[str] = Field(default_factory=list, description="Segments the recommendation is proposed to.")
    rationale: str
    documents: list[DocumentRef] = Field(default_factory=list)
    narrative: Narrative


class ProductDesignRejected(
    Event, type="structured.product_design_rejected", version=1, topic=DESK_STRUCTURED, key="request_id"
):
    """The desk cannot serve a request: which agent said so, which field, and why."""

    request_id: Identifier
    agent: str = Field(min_length=1, max_length=100)
    field: str | None = Field(None, max_length=300, description="The request field at fault, if one is.")
    reason: str = Field(min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _known_agent(self) -> ProductDesignRejected:
        if self.agent not in (*STAGES, "desk-integrator"):
            raise ValueError(f"agent {self.agent!r} is not one of the desk's agents")
        return self


DESK_EVENTS: tuple[type[Event], ...] = (
    ProductDesignRequested,
    StructuresProposed,
    ScenariosGenerated,
    AssumptionsValidated,
    StressTested,
    DistributionPlanned,
    ComplianceReviewed,
    ProductProposalPublished,
    ProductDesignRejected,
)
"""The desk's event types in the order a request goes through them (a rejection may end it anywhere)."""
for _model in DESK_EVENTS:
    CATALOG.register(_model)

__all__ = [
    "ArtifactRef",
    "AssumptionsValidated",
    "ComplianceReviewed",
    "DistributionPlanned",
    "Narrative",
    "ProductDesignRejected",
    "ProductDesignRequested",
    "ProductProposalPublished",
    "ScenariosGenerated",
    "StressTested",
    "StructuresProposed",
]
