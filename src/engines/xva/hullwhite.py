"""Hull–White one-factor model per currency: closed forms, Jamshidian swaptions and calibration to swaptions.

The short rate is r(t) = f(0, t) + x(t) with dx = (y(t) − a x) dt + σ(t) dW in the currency's own
risk-neutral measure, x(0) = 0, σ piecewise constant, and y(t) = ∫₀ᵗ e^{−2a(t−u)} σ(u)² du the variance of
the driftless Ornstein–Uhlenbeck part x̃. In this (Ritchken–Sankarasubramanian) form the model fits the
initial discount curve exactly for any σ, and the zero-coupon bond on a path is

    P(t, T | x) = P(0, T) / P(0, t) · exp(−B(t, T) x − ½ B(t, T)² y(t)),   B(t, T) = (1 − e^{−a(T−t)}) / a.

x(t) = x̃(t) + m(t) with the deterministic drift m(t) = ∫₀ᵗ σ(u)² (e^{−a(t−u)} − e^{−2a(t−u)}) / a du, and
∫₀ᵗ x = ∫₀ᵗ x̃ + M(t), M(t) = ½ Var(∫₀ᵗ x̃), which makes the discounted bond a martingale. Every integral of
σ against exponentials is closed form on the pieces (`PiecewiseConstant.integral_exp`).

European swaptions are priced by Jamshidian's decomposition into zero-coupon bond options (exact in this
model); σ is calibrated to at-the-money normal (Bachelier) swaption vols — one constant σ in least squares,
or piecewise σ bootstrapped expiry by expiry on co-terminal or diagonal quotes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import ndtr

from engines.xva.market import DiscountCurve, HullWhiteSpec, add_months, year_time
from engines.xva.trades import CONVENTIONS, months_of, schedules, year_fraction


@dataclass(frozen=True)
class PiecewiseConstant:
    """g(u) = values[i] on (breaks[i-1], breaks[i]] (breaks[-1] = 0), the last value beyond the last break."""

    breaks: np.ndarray  # [n - 1], increasing, > 0
    values: np.ndarray  # [n]

    @classmethod
    def constant(cls, value: float) -> PiecewiseConstant:
        return cls(np.zeros(0), np.array([float(value)]))

    def __call__(self, u: np.ndarray | float) -> np.ndarray:
        return self.values[np.searchsorted(self.breaks, np.asarray(u, dtype=np.float64), side="left")]

    def power(self, p: int) -> PiecewiseConstant:
        return PiecewiseConstant(self.breaks, self.values**p)

    def times(self, other: PiecewiseConstant) -> PiecewiseConstant:
        """The pointwise product (on the union of both break sets)."""
        breaks = np.union1d(self.breaks, other.breaks)
        probe = np.concatenate([breaks, [breaks[-1] + 1.0 if breaks.size else 1.0]])
        return PiecewiseConstant(breaks, self(probe) * other(probe))

    def integral_exp(self, lo, hi, end, k: float) -> np.ndarray:
        """∫_lo^hi g(u) e^{−k (end − u)} du, vectorised over broadcastable `lo`, `hi`, `end` (zero where hi ≤ lo)."""
        lo, hi, end = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (lo, hi, end)))
        edges = np.concatenate([[0.0], self.breaks, [np.inf]])
        total = np.zeros(lo.shape)
        for i, g in enumerate(self.values):
            a = np.maximum(lo, edges[i])
            b = np.minimum(hi, edges[i + 1])
            live = b > a
            if not np.any(live) or g == 0.0:
                continue
            b = np.where(live, b, a)
            if k == 0.0:
                piece = b - a
            else:
                # (e^{−k(end−b)} − e^{−k(end−a)}) / k, written to stay accurate for small k (b − a)
                piece = np.exp(-k * (end - b)) * -np.expm1(-k * (b - a)) / k
            total += np.where(live, g * piece, 0.0)
        return total


def bond_b(a: float, t, T) -> np.ndarray:
    """B(t, T) = (1 − e^{−a(T−t)}) / a."""
    return -np.expm1(-a * (np.asarray(T, dtype=np.float64) - np.asarray(t, dtype=np.float64))) / a


@dataclass(frozen=True)
class HullWhite:
    """The calibrated model of one currency: its discount curve, mean reversion `a` and piecewise σ."""

    currency: str
    curve: DiscountCurve
    a: float
    sigma: PiecewiseConstant

    def y(self, t) -> np.ndarray:
        """Var x̃(t) = ∫₀ᵗ e^{−2a(t−u)} σ(u)² du."""
        return self.sigma.power(2).integral_exp(0.0, t, t, 2 * self.a)

    def drift(self, t) -> np.ndarray:
        """m(t): the deterministic part of x(t) in the currency's own measure."""
        s2 = self.sigma.power(2)
        return (s2.integral_exp(0.0, t, t, self.a) - s2.integral_exp(0.0, t, t, 2 * self.a)) / self.a

    def drift_integral(self, t) -> np.ndarray:
        """M(t) = ∫₀ᵗ m = ½ Var(∫₀ᵗ x̃) = ½ ∫₀ᵗ σ(u)² B(u, t)² du."""
        s2, a = self.sigma.power(2), self.a
        return (
            0.5
            * (s2.integral_exp(0.0, t, t, 0.0) - 2 * s2.integral_exp(0.0, t, t, a) + s2.integral_exp(0.0, t, t, 2 * a))
            / a**2
        )

    def bond_coefficients(self, t, T) -> tuple[np.ndarray, np.ndarray]:
        """(ln A, B) with ln P(t, T | x) = ln A − B x."""
        b = bond_b(self.a, t, T)
        ln_a = self.curve.log_discount(T) - self.curve.log_discount(t) - 0.5 * b * b * self.y(t)
        return ln_a, b

    def zero_bond(self, t, T, x) -> np.ndarray:
        ln_a, b = self.bond_coefficients(t, T)
        return np.exp(ln_a - b * np.asarray(x, dtype=np.float64))

    def bond_option_vol(self, t, expiry, maturity) -> np.ndarray:
        """Total (not annualised) lognormal vol of P(expiry, maturity) / P(expiry, expiry) seen at t."""
        v = self.sigma.power(2).integral_exp(t, expiry, expiry, 2 * self.a)
        return bond_b(self.a, expiry, maturity) * np.sqrt(np.maximum(v, 0.0))

    def zero_bond_option(self, t, expiry, maturity, strike, x, call: bool) -> np.ndarray:
        """Price at t (state x) of an option expiring at `expiry` on the bond maturing at `maturity`."""
        p_e = self.zero_bond(t, expiry, x)
        p_m = self.zero_bond(t, maturity, x)
        return _black_bond(p_e, p_m, strike, self.bond_option_vol(t, expiry, maturity), call)


def _black_bond(p_e, p_m, strike, vol, call: bool):
    vol = np.maximum(vol, 1e-300)
    d1 = np.log(p_m / (strike * p_e)) / vol + 0.5 * vol
    d2 = d1 - vol
    if call:
        return p_m * ndtr(d1) - strike * p_e * ndtr(d2)
    return strike * p_e * ndtr(-d2) - p_m * ndtr(-d1)


# ---------------------------------------------------------------------------------------------
# Swaptions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwaptionLegs:
    """A swaption's fixed leg in model times: option expiry (= swap start), payment times and coupons c_i
    (strike × accrual, plus 1 at the last payment), so the payer swap at expiry is 1 − Σ c_i P(T0, T_i)."""

    expiry: float
    pay_times: np.ndarray
    accruals: np.ndarray
    strike: float

    @property
    def coupons(self) -> np.ndarray:
        c = self.strike * self.accruals
        c[-1] += 1.0
        return c


def swaption_legs(
    as_of: date, expiry: date, maturity: date, strike: float, frequency: str, day_count: str
) -> SwaptionLegs:
    """The fixed leg of a swap from `expiry` to `maturity` (unadjusted schedule, `day_count` accruals)."""
    s = schedules(
        np.array([expiry], "datetime64[D]"), np.array([maturity], "datetime64[D]"), np.array([months_of(frequency)])
    )
    base = np.datetime64(as_of, "D")
    pay = (s.end - base).astype(np.int64) / 365.0
    return SwaptionLegs(year_time(as_of, expiry), pay, year_fraction(s.start, s.end, day_count), strike)


def critical_state(model: HullWhite, expiry: float, pay_times: np.ndarray, coupons: np.ndarray) -> float:
    """Jamshidian's x*: Σ c_i P(T0, T_i | x*) = 1 (the payer swap at expiry is worth zero there)."""
    ln_a, b = model.bond_coefficients(expiry, pay_times)

    def gap(x: float) -> float:
        return float(np.sum(coupons * np.exp(ln_a - b * x))) - 1.0

    lo, hi = -0.5, 0.5
    while gap(lo) < 0:
        lo *= 2
    while gap(hi) > 0:
        hi *= 2
    return brentq(gap, lo, hi, xtol=1e-15, rtol=1e-14)


def swaption_price(model: HullWhite, legs: SwaptionLegs, payer: bool, t: float = 0.0, x=0.0) -> np.ndarray:
    """Jamshidian price at t < expiry (state x, scalar or array) of a swaption per unit notional."""
    coupons = legs.coupons
    x_star = critical_state(model, legs.expiry, legs.pay_times, coupons)
    strikes = model.zero_bond(legs.expiry, legs.pay_times, x_star)
    x = np.asarray(x, dtype=np.float64)
    total = np.zeros(x.shape)
    for c, tp, k in zip(coupons, legs.pay_times, strikes, strict=True):
        total = total + c * model.zero_bond_option(t, legs.expiry, tp, k, x, call=not payer)
    return total


def bachelier_swaption(curve: DiscountCurve, legs: SwaptionLegs, normal_vol: float, payer: bool) -> float:
    """Bachelier price at t = 0 of a swaption on the single-curve swap (float leg P(0, T0) − P(0, Tn))."""
    annuity = float(np.sum(legs.accruals * curve.discount(legs.pay_times)))
    forward = (float(curve.discount(legs.expiry)) - float(curve.discount(legs.pay_times[-1]))) / annuity
    sd = normal_vol * math.sqrt(legs.expiry)
    d = (forward - legs.strike) / sd
    phi = math.exp(-0.5 * d * d) / math.sqrt(2 * math.pi)
    sign = 1.0 if payer else -1.0
    return annuity * (sign * (forward - legs.strike) * float(ndtr(sign * d)) + sd * phi)


def atm_legs(curve: DiscountCurve, as_of: date, currency: str, expiry_years: float, tenor_years: float) -> SwaptionLegs:
    """The at-the-money swaption of a quote, in the currency's fixed-leg conventions."""
    conv = CONVENTIONS[currency]
    expiry = add_months(as_of, round(12 * expiry_years))
    maturity = add_months(expiry, round(12 * tenor_years))
    legs = swaption_legs(as_of, expiry, maturity, 0.0, conv.fixed_frequency, conv.fixed_day_count)
    annuity = float(np.sum(legs.accruals * curve.discount(legs.pay_times)))
    forward = (float(curve.discount(legs.expiry)) - float(curve.discount(legs.pay_times[-1]))) / annuity
    return SwaptionLegs(legs.expiry, legs.pay_times, legs.accruals, forward)


# ---------------------------------------------------------------------------------------------
# Building and calibrating
# ---------------------------------------------------------------------------------------------


def hull_white(currency: str, curve: DiscountCurve, spec: HullWhiteSpec, as_of: date) -> HullWhite:
    """The model of one currency: σ as given, or calibrated to the spec's swaption quotes."""
    given = HullWhite(
        currency,
        curve,
        spec.mean_reversion,
        PiecewiseConstant(np.asarray(spec.volatility_times, float), np.asarray(spec.volatilities, float)),
    )
    if spec.calibrate == "none":
        return given
    quotes = [(atm_legs(curve, as_of, currency, q.expiry_years, q.tenor_years), q.normal_vol) for q in spec.swaptions]
    targets = [bachelier_swaption(curve, legs, vol, payer=True) for legs, vol in quotes]
    a = spec.mean_reversion
    if spec.calibrate == "constant":

        def loss(sigma: float) -> float:
            m = HullWhite(currency, curve, a, PiecewiseConstant.constant(sigma))
            return sum(
                ((float(swaption_price(m, legs, True)) - p) / p) ** 2
                for (legs, _), p in zip(quotes, targets, strict=True)
            )

        res = minimize_scalar(loss, bounds=(1e-5, 0.1), method="bounded", options={"xatol": 1e-10})
        return HullWhite(currency, curve, a, PiecewiseConstant.constant(float(res.x)))
    breaks = np.array([legs.expiry for legs, _ in quotes[:-1]])
    values = np.full(len(quotes), 0.01)
    for i, ((legs, _vol), target) in enumerate(zip(quotes, targets, strict=True)):

        def gap(sigma: float, i: int = i, legs: SwaptionLegs = legs, target: float = target) -> float:
            trial = values.copy()
            trial[i:] = sigma
            m = HullWhite(currency, curve, a, PiecewiseConstant(breaks, trial))
            return float(swaption_price(m, legs, True)) - target

        try:
            values[i:] = brentq(gap, 1e-6, 0.2, xtol=1e-12)
        except ValueError:
            raise ValueError(
                f"currencies.{currency}.hull_white.swaptions[{i}]: no σ reprices the quote "
                "(the earlier expiries already imply more variance)"
            ) from None
    return HullWhite(currency, curve, a, PiecewiseConstant(breaks, values))
