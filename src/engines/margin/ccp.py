"""CCP initial margin: FHS VaR or expected shortfall with EMIR's anti-procyclicality options, the
concentration and liquidity add-ons, and the Euler allocation of each venue's margin to its positions.

Core margin. Each CCP revalues the venue's net portfolio (its positions' summed loadings) on its own
FHS horizon scenarios (`fhs.scenarios` at the model's lookback, margin period of risk and EWMA decay):
the loss in scenario ``s`` is ``L_s = −(Σ_f Δ_f · S[s, f] + ½ · Γ_f · S[s, f]²)``. VaR at confidence ``c``
is the loss whose scenarios beyond it carry a weight ``1 − c`` (with ``N`` equally weighted scenarios
and ``k = N(1 − c)`` an integer: the k-th worst loss); expected shortfall is the weighted mean loss of
the worst ``1 − c`` of weight, a boundary scenario counted in part (Acerbi and Tasche), so with
``k`` an integer it is the mean of the k worst losses. A margin is never negative.

Anti-procyclicality (EMIR RTS 153/2013 Art. 28(1)), by `CcpMarginModel.apc`:

- ``buffer`` (a): the requirement carries a buffer of ``apc_buffer`` (≥ 25%) on the unbuffered
  margin ``M``, exhausted when ``M`` rises significantly. The reference ``R`` is the mean of the
  unbuffered margin at the ``buffer_reference_samples`` as-of days ``buffer_reference_step_days``
  apart before today (a year of month-ends by default; today's book, each day's own vol, no vol
  multiplier: a stress applied today rises against an unstressed past; a reference day with less
  history than the lookback uses the scenarios it has, at least 250). The requirement is
  ``max(M, (1 + b) · min(M, (1 + θ) · R))`` with θ = `buffer_release_trigger`: the full buffer while
  ``M ≤ (1 + θ) R``; above that the requirement stays at ``(1 + b)(1 + θ) R`` — the buffer is
  released as margin rises — until ``M`` exceeds it, and it is never below ``M``. With no reference
  day in the history the buffer is kept in full.
- ``stressed_weight`` (b): the measure is taken over the lookback's FHS scenarios, weighted
  ``1 − w`` in all, together with the stressed observations, weighted ``w = apc_stressed_weight``
  (≥ 25%) in all. Stressed observations are raw (unfiltered) horizon returns: revolatilising them
  at today's vol would take the stress out. They are the days `FactorHistory.stressed` flags within
  the last `floor_lookback_days` (``stressed_period="flagged"``, the default; with no flagged day
  the worst window is used), or the CCP's own worst window (``"worst_window"``): the
  `stressed_window_days` consecutive days of the last 10 years over which the venue's portfolio had
  the largest sum of squared daily P&L.
- ``ten_year_floor`` (c): the margin is at least the same measure on raw (unfiltered) returns over
  the last `floor_lookback_days` (2,520, ten years; all the history if it is shorter). The floor is
  unfiltered because Art. 28(1)(c) asks for the volatility of a 10-year period: FHS would rescale it
  to today's.
- ``none``: the core margin.

A vol multiplier (stressed margin) scales today's volatility, i.e. the FHS scenarios; the stressed
observations, the 10-year floor and the buffer's reference are history and do not move, so each
option damps the rise as EMIR intends.

Add-ons. Concentration (`ConcentrationAddOn`): positions are grouped per venue by the factor whose
depth governs selling them (`position_liquidity_factor`); ``n`` is the group's net notional (each
position's notional signed by its delta on that factor), ``d`` the factor's depth, and ``σ_f · n`` is
read as the group's one-day P&L volatility ``σ_f · |Δ|`` (Δ: the group's delta on the factor; the
same as σ·n for a price factor, whose delta is the notional, and right in scale for rates and
spreads, whose delta carries the duration). ``σ_f`` is today's EWMA vol at the CCP's decay times the
vol multiplier. Liquidity (`LiquidityAddOn`): the half bid-ask spread of the position's asset class
on its gross notional.

Allocation (margin by margin). A venue's core and APC margin go to its positions by Euler: with
``A_s`` the weights by which the measure is a mean of scenario losses (the tail weights ``w_s/(1 − c)``
for ES; for VaR the ``var_neighbourhood`` scenarios either side of the quantile scenario, weighted by
their probability and scaled so that the weighted loss is the VaR), position ``p`` receives
``Σ_s A_s · L_p,s``; the delta-gamma loss is a sum over positions, so these add up to the venue's
figure exactly. A buffer scales the core's contributions; a binding floor or stressed weighting
allocates from its own scenarios. The concentration add-on goes to the positions of a group in
proportion to their signed notional (offsetting positions get a negative share), the liquidity
add-on to the position whose notional pays it. So every figure per manager, strategy or currency is
a sum of position pieces that adds up to the venues' totals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba import njit, prange
from pydantic import BaseModel, ConfigDict, Field

from engines.margin import fhs
from engines.margin.arrays import ASSET_CLASSES, FactorHistory, MarginBook
from engines.margin.venues import CcpMarginModel, ConcentrationAddOn

Progress = Callable[[int, int], None] | None


class CcpOptions(BaseModel):
    """How the CCP models are run where `CcpMarginModel` leaves a choice (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon: fhs.Horizon = Field("overlapping", description="MPOR by overlapping sums or √MPOR scaling.")
    var_neighbourhood: int = Field(
        2, ge=0, le=50, description="Scenarios either side of the VaR one in its allocation."
    )
    buffer_reference_step_days: int = Field(21, ge=1, le=252, description="Days between the buffer's reference days.")
    buffer_reference_samples: int = Field(12, ge=1, le=60, description="Reference days of the buffer (a year).")
    buffer_release_trigger: float = Field(
        0.10, ge=0.0, le=1.0, description="Rise above the reference beyond which the buffer is released."
    )
    stressed_period: Literal["flagged", "worst_window"] = "flagged"
    stressed_window_days: int = Field(250, ge=20, le=2520, description="Length of a worst window.")
    floor_lookback_days: int = Field(2520, ge=250, le=5040, description="Ten years of business days.")


@dataclass(frozen=True, eq=False)
class CcpMargin:
    """CCP initial margin per venue and its allocation to positions, in USD.

    Venues without a model (bilateral) have zeros. ``total_usd = core_usd + apc_usd +
    concentration_usd + liquidity_usd``; ``apc_usd`` is the APC option's effect (it may be negative
    under a stressed weighting when today is more volatile than the stress period). Each
    ``position_*_usd`` array adds up, venue by venue, to the matching venue array.
    """

    venues: tuple[str, ...]
    margined: np.ndarray  # bool [V], venues with a CCP model
    core_usd: np.ndarray  # [V] FHS VaR/ES over the lookback, no APC
    apc_usd: np.ndarray  # [V]
    concentration_usd: np.ndarray  # [V]
    liquidity_usd: np.ndarray  # [V]
    total_usd: np.ndarray  # [V]
    buffer_applied: np.ndarray  # [V] the buffer in force as a fraction of the unbuffered margin (NaN: no buffer)
    floor_binds: np.ndarray  # bool [V]
    stressed_days: tuple[tuple[str, str] | None, ...]  # first and last stressed observation used, per venue
    position_core_usd: np.ndarray  # [P]
    position_apc_usd: np.ndarray  # [P]
    position_concentration_usd: np.ndarray  # [P]
    position_liquidity_usd: np.ndarray  # [P]
    vol_multiplier: float

    @property
    def position_total_usd(self) -> np.ndarray:
        return (
            self.position_core_usd
            + self.position_apc_usd
            + self.position_concentration_usd
            + self.position_liquidity_usd
        )


# ---------------------------------------------------------------------------------------------
# tail measures


@njit(cache=True)
def _tail_column(
    col: np.ndarray, weights: np.ndarray, alpha: float, is_es: bool, neighbourhood: int, alloc: np.ndarray
) -> float:
    """The measure of one column of losses; fills `alloc` (zeros on entry) with its allocation weights."""
    n = col.shape[0]
    tol = alpha * 1e-9
    order = np.argsort(-col, kind="mergesort")
    if is_es:
        cum = 0.0
        total = 0.0
        for i in range(n):
            j = order[i]
            w = weights[j]
            take = min(w, alpha - cum)
            if take > 0.0:
                alloc[j] = take / alpha
                total += take * col[j]
            cum += w
            if cum >= alpha - tol:
                break
        return total / alpha
    cum = 0.0
    star = n - 1
    for i in range(n):
        cum += weights[order[i]]
        if cum >= alpha - tol:
            star = i
            break
    q = col[order[star]]
    lo = max(0, star - neighbourhood)
    hi = min(n - 1, star + neighbourhood)
    swl = 0.0
    for i in range(lo, hi + 1):
        swl += weights[order[i]] * col[order[i]]
    if neighbourhood > 0 and q > 0.0 and swl > 0.0:
        for i in range(lo, hi + 1):
            alloc[order[i]] = weights[order[i]] * q / swl
    else:
        alloc[order[star]] = 1.0
    return q


@njit(cache=True)
def _tail_serial(
    losses: np.ndarray, weights: np.ndarray, confidence: np.ndarray, is_es: np.ndarray, neighbourhood: int
) -> tuple[np.ndarray, np.ndarray]:
    n, r = losses.shape
    measure = np.zeros(r)
    alloc = np.zeros((r, n))
    for c in range(r):
        measure[c] = _tail_column(
            losses[:, c].copy(), weights[:, c].copy(), 1.0 - confidence[c], is_es[c], neighbourhood, alloc[c]
        )
    return measure, alloc.T.copy()


@njit(parallel=True, cache=True)
def _tail_parallel(
    losses: np.ndarray, weights: np.ndarray, confidence: np.ndarray, is_es: np.ndarray, neighbourhood: int
) -> tuple[np.ndarray, np.ndarray]:
    n, r = losses.shape
    measure = np.zeros(r)
    alloc = np.zeros((r, n))
    for c in prange(r):
        measure[c] = _tail_column(
            losses[:, c].copy(), weights[:, c].copy(), 1.0 - confidence[c], is_es[c], neighbourhood, alloc[c]
        )
    return measure, alloc.T.copy()


PARALLEL_WORK = 2_000_000
"""Scenario-columns above which the tail kernel runs in parallel: below, launching the thread pool costs
more than the work (tens of milliseconds a call on a loaded two-core machine against microseconds)."""


def tail_measure(
    losses: np.ndarray,
    confidence: float | np.ndarray,
    measure: Literal["var", "es"] | Sequence[str],
    *,
    weights: np.ndarray | None = None,
    var_neighbourhood: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(measure [R], allocation weights [N, R]) of the columns of `losses` [N, R] (a loss is positive).

    `weights` [N] or [N, R] are scenario probabilities (default equal; each column must sum to 1).
    ``measure_r = Σ_s alloc[s, r] · losses[s, r]`` exactly, which is what Euler allocation uses. The
    measure is not floored here (a portfolio may gain in its tail).
    """
    losses = np.ascontiguousarray(losses, dtype=np.float64)
    if losses.ndim != 2:
        raise ValueError(f"losses: expected a [scenarios, columns] array, got shape {losses.shape}")
    n, r = losses.shape
    conf = np.broadcast_to(np.asarray(confidence, dtype=np.float64), (r,)).copy()
    kinds = [measure] * r if isinstance(measure, str) else list(measure)
    if len(kinds) != r or any(k not in ("var", "es") for k in kinds):
        raise ValueError(f"measure: one of 'var' or 'es' per column expected, got {measure!r}")
    if np.any((conf <= 0.0) | (conf >= 1.0)):
        raise ValueError(f"confidence: must lie in (0, 1), got {conf}")
    if weights is None:
        w = np.full((n, r), 1.0 / n)
    else:
        w = np.asarray(weights, dtype=np.float64)
        w = np.ascontiguousarray(np.broadcast_to(w[:, None] if w.ndim == 1 else w, (n, r)))
        if np.any(w < 0) or not np.allclose(w.sum(axis=0), 1.0, rtol=0, atol=1e-9):
            raise ValueError("weights: must be non-negative and sum to 1 in each column")
    is_es = np.array([k == "es" for k in kinds])
    kernel = _tail_parallel if n * r > PARALLEL_WORK else _tail_serial
    return kernel(losses, w, conf, is_es, int(var_neighbourhood))


# ---------------------------------------------------------------------------------------------
# core and APC margin of exposure rows (a venue, or a venue's asset-class sub-portfolio)


@dataclass(frozen=True, eq=False)
class RowMargins:
    """Margin of R exposure rows: core and with-APC figures, and the scenario moments that allocate them.

    ``margin_r = −(Σ_f Δ_rf · a[r, f] + ½ · Γ_rf · b[r, f])`` (and likewise ``core`` with ``a0, b0``).
    """

    core: np.ndarray  # [R]
    margin: np.ndarray  # [R]
    a0: np.ndarray  # [R, F]
    b0: np.ndarray  # [R, F]
    a: np.ndarray  # [R, F]
    b: np.ndarray  # [R, F]
    buffer_applied: np.ndarray  # [R]
    floor_binds: np.ndarray  # bool [R]
    stressed_days: list[tuple[int, int] | None]  # first and last day of the stressed observations


def _losses(s: np.ndarray, s2: np.ndarray, delta: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """[N, R] losses of exposure rows on scenarios (delta-gamma)."""
    pnl = s @ delta.T
    if np.any(gamma):
        pnl += 0.5 * (s2 @ gamma.T)
    return -pnl


def _raw_windows(history: FactorHistory, ends: np.ndarray, mpor_days: int, horizon: str) -> np.ndarray:
    """[len(ends), F] raw horizon returns of the windows ending on the days `ends`."""
    r = history.returns
    if horizon == "sqrt_time":
        return r[ends] * np.sqrt(mpor_days)
    out = np.array(r[ends], dtype=np.float64, copy=True)
    for k in range(1, mpor_days):
        out += r[ends - k]
    return out


def _worst_windows(
    history: FactorHistory, delta: np.ndarray, gamma: np.ndarray, end: int, first: int, length: int
) -> np.ndarray:
    """[R] first day of the `length`-day window within [first, end] of largest Σ(daily P&L)² per row."""
    r = history.returns[first : end + 1]
    pnl = r @ delta.T + (0.5 * ((r * r) @ gamma.T) if np.any(gamma) else 0.0)
    length = min(length, len(r))
    c = np.concatenate([np.zeros((1, pnl.shape[1])), np.cumsum(pnl * pnl, axis=0)])
    sums = c[length:] - c[:-length]
    return first + np.argmax(sums, axis=0)


def _floored(measure: np.ndarray, alloc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    neg = measure <= 0.0
    if np.any(neg):
        measure = np.where(neg, 0.0, measure)
        alloc = alloc.copy()
        alloc[:, neg] = 0.0
    return measure, alloc


@dataclass(frozen=True, eq=False)
class _Group:
    """Rows sharing one scenario set (same lookback, MPOR and decay) at one as-of day."""

    history: FactorHistory
    opts: CcpOptions
    end: int
    lookback: int
    mpor: int
    decay: float
    rows: np.ndarray  # [G] row indices
    models: list[CcpMarginModel]
    delta: np.ndarray  # [G, F]
    gamma: np.ndarray  # [G, F]
    s: np.ndarray  # [N, F] FHS scenarios (with the vol multiplier)
    s2: np.ndarray

    @property
    def span(self) -> int:
        return self.mpor if self.opts.horizon == "overlapping" else 1

    def measure(
        self, s: np.ndarray, s2: np.ndarray, sel: np.ndarray, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Floored (measure, allocation) of the group's rows `sel` on scenarios `s`."""
        conf = np.array([self.models[j].confidence for j in sel])
        kind = [self.models[j].measure for j in sel]
        losses = _losses(s, s2, self.delta[sel], self.gamma[sel])
        return _floored(
            *tail_measure(losses, conf, kind, weights=weights, var_neighbourhood=self.opts.var_neighbourhood)
        )

    def scenarios(self, vol_multiplier: float, as_of: int, *, truncate: bool = False) -> np.ndarray:
        return fhs.scenarios(
            self.history,
            lookback_days=self.lookback,
            mpor_days=self.mpor,
            ewma_decay=self.decay,
            vol_multiplier=vol_multiplier,
            horizon=self.opts.horizon,
            as_of=as_of,
            truncate=truncate,
        )


def row_margins(
    history: FactorHistory,
    delta: np.ndarray,
    gamma: np.ndarray,
    models: Sequence[CcpMarginModel | None],
    *,
    vol_multiplier: float = 1.0,
    options: CcpOptions | None = None,
    as_of: int = -1,
    memo: dict | None = None,
) -> RowMargins:
    """Core and APC margin of exposure rows `delta`, `gamma` [R, F] under one model each (None: zero).

    The building block of `ccp_initial_margin`, of the stressed and model-change tools and of
    `margin_series`. `memo` caches unbuffered margins and floor scenarios between calls on the same rows.
    """
    opts = options or CcpOptions()
    delta = np.asarray(delta, dtype=np.float64)
    gamma = np.asarray(gamma, dtype=np.float64)
    n_rows, n_f = delta.shape
    if gamma.shape != delta.shape or n_f != len(history.factors) or len(models) != n_rows:
        raise ValueError(
            f"delta: shape {delta.shape}, gamma {gamma.shape}, {len(models)} models and "
            f"{len(history.factors)} factors do not agree"
        )
    end = fhs._as_of_index(history, as_of)
    memo = {} if memo is None else memo
    out = RowMargins(
        core=np.zeros(n_rows),
        margin=np.zeros(n_rows),
        a0=np.zeros((n_rows, n_f)),
        b0=np.zeros((n_rows, n_f)),
        a=np.zeros((n_rows, n_f)),
        b=np.zeros((n_rows, n_f)),
        buffer_applied=np.full(n_rows, np.nan),
        floor_binds=np.zeros(n_rows, dtype=bool),
        stressed_days=[None] * n_rows,
    )
    keys: dict[tuple[int, int, float], list[int]] = {}
    for i, m in enumerate(models):
        if m is not None:
            keys.setdefault((m.lookback_days, m.mpor_days, m.ewma_decay), []).append(i)
    for (lookback, mpor, decay), rows in keys.items():
        idx = np.array(rows)
        ms = [m for m in (models[i] for i in rows) if m is not None]
        s = fhs.scenarios(
            history,
            lookback_days=lookback,
            mpor_days=mpor,
            ewma_decay=decay,
            vol_multiplier=vol_multiplier,
            horizon=opts.horizon,
            as_of=end,
        )
        grp = _Group(history, opts, end, lookback, mpor, decay, idx, ms, delta[idx], gamma[idx], s, s * s)
        everyone = np.arange(len(idx))
        m_core, alloc = grp.measure(grp.s, grp.s2, everyone)
        out.core[idx] = m_core
        out.a0[idx] = alloc.T @ grp.s
        out.b0[idx] = alloc.T @ grp.s2
        out.margin[idx], out.a[idx], out.b[idx] = m_core, out.a0[idx], out.b0[idx]
        if vol_multiplier == 1.0:
            memo.update({(int(i), end): float(v) for i, v in zip(idx, m_core, strict=True)})
        apc = np.array([m.apc for m in ms])
        for option, apply in (("buffer", _buffer), ("ten_year_floor", _floor), ("stressed_weight", _stressed_weight)):
            sel = np.flatnonzero(apc == option)
            if len(sel):
                apply(grp, sel, out, memo)
    return out


def _buffer(grp: _Group, sel: np.ndarray, out: RowMargins, memo: dict) -> None:
    """Option (a): buffer released when the unbuffered margin rises above its reference."""
    opts, rows = grp.opts, grp.rows[sel]
    refs = []
    for k in range(1, opts.buffer_reference_samples + 1):
        at = grp.end - k * opts.buffer_reference_step_days
        if at < 0 or fhs.available_scenarios(grp.history, mpor_days=grp.span, as_of=at) < min(grp.lookback, 250):
            break
        missing = [j for j, i in zip(sel, rows, strict=True) if (int(i), at) not in memo]
        if missing:
            rs = grp.scenarios(1.0, at, truncate=True)
            ref_m, _ = grp.measure(rs, rs * rs, np.array(missing))
            memo.update({(int(grp.rows[j]), at): float(v) for j, v in zip(missing, ref_m, strict=True)})
        refs.append([memo[(int(i), at)] for i in rows])
    reference = np.mean(refs, axis=0) if refs else np.full(len(sel), np.inf)
    buf = np.array([grp.models[j].apc_buffer for j in sel])
    unbuffered = out.core[rows]
    capped = np.minimum(unbuffered, (1.0 + opts.buffer_release_trigger) * reference)
    buffered = np.maximum(unbuffered, (1.0 + buf) * capped)
    factor = np.divide(buffered, unbuffered, out=np.zeros_like(buffered), where=unbuffered > 0)
    out.margin[rows] = buffered
    out.a[rows] = out.a0[rows] * factor[:, None]
    out.b[rows] = out.b0[rows] * factor[:, None]
    out.buffer_applied[rows] = np.where(unbuffered > 0, factor - 1.0, buf)


def _floor(grp: _Group, sel: np.ndarray, out: RowMargins, memo: dict) -> None:
    """Option (c): no lower than the same measure on ten years of raw returns."""
    rows = grp.rows[sel]
    key = ("floor", grp.mpor, grp.end)
    if key not in memo:
        fs = fhs.scenarios(
            grp.history,
            lookback_days=grp.opts.floor_lookback_days,
            mpor_days=grp.mpor,
            filtered=False,
            horizon=grp.opts.horizon,
            as_of=grp.end,
            truncate=True,
        )
        memo[key] = (fs, fs * fs)
    fs, fs2 = memo[key]
    m_floor, alloc = grp.measure(fs, fs2, sel)
    binds = m_floor > out.core[rows]
    out.floor_binds[rows] = binds
    out.margin[rows] = np.maximum(out.core[rows], m_floor)
    out.a[rows] = np.where(binds[:, None], alloc.T @ fs, out.a0[rows])
    out.b[rows] = np.where(binds[:, None], alloc.T @ fs2, out.b0[rows])


def _stressed_weight(grp: _Group, sel: np.ndarray, out: RowMargins, memo: dict) -> None:
    """Option (b): weight w on the stressed observations, 1 − w on the lookback's scenarios."""
    opts, history, end = grp.opts, grp.history, grp.end
    first = max(end - opts.floor_lookback_days + 1, grp.span - 1)
    n = len(grp.s)
    flagged = np.flatnonzero(history.stressed[first : end + 1]) + first
    if opts.stressed_period == "flagged" and len(flagged):
        ends_per_row = [flagged] * len(sel)
    else:
        length = min(opts.stressed_window_days, end - first + 1)
        starts = _worst_windows(history, grp.delta[sel], grp.gamma[sel], end, first, length)
        ends_per_row = [np.arange(st, st + length) for st in starts]
    for j, ends in zip(sel, ends_per_row, strict=True):
        row = grp.rows[j]
        w = grp.models[j].apc_stressed_weight
        st = _raw_windows(history, ends, grp.mpor, opts.horizon)
        both = np.concatenate([grp.s, st])
        both2 = both * both
        weights = np.concatenate([np.full(n, (1.0 - w) / n), np.full(len(st), w / len(st))])
        m, alloc = grp.measure(both, both2, np.array([j]), weights=weights)
        out.margin[row] = m[0]
        out.a[row] = alloc[:, 0] @ both
        out.b[row] = alloc[:, 0] @ both2
        out.stressed_days[row] = (int(ends[0]), int(ends[-1]))


# ---------------------------------------------------------------------------------------------
# add-ons


def concentration_add_on(
    net_notional_usd: np.ndarray,
    exposure_usd: np.ndarray,
    depth_usd: np.ndarray,
    daily_vol: np.ndarray,
    terms: ConcentrationAddOn,
) -> np.ndarray:
    """``coefficient · σ · |exposure| · ((|n| / depth − threshold_days)⁺)^exponent``, elementwise, in USD.

    `net_notional_usd` is the net notional held against `depth_usd` (notional tradable a day),
    `exposure_usd` the delta whose one-day P&L volatility is ``σ · |exposure|``.
    """
    days = np.abs(net_notional_usd) / depth_usd
    excess = np.maximum(days - terms.threshold_days, 0.0)
    return terms.coefficient * daily_vol * np.abs(exposure_usd) * excess**terms.exponent


def _liquidity_delta(arrays: MarginBook) -> np.ndarray:
    """[P] each position's delta on its liquidity factor."""
    on = arrays.load_factor == arrays.position_liquidity_factor[arrays.load_position]
    return np.bincount(arrays.load_position[on], weights=arrays.load_delta[on], minlength=len(arrays.position_ids))


def _add_ons(
    arrays: MarginBook,
    history: FactorHistory,
    models: Sequence[CcpMarginModel | None],
    vol_multiplier: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(concentration [V], liquidity [V], position concentration [P], position liquidity [P])."""
    n_f, n_v, n_p, _ = arrays.shape
    pos_v, liq_f = arrays.position_venue, arrays.position_liquidity_factor
    pdelta = _liquidity_delta(arrays)
    signed = np.where(pdelta < 0, -1.0, 1.0) * arrays.position_notional_usd
    net = np.zeros((n_v, n_f))
    expo = np.zeros((n_v, n_f))
    np.add.at(net, (pos_v, liq_f), signed)
    np.add.at(expo, (pos_v, liq_f), pdelta)
    conc = np.zeros((n_v, n_f))
    liq_v = np.zeros(n_v)
    pos_liq = np.zeros(n_p)
    classes = list(ASSET_CLASSES)
    for v, m in enumerate(models):
        if m is None:
            continue
        vol = fhs.current_vol(history, m.ewma_decay) * vol_multiplier
        conc[v] = concentration_add_on(net[v], expo[v], arrays.factor_depth_usd, vol, m.concentration)
        at = pos_v == v
        spread = np.array([m.liquidity.spread_bp.get(c, 0.0) for c in classes]) / 1e4  # type: ignore[call-overload]
        pos_liq[at] = spread[arrays.position_class[at]] * arrays.position_notional_usd[at]
        liq_v[v] = pos_liq[at].sum()
    net_at = net[pos_v, liq_f]
    share = np.divide(signed * np.sign(net_at), np.abs(net_at), out=np.zeros(n_p), where=net_at != 0)
    pos_conc = conc[pos_v, liq_f] * share
    return conc.sum(axis=1), liq_v, pos_conc, pos_liq


# ---------------------------------------------------------------------------------------------
# the book


def loading_contributions(arrays: MarginBook, row_of_loading: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[P] Euler contributions ``Σ_k∈p −(δ_k · a[row_k, f_k] + ½ · γ_k · b[row_k, f_k])`` of each position."""
    f = arrays.load_factor
    c = -(arrays.load_delta * a[row_of_loading, f] + 0.5 * arrays.load_gamma * b[row_of_loading, f])
    return np.bincount(arrays.load_position, weights=c, minlength=len(arrays.position_ids))


def class_rows(arrays: MarginBook) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The venues split by asset class: (delta [V·C, F], gamma [V·C, F], row of each loading [K]).

    Row ``v · C + c`` holds venue v's loadings on factors of class c: the sub-portfolios whose margins
    are summed when diversification across asset classes breaks down.
    """
    n_c = len(ASSET_CLASSES)
    vd, vg = arrays.venue_delta(), arrays.venue_gamma()
    n_v, n_f = vd.shape
    mask = arrays.factor_class[None, :] == np.arange(n_c)[:, None]  # [C, F]
    delta = (vd[:, None, :] * mask[None]).reshape(n_v * n_c, n_f)
    gamma = (vg[:, None, :] * mask[None]).reshape(n_v * n_c, n_f)
    rows = arrays.position_venue[arrays.load_position] * n_c + arrays.factor_class[arrays.load_factor]
    return delta, gamma, rows


def ccp_initial_margin(
    arrays: MarginBook,
    history: FactorHistory,
    models: Sequence[CcpMarginModel | None],
    *,
    vol_multiplier: float = 1.0,
    options: CcpOptions | None = None,
    by_asset_class: bool = False,
    memo: dict | None = None,
    progress: Progress = None,
) -> CcpMargin:
    """Initial margin at every CCP of the book (`models[v]`, None for bilateral venues), allocated to positions.

    `vol_multiplier` scales today's volatility (stressed margin). With `by_asset_class` the core and
    APC margin of a venue is the sum of those of its asset-class sub-portfolios (no diversification
    across classes: the correlation breakdown of `stressed`). `memo` (a dict kept by the caller for one
    book, history and row layout — with or without `by_asset_class`) saves the buffer's reference
    margins and the floor's scenarios between calls. See the module docstring for the method.
    """
    n_v = len(arrays.venues)
    if len(models) != n_v:
        raise ValueError(f"models: expected one per venue ({n_v}), got {len(models)}")
    if tuple(history.factors) != tuple(arrays.factors):
        raise ValueError("history.factors: must be the book's factors in the same order")
    for v, m in enumerate(models):
        if (m is not None) != bool(arrays.venue_is_ccp[v]):
            raise ValueError(
                f"models[{v}]: venue {arrays.venues[v]} is {'a CCP' if arrays.venue_is_ccp[v] else 'bilateral'}"
                f" and {'needs a' if arrays.venue_is_ccp[v] else 'takes no'} CCP model"
            )
    if progress:
        progress(0, 3)
    if by_asset_class:
        delta, gamma, row_of_loading = class_rows(arrays)
        n_c = len(ASSET_CLASSES)
        row_models = [models[r // n_c] for r in range(n_v * n_c)]
    else:
        delta, gamma = arrays.venue_delta(), arrays.venue_gamma()
        row_of_loading = arrays.position_venue[arrays.load_position]
        row_models = list(models)
    rm = row_margins(history, delta, gamma, row_models, vol_multiplier=vol_multiplier, options=options, memo=memo)
    if progress:
        progress(1, 3)
    core, margin = rm.core, rm.margin
    if by_asset_class:
        core = core.reshape(n_v, -1).sum(axis=1)
        margin = margin.reshape(n_v, -1).sum(axis=1)
    pos_core = loading_contributions(arrays, row_of_loading, rm.a0, rm.b0)
    pos_margin = loading_contributions(arrays, row_of_loading, rm.a, rm.b)
    conc, liq, pos_conc, pos_liq = _add_ons(arrays, history, models, vol_multiplier)
    if progress:
        progress(2, 3)
    if by_asset_class:
        buffer_applied = np.full(n_v, np.nan)
        floor_binds = rm.floor_binds.reshape(n_v, -1).any(axis=1)
        stressed: list[tuple[int, int] | None] = [None] * n_v
    else:
        buffer_applied, floor_binds, stressed = rm.buffer_applied, rm.floor_binds, list(rm.stressed_days)
    dates = history.dates.astype(str)
    result = CcpMargin(
        venues=arrays.venues,
        margined=np.array([m is not None for m in models]),
        core_usd=core,
        apc_usd=margin - core,
        concentration_usd=conc,
        liquidity_usd=liq,
        total_usd=margin + conc + liq,
        buffer_applied=buffer_applied,
        floor_binds=floor_binds,
        stressed_days=tuple(None if d is None else (str(dates[d[0]]), str(dates[d[1]])) for d in stressed),
        position_core_usd=pos_core,
        position_apc_usd=pos_margin - pos_core,
        position_concentration_usd=pos_conc,
        position_liquidity_usd=pos_liq,
        vol_multiplier=float(vol_multiplier),
    )
    if progress:
        progress(3, 3)
    return result


# ---------------------------------------------------------------------------------------------
# margin through time: procyclicality


@dataclass(frozen=True, eq=False)
class MarginSeries:
    """One portfolio's CCP margin on a run of as-of days: without APC (`core`) and with it (`margin`)."""

    days: np.ndarray  # [D] day indices into the history
    dates: np.ndarray  # [D] datetime64[D]
    core: np.ndarray  # [D]
    margin: np.ndarray  # [D]


def margin_series(
    history: FactorHistory,
    delta: np.ndarray,
    gamma: np.ndarray | None,
    model: CcpMarginModel,
    days: Sequence[int] | np.ndarray,
    *,
    options: CcpOptions | None = None,
) -> MarginSeries:
    """Margin of one portfolio (`delta`, `gamma` [F]) under `model` at each as-of day of `days`.

    Each day uses only the history up to it (and today's portfolio), as the CCP would have computed it.
    """
    d = np.asarray(delta, dtype=np.float64)[None, :]
    g = np.zeros_like(d) if gamma is None else np.asarray(gamma, dtype=np.float64)[None, :]
    memo: dict = {}
    days = np.asarray(days, dtype=np.int64)
    core = np.zeros(len(days))
    margin = np.zeros(len(days))
    for i, t in enumerate(days):
        rm = row_margins(history, d, g, [model], options=options, as_of=int(t), memo=memo)
        core[i], margin[i] = rm.core[0], rm.margin[0]
    return MarginSeries(days, history.dates[days], core, margin)


@dataclass(frozen=True)
class Procyclicality:
    """Procyclicality of a margin series: peak-to-trough ratio and the largest rise over a window."""

    peak_to_trough: float
    max_rise: float  # largest ratio margin[t] / margin[t - window] over the series
    window_days: int


def procyclicality(margin: np.ndarray, *, window_days: int = 30) -> Procyclicality:
    """Peak-to-trough ratio ``max / min`` and the largest `window_days` rise ``m[t] / m[t − window]``."""
    m = np.asarray(margin, dtype=np.float64)
    if len(m) < 2 or np.any(m <= 0):
        raise ValueError("margin: needs at least two positive values")
    w = min(window_days, len(m) - 1)
    return Procyclicality(float(m.max() / m.min()), float(np.max(m[w:] / m[:-w])), w)
