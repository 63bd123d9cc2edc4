"""Market data for autocallable pricing: rate curve, underlyings (spot, dividends, volatility) and correlation.

The boundary models validate what a desk feeds in: positive spots and vols, sorted curve
nodes, quoted forwards consistent with spot, rates and dividends, and a positive semi-definite
correlation matrix. A matrix that is not PSD is refused unless the caller asks for the nearest
correlation matrix, in which case the repair and its size are reported with the result.

Volatility is either a Black–Scholes term structure of at-the-money implied vols (flat in
strike) or a grid of implied-vol quotes from which an arbitrage-free SSVI surface is
calibrated for the local-volatility model.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

FORWARD_TOLERANCE = 1e-3
"""Relative difference allowed between a quoted forward and the one implied by spot, rates and dividends."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_nodes(times: list[float], values: list[float], what: str) -> None:
    if len(times) != len(values):
        raise ValueError(f"{what}: times and values differ in length ({len(times)} vs {len(values)})")
    if not times:
        raise ValueError(f"{what}: give at least one node")
    if any(not np.isfinite(t) or t <= 0 for t in times):
        raise ValueError(f"{what}.times: node times must be positive years")
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise ValueError(f"{what}.times: node times must be strictly increasing")
    if any(not np.isfinite(v) for v in values):
        raise ValueError(f"{what}: values must be finite")


class Curve(_Model):
    """Continuously compounded zero rates (or yields) at node times, linear in between, flat outside."""

    times: list[float] = [1.0]
    rates: list[float] = [0.0]

    @model_validator(mode="after")
    def _nodes(self) -> Curve:
        _check_nodes(self.times, self.rates, "curve")
        return self

    @classmethod
    def flat(cls, rate: float) -> Curve:
        return cls(times=[1.0], rates=[rate])

    def zero(self, t: np.ndarray | float) -> np.ndarray:
        return np.interp(np.asarray(t, dtype=np.float64), self.times, self.rates)

    def integral(self, t: np.ndarray | float) -> np.ndarray:
        """∫₀ᵗ of the instantaneous rate = zero(t)·t (so discount = exp(-integral))."""
        t = np.asarray(t, dtype=np.float64)
        return self.zero(t) * t


class CashDividend(_Model):
    time: float = Field(gt=0, description="Ex-dividend time in years.")
    amount: float = Field(gt=0, description="Cash amount in the underlying's price units.")


class VolPoint(_Model):
    time: float = Field(gt=0)
    vol: float = Field(gt=0, le=5.0)


class ForwardQuote(_Model):
    time: float = Field(gt=0)
    forward: float = Field(gt=0)


class SurfaceQuotes(_Model):
    """Implied vols by expiry (rows) and strike as a fraction of spot (columns)."""

    expiries: list[float]
    strikes: list[float] = Field(description="Strikes relative to spot (1.0 = at the money spot).")
    vols: list[list[float]]

    @model_validator(mode="after")
    def _shape(self) -> SurfaceQuotes:
        if len(self.vols) != len(self.expiries):
            raise ValueError(f"vols: one row per expiry ({len(self.expiries)}), got {len(self.vols)}")
        for i, row in enumerate(self.vols):
            if len(row) != len(self.strikes):
                raise ValueError(f"vols[{i}]: one vol per strike ({len(self.strikes)}), got {len(row)}")
            for j, v in enumerate(row):
                if not np.isfinite(v) or v <= 0:
                    raise ValueError(f"vols[{i}][{j}]: implied vols must be positive, got {v}")
        return self


class UnderlyingMarket(_Model):
    """One underlying: spot, dividend yield curve and cash dividends, volatility, optional quoted forwards."""

    spot: float = Field(gt=0)
    dividend_yield: Curve = Curve()
    dividends: list[CashDividend] = []
    volatility: float | list[VolPoint] | None = Field(
        default=None, description="ATM implied vol (flat) or its term structure, for the Black–Scholes model."
    )
    surface: SurfaceQuotes | None = Field(default=None, description="Implied-vol quotes for the local-vol model.")
    forwards: list[ForwardQuote] = []

    @model_validator(mode="after")
    def _vol_given(self) -> UnderlyingMarket:
        if self.volatility is None and self.surface is None:
            raise ValueError("volatility: give an ATM volatility (or term structure) or a surface")
        if isinstance(self.volatility, float | int) and not 0 < self.volatility <= 5:
            raise ValueError(f"volatility: must be in (0, 5], got {self.volatility}")
        if isinstance(self.volatility, list):
            times = [p.time for p in self.volatility]
            if any(b <= a for a, b in itertools.pairwise(times)):
                raise ValueError("volatility: term-structure times must be strictly increasing")
            var = [p.vol**2 * p.time for p in self.volatility]
            for i, (a, b) in enumerate(itertools.pairwise(var)):
                if b < a:
                    raise ValueError(
                        f"volatility[{i + 1}]: total variance falls from {a:.6g} to {b:.6g} (calendar arbitrage)"
                    )
        times = [d.time for d in self.dividends]
        if any(b < a for a, b in itertools.pairwise(times)):
            raise ValueError("dividends: ex-dividend times must be non-decreasing")
        return self

    def atm_vols(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, ATM implied vols) for the Black–Scholes model; from the surface's ATM column if no vol is given."""
        if isinstance(self.volatility, float | int):
            return np.array([1.0]), np.array([float(self.volatility)])
        if isinstance(self.volatility, list):
            return np.array([p.time for p in self.volatility]), np.array([p.vol for p in self.volatility])
        assert self.surface is not None
        strikes = np.asarray(self.surface.strikes)
        vols = np.asarray(self.surface.vols)
        return np.asarray(self.surface.expiries), np.array([np.interp(1.0, strikes, row) for row in vols])


class MarketData(_Model):
    """Everything a pricing needs: currency, risk-free curve, underlyings and their correlation."""

    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    rates: Curve = Curve()
    underlyings: dict[str, UnderlyingMarket] = Field(min_length=1)
    correlation: list[list[float]] | None = Field(
        default=None, description="Correlation matrix in the order of `underlyings`; identity when omitted."
    )
    repair_correlation: bool = Field(
        False, description="Replace a non-PSD correlation by the nearest correlation matrix."
    )

    @model_validator(mode="after")
    def _consistent(self) -> MarketData:
        n = len(self.underlyings)
        if self.correlation is not None:
            c = self.correlation
            if len(c) != n or any(len(row) != n for row in c):
                raise ValueError(f"correlation: must be {n}x{n} (one row and column per underlying)")
            m = np.asarray(c, dtype=np.float64)
            if not np.all(np.isfinite(m)):
                raise ValueError("correlation: entries must be finite")
            if not np.allclose(m, m.T, atol=1e-12):
                raise ValueError("correlation: matrix must be symmetric")
            if not np.allclose(np.diag(m), 1.0, atol=1e-12):
                raise ValueError("correlation: diagonal must be 1")
            off = m[~np.eye(n, dtype=bool)]
            if off.size and (off.min() < -1 or off.max() > 1):
                raise ValueError("correlation: entries must lie in [-1, 1]")
            lowest = float(np.linalg.eigvalsh(m).min())
            if lowest < -1e-10 and not self.repair_correlation:
                raise ValueError(
                    f"correlation: matrix is not positive semi-definite (lowest eigenvalue {lowest:.4g}); "
                    "fix it or set repair_correlation to use the nearest correlation matrix"
                )
        for name, u in self.underlyings.items():
            for i, q in enumerate(u.forwards):
                model = float(forward(self, name, np.array([q.time]))[0])
                if abs(q.forward / model - 1) > FORWARD_TOLERANCE:
                    raise ValueError(
                        f"underlyings.{name}.forwards[{i}]: quoted forward {q.forward:.6g} at {q.time}y differs from "
                        f"{model:.6g} implied by spot, rates and dividends by {100 * (q.forward / model - 1):.3f}%"
                    )
        return self

    @cached_property
    def names(self) -> list[str]:
        return list(self.underlyings)

    def correlation_for(self, names: list[str]) -> CorrelationResult:
        """The correlation of `names` (a subset in any order), repaired to the nearest PSD matrix if allowed."""
        missing = [n for n in names if n not in self.underlyings]
        if missing:
            raise KeyError(f"underlyings: no market data for {missing}; have {self.names}")
        full = np.eye(len(self.names)) if self.correlation is None else np.asarray(self.correlation, dtype=np.float64)
        idx = [self.names.index(n) for n in names]
        sub = full[np.ix_(idx, idx)]
        if float(np.linalg.eigvalsh(sub).min()) >= -1e-10:
            return CorrelationResult(sub, repaired=False, max_change=0.0)
        fixed = nearest_correlation(sub)
        return CorrelationResult(fixed, repaired=True, max_change=float(np.abs(fixed - sub).max()))


@dataclass(frozen=True)
class CorrelationResult:
    matrix: np.ndarray
    repaired: bool
    max_change: float


def atm_total_variance(node_times: np.ndarray, node_vols: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Total ATM variance σ²t at `t` from a vol term structure: linear in total variance from 0 at t = 0 between
    the nodes, and at the last node's vol beyond it."""
    t = np.asarray(t, dtype=np.float64)
    inside = np.interp(t, np.concatenate([[0.0], node_times]), np.concatenate([[0.0], node_vols**2 * node_times]))
    return np.where(t > node_times[-1], node_vols[-1] ** 2 * t, inside)


def forward(market: MarketData, name: str, times: np.ndarray) -> np.ndarray:
    """Forward of `name` at `times`: spot grown at r - q, less cash dividends grown from their ex-dates."""
    u = market.underlyings[name]
    times = np.asarray(times, dtype=np.float64)
    growth = np.exp(market.rates.integral(times) - u.dividend_yield.integral(times))
    fwd = u.spot * growth
    for d in u.dividends:
        later = times >= d.time
        g_d = np.exp(market.rates.integral(d.time) - u.dividend_yield.integral(d.time))
        fwd = fwd - np.where(later, d.amount * growth / g_d, 0.0)
    return fwd


def nearest_correlation(a: np.ndarray, *, iterations: int = 200, tol: float = 1e-12) -> np.ndarray:
    """The nearest correlation matrix in Frobenius norm (alternating projections with Dykstra's correction)."""
    y = a.copy()
    ds = np.zeros_like(a)
    for _ in range(iterations):
        r = y - ds
        w, v = np.linalg.eigh((r + r.T) / 2)
        x = (v * np.maximum(w, 0)) @ v.T
        ds = x - r
        y_new = x.copy()
        np.fill_diagonal(y_new, 1.0)
        if np.linalg.norm(y_new - y) < tol:
            y = y_new
            break
        y = y_new
    w, v = np.linalg.eigh(y)
    y = (v * np.maximum(w, 1e-12)) @ v.T
    d = np.sqrt(np.diag(y))
    return y / np.outer(d, d)
