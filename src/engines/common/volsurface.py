"""Arbitrage-free implied-volatility surfaces (SSVI, raw SVI) and their Dupire local volatility.

Equity local-volatility Monte Carlo needs a local volatility σ_loc(k, t) on a grid, and Dupire's
formula only gives a real, positive local variance when the implied surface it differentiates is
free of static arbitrage. This module therefore (1) refuses arbitrageable quotes up front,
(2) fits a parametric surface whose parameters are constrained to the sufficient no-arbitrage
region, so that the fitted surface is arbitrage-free by construction, and (3) differentiates it
analytically.

Conventions (relied on by callers):

* k = ln(K / F(T)) is forward log-moneyness; times are in years.
* w(k, T) = σ_imp(k, T)² T is total implied variance.

SSVI (power-law φ). With θ the at-the-money total variance of an expiry,

    w(k, θ) = θ/2 (1 + ρ φ k + sqrt((φ k + ρ)² + 1 - ρ²)),   φ(θ) = η / (θ^γ (1 + θ)^(1-γ))

The surface is free of calendar and butterfly arbitrage when θ is non-decreasing in T, |ρ| < 1,
η > 0, 0 < γ ≤ 1/2 and η (1 + |ρ|) ≤ 2 (the sufficient conditions for the power-law SSVI).
Between expiries θ(t) is piecewise linear in t from θ(0) = 0, and beyond the last expiry it grows
with the last segment's slope (flat forward variance), so ∂w/∂t = ∂w/∂θ · θ'(t) ≥ 0 everywhere.
η = 0 is accepted as the degenerate flat-in-k surface w = θ (trivially arbitrage-free).

Raw SVI per expiry: w(k) = a + b (ρ (k - m) + sqrt((k - m)² + σ²)); a slice is free of butterfly
arbitrage iff the density function

    g(k) = (1 - k w'/(2w))² - w'²/4 (1/w + 1/4) + w''/2

is non-negative (it is the risk-neutral density up to a positive factor).

Dupire local variance in log-moneyness and total variance (the denominator is the same g(k)):

    σ_loc²(k, T) = ∂w/∂T / (1 - k/w ∂w/∂k + 1/4 (-1/4 - 1/w + k²/w²) (∂w/∂k)² + 1/2 ∂²w/∂k²)

Every bad input raises `InvalidInputs` naming the field, e.g. ``quotes.vols[2][3]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares
from scipy.special import ndtr

from engines.registry import InvalidInputs

FloatArray = NDArray[np.float64]

CALENDAR_TOLERANCE = 1e-10
"""Total variance at the same k may decrease from one expiry to the next by at most this much."""
BUTTERFLY_TOLERANCE = 1e-10
"""Slack on the monotonicity and convexity of undiscounted call prices C(K)/F across strikes."""
PARAMETER_TOLERANCE = 1e-12
"""Slack on η (1 + |ρ|) ≤ 2, so that a calibration ending on the bound passes its own check."""
LOCAL_VARIANCE_FLOOR = 1e-8
LOCAL_VARIANCE_CAP = 25.0
"""Local variance bounds applied only where Dupire's denominator is not positive (numerical noise)."""
SVI_CHECK_GRID = np.linspace(-3.0, 3.0, 6001)
"""Dense log-moneyness grid on which a calibrated SVI slice's density g(k) must be non-negative."""


# ---------------------------------------------------------------------------------------------
# validation helpers


def _float_array(value: object, name: str) -> FloatArray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputs(name, f"must be an array of numbers, got {value!r}") from None
    return arr


def _index(name: str, idx: tuple[int, ...]) -> str:
    return name + "".join(f"[{int(i)}]" for i in idx)


def _first_bad(mask: NDArray[np.bool_]) -> tuple[int, ...] | None:
    """Index of the first True of `mask` (the empty tuple for a true scalar), or None."""
    bad = np.argwhere(np.atleast_1d(mask))
    if not bad.size:
        return None
    return tuple(int(i) for i in bad[0]) if np.ndim(mask) else ()


def _require_finite(arr: FloatArray, name: str) -> None:
    idx = _first_bad(~np.isfinite(arr))
    if idx is not None:
        raise InvalidInputs(_index(name, idx), f"must be finite, got {float(arr[idx])!r}")


def _require_positive(arr: FloatArray, name: str) -> None:
    _require_finite(arr, name)
    idx = _first_bad(arr <= 0)
    if idx is not None:
        raise InvalidInputs(_index(name, idx), f"must be positive, got {float(arr[idx])!r}")


def _require_increasing(arr: FloatArray, name: str) -> None:
    """Strictly increasing along the last axis; names the first element that is not."""
    steps = np.diff(arr, axis=-1)
    bad = np.argwhere(steps <= 0)
    if bad.size:
        idx = tuple(bad[0])
        at = (*idx[:-1], idx[-1] + 1)
        raise InvalidInputs(
            _index(name, at), f"must be strictly increasing, got {float(arr[at])!r} after {float(arr[idx])!r}"
        )


def _scalar(value: object, name: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputs(name, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidInputs(name, f"must be finite, got {number!r}")
    return number


def _frozen(arr: FloatArray) -> FloatArray:
    arr = np.array(arr, dtype=np.float64)
    arr.setflags(write=False)
    return arr


def _undiscounted_call(k: FloatArray, w: FloatArray) -> FloatArray:
    """Black call price divided by the forward, C(K)/F, at log-moneyness k and total variance w > 0."""
    s = np.sqrt(w)
    d1 = -k / s + s / 2
    return ndtr(d1) - np.exp(k) * ndtr(d1 - s)


# ---------------------------------------------------------------------------------------------
# quotes


@dataclass(frozen=True, eq=False)
class VolQuotes:
    """Implied-vol quotes: ``vols[i, j]`` at expiry ``expiries[i]`` and log-moneyness ``k[i, j]``.

    ``log_moneyness`` is shape (n,) when every expiry shares one k grid, or (m, n) when each
    expiry has its own (quotes by absolute strike, see `from_strikes`). Construction checks
    shapes, finiteness, positivity and ordering; `check_quotes` also checks for arbitrage.
    Arrays are stored as read-only float64 copies.
    """

    expiries: FloatArray
    log_moneyness: FloatArray
    vols: FloatArray

    def __post_init__(self) -> None:
        expiries = _float_array(self.expiries, "quotes.expiries")
        k = _float_array(self.log_moneyness, "quotes.log_moneyness")
        vols = _float_array(self.vols, "quotes.vols")
        if expiries.ndim != 1 or expiries.size == 0:
            raise InvalidInputs("quotes.expiries", f"must be a non-empty 1-D array, got shape {expiries.shape}")
        _require_positive(expiries, "quotes.expiries")
        _require_increasing(expiries, "quotes.expiries")
        m = expiries.size
        if k.ndim not in (1, 2) or k.shape[-1] == 0 or (k.ndim == 2 and k.shape[0] != m):
            raise InvalidInputs(
                "quotes.log_moneyness", f"must have shape (n,) or ({m}, n) with n > 0, got shape {k.shape}"
            )
        n = k.shape[-1]
        if vols.shape != (m, n):
            raise InvalidInputs("quotes.vols", f"must have shape ({m}, {n}) (expiries × strikes), got {vols.shape}")
        _require_finite(k, "quotes.log_moneyness")
        _require_increasing(k, "quotes.log_moneyness")
        _require_positive(vols, "quotes.vols")
        object.__setattr__(self, "expiries", _frozen(expiries))
        object.__setattr__(self, "log_moneyness", _frozen(k))
        object.__setattr__(self, "vols", _frozen(vols))

    @classmethod
    def from_strikes(cls, expiries: ArrayLike, strikes: ArrayLike, vols: ArrayLike, forwards: ArrayLike) -> VolQuotes:
        """Quotes by absolute strike: k[i, j] = ln(strikes[i, j] / forwards[i]).

        ``strikes`` is (n,) (the same strikes at every expiry) or (m, n); ``forwards`` is (m,).
        """
        t = _float_array(expiries, "quotes.expiries")
        strike = _float_array(strikes, "quotes.strikes")
        forward = _float_array(forwards, "quotes.forwards")
        if t.ndim != 1:
            raise InvalidInputs("quotes.expiries", f"must be a 1-D array, got shape {t.shape}")
        if forward.shape != t.shape:
            raise InvalidInputs("quotes.forwards", f"must have shape {t.shape} (one per expiry), got {forward.shape}")
        if strike.ndim not in (1, 2) or (strike.ndim == 2 and strike.shape[0] != t.size):
            raise InvalidInputs("quotes.strikes", f"must have shape (n,) or ({t.size}, n), got {strike.shape}")
        _require_positive(forward, "quotes.forwards")
        _require_positive(strike, "quotes.strikes")
        strike = np.broadcast_to(strike, (t.size, strike.shape[-1]))
        return cls(expiries=t, log_moneyness=np.log(strike / forward[:, None]), vols=_float_array(vols, "quotes.vols"))

    def k_grid(self) -> FloatArray:
        """Log-moneyness as an (m, n) array (broadcast when the quotes share one grid)."""
        return np.broadcast_to(self.log_moneyness, self.vols.shape)

    def total_variance(self) -> FloatArray:
        """Quoted total implied variance σ² T, shape (m, n)."""
        return self.vols**2 * self.expiries[:, None]


def check_quotes(quotes: VolQuotes) -> None:
    """Refuse a quote grid with static arbitrage, naming the offending quote.

    Calendar: total variance at the same k must not decrease from one expiry to the next (by more
    than `CALENDAR_TOLERANCE`); when grids differ each expiry is interpolated linearly in k onto
    the other's points inside the overlap. Butterfly: per expiry, Black undiscounted call prices
    C(K)/F must be non-increasing and convex in strike, with call-spread slopes no steeper than -1.
    Shapes, finiteness, positivity and ordering were checked when the quotes were built.
    """
    if not isinstance(quotes, VolQuotes):
        raise InvalidInputs("quotes", f"must be VolQuotes, got {type(quotes).__name__}")
    VolQuotes.__post_init__(quotes)  # re-validate: arrays are read-only but could be swapped in
    k = quotes.k_grid()
    w = quotes.total_variance()
    t = quotes.expiries
    for i in range(t.size - 1):
        _check_calendar_pair(k, w, t, i)
    for i in range(t.size):
        _check_butterfly(k[i], w[i], t[i], i)


def _check_calendar_pair(k: FloatArray, w: FloatArray, t: FloatArray, i: int) -> None:
    early_k, early_w, late_k, late_w = k[i], w[i], k[i + 1], w[i + 1]
    inside = (late_k >= early_k[0]) & (late_k <= early_k[-1])
    shortfall = np.where(inside, np.interp(late_k, early_k, early_w) - late_w, -np.inf)
    j = int(np.argmax(shortfall))
    if shortfall[j] > CALENDAR_TOLERANCE:
        raise InvalidInputs(
            f"quotes.vols[{i + 1}][{j}]",
            f"calendar arbitrage: total variance {late_w[j]:.6g} at T={t[i + 1]:.6g}, k={late_k[j]:.6g} is below "
            f"{late_w[j] + shortfall[j]:.6g} of the earlier expiry T={t[i]:.6g} at the same k",
        )
    inside = (early_k >= late_k[0]) & (early_k <= late_k[-1])
    excess = np.where(inside, early_w - np.interp(early_k, late_k, late_w), -np.inf)
    j = int(np.argmax(excess))
    if excess[j] > CALENDAR_TOLERANCE:
        raise InvalidInputs(
            f"quotes.vols[{i}][{j}]",
            f"calendar arbitrage: total variance {early_w[j]:.6g} at T={t[i]:.6g}, k={early_k[j]:.6g} is above "
            f"{early_w[j] - excess[j]:.6g} of the later expiry T={t[i + 1]:.6g} interpolated at the same k",
        )


def _check_butterfly(k: FloatArray, w: FloatArray, t: float, i: int) -> None:
    x = np.exp(k)  # strike / forward
    c = _undiscounted_call(k, w)
    slope = np.diff(c) / np.diff(x)
    where = f"at T={t:.6g}"
    for j in range(1, slope.size):
        if slope[j] - slope[j - 1] < -BUTTERFLY_TOLERANCE:
            raise InvalidInputs(
                f"quotes.vols[{i}][{j}]",
                f"butterfly arbitrage {where}, k={k[j]:.6g}: Black call prices C(K)/F are not convex in strike "
                f"(slope {slope[j - 1]:.6g} before this quote, {slope[j]:.6g} after)",
            )
    for j in range(slope.size):
        if slope[j] > BUTTERFLY_TOLERANCE:
            raise InvalidInputs(
                f"quotes.vols[{i}][{j + 1}]",
                f"butterfly arbitrage {where}, k={k[j + 1]:.6g}: Black call price C(K)/F={c[j + 1]:.6g} is above "
                f"{c[j]:.6g} at the lower strike (call prices must decrease in strike)",
            )
        if slope[j] < -1 - BUTTERFLY_TOLERANCE:
            raise InvalidInputs(
                f"quotes.vols[{i}][{j}]",
                f"call-spread arbitrage {where}, k={k[j]:.6g}: Black call prices fall faster than the strike "
                f"(slope {slope[j]:.6g} < -1)",
            )


# ---------------------------------------------------------------------------------------------
# SSVI


@dataclass(frozen=True)
class _SSVIPoint:
    """SSVI total variance and its partial derivatives at broadcast (k, t)."""

    w: FloatArray
    dw_dk: FloatArray
    d2w_dk2: FloatArray
    dw_dtheta: FloatArray
    dtheta_dt: FloatArray


@dataclass(frozen=True, eq=False)
class SSVISurface:
    """Power-law SSVI surface: ATM total variances ``theta`` at ``expiries`` and global ρ, η, γ.

    Construction checks shapes and finiteness; `check_arbitrage` checks the no-arbitrage region.
    """

    expiries: FloatArray
    theta: FloatArray
    rho: float
    eta: float
    gamma: float
    _knots: FloatArray = field(init=False, repr=False, compare=False)
    _slopes: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expiries = _float_array(self.expiries, "surface.expiries")
        theta = _float_array(self.theta, "surface.theta")
        if expiries.ndim != 1 or expiries.size == 0:
            raise InvalidInputs("surface.expiries", f"must be a non-empty 1-D array, got shape {expiries.shape}")
        if theta.shape != expiries.shape:
            raise InvalidInputs("surface.theta", f"must have shape {expiries.shape} like expiries, got {theta.shape}")
        _require_positive(expiries, "surface.expiries")
        _require_increasing(expiries, "surface.expiries")
        _require_positive(theta, "surface.theta")
        for name in ("rho", "eta", "gamma"):
            object.__setattr__(self, name, _scalar(getattr(self, name), f"surface.{name}"))
        object.__setattr__(self, "expiries", _frozen(expiries))
        object.__setattr__(self, "theta", _frozen(theta))
        knots_t = np.concatenate(([0.0], expiries))
        knots_theta = np.concatenate(([0.0], theta))
        object.__setattr__(self, "_knots", _frozen(knots_t))
        object.__setattr__(self, "_slopes", _frozen(np.diff(knots_theta) / np.diff(knots_t)))

    def check_arbitrage(self) -> None:
        """Raise `InvalidInputs` unless the parameters satisfy the sufficient no-arbitrage conditions.

        θ non-decreasing, |ρ| < 1, η ≥ 0 (η = 0 is the flat-in-k surface), 0 < γ ≤ 1/2 and
        η (1 + |ρ|) ≤ 2: then w is free of butterfly arbitrage on every slice and ∂w/∂θ ≥ 0.
        """
        drops = np.flatnonzero(np.diff(self.theta) < 0)
        if drops.size:
            i = int(drops[0]) + 1
            raise InvalidInputs(
                f"surface.theta[{i}]",
                f"calendar arbitrage: ATM total variance {self.theta[i]:.6g} is below {self.theta[i - 1]:.6g} "
                "of the earlier expiry (theta must be non-decreasing)",
            )
        if not abs(self.rho) < 1:
            raise InvalidInputs("surface.rho", f"must satisfy |rho| < 1, got {self.rho!r}")
        if self.eta < 0:
            raise InvalidInputs("surface.eta", f"must be non-negative, got {self.eta!r}")
        if not 0 < self.gamma <= 0.5:
            raise InvalidInputs("surface.gamma", f"must lie in (0, 0.5], got {self.gamma!r}")
        if self.eta * (1 + abs(self.rho)) > 2 + PARAMETER_TOLERANCE:
            raise InvalidInputs(
                "surface.eta",
                f"butterfly arbitrage: eta * (1 + |rho|) = {self.eta * (1 + abs(self.rho)):.6g} exceeds 2",
            )

    def atm_total_variance(self, t: ArrayLike) -> FloatArray:
        """θ(t): piecewise linear from θ(0) = 0 through the expiries, last slope beyond the last expiry."""
        tt = _times(t, "t", allow_zero=True)
        return self._theta(tt)

    def total_variance(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """w(k, t) at broadcast k and t ≥ 0 (w = 0 at t = 0)."""
        kk, tt = _broadcast_kt(k, t, allow_zero=True)
        theta = self._theta(tt)
        psi = self._psi(theta)
        return 0.5 * (theta + self.rho * psi * kk + _hypot_term(kk, theta, psi, self.rho))

    def implied_vol(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """Black implied volatility sqrt(w(k, t) / t) at broadcast k and t > 0."""
        kk, tt = _broadcast_kt(k, t, allow_zero=False)
        return np.sqrt(self.total_variance(kk, tt) / tt)

    def derivatives(self, k: ArrayLike, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """(w, ∂w/∂k, ∂²w/∂k², ∂w/∂t) at broadcast k and t > 0; analytic in k, ∂w/∂t = ∂w/∂θ · θ'(t).

        θ'(t) at an expiry is the slope of the segment that starts there (the forward variance
        of the step that follows it).
        """
        kk, tt = _broadcast_kt(k, t, allow_zero=False)
        point = self._point(kk, tt)
        return point.w, point.dw_dk, point.d2w_dk2, point.dw_dtheta * point.dtheta_dt

    # internals -----------------------------------------------------------------------------

    def _theta(self, t: FloatArray) -> FloatArray:
        last_t, last_theta = self._knots[-1], self.theta[-1]
        inside = np.interp(t, self._knots, np.concatenate(([0.0], self.theta)))
        return np.where(t > last_t, last_theta + self._slopes[-1] * (t - last_t), inside)

    def _dtheta_dt(self, t: FloatArray) -> FloatArray:
        segment = np.clip(np.searchsorted(self._knots, t, side="right") - 1, 0, self._slopes.size - 1)
        return self._slopes[segment]

    def _psi(self, theta: FloatArray) -> FloatArray:
        """θ φ(θ) = η θ^(1-γ) / (1 + θ)^(1-γ), finite (and 0) at θ = 0."""
        return self.eta * (theta / (1 + theta)) ** (1 - self.gamma)

    def _point(self, k: FloatArray, t: FloatArray) -> _SSVIPoint:
        rho, gamma = self.rho, self.gamma
        theta = self._theta(t)
        psi = self._psi(theta)
        root = _hypot_term(k, theta, psi, rho)  # θ sqrt((φk + ρ)² + 1 - ρ²)
        w = 0.5 * (theta + rho * psi * k + root)
        dw_dk = 0.5 * psi * (rho + (psi * k + rho * theta) / root)
        d2w_dk2 = 0.5 * psi**2 * theta**2 * (1 - rho**2) / root**3
        dlogphi_dtheta = -gamma / theta + (gamma - 1) / (1 + theta)
        dw_dtheta = w / theta + k * dlogphi_dtheta * dw_dk
        return _SSVIPoint(w, dw_dk, d2w_dk2, dw_dtheta, self._dtheta_dt(t))


def _hypot_term(k: FloatArray, theta: FloatArray, psi: FloatArray, rho: float) -> FloatArray:
    return np.sqrt((psi * k + rho * theta) ** 2 + theta**2 * (1 - rho**2))


def _times(t: ArrayLike, name: str, *, allow_zero: bool) -> FloatArray:
    tt = _float_array(t, name)
    _require_finite(tt, name)
    idx = _first_bad(tt < 0 if allow_zero else tt <= 0)
    if idx is not None:
        kind = "non-negative" if allow_zero else "positive"
        raise InvalidInputs(_index(name, idx), f"must be {kind}, got {float(tt[idx])!r}")
    return tt


def _broadcast_kt(k: ArrayLike, t: ArrayLike, *, allow_zero: bool) -> tuple[FloatArray, FloatArray]:
    kk = _float_array(k, "k")
    _require_finite(kk, "k")
    tt = _times(t, "t", allow_zero=allow_zero)
    try:
        kk, tt = np.broadcast_arrays(kk, tt)
    except ValueError:
        raise InvalidInputs("k", f"shape {kk.shape} does not broadcast with t of shape {tt.shape}") from None
    return kk, tt


def flat_surface(vol: float, expiries: ArrayLike) -> SSVISurface:
    """A flat surface σ_imp = vol everywhere: θ_i = vol² T_i, ρ = 0, η = 0 (local vol = vol too)."""
    sigma = _scalar(vol, "vol")
    if sigma <= 0:
        raise InvalidInputs("vol", f"must be positive, got {sigma!r}")
    t = _float_array(expiries, "expiries")
    if t.ndim != 1 or t.size == 0:
        raise InvalidInputs("expiries", f"must be a non-empty 1-D array, got shape {t.shape}")
    _require_positive(t, "expiries")
    _require_increasing(t, "expiries")
    return SSVISurface(expiries=t, theta=sigma**2 * t, rho=0.0, eta=0.0, gamma=0.5)


# ---------------------------------------------------------------------------------------------
# SSVI calibration

_RHO_BOUND = 0.999
_GAMMA_FLOOR = 1e-4
_ETA_FRACTION_FLOOR = 1e-6
_THETA_STEP_FLOOR = 1e-10


def _ssvi_from_params(expiries: FloatArray, x: FloatArray) -> SSVISurface:
    """Unpack (θ increments..., ρ, u, γ) with η = 2u / (1 + |ρ|), u ∈ (0, 1]: the bounds are the constraints."""
    steps, rho, u, gamma = x[:-3], x[-3], x[-2], x[-1]
    eta = 2 * u / (1 + abs(rho))
    return SSVISurface(expiries=expiries, theta=np.cumsum(steps), rho=float(rho), eta=float(eta), gamma=float(gamma))


def calibrate_ssvi(quotes: VolQuotes, max_rms_error: float = 0.01) -> SSVISurface:
    """Least-squares fit (on implied vols) of an arbitrage-free power-law SSVI surface to the quotes.

    Runs `check_quotes` first. θ is parametrised by cumulative positive increments (non-decreasing
    by construction) and η = 2u / (1 + |ρ|) with u ∈ (0, 1], |ρ| ≤ 0.999, γ ∈ (0, 0.5], so every
    candidate satisfies the no-arbitrage conditions. Raises `InvalidInputs("quotes", ...)` naming
    the worst quote when the RMS implied-vol error exceeds ``max_rms_error`` (0.01 = one vol point).
    """
    check_quotes(quotes)
    limit = _scalar(max_rms_error, "max_rms_error")
    if limit <= 0:
        raise InvalidInputs("max_rms_error", f"must be positive, got {limit!r}")
    t = quotes.expiries
    k = quotes.k_grid()
    vols = quotes.vols
    w = quotes.total_variance()

    atm = np.array([np.interp(0.0, k[i], w[i]) for i in range(t.size)])
    atm = np.maximum.accumulate(np.maximum(atm, _THETA_STEP_FLOOR))
    steps0 = np.maximum(np.diff(atm, prepend=0.0), _THETA_STEP_FLOOR)
    m = t.size
    lower = np.concatenate((np.full(m, _THETA_STEP_FLOOR), [-_RHO_BOUND, _ETA_FRACTION_FLOOR, _GAMMA_FLOOR]))
    upper = np.concatenate((np.full(m, np.inf), [_RHO_BOUND, 1.0, 0.5]))

    def residuals(x: FloatArray) -> FloatArray:
        steps, rho, u, gamma = x[:-3], x[-3], x[-2], x[-1]
        theta = np.cumsum(steps)[:, None]
        psi = 2 * u / (1 + abs(rho)) * (theta / (1 + theta)) ** (1 - gamma)
        model_w = 0.5 * (theta + rho * psi * k + _hypot_term(k, theta, psi, rho))
        return (np.sqrt(model_w / t[:, None]) - vols).ravel()

    best = None
    for rho0 in (-0.5, 0.0, 0.5):
        x0 = np.concatenate((steps0, [rho0, 0.5, 0.25]))
        fit = least_squares(residuals, x0, bounds=(lower, upper), x_scale="jac", xtol=1e-14, ftol=1e-14, gtol=1e-14)
        if best is None or fit.cost < best.cost:
            best = fit
    assert best is not None
    surface = _ssvi_from_params(t, best.x)
    surface.check_arbitrage()

    errors = (surface.implied_vol(k, t[:, None]) - vols).reshape(vols.shape)
    rms = float(np.sqrt(np.mean(errors**2)))
    if rms > limit:
        i, j = np.unravel_index(int(np.argmax(np.abs(errors))), errors.shape)
        raise InvalidInputs(
            "quotes",
            f"cannot be fitted by an arbitrage-free SSVI surface: RMS implied-vol error {rms:.4g} exceeds "
            f"{limit:.4g}; worst quote quotes.vols[{i}][{j}] (T={t[i]:.6g}, k={k[i, j]:.6g}): "
            f"quoted {vols[i, j]:.6g}, fitted {vols[i, j] + errors[i, j]:.6g}",
        )
    return surface


# ---------------------------------------------------------------------------------------------
# raw SVI slices


@dataclass(frozen=True)
class SVISlice:
    """Raw SVI slice w(k) = a + b (ρ (k - m) + sqrt((k - m)² + σ²)) of one expiry.

    Construction requires b ≥ 0, |ρ| < 1, σ > 0 and a + b σ sqrt(1 - ρ²) ≥ 0 (w ≥ 0 everywhere);
    freedom from butterfly arbitrage is a separate check (`check_svi_butterfly`).
    """

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def __post_init__(self) -> None:
        for name in ("a", "b", "rho", "m", "sigma"):
            object.__setattr__(self, name, _scalar(getattr(self, name), f"slice.{name}"))
        if self.b < 0:
            raise InvalidInputs("slice.b", f"must be non-negative, got {self.b!r}")
        if not abs(self.rho) < 1:
            raise InvalidInputs("slice.rho", f"must satisfy |rho| < 1, got {self.rho!r}")
        if self.sigma <= 0:
            raise InvalidInputs("slice.sigma", f"must be positive, got {self.sigma!r}")
        if self.min_total_variance() < 0:
            raise InvalidInputs(
                "slice.a", f"a + b*sigma*sqrt(1-rho^2) = {self.min_total_variance():.6g} is negative (w < 0 somewhere)"
            )

    def min_total_variance(self) -> float:
        return self.a + self.b * self.sigma * math.sqrt(1 - self.rho**2)

    def total_variance(self, k: ArrayLike) -> FloatArray:
        kk = _float_array(k, "k")
        _require_finite(kk, "k")
        x = kk - self.m
        return self.a + self.b * (self.rho * x + np.sqrt(x**2 + self.sigma**2))


def svi_butterfly_density(svi: SVISlice, k: ArrayLike) -> FloatArray:
    """g(k) = (1 - k w'/(2w))² - w'²/4 (1/w + 1/4) + w''/2; butterfly-arbitrage-free iff g ≥ 0.

    Where w = 0 (possible only on the boundary a + b σ sqrt(1 - ρ²) = 0) g is reported as -inf.
    """
    kk = _float_array(k, "k")
    _require_finite(kk, "k")
    x = kk - svi.m
    root = np.sqrt(x**2 + svi.sigma**2)
    w = svi.a + svi.b * (svi.rho * x + root)
    w1 = svi.b * (svi.rho + x / root)
    w2 = svi.b * svi.sigma**2 / root**3
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1 - kk * w1 / (2 * w)) ** 2 - w1**2 / 4 * (1 / w + 0.25) + w2 / 2
    return np.where(w > 0, g, -np.inf)


def check_svi_butterfly(svi: SVISlice, field_name: str = "slice") -> None:
    """Raise `InvalidInputs(field_name, "butterfly arbitrage ...")` if g(k) < 0 anywhere on k ∈ [-3, 3]."""
    g = svi_butterfly_density(svi, SVI_CHECK_GRID)
    j = int(np.argmin(g))
    if g[j] < -BUTTERFLY_TOLERANCE:
        raise InvalidInputs(
            field_name,
            f"butterfly arbitrage: SVI slice {svi} has negative density g(k) = {g[j]:.6g} "
            f"at k = {SVI_CHECK_GRID[j]:.4g}",
        )


def calibrate_svi_slice(k: ArrayLike, total_variance: ArrayLike) -> SVISlice:
    """Least-squares raw SVI fit to total variances of one expiry, refused if it has butterfly arbitrage.

    Constraints by bounds: a = c - b σ sqrt(1 - ρ²) with c ≥ 0, b ≥ 0, |ρ| ≤ 0.999, σ > 0. A few
    starting points are tried and the best fit kept; the result must pass `check_svi_butterfly`.
    """
    kk = _float_array(k, "k")
    w = _float_array(total_variance, "total_variance")
    if kk.ndim != 1 or kk.size < 5:
        raise InvalidInputs("k", f"must be a 1-D array of at least 5 points (SVI has 5 parameters), got {kk.shape}")
    if w.shape != kk.shape:
        raise InvalidInputs("total_variance", f"must have shape {kk.shape} like k, got {w.shape}")
    _require_finite(kk, "k")
    _require_increasing(kk, "k")
    _require_positive(w, "total_variance")

    def unpack(x: FloatArray) -> SVISlice:
        c, b, rho, m, sigma = (float(v) for v in x)
        return SVISlice(a=c - b * sigma * math.sqrt(1 - rho**2), b=b, rho=rho, m=m, sigma=sigma)

    scale = float(np.mean(w))

    def residuals(x: FloatArray) -> FloatArray:
        c, b, rho, m, sigma = x
        d = kk - m
        a = c - b * sigma * np.sqrt(1 - rho**2)
        return (a + b * (rho * d + np.sqrt(d**2 + sigma**2)) - w) / scale

    left = (w[1] - w[0]) / (kk[1] - kk[0])
    right = (w[-1] - w[-2]) / (kk[-1] - kk[-2])
    b0 = max((right - left) / 2, 1e-3)
    rho0 = float(np.clip((right + left) / (2 * b0), -0.9, 0.9))
    span = kk[-1] - kk[0]
    lower = [0.0, 0.0, -_RHO_BOUND, kk[0] - span, 1e-6]
    upper = [np.inf, np.inf, _RHO_BOUND, kk[-1] + span, 10 * span]
    best = None
    for m0 in (float(kk[np.argmin(w)]), 0.0):
        for sigma0 in (0.05 * span, 0.2 * span, 0.5 * span):
            x0 = [max(float(np.min(w)) * 0.5, 1e-8), b0, rho0, float(np.clip(m0, lower[3], upper[3])), sigma0]
            fit = least_squares(residuals, x0, bounds=(lower, upper), x_scale="jac", xtol=1e-15, ftol=1e-15, gtol=1e-15)
            if best is None or fit.cost < best.cost:
                best = fit
    assert best is not None
    svi = unpack(best.x)
    check_svi_butterfly(svi, "total_variance")
    return svi


# ---------------------------------------------------------------------------------------------
# Dupire local volatility


def _local_variance(surface: SSVISurface, k: FloatArray, t: FloatArray) -> FloatArray:
    """Dupire local variance; where the denominator is not positive (round-off far in the wings of an
    arbitrage-free surface, whose denominator is g(k) ≥ 0 in exact arithmetic) it is clipped into
    [LOCAL_VARIANCE_FLOOR, LOCAL_VARIANCE_CAP] — the cap, as the limit of a vanishing positive
    denominator, unless ∂w/∂t is 0 there."""
    w, w1, w2, wt = surface.derivatives(k, t)
    denominator = 1 - k / w * w1 + 0.25 * (-0.25 - 1 / w + k**2 / w**2) * w1**2 + 0.5 * w2
    positive = denominator > 0
    raw = wt / np.where(positive, denominator, np.finfo(np.float64).tiny)
    return np.where(positive, raw, np.clip(raw, LOCAL_VARIANCE_FLOOR, LOCAL_VARIANCE_CAP))


def local_vol(surface: SSVISurface, k: ArrayLike, t: ArrayLike) -> FloatArray:
    """Dupire local volatility σ_loc(k, t) at broadcast forward log-moneyness k and t > 0.

    The surface must pass `SSVISurface.check_arbitrage` (an arbitrageable surface has no local vol).
    """
    surface.check_arbitrage()
    kk, tt = _broadcast_kt(k, t, allow_zero=False)
    return np.sqrt(_local_variance(surface, kk, tt))


def local_vol_grid(surface: SSVISurface, times: ArrayLike, log_moneyness: ArrayLike) -> FloatArray:
    """σ_loc on the grid times × log_moneyness, float64 of shape (len(times), len(log_moneyness)).

    ``times`` is strictly increasing and ≥ 0; at t = 0 (where w = 0 and the formula is 0/0) the
    limit is taken as the value at t = min(1e-4, times[1] / 10).
    """
    surface.check_arbitrage()
    tt = _times(times, "times", allow_zero=True)
    kk = _float_array(log_moneyness, "log_moneyness")
    if tt.ndim != 1 or tt.size == 0:
        raise InvalidInputs("times", f"must be a non-empty 1-D array, got shape {tt.shape}")
    if kk.ndim != 1 or kk.size == 0:
        raise InvalidInputs("log_moneyness", f"must be a non-empty 1-D array, got shape {kk.shape}")
    _require_increasing(tt, "times")
    _require_finite(kk, "log_moneyness")
    if tt[0] == 0:
        tt = tt.copy()
        tt[0] = min(1e-4, tt[1] / 10) if tt.size > 1 else 1e-4
    grid = np.sqrt(_local_variance(surface, kk[None, :], tt[:, None]))
    return np.ascontiguousarray(grid, dtype=np.float64)
