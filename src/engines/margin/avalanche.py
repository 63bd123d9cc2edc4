"""The margin-call avalanche: a Monte Carlo of hourly margin calls at every venue over a stress of days, the cash
waterfall that pays them, and forced liquidation whose market impact feeds back into prices, volatility and
margin.

The model (kernel in `avalanche_kernels`, its order of events within an hour documented there):

**Factor space.** The daily covariance Σ of the factor returns over the last `calibration_days` of the history
(sample covariance, demeaned, ``ddof=1``) is reduced to K components chosen for what the calls depend on: the
targets are the venues' delta P&Ls, each standardised to unit variance (so a small venue counts as much as a
large one). With ``Σ = U Λ U'`` and ``M = A U Λ^½`` (A stacks the venues' standardised deltas), the right
singular vectors of M give the K orthonormal directions that explain the most of the targets' variance; K is
the smallest number explaining `explained_variance` of it, at most `max_components` (on the sample book about
55 components explain 99%, where the factors' own correlation matrix needs 94). Factor returns are then
``r = L y`` with ``L = U Λ^½ Q_K`` and y the components (one unit = one daily standard deviation). A venue's
exposure to the components is ``Δ_v L``, rescaled so that its delta P&L keeps its full variance ``Δ_v Σ Δ_v'``
(the residual is treated as moving with the retained components: conservative for the aggregate calls); the
moves of the factors that carry gamma are ``L_f y`` rescaled likewise to the factor's own variance.

**Volatility and jumps.** Components move hourly by ``√(h/24) · z``: a day's variance is spread evenly over
24 hours, every day counts as a business day, and there is no drift. The common variance multiplier h
follows a GARCH(1,1) whose shock is the components' mean squared standardised move weighted by the variance
they explain, around the stress level ``vol_multiplier²``: it starts there and reverts there, so the stress
lasts the whole horizon and the GARCH adds clustering on top (the path of ``h / vol_multiplier²`` does not
depend on the multiplier, so with common random numbers every move scales exactly with it). Daily parameters
are fitted by Gaussian quasi-maximum likelihood with variance targeting to the first component's history (all
of the history), and made hourly with the same persistence per day: ``a = α/24``, ``a + b = (α + β)^(1/24)``.
Jumps arrive as a Poisson process; a jump moves every component by ``J · T · √h · z`` (T a Student-t
magnitude with `jump_df` degrees of freedom common to the jump, scaled to unit variance): a day of typical
correlated moves blown up J-fold. The intensity is the share of history days whose GARCH-standardised first
component exceeds `jump_threshold` in absolute value (half a day when none does), and J their root mean
square. Every fitted figure can be set instead.

**Margin.** A venue's P&L since the start is the delta-gamma form on the factor moves (`arrays`); its IM is
the starting IM (`venue_im_usd`, e.g. `baseline.baseline_margin`) times ``(σ̂_v(t)/σ_v)^p``, σ_v the venue's
calibrated daily P&L vol (``√(Δ_v Σ Δ_v')``) and σ̂_v(t) its current estimate: by default
(`im_volatility="ewma"`) the venue's own EWMA of the squared change of its P&L between end-of-day valuations,
with the CCP model's `ewma_decay` (`bilateral_ewma_decay` for a CSA), started at σ_v² — what an FHS model's
volatility filter does, so IM rises over days as realised moves (the stress, jumps, the impact of forced
sales) come in; with ``"conditional"`` it is the model's own conditional vol, ``h · σ_v²`` plus the extra
variance liquidation left on the venue's factors, so IM reacts at once. p is the procyclicality
(`ccp_im_procyclicality`, default 1: IM in proportion to the vol; `bilateral_im_procyclicality`, default 0:
SIMM's risk weights are recalibrated yearly, not with the market); the IM is floored at `im_floor` times the
starting IM (1: a baseline with its anti-procyclicality buffer is not released within the stress). A
CCP calls IM plus VM (= minus the P&L) at its intraday call hours when the shortfall exceeds
`intraday_call_threshold` of its IM, and at its end-of-day hour both ways; payment is due
`payment_delay_hours` later. A bilateral counterparty values the netting set at `csa_valuation_hour` and calls
IM plus the credit support amount (threshold both ways) when the move is at least the minimum transfer
amount, deliveries rounded up and returns down; due `csa_same_day_delay_hours` or `csa_next_day_delay_hours`
later by its call timing. Every venue starts fully margined (collateral = requirement).

**Waterfall.** Returns are credited to cash; calls due are paid from usable cash (cash minus the operational
buffer, all currencies pooled at no cost), then from facility cash, then by forced liquidation; the rest is a
shortfall and the path goes on as if an outside source had paid it, so later calls keep their meaning and the
shortfall is what that source would have had to provide. The facility (limit, notice, daily drawdown cap):
every hour the treasury projects its liquidity (cash + facility cash + drawings in transit − calls made and
not yet paid) and when it falls below `facility_trigger_fraction` of the usable cash it requests enough to
bring it back to the usable cash, within the limit's headroom and the day's cap; the cash arrives
`notice_hours` later. With the default fraction 1 the treasury tops its liquidity back up as soon as calls
eat into it: under a notice period, waiting until half the cash is gone (0.5) leaves more paths short
before the drawing arrives. Nothing is repaid within the stress.

**Liquidation and feedback.** Forced liquidation closes venues' books, the venue with the most IM returned
per unit of impact cost first (see `avalanche_kernels`): closing releases the IM of what is closed, costs the
square-root impact ``Y · σ_f κ · √(Q/d_f)`` per unit notional (σ_f the factor's daily vol at the stress level,
κ the positions' delta per unit notional on the factor they are sold in, Q the day's volume, d_f its depth),
and at most `max_daily_liquidation_fraction_of_depth` of a factor's depth trades in a day. With `feedback` the
trade moves the factor against the closed positions by ``Y · σ_f · √(Q/d_f)`` (square root in the day's
volume) and adds `impact_vol_weight` times the squared move to its daily variance (decaying with
`impact_vol_half_life_hours`), which raises the P&L moves, the IM and the calls of every venue exposed to it.
Without feedback liquidation has no impact at all (no cost, no move): the same as impact coefficient 0.

**Outputs** (`AvalancheResult`, per path and summarised): the peak over the hours of the cumulative net
calls paid (calls minus returns), the peak liquidity need (also counting calls made and not yet due), the
waterfall (cash, facility, liquidation, shortfall; conservation: every call is paid from one of them or is a
shortfall), P(exhaust) = P(forced liquidation or shortfall) with the hour it first happens, liquidation
losses, and contributions. Contributions are Euler-style at the worst hour: in each path the cumulative net
calls of every venue at the hour of the path's peak add up to the peak; averaged over the tail paths (the
``⌈(1 − tail_level) · paths⌉`` largest peaks, ties to the lower path index) they add up to the tail mean of
the peak. A venue's share goes to managers by the Euler weights of the venue's delta P&L variance
(``Δ_vm Σ Δ_v' / Δ_v Σ Δ_v'``, summing to 1), and to the currency the venue's calls are paid in.

Random numbers are counter-based (`random_streams`): path i draws the same numbers whatever the chunk, the
worker or the device, so a run split into path ranges and combined (`combine`) is exactly the unsplit run,
and two settings differing in anything but the seed use common random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.optimize import minimize

from engines.margin import avalanche_kernels as K
from engines.margin.arrays import COMMODITY, EQUITY, FX, FactorHistory, MarginBook
from engines.margin.venues import BilateralCounterparty, Ccp, CcpMarginModel, CsaTerms, LiquidityResources

Progress = Callable[[int, int], None] | None
BLOCK_PATHS = 1_024
"""Paths per kernel call (progress is reported after each)."""
QUANTILES = (0.5, 0.95, 0.99, 0.999)
MODEL_ARRAYS = (
    "comp_w", "venue_comp", "venue_var", "gam_ptr", "gam_g", "gam_value", "gam_comp", "gam_factor", "fd_ptr",
    "fd_factor", "fd_value", "venue_call", "hour_flags", "venue_int", "venue_flt", "venue_order", "pair_ptr",
    "pair_factor", "pair_flt", "factor_depth",
)  # fmt: skip
"""Names of `AvalancheModel.arrays`, in the order `run_paths` takes them after the parameters."""
DEFAULT_GARCH = (0.06, 0.92)
"""Daily GARCH (α, β) when the history is too short to fit (fewer than `MIN_GARCH_DAYS`)."""
MIN_GARCH_DAYS = 250


class AvalancheSettings(BaseModel):
    """Settings of an avalanche run (recorded in its result). Hours and days are clock hours and days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paths: int = Field(10_000, ge=1, le=10_000_000, description="Monte Carlo paths.")
    hours: int = Field(240, ge=1, le=1_440, description="Hourly steps (240 = 10 days).")
    seed: int = Field(2026, ge=0, lt=2**63, description="Seed of the counter-based random numbers.")
    vol_multiplier: float = Field(1.0, gt=0.0, le=50.0, description="Volatility at the start / calibrated vol.")
    feedback: bool = Field(True, description="Liquidation moves prices and volatility (off: no impact at all).")
    calibration_days: int = Field(750, ge=20, description="Most recent history days for the covariance.")
    explained_variance: float = Field(0.99, gt=0.0, le=1.0, description="Share of the targets' variance kept.")
    max_components: int = Field(64, ge=1, le=512)
    garch_alpha: float | None = Field(None, ge=0.0, lt=1.0, description="Daily GARCH α (None: fitted).")
    garch_beta: float | None = Field(None, ge=0.0, lt=1.0, description="Daily GARCH β (None: fitted).")
    jumps_per_day: float | None = Field(None, ge=0.0, le=24.0, description="Jump intensity (None: fitted).")
    jump_size: float | None = Field(None, ge=0.0, le=50.0, description="Jump size J in daily SDs (None: fitted).")
    jump_df: int = Field(4, ge=0, le=100, description="Student-t degrees of freedom of jump sizes (0: normal).")
    jump_threshold: float = Field(4.0, gt=0.0, description="Standardised daily move counted as a jump.")
    im_volatility: Literal["ewma", "conditional"] = Field(
        "ewma", description="IM follows each venue's EWMA of its daily P&L, or the model's conditional vol."
    )
    bilateral_ewma_decay: float = Field(0.97, gt=0.0, lt=1.0, description="EWMA decay for bilateral IM.")
    ccp_im_procyclicality: float = Field(1.0, ge=0.0, le=3.0)
    bilateral_im_procyclicality: float = Field(0.0, ge=0.0, le=3.0)
    im_floor: float = Field(1.0, ge=0.0, le=1.0, description="IM never below this fraction of the starting IM.")
    csa_valuation_hour: int = Field(17, ge=0, le=23)
    csa_same_day_delay_hours: int = Field(2, ge=0, le=24)
    csa_next_day_delay_hours: int = Field(24, ge=1, le=48)
    impact_coefficient: float = Field(1.0, ge=0.0, le=100.0, description="Y of the square-root impact.")
    impact_vol_weight: float = Field(1.0, ge=0.0, le=100.0)
    impact_vol_half_life_hours: float = Field(48.0, gt=0.0)
    max_daily_liquidation_fraction_of_depth: float = Field(0.25, gt=0.0, le=100.0)
    facility_trigger_fraction: float = Field(
        1.0, ge=0.0, le=1.0, description="Draw when projected liquidity falls below this share of usable cash."
    )
    tail_level: float = Field(0.99, gt=0.0, lt=1.0, description="Tail of the peak calls for contributions.")
    backend: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _garch(self) -> AvalancheSettings:
        a, b = self.garch_alpha, self.garch_beta
        if (a is None) != (b is None):
            raise ValueError("garch_beta: give both garch_alpha and garch_beta, or neither")
        if a is not None and b is not None and a + b >= 1.0:
            raise ValueError(f"garch_beta: garch_alpha + garch_beta must be below 1, got {a + b}")
        if self.jump_df in (1, 2):
            raise ValueError("jump_df: 0 (normal) or at least 3 (finite variance)")
        return self

    def recorded(self) -> dict[str, Any]:
        """The settings as recorded in a result (the backend is not part of the numbers)."""
        return self.model_dump(exclude={"backend"})


# ---- venues -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VenueTerms:
    """Per-venue call rules as arrays (kernel layout), and the currency each venue's calls are paid in."""

    call: np.ndarray  # int8 [V, 24]: call kind by hour of day
    delay: np.ndarray  # int64 [V]: hours from call to payment
    intraday_threshold: np.ndarray  # [V]
    csa_threshold: np.ndarray  # [V]
    mta: np.ndarray  # [V]
    rounding: np.ndarray  # [V]
    ewma_decay: np.ndarray  # [V]
    currency: tuple[str, ...]


def venue_terms(
    book: MarginBook, venues: Sequence[Ccp | BilateralCounterparty] | None, settings: AvalancheSettings
) -> VenueTerms:
    """Call hours, delays and CSA terms of every venue, from its model (default models where `venues` is None)."""
    n_v = len(book.venues)
    if venues is not None:
        if len(venues) != n_v:
            raise ValueError(f"venues: {len(venues)} models for {n_v} venues of the book")
        for v, model in enumerate(venues):
            if model.id != book.venues[v] or (model.kind == "ccp") != bool(book.venue_is_ccp[v]):
                raise ValueError(f"venues[{v}]: {model.id!r} ({model.kind}) is not the book's venue {book.venues[v]!r}")
    call = np.zeros((n_v, 24), dtype=np.int8)
    delay = np.zeros(n_v, dtype=np.int64)
    intraday = np.zeros(n_v)
    threshold = np.zeros(n_v)
    mta = np.zeros(n_v)
    rounding = np.zeros(n_v)
    decay = np.full(n_v, settings.bilateral_ewma_decay)
    currency = []
    default_ccy = _main_currency(book)
    for v in range(n_v):
        if book.venue_is_ccp[v]:
            model = venues[v].margin_model if venues is not None else CcpMarginModel()
            for hour in model.intraday_call_hours:
                call[v, hour] = K.CALL_INTRADAY
            call[v, model.end_of_day_hour] = K.CALL_DAILY
            delay[v] = model.payment_delay_hours
            intraday[v] = model.intraday_call_threshold
            decay[v] = model.ewma_decay
            currency.append(venues[v].currency if venues is not None else default_ccy[v])
        else:
            csa = venues[v].csa if venues is not None else CsaTerms(currency=default_ccy[v])
            call[v, settings.csa_valuation_hour] = K.CALL_DAILY
            same_day = csa.call_timing == "same_day"
            delay[v] = settings.csa_same_day_delay_hours if same_day else settings.csa_next_day_delay_hours
            threshold[v] = csa.threshold_usd
            mta[v] = csa.minimum_transfer_amount_usd
            rounding[v] = csa.rounding_usd
            currency.append(csa.currency)
    return VenueTerms(call, delay, intraday, threshold, mta, rounding, decay, tuple(currency))


def _main_currency(book: MarginBook) -> list[str]:
    """The currency of each venue's largest gross notional (USD for a venue without positions)."""
    n_v, n_c = len(book.venues), len(book.currencies)
    by = np.zeros((n_v, n_c))
    np.add.at(by, (book.position_venue, book.position_currency), book.position_notional_usd)
    usd = book.currencies.index("USD") if "USD" in book.currencies else 0
    return [book.currencies[int(np.argmax(row))] if row.any() else book.currencies[usd] for row in by]


# ---- calibration ------------------------------------------------------------------------------


@njit(cache=True)
def _garch_nll(x: np.ndarray, alpha: float, beta: float) -> float:
    """Gaussian negative log-likelihood (up to constants) of GARCH(1,1) with variance targeting, unit variance."""
    h = 1.0
    omega = 1.0 - alpha - beta
    out = 0.0
    for t in range(x.shape[0]):
        out += math.log(h) + x[t] * x[t] / h
        h = omega + alpha * x[t] * x[t] + beta * h
    return 0.5 * out


@njit(cache=True)
def _garch_filter(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    h = np.empty(x.shape[0])
    hv = 1.0
    for t in range(x.shape[0]):
        h[t] = hv
        hv = (1.0 - alpha - beta) + alpha * x[t] * x[t] + beta * hv
    return h


def fit_garch(x: np.ndarray) -> tuple[float, float]:
    """Daily (α, β) of GARCH(1,1) with variance targeting, by Gaussian QMLE on the series scaled to unit variance."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < MIN_GARCH_DAYS or not np.any(x):
        return DEFAULT_GARCH
    x = x / math.sqrt(np.mean(x * x))

    def objective(p: np.ndarray) -> float:
        a, b = float(p[0]), float(p[1])
        if a + b >= 0.999:
            return 1e12 * (1.0 + a + b)
        return float(_garch_nll(x, a, b))

    best = None
    for start in ((0.05, 0.90), (0.10, 0.80), (0.03, 0.95)):
        fit = minimize(objective, np.array(start), method="L-BFGS-B", bounds=[(1e-6, 0.5), (0.0, 0.998)])
        if best is None or fit.fun < best.fun:
            best = fit
    a, b = float(best.x[0]), float(best.x[1])
    if a + b >= 0.999:
        return DEFAULT_GARCH
    return a, b


@dataclass(frozen=True)
class Calibration:
    """The reduced factor model and its dynamics (see the module docstring)."""

    factor_vol: np.ndarray  # [F] daily vol over the calibration window
    covariance: np.ndarray  # [F, F] daily
    loadings: np.ndarray  # [F, K] factor return per unit component move
    venue_comp: np.ndarray  # [V, K] venue delta P&L per unit component move (variance matched)
    venue_var: np.ndarray  # [V] daily variance of each venue's delta P&L
    gamma_factors: np.ndarray  # [G] factor indices that carry gamma
    gamma_comp: np.ndarray  # [G, K]
    comp_weight: np.ndarray  # [K] weights of the components in the GARCH shock (sum 1)
    explained: float  # share of the targets' variance the K components explain
    garch_alpha: float  # daily
    garch_beta: float  # daily
    jumps_per_day: float
    jump_size: float
    history_days: int

    def summary(self) -> dict[str, Any]:
        return {
            "components": int(self.loadings.shape[1]),
            "explained_variance": self.explained,
            "garch_alpha_daily": self.garch_alpha,
            "garch_beta_daily": self.garch_beta,
            "jumps_per_day": self.jumps_per_day,
            "jump_size_daily_sd": self.jump_size,
            "calibration_days": int(self.history_days),
            "factors": len(self.factor_vol),
            "gamma_factors": len(self.gamma_factors),
        }


def calibrate(book: MarginBook, history: FactorHistory, settings: AvalancheSettings) -> Calibration:
    """Reduce the factor space and fit the volatility and jump dynamics (module docstring)."""
    if tuple(history.factors) != tuple(book.factors):
        raise ValueError("history.factors: not the book's factors in the book's order")
    returns = history.returns[-settings.calibration_days :]
    if returns.shape[0] < 2:
        raise ValueError("history: at least 2 days are needed for a covariance")
    cov = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    cov = 0.5 * (cov + cov.T)
    vol = np.sqrt(np.maximum(np.diag(cov), 0.0))
    lam, u = np.linalg.eigh(cov)
    lam = np.maximum(lam, 0.0)
    root = u * np.sqrt(lam)  # Σ = root root'
    delta = np.asarray(book.venue_delta())
    gamma = np.asarray(book.venue_gamma())
    venue_var = np.einsum("vf,fg,vg->v", delta, cov, delta)
    venue_var = np.maximum(venue_var, 0.0)
    gamma_factors = np.flatnonzero(np.any(gamma != 0.0, axis=0))
    rows = [delta[v] / math.sqrt(venue_var[v]) for v in range(len(venue_var)) if venue_var[v] > 0.0]
    n_f = len(vol)
    if rows:
        m = np.array(rows) @ root
        _, s, qt = np.linalg.svd(m, full_matrices=False)
        power = s * s
        total = power.sum()
        if total > 0:
            share = np.cumsum(power) / total
            k = int(np.searchsorted(share, settings.explained_variance - 1e-12) + 1)
            k = max(1, min(k, settings.max_components, int(np.sum(power > 1e-12 * power[0]))))
            explained = float(share[k - 1])
        else:
            k, explained = 1, 1.0
        q = qt[:k].T
        weights = power[:k] / power[:k].sum() if power[:k].sum() > 0 else np.full(k, 1.0 / k)
    else:  # nothing exposed: one idle component
        k, explained = 1, 1.0
        q = np.zeros((n_f, 1))
        if n_f:
            q[0, 0] = 1.0
        weights = np.ones(1)
    loadings = root @ q  # [F, K]
    venue_comp = delta @ loadings
    norm = np.einsum("vk,vk->v", venue_comp, venue_comp)
    scale = np.divide(np.sqrt(venue_var), np.sqrt(norm), out=np.zeros_like(norm), where=norm > 0)
    venue_comp = venue_comp * scale[:, None]
    gamma_comp = loadings[gamma_factors]
    gnorm = np.sqrt(np.einsum("gk,gk->g", gamma_comp, gamma_comp))
    gscale = np.divide(vol[gamma_factors], gnorm, out=np.zeros_like(gnorm), where=gnorm > 0)
    gamma_comp = gamma_comp * gscale[:, None]

    # dynamics from the first component's history (all of it)
    lead = _component_scores(history.returns, u, lam, q[:, 0])
    if settings.garch_alpha is not None and settings.garch_beta is not None:
        alpha, beta = settings.garch_alpha, settings.garch_beta
    else:
        alpha, beta = fit_garch(lead)
    jumps_per_day, jump_size = _fit_jumps(lead, alpha, beta, settings)
    return Calibration(
        factor_vol=vol,
        covariance=cov,
        loadings=loadings,
        venue_comp=np.ascontiguousarray(venue_comp),
        venue_var=venue_var,
        gamma_factors=gamma_factors.astype(np.int64),
        gamma_comp=np.ascontiguousarray(gamma_comp),
        comp_weight=np.ascontiguousarray(weights, dtype=np.float64),
        explained=explained,
        garch_alpha=float(alpha),
        garch_beta=float(beta),
        jumps_per_day=float(jumps_per_day),
        jump_size=float(jump_size),
        history_days=int(returns.shape[0]),
    )


def _component_scores(returns: np.ndarray, u: np.ndarray, lam: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The history of one component: ``y_t = q' Λ^(-½) U' r_t`` (q in the eigenvectors' standardised coordinates)."""
    tol = 1e-12 * max(float(lam.max(initial=0.0)), 1e-300)
    inv = np.where(lam > tol, 1.0 / np.sqrt(np.where(lam > tol, lam, 1.0)), 0.0)
    return ((returns @ u) * inv) @ direction


def _fit_jumps(lead: np.ndarray, alpha: float, beta: float, settings: AvalancheSettings) -> tuple[float, float]:
    """(jumps per day, size J in daily SDs): days beyond the threshold after GARCH standardisation."""
    lam = settings.jumps_per_day
    size = settings.jump_size
    if lam is not None and size is not None:
        return lam, size
    x = np.asarray(lead, dtype=np.float64)
    if len(x) == 0 or not np.any(x):
        return (lam if lam is not None else 0.0), (size if size is not None else settings.jump_threshold)
    x = x / math.sqrt(np.mean(x * x))
    eps = x / np.sqrt(_garch_filter(x, alpha, beta))
    big = np.abs(eps) > settings.jump_threshold
    if lam is None:
        lam = max(float(big.sum()), 0.5) / len(x)
    if size is None:
        t2 = settings.jump_df / (settings.jump_df - 2.0) if settings.jump_df > 2 else 1.0
        size = math.sqrt(float(np.mean(eps[big] ** 2)) / t2) if big.any() else settings.jump_threshold
    return lam, size


# ---- the prepared model -----------------------------------------------------------------------


@dataclass(frozen=True)
class AvalancheModel:
    """Everything the kernel reads, prepared once per (book, history, settings); runs reuse it."""

    settings: AvalancheSettings
    calibration: Calibration
    terms: VenueTerms
    iparams: np.ndarray
    fparams: np.ndarray
    arrays: tuple[np.ndarray, ...]  # comp_w ... factor_depth, in `run_paths` order
    venues: tuple[str, ...]
    managers: tuple[str, ...]
    manager_weights: np.ndarray  # [V, M]
    resources: dict[str, float]

    def array(self, name: str) -> np.ndarray:
        """One of the kernel's model arrays by its parameter name in `avalanche_kernels.run_paths`."""
        return self.arrays[MODEL_ARRAYS.index(name)]

    def with_facility(
        self, limit_usd: float, notice_hours: int | None = None, max_draw_per_day_usd: float | None = None
    ) -> AvalancheModel:
        """The same model with another facility (limit, and optionally notice and daily cap)."""
        ip = self.iparams.copy()
        fp = self.fparams.copy()
        fp[K.F_LIMIT] = float(limit_usd)
        if notice_hours is not None:
            ip[K.I_NOTICE] = int(notice_hours)
            ip[K.I_RING_FACILITY] = int(notice_hours) + 1
        if max_draw_per_day_usd is not None:
            fp[K.F_DAILY_CAP] = float(max_draw_per_day_usd)
        resources = {
            **self.resources,
            "facility_limit_usd": float(limit_usd),
            "facility_notice_hours": float(ip[K.I_NOTICE]),
            "facility_max_draw_per_day_usd": float(fp[K.F_DAILY_CAP]),
        }
        return AvalancheModel(self.settings, self.calibration, self.terms, ip, fp, self.arrays, self.venues,
                              self.managers, self.manager_weights, resources)  # fmt: skip


def prepare(
    book: MarginBook,
    history: FactorHistory,
    venue_im_usd: np.ndarray,
    resources: LiquidityResources,
    venues: Sequence[Ccp | BilateralCounterparty] | None = None,
    settings: AvalancheSettings | None = None,
) -> AvalancheModel:
    """Calibrate and lay out the kernel's arrays for `book` (see the module docstring)."""
    settings = settings or AvalancheSettings()
    n_v = len(book.venues)
    im0 = np.asarray(venue_im_usd, dtype=np.float64)
    if im0.shape != (n_v,):
        raise ValueError(f"venue_im_usd: expected shape ({n_v},), got {im0.shape}")
    if not np.all(np.isfinite(im0)) or np.any(im0 < 0):
        raise ValueError("venue_im_usd: must be finite and non-negative for every venue")
    cal = calibrate(book, history, settings)
    terms = venue_terms(book, venues, settings)
    delta = np.asarray(book.venue_delta())
    gamma = np.asarray(book.venue_gamma())

    # gamma entries by venue (CSR)
    g_index = {int(f): g for g, f in enumerate(cal.gamma_factors)}
    gam_ptr = np.zeros(n_v + 1, dtype=np.int64)
    gam_g, gam_value = [], []
    for v in range(n_v):
        nz = np.flatnonzero(gamma[v])
        gam_g += [g_index[int(f)] for f in nz]
        gam_value += list(gamma[v, nz])
        gam_ptr[v + 1] = len(gam_g)

    # venue deltas by factor (CSR), for the factors liquidation moves
    fd_ptr = np.zeros(n_v + 1, dtype=np.int64)
    nz_v, nz_f = np.nonzero(delta)
    np.add.at(fd_ptr, nz_v + 1, 1)
    fd_ptr = np.cumsum(fd_ptr)
    fd_factor = nz_f.astype(np.int64)
    fd_value = np.ascontiguousarray(delta[nz_v, nz_f], dtype=np.float64)

    # venue × liquidity-factor pairs for liquidation
    stress_vol = cal.factor_vol * settings.vol_multiplier
    pair_ptr, pair_factor, pair_flt = _liquidation_pairs(book, stress_vol)
    depth = np.asarray(book.factor_depth_usd, dtype=np.float64)
    mtm0 = np.bincount(book.position_venue, weights=book.position_value_usd, minlength=n_v).astype(np.float64)

    is_ccp = np.asarray(book.venue_is_ccp, dtype=bool)
    power = np.where(is_ccp, settings.ccp_im_procyclicality, settings.bilateral_im_procyclicality)
    balance0 = np.array([
        im0[v] if is_ccp[v] else im0[v] + _csa_vm(mtm0[v], terms.csa_threshold[v]) for v in range(n_v)
    ])  # fmt: skip
    venue_int = np.zeros((n_v, K.N_VI), dtype=np.int64)
    venue_int[:, K.VI_CCP] = is_ccp
    venue_int[:, K.VI_DELAY] = terms.delay
    venue_flt = np.zeros((n_v, K.N_VF))
    venue_flt[:, K.VF_IM0] = im0
    venue_flt[:, K.VF_IM_POWER] = power
    venue_flt[:, K.VF_MTM0] = mtm0
    venue_flt[:, K.VF_INTRADAY] = terms.intraday_threshold
    venue_flt[:, K.VF_CSA_THRESHOLD] = terms.csa_threshold
    venue_flt[:, K.VF_MTA] = terms.mta
    venue_flt[:, K.VF_ROUNDING] = terms.rounding
    venue_flt[:, K.VF_BALANCE0] = balance0
    venue_flt[:, K.VF_EWMA_DECAY] = terms.ewma_decay
    hour_flags = np.zeros((24, 2), dtype=np.int8)
    for v in range(n_v):
        for hour in np.flatnonzero(terms.call[v]):
            hour_flags[hour, 0] = 1
            hour_flags[(hour + terms.delay[v]) % 24, 1] = 1
    order = _venue_order(im0, pair_ptr, pair_factor, pair_flt, depth)

    usable = float(resources.usable_cash_usd)
    facility = resources.facility
    ring = int(terms.delay.max(initial=0)) + 1
    ip = np.zeros(K.N_IPARAMS, dtype=np.int64)
    ip[K.I_HOURS] = settings.hours
    ip[K.I_SEED] = settings.seed
    ip[K.I_NOTICE] = facility.notice_hours
    ip[K.I_FEEDBACK] = int(settings.feedback)
    ip[K.I_JUMP_DF] = settings.jump_df
    ip[K.I_RING] = ring
    ip[K.I_RING_FACILITY] = facility.notice_hours + 1
    ip[K.I_IM_MODE] = K.IM_EWMA if settings.im_volatility == "ewma" else K.IM_CONDITIONAL
    fp = np.zeros(K.N_FPARAMS)
    a_h = cal.garch_alpha / 24.0
    persistence = (cal.garch_alpha + cal.garch_beta) ** (1.0 / 24.0)
    b_h = max(persistence - a_h, 0.0)
    fp[K.F_OMEGA] = settings.vol_multiplier**2 * (1.0 - a_h - b_h)
    fp[K.F_ALPHA] = a_h
    fp[K.F_BETA] = b_h
    fp[K.F_H0] = settings.vol_multiplier**2
    fp[K.F_JUMP_P] = min(cal.jumps_per_day / 24.0, 1.0)
    fp[K.F_JUMP_SCALE] = cal.jump_size
    fp[K.F_IM_FLOOR] = settings.im_floor
    fp[K.F_IMPACT] = settings.impact_coefficient
    fp[K.F_VOL_WEIGHT] = settings.impact_vol_weight
    fp[K.F_EXCESS_DECAY] = 0.5 ** (1.0 / settings.impact_vol_half_life_hours)
    fp[K.F_MAX_SALE] = settings.max_daily_liquidation_fraction_of_depth
    fp[K.F_CASH] = usable
    fp[K.F_LIMIT] = facility.limit_usd
    fp[K.F_DAILY_CAP] = facility.max_draw_per_day_usd
    fp[K.F_TRIGGER] = settings.facility_trigger_fraction * usable
    fp[K.F_TARGET] = usable

    arrays = (
        cal.comp_weight,
        cal.venue_comp,
        cal.venue_var,
        gam_ptr,
        np.array(gam_g, dtype=np.int64),
        np.array(gam_value, dtype=np.float64),
        cal.gamma_comp,
        cal.gamma_factors,
        fd_ptr,
        fd_factor,
        fd_value,
        np.ascontiguousarray(terms.call),
        hour_flags,
        venue_int,
        venue_flt,
        order,
        pair_ptr,
        pair_factor,
        pair_flt,
        depth,
    )
    # writable, C-ordered copies: numba compiles another specialisation for a read-only array (a loaded book's)
    arrays = tuple(np.require(a, requirements=("C", "W", "O")) for a in arrays)
    resources_used = {
        "cash_usd": float(sum(resources.cash_usd.values())),
        "operational_buffer_usd": float(resources.operational_buffer_usd),
        "usable_cash_usd": usable,
        "facility_limit_usd": float(facility.limit_usd),
        "facility_notice_hours": float(facility.notice_hours),
        "facility_max_draw_per_day_usd": float(facility.max_draw_per_day_usd),
    }
    return AvalancheModel(settings, cal, terms, ip, fp, arrays, tuple(book.venues), tuple(book.managers),
                          manager_weights(book, cal.covariance), resources_used)  # fmt: skip


def _csa_vm(mtm: float, threshold: float) -> float:
    if mtm < -threshold:
        return -mtm - threshold
    if mtm > threshold:
        return threshold - mtm
    return 0.0


def _liquidation_pairs(book: MarginBook, stress_vol: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair_ptr [V+1], pair_factor [Pr], pair_flt [Pr, 3]): per venue, the factors its positions sell in."""
    n_v = len(book.venues)
    lf = np.asarray(book.position_liquidity_factor, dtype=np.int64)
    pv = np.asarray(book.position_venue, dtype=np.int64)
    # each position's delta on its own liquidity factor
    own = book.load_factor == lf[book.load_position]
    pos_delta = np.bincount(book.load_position[own], weights=book.load_delta[own], minlength=len(pv))
    key = pv * len(book.factors) + lf
    pairs, inverse = np.unique(key, return_inverse=True)
    notional = np.bincount(inverse, weights=book.position_notional_usd, minlength=len(pairs))
    net_delta = np.bincount(inverse, weights=pos_delta, minlength=len(pairs))
    gross_delta = np.bincount(inverse, weights=np.abs(pos_delta), minlength=len(pairs))
    venue = pairs // len(book.factors)
    factor = pairs % len(book.factors)
    kappa = np.divide(gross_delta, notional, out=np.zeros_like(notional), where=notional > 0)
    price_factor = np.isin(book.factor_class[factor], (FX, EQUITY, COMMODITY))
    kappa = np.where(price_factor, np.minimum(kappa, 1.0), kappa)
    flt = np.zeros((len(pairs), K.N_PF))
    flt[:, K.PF_NOTIONAL] = notional
    flt[:, K.PF_COST] = stress_vol[factor] * kappa
    flt[:, K.PF_MOVE] = -np.sign(net_delta) * stress_vol[factor]
    keep = notional > 0
    venue, factor, flt = venue[keep], factor[keep], flt[keep]
    ptr = np.zeros(n_v + 1, dtype=np.int64)
    np.add.at(ptr, venue + 1, 1)
    return np.cumsum(ptr), factor.astype(np.int64), np.ascontiguousarray(flt)


def _venue_order(
    im0: np.ndarray, pair_ptr: np.ndarray, pair_factor: np.ndarray, pair_flt: np.ndarray, depth: np.ndarray
) -> np.ndarray:
    """Venues by IM returned per unit impact cost of closing the whole book at once (best first; ties by index)."""
    n_v = len(im0)
    score = np.full(n_v, -np.inf)
    for v in range(n_v):
        p = slice(pair_ptr[v], pair_ptr[v + 1])
        n = pair_flt[p, K.PF_NOTIONAL]
        if im0[v] <= 0 or len(n) == 0:
            continue
        cost = float(np.sum(pair_flt[p, K.PF_COST] * n * np.sqrt(n / depth[pair_factor[p]])))
        score[v] = im0[v] / cost if cost > 0 else np.inf
    return np.lexsort((np.arange(n_v), -score)).astype(np.int64)


def manager_weights(book: MarginBook, cov: np.ndarray) -> np.ndarray:
    """[V, M] Euler weights of each manager in each venue's delta P&L variance (rows sum to 1)."""
    n_v, n_m, n_f = len(book.venues), len(book.managers), len(book.factors)
    venue_of = book.position_venue[book.load_position]
    manager_of = book.position_manager[book.load_position]
    dvm = np.zeros((n_v, n_m, n_f))
    np.add.at(dvm, (venue_of, manager_of, book.load_factor), book.load_delta)
    dv = dvm.sum(axis=1)
    cov_dv = dv @ cov  # [V, F]
    num = np.einsum("vmf,vf->vm", dvm, cov_dv)
    den = np.einsum("vf,vf->v", dv, cov_dv)
    gross = np.zeros((n_v, n_m))
    np.add.at(gross, (book.position_venue, book.position_manager), book.position_notional_usd)
    gsum = gross.sum(axis=1)
    out = np.full((n_v, n_m), 1.0 / max(n_m, 1))
    by_gross = gsum > 0
    out[by_gross] = gross[by_gross] / gsum[by_gross, None]
    ok = den > 1e-12 * max(float(np.max(den, initial=0.0)), 1e-300)
    out[ok] = num[ok] / den[ok, None]
    return out


# ---- running ----------------------------------------------------------------------------------


def run_model(
    model: AvalancheModel, path_ids: np.ndarray, *, progress: Progress = None, backend: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(stats [n, N_STATS], venue_peak [n, V]) of the given global path indices."""
    from engines.margin import avalanche_cuda

    ids = np.ascontiguousarray(path_ids, dtype=np.int64)
    n = len(ids)
    n_v = len(model.venues)
    stats = np.zeros((n, K.N_STATS))
    peak = np.zeros((n, n_v))
    chosen = avalanche_cuda.select_backend(backend or model.settings.backend)
    kernel = avalanche_cuda.run_paths_cuda if chosen == "cuda" else K.run_paths
    block = BLOCK_PATHS if chosen == "cpu" else avalanche_cuda.BATCH_PATHS
    if progress:
        progress(0, n)
    for start in range(0, n, block):
        stop = min(n, start + block)
        out_s = np.zeros((stop - start, K.N_STATS))
        out_p = np.zeros((stop - start, n_v))
        kernel(ids[start:stop], model.iparams, model.fparams, *model.arrays, out_s, out_p)
        stats[start:stop] = out_s
        peak[start:stop] = out_p
        if progress:
            progress(stop, n)
    return stats, peak


def tail_count(paths: int, level: float) -> int:
    """Paths in the tail at `level`: ⌈(1 − level) · paths⌉, at least 1."""
    return max(1, math.ceil((1.0 - level) * paths - 1e-9))


def tail_order(peaks: np.ndarray, path_ids: np.ndarray) -> np.ndarray:
    """Indices sorting paths by peak calls, largest first, ties to the lower path index."""
    return np.lexsort((path_ids, -peaks))


def simulate_avalanche(
    book: MarginBook | None,
    history: FactorHistory | None,
    venue_im_usd: np.ndarray | None,
    resources: LiquidityResources | None,
    venues: Sequence[Ccp | BilateralCounterparty] | None = None,
    settings: AvalancheSettings | None = None,
    *,
    first_path: int = 0,
    paths: int | None = None,
    progress: Progress = None,
    model: AvalancheModel | None = None,
) -> AvalancheResult:
    """Simulate paths ``first_path .. first_path + paths`` (default: all `settings.paths`) of the avalanche.

    `venues` are the book's venue models in its venue order (default models when None); `model` reuses a
    prepared model (`prepare`, `prepare_book`; then the other arguments may be None and are not read).
    `progress(done, total)` is called as blocks of paths finish.
    """
    if model is None:
        if book is None or history is None or venue_im_usd is None or resources is None:
            raise ValueError("simulate_avalanche: give the book, history, starting IM and resources, or a model")
        model = prepare(book, history, venue_im_usd, resources, venues, settings)
    s = model.settings
    n = s.paths - first_path if paths is None else paths
    if first_path < 0 or n < 1 or first_path + n > s.paths:
        raise ValueError(f"paths: the range [{first_path}, {first_path + n}) is not within the {s.paths} paths")
    ids = np.arange(first_path, first_path + n, dtype=np.int64)
    stats, peak = run_model(model, ids, progress=progress)
    return AvalancheResult.from_run(model, ids, stats, peak)


def avalanche_of_book(
    loaded: Any, settings: AvalancheSettings | None = None, *, first_path: int = 0, paths: int | None = None,
    progress: Progress = None,
) -> AvalancheResult:  # fmt: skip
    """`simulate_avalanche` for a loaded book (`files.LoadedBook`): its arrays, history, venue models and
    resources, with the starting IM from `baseline.baseline_margin`."""
    model = prepare_book(loaded, settings)
    return simulate_avalanche(
        None, None, None, None, model=model, first_path=first_path, paths=paths, progress=progress
    )


def prepare_book(loaded: Any, settings: AvalancheSettings | None = None) -> AvalancheModel:
    """The prepared model of a loaded book, starting IM from `baseline.baseline_margin`."""
    from engines.margin.baseline import baseline_margin

    base = baseline_margin(loaded)
    return prepare(loaded.arrays, loaded.history, base.venue_im_usd, loaded.book.resources, loaded.book.venues,
                   settings)  # fmt: skip


# ---- results ----------------------------------------------------------------------------------


def _quantiles(x: np.ndarray) -> dict[str, float | None]:
    """Mean, quantiles, max and the mean's standard error; None where undefined (no observation), so that
    results stay strict JSON (an empty set: no path exhausted, none liquidated)."""
    if len(x) == 0:
        return {"mean": None, **{f"p{q * 100:g}": None for q in QUANTILES}, "max": None, "stderr_mean": None}
    qs = np.quantile(x, QUANTILES)
    out: dict[str, float | None] = {"mean": float(np.mean(x))}
    out.update({f"p{q * 100:g}": float(v) for q, v in zip(QUANTILES, qs, strict=True)})
    out["max"] = float(np.max(x))
    out["stderr_mean"] = float(np.std(x, ddof=1) / math.sqrt(len(x))) if len(x) > 1 else None
    return out


def _prob(flags: np.ndarray) -> dict[str, float]:
    n = len(flags)
    p = float(np.mean(flags)) if n else float("nan")
    return {"p": p, "stderr": math.sqrt(p * (1 - p) / n) if n else float("nan")}


@dataclass(eq=False)
class AvalancheResult:
    """Per-path outputs of an avalanche run (or of a chunk of its paths), with what is needed to summarise them.

    `stats[i]` holds the `avalanche_kernels.STAT_NAMES` of path `path_ids[i]`; `tail_ids`/`tail_venue` keep the
    venue breakdown at the peak hour of the paths that can be in the tail (this chunk's largest peaks), so
    chunks combine exactly (`combine`).
    """

    settings: AvalancheSettings
    calibration: dict[str, Any]
    resources: dict[str, float]
    venues: tuple[str, ...]
    venue_currency: tuple[str, ...]
    managers: tuple[str, ...]
    manager_weights: np.ndarray  # [V, M]
    path_ids: np.ndarray  # int64 [n]
    stats: np.ndarray  # [n, N_STATS]
    tail_ids: np.ndarray  # int64 [m]
    tail_venue: np.ndarray  # [m, V]
    _summary: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_run(cls, model: AvalancheModel, ids: np.ndarray, stats: np.ndarray, peak: np.ndarray) -> AvalancheResult:
        m = tail_count(model.settings.paths, model.settings.tail_level)
        order = tail_order(stats[:, K.S_PEAK], ids)[:m]
        return cls(model.settings, model.calibration.summary(), dict(model.resources), model.venues,
                   model.terms.currency, model.managers, model.manager_weights, ids, stats, ids[order],
                   peak[order])  # fmt: skip

    def column(self, name: str) -> np.ndarray:
        return self.stats[:, K.STAT_NAMES.index(name)]

    @property
    def complete(self) -> bool:
        return len(self.path_ids) == self.settings.paths

    def conservation_residual_usd(self) -> np.ndarray:
        """Per path: calls due − (cash + facility + liquidation + shortfall); zero to rounding."""
        s = self.stats
        return s[:, K.S_GROSS] - (s[:, K.S_CASH] + s[:, K.S_FACILITY] + s[:, K.S_LIQUIDATION] + s[:, K.S_SHORTFALL])

    def summary(self) -> dict[str, Any]:
        """The statistics of the paths present (all of them once complete); see the module docstring."""
        if self._summary is None:
            self._summary = self._summarise()
        return self._summary

    def _summarise(self) -> dict[str, Any]:
        s = self.stats
        n = len(self.path_ids)
        exhaust = s[:, K.S_EXHAUST_HOUR]
        hit = exhaust >= 0
        liquidated = s[:, K.S_LIQUIDATION_HOUR] >= 0
        short = s[:, K.S_SHORTFALL_HOUR] >= 0
        days = math.ceil(self.settings.hours / 24)
        residual = self.conservation_residual_usd()
        scale = np.maximum(s[:, K.S_GROSS], 1.0)
        m = min(tail_count(n, self.settings.tail_level), len(self.tail_ids))
        tail = self.tail_venue[:m]
        by_venue = tail.mean(axis=0) if m else np.zeros(len(self.venues))
        by_manager = by_venue @ self.manager_weights
        currencies = sorted(set(self.venue_currency))
        by_ccy = {c: 0.0 for c in currencies}
        for v, c in enumerate(self.venue_currency):
            by_ccy[c] += float(by_venue[v])
        tail_peaks = np.sort(s[:, K.S_PEAK])[::-1][:m]
        return {
            "paths": n,
            "complete": self.complete,
            "hours": self.settings.hours,
            "peak_calls_usd": _quantiles(s[:, K.S_PEAK]),
            "peak_need_usd": _quantiles(s[:, K.S_NEED]),
            "gross_calls_usd": _quantiles(s[:, K.S_GROSS]),
            "peak_hour": _quantiles(s[:, K.S_PEAK_HOUR]),
            "exhaustion": {
                "probability": _prob(hit),
                "liquidation_probability": _prob(liquidated),
                "shortfall_probability": _prob(short),
                "hour": _quantiles(exhaust[hit]),
                "probability_by_day": [float(np.mean(hit & (exhaust <= 24 * d))) for d in range(1, days + 1)],
            },
            "liquidation": {
                "loss_usd": _quantiles(s[:, K.S_LOSS]),
                "loss_given_liquidation_usd": _quantiles(s[liquidated, K.S_LOSS]),
                "closed_notional_usd": _quantiles(s[:, K.S_CLOSED]),
                "book_closed_fraction": _quantiles(s[:, K.S_CLOSED_FRACTION]),
            },
            "shortfall_usd": _quantiles(s[:, K.S_SHORTFALL]),
            "waterfall_mean_usd": {
                "calls": float(np.mean(s[:, K.S_GROSS])),
                "returns": float(np.mean(s[:, K.S_RETURNS])),
                "cash": float(np.mean(s[:, K.S_CASH])),
                "facility": float(np.mean(s[:, K.S_FACILITY])),
                "liquidation": float(np.mean(s[:, K.S_LIQUIDATION])),
                "shortfall": float(np.mean(s[:, K.S_SHORTFALL])),
                "facility_drawn": float(np.mean(s[:, K.S_ARRIVED])),
            },
            "max_vol_multiplier": _quantiles(s[:, K.S_MAX_VOL]),
            "conservation": {
                "max_abs_residual_usd": float(np.max(np.abs(residual), initial=0.0)),
                "max_rel_residual": float(np.max(np.abs(residual) / scale, initial=0.0)),
            },
            "contributions": {
                "method": "mean over the tail paths of each venue's cumulative net calls at the path's peak hour",
                "tail_level": self.settings.tail_level,
                "tail_paths": int(m),
                "tail_mean_peak_calls_usd": float(tail_peaks.mean()) if m else 0.0,
                "by_venue": {name: float(x) for name, x in zip(self.venues, by_venue, strict=True)},
                "by_manager": {name: float(x) for name, x in zip(self.managers, by_manager, strict=True)},
                "by_currency": by_ccy,
            },
            "settings": self.settings.recorded(),
            "calibration": self.calibration,
            "resources": self.resources,
        }

    # -- transport ------------------------------------------------------------------------------

    def to_dict(self, per_path: bool = True) -> dict[str, Any]:
        """JSON form: the summary, and with `per_path` what `from_dict` and `combine` need."""
        out: dict[str, Any] = {"summary": self.summary()}
        if per_path:
            out["per_path"] = {
                "venues": list(self.venues),
                "venue_currency": list(self.venue_currency),
                "managers": list(self.managers),
                "manager_weights": self.manager_weights.tolist(),
                "path_ids": self.path_ids.tolist(),
                "stats": {name: self.stats[:, j].tolist() for j, name in enumerate(K.STAT_NAMES)},
                "tail_ids": self.tail_ids.tolist(),
                "tail_venue": self.tail_venue.tolist(),
            }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AvalancheResult:
        summary = data["summary"]
        p = data["per_path"]
        n_v = len(p["venues"])
        stats = np.column_stack([np.asarray(p["stats"][name], dtype=np.float64) for name in K.STAT_NAMES])
        return cls(
            settings=AvalancheSettings.model_validate(summary["settings"]),
            calibration=dict(summary["calibration"]),
            resources=dict(summary["resources"]),
            venues=tuple(p["venues"]),
            venue_currency=tuple(p["venue_currency"]),
            managers=tuple(p["managers"]),
            manager_weights=np.asarray(p["manager_weights"], dtype=np.float64).reshape(n_v, len(p["managers"])),
            path_ids=np.asarray(p["path_ids"], dtype=np.int64),
            stats=stats.reshape(len(p["path_ids"]), K.N_STATS),
            tail_ids=np.asarray(p["tail_ids"], dtype=np.int64),
            tail_venue=np.asarray(p["tail_venue"], dtype=np.float64).reshape(len(p["tail_ids"]), n_v),
        )


def combine(results: Sequence[AvalancheResult]) -> AvalancheResult:
    """One result from the results of disjoint path ranges of the same run (any order): per-path arrays are
    concatenated in path order and the tail candidates merged, so the statistics are those of the whole run."""
    if not results:
        raise ValueError("combine: no results")
    first = results[0]
    for i, r in enumerate(results[1:], start=1):
        if r.settings.recorded() != first.settings.recorded() or r.venues != first.venues:
            raise ValueError(f"combine: chunk {i} ran other settings or another book than chunk 0")
    ids = np.concatenate([r.path_ids for r in results])
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if len(ids) > 1 and np.any(np.diff(ids) == 0):
        dup = int(ids[np.flatnonzero(np.diff(ids) == 0)[0]])
        raise ValueError(f"combine: path {dup} appears in more than one chunk")
    stats = np.concatenate([r.stats for r in results])[order]
    t_ids = np.concatenate([r.tail_ids for r in results])
    t_venue = np.concatenate([r.tail_venue for r in results])
    peak_of = dict(zip(ids.tolist(), stats[:, K.S_PEAK].tolist(), strict=True))
    t_peaks = np.array([peak_of[int(i)] for i in t_ids])
    m = tail_count(first.settings.paths, first.settings.tail_level)
    keep = tail_order(t_peaks, t_ids)[:m]
    return AvalancheResult(first.settings, first.calibration, first.resources, first.venues, first.venue_currency,
                           first.managers, first.manager_weights, ids, stats, t_ids[keep], t_venue[keep])  # fmt: skip
