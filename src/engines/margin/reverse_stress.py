"""Reverse stress test: the most plausible market scenario that exhausts the fund's liquidity resources.

**Scenario.** A vector ``s`` of factor returns over a stress horizon of H business days (default 10), in
the factors' own units (`arrays`): the market moves by ``s`` spread evenly over the H days.

**Plausibility.** The Mahalanobis distance ``d = √(s' Σ_H⁻¹ s)`` under the historical covariance of
daily returns (sample covariance over the lookback, centred) scaled to the horizon, ``Σ_H = H · Σ_1``.
The search works in the principal-component space of Σ_H: ``s = B z`` with ``B = U Λ^½`` over the
components that carry variance (eigenvalues above 1e-12 of the largest), so ``d = |z|``. Two
probabilities go with d: `half_space_probability` ``Φ(−d)``, the chance of a move at least this large
along the scenario's direction (for a linear book, the exact probability of exhausting resources by a
move of this kind), and `chi2_tail_probability` ``P(χ²_k ≥ d²)``, the chance of any scenario at least as
far from no move (close to one in many dimensions: every daily move is "far" in some direction).

**Liquidity need** of a scenario, in USD, summed over venues v:
- variation margin: the venue's P&L ``π_v = a_v·s + ½ Σ_f g_vf s_f²`` (its netted delta-gamma P&L) is
  called in full at a CCP; under a CSA with threshold T the fund pays the fall of the credit support
  ``c(x) = sign(x) · (|x| − T)⁺`` from the netting set's value today ``x_v`` to ``x_v + π_v`` (a loss
  within the threshold's band is not called); what the fund receives elsewhere counts for κ
  (`vm_inflow_credit`, default 0: receipts arrive late or are netted against other obligations);
- initial margin increases at vol-responsive venues (CCPs: FHS models with an EWMA filter of decay λ):
  the filter's variance of the venue's daily P&L after H days of the scenario is
  ``λ^H σ_v² + (1 − λ^H) (a_v·s / H)²``, so the venue's IM grows by the factor
  ``m_v = √(λ^H + (1 − λ^H) (a_v·s)² / (H² σ_v²))`` (σ_v the venue's daily P&L volatility today: today's
  factor volatilities with the historical correlation, as FHS revolatilises): the rise
  ``IM_v · (m_v − 1)⁺`` is called (a fall is released only later and is not counted). Bilateral
  counterparties' SIMM does not respond to realised volatility and adds nothing.

**Resources** available within the horizon: usable cash (cash less the operational buffer) plus what the
credit facility delivers by day H given its notice and daily limit (`liquidity.facility_available`).
A scenario **exhausts** them when need ≥ resources.

**Search.** Along a ray ``t · u`` (|u| = 1) the need is a function of t through a handful of per-venue
scalars, so each direction is repaired exactly onto the boundary: the smallest t with need(t u) ≥
resources (first crossing on a 64-step grid up to `max_distance`, then bisection), and t is then the
scenario's distance. The global search is differential evolution over directions (DE/current-to-pbest/1
with binomial crossover, scale factors drawn around 0.6 and crossover rates around 0.9); one generation
is one pass of a compiled kernel over the population, in parallel over its members (each member's move
``B u``, the venues' P&L through their sparse loadings, the scan and the bisection); `iterations`
generations (1,000) of `population` members (128), seeded. The first population holds, besides random
directions, each large venue's own most plausible losing direction (``−Bᵀ a_v``) and the whole book's.
The best scenario is then polished by the Hasofer–Lind–Rackwitz–Fiessler iteration of structural
reliability (the "design point": the nearest point of a limit surface), repaired onto the boundary at
each step and kept only where it is nearer.

**Breaking venues.** The scenario is played day by day (day h of H moves the market by h/H of s, the
EWMA filter having seen h days): the first day need exceeds the resources available that day is the
breach day, and the venues that break first are those with the largest calls (VM + IM rise) on that
day, with their share of the day's need.

**Replay.** The need of the scenario found is recomputed independently of the search's venue arrays and
kernel: every position's P&L from its own loadings (``Σ_k δ_k s[f_k] + ½ γ_k s[f_k]²``), summed by venue,
the CSA's credit support by `variation.required_collateral`; the IM response as above.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numba import njit, prange
from scipy.special import gammaincc

from engines.margin.arrays import FactorHistory, MarginBook
from engines.margin.liquidity import credit_support, facility_available
from engines.margin.variation import CsaArrays, required_collateral
from engines.margin.venues import LiquidityResources

Progressor = Callable[[int, int], None] | None

GRID_STEPS = 64
BISECTIONS = 48
POLISH_STEPS = 60
EIGEN_FLOOR = 1e-12


# ---- the covariance geometry ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class StressSpace:
    """The historical covariance of the factors at the stress horizon, and its principal components.

    ``s = basis @ z`` maps whitened coordinates to factor moves over the horizon; ``|z|`` is the Mahalanobis
    distance of ``s``. `daily_sd` and `correlation` are the history's; `current_sd` today's one-day
    volatility (the FHS filter's forecast, or the historical one).
    """

    factors: tuple[str, ...]
    horizon_days: int
    daily_covariance: np.ndarray  # [F, F]
    basis: np.ndarray  # [F, k]
    eigenvalues: np.ndarray  # [k], of the horizon covariance, largest first
    current_sd: np.ndarray  # [F]

    @property
    def dimensions(self) -> int:
        return len(self.eigenvalues)

    @property
    def daily_sd(self) -> np.ndarray:
        return np.sqrt(np.diag(self.daily_covariance))

    @property
    def horizon_sd(self) -> np.ndarray:
        return self.daily_sd * math.sqrt(self.horizon_days)

    def correlation(self) -> np.ndarray:
        sd = self.daily_sd
        safe = np.where(sd > 0, sd, 1.0)
        return self.daily_covariance / np.outer(safe, safe)

    def whiten(self, s: np.ndarray) -> np.ndarray:
        """Coordinates z of a factor move s (its component outside the covariance's span is dropped)."""
        return (self.basis.T @ s) / self.eigenvalues

    def distance(self, s: np.ndarray) -> float:
        """Mahalanobis distance of the factor move `s` under the horizon covariance (∞ outside its span)."""
        z = self.whiten(s)
        if np.linalg.norm(self.basis @ z - s) > 1e-8 * max(float(np.linalg.norm(s)), 1e-300):
            return math.inf
        return float(np.linalg.norm(z))


def stress_space(
    history: FactorHistory,
    *,
    horizon_days: int = 10,
    lookback_days: int | None = None,
    current_sd: np.ndarray | None = None,
) -> StressSpace:
    """The stress space of `history`'s last `lookback_days` days (all by default) at `horizon_days`.

    `current_sd` ``[F]`` is today's one-day volatility per factor (e.g. `fhs.current_vol`); by default the
    historical standard deviation.
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days: at least 1, got {horizon_days}")
    returns = history.returns if lookback_days is None else history.returns[-lookback_days:]
    if returns.shape[0] < 2:
        raise ValueError(f"lookback_days: at least 2 days of history are needed, got {returns.shape[0]}")
    cov = np.atleast_2d(np.cov(returns, rowvar=False))
    values, vectors = np.linalg.eigh(cov * horizon_days)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    if values[0] <= 0:
        raise ValueError("history: the factors' returns do not vary; no scenario space")
    keep = values > EIGEN_FLOOR * values[0]
    sd = np.sqrt(np.diag(cov)) if current_sd is None else np.asarray(current_sd, dtype=np.float64)
    if sd.shape != (len(history.factors),) or np.any(~np.isfinite(sd)) or np.any(sd < 0):
        raise ValueError(f"current_sd: one non-negative volatility per factor ({len(history.factors)})")
    return StressSpace(
        factors=history.factors,
        horizon_days=horizon_days,
        daily_covariance=cov,
        basis=vectors[:, keep] * np.sqrt(values[keep]),
        eigenvalues=values[keep],
        current_sd=sd,
    )


# ---- the need along a ray ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NeedModel:
    """What the search needs of the book: per-venue exposures, collateral terms and the IM response (see the
    module docstring)."""

    delta: np.ndarray  # [V, F] venue deltas (USD per unit return)
    gamma: np.ndarray  # [V, F] venue gammas
    im_gain: np.ndarray  # [V] IM that scales with the venue's volatility (0: not responsive)
    sd_day: np.ndarray  # [V] venue's daily P&L volatility today (delta part)
    decay_h: np.ndarray  # [V] λ^H of the venue's EWMA filter
    mtm_usd: np.ndarray  # [V] the netting set's value today (fund's side)
    threshold_usd: np.ndarray  # [V] CSA threshold (0 at a CCP: every move is called)
    horizon_days: int
    inflow_credit: float
    resources_usd: float

    def parts(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(linear ``a_v·s``, quadratic ``½ Σ g_vf s_f²``) per venue for scenarios ``s`` ``[..., F]``."""
        return s @ self.delta.T, 0.5 * ((s * s) @ self.gamma.T)

    def venue_need(self, s: np.ndarray, days: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(VM flow, IM rise) per venue ``[..., V]`` for the move `s`, after `days` of H (default all)."""
        lin, quad = self.parts(s)
        return _venue_flows(lin, quad, self, self.horizon_days if days is None else days)

    def need(self, s: np.ndarray) -> np.ndarray:
        vm, im = self.venue_need(s)
        return vm.sum(axis=-1) + im.sum(axis=-1)

    @cached_property
    def sparse_loadings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The venues' deltas and half gammas in compressed rows: (indptr [V + 1], factor [E], delta [E], ½γ [E])."""
        rows, cols = np.nonzero((self.delta != 0) | (self.gamma != 0))
        indptr = np.searchsorted(rows, np.arange(self.delta.shape[0] + 1)).astype(np.int64)
        return indptr, cols.astype(np.int64), self.delta[rows, cols].copy(), 0.5 * self.gamma[rows, cols]

    @cached_property
    def venue_table(self) -> np.ndarray:
        """``[5, V]`` rows for the compiled kernel: IM gain, daily sd, λ^H, value today, threshold."""
        return np.ascontiguousarray(
            np.vstack([self.im_gain, self.sd_day, self.decay_h, self.mtm_usd, self.threshold_usd]), dtype=np.float64
        )


def _venue_flows(lin: np.ndarray, quad: np.ndarray, model: NeedModel, days: int) -> tuple[np.ndarray, np.ndarray]:
    pnl = lin + quad
    paid = credit_support(model.mtm_usd, model.threshold_usd) - credit_support(model.mtm_usd + pnl, model.threshold_usd)
    vm = np.where(paid > 0, paid, model.inflow_credit * paid)
    decay = model.decay_h ** (days / model.horizon_days)
    safe_sd = np.where(model.sd_day > 0, model.sd_day, 1.0)
    x = lin / (days * safe_sd)  # the day's move: `lin` is the move of `days` days at 1/H of s a day
    m = np.sqrt(decay + (1.0 - decay) * x * x)
    im = np.where(model.sd_day > 0, model.im_gain * np.maximum(m - 1.0, 0.0), 0.0)
    return vm, im


@njit(cache=True)
def _support(value, threshold):  # pragma: no cover - compiled
    excess = abs(value) - threshold
    if excess <= 0.0:
        return 0.0
    return excess if value > 0.0 else -excess


@njit(cache=True)
def _need_at(lin, quad, venue, horizon, credit, t):  # pragma: no cover - compiled
    total = 0.0
    for v in range(lin.shape[0]):
        pnl = t * lin[v] + t * t * quad[v]
        if venue[4, v] > 0.0:
            paid = _support(venue[3, v], venue[4, v]) - _support(venue[3, v] + pnl, venue[4, v])
        else:
            paid = -pnl
        total += paid if paid > 0.0 else credit * paid
        if venue[0, v] > 0.0 and venue[1, v] > 0.0:
            x = t * lin[v] / (horizon * venue[1, v])
            m = math.sqrt(venue[2, v] + (1.0 - venue[2, v]) * x * x)
            if m > 1.0:
                total += venue[0, v] * (m - 1.0)
    return total


@njit(parallel=True, cache=True)
def _boundary_radius(
    directions, basis, indptr, indices, delta, half_gamma, venue, horizon, credit, resources, t_max, steps, bisections
):  # pragma: no cover - compiled
    """Smallest t in (0, t_max] with need(t · B u) ≥ resources for each row's direction u (∞ if none).

    One candidate per thread: its factor move ``s = B u / |u|``, each venue's linear and quadratic P&L
    through the venues' sparse loadings (CSR: `indptr`, `indices`, `delta`, `half_gamma`), then the scan
    and the bisection. Everything is in the kernel, with no BLAS call between generations: OpenBLAS's
    threads, woken for the small products of a generation, fought numba's and the other processes' on a
    loaded two-core machine and made the search five to twenty times slower.
    """
    n, k = directions.shape
    n_f = basis.shape[0]
    n_v = indptr.shape[0] - 1
    out = np.full(n, np.inf)
    for p in prange(n):
        norm = 0.0
        for j in range(k):
            norm += directions[p, j] * directions[p, j]
        norm = math.sqrt(norm)
        s = np.empty(n_f)
        for f in range(n_f):
            acc = 0.0
            for j in range(k):
                acc += basis[f, j] * directions[p, j]
            s[f] = acc / norm
        lin = np.empty(n_v)
        quad = np.empty(n_v)
        for v in range(n_v):
            a = 0.0
            q = 0.0
            for e in range(indptr[v], indptr[v + 1]):
                x = s[indices[e]]
                a += delta[e] * x
                q += half_gamma[e] * x * x
            lin[v] = a
            quad[v] = q
        previous = 0.0
        for j in range(1, steps + 1):
            t = t_max * j / steps
            if _need_at(lin, quad, venue, horizon, credit, t) >= resources:
                lo = previous
                hi = t
                for _ in range(bisections):
                    mid = 0.5 * (lo + hi)
                    if _need_at(lin, quad, venue, horizon, credit, mid) >= resources:
                        hi = mid
                    else:
                        lo = mid
                out[p] = hi
                break
            previous = t
    return out


def need_model(
    book: MarginBook,
    space: StressSpace,
    resources: LiquidityResources,
    *,
    venue_im_usd: np.ndarray | None = None,
    im_responsive: np.ndarray | None = None,
    ewma_decay: np.ndarray | float = 0.97,
    vm_threshold_usd: np.ndarray | None = None,
    vm_inflow_credit: float = 0.0,
) -> NeedModel:
    """The search's view of `book` (see the module docstring): `venue_im_usd` ``[V]`` today's IM, of which the
    venues in `im_responsive` (default: the CCPs) grow with realised volatility at their `ewma_decay`;
    `vm_threshold_usd` ``[V]`` the CSA thresholds (default none), applied to each netting set's value today
    (its positions' `position_value_usd`)."""
    if book.factors != space.factors:
        raise ValueError("space: its factors are not the book's (build both from the same history)")
    n_v = len(book.venues)
    im = np.zeros(n_v) if venue_im_usd is None else np.asarray(venue_im_usd, dtype=np.float64)
    if im.shape != (n_v,) or np.any(im < 0) or not np.all(np.isfinite(im)):
        raise ValueError(f"venue_im_usd: one non-negative figure per venue ({n_v})")
    responsive = book.venue_is_ccp if im_responsive is None else np.asarray(im_responsive, dtype=bool)
    if responsive.shape != (n_v,):
        raise ValueError(f"im_responsive: one flag per venue ({n_v})")
    decay = np.broadcast_to(np.asarray(ewma_decay, dtype=np.float64), (n_v,))
    if np.any((decay <= 0) | (decay >= 1)):
        raise ValueError("ewma_decay: must lie in (0, 1) for every venue")
    threshold = np.zeros(n_v) if vm_threshold_usd is None else np.asarray(vm_threshold_usd, dtype=np.float64)
    if threshold.shape != (n_v,) or np.any(threshold < 0) or not np.all(np.isfinite(threshold)):
        raise ValueError(f"vm_threshold_usd: one non-negative threshold per venue ({n_v})")
    if not 0.0 <= vm_inflow_credit <= 1.0:
        raise ValueError(f"vm_inflow_credit: a fraction in [0, 1], got {vm_inflow_credit}")
    delta = np.asarray(book.venue_delta())
    scaled = delta * space.current_sd
    sd_day = np.sqrt(np.maximum(np.einsum("vf,fg,vg->v", scaled, space.correlation(), scaled), 0.0))
    h = space.horizon_days
    resources_usd = resources.usable_cash_usd + float(facility_available(resources, np.array([h]))[0])
    return NeedModel(
        delta=delta,
        gamma=np.asarray(book.venue_gamma()),
        im_gain=np.where(responsive, im, 0.0),
        sd_day=sd_day,
        decay_h=decay**h,
        mtm_usd=np.bincount(book.position_venue, weights=book.position_value_usd, minlength=n_v),
        threshold_usd=threshold,
        horizon_days=h,
        inflow_credit=float(vm_inflow_credit),
        resources_usd=resources_usd,
    )


def boundary_distance(model: NeedModel, space: StressSpace, directions: np.ndarray, max_distance: float) -> np.ndarray:
    """``[P]`` distance to the boundary need = resources along each row of `directions` ``[P, k]`` (∞ if beyond)."""
    indptr, indices, delta, half_gamma = model.sparse_loadings
    return _boundary_radius(
        np.ascontiguousarray(directions, dtype=np.float64),
        np.ascontiguousarray(space.basis),
        indptr,
        indices,
        delta,
        half_gamma,
        model.venue_table,
        float(model.horizon_days),
        model.inflow_credit,
        model.resources_usd,
        float(max_distance),
        GRID_STEPS,
        BISECTIONS,
    )


# ---- the search --------------------------------------------------------------------------------------------


def _first_population(model: NeedModel, space: StressSpace, size: int, rng: np.random.Generator, seeded: bool):
    k = space.dimensions
    pop = rng.standard_normal((size, k))
    if not seeded:
        return pop
    exposure = model.delta @ space.basis  # [V, k]: a_v' B
    sizes = np.linalg.norm(exposure, axis=1)
    seeds = [-exposure.sum(axis=0)]
    for v in np.argsort(-(sizes + model.im_gain * 1e-12), kind="stable"):
        if sizes[v] > 0 and len(seeds) < size // 2:
            seeds.append(-exposure[v])
    seeds = [s for s in seeds if np.linalg.norm(s) > 0]
    if seeds:
        pop[: len(seeds)] = np.array(seeds)
    return pop


def _gradient(model: NeedModel, space: StressSpace, s: np.ndarray) -> np.ndarray:
    """Gradient of the need with respect to whitened coordinates z at the factor move `s`."""
    lin, quad = model.parts(s)
    pnl = lin + quad
    paid = credit_support(model.mtm_usd, model.threshold_usd) - credit_support(model.mtm_usd + pnl, model.threshold_usd)
    called = (np.abs(model.mtm_usd + pnl) > model.threshold_usd) | (model.threshold_usd == 0)
    weight = np.where(paid > 0, 1.0, model.inflow_credit) * called  # d paid / d(−pnl)
    d_loss = -(model.delta + model.gamma * s)  # [V, F]
    grad = weight @ d_loss
    h = model.horizon_days
    safe_sd = np.where(model.sd_day > 0, model.sd_day, 1.0)
    x = lin / (h * safe_sd)
    m = np.sqrt(model.decay_h + (1.0 - model.decay_h) * x * x)
    active = (model.sd_day > 0) & (m > 1.0) & (model.im_gain > 0)
    coef = np.where(active, model.im_gain * (1.0 - model.decay_h) * x / (m * h * safe_sd), 0.0)
    grad = grad + coef @ model.delta
    return space.basis.T @ grad


def _polish(model: NeedModel, space: StressSpace, z: np.ndarray, distance: float, max_distance: float):
    """Hasofer–Lind–Rackwitz–Fiessler steps from the boundary point z, each repaired onto the boundary."""
    for _ in range(POLISH_STEPS):
        s = space.basis @ z
        g = _gradient(model, space, s)
        norm2 = float(g @ g)
        if norm2 == 0:
            break
        excess = float(model.need(s) - model.resources_usd)
        target = ((g @ z) - excess) / norm2 * g
        improved = False
        for step in (1.0, 0.5, 0.25, 0.1):
            trial = z + step * (target - z)
            if np.linalg.norm(trial) == 0:
                continue
            t = float(boundary_distance(model, space, trial[None, :], max_distance)[0])
            if t < distance * (1 - 1e-13):
                gain = distance - t
                z, distance, improved = trial / np.linalg.norm(trial) * t, t, True
                break
        if not improved or gain < 1e-12 * distance:
            break
    return z, distance


@dataclass(frozen=True)
class VenueBreak:
    """A venue's call on the breach day: variation margin, IM rise, and its share of the day's need."""

    venue: str
    vm_usd: float
    im_increase_usd: float
    share: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "vm_usd": self.vm_usd,
            "im_increase_usd": self.im_increase_usd,
            "share": self.share,
        }


@dataclass(frozen=True)
class Replay:
    """The need of a scenario recomputed position by position (independent of the search's venue arrays)."""

    vm_usd: float
    vm_received_credit_usd: float
    im_increase_usd: float
    need_usd: float
    resources_usd: float

    @property
    def exhausts(self) -> bool:
        return self.need_usd >= self.resources_usd * (1 - 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm_usd": self.vm_usd,
            "vm_received_credit_usd": self.vm_received_credit_usd,
            "im_increase_usd": self.im_increase_usd,
            "need_usd": self.need_usd,
            "resources_usd": self.resources_usd,
            "exhausts": self.exhausts,
        }


@dataclass(frozen=True)
class ReverseStress:
    """The most plausible scenario found that exhausts liquidity resources, and how it does."""

    factors: tuple[str, ...]
    scenario: np.ndarray  # [F] factor moves over the horizon
    horizon_sd: np.ndarray  # [F] historical horizon volatility of each factor
    distance: float
    dimensions: int
    horizon_days: int
    resources_usd: float
    need_usd: float
    breach_day: int | None
    breaking_venues: list[VenueBreak]
    replay: Replay
    iterations: int
    population: int
    seed: int
    evaluations: int
    seconds: float
    best_by_generation: np.ndarray = field(repr=False)

    @property
    def found(self) -> bool:
        return math.isfinite(self.distance)

    @property
    def half_space_probability(self) -> float:
        return 0.5 * math.erfc(self.distance / math.sqrt(2.0))

    @property
    def chi2_tail_probability(self) -> float:
        return float(gammaincc(0.5 * self.dimensions, 0.5 * self.distance**2))

    def top_moves(self, n: int = 10) -> list[dict[str, Any]]:
        """The largest factor moves in units of their horizon volatility."""
        sigmas = np.divide(self.scenario, self.horizon_sd, out=np.zeros_like(self.scenario), where=self.horizon_sd > 0)
        order = np.argsort(-np.abs(sigmas), kind="stable")[:n]
        return [{"factor": self.factors[f], "move": float(self.scenario[f]), "sigmas": float(sigmas[f])} for f in order]

    def summary(self) -> dict[str, Any]:
        """The headline figures (numbers and flags only): what a benchmark or a dashboard line shows."""
        return {
            "found": self.found,
            "distance": self.distance,
            "half_space_probability": self.half_space_probability if self.found else 0.0,
            "chi2_tail_probability": self.chi2_tail_probability if self.found else 0.0,
            "dimensions": self.dimensions,
            "horizon_days": self.horizon_days,
            "resources_usd": self.resources_usd,
            "need_usd": self.need_usd,
            "replay_need_usd": self.replay.need_usd,
            "replay_exhausts": self.replay.exhausts,
            "breach_day": self.breach_day,
            "breaking_venue": self.breaking_venues[0].venue if self.breaking_venues else None,
            "iterations": self.iterations,
            "population": self.population,
            "evaluations": self.evaluations,
            "search_seconds": self.seconds,
        }

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        return {
            "found": self.found,
            "horizon_days": self.horizon_days,
            "distance": self.distance,
            "dimensions": self.dimensions,
            "half_space_probability": self.half_space_probability if self.found else 0.0,
            "chi2_tail_probability": self.chi2_tail_probability if self.found else 0.0,
            "resources_usd": self.resources_usd,
            "need_usd": self.need_usd,
            "breach_day": self.breach_day,
            "breaking_venues": [v.to_dict() for v in self.breaking_venues],
            "top_moves": self.top_moves(top) if self.found else [],
            "scenario": dict(zip(self.factors, self.scenario.tolist(), strict=True)),
            "replay": self.replay.to_dict(),
            "search": {
                "method": "differential evolution (current-to-pbest/1/bin) over directions, exact ray repair, "
                "Hasofer-Lind-Rackwitz-Fiessler polish",
                "iterations": self.iterations,
                "population": self.population,
                "seed": self.seed,
                "evaluations": self.evaluations,
                "seconds": self.seconds,
                "best_every_100": self.best_by_generation[::100].tolist(),
            },
        }


def reverse_stress(
    book: MarginBook,
    space: StressSpace,
    resources: LiquidityResources,
    *,
    venue_im_usd: np.ndarray | None = None,
    im_responsive: np.ndarray | None = None,
    ewma_decay: np.ndarray | float = 0.97,
    vm_threshold_usd: np.ndarray | None = None,
    vm_inflow_credit: float = 0.0,
    iterations: int = 1_000,
    population: int = 128,
    seed: int = 2026,
    max_distance: float = 40.0,
    seeded: bool = True,
    polish: bool = True,
    top_venues: int = 10,
    progress: Progressor = None,
) -> ReverseStress:
    """Search for the most plausible scenario that exhausts `resources` (see the module docstring)."""
    if iterations < 1:
        raise ValueError(f"iterations: at least 1, got {iterations}")
    if population < 8:
        raise ValueError(f"population: at least 8, got {population}")
    if not max_distance > 0:
        raise ValueError(f"max_distance: must be positive, got {max_distance}")
    started = time.perf_counter()
    model = need_model(
        book,
        space,
        resources,
        venue_im_usd=venue_im_usd,
        im_responsive=im_responsive,
        ewma_decay=ewma_decay,
        vm_threshold_usd=vm_threshold_usd,
        vm_inflow_credit=vm_inflow_credit,
    )
    rng = np.random.default_rng(seed)
    k = space.dimensions
    directions = _first_population(model, space, population, rng, seeded)
    radius = boundary_distance(model, space, directions, max_distance)
    points = _points(directions, radius, max_distance)
    best_curve = np.empty(iterations)
    evaluations = population
    n_best = max(2, population // 10)
    every = max(1, iterations // 100)
    for g in range(iterations):
        order = np.argsort(radius, kind="stable")
        pbest = points[order[rng.integers(0, n_best, population)]]
        r1 = rng.integers(0, population, population)
        r2 = rng.integers(0, population, population)
        scale = np.clip(rng.normal(0.6, 0.15, (population, 1)), 0.1, 1.0)
        mutant = points + scale * (pbest - points) + scale * (points[r1] - points[r2])
        cross = rng.random((population, k)) < np.clip(rng.normal(0.9, 0.05, (population, 1)), 0.0, 1.0)
        cross[np.arange(population), rng.integers(0, k, population)] = True
        trial = np.where(cross, mutant, points)
        trial_norm = np.linalg.norm(trial, axis=1)
        trial[trial_norm == 0] = rng.standard_normal((int(np.sum(trial_norm == 0)), k))
        trial_radius = boundary_distance(model, space, trial, max_distance)
        evaluations += population
        better = trial_radius < radius
        points[better] = _points(trial[better], trial_radius[better], max_distance)
        radius[better] = trial_radius[better]
        best_curve[g] = radius.min()
        if progress is not None and ((g + 1) % every == 0 or g + 1 == iterations):
            progress(g + 1, iterations)
    best = int(np.argmin(radius))
    z, distance = points[best], float(radius[best])
    if polish and math.isfinite(distance):
        z, distance = _polish(model, space, z, distance, max_distance)
    scenario = space.basis @ z if math.isfinite(distance) else np.zeros(len(space.factors))
    breach_day, breaking = (
        _breach(book, model, scenario, resources, top_venues) if math.isfinite(distance) else (None, [])
    )
    return ReverseStress(
        factors=space.factors,
        scenario=scenario,
        horizon_sd=space.horizon_sd,
        distance=distance,
        dimensions=k,
        horizon_days=space.horizon_days,
        resources_usd=model.resources_usd,
        need_usd=float(model.need(scenario)),
        breach_day=breach_day,
        breaking_venues=breaking,
        replay=replay_need(book, scenario, model),
        iterations=iterations,
        population=population,
        seed=seed,
        evaluations=evaluations,
        seconds=time.perf_counter() - started,
        best_by_generation=best_curve,
    )


def _points(directions: np.ndarray, radius: np.ndarray, max_distance: float) -> np.ndarray:
    u = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    return u * np.where(np.isfinite(radius), radius, max_distance)[:, None]


def _breach(
    book: MarginBook, model: NeedModel, scenario: np.ndarray, resources: LiquidityResources, top: int
) -> tuple[int | None, list[VenueBreak]]:
    """The first day of the horizon the need exceeds the resources of that day, and the venues calling most."""
    h = model.horizon_days
    available = resources.usable_cash_usd + facility_available(resources, h)
    for day in range(1, h + 1):
        lin, quad = model.parts(scenario * (day / h))
        vm, im = _venue_flows(lin, quad, model, day)
        total = float(vm.sum() + im.sum())
        if total >= available[day - 1] * (1 - 1e-9):
            calls = vm + im
            order = [v for v in np.argsort(-calls, kind="stable")[:top] if calls[v] > 0]
            return day, [VenueBreak(book.venues[v], float(vm[v]), float(im[v]), float(calls[v] / total)) for v in order]
    return None, []


def replay_need(book: MarginBook, scenario: np.ndarray, model: NeedModel) -> Replay:
    """The need of `scenario` rebuilt from the positions' loadings, venue by venue: P&L loading by loading, the
    CSA's credit support by `variation.required_collateral` (minimum transfer and rounding left out: they move
    single calls by less than a million), the IM response as the model's."""
    s = np.asarray(scenario, dtype=np.float64)
    r = s[book.load_factor]
    n_p, n_v = len(book.position_ids), len(book.venues)
    position_pnl = np.bincount(
        book.load_position, weights=book.load_delta * r + 0.5 * book.load_gamma * r * r, minlength=n_p
    )
    position_lin = np.bincount(book.load_position, weights=book.load_delta * r, minlength=n_p)
    pnl = np.bincount(book.position_venue, weights=position_pnl, minlength=n_v)
    lin = np.bincount(book.position_venue, weights=position_lin, minlength=n_v)
    value = np.bincount(book.position_venue, weights=book.position_value_usd, minlength=n_v)
    zero = np.zeros(n_v)
    csa = CsaArrays(model.threshold_usd, zero, zero, zero, np.zeros(n_v, dtype=np.int64))
    paid = required_collateral(value, csa) - required_collateral(value + pnl, csa)
    h = model.horizon_days
    safe_sd = np.where(model.sd_day > 0, model.sd_day, 1.0)
    m = np.sqrt(model.decay_h + (1.0 - model.decay_h) * (lin / (h * safe_sd)) ** 2)
    im = float(np.sum(np.where(model.sd_day > 0, model.im_gain * np.maximum(m - 1.0, 0.0), 0.0)))
    vm = float(np.maximum(paid, 0.0).sum())
    credit = float(model.inflow_credit * np.maximum(-paid, 0.0).sum())
    return Replay(
        vm_usd=vm,
        vm_received_credit_usd=credit,
        im_increase_usd=im,
        need_usd=vm - credit + im,
        resources_usd=model.resources_usd,
    )


def reverse_stress_of_book(
    loaded: Any,
    *,
    baseline: Any = None,
    horizon_days: int = 10,
    lookback_days: int | None = None,
    iterations: int = 1_000,
    population: int = 128,
    seed: int = 2026,
    vm_inflow_credit: float = 0.0,
    progress: Progressor = None,
) -> ReverseStress:
    """The reverse stress test of a loaded book (`files.LoadedBook`): covariance of the whole history (or its
    last `lookback_days`), today's volatility from the FHS filter (decay 0.97), each CCP's IM from the
    baseline responding at its own EWMA decay, CSA thresholds, and the book's liquidity resources.
    `progress(done, total)` counts the baseline as the first tenth of the work.
    """
    from engines.margin import fhs
    from engines.margin.baseline import baseline_margin, venue_csa

    book = loaded.book
    total = iterations + iterations // 10
    if progress is not None:
        progress(0, total)
    base = baseline if baseline is not None else baseline_margin(loaded)
    offset = iterations // 10
    if progress is not None:
        progress(offset, total)
    space = stress_space(
        loaded.history,
        horizon_days=horizon_days,
        lookback_days=lookback_days,
        current_sd=fhs.current_vol(loaded.history, 0.97),
    )
    decay = np.array([v.margin_model.ewma_decay if v.kind == "ccp" else 0.97 for v in book.venues])
    thresholds = np.array([0.0 if t is None else t.threshold_usd for t in venue_csa(book)])

    def search_progress(done: int, _: int) -> None:
        if progress is not None:
            progress(offset + done, total)

    return reverse_stress(
        loaded.arrays,
        space,
        book.resources,
        venue_im_usd=np.maximum(base.venue_im_usd, 0.0),
        ewma_decay=decay,
        vm_threshold_usd=thresholds,
        vm_inflow_credit=vm_inflow_credit,
        iterations=iterations,
        population=population,
        seed=seed,
        progress=search_progress,
    )
