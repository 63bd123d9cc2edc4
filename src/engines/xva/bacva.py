"""BA-CVA: the basic approach to capital for CVA risk (MAR50.12-26 of the Basel Framework, 2020 revision).

Reduced version (no hedges recognised), MAR50.14-16:

    SCVA_c    = RW_c / alpha x sum_NS M_NS x EAD_NS x DF_NS          alpha = 1.4
    DF_NS     = (1 - exp(-5% M_NS)) / (5% M_NS), or 1 for an EAD computed with IMM
    K_reduced = sqrt((rho sum_c SCVA_c)^2 + (1 - rho^2) sum_c SCVA_c^2)      rho = 50%
    capital   = DS x K_reduced                                      DS = 0.65

Full version (eligible hedges: single-name CDS, single-name contingent CDS, index CDS), MAR50.17-26:

    SNH_c    = sum_h r_hc x RW_h x M_h x B_h x DF_h         single-name hedges of counterparty c
    HMA_c    = sum_h (1 - r_hc^2) x (RW_h x M_h x B_h x DF_h)^2
    IH       = sum_i RW_i x M_i x B_i x DF_i                index hedges, RW_i = 0.7 x the constituents' RW
    K_hedged = sqrt((rho sum_c (SCVA_c - SNH_c) - IH)^2 + (1 - rho^2) sum_c (SCVA_c - SNH_c)^2 + sum_c HMA_c)
    K_full   = beta x K_reduced + (1 - beta) x K_hedged      beta = 25%
    capital  = DS x K_full

r_hc is 100% when the hedge references the counterparty, 80% when it references a name legally related to
it, 50% when it references a name of the counterparty's sector and region (MAR50.26). An index whose
constituents share one sector and credit quality takes that risk weight; otherwise the name-weighted
average of the constituents' risk weights; either way times 0.7 (MAR50.25). RWA = 12.5 x capital.

EAD_NS is the netting set's exposure at default for counterparty credit risk (SA-CCR or IMM; alpha is
divided out in SCVA), M_NS its effective maturity (MAR50.15: as in CRE32 without the 5-year cap). Risk
weights (MAR50.16) by sector and credit quality, high yield and not rated sharing a column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

Sector = Literal[
    "sovereign", "local_government", "financial", "basic_materials", "consumer", "technology", "health_care", "other"
]
CreditQuality = Literal["IG", "HY", "NR"]
Relation = Literal["direct", "legally_related", "sector_region"]

ALPHA = 1.4
RHO = 0.50
BETA = 0.25
DISCOUNT_SCALAR = 0.65
SUPERVISORY_RATE = 0.05
INDEX_SCALE = 0.7
RWA_PER_CAPITAL = 12.5

RISK_WEIGHTS: dict[str, tuple[float, float]] = {
    "sovereign": (0.005, 0.020),  # sovereigns including central banks and multilateral development banks
    "local_government": (0.010, 0.040),  # local government, government-backed non-financials, education, public admin
    "financial": (0.050, 0.120),  # financials including government-backed financials
    "basic_materials": (0.030, 0.070),  # basic materials, energy, industrials, agriculture, manufacturing, mining
    "consumer": (0.030, 0.085),  # consumer goods and services, transportation and storage, admin and support
    "technology": (0.020, 0.055),  # technology, telecommunications
    "health_care": (0.015, 0.050),  # health care, utilities, professional and technical activities
    "other": (0.050, 0.120),  # other sector
}
"""MAR50.16: (investment grade, high yield and not rated) risk weight per sector."""
HEDGE_CORRELATION: dict[str, float] = {"direct": 1.00, "legally_related": 0.80, "sector_region": 0.50}
"""MAR50.26: r_hc by the relation of the hedge's reference name to the counterparty."""

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def risk_weight(sector: str, credit_quality: str) -> float:
    """The MAR50.16 risk weight of a name of `sector` and `credit_quality` (IG, HY or NR)."""
    ig, other = RISK_WEIGHTS[sector]
    return ig if credit_quality == "IG" else other


def supervisory_discount_factor(maturity_years: np.ndarray | float) -> np.ndarray:
    """DF = (1 - exp(-5% M)) / (5% M) (MAR50.15, MAR50.23)."""
    m = np.asarray(maturity_years, dtype=np.float64)
    return -np.expm1(-SUPERVISORY_RATE * m) / (SUPERVISORY_RATE * m)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NettingSetExposure(_Model):
    """A netting set's exposure at default and effective maturity."""

    id: str = Field("netting-set", min_length=1, max_length=200)
    ead: NonNegative = Field(description="EAD for counterparty credit risk (SA-CCR or IMM), alpha included.")
    maturity_years: Positive = Field(description="M_NS: effective maturity in years (no 5-year cap).")
    imm: bool = Field(False, description="EAD computed with the internal model method: DF = 1.")


class Counterparty(_Model):
    """A counterparty: sector, credit quality and its netting sets."""

    id: str = Field(min_length=1, max_length=200)
    sector: Sector
    credit_quality: CreditQuality
    netting_sets: list[NettingSetExposure] = Field(min_length=1)


class SingleNameHedge(_Model):
    """A single-name CDS (or contingent CDS) bought to hedge a counterparty's CVA risk."""

    type: Literal["single_name"] = "single_name"
    id: str = Field(min_length=1, max_length=200)
    counterparty: str = Field(description="Id of the counterparty hedged.")
    relation: Relation = Field(description="The hedge's reference name is the counterparty, related, or a peer.")
    notional: Positive
    maturity_years: Positive
    sector: Sector | None = Field(None, description="Sector of the reference name (not for a direct hedge).")
    credit_quality: CreditQuality | None = Field(None, description="Its credit quality (not for a direct hedge).")
    contingent: bool = False

    @model_validator(mode="after")
    def _reference_name(self) -> SingleNameHedge:
        if self.relation == "direct":
            for name in ("sector", "credit_quality"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: a direct hedge references the counterparty; its risk weight is theirs")
        else:
            for name in ("sector", "credit_quality"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name}: required for a hedge on another name ({self.relation})")
        return self


class IndexConstituent(_Model):
    """A share of an index's names with one sector and credit quality."""

    sector: Sector
    credit_quality: CreditQuality
    weight: Positive = Field(description="Share of the index's names (normalised over the constituents).")


class IndexHedge(_Model):
    """An index CDS bought to hedge CVA risk: one sector and credit quality, or a mix of constituents."""

    type: Literal["index"] = "index"
    id: str = Field(min_length=1, max_length=200)
    notional: Positive
    maturity_years: Positive
    sector: Sector | None = None
    credit_quality: CreditQuality | None = None
    constituents: list[IndexConstituent] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_description(self) -> IndexHedge:
        single = self.sector is not None or self.credit_quality is not None
        if single == (self.constituents is not None):
            raise ValueError("constituents: give sector and credit_quality, or constituents, not both")
        if single and (self.sector is None or self.credit_quality is None):
            missing = "sector" if self.sector is None else "credit_quality"
            raise ValueError(f"{missing}: required with the other (or give constituents)")
        return self

    @property
    def risk_weight(self) -> float:
        """0.7 x the risk weight of the constituents (their name-weighted average for a mixed index)."""
        if self.constituents is None:
            return INDEX_SCALE * risk_weight(str(self.sector), str(self.credit_quality))
        total = sum(c.weight for c in self.constituents)
        average = sum(c.weight * risk_weight(c.sector, c.credit_quality) for c in self.constituents) / total
        return INDEX_SCALE * average


Hedge = Annotated[SingleNameHedge | IndexHedge, Field(discriminator="type")]


class BaCvaPortfolio(_Model):
    """Counterparties and the hedges of their CVA risk; ids unique and every hedge on a known counterparty."""

    counterparties: list[Counterparty] = Field(min_length=1)
    hedges: list[Hedge] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> BaCvaPortfolio:
        seen: dict[str, int] = {}
        for i, c in enumerate(self.counterparties):
            if c.id in seen:
                raise ValueError(f"counterparties[{i}].id: {c.id!r} is also counterparties[{seen[c.id]}]")
            seen[c.id] = i
        hedge_ids: dict[str, int] = {}
        for i, h in enumerate(self.hedges):
            if h.id in hedge_ids:
                raise ValueError(f"hedges[{i}].id: {h.id!r} is also hedges[{hedge_ids[h.id]}]")
            hedge_ids[h.id] = i
            if isinstance(h, SingleNameHedge) and h.counterparty not in seen:
                raise ValueError(f"hedges[{i}].counterparty: no counterparty {h.counterparty!r}")
        return self


class CounterpartyCapital(_Model):
    """One counterparty's terms: stand-alone CVA capital, and what its single-name hedges take off and add."""

    id: str
    risk_weight: float
    scva: float
    snh: float = 0.0
    hma: float = 0.0


class BaCvaResult(_Model):
    """BA-CVA capital and RWA with the terms of the formula."""

    version: Literal["reduced", "full"]
    k_reduced: float
    k_hedged: float | None = None
    k_full: float | None = None
    index_hedges: float = Field(0.0, description="IH.")
    systematic: float = Field(description="rho x sum (SCVA - SNH) - IH (full) or rho x sum SCVA (reduced).")
    idiosyncratic: float = Field(description="(1 - rho^2) x sum of squares of SCVA (- SNH).")
    discount_scalar: float = DISCOUNT_SCALAR
    capital: float
    rwa: float
    counterparties: list[CounterpartyCapital]


def _scva(counterparties: Sequence[Counterparty]) -> tuple[np.ndarray, np.ndarray]:
    rw = np.array([risk_weight(c.sector, c.credit_quality) for c in counterparties])
    scva = np.empty(len(counterparties))
    for i, c in enumerate(counterparties):
        m = np.array([ns.maturity_years for ns in c.netting_sets])
        ead = np.array([ns.ead for ns in c.netting_sets])
        df = np.where([ns.imm for ns in c.netting_sets], 1.0, supervisory_discount_factor(m))
        scva[i] = rw[i] / ALPHA * float(np.sum(m * ead * df))
    return rw, scva


def _k_reduced(scva: np.ndarray) -> tuple[float, float, float]:
    systematic = RHO * float(scva.sum())
    idiosyncratic = (1.0 - RHO**2) * float(np.sum(scva**2))
    return math.sqrt(systematic**2 + idiosyncratic), systematic, idiosyncratic


def ba_cva_reduced(counterparties: Sequence[Counterparty]) -> BaCvaResult:
    """Reduced BA-CVA: capital = 0.65 x K_reduced, no hedges recognised (MAR50.14)."""
    portfolio = BaCvaPortfolio(counterparties=list(counterparties))
    rw, scva = _scva(portfolio.counterparties)
    k, systematic, idiosyncratic = _k_reduced(scva)
    capital = DISCOUNT_SCALAR * k
    return BaCvaResult(
        version="reduced",
        k_reduced=k,
        systematic=systematic,
        idiosyncratic=idiosyncratic,
        capital=capital,
        rwa=RWA_PER_CAPITAL * capital,
        counterparties=[
            CounterpartyCapital(id=c.id, risk_weight=float(rw[i]), scva=float(scva[i]))
            for i, c in enumerate(portfolio.counterparties)
        ],
    )


def ba_cva_full(counterparties: Sequence[Counterparty], hedges: Sequence[SingleNameHedge | IndexHedge]) -> BaCvaResult:
    """Full BA-CVA: capital = 0.65 x (25% K_reduced + 75% K_hedged), hedges recognised (MAR50.20-26)."""
    portfolio = BaCvaPortfolio(counterparties=list(counterparties), hedges=list(hedges))
    rw, scva = _scva(portfolio.counterparties)
    k_reduced, _, _ = _k_reduced(scva)
    position = {c.id: i for i, c in enumerate(portfolio.counterparties)}
    snh = np.zeros(len(scva))
    hma = np.zeros(len(scva))
    index_hedges = 0.0
    for h in portfolio.hedges:
        df = float(supervisory_discount_factor(h.maturity_years))
        if isinstance(h, IndexHedge):
            index_hedges += h.risk_weight * h.maturity_years * h.notional * df
            continue
        c = position[h.counterparty]
        rw_h = rw[c] if h.relation == "direct" else risk_weight(str(h.sector), str(h.credit_quality))
        size = rw_h * h.maturity_years * h.notional * df
        r = HEDGE_CORRELATION[h.relation]
        snh[c] += r * size
        hma[c] += (1.0 - r**2) * size**2
    net = scva - snh
    systematic = RHO * float(net.sum()) - index_hedges
    idiosyncratic = (1.0 - RHO**2) * float(np.sum(net**2))
    k_hedged = math.sqrt(systematic**2 + idiosyncratic + float(hma.sum()))
    k_full = BETA * k_reduced + (1.0 - BETA) * k_hedged
    capital = DISCOUNT_SCALAR * k_full
    return BaCvaResult(
        version="full",
        k_reduced=k_reduced,
        k_hedged=k_hedged,
        k_full=k_full,
        index_hedges=index_hedges,
        systematic=systematic,
        idiosyncratic=idiosyncratic,
        capital=capital,
        rwa=RWA_PER_CAPITAL * capital,
        counterparties=[
            CounterpartyCapital(
                id=c.id, risk_weight=float(rw[i]), scva=float(scva[i]), snh=float(snh[i]), hma=float(hma[i])
            )
            for i, c in enumerate(portfolio.counterparties)
        ],
    )
