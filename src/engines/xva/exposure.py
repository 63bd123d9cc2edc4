"""Exposures per netting set: netted values on the paths, collateral, and the exposure profiles.

**Collateral** (`CSA`, the bank's side; amounts in the collateral currency, converted at the path's FX). On
each exposure date t_k the variation margin held is the one called at t_k − MPOR on the value then:
target = max(V − threshold_received, 0) − max(−V − threshold_posted, 0); the balance moves to the target only
if the move is at least the minimum transfer amount (calls happen on the exposure grid; the balance on the
valuation date is its target). Independent amount (positive: held) adds to the variation margin; initial
margin received reduces the bank's exposure, initial margin posted (segregated) only the counterparty's:

    E⁺ = max(V − C − IA − IM_received, 0),  E⁻ = min(V − C − IA + IM_posted, 0)   (all in USD at t).

Trade flows falling inside the margin period of risk are not modelled separately (the values at t and at
t − MPOR carry them). An uncollateralised netting set has E⁺ = max(V, 0), E⁻ = min(V, 0).

**Profiles** on the exposure grid: EE = E[E⁺], ENE = E[E⁻] (undiscounted, USD at t) and their discounted
versions E[D(t)E⁺]; PFE at 95% and 99% (quantiles of E⁺); effective EE (non-decreasing), EPE and EEPE
(Basel: time-weighted averages of EE and effective EE over the first year or the longest maturity if
shorter); reported on the standard horizons 1D..10Y (interpolated linearly in time between grid dates).

**Run** (`run_exposures`): one scenario set for the book (same seed → same paths in every chunk), netting sets
processed in chunks bounded in trades and memory (`chunk_netting_sets`, deterministic, so workers split a book
the same way); each chunk's path-level exposures and its counterparties' credit paths are handed to
`on_chunk` for later adjustments (CVA, DVA, FVA, ...), and each netting set's netted value paths may be kept
in an `ExposureCache` for what-if valuation of extra trades on the same paths.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit, prange

from engines.xva.market import Market
from engines.xva.pricing import compile_trades, reference_names, value_on_paths
from engines.xva.scenarios import (
    DEFAULT_GRID,
    HORIZONS,
    CreditName,
    CreditPaths,
    ScenarioSet,
    credit_paths,
    simulate,
    tenor_date,
    time_grid,
)
from engines.xva.trades import CSA, Book, CreditDefaultSwap, check_against_market, trade_end

PFE_LEVELS = (0.95, 0.99)
EEPE_HORIZON = 1.0


# ---------------------------------------------------------------------------------------------
# Collateral
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollateralArrays:
    """CSA terms of some netting sets as arrays (row per netting set; collateralised = 0 for none)."""

    collateralised: np.ndarray  # uint8
    ccy: np.ndarray  # int64 index into the scenario currencies
    mpor_days: np.ndarray  # int64 calendar days
    threshold_received: np.ndarray
    threshold_posted: np.ndarray
    mta: np.ndarray
    independent_amount: np.ndarray
    im_received: np.ndarray
    im_posted: np.ndarray


def collateral_arrays(csas: Sequence[CSA | None], scenarios: ScenarioSet) -> CollateralArrays:
    n = len(csas)

    def col(fn, dtype=np.float64):
        return np.array([fn(c) if c is not None else 0 for c in csas], dtype=dtype).reshape(n)

    return CollateralArrays(
        collateralised=np.array([c is not None for c in csas], dtype=np.uint8).reshape(n),
        ccy=col(lambda c: scenarios.currency_index(c.currency), np.int64),
        mpor_days=col(lambda c: round(c.mpor_years * 365), np.int64),
        threshold_received=col(lambda c: c.threshold_received),
        threshold_posted=col(lambda c: c.threshold_posted),
        mta=col(lambda c: c.minimum_transfer_amount),
        independent_amount=col(lambda c: c.independent_amount),
        im_received=col(lambda c: c.initial_margin_received),
        im_posted=col(lambda c: c.initial_margin_posted),
    )


@njit(parallel=True, cache=True)
def _exposures(
    values, fx, exposure_idx, lag_idx, collateralised, ccy,
    th_r, th_p, mta, ia, im_r, im_p, pos, neg,
):  # fmt: skip
    """pos/neg[n, k, p] from values[n, d, p] (USD) along the exposure dates; lag_idx[n, k] is the call date."""
    n_sets = values.shape[0]
    n_paths = values.shape[2]
    n_exp = exposure_idx.shape[0]
    for job in prange(n_sets * n_paths):
        n = job // n_paths
        p = job % n_paths
        if collateralised[n] == 0:
            for k in range(n_exp):
                v = values[n, exposure_idx[k], p]
                pos[n, k, p] = max(v, 0.0)
                neg[n, k, p] = min(v, 0.0)
            continue
        c = ccy[n]
        balance = 0.0
        for k in range(n_exp):
            s = lag_idx[n, k]
            v_call = values[n, s, p] / fx[c, s, p]
            target = max(v_call - th_r[n], 0.0) - max(-v_call - th_p[n], 0.0)
            if k == 0 or abs(target - balance) >= mta[n]:
                balance = target
            e = exposure_idx[k]
            x = fx[c, e, p]
            net = values[n, e, p] - x * (balance + ia[n])
            pos[n, k, p] = max(net - x * im_r[n], 0.0)
            neg[n, k, p] = min(net + x * im_p[n], 0.0)


def collateralised_exposures(
    values: np.ndarray, scenarios: ScenarioSet, terms: CollateralArrays
) -> tuple[np.ndarray, np.ndarray]:
    """(E⁺, E⁻) [set, exposure date, path] from netted values [set, simulation date, path] and the CSA terms."""
    grid = scenarios.grid
    n = values.shape[0]
    lag = np.empty((n, len(grid.exposure)), dtype=np.int64)
    for i in range(n):
        days = int(terms.mpor_days[i]) if terms.collateralised[i] else 0
        if days not in grid.lags:
            raise ValueError(f"mpor: the scenario grid has no call dates for a {days}-day margin period of risk")
        lag[i] = grid.lags[days]
    pos = np.empty((n, len(grid.exposure), values.shape[2]))
    neg = np.empty_like(pos)
    _exposures(
        values, scenarios.fx, grid.exposure, lag, terms.collateralised, terms.ccy,
        terms.threshold_received, terms.threshold_posted, terms.mta, terms.independent_amount,
        terms.im_received, terms.im_posted, pos, neg,
    )  # fmt: skip
    return pos, neg


# ---------------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExposureProfile:
    """A netting set's exposure profile on the exposure grid (USD) and its Basel summaries."""

    netting_set_id: str
    times: np.ndarray
    ee: np.ndarray
    ene: np.ndarray
    ee_discounted: np.ndarray
    ene_discounted: np.ndarray
    pfe95: np.ndarray
    pfe99: np.ndarray
    effective_ee: np.ndarray
    epe: float
    eepe: float
    maturity: float

    def at(self, horizon_times: np.ndarray) -> dict[str, np.ndarray]:
        """EE, ENE, PFE95, PFE99 interpolated linearly in time at `horizon_times`."""
        return {
            name: np.interp(horizon_times, self.times, getattr(self, name))
            for name in ("ee", "ene", "pfe95", "pfe99", "ee_discounted")
        }


def effective_ee(ee: np.ndarray) -> np.ndarray:
    """Effective EE: the running maximum of EE from the valuation date on (Basel)."""
    return np.maximum.accumulate(ee)


def time_average(profile: np.ndarray, times: np.ndarray, horizon: float) -> float:
    """Σ_k profile(t_k)·Δt_k over 0 < t_k ≤ horizon, divided by the horizon (Basel EPE/EEPE weights)."""
    if horizon <= 0:
        return float(profile[0])
    k = np.searchsorted(times, horizon + 1e-12, side="right")
    dt = np.diff(times[:k])
    covered = float(dt.sum())
    if covered <= 0:
        return float(profile[0])
    return float(np.sum(profile[1:k] * dt) / covered)


def exposure_profile(
    netting_set_id: str, times: np.ndarray, pos: np.ndarray, neg: np.ndarray, discount: np.ndarray, maturity: float
) -> ExposureProfile:
    """Profile of one netting set from its path exposures pos/neg [date, path] and discount factors [date, path]."""
    ee = pos.mean(axis=1)
    eff = effective_ee(ee)
    pfe = np.quantile(pos, PFE_LEVELS, axis=1)
    horizon = min(EEPE_HORIZON, maturity)
    return ExposureProfile(
        netting_set_id=netting_set_id,
        times=times,
        ee=ee,
        ene=neg.mean(axis=1),
        ee_discounted=(pos * discount).mean(axis=1),
        ene_discounted=(neg * discount).mean(axis=1),
        pfe95=pfe[0],
        pfe99=pfe[1],
        effective_ee=eff,
        epe=time_average(ee, times, horizon),
        eepe=time_average(eff, times, horizon),
        maturity=maturity,
    )


def horizon_times(scenarios: ScenarioSet, horizons: Sequence[str] = HORIZONS) -> np.ndarray:
    as_of = scenarios.market.as_of
    return np.array([(tenor_date(as_of, h) - as_of).days / 365.0 for h in horizons])


def horizon_table(profile: ExposureProfile, scenarios: ScenarioSet, horizons: Sequence[str] = HORIZONS) -> dict:
    """{horizon: {ee, ene, pfe95, pfe99, ee_discounted}} on the standard horizons 1D..10Y."""
    values = profile.at(horizon_times(scenarios, horizons))
    return {h: {k: float(v[i]) for k, v in values.items()} for i, h in enumerate(horizons)}


# ---------------------------------------------------------------------------------------------
# The cache for what-if work
# ---------------------------------------------------------------------------------------------


@dataclass
class ExposureCache:
    """The scenario set and, per netting set, its netted value paths [simulation date, path] (USD, zero on dates
    the set does not need), kept in memory up to `max_bytes` (least recently used spilt to `directory` if given,
    else dropped), so a what-if trade is valued on the same paths and added without revaluing the set."""

    scenarios: ScenarioSet
    max_bytes: int = 512 * 2**20
    directory: Path | None = None
    dtype: type = np.float32
    _memory: OrderedDict[str, np.ndarray] = field(default_factory=OrderedDict)
    _bytes: int = 0

    def put(self, netting_set_id: str, values: np.ndarray) -> None:
        arr = np.ascontiguousarray(values, dtype=self.dtype)
        if netting_set_id in self._memory:
            self._bytes -= self._memory.pop(netting_set_id).nbytes
        self._memory[netting_set_id] = arr
        self._bytes += arr.nbytes
        while self._bytes > self.max_bytes and len(self._memory) > 1:
            key, old = self._memory.popitem(last=False)
            self._bytes -= old.nbytes
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)
                np.save(self._file(key), old)

    def get(self, netting_set_id: str) -> np.ndarray:
        if netting_set_id in self._memory:
            self._memory.move_to_end(netting_set_id)
            return self._memory[netting_set_id]
        if self.directory is not None and self._file(netting_set_id).exists():
            return np.load(self._file(netting_set_id), mmap_mode="r")
        raise KeyError(f"netting_set_id: {netting_set_id!r} has no cached value paths")

    def __contains__(self, netting_set_id: str) -> bool:
        return netting_set_id in self._memory or (self.directory is not None and self._file(netting_set_id).exists())

    def _file(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.npy"


# ---------------------------------------------------------------------------------------------
# The run, chunked by netting set
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExposureChunk:
    """Path-level results of one chunk, for the adjustments computed later (CVA, DVA, FVA, MVA, KVA)."""

    netting_set_ids: tuple[str, ...]
    counterparty_ids: tuple[str, ...]
    positive: np.ndarray  # [set, exposure date, path], USD: max(V − C − IA − IM received, 0)
    negative: np.ndarray  # [set, exposure date, path], USD: min(V − C − IA + IM posted, 0)
    credit: CreditPaths | None  # intensities of the chunk's counterparties, on the exposure dates
    times: np.ndarray | None = None  # [exposure date], years
    discount: np.ndarray | None = None  # [exposure date, path], the USD numeraire D(0, t) = exp(−∫r)
    values: np.ndarray | None = None  # [set, exposure date, path], USD: the netted value V before collateral


@dataclass
class ExposureRun:
    scenarios: ScenarioSet
    profiles: dict[str, ExposureProfile]
    seconds: dict[str, float]
    chunks: int


def chunk_netting_sets(book: Book, max_trades: int = 1500, max_sets: int = 24) -> list[list[str]]:
    """Netting sets grouped in book order into chunks of at most `max_trades` trades and `max_sets` sets (a set
    larger than `max_trades` is a chunk of its own). Deterministic: every worker splits a book the same way."""
    counts = {k: len(v) for k, v in book.trades_by_netting_set().items()}
    chunks: list[list[str]] = []
    current: list[str] = []
    load = 0
    for ns in book.netting_sets:
        n = counts[ns.netting_set_id]
        if current and (load + n > max_trades or len(current) >= max_sets):
            chunks.append(current)
            current, load = [], 0
        current.append(ns.netting_set_id)
        load += n
    if current:
        chunks.append(current)
    return chunks


def counterparty_credit(book: Book, counterparty_ids: Sequence[str]) -> list[CreditName]:
    out = []
    for cid in counterparty_ids:
        c = book.counterparty(cid)
        wwr = c.wrong_way
        out.append(
            CreditName(
                cid,
                c.credit_curve,
                c.intensity_volatility,
                driver=wwr.driver if wwr else None,
                correlation=wwr.correlation if wwr else 0.0,
            )
        )
    return out


def book_scenarios(book: Book, market: Market, grid: str, paths: int, seed: int) -> ScenarioSet:
    """The scenario set of a book: its grid with the call dates of every MPOR in its CSAs."""
    mpors = {round(n.csa.mpor_years * 365) for n in book.netting_sets if n.csa is not None}
    return simulate(market, time_grid(grid, market.as_of, sorted(mpors)), paths, seed)


def run_exposures(
    book: Book,
    market: Market,
    *,
    grid: str = DEFAULT_GRID,
    paths: int = 2000,
    seed: int = 1,
    scenarios: ScenarioSet | None = None,
    netting_sets: Sequence[str] | None = None,
    max_chunk_trades: int = 1500,
    max_chunk_sets: int = 24,
    with_credit: bool = True,
    cache: ExposureCache | None = None,
    on_chunk: Callable[[ExposureChunk], None] | None = None,
) -> ExposureRun:
    """Exposure profiles of the book's netting sets (all, or `netting_sets`), chunk by chunk."""
    clock = {"scenarios": 0.0, "compile": 0.0, "valuation": 0.0, "collateral": 0.0, "credit": 0.0, "profiles": 0.0}
    check_against_market(book, market)
    t0 = time.perf_counter()
    scen = scenarios or book_scenarios(book, market, grid, paths, seed)
    clock["scenarios"] = time.perf_counter() - t0
    grid_ = scen.grid
    wanted = set(netting_sets) if netting_sets is not None else None
    by_set = book.trades_by_netting_set()
    profiles: dict[str, ExposureProfile] = {}
    chunks = [
        [ns for ns in chunk if wanted is None or ns in wanted]
        for chunk in chunk_netting_sets(book, max_chunk_trades, max_chunk_sets)
    ]
    chunks = [c for c in chunks if c]
    exposure_times = grid_.exposure_times
    discount = scen.numeraire[grid_.exposure]
    t0 = time.perf_counter()
    references = sorted(
        {
            book.trades[i].reference
            for chunk in chunks
            for ns in chunk
            for i in by_set[ns]
            if isinstance(book.trades[i], CreditDefaultSwap)
        }
    )
    ref_credit = credit_paths(scen, reference_names(market, references), dates="all") if references else None
    clock["credit"] += time.perf_counter() - t0
    for chunk in chunks:
        t0 = time.perf_counter()
        sets = [book.netting_set(ns) for ns in chunk]
        idx = [i for k, ns in enumerate(chunk) for i in by_set[ns]]
        slot = np.array([k for k, ns in enumerate(chunk) for _ in by_set[ns]], dtype=np.int64)
        trades = [book.trades[i] for i in idx]
        tables = compile_trades(trades, slot, scen, len(chunk))
        terms = collateral_arrays([s.csa for s in sets], scen)
        mask = np.zeros((len(chunk), len(grid_.times)), dtype=np.uint8)
        mask[:, grid_.exposure] = 1
        for k in range(len(chunk)):
            if terms.collateralised[k]:
                mask[k, grid_.lags[int(terms.mpor_days[k])]] = 1
        clock["compile"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        values = value_on_paths(tables, scen, mask, ref_credit)
        clock["valuation"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        pos, neg = collateralised_exposures(values, scen, terms)
        clock["collateral"] += time.perf_counter() - t0
        if cache is not None:
            for k, ns in enumerate(chunk):
                cache.put(ns, values[k])
        exposure_values = values[:, grid_.exposure, :] if on_chunk is not None else None
        del values
        t0 = time.perf_counter()
        cps = tuple(s.counterparty_id for s in sets)
        credit = None
        if with_credit:
            unique = list(dict.fromkeys(cps))
            credit = credit_paths(scen, counterparty_credit(book, unique))
        clock["credit"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for k, ns in enumerate(chunk):
            ends = [trade_end(book.trades[i]) for i in by_set[ns]]
            maturity = max(((e - market.as_of).days / 365.0 for e in ends), default=0.0)
            profiles[ns] = exposure_profile(ns, exposure_times, pos[k], neg[k], discount, maturity)
        clock["profiles"] += time.perf_counter() - t0
        if on_chunk is not None:
            on_chunk(ExposureChunk(tuple(chunk), cps, pos, neg, credit, exposure_times, discount, exposure_values))
    return ExposureRun(scen, profiles, clock, len(chunks))


def what_if(
    cache: ExposureCache, book: Book, netting_set_id: str, extra_trades: Sequence
) -> tuple[ExposureProfile, np.ndarray, np.ndarray]:
    """The netting set's profile (and its E⁺, E⁻ paths) with `extra_trades` added, from the cached value paths:
    only the extra trades are valued."""
    scen = cache.scenarios
    grid_ = scen.grid
    ns = book.netting_set(netting_set_id)
    terms = collateral_arrays([ns.csa], scen)
    mask = np.zeros((1, len(grid_.times)), dtype=np.uint8)
    mask[0, grid_.exposure] = 1
    if terms.collateralised[0]:
        mask[0, grid_.lags[int(terms.mpor_days[0])]] = 1
    tables = compile_trades(list(extra_trades), np.zeros(len(extra_trades), dtype=np.int64), scen, 1)
    values = np.asarray(cache.get(netting_set_id), dtype=np.float64)[None].copy()
    value_on_paths(tables, scen, mask, out=values)
    pos, neg = collateralised_exposures(values, scen, terms)
    trades = [book.trades[i] for i in book.trades_by_netting_set()[netting_set_id]] + list(extra_trades)
    as_of = scen.market.as_of
    maturity = max((trade_end(t) - as_of).days / 365.0 for t in trades)
    discount = scen.numeraire[grid_.exposure]
    return exposure_profile(netting_set_id, grid_.exposure_times, pos[0], neg[0], discount, maturity), pos[0], neg[0]
