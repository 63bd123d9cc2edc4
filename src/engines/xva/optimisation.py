"""XVA optimisation of a book: compression, novation to a CCP, CSA amendments and CVA hedges, each re-evaluated.

The XVA desk looks for 10-20 bp of XVA to save through compression and novation, CSA amendments and CVA
hedges, and wants each proposal with its XVA, capital and funding effect. `optimise` searches an `XvaSession`
(opened on the whole book or some netting sets) for candidates, evaluates every one of them on the session's
cached paths, ranks them by benefit and picks an integrated strategy.

Evaluation: never a rule of thumb
---------------------------------
A candidate changes the trades or the CSA of some netting sets. The changed set's value paths are the cached
ones minus the values of the old trades plus the values of their new terms, valued on the session's paths (the
pricing of `XvaSession.trade_values`, old and new terms in one pass); `XvaSession.evaluate` then gives the set's
row: the same figures as a rerun of `run_xva` on the changed book (the tests check it to 1e-9). A set whose
cached paths lack the call dates of a new CSA (an uncollateralised set only has the exposure dates) is revalued
whole with `XvaSession.trade_values` under the new CSA; the scenario grid must hold those call dates
(`scenarios.grid.lags`: a CSA of the same MPOR in the book puts them there), otherwise the candidate is skipped
with the reason. `evaluate` takes a set's SA-CCR margin terms from the session's book, so a set with a changed
CSA is evaluated on a view of the session whose book holds that set under the new CSA (capital and KVA then
follow the collateral simulated). A set's effective maturity M (for the book's BA-CVA) is read off its row by
inverting its stand-alone K_CVA = DS x RW / alpha x M x EAD x DF(M), exactly.

Figures (before, after and change of each): cva, dva, fca, fba, mva, kva, wrong_way, total_with_wrong_way (the
XVA, USD, costs as positive magnitudes as in `adjustments`), funding = FCA - FBA + MVA, epe, and the capital:
ead (SA-CCR), k_ccr (8% x RW x EAD), k_cva (the stand-alone reduced BA-CVA of the sets) and ba_cva_capital (the
book's BA-CVA over the session's netting sets: reduced, or full with the hedges). The benefit of a candidate is
-change of total_with_wrong_way; for a hedge, which leaves the netting sets alone, the KVA saving net of carry.

Candidates
----------
- Compression within a netting set: interest rate swaps in the same currency and opposite direction (pay vs
  receive fixed) whose maturities and (forward) start dates are within `maturity_tolerance_days`, and FX
  forwards on the same pair, opposite direction, deliveries within `fx_delivery_tolerance_days`. The matched
  notional is terminated: both trades are reduced by the smaller notional (an FX forward by the smaller amount of
  the pair's first currency, both legs in proportion), the smaller one removed. Pairs are matched greedily by
  matched notional (a trade in one pair at most); the `max_candidates` pairs of largest matched notional x
  maturity are evaluated, and per netting set with several pairs one candidate compressing them all (less the
  pairs found harmful). The terminated part is settled today in cash at its value (`settlement_today`, positive
  when the bank receives): a transfer of value today, not an XVA effect, so left out of the benefit.
- Novation to a CCP: the clearable trades of a bilateral netting set (interest rate swaps in the clearable
  currencies; CDS whose reference name starts with an index prefix, if any) leave it for one qualifying CCP.
  The effect is the bilateral set's change plus the CCP's costs:
  * initial margin the CCP calls: the regression proxy (`initial_margin.regression_initial_margin`) on the
    moved trades' value paths at the CCP's MPOR (5 business days, 7 calendar days) and 99%, without rescaling
    (no margin call of today to calibrate to); funded at the borrowing spread (MVA), weighted by the bank's
    survival (the CCP is taken not to default);
  * capital: a trade exposure to a qualifying CCP has a 2% risk weight (CRE54); its EAD is SA-CCR on the moved
    trades as one margined set with daily variation margin, zero threshold and MTA, V - C = 0 (so RC = 0 and
    the multiplier 1) and the margin posted bankruptcy-remote (not in NICA); the engine's SA-CCR floors the MPOR
    at ten business days (the five-day floor of cleared trades is not implemented there): conservative. Its
    capital 8% x 2% x EAD(t), aged along the grid like every set's, gives the CCP's KVA;
  * no CVA, DVA or FVA against the CCP (daily variation margin remunerated at the discount rate, the CCP not
    defaulting) and no CVA capital (trades with a qualifying CCP are outside it); default fund contributions
    are left out.
  In the strategy all novated trades sit in one CCP netting set, so their margin and capital net across sets.
- CSA amendments: add a CSA to an uncollateralised set (USD, zero thresholds, an MTA of
  `csa_minimum_transfer_amount`, an MPOR of `csa_mpor_business_days`); lower the thresholds to zero (both ways,
  as CSAs are negotiated symmetric); lower the MTA to `csa_minimum_transfer_amount`; exchange initial margin:
  both ways, today's amount the regression proxy of the session (its IM options) on the set's value paths. The
  sets are screened by their cost (CVA + FCA + KVA, or CVA for the MTA and the IM), round robin over the four.
- CVA hedges, for the `hedge_counterparties` counterparties of largest stand-alone K_CVA: a single-name CDS on
  the counterparty, sized so that its hedge term equals the counterparty's SCVA (notional
  sum(M x EAD x DF) / (alpha x M_h x DF_h), roughly EAD x M / hedge maturity), and an index CDS on the
  counterparty's sector and credit quality sized to take the counterparty's share of the systematic term off
  (IH = rho x SCVA_c). Capital effect: the book's BA-CVA capital, full version with the hedge against the
  reduced one without (`bacva.ba_cva_full`, `ba_cva_reduced`). Carry: the premium paid minus the protection's
  value over the hedge's life, N x (s x RPV01 - (1 - R) x protection leg), both legs on the reference's credit
  curve (`market.cds_legs`); the single name on the counterparty's curve, the index on the average legs of its
  peers in the book (same sector and credit quality). The spread paid is the par spread plus half a bid-offer
  (`single_name_bid_offer_bp`, `index_bid_offer_bp`): with risk-neutral curves the carry is that bid-offer
  cost; the real-world risk premium is not charged. KVA saving = cost of capital x capital saved x the hedge's
  RPV01: a simplification that holds the capital relief constant over the hedge's life and ignores the hedge's
  own counterparty risk (taken as cleared).

Strategy
--------
Greedy and re-evaluated: the netting-set candidates by benefit, then the hedges by benefit (their capital
relief depends on the exposure the other actions leave). A candidate is skipped if it shares a target with one
taken (at most one candidate per netting set per kind, per counterparty for hedges) or, for compressions and
novations, a trade; otherwise it is taken only if the candidates taken with it are worth more than without it,
everything re-evaluated together: each touched netting set once with all its changes (so a CSA added to a set
emptied by a novation adds nothing), the CCP once with all the novated trades, and the book's BA-CVA with the
hedges, each hedge re-sized to the SCVA its counterparty has left (its carry in proportion; a counterparty with
no exposure left is not hedged). The hedges' KVA saving is spread over their RPV01s by their capital saving.
The strategy's benefit, so re-evaluated, is given in USD, in bp of the book's total XVA (total_with_wrong_way)
and in bp of its gross notional (USD, today's spot); the sum of its candidates' stand-alone benefits is shown
too, and why each other candidate of positive benefit was left out.

Initial margin in a changed set: the IM a CSA exchanges is rescaled by the ratio of the regression proxy today
of the new portfolio to that of the old one (SIMM-like: a compressed or novated portfolio needs less margin);
`csa_after` in a candidate's details gives the CSA evaluated. Searches are numpy over the trades; at most about
`max_candidates` evaluations per kind (the combined compressions a quarter more).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.xva.adjustments import capital_profile, ead_profile, kva, mva
from engines.xva.bacva import (
    ALPHA,
    DISCOUNT_SCALAR,
    INDEX_SCALE,
    RHO,
    SUPERVISORY_RATE,
    IndexHedge,
    NettingSetExposure,
    SingleNameHedge,
    ba_cva_full,
    ba_cva_reduced,
    risk_weight,
    supervisory_discount_factor,
)
from engines.xva.bacva import Counterparty as BaCvaCounterparty
from engines.xva.book_xva import WHAT_IF_FIELDS, XvaSession
from engines.xva.initial_margin import DAYS_PER_YEAR, InitialMarginOptions, regression_initial_margin
from engines.xva.market import BASE_CURRENCY, CURRENCIES, CreditCurve, Market, add_months, bootstrap_hazard, cds_legs
from engines.xva.market import year_time as _year_time
from engines.xva.pricing import compile_trades, value_on_paths
from engines.xva.saccr_book import ba_cva_quality, ba_cva_sector, saccr_trade
from engines.xva.saccr_models import NettingSet as SaccrNettingSet
from engines.xva.trades import (
    CSA,
    Book,
    CreditDefaultSwap,
    FxForward,
    InterestRateSwap,
    usd_notional,
)

__all__ = [
    "FIGURES",
    "KINDS",
    "Candidate",
    "OptimisationOptions",
    "OptimisationReport",
    "Strategy",
    "gross_notional",
    "optimise",
    "select_strategy",
    "usd_notional",
]

KINDS: tuple[str, ...] = ("compression", "novation", "csa_amendment", "cva_hedge")
XVA_FIGURES = ("cva", "dva", "fca", "fba", "mva", "kva", "wrong_way", "total_with_wrong_way")
CAPITAL_FIGURES = ("ead", "k_ccr", "k_cva", "ba_cva_capital")
FIGURES: tuple[str, ...] = (*XVA_FIGURES, "funding", "epe", *CAPITAL_FIGURES)
"""What every candidate reports before and after: the XVA, funding (FCA - FBA + MVA), EPE and the capital."""
_ROW_SUMS = (*XVA_FIGURES, "epe", "ead", "k_ccr", "k_cva")
CSA_ACTIONS = ("add_csa", "zero_threshold", "lower_mta", "exchange_im")


class OptimisationOptions(BaseModel):
    """Knobs of the search (the defaults are the desk's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_candidates: int = Field(40, ge=1, le=2000, description="Candidates evaluated per kind at most.")
    maturity_tolerance_days: int = Field(183, ge=0, le=3650, description="Swaps compressed: maturities this close.")
    fx_delivery_tolerance_days: int = Field(31, ge=0, le=3650, description="FX forwards compressed: deliveries.")
    clearable_currencies: tuple[str, ...] = Field(CURRENCIES, description="Swap currencies the CCP clears.")
    index_prefixes: tuple[str, ...] = Field(
        ("CDX", "ITRAXX", "INDEX"), description="CDS reference names that are indices (clearable)."
    )
    ccp_mpor_business_days: int = Field(5, ge=1, le=60, description="The CCP's margin period of risk.")
    ccp_quantile: float = Field(0.99, gt=0.5, lt=1, description="Confidence level of the CCP's initial margin.")
    ccp_risk_weight: float = Field(0.02, ge=0, le=1.5, description="Risk weight of a QCCP trade exposure (CRE54).")
    csa_minimum_transfer_amount: float = Field(100_000.0, ge=0, description="USD: MTA of a new or amended CSA.")
    csa_mpor_business_days: int = Field(10, ge=0, le=260, description="MPOR of a CSA added to a set.")
    hedge_counterparties: int = Field(10, ge=1, le=10_000, description="Counterparties hedged (largest K_CVA).")
    hedge_maturity_years: float = Field(5.0, ge=0.25, le=30, description="CDS hedge maturity (whole months).")
    single_name_bid_offer_bp: float = Field(10.0, ge=0, le=1000, description="Bid-offer of a single-name CDS.")
    index_bid_offer_bp: float = Field(2.0, ge=0, le=1000, description="Bid-offer of an index CDS.")


# ---------------------------------------------------------------------------------------------
# Candidates and the report
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _SetChange:
    """A netting set's change: trades removed (old terms, incl. the amended ones), their new terms, a new CSA."""

    netting_set_id: str
    removed: tuple[Any, ...] = ()
    added: tuple[Any, ...] = ()
    csa: CSA | None = None
    csa_changed: bool = False
    moved: tuple[Any, ...] = ()  # novated to the CCP (also in removed)


@dataclass(frozen=True, eq=False)
class Candidate:
    """One proposal with its figures before and after (FIGURES), its benefit (USD) and its rank (1 = best)."""

    id: str
    kind: str
    action: str
    netting_set_ids: tuple[str, ...]
    counterparty_ids: tuple[str, ...]
    trade_ids: tuple[str, ...]
    description: str
    before: dict[str, float]
    after: dict[str, float]
    benefit: float
    kva_saving: float = 0.0
    carry: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    rank: int = 0
    changes: tuple[_SetChange, ...] = ()
    rows_after: dict[str, dict[str, float]] = field(default_factory=dict)
    ccp_values: np.ndarray | None = None  # [exposure date, path] of the novated trades
    hedge: SingleNameHedge | IndexHedge | None = None
    hedge_rpv01: float = 0.0

    @property
    def change(self) -> dict[str, float]:
        return {k: self.after[k] - self.before[k] for k in self.before}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rank": self.rank,
            "kind": self.kind,
            "action": self.action,
            "netting_set_ids": list(self.netting_set_ids),
            "counterparty_ids": list(self.counterparty_ids),
            "trade_ids": list(self.trade_ids),
            "description": self.description,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "benefit": self.benefit,
            "kva_saving": self.kva_saving,
            "carry": self.carry,
            "details": self.details,
        }


@dataclass(frozen=True, eq=False)
class Strategy:
    """The chosen non-conflicting candidates, re-evaluated together: book figures before and after, benefit."""

    candidates: tuple[Candidate, ...]
    before: dict[str, float]
    after: dict[str, float]
    benefit: float
    sum_of_benefits: float
    benefit_bp_of_xva: float
    benefit_bp_of_notional: float
    settlement_today: float
    kva_saving: float
    carry: float
    ccp: dict[str, float] | None
    hedges: tuple[dict[str, Any], ...]
    excluded: dict[str, str]

    @property
    def change(self) -> dict[str, float]:
        return {k: self.after[k] - self.before[k] for k in self.before}

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate_ids": [c.id for c in self.candidates],
            "candidates": [c.to_dict() for c in self.candidates],
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "benefit": self.benefit,
            "sum_of_candidate_benefits": self.sum_of_benefits,
            "benefit_bp_of_xva": self.benefit_bp_of_xva,
            "benefit_bp_of_notional": self.benefit_bp_of_notional,
            "settlement_today": self.settlement_today,
            "hedge_kva_saving": self.kva_saving,
            "hedge_carry": self.carry,
            "ccp": self.ccp,
            "hedges": list(self.hedges),
            "excluded": self.excluded,
        }


@dataclass(frozen=True, eq=False)
class OptimisationReport:
    """Candidates ranked by benefit (all evaluated; `top` of them reported), the strategy and what was skipped."""

    as_of: str
    kinds: tuple[str, ...]
    top: int
    options: OptimisationOptions
    book: dict[str, Any]
    candidates: tuple[Candidate, ...]
    strategy: Strategy
    skipped: tuple[dict[str, Any], ...]
    evaluations: int
    seconds: float

    @property
    def top_candidates(self) -> tuple[Candidate, ...]:
        return self.candidates[: self.top]

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "currency": BASE_CURRENCY,
            "kinds": list(self.kinds),
            "options": self.options.model_dump(mode="json"),
            "book": self.book,
            "candidates_evaluated": len(self.candidates),
            "candidates": [c.to_dict() for c in self.top_candidates],
            "strategy": self.strategy.to_dict(),
            "skipped": list(self.skipped),
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 3),
        }


class _Skip(Exception):
    """A candidate that cannot be evaluated, with the reason."""


# ---------------------------------------------------------------------------------------------
# Book-level helpers
# ---------------------------------------------------------------------------------------------


def gross_notional(trades: Iterable[Any], market: Market) -> float:
    """Sum of the trades' USD notionals: the denominator of the benefit in bp of notional."""
    return float(sum(usd_notional(t, market) for t in trades))


def _figures(rows: Iterable[Mapping[str, float]], ba_cva_capital: float) -> dict[str, float]:
    rows = list(rows)
    out = {k: float(sum(r[k] for r in rows)) for k in _ROW_SUMS}
    out["funding"] = out["fca"] - out["fba"] + out["mva"]
    out["ba_cva_capital"] = float(ba_cva_capital)
    return {k: out[k] for k in FIGURES}


def _with_ccp(figures: Mapping[str, float], ccp: Mapping[str, float] | None) -> dict[str, float]:
    out = dict(figures)
    if ccp:
        out["mva"] += ccp["mva"]
        out["kva"] += ccp["kva"]
        out["funding"] += ccp["mva"]
        out["total_with_wrong_way"] += ccp["mva"] + ccp["kva"]
        out["ead"] += ccp["ead"]
        out["k_ccr"] += ccp["k_ccr"]
    return out


def _days(d: date, as_of: date) -> int:
    return (d - as_of).days


def _greedy_pairs(
    first: np.ndarray, second: np.ndarray, matched: np.ndarray, distance: np.ndarray
) -> list[tuple[int, int]]:
    """Pairs (first[k], second[k]) taken by matched amount (largest first, then closest), each index once."""
    order = np.lexsort((distance, -matched))
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for k in order:
        a, b = int(first[k]), int(second[k])
        if a in used_a or b in used_b:
            continue
        used_a.add(a)
        used_b.add(b)
        out.append((a, b))
    return out


def select_strategy(
    candidates: Sequence[Candidate],
    gain: Callable[[Sequence[Candidate], Candidate], float] | None = None,
) -> tuple[list[Candidate], dict[str, str]]:
    """The best non-conflicting candidates, greedily, and why each other candidate of positive benefit was left out.

    Netting-set candidates come first by benefit, then the hedges (their capital relief depends on the exposure
    the other actions leave). At most one candidate per netting set per kind (per counterparty for hedges);
    compressions and novations do not touch the same trades; with `gain(taken, candidate)`, the candidate's
    benefit next to those taken (re-evaluated together), a candidate is taken only if that is positive.
    """
    chosen: list[Candidate] = []
    excluded: dict[str, str] = {}
    keys: dict[tuple[str, str], str] = {}
    trades: dict[str, str] = {}
    order = sorted(candidates, key=lambda c: (c.kind == "cva_hedge", -c.benefit, KINDS.index(c.kind), c.id))
    for c in order:
        if not c.benefit > 0:
            continue
        owners = c.counterparty_ids if c.kind == "cva_hedge" else c.netting_set_ids
        clash = next((keys[(c.kind, o)] for o in owners if (c.kind, o) in keys), None)
        if clash is not None:
            excluded[c.id] = f"same {c.kind} target as {clash}"
            continue
        if c.kind in ("compression", "novation"):
            overlap = next((trades[t] for t in c.trade_ids if t in trades), None)
            if overlap is not None:
                excluded[c.id] = f"touches trades of {overlap}"
                continue
        if gain is not None:
            g = gain(chosen, c)
            if not g > 0:
                excluded[c.id] = f"adds {g:,.0f} USD next to the candidates taken"
                continue
        chosen.append(c)
        for o in owners:
            keys[(c.kind, o)] = c.id
        if c.kind in ("compression", "novation"):
            for t in c.trade_ids:
                trades[t] = c.id
    return chosen, excluded


@dataclass(frozen=True, eq=False)
class _Combined:
    """Candidates applied together: each touched set's row, the CCP, the BA-CVA with the hedges, the benefit."""

    rows_after: dict[str, dict[str, float]]
    ccp: dict[str, float] | None
    ba_cva_reduced: float | None
    ba_cva_full: float | None
    hedges: tuple[SingleNameHedge | IndexHedge, ...]
    kva_saving: float
    carry: float
    benefit: float


# ---------------------------------------------------------------------------------------------
# The optimiser
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Evaluated:
    row: dict[str, float]
    csa: CSA | None
    removed_values: np.ndarray | None
    added_values: np.ndarray | None


class _Optimiser:
    """The session, its base rows and what every evaluation shares (grid, discount, own survival, BA-CVA inputs)."""

    def __init__(self, session: XvaSession, options: OptimisationOptions) -> None:
        self.session = session
        self.opts = options
        self.book = session.book
        self.market = session.market
        self.as_of = session.market.as_of
        grid = session.scenarios.grid
        self.grid = grid
        self.times = grid.exposure_times
        self.numeraire = np.asarray(session.scenarios.numeraire[grid.exposure], dtype=np.float64)  # [T, N]
        self.discount = self.numeraire.mean(axis=1)
        usd = self.market.currencies[BASE_CURRENCY].discount  # type: ignore[index]
        self.usd_discount = usd
        self.own_survival = np.asarray(bootstrap_hazard(self.market.own_credit, self.as_of, usd).survival(self.times))
        self.rows: dict[str, dict[str, Any]] = {r["id"]: r for r in session.base.rows()}
        self.ids = tuple(self.rows)
        by_set = self.book.trades_by_netting_set()
        self.trades_of = {ns: [self.book.trades[i] for i in by_set[ns]] for ns in self.ids}
        self.cp_of = {ns: self.rows[ns]["counterparty_id"] for ns in self.ids}
        self.sets_of_cp: dict[str, list[str]] = defaultdict(list)
        for ns in self.ids:
            self.sets_of_cp[self.cp_of[ns]].append(ns)
        self.quality = {
            self.cp_of[ns]: (self.rows[ns]["ba_cva_sector"], self.rows[ns]["ba_cva_quality"]) for ns in self.ids
        }
        self.base_parties = {cp: p for cp in self.sets_of_cp if (p := self._party(cp, {})) is not None}
        self.base_ba_cva = self._ba_cva({})
        self.evaluations = 0
        self.skipped: list[dict[str, Any]] = []
        self._legs: dict[str, tuple[float, float, float]] = {}
        self._rpv01: dict[str, float] = {}
        self._saccr: dict[str, Any] = {}
        self._combined_rows: dict[tuple[str, tuple[str, ...]], dict[str, float]] = {}
        self._ccp_memo: dict[tuple[str, ...], dict[str, float]] = {}
        self._benefit_memo: dict[tuple[str, ...], float] = {}
        base_reduced = ba_cva_reduced(list(self.base_parties.values())) if self.base_parties else None
        self._base_scva = {c.id: c.scva for c in base_reduced.counterparties} if base_reduced else {}
        self.coc = session.options.adjustments.cost_of_capital
        self.capital_ratio = session.options.adjustments.capital_ratio
        self.funding_weight: np.ndarray | float = (
            self.own_survival if session.options.adjustments.funding_survival == "both" else 1.0
        )

    # ---- evaluation ------------------------------------------------------------------------

    def skip(self, kind: str, action: str, netting_set_ids: Sequence[str], reason: str) -> None:
        self.skipped.append(
            {"kind": kind, "action": action, "netting_set_ids": list(netting_set_ids), "reason": reason}
        )

    def cached(self, ns: str) -> np.ndarray:
        try:
            return np.asarray(self.session.cache.get(ns), dtype=np.float64)
        except KeyError:
            raise _Skip(f"the value paths of {ns} are no longer cached (raise the session's cache_bytes)") from None

    def im_today(self, values: np.ndarray) -> float:
        """The regression proxy of today's IM (the session's IM options) on a set's value paths [date, path]."""
        v = values[self.grid.exposure[:2]].T
        if self.times.size < 2:
            return 0.0
        paths = regression_initial_margin(self.times[:2], v, options=self.session.options.initial_margin).paths
        return float(paths[:, 0].mean())

    def has_call_dates(self, csa: CSA) -> bool:
        return round(csa.mpor_years * 365) in self.grid.lags

    def view(self, ns: str, csa: CSA | None) -> XvaSession:
        """The session, or for a changed CSA a view of it whose book holds only the set under that CSA.

        `XvaSession.evaluate` takes the SA-CCR margin terms of the set from the session's book: a view with the
        new CSA keeps the capital (and so the KVA) consistent with the collateral simulated.
        """
        current = self.book.netting_set(ns)
        if csa == current.csa:
            return self.session
        book = Book(
            counterparties=[self.book.counterparty(current.counterparty_id)],
            netting_sets=[current.model_copy(update={"csa": csa})],
            trades=[],
        )
        return replace(self.session, book=book)

    def effective_maturity(self, ns: str, row: Mapping[str, float]) -> float:
        """M of the set from its row: the stand-alone K_CVA = DS x RW / alpha x EAD x M x DF(M) inverted exactly.

        M x DF(M) = (1 - exp(-r M)) / r (r the supervisory 5%) is increasing in M, so
        M = -ln(1 - r x) / r with x = K_CVA x alpha / (DS x RW x EAD): the engine's own M, without mapping the
        set's trades to SA-CCR a second time.
        """
        rw = self.rows[ns]["cva_risk_weight"]
        if not row["ead"] > 0 or not rw > 0:
            return 1.0
        x = row["k_cva"] * ALPHA / (DISCOUNT_SCALAR * rw * row["ead"])
        return float(-math.log1p(-SUPERVISORY_RATE * x) / SUPERVISORY_RATE)

    def values(self, groups: Sequence[Sequence[Any]], csa: CSA | None) -> np.ndarray:
        """The summed value paths [group, simulation date, path] of groups of trades, valued in one pass
        (`XvaSession.trade_values` per group, with one compilation)."""
        scen = self.session.scenarios
        trades = [t for g in groups for t in g]
        slots = np.array([k for k, g in enumerate(groups) for _ in g], dtype=np.int64)
        mask = np.zeros((len(groups), len(self.grid.times)), dtype=np.uint8)
        mask[:, self.grid.exposure] = 1
        if csa is not None:
            mask[:, self.grid.lags[round(csa.mpor_years * 365)]] = 1
        if not trades:
            return np.zeros((len(groups), len(self.grid.times), scen.paths))
        return value_on_paths(compile_trades(trades, slots, scen, len(groups)), scen, mask)

    def evaluate(self, change: _SetChange) -> _Evaluated:
        """The netting set's row after the change, on the cached paths (revalued whole if the call dates change)."""
        ns = change.netting_set_id
        base_csa = self.book.netting_set(ns).csa
        csa = change.csa if change.csa_changed else base_csa
        gone = {t.trade_id for t in change.removed}
        trades = [t for t in self.trades_of[ns] if t.trade_id not in gone] + list(change.added)
        cached = self.cached(ns)
        removed_values = added_values = None
        new_dates = csa is not None and (
            base_csa is None or round(csa.mpor_years * 365) != round(base_csa.mpor_years * 365)
        )
        if new_dates:
            assert csa is not None
            if not self.has_call_dates(csa):
                raise _Skip(
                    f"the scenario grid has no call dates for a {round(csa.mpor_years * 365)}-day MPOR "
                    "(open the session on a book with a CSA of that MPOR)"
                )
            values = self.session.trade_values(trades, csa) if trades else np.zeros_like(cached)
        else:
            values = cached.copy()
            if change.removed or change.added:
                removed_values, added_values = self.values([change.removed, change.added], base_csa)
                values -= removed_values
                values += added_values
        if csa is not None and (change.removed or change.added):
            if csa.initial_margin_posted > 0 or csa.initial_margin_received > 0:
                old = self.im_today(cached)
                ratio = self.im_today(values) / old if old > 0 else 1.0
                csa = csa.model_copy(
                    update={
                        "initial_margin_posted": csa.initial_margin_posted * ratio,
                        "initial_margin_received": csa.initial_margin_received * ratio,
                    }
                )
        row = self.view(ns, csa).evaluate(ns, values, trades, csa)
        self.evaluations += 1
        row["effective_maturity"] = self.effective_maturity(ns, row)
        return _Evaluated(row, csa, removed_values, added_values)

    # ---- BA-CVA ----------------------------------------------------------------------------

    def _party(self, cp: str, overrides: Mapping[str, Mapping[str, float]]) -> BaCvaCounterparty | None:
        sets = []
        for ns in self.sets_of_cp[cp]:
            row = overrides.get(ns, self.rows[ns])
            if row["ead"] > 0:
                sets.append(NettingSetExposure(id=ns, ead=row["ead"], maturity_years=row["effective_maturity"]))
        if not sets:
            return None
        sector, quality = self.quality[cp]
        return BaCvaCounterparty(id=cp, sector=sector, credit_quality=quality, netting_sets=sets)

    def parties(self, overrides: Mapping[str, Mapping[str, float]]) -> list[BaCvaCounterparty]:
        out = dict(self.base_parties)
        for cp in {self.cp_of[ns] for ns in overrides}:
            party = self._party(cp, overrides)
            if party is None:
                out.pop(cp, None)
            else:
                out[cp] = party
        return list(out.values())

    def _ba_cva(
        self, overrides: Mapping[str, Mapping[str, float]], hedges: Sequence[SingleNameHedge | IndexHedge] = ()
    ) -> float:
        parties = self.parties(overrides)
        if not parties:
            return 0.0
        present = {p.id for p in parties}
        kept = [h for h in hedges if not isinstance(h, SingleNameHedge) or h.counterparty in present]
        return ba_cva_full(parties, kept).capital if kept else ba_cva_reduced(parties).capital

    # ---- a candidate from evaluated changes ---------------------------------------------------

    def before_figures(self, sets: Sequence[str]) -> dict[str, float]:
        return _figures((self.rows[ns] for ns in sets), self.base_ba_cva)

    def after_figures(self, sets: Sequence[str], rows_after: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        return _figures((rows_after.get(ns, self.rows[ns]) for ns in sets), self._ba_cva(rows_after))

    # ---- CCP --------------------------------------------------------------------------------

    def saccr(self, trade: Any) -> Any:
        """The trade as SA-CCR sees it (remembered: the CCP's set is mapped again as novations are added)."""
        if trade.trade_id not in self._saccr:
            self._saccr[trade.trade_id] = saccr_trade(trade, self.market)
        return self._saccr[trade.trade_id]

    def ccp_costs(self, values: np.ndarray, trades: Sequence[Any]) -> dict[str, float]:
        """IM, MVA, EAD, K_CCR and KVA at the CCP of trades with value paths [exposure date, path]."""
        o = self.opts
        mpor_days = round(o.ccp_mpor_business_days * 7 / 5)
        im_options = InitialMarginOptions(mpor_years=mpor_days / DAYS_PER_YEAR, quantile=o.ccp_quantile)
        im = regression_initial_margin(self.times, values.T, options=im_options)
        im_star = (self.numeraire * im.paths.T).mean(axis=1)
        mva_ = float(mva(self.times, im_star, self.session.options.borrow_spread, self.funding_weight))
        mapped = SaccrNettingSet(
            id="CCP",
            currency=BASE_CURRENCY,
            trades=[self.saccr(t) for t in trades],
            margined=True,
            mpor_business_days=o.ccp_mpor_business_days,
        )
        cap = capital_profile([mapped], self.times, ccr_risk_weight=o.ccp_risk_weight, cva_risk_weight=0.0)
        zero = np.zeros((1, self.times.size))
        ead = ead_profile(cap, zero, zero)[0]
        k = self.capital_ratio * o.ccp_risk_weight * ead
        kva_ = float(kva(self.times, k, self.discount, self.funding_weight, self.coc))
        return {
            "initial_margin_today": float(im.paths[:, 0].mean()),
            "mva": mva_,
            "kva": kva_,
            "ead": float(ead[0]),
            "k_ccr": float(k[0]),
            "risk_weight": o.ccp_risk_weight,
            "mpor_calendar_days": mpor_days,
            "trades": len(trades),
        }

    # ---- compression ------------------------------------------------------------------------

    def _swap_pairs(self, ns: str) -> list[tuple[Any, Any, float, float]]:
        """(payer, receiver, matched notional in the currency, score) of the set's compressible swaps."""
        out = []
        tol = self.opts.maturity_tolerance_days
        swaps = [t for t in self.trades_of[ns] if isinstance(t, InterestRateSwap)]
        by_ccy: dict[str, list[InterestRateSwap]] = defaultdict(list)
        for t in swaps:
            by_ccy[t.currency].append(t)
        for ccy, group in by_ccy.items():
            pay = np.array([t.pay_fixed for t in group])
            if pay.all() or not pay.any():
                continue
            mat = np.array([_days(t.maturity_date, self.as_of) for t in group])
            start = np.array([max(_days(t.start_date, self.as_of), 0) for t in group])
            notional = np.array([t.notional for t in group])
            p, r = np.flatnonzero(pay), np.flatnonzero(~pay)
            gap = np.abs(mat[p][:, None] - mat[r][None, :])
            ok = (gap <= tol) & (np.abs(start[p][:, None] - start[r][None, :]) <= tol)
            i, j = np.nonzero(ok)
            if i.size == 0:
                continue
            matched = np.minimum(notional[p][i], notional[r][j])
            fx = self.market.fx_spot(ccy)
            for a, b in _greedy_pairs(p[i], r[j], matched, gap[i, j]):
                m = min(notional[a], notional[b])
                years = min(mat[a], mat[b]) / 365.0
                out.append((group[a], group[b], float(m), float(m * fx * years)))
        return out

    def _fx_pairs(self, ns: str) -> list[tuple[Any, Any, float, float]]:
        """(long, short, matched amount of the pair's first currency, score) of the set's FX forwards."""
        out = []
        tol = self.opts.fx_delivery_tolerance_days
        by_pair: dict[tuple[str, str], list[FxForward]] = defaultdict(list)
        for t in self.trades_of[ns]:
            if isinstance(t, FxForward):
                by_pair[tuple(sorted((t.buy_currency, t.sell_currency)))].append(t)  # type: ignore[arg-type]
        for (first, _), group in by_pair.items():
            long = np.array([t.buy_currency == first for t in group])
            if long.all() or not long.any():
                continue
            amount = np.array([t.buy_amount if t.buy_currency == first else t.sell_amount for t in group])
            day = np.array([_days(t.delivery_date, self.as_of) for t in group])
            lo, sh = np.flatnonzero(long), np.flatnonzero(~long)
            gap = np.abs(day[lo][:, None] - day[sh][None, :])
            i, j = np.nonzero(gap <= tol)
            if i.size == 0:
                continue
            matched = np.minimum(amount[lo][i], amount[sh][j])
            fx = self.market.fx_spot(first)
            for a, b in _greedy_pairs(lo[i], sh[j], matched, gap[i, j]):
                m = min(amount[a], amount[b])
                years = max(min(day[a], day[b]), 1) / 365.0
                out.append((group[a], group[b], float(m), float(m * fx * years)))
        return out

    @staticmethod
    def _reduce(trade: Any, matched: float) -> Any | None:
        """The trade less the matched amount (None if nothing is left)."""
        if isinstance(trade, InterestRateSwap):
            left = trade.notional - matched
            return None if left <= 1e-9 * trade.notional else trade.model_copy(update={"notional": left})
        first = min(trade.buy_currency, trade.sell_currency)
        amount = trade.buy_amount if trade.buy_currency == first else trade.sell_amount
        share = 1.0 - matched / amount
        if share <= 1e-9:
            return None
        return trade.model_copy(
            update={"buy_amount": trade.buy_amount * share, "sell_amount": trade.sell_amount * share}
        )

    def _compression(self, ns: str, pairs: Sequence[tuple[Any, Any, float, float]], action: str) -> Candidate:
        removed, added, parts = [], [], []
        for a, b, m, _ in pairs:
            removed += [a, b]
            for t in (a, b):
                left = self._reduce(t, m)
                if left is not None:
                    added.append(left)
            kept = [t.trade_id for t in (a, b) if self._reduce(t, m) is not None]
            parts.append(f"{a.trade_id}/{b.trade_id} {m:,.0f}" + (f" ({kept[0]} kept)" if kept else ""))
        change = _SetChange(ns, tuple(removed), tuple(added))
        ev = self.evaluate(change)
        settlement = 0.0
        if ev.removed_values is not None:
            settlement = float(ev.removed_values[0].mean())
        if ev.added_values is not None:
            settlement -= float(ev.added_values[0].mean())
        what = "swaps" if isinstance(pairs[0][0], InterestRateSwap) else "FX forwards"
        if action == "netting_set":
            what = "trades"
        description = (
            f"compress {len(pairs)} offsetting pair{'s' if len(pairs) > 1 else ''} of {what} in {ns}: "
            + "; ".join(parts[:4])
            + ("; ..." if len(parts) > 4 else "")
            + f" terminated, settled today in cash at their value ({settlement:+,.0f} USD, not an XVA effect)"
        )
        rows_after = {ns: ev.row}
        ids = tuple(t.trade_id for t in removed)
        return self._candidate(
            f"compression:{ns}:" + "+".join(ids) if action == "pair" else f"compression:{ns}:all",
            "compression", action, [ns], ids, description, rows_after,
            details={
                "settlement_today": settlement,
                "pairs": [
                    {"trades": [a.trade_id, b.trade_id], "matched_notional": m, "left": [
                        (t.trade_id, _amount(left)) for t in (a, b) if (left := self._reduce(t, m)) is not None
                    ]}
                    for a, b, m, _ in pairs
                ],
                **self._csa_detail(ns, ev.csa),
            },
            changes=(change,),
        )  # fmt: skip

    def compressions(self) -> list[Candidate]:
        pairs_of: dict[str, list[tuple[Any, Any, float, float]]] = {}
        for ns in self.ids:
            found = self._swap_pairs(ns) + self._fx_pairs(ns)
            if found:
                pairs_of[ns] = found
        flat = [(score, ns, k) for ns, found in pairs_of.items() for k, (*_, score) in enumerate(found)]
        flat.sort(key=lambda x: -x[0])
        out: list[Candidate] = []
        harmful: dict[str, set[int]] = defaultdict(set)
        for _, ns, k in flat[: self.opts.max_candidates]:
            c = self._try(lambda ns=ns, k=k: self._compression(ns, [pairs_of[ns][k]], "pair"), "compression", [ns])
            if c is not None:
                out.append(c)
                if c.benefit <= 0:
                    harmful[ns].add(k)
        sets = [(sum(p[3] for p in found), ns) for ns, found in pairs_of.items() if len(found) - len(harmful[ns]) >= 2]
        sets.sort(key=lambda x: -x[0])
        for _, ns in sets[: max(1, self.opts.max_candidates // 4)]:
            keep = [p for k, p in enumerate(pairs_of[ns]) if k not in harmful[ns]]
            c = self._try(lambda ns=ns, keep=keep: self._compression(ns, keep, "netting_set"), "compression", [ns])
            if c is not None:
                out.append(c)
        return out

    # ---- novation ---------------------------------------------------------------------------

    def clearable(self, trade: Any) -> bool:
        if isinstance(trade, InterestRateSwap):
            return trade.currency in self.opts.clearable_currencies
        if isinstance(trade, CreditDefaultSwap):
            return trade.reference.upper().startswith(tuple(p.upper() for p in self.opts.index_prefixes))
        return False

    def novations(self) -> list[Candidate]:
        screened = []
        for ns in self.ids:
            moved = [t for t in self.trades_of[ns] if self.clearable(t)]
            if not moved:
                continue
            share = gross_notional(moved, self.market) / max(gross_notional(self.trades_of[ns], self.market), 1e-12)
            screened.append((share * max(self.rows[ns]["total_with_wrong_way"], 0.0), share, ns, moved))
        screened.sort(key=lambda x: (-x[0], -x[1]))
        out = []
        for _, _, ns, moved in screened[: self.opts.max_candidates]:
            c = self._try(lambda ns=ns, moved=moved: self._novation(ns, moved), "novation", [ns])
            if c is not None:
                out.append(c)
        return out

    def _novation(self, ns: str, moved: Sequence[Any]) -> Candidate:
        change = _SetChange(ns, tuple(moved), (), moved=tuple(moved))
        ev = self.evaluate(change)
        assert ev.removed_values is not None
        ccp_values = ev.removed_values[self.grid.exposure]
        ccp = self.ccp_costs(ccp_values, moved)
        ids = tuple(t.trade_id for t in moved)
        left = len(self.trades_of[ns]) - len(moved)
        description = (
            f"novate {len(moved)} clearable trade{'s' if len(moved) > 1 else ''} of {ns} to a CCP "
            f"({left} left bilateral): CCP initial margin {ccp['initial_margin_today']:,.0f} USD today "
            f"(MVA {ccp['mva']:,.0f}), QCCP EAD {ccp['ead']:,.0f} at {ccp['risk_weight']:.0%} (KVA {ccp['kva']:,.0f})"
        )
        return self._candidate(
            f"novation:{ns}", "novation", "to_ccp", [ns], ids, description, {ns: ev.row}, ccp=ccp,
            details={"ccp": ccp, "bilateral_after": {k: ev.row[k] for k in WHAT_IF_FIELDS},
                     **self._csa_detail(ns, ev.csa)},
            changes=(change,),
            ccp_values=ccp_values,
        )  # fmt: skip

    # ---- CSA amendments ----------------------------------------------------------------------

    def _amended_csas(self) -> dict[str, list[tuple[float, str, CSA | None]]]:
        """Per action, (score, netting set, new CSA) of the sets it applies to (CSA None: IM to compute)."""
        o = self.opts
        out: dict[str, list[tuple[float, str, CSA | None]]] = {a: [] for a in CSA_ACTIONS}
        for ns in self.ids:
            if not self.trades_of[ns]:
                continue
            r = self.rows[ns]
            cost = r["cva"] + r["fca"] + r["kva"] + r["wrong_way"]
            csa = self.book.netting_set(ns).csa
            if csa is None:
                new = CSA(
                    currency=BASE_CURRENCY,
                    minimum_transfer_amount=o.csa_minimum_transfer_amount,
                    margin_period_of_risk_days=o.csa_mpor_business_days,
                )
                out["add_csa"].append((cost, ns, new))
                continue
            fx = self.market.fx_spot(csa.currency)
            if csa.threshold_received > 0 or csa.threshold_posted > 0:
                out["zero_threshold"].append(
                    (cost, ns, csa.model_copy(update={"threshold_received": 0.0, "threshold_posted": 0.0}))
                )
            if csa.minimum_transfer_amount * fx > o.csa_minimum_transfer_amount * (1 + 1e-9):
                mta = o.csa_minimum_transfer_amount / fx
                out["lower_mta"].append((r["cva"], ns, csa.model_copy(update={"minimum_transfer_amount": mta})))
            if csa.initial_margin_posted == 0 and csa.initial_margin_received == 0:
                out["exchange_im"].append((r["cva"] + r["wrong_way"], ns, None))
        for a in out:
            out[a].sort(key=lambda x: -x[0])
        return out

    def csa_amendments(self) -> list[Candidate]:
        screened = self._amended_csas()
        queue: list[tuple[str, str, CSA | None]] = []
        depth = 0
        while len(queue) < self.opts.max_candidates and any(depth < len(v) for v in screened.values()):
            for action in CSA_ACTIONS:
                if depth < len(screened[action]) and len(queue) < self.opts.max_candidates:
                    _, ns, csa = screened[action][depth]
                    queue.append((action, ns, csa))
            depth += 1
        out = []
        for action, ns, csa in queue:
            c = self._try(lambda a=action, ns=ns, csa=csa: self._csa(a, ns, csa), "csa_amendment", [ns], action)
            if c is not None:
                out.append(c)
        return out

    def _csa(self, action: str, ns: str, csa: CSA | None) -> Candidate:
        old = self.book.netting_set(ns).csa
        if action == "exchange_im":
            assert old is not None
            im = self.im_today(self.cached(ns))
            if not im > 0:
                raise _Skip("the regression proxy gives no initial margin today")
            amount = im / self.market.fx_spot(old.currency)
            csa = old.model_copy(update={"initial_margin_posted": amount, "initial_margin_received": amount})
        assert csa is not None
        ev = self.evaluate(_SetChange(ns, csa=csa, csa_changed=True))
        fx = self.market.fx_spot(csa.currency)
        text = {
            "add_csa": f"add a CSA to {ns}: zero thresholds, MTA {csa.minimum_transfer_amount * fx:,.0f} USD, "
            f"{csa.margin_period_of_risk_days}-day MPOR",
            "zero_threshold": f"lower the thresholds of {ns} to zero (from "
            f"{(old.threshold_received if old else 0) * fx:,.0f} USD received, "
            f"{(old.threshold_posted if old else 0) * fx:,.0f} posted)",
            "lower_mta": f"lower the MTA of {ns} to {csa.minimum_transfer_amount * fx:,.0f} USD "
            f"(from {(old.minimum_transfer_amount if old else 0) * fx:,.0f})",
            "exchange_im": f"exchange initial margin both ways with {ns}: {csa.initial_margin_posted * fx:,.0f} "
            "USD each (regression proxy today)",
        }[action]
        return self._candidate(
            f"csa_amendment:{ns}:{action}", "csa_amendment", action, [ns], (), text, {ns: ev.row},
            details={"csa_before": None if old is None else old.model_dump(mode="json"),
                     "csa_after": csa.model_dump(mode="json")},
            changes=(_SetChange(ns, csa=csa, csa_changed=True),),
        )  # fmt: skip

    # ---- CVA hedges --------------------------------------------------------------------------

    def legs(self, cp: str, curve: CreditCurve, maturity: date) -> tuple[float, float, float]:
        """(RPV01, protection leg per unit LGD, recovery) of a CDS on `curve` to `maturity` (cached by name)."""
        if cp not in self._legs:
            hz = bootstrap_hazard(curve, self.as_of, self.usd_discount)
            annuity, protection = cds_legs(self.as_of, maturity, self.usd_discount, hz)
            self._legs[cp] = (annuity, protection, curve.recovery)
        return self._legs[cp]

    def hedges(self) -> list[Candidate]:
        if not self.base_parties:
            return []
        k_cva: dict[str, float] = defaultdict(float)
        for ns in self.ids:
            k_cva[self.cp_of[ns]] += self.rows[ns]["k_cva"]
        chosen = sorted((cp for cp in self.base_parties if k_cva[cp] > 0), key=lambda cp: (-k_cva[cp], cp))
        chosen = chosen[: self.opts.hedge_counterparties]
        reduced = ba_cva_reduced(list(self.base_parties.values()))
        scva = {c.id: c.scva for c in reduced.counterparties}
        months = round(12 * self.opts.hedge_maturity_years)
        maturity = add_months(self.as_of, months)
        m_h = _year_time(self.as_of, maturity)
        df_h = float(supervisory_discount_factor(m_h))
        tenor = f"{months // 12}Y" if months % 12 == 0 else f"{months}M"
        peers: dict[tuple[str, str], list[str]] = defaultdict(list)
        for p in self.book.counterparties:
            peers[(ba_cva_sector(p.sector), ba_cva_quality(p.rating))].append(p.counterparty_id)
        out = []
        for cp in chosen:
            sector, quality = self.quality[cp]
            party = self.book.counterparty(cp)
            rpv01, prot, rec = self.legs(cp, party.credit_curve, maturity)
            notional = scva[cp] / (risk_weight(sector, quality) * m_h * df_h)
            single = SingleNameHedge(
                id=f"CDS-{cp}", counterparty=cp, relation="direct", notional=notional, maturity_years=m_h
            )
            out.append(
                self._hedge(cp, "single_name_cds", single, rpv01, prot, rec, self.opts.single_name_bid_offer_bp,
                            f"buy {tenor} single-name CDS protection on {cp}", k_cva[cp])
            )  # fmt: skip
            names = peers[(ba_cva_sector(party.sector), ba_cva_quality(party.rating))]
            legs = np.array([self.legs(n, self.book.counterparty(n).credit_curve, maturity) for n in names])
            idx_rpv01, idx_prot, idx_rec = (float(x) for x in legs.mean(axis=0))
            index = IndexHedge(
                id=f"IDX-{cp}", notional=RHO * scva[cp] / (INDEX_SCALE * risk_weight(sector, quality) * m_h * df_h),
                maturity_years=m_h, sector=sector, credit_quality=quality,  # type: ignore[arg-type]
            )  # fmt: skip
            out.append(
                self._hedge(cp, "index_cds", index, idx_rpv01, idx_prot, idx_rec, self.opts.index_bid_offer_bp,
                            f"buy index CDS protection on the {sector} {quality} names ({len(names)} peers of {cp} "
                            "in the book)", k_cva[cp])
            )  # fmt: skip
        return out

    def _hedge(
        self,
        cp: str,
        action: str,
        hedge: SingleNameHedge | IndexHedge,
        rpv01: float,
        protection: float,
        recovery: float,
        bid_offer_bp: float,
        text: str,
        k_cva: float,
    ) -> Candidate:
        sets = self.sets_of_cp[cp]
        self._rpv01[hedge.id] = rpv01
        before = self.before_figures(sets)
        after = dict(before)
        after["ba_cva_capital"] = self._ba_cva({}, [hedge])
        par = (1.0 - recovery) * protection / rpv01 if rpv01 > 0 else 0.0
        spread = par + 0.5 * bid_offer_bp / 1e4
        carry = hedge.notional * (spread * rpv01 - (1.0 - recovery) * protection)
        saved = before["ba_cva_capital"] - after["ba_cva_capital"]
        saving = self.coc * saved * rpv01
        description = (
            f"{text}: USD {hedge.notional:,.0f} at {spread * 1e4:,.1f} bp; BA-CVA capital "
            f"{before['ba_cva_capital']:,.0f} -> {after['ba_cva_capital']:,.0f} (full with the hedge), "
            f"KVA saving {saving:,.0f} less carry {carry:,.0f}"
        )
        return Candidate(
            id=f"cva_hedge:{cp}:{action}", kind="cva_hedge", action=action, netting_set_ids=tuple(sets),
            counterparty_ids=(cp,), trade_ids=(), description=description, before=before, after=after,
            benefit=saving - carry, kva_saving=saving, carry=carry,
            details={"hedge": hedge.model_dump(mode="json"), "stand_alone_k_cva": k_cva, "rpv01": rpv01,
                     "par_spread": par, "spread": spread, "capital_saved": saved, "cost_of_capital": self.coc,
                     "protection_value": hedge.notional * (1 - recovery) * protection},
            hedge=hedge, hedge_rpv01=rpv01,
        )  # fmt: skip

    # ---- shared ------------------------------------------------------------------------------

    def _csa_detail(self, ns: str, csa: CSA | None) -> dict[str, Any]:
        old = self.book.netting_set(ns).csa
        if csa == old:
            return {}
        return {"csa_after": None if csa is None else csa.model_dump(mode="json")}

    def _candidate(
        self,
        cid: str,
        kind: str,
        action: str,
        sets: Sequence[str],
        trade_ids: Sequence[str],
        description: str,
        rows_after: dict[str, dict[str, float]],
        *,
        details: dict[str, Any],
        changes: tuple[_SetChange, ...],
        ccp: Mapping[str, float] | None = None,
        ccp_values: np.ndarray | None = None,
    ) -> Candidate:
        before = self.before_figures(sets)
        after = _with_ccp(self.after_figures(sets, rows_after), ccp)
        benefit = before["total_with_wrong_way"] - after["total_with_wrong_way"]
        return Candidate(
            id=cid, kind=kind, action=action, netting_set_ids=tuple(sets),
            counterparty_ids=tuple(dict.fromkeys(self.cp_of[ns] for ns in sets)), trade_ids=tuple(trade_ids),
            description=description, before=before, after=after, benefit=benefit, details=details,
            changes=changes, rows_after=rows_after, ccp_values=ccp_values,
        )  # fmt: skip

    def _try(
        self, build: Callable[[], Candidate], kind: str, sets: Sequence[str], action: str = ""
    ) -> Candidate | None:
        try:
            return build()
        except _Skip as exc:
            self.skip(kind, action, sets, str(exc))
            return None

    # ---- the strategy ------------------------------------------------------------------------

    def _combined_row(self, ns: str, cs: Sequence[Candidate]) -> dict[str, float]:
        """The set's row with every change of `cs` at once (one evaluation, remembered)."""
        if len(cs) == 1:
            return cs[0].rows_after[ns]
        key = (ns, tuple(sorted(c.id for c in cs)))
        if key not in self._combined_rows:
            removed: dict[str, Any] = {}
            added: dict[str, Any] = {}
            csa, csa_changed = None, False
            for c in cs:
                for ch in c.changes:
                    if ch.netting_set_id == ns:
                        removed.update({t.trade_id: t for t in ch.removed})
                        added.update({t.trade_id: t for t in ch.added})
                        if c.kind == "csa_amendment":
                            csa, csa_changed = ch.csa, True
            change = _SetChange(ns, tuple(removed.values()), tuple(added.values()), csa, csa_changed)
            self._combined_rows[key] = self.evaluate(change).row
        return self._combined_rows[key]

    def _resized(
        self, c: Candidate, scva: Mapping[str, float]
    ) -> tuple[SingleNameHedge | IndexHedge, float, float] | None:
        """The hedge sized to the counterparty's SCVA left by the other actions: (hedge, carry, capital weight)."""
        assert c.hedge is not None
        cp = c.counterparty_ids[0]
        base = self._base_scva.get(cp, 0.0)
        scale = scva.get(cp, 0.0) / base if base > 0 else 0.0
        if not scale > 0:
            return None
        hedge = c.hedge.model_copy(update={"notional": c.hedge.notional * scale})
        return hedge, c.carry * scale, c.details["capital_saved"] * scale

    def combine(self, chosen: Sequence[Candidate], *, capital: bool = False) -> _Combined:
        """The benefit of candidates applied together: each touched set, the CCP and (with hedges, or `capital`) the
        BA-CVA re-evaluated."""
        by_set: dict[str, list[Candidate]] = defaultdict(list)
        for c in chosen:
            if c.kind != "cva_hedge":
                for ns in c.netting_set_ids:
                    by_set[ns].append(c)
        rows_after = {ns: self._combined_row(ns, cs) for ns, cs in by_set.items()}
        novated = [c for c in chosen if c.kind == "novation" and c.ccp_values is not None]
        ccp = None
        if novated:
            key = tuple(sorted(c.id for c in novated))
            if key not in self._ccp_memo:
                values = np.sum([c.ccp_values for c in novated], axis=0)
                moved = [t for c in novated for ch in c.changes for t in ch.moved]
                self._ccp_memo[key] = self.ccp_costs(values, moved)
            ccp = self._ccp_memo[key]
        saved = sum(
            self.rows[ns]["total_with_wrong_way"] - row["total_with_wrong_way"] for ns, row in rows_after.items()
        )
        saved -= ccp["mva"] + ccp["kva"] if ccp else 0.0
        hedging = [c for c in chosen if c.kind == "cva_hedge"]
        if not hedging and not capital:  # the BA-CVA changes only the hedges' saving
            return _Combined(rows_after, ccp, None, None, (), 0.0, 0.0, saved)
        parties = self.parties(rows_after)
        reduced = ba_cva_reduced(parties) if parties else None
        reduced_capital = reduced.capital if reduced is not None else 0.0
        scva = {p.id: p.scva for p in reduced.counterparties} if reduced is not None else {}
        sized = [r for c in hedging if (r := self._resized(c, scva)) is not None]
        hedges = tuple(h for h, _, _ in sized)
        full_capital = self._ba_cva(rows_after, hedges) if hedges else reduced_capital
        weights = np.array([w for _, _, w in sized])
        rpv01 = np.array([self._rpv01[h.id] for h in hedges])
        duration = float(weights @ rpv01 / weights.sum()) if hedges and weights.sum() > 0 else 0.0
        kva_saving = self.coc * (reduced_capital - full_capital) * duration
        carry = float(sum(c for _, c, _ in sized))
        benefit = saved + kva_saving - carry
        return _Combined(rows_after, ccp, reduced_capital, full_capital, hedges, kva_saving, carry, benefit)

    def gain(self, taken: Sequence[Candidate], candidate: Candidate) -> float:
        """The candidate's benefit next to those taken: the benefit of both together less that of those taken."""
        key = tuple(c.id for c in taken)
        if key not in self._benefit_memo:
            self._benefit_memo[key] = self.combine(taken).benefit if taken else 0.0
        try:
            with_it = self.combine([*taken, candidate]).benefit
        except _Skip:
            return -math.inf
        self._benefit_memo[(*key, candidate.id)] = with_it
        return with_it - self._benefit_memo[key]

    def strategy(self, candidates: Sequence[Candidate], gross: float, total_xva: float) -> Strategy:
        chosen, excluded = select_strategy(candidates, self.gain)
        combined = self.combine(chosen, capital=True)
        sets = list(self.ids)
        before = _figures((self.rows[ns] for ns in sets), self.base_ba_cva)
        after_rows = [combined.rows_after.get(ns, self.rows[ns]) for ns in sets]
        after = _with_ccp(_figures(after_rows, combined.ba_cva_full or 0.0), combined.ccp)
        settlement = float(sum(c.details.get("settlement_today", 0.0) for c in chosen))
        benefit = combined.benefit
        return Strategy(
            candidates=tuple(chosen), before=before, after=after, benefit=benefit,
            sum_of_benefits=float(sum(c.benefit for c in chosen)),
            benefit_bp_of_xva=benefit / abs(total_xva) * 1e4 if total_xva else 0.0,
            benefit_bp_of_notional=benefit / gross * 1e4 if gross > 0 else 0.0,
            settlement_today=settlement, kva_saving=combined.kva_saving, carry=combined.carry, ccp=combined.ccp,
            hedges=tuple(h.model_dump(mode="json") for h in combined.hedges), excluded=excluded,
        )  # fmt: skip


def _amount(trade: Any) -> float:
    return float(trade.notional if isinstance(trade, InterestRateSwap) else trade.buy_amount)


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------


def _check_kinds(kinds: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = [kinds]
    out = tuple(dict.fromkeys(kinds))
    if not out:
        raise ValueError(f"kinds: give at least one of {', '.join(KINDS)}")
    for i, k in enumerate(out):
        if k not in KINDS:
            raise ValueError(f"kinds[{i}]: {k!r} is not one of {', '.join(KINDS)}")
    return out


def optimise(
    session: XvaSession,
    *,
    kinds: Sequence[str] = KINDS,
    top: int = 20,
    options: OptimisationOptions | None = None,
    max_candidates: int | None = None,
) -> OptimisationReport:
    """Search the session's netting sets for candidates of `kinds`, evaluate each on the cached paths, rank them
    by benefit and choose the integrated strategy; `top` candidates are reported (all are used for the strategy).

    `max_candidates` overrides `options.max_candidates` (evaluations per kind). Raises ValueError naming the field
    for an unknown kind or `top` below 1.
    """
    started = time.perf_counter()
    wanted = _check_kinds(kinds)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top: at least 1 candidate, got {top!r}")
    opts = options or OptimisationOptions()
    if max_candidates is not None:
        opts = OptimisationOptions.model_validate({**opts.model_dump(), "max_candidates": max_candidates})
    opt = _Optimiser(session, opts)
    found: list[Candidate] = []
    if "compression" in wanted:
        found += opt.compressions()
    if "novation" in wanted:
        found += opt.novations()
    if "csa_amendment" in wanted:
        found += opt.csa_amendments()
    if "cva_hedge" in wanted:
        found += opt.hedges()
    ranked = sorted(found, key=lambda c: (-c.benefit, KINDS.index(c.kind), c.id))
    ranked = [replace(c, rank=i + 1) for i, c in enumerate(ranked)]
    trades = [t for ns in opt.ids for t in opt.trades_of[ns]]
    gross = gross_notional(trades, session.market)
    base = _figures(opt.rows.values(), opt.base_ba_cva)
    strategy = opt.strategy(ranked, gross, base["total_with_wrong_way"])
    book = {
        "netting_sets": float(len(opt.ids)),
        "trades": float(len(trades)),
        "gross_notional": gross,
        "total_xva": base["total_with_wrong_way"],
        **{f"base_{k}": v for k, v in base.items()},
    }
    return OptimisationReport(
        as_of=session.market.as_of.isoformat(), kinds=wanted, top=top, options=opts, book=book,
        candidates=tuple(ranked), strategy=strategy, skipped=tuple(opt.skipped), evaluations=opt.evaluations,
        seconds=time.perf_counter() - started,
    )  # fmt: skip
