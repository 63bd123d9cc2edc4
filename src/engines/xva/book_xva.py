"""XVA of a whole book: exposures simulated netting set by netting set, then every adjustment and the capital.

`run_xva` joins the engine's parts. One scenario set for the book (`exposure.run_exposures`, chunked by
netting set so memory stays bounded); for each chunk, while its paths are in memory:

- the collateralised exposure profiles, discounted with the simulation's numeraire, and the uncollateralised
  ones (the collateral stresses start from them);
- the initial margin the bank posts, projected along the paths by regression (`initial_margin`), rescaled to
  today's amount in the CSA, for the MVA;
- the counterparties' survival curves (bootstrapped from their CDS spreads) and the bank's own, for CVA, DVA
  and the funding weights; and the wrong-way add-on: the CVA with each path's simulated default intensity
  (correlated to the exposure's drivers where the counterparty has a wrong-way driver) minus the CVA with
  independent default on the same paths (`wrong_way.wrong_way_cva`), with its standard error;
- the SA-CCR capital profile of each netting set aged along the grid (`saccr_book`, `adjustments`), for the KVA.

Then the adjustments of all netting sets at once (`adjustments.xva`): CVA (bilateral by default), DVA, FCA and
FBA at the desk's borrowing and lending spreads, MVA, KVA; the total adds the wrong-way add-on unless
`wrong_way=False`. Capital today per netting set is its SA-CCR EAD (alpha x (RC + multiplier x add-on), RC from
today's collateralised value), K_CCR = 8% x RW x EAD, and the book's reduced BA-CVA capital over all
counterparties (MAR50.14).

Same book, market, options and seed give the same figures however the book is chunked or split across
workers: each netting set depends only on its own trades and the shared paths. `XvaSession` keeps the paths
and each netting set's value paths so a trade can be added, removed or amended and the set repriced without
revaluing its other trades (`XvaSession.what_if`).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engines.xva.adjustments import (
    COMPONENTS,
    CapitalProfile,
    CreditInputs,
    ExposureProfiles,
    FundingSpreads,
    XvaOptions,
    XvaResult,
    capital_profile,
    capital_requirement,
    ead_profile,
    exposure_profiles_from_parts,
    xva,
)
from engines.xva.bacva import BaCvaResult, NettingSetExposure, ba_cva_reduced, risk_weight
from engines.xva.bacva import Counterparty as BaCvaCounterparty
from engines.xva.exposure import (
    ExposureCache,
    ExposureChunk,
    collateral_arrays,
    collateralised_exposures,
    counterparty_credit,
    exposure_profile,
    horizon_table,
    run_exposures,
)
from engines.xva.initial_margin import InitialMarginOptions, regression_initial_margin
from engines.xva.market import BASE_CURRENCY, Market, bootstrap_hazard
from engines.xva.pricing import compile_trades, value_on_paths
from engines.xva.saccr_book import ba_cva_quality, ba_cva_sector, ccr_risk_weight, saccr_netting_set
from engines.xva.scenarios import DEFAULT_GRID, ScenarioSet, credit_paths
from engines.xva.trades import CSA, Book, Trade, check_against_market, trade_end
from engines.xva.wrong_way import wrong_way_cva
from engines.xva.xva_stress import XvaScenario, XvaStressReport, stress_xva

__all__ = [
    "NettingSetParts",
    "TradeChange",
    "WhatIfResult",
    "XvaBookResult",
    "XvaRunOptions",
    "XvaSession",
    "book_totals",
    "run_xva",
]

Progress = Callable[[int, int], None]
ROW_FIELDS = (*COMPONENTS, "wrong_way", "wrong_way_stderr", "cva_stderr", "total_with_wrong_way")


class XvaRunOptions(BaseModel):
    """What a book run simulates and how it adds up (defaults: the desk's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grid: str = Field(DEFAULT_GRID, description="Exposure dates: tenor[:frequency] pieces, e.g. '1Y:monthly,30Y'.")
    paths: int = Field(2000, ge=2, le=1_000_000, description="Monte Carlo paths.")
    seed: int = Field(1, ge=0, description="Seed of the scenario paths (recorded in every result).")
    borrow_spread: float = Field(0.0060, ge=-0.05, le=0.2, description="Unsecured borrowing spread, decimals/year.")
    lend_spread: float = Field(0.0040, ge=-0.05, le=0.2, description="Unsecured lending spread, decimals/year.")
    wrong_way: bool = Field(True, description="Add the wrong-way CVA add-on to the total.")
    adjustments: XvaOptions = XvaOptions()
    initial_margin: InitialMarginOptions = InitialMarginOptions()
    max_chunk_trades: int = Field(1500, ge=1, description="Trades valued together at most (memory bound).")
    max_chunk_sets: int = Field(24, ge=1, description="Netting sets valued together at most.")


# ---------------------------------------------------------------------------------------------
# What the adjustments need, per netting set
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NettingSetParts:
    """Everything the adjustments and the capital need of some netting sets, rows in `ids` order."""

    ids: tuple[str, ...]
    counterparty_ids: tuple[str, ...]
    exposure: ExposureProfiles  # collateralised, discounted, with the IM posted
    uncollateralised: ExposureProfiles
    capital: CapitalProfile
    survival: np.ndarray  # [NS, T] counterparty survival on the exposure dates
    recovery: np.ndarray  # [NS]
    wrong_way: np.ndarray  # [NS] CVA with path intensities - CVA with independent default, same paths
    wrong_way_stderr: np.ndarray
    cva_stderr: np.ndarray
    summaries: tuple[dict[str, Any], ...]  # per set: trades, collateralised, maturity, EPE, EEPE, PFE, horizons

    @classmethod
    def concat(cls, parts: Sequence[NettingSetParts]) -> NettingSetParts:
        if len(parts) == 1:
            return parts[0]
        return cls(
            ids=tuple(i for p in parts for i in p.ids),
            counterparty_ids=tuple(i for p in parts for i in p.counterparty_ids),
            exposure=ExposureProfiles.concat([p.exposure for p in parts]),
            uncollateralised=ExposureProfiles.concat([p.uncollateralised for p in parts]),
            capital=CapitalProfile.concat([p.capital for p in parts]),
            survival=np.concatenate([p.survival for p in parts]),
            recovery=np.concatenate([p.recovery for p in parts]),
            wrong_way=np.concatenate([p.wrong_way for p in parts]),
            wrong_way_stderr=np.concatenate([p.wrong_way_stderr for p in parts]),
            cva_stderr=np.concatenate([p.cva_stderr for p in parts]),
            summaries=tuple(s for p in parts for s in p.summaries),
        )


@dataclass
class _Context:
    """What every chunk shares: the book, market, options, scenarios and the curves already bootstrapped."""

    book: Book
    market: Market
    options: XvaRunOptions
    scenarios: ScenarioSet
    survival: dict[str, tuple[np.ndarray, float]] = field(default_factory=dict)

    @property
    def times(self) -> np.ndarray:
        return self.scenarios.grid.exposure_times

    def counterparty_survival(self, counterparty_id: str) -> tuple[np.ndarray, float]:
        if counterparty_id not in self.survival:
            curve = self.book.counterparty(counterparty_id).credit_curve
            usd = self.market.currencies[BASE_CURRENCY].discount  # type: ignore[index]
            hz = bootstrap_hazard(curve, self.market.as_of, usd)
            self.survival[counterparty_id] = (np.asarray(hz.survival(self.times), dtype=np.float64), curve.recovery)
        return self.survival[counterparty_id]

    def own_survival(self) -> np.ndarray:
        usd = self.market.currencies[BASE_CURRENCY].discount  # type: ignore[index]
        return np.asarray(bootstrap_hazard(self.market.own_credit, self.market.as_of, usd).survival(self.times))

    def csa_amount(self, csa: CSA | None, amount: float) -> float:
        return 0.0 if csa is None else amount * self.market.fx_spot(csa.currency)


def _parts_of_chunk(
    ctx: _Context,
    chunk: ExposureChunk,
    trades: Mapping[str, Sequence[Any]],
    csas: Mapping[str, CSA | None] | None = None,
) -> NettingSetParts:
    """The adjustments' inputs for the netting sets of one chunk of exposures (paths in memory)."""
    book, market, opts = ctx.book, ctx.market, ctx.options
    times = ctx.times
    assert chunk.values is not None and chunk.discount is not None and chunk.credit is not None
    ids = chunk.netting_set_ids
    n_sets = len(ids)
    csa_of = {ns: (csas[ns] if csas is not None and ns in csas else book.netting_set(ns).csa) for ns in ids}
    im = np.zeros_like(chunk.positive)
    for k, ns in enumerate(ids):
        csa = csa_of[ns]
        posted = ctx.csa_amount(csa, csa.initial_margin_posted) if csa is not None else 0.0
        if posted > 0:
            paths = regression_initial_margin(times, chunk.values[k].T, options=opts.initial_margin, im_today=posted)
            im[k] = paths.paths.T
    exposure = exposure_profiles_from_parts(
        times, chunk.positive, chunk.negative, chunk.discount, initial_margin=im, netting_set_ids=ids
    )
    uncollateralised = exposure_profiles_from_parts(
        times, np.maximum(chunk.values, 0.0), np.minimum(chunk.values, 0.0), chunk.discount, netting_set_ids=ids
    )
    survival = np.empty((n_sets, times.size))
    recovery = np.empty(n_sets)
    wrong, wrong_se, cva_se = np.empty(n_sets), np.empty(n_sets), np.empty(n_sets)
    names = chunk.credit.names
    for k, cp in enumerate(chunk.counterparty_ids):
        survival[k], recovery[k] = ctx.counterparty_survival(cp)
        path_survival = np.exp(-chunk.credit.cumulative[names.index(cp)]).T
        ww = wrong_way_cva(times, chunk.positive[k].T, path_survival, recovery[k], chunk.discount.T)
        wrong[k], wrong_se[k], cva_se[k] = ww.excess, ww.excess_stderr, ww.independent_stderr
    parties = [book.counterparty(cp) for cp in chunk.counterparty_ids]
    capital = capital_profile(
        [saccr_netting_set(book, ns, market, trades[ns]) for ns in ids],
        times,
        ccr_risk_weight=[ccr_risk_weight(p.sector, p.rating) for p in parties],
        cva_risk_weight=[_cva_weight(p.sector, p.rating) for p in parties],
    )
    summaries = []
    for k, ns in enumerate(ids):
        party = parties[k]
        ends = [trade_end(t) for t in trades[ns]]
        maturity = max(((e - market.as_of).days / 365.0 for e in ends), default=0.0)
        profile = exposure_profile(ns, times, chunk.positive[k], chunk.negative[k], chunk.discount, maturity)
        summaries.append(
            {
                "trades": len(trades[ns]),
                "collateralised": csa_of[ns] is not None,
                "maturity_years": maturity,
                "value": float(chunk.values[k, 0].mean()),
                "epe": profile.epe,
                "eepe": profile.eepe,
                "pfe95_peak": float(profile.pfe95.max()),
                "pfe99_peak": float(profile.pfe99.max()),
                "ba_cva_sector": ba_cva_sector(party.sector),
                "ba_cva_quality": ba_cva_quality(party.rating),
                "horizons": horizon_table(profile, ctx.scenarios),
            }
        )
    return NettingSetParts(
        ids, chunk.counterparty_ids, exposure, uncollateralised, capital, survival, recovery,
        wrong, wrong_se, cva_se, tuple(summaries),
    )  # fmt: skip


def _cva_weight(sector: str, rating: str) -> float:
    return risk_weight(ba_cva_sector(sector), ba_cva_quality(rating))


def _credit(ctx: _Context, parts: NettingSetParts) -> CreditInputs:
    return CreditInputs(parts.survival, parts.recovery, ctx.own_survival(), ctx.market.own_credit.recovery)


def _funding(opts: XvaRunOptions) -> FundingSpreads:
    return FundingSpreads(opts.borrow_spread, opts.lend_spread)


# ---------------------------------------------------------------------------------------------
# The book result
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class XvaBookResult:
    """The adjustments and capital of a book's netting sets, with what made them (options, seed, timings)."""

    as_of: str
    options: XvaRunOptions
    parts: NettingSetParts
    result: XvaResult
    credit: CreditInputs
    funding: FundingSpreads
    ead: np.ndarray  # [NS] SA-CCR EAD today
    k_ccr: np.ndarray  # [NS] 8% x RW x EAD
    k_cva: np.ndarray  # [NS] stand-alone reduced BA-CVA capital
    ba_cva: BaCvaResult | None
    exposure_dates: int
    seconds: dict[str, float]
    peak_memory_mb: float

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready row per netting set."""
        res = self.result
        cols = {name: res.component(name) for name in COMPONENTS}
        with_ww = res.total + (self.parts.wrong_way if self.options.wrong_way else 0.0)
        out = []
        book = self.parts
        for i, ns in enumerate(book.ids):
            cap = book.capital
            out.append(
                {
                    "id": ns,
                    "counterparty_id": book.counterparty_ids[i],
                    **{k: v for k, v in book.summaries[i].items() if k != "horizons"},
                    "ead": float(self.ead[i]),
                    "k_ccr": float(self.k_ccr[i]),
                    "k_cva": float(self.k_cva[i]),
                    "effective_maturity": float(cap.effective_maturity[i, 0]),
                    "cva_risk_weight": float(cap.cva_risk_weight[i]),
                    **{name: float(cols[name][i]) for name in COMPONENTS},
                    "wrong_way": float(book.wrong_way[i]),
                    "wrong_way_stderr": float(book.wrong_way_stderr[i]),
                    "cva_stderr": float(book.cva_stderr[i]),
                    "total_with_wrong_way": float(with_ww[i]),
                    "horizons": book.summaries[i]["horizons"],
                }
            )
        return out

    def totals(self) -> dict[str, float]:
        return book_totals(self.rows(), self.ba_cva)

    def stress(self, scenarios: Sequence[XvaScenario] | None = None) -> XvaStressReport:
        """The desk's stresses (credit +-100 bp, funding +-50 bp, collateral 0-120%) on these netting sets."""
        p = self.parts
        return stress_xva(
            p.exposure, self.credit, self.funding, p.capital,
            scenarios=scenarios, options=self.options.adjustments, uncollateralised=p.uncollateralised,
        )  # fmt: skip

    def to_dict(self, netting_sets: bool = True) -> dict[str, Any]:
        rows = self.rows()
        out = {
            "as_of": self.as_of,
            "currency": BASE_CURRENCY,
            "run": {
                **self.options.model_dump(mode="json", exclude={"adjustments", "initial_margin"}),
                "exposure_dates": self.exposure_dates,
                "netting_sets": len(rows),
                "trades": int(sum(r["trades"] for r in rows)),
            },
            "conventions": self.result.to_dict()["conventions"],
            "totals": book_totals(rows, self.ba_cva),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "peak_memory_mb": round(self.peak_memory_mb, 1),
        }
        if netting_sets:
            out["netting_sets"] = rows
        return out


def book_totals(rows: Sequence[Mapping[str, Any]], ba_cva: BaCvaResult | None = None) -> dict[str, Any]:
    """Sums over netting set rows (adjustments, EAD, capital), standard errors in quadrature, and the BA-CVA."""
    out: dict[str, Any] = {name: float(sum(r[name] for r in rows)) for name in (*COMPONENTS, "wrong_way")}
    out["total_with_wrong_way"] = float(sum(r["total_with_wrong_way"] for r in rows))
    for name in ("cva_stderr", "wrong_way_stderr"):
        out[name] = float(np.sqrt(sum(r[name] ** 2 for r in rows)))
    for name in ("ead", "k_ccr", "epe", "eepe"):
        out[name] = float(sum(r[name] for r in rows))
    ba = ba_cva if ba_cva is not None else book_ba_cva(rows)
    out["ba_cva_capital"] = ba.capital if ba is not None else 0.0
    out["ba_cva_rwa"] = ba.rwa if ba is not None else 0.0
    out["ccr_rwa"] = out["k_ccr"] * 12.5
    return out


def book_ba_cva(rows: Sequence[Mapping[str, Any]]) -> BaCvaResult | None:
    """Reduced BA-CVA over the counterparties of `rows` (each netting set's EAD and effective maturity)."""
    by_party: dict[str, list[NettingSetExposure]] = {}
    quality: dict[str, tuple[str, str]] = {}
    for r in rows:
        if r["ead"] <= 0:
            continue
        by_party.setdefault(r["counterparty_id"], []).append(
            NettingSetExposure(id=r["id"], ead=r["ead"], maturity_years=r["effective_maturity"])
        )
        quality[r["counterparty_id"]] = (r["ba_cva_sector"], r["ba_cva_quality"])
    if not by_party:
        return None
    parties = [
        BaCvaCounterparty(id=cp, sector=quality[cp][0], credit_quality=quality[cp][1], netting_sets=sets)  # type: ignore[arg-type]
        for cp, sets in by_party.items()
    ]
    return ba_cva_reduced(parties)


def _peak_memory_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _evaluate(
    ctx: _Context, parts: NettingSetParts
) -> tuple[XvaResult, CreditInputs, np.ndarray, np.ndarray, np.ndarray]:
    credit = _credit(ctx, parts)
    result = xva(parts.exposure, credit, _funding(ctx.options), parts.capital, ctx.options.adjustments)
    ead = ead_profile(parts.capital, parts.exposure.ee_forward, parts.exposure.value_forward)
    k_ccr, k_cva = capital_requirement(parts.capital, ead, ctx.options.adjustments.capital_ratio)
    return result, credit, ead[:, 0], k_ccr[:, 0], k_cva[:, 0]


def _trades_of(book: Book, ids: Sequence[str]) -> dict[str, list[Any]]:
    by_set = book.trades_by_netting_set()
    return {ns: [book.trades[i] for i in by_set[ns]] for ns in ids}


def run_xva(
    book: Book,
    market: Market,
    options: XvaRunOptions | None = None,
    *,
    netting_sets: Sequence[str] | None = None,
    scenarios: ScenarioSet | None = None,
    cache: ExposureCache | None = None,
    progress: Progress | None = None,
) -> XvaBookResult:
    """The XVA and capital of the book's netting sets (all, or `netting_sets`), chunk by chunk.

    `progress(done, total)` is called after each chunk with the netting sets done. With `cache`, each netting
    set's value paths are kept for what-if work.
    """
    opts = options or XvaRunOptions()
    started = time.perf_counter()
    check_against_market(book, market)
    wanted = list(netting_sets) if netting_sets is not None else [n.netting_set_id for n in book.netting_sets]
    for i, ns in enumerate(wanted):
        try:
            book.netting_set(ns)
        except KeyError:
            raise ValueError(f"netting_sets[{i}]: {ns!r} is not a netting set of the book") from None
    trades = _trades_of(book, wanted)
    parts: list[NettingSetParts] = []
    ctx_box: list[_Context] = []
    adjust_seconds = 0.0

    def on_chunk(chunk: ExposureChunk) -> None:
        nonlocal adjust_seconds
        t0 = time.perf_counter()
        parts.append(_parts_of_chunk(ctx_box[0], chunk, trades))
        adjust_seconds += time.perf_counter() - t0
        if progress is not None:
            progress(sum(len(p.ids) for p in parts), len(wanted))

    from engines.xva.exposure import book_scenarios

    t0 = time.perf_counter()
    scen = scenarios or book_scenarios(book, market, opts.grid, opts.paths, opts.seed)
    ctx_box.append(_Context(book, market, opts, scen))
    scenario_seconds = time.perf_counter() - t0
    run = run_exposures(
        book, market, scenarios=scen, netting_sets=wanted, max_chunk_trades=opts.max_chunk_trades,
        max_chunk_sets=opts.max_chunk_sets, cache=cache, on_chunk=on_chunk,
    )  # fmt: skip
    if not parts:
        raise ValueError("netting_sets: no netting set to value")
    t0 = time.perf_counter()
    joined = NettingSetParts.concat(parts)
    result, credit, ead, k_ccr, k_cva = _evaluate(ctx_box[0], joined)
    seconds = {**run.seconds, "scenarios": scenario_seconds, "inputs": adjust_seconds}
    out = XvaBookResult(
        as_of=market.as_of.isoformat(), options=opts, parts=joined, result=result, credit=credit,
        funding=_funding(opts), ead=ead, k_ccr=k_ccr, k_cva=k_cva, ba_cva=None,
        exposure_dates=len(scen.grid.exposure), seconds=seconds, peak_memory_mb=0.0,
    )  # fmt: skip
    ba = book_ba_cva(out.rows())
    seconds["adjustments"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    return replace(out, ba_cva=ba, seconds=seconds, peak_memory_mb=_peak_memory_mb())


# ---------------------------------------------------------------------------------------------
# What-if on cached paths
# ---------------------------------------------------------------------------------------------


class TradeChange(BaseModel):
    """Add a trade, remove one by id, or amend one (the new terms under the same id and netting set)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["add", "remove", "amend"] = "add"
    trade: Trade | None = None
    trade_id: str | None = Field(None, description="The trade removed (remove only).")

    @model_validator(mode="after")
    def _complete(self) -> TradeChange:
        if self.action == "remove":
            if self.trade_id is None:
                raise ValueError("trade_id: a removal names the trade to remove")
            if self.trade is not None:
                raise ValueError("trade: a removal takes only trade_id")
        elif self.trade is None:
            raise ValueError(f"trade: an {self.action} needs the trade's terms")
        elif self.trade_id is not None:
            raise ValueError("trade_id: give the id inside trade")
        return self

    @classmethod
    def parse(cls, data: Any) -> TradeChange:
        """A change, or a bare trade (an addition)."""
        if isinstance(data, Mapping) and "action" not in data and "type" in data:
            return cls.model_validate({"action": "add", "trade": data})
        return cls.model_validate(data)


WHAT_IF_FIELDS = (*ROW_FIELDS, "ead", "k_ccr", "k_cva", "epe", "eepe", "pfe99_peak", "value")


@dataclass(frozen=True)
class WhatIfResult:
    netting_set_id: str
    change: TradeChange
    before: dict[str, float]
    after: dict[str, float]
    seconds: float

    @property
    def difference(self) -> dict[str, float]:
        return {k: self.after[k] - self.before[k] for k in self.before}

    def to_dict(self) -> dict[str, Any]:
        return {
            "netting_set_id": self.netting_set_id,
            "change": self.change.model_dump(mode="json", exclude_none=True),
            "before": self.before,
            "after": self.after,
            "difference": self.difference,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class XvaSession:
    """A book run kept for what-if work: its scenarios, each netting set's value paths and its result."""

    book: Book
    market: Market
    options: XvaRunOptions
    scenarios: ScenarioSet
    cache: ExposureCache
    base: XvaBookResult

    @classmethod
    def open(
        cls,
        book: Book,
        market: Market,
        options: XvaRunOptions | None = None,
        *,
        netting_sets: Sequence[str] | None = None,
        cache_bytes: int = 2 * 2**30,
        progress: Progress | None = None,
    ) -> XvaSession:
        """Run the book (or `netting_sets` of it) keeping the value paths (float64 in memory up to `cache_bytes`)."""
        from engines.xva.exposure import book_scenarios

        opts = options or XvaRunOptions()
        scen = book_scenarios(book, market, opts.grid, opts.paths, opts.seed)
        cache = ExposureCache(scen, max_bytes=cache_bytes, dtype=np.float64)
        base = run_xva(book, market, opts, netting_sets=netting_sets, scenarios=scen, cache=cache, progress=progress)
        return cls(book, market, opts, scen, cache, base)

    def _context(self) -> _Context:
        return _Context(self.book, self.market, self.options, self.scenarios)

    def _mask(self, csa: CSA | None) -> np.ndarray:
        grid = self.scenarios.grid
        mask = np.zeros((1, len(grid.times)), dtype=np.uint8)
        mask[0, grid.exposure] = 1
        if csa is not None:
            mask[0, grid.lags[round(csa.mpor_years * 365)]] = 1
        return mask

    def evaluate(
        self, netting_set_id: str, values: np.ndarray, trades: Sequence[Any], csa: CSA | None = None
    ) -> dict[str, float]:
        """One netting set's row from its value paths [simulation date, path] (USD), trades and CSA."""
        scen = self.scenarios
        grid = scen.grid
        ns = self.book.netting_set(netting_set_id)
        terms = collateral_arrays([csa], scen)
        pos, neg = collateralised_exposures(np.asarray(values, dtype=np.float64)[None], scen, terms)
        credit = credit_paths(scen, counterparty_credit(self.book, [ns.counterparty_id]))
        chunk = ExposureChunk(
            (netting_set_id,), (ns.counterparty_id,), pos, neg, credit, grid.exposure_times,
            scen.numeraire[grid.exposure], np.asarray(values)[None, grid.exposure, :],
        )  # fmt: skip
        ctx = self._context()
        parts = _parts_of_chunk(ctx, chunk, {netting_set_id: list(trades)}, {netting_set_id: csa})
        result, credit_in, ead, k_ccr, k_cva = _evaluate(ctx, parts)
        row = XvaBookResult(
            self.base.as_of, self.options, parts, result, credit_in, _funding(self.options), ead, k_ccr, k_cva,
            None, len(grid.exposure), {}, 0.0,
        ).rows()[0]  # fmt: skip
        return {k: float(row[k]) for k in WHAT_IF_FIELDS}

    def trade_values(self, trades: Sequence[Any], csa: CSA | None) -> np.ndarray:
        """The trades' summed value paths [simulation date, path] on the session's scenarios."""
        tables = compile_trades(list(trades), np.zeros(len(trades), dtype=np.int64), self.scenarios, 1)
        return value_on_paths(tables, self.scenarios, self._mask(csa))[0]

    def what_if(self, change: TradeChange | Mapping[str, Any]) -> WhatIfResult:
        """The netting set's XVA and capital before and after the change, valuing only the trades changed."""
        started = time.perf_counter()
        ch = change if isinstance(change, TradeChange) else TradeChange.parse(change)
        book = self.book
        ids = {t.trade_id: t for t in book.trades}
        old = None
        if ch.action == "remove" or ch.action == "amend":
            tid = ch.trade_id if ch.action == "remove" else ch.trade.trade_id  # type: ignore[union-attr]
            if tid not in ids:
                raise ValueError(f"trade_id: no trade {tid!r} in the book")
            old = ids[tid]
        if ch.action == "add" and ch.trade.trade_id in ids:  # type: ignore[union-attr]
            raise ValueError(f"trade.trade_id: {ch.trade.trade_id!r} is already in the book; amend it instead")  # type: ignore[union-attr]
        new = ch.trade
        ns_id = (new or old).netting_set_id  # type: ignore[union-attr]
        if old is not None and new is not None and new.netting_set_id != old.netting_set_id:
            raise ValueError(
                f"trade.netting_set_id: an amendment stays in {old.netting_set_id!r}; remove and add to move a trade"
            )
        try:
            ns = book.netting_set(ns_id)
        except KeyError:
            raise ValueError(f"trade.netting_set_id: {ns_id!r} is not a netting set of the book") from None
        if new is not None:
            check_against_market(Book(counterparties=book.counterparties, netting_sets=[ns], trades=[new]), self.market)
        if ns_id not in self.cache:
            raise ValueError(f"netting_set_id: {ns_id!r} was not valued in this session")
        current = [book.trades[i] for i in book.trades_by_netting_set()[ns_id]]
        base_values = np.asarray(self.cache.get(ns_id), dtype=np.float64)
        values = base_values.copy()
        trades = list(current)
        if old is not None:
            values -= self.trade_values([old], ns.csa)
            trades = [t for t in trades if t.trade_id != old.trade_id]
        if new is not None:
            values += self.trade_values([new], ns.csa)
            trades.append(new)
        before = self.evaluate(ns_id, base_values, current, ns.csa)
        after = self.evaluate(ns_id, values, trades, ns.csa)
        return WhatIfResult(ns_id, ch, before, after, time.perf_counter() - started)
