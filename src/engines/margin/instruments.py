"""Pricers and sensitivities of the margin book's instruments, vectorised over positions.

`book.book_arrays` turns each position's terms into loadings on risk factors with these functions;
they know nothing of the pydantic models (arrays in, arrays out). Every function returns the value
and its first and second derivatives with respect to the market variable the risk factor moves, in
the units of that variable (a price, a rate or spread in decimals, a volatility in decimals):

- European options on a price (equity index, FX rate): Black–Scholes with a continuous carry yield
  (the dividend yield, or the foreign rate: Garman–Kohlhagen), per unit of underlying.
- Options on a swap rate (swaptions): Bachelier (normal) on the swap rate times the forward annuity.
  Interest-rate factors move by absolute changes and rates may be near or below zero, which the
  lognormal Black model cannot price; the normal model is the market's quoting model for them.
- Interest-rate swaps: the fixed rate against the par rate ``S`` of the remaining maturity, on the
  fixed leg's annuity discounted at that par rate: ``V_payer = N · A(S) · (S − K)`` with
  ``A(S) = Σ α_j (1 + S/f)^(−f t_j)``; the derivative is the DV01 per unit rate (DV01 · 1e4).
- CDS indices: the credit-triangle model: hazard ``λ = S / (1 − R)``, risky annuity
  ``RPV01 = Σ ¼ · e^(−(r + λ) t_j)`` over quarterly premium dates, protection buyer's value
  ``N · (S − C) · RPV01`` (spread ``S`` against the running coupon ``C``).

Times are in years (ACT/365 from the book's date); payment schedules run backwards from maturity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

Array = NDArray[np.float64]

DAYS_PER_YEAR = 365.0
PILLAR_YEARS: dict[str, float] = {"3M": 0.25, "1Y": 1.0, "2Y": 2.0, "5Y": 5.0, "10Y": 10.0, "30Y": 30.0}
"""Tenors of the interest-rate factors (``IR.<CCY>.<tenor>``) in years."""
CDS_PAYMENTS_PER_YEAR = 4
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def year_fraction(start: date, end: date) -> float:
    """Years from `start` to `end`, ACT/365."""
    return (end - start).days / DAYS_PER_YEAR


def _pdf(x: Array) -> Array:
    return np.exp(-0.5 * x * x) / _SQRT_2PI


def _f(x: ArrayLike) -> Array:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class OptionGreeks:
    """An option's value and its derivatives: `delta`, `gamma` with respect to the underlying level,
    `vega`, `volga` with respect to the volatility (all per unit of the option's size)."""

    value: Array
    delta: Array
    gamma: Array
    vega: Array
    volga: Array


@dataclass(frozen=True)
class RateGreeks:
    """A rate or spread instrument's value and its first and second derivatives with respect to the rate
    (per unit absolute change: DV01 or CS01 times 1e4, and the convexity)."""

    value: Array
    delta: Array
    gamma: Array


def black_scholes(
    spot: ArrayLike,
    strike: ArrayLike,
    years: ArrayLike,
    rate: ArrayLike,
    carry_yield: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
) -> OptionGreeks:
    """Black–Scholes value and Greeks per unit of underlying (spot, strike and vol positive, years > 0).

    ``carry_yield`` is the continuous dividend yield of an index, or the foreign currency's rate for
    an FX option (Garman–Kohlhagen); ``rate`` discounts in the option's currency.
    """
    s, k, t, r, q, v = (_f(x) for x in (spot, strike, years, rate, carry_yield, vol))
    call = np.asarray(is_call, dtype=bool)
    sqrt_t = np.sqrt(t)
    sd = v * sqrt_t
    d1 = (np.log(s / k) + (r - q + 0.5 * v * v) * t) / sd
    d2 = d1 - sd
    carry = np.exp(-q * t)
    discount = np.exp(-r * t)
    value_call = s * carry * ndtr(d1) - k * discount * ndtr(d2)
    value_put = k * discount * ndtr(-d2) - s * carry * ndtr(-d1)
    value = np.where(call, value_call, value_put)
    delta = np.where(call, carry * ndtr(d1), carry * (ndtr(d1) - 1.0))
    density = carry * _pdf(d1)
    gamma = density / (s * sd)
    vega = s * density * sqrt_t
    volga = vega * d1 * d2 / v
    return OptionGreeks(value, delta, gamma, vega, volga)


def bachelier(
    forward: ArrayLike, strike: ArrayLike, years: ArrayLike, normal_vol: ArrayLike, is_call: ArrayLike
) -> OptionGreeks:
    """Bachelier (normal-model) undiscounted value and Greeks of an option on a forward rate.

    ``normal_vol`` is the annual standard deviation of the rate in decimals (0.01 = 100 bp a year).
    """
    f, k, t, v = (_f(x) for x in (forward, strike, years, normal_vol))
    call = np.asarray(is_call, dtype=bool)
    sqrt_t = np.sqrt(t)
    sd = v * sqrt_t
    d = (f - k) / sd
    density = _pdf(d)
    value = np.where(call, (f - k) * ndtr(d), (k - f) * ndtr(-d)) + sd * density
    delta = np.where(call, ndtr(d), ndtr(d) - 1.0)
    gamma = density / sd
    vega = sqrt_t * density
    volga = vega * d * d / v
    return OptionGreeks(value, delta, gamma, vega, volga)


def fixed_schedule(years: ArrayLike, payments_per_year: ArrayLike) -> tuple[Array, Array]:
    """Payment times and accrual fractions ``[n, m]`` of fixed legs running back from maturity every
    1/f years while the time is positive; unused slots have time and accrual 0."""
    t = np.atleast_1d(_f(years))
    f = np.broadcast_to(np.atleast_1d(_f(payments_per_year)), t.shape)
    counts = np.ceil(t * f - 1e-9).astype(np.int64)
    m = max(int(counts.max(initial=0)), 1)
    j = np.arange(m)
    times = t[:, None] - j[None, :] / f[:, None]
    used = j[None, :] < counts[:, None]
    return np.where(used, times, 0.0), np.where(used, 1.0 / f[:, None], 0.0)


def annuity(rate: ArrayLike, times: Array, accruals: Array, payments_per_year: ArrayLike) -> tuple[Array, Array, Array]:
    """``A = Σ α_j (1 + S/f)^(−f t_j)`` per row, with its first and second derivatives in ``S``."""
    s = np.atleast_1d(_f(rate))[:, None]
    f = np.broadcast_to(np.atleast_1d(_f(payments_per_year)), s.shape[:1])[:, None]
    u = 1.0 + s / f
    discount = u ** (-f * times)
    a = np.sum(accruals * discount, axis=1)
    da = -np.sum(accruals * times * discount / u, axis=1)
    d2a = np.sum(accruals * times * (times + 1.0 / f) * discount / (u * u), axis=1)
    return a, da, d2a


def swap(
    notional: ArrayLike,
    fixed_rate: ArrayLike,
    par_rate: ArrayLike,
    years: ArrayLike,
    payments_per_year: ArrayLike,
    pay_fixed: ArrayLike,
) -> RateGreeks:
    """Value of interest-rate swaps and its derivatives in the par rate (see the module docstring).

    Positive `delta` for a payer: it gains when rates rise. `delta` is per unit rate (DV01 = delta · 1e-4).
    """
    n, k, s = (np.atleast_1d(_f(x)) for x in (notional, fixed_rate, par_rate))
    sign = np.where(np.atleast_1d(np.asarray(pay_fixed, dtype=bool)), 1.0, -1.0) * n
    times, accruals = fixed_schedule(years, payments_per_year)
    a, da, d2a = annuity(s, times, accruals, payments_per_year)
    return RateGreeks(sign * a * (s - k), sign * (da * (s - k) + a), sign * (d2a * (s - k) + 2.0 * da))


def swap_value(
    notional: float, fixed_rate: float, par_rate: float, years: float, payments_per_year: int, pay_fixed: bool
) -> float:
    """One swap's value by direct summation of its discounted fixed-rate difference (the reference the
    vectorised Greeks are bumped against)."""
    f = payments_per_year
    total = 0.0
    t = years
    while t > 1e-9:
        total += (1.0 / f) * (1.0 + par_rate / f) ** (-f * t)
        t -= 1.0 / f
    sign = 1.0 if pay_fixed else -1.0
    return sign * notional * total * (par_rate - fixed_rate)


def swaption(
    notional: ArrayLike,
    strike: ArrayLike,
    swap_rate: ArrayLike,
    expiry_years: ArrayLike,
    tenor_years: ArrayLike,
    normal_vol: ArrayLike,
    is_call: ArrayLike,
) -> OptionGreeks:
    """Options on a swap rate (a call is a payer swaption): ``Q · A(S) · Bachelier(S, K, σ, T)`` where the
    forward annuity ``A(S) = Σ_{j=1..m} (1 + S)^(−(T + j))`` pays annually over the m-year tenor.

    The swap rate today stands in for the forward swap rate. Derivatives with respect to `swap_rate`
    include the annuity's own dependence on it; `notional` is signed (negative: sold).
    """
    q, s, t = (np.atleast_1d(_f(x)) for x in (notional, swap_rate, expiry_years))
    tenor = np.atleast_1d(_f(tenor_years))
    m = max(int(np.ceil(tenor.max(initial=1.0) - 1e-9)), 1)
    j = np.arange(1, m + 1, dtype=np.float64)
    used = j[None, :] <= tenor[:, None] + 1e-9
    times = np.where(used, t[:, None] + j[None, :], 0.0)
    a, da, d2a = annuity(s, times, used.astype(np.float64), 1.0)
    b = bachelier(s, strike, t, normal_vol, is_call)
    return OptionGreeks(
        value=q * a * b.value,
        delta=q * (da * b.value + a * b.delta),
        gamma=q * (d2a * b.value + 2.0 * da * b.delta + a * b.gamma),
        vega=q * a * b.vega,
        volga=q * a * b.volga,
    )


def cds(
    notional: ArrayLike,
    coupon: ArrayLike,
    spread: ArrayLike,
    years: ArrayLike,
    recovery: ArrayLike,
    rate: ArrayLike,
    buy_protection: ArrayLike,
) -> RateGreeks:
    """CDS index value to the holder and its derivatives in the index spread (credit triangle, see the
    module docstring); positive `delta` for a protection buyer, who gains when spreads widen."""
    n, c, s, r, rec = (np.atleast_1d(_f(x)) for x in (notional, coupon, spread, rate, recovery))
    sign = np.where(np.atleast_1d(np.asarray(buy_protection, dtype=bool)), 1.0, -1.0) * n
    times, accruals = fixed_schedule(years, CDS_PAYMENTS_PER_YEAR)
    lgd = (1.0 - rec)[:, None]
    survival_discount = np.exp(-(r[:, None] + s[:, None] / lgd) * times)
    rpv01 = np.sum(accruals * survival_discount, axis=1)
    d_rpv01 = -np.sum(accruals * times / lgd * survival_discount, axis=1)
    d2_rpv01 = np.sum(accruals * (times / lgd) ** 2 * survival_discount, axis=1)
    return RateGreeks(
        sign * (s - c) * rpv01, sign * (rpv01 + (s - c) * d_rpv01), sign * (2.0 * d_rpv01 + (s - c) * d2_rpv01)
    )


def curve_rate(pillar_years: ArrayLike, pillar_levels: ArrayLike, years: ArrayLike) -> Array:
    """Rates at `years` interpolated linearly between pillars, flat beyond the first and last."""
    return np.interp(_f(years), _f(pillar_years), _f(pillar_levels))


def pillar_split(pillar_years: ArrayLike, years: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64], Array]:
    """For each maturity, the pillars on either side (indices ``lo``, ``hi``) and the weight of ``lo``.

    The weights are those of linear interpolation, so a sensitivity to the interpolated rate splits
    into ``w · s`` on ``lo`` and ``(1 − w) · s`` on ``hi``; on a pillar or beyond the ends all of it goes to
    that pillar (``lo == hi``, ``w = 1``).
    """
    p = _f(pillar_years)
    t = np.clip(np.atleast_1d(_f(years)), p[0], p[-1])
    hi = np.clip(np.searchsorted(p, t, side="left"), 0, len(p) - 1)
    lo = np.maximum(hi - 1, 0)
    width = p[hi] - p[lo]
    w = np.where(width > 0, (p[hi] - t) / np.where(width > 0, width, 1.0), 1.0)
    lo = np.where(w <= 0.0, hi, lo)  # on a pillar: that pillar alone
    hi = np.where(w >= 1.0, lo, hi)
    return lo, hi, np.where(lo == hi, 1.0, w)
