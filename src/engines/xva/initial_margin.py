"""Initial margin projected along the exposure paths: the IM profile behind the MVA.

Two proxies of the margin a netting set will require at each future date on each path:

Regression (the default). IM(t, path) is the 99% quantile of the netting set's value change over the margin
period of risk, conditional on the path's state at t, with the change taken as Gaussian of zero mean (as
SIMM's delta margin is: the drift over ten days is negligible):

    sigma^2(t, x) = E[(V(t + MPOR) - V(t))^2 | state(t) = x]  ~  polynomial in x fitted by least squares
    IM(t, path)   = z_q sqrt(max(fitted, 0)),        z_q = Phi^-1(q), q = 99% by default

The state is the netting set's value itself unless other regressors are given (e.g. the model's factors,
[paths, dates, K]); they are standardised per date and expanded into all monomials up to `degree` (2: the
constant, each factor, their squares and cross products), which recovers exactly a conditional variance
quadratic in the state, e.g. the (a + b V)^2 of a Gaussian value process whose volatility is affine in its
level. The value at t + MPOR comes from a close-out grid when the simulation has one (`closeout_values`);
otherwise from the next grid date, the fitted variance scaled by MPOR / (t_{i+1} - t_i) (square root of
time), the last date reusing the previous date's fit. A date at which every path is in the same state (time
0) fits the constant alone: the unconditional quantile. A fitted variance below zero (a polynomial's tail) is
floored at zero; where the true conditional variance nears zero the square root magnifies the regression
noise, so the proxy is accurate in relative terms only where the margin is material. `im_today` rescales every
path so that the first date matches the IM actually posted today (the usual calibration of a dynamic IM model
to today's SIMM).

Sensitivities (a dynamic-SIMM-like delta proxy). With per-path sensitivities to K risk factors:
IM = sqrt(WS^T rho WS), WS_k = RW_k delta_k: SIMM's aggregation within one bucket, with the risk weights
and correlations given. For a linear portfolio with Gaussian factor moves of covariance Sigma over the MPOR
and RW_k = z_q sigma_k it is the exact conditional quantile z_q sqrt(delta^T Sigma delta).

The IM is the amount the bank posts (two-sided, like SIMM: the same amount either way). The MVA needs its
discounted expectation E[D(t) IM(t)] (`InitialMarginPaths.discounted_expected`, or pass the paths to
`engines.xva.adjustments.exposure_profiles`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import ndtri

from engines.xva.adjustments import check_times

DAYS_PER_YEAR = 365.0
SIMM_MPOR_YEARS = 14 / DAYS_PER_YEAR
"""Ten business days as 14 calendar days over 365 (the CSA's margin period of risk convention)."""
STATE_CONSTANT_TOLERANCE = 1e-12
"""A state whose spread across paths is below this (relative) is taken as the same on every path."""


class InitialMarginOptions(BaseModel):
    """Settings of the regression proxy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mpor_years: float = Field(SIMM_MPOR_YEARS, gt=0, le=1, description="Margin period of risk, years.")
    quantile: float = Field(0.99, gt=0.5, lt=1, description="Confidence level of the margin (SIMM: 99%).")
    degree: int = Field(2, ge=0, le=4, description="Polynomial degree of the conditional variance in the state.")


@dataclass(frozen=True)
class InitialMarginPaths:
    """IM per path and date [N, T] on `times`, and its expectation per date [T] (amounts in the value's currency)."""

    times: np.ndarray
    paths: np.ndarray
    method: Literal["regression", "sensitivities"]
    quantile: float
    mpor_years: float | None = None
    scale: float = 1.0

    @property
    def expected(self) -> np.ndarray:
        """E[IM(t)] per date."""
        return self.paths.mean(axis=0)

    def discounted_expected(self, discount: np.ndarray | None = None) -> np.ndarray:
        """E[D(t) IM(t)] per date; `discount` None, a curve [T] or path discount factors [N, T]."""
        d = 1.0 if discount is None else np.asarray(discount, dtype=np.float64)
        return (d * self.paths).mean(axis=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "quantile": self.quantile,
            "mpor_years": self.mpor_years,
            "scale": self.scale,
            "times": self.times.tolist(),
            "expected": self.expected.tolist(),
        }


def polynomial_features(state: np.ndarray, degree: int) -> np.ndarray:
    """All monomials up to `degree` of the columns of `state` [N, K] (the constant first): [N, P]."""
    n, k = state.shape
    columns = [np.ones(n)]
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(k), d):
            columns.append(np.prod(state[:, list(combo)], axis=1))
    return np.column_stack(columns)


def _standardise(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, scale, kept columns): columns with no spread across paths are dropped."""
    centre = state.mean(axis=0)
    scale = state.std(axis=0)
    kept = scale > STATE_CONSTANT_TOLERANCE * (1.0 + np.abs(centre))
    return centre, np.where(kept, scale, 1.0), kept


def _fit(state: np.ndarray, target: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares coefficients of `target` on the monomials of the standardised state, and the standardisation."""
    centre, scale, kept = _standardise(state)
    x = ((state - centre) / scale)[:, kept]
    features = polynomial_features(x, degree if kept.any() else 0)
    beta, *_ = np.linalg.lstsq(features, target, rcond=None)
    return beta, centre, scale, kept


def _predict(state: np.ndarray, fit: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], degree: int) -> np.ndarray:
    beta, centre, scale, kept = fit
    x = ((state - centre) / scale)[:, kept]
    return polynomial_features(x, degree if kept.any() else 0) @ beta


def regression_initial_margin(
    times: np.ndarray | Sequence[float],
    value_paths: np.ndarray,
    *,
    closeout_values: np.ndarray | None = None,
    state: np.ndarray | None = None,
    options: InitialMarginOptions | None = None,
    im_today: float | None = None,
) -> InitialMarginPaths:
    """IM(t, path) = z_q sqrt(fitted E[dV^2 | state]) over the MPOR (see the module docstring).

    `value_paths` [N, T]: the netting set's (uncollateralised) value; `closeout_values` [N, T]: its value at
    t + MPOR on the same paths, if simulated; `state` [N, T] or [N, T, K]: regressors (default: the value).
    """
    opts = options or InitialMarginOptions()
    t = check_times(times)
    v = np.asarray(value_paths, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != t.size or v.shape[0] < 2:
        raise ValueError(f"value_paths: expected [paths >= 2, {t.size}], got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("value_paths: values must be finite")
    s = v[:, :, None] if state is None else np.asarray(state, dtype=np.float64)
    if s.ndim == 2:
        s = s[:, :, None]
    if s.ndim != 3 or s.shape[:2] != v.shape or not np.all(np.isfinite(s)):
        raise ValueError(
            f"state: expected finite [{v.shape[0]}, {t.size}] or [{v.shape[0]}, {t.size}, K], got {s.shape}"
        )
    if closeout_values is not None:
        c = np.asarray(closeout_values, dtype=np.float64)
        if c.shape != v.shape or not np.all(np.isfinite(c)):
            raise ValueError(f"closeout_values: expected finite values of shape {v.shape}, got {c.shape}")
        change = c - v
        ratio = np.ones(t.size)
    else:
        if t.size < 2:
            raise ValueError("times: without closeout_values the next date gives the change; need two dates or more")
        change = np.diff(v, axis=1)
        ratio = opts.mpor_years / np.diff(t)
    z = float(ndtri(opts.quantile))
    im = np.empty_like(v)
    for i in range(t.size):
        j = min(i, change.shape[1] - 1)
        fit = _fit(s[:, j, :], change[:, j] ** 2, opts.degree)
        variance = np.maximum(_predict(s[:, i, :], fit, opts.degree), 0.0) * ratio[j]
        im[:, i] = z * np.sqrt(variance)
    scale = 1.0
    if im_today is not None:
        if not math.isfinite(im_today) or im_today < 0:
            raise ValueError(f"im_today: {im_today} is not a non-negative amount")
        first = float(im[:, 0].mean())
        if first <= 0:
            raise ValueError("im_today: the proxy's IM at the first date is zero; nothing to rescale")
        scale = im_today / first
        im *= scale
    return InitialMarginPaths(t, im, "regression", opts.quantile, opts.mpor_years, scale)


def sensitivity_initial_margin(
    times: np.ndarray | Sequence[float],
    deltas: np.ndarray,
    risk_weights: np.ndarray | Sequence[float],
    correlation: np.ndarray | Sequence[Sequence[float]] | None = None,
    *,
    quantile: float = 0.99,
) -> InitialMarginPaths:
    """IM = sqrt(WS^T rho WS), WS = risk_weights x deltas, per path and date (`deltas` [N, T, K] or [N, T]).

    `risk_weights` [K] are amounts of IM per unit of sensitivity (e.g. z_q x the factor's MPOR volatility);
    `correlation` [K, K] (default: identity). `quantile` only labels the result.
    """
    t = check_times(times)
    d = np.asarray(deltas, dtype=np.float64)
    if d.ndim == 2:
        d = d[:, :, None]
    if d.ndim != 3 or d.shape[1] != t.size or not np.all(np.isfinite(d)):
        raise ValueError(f"deltas: expected finite [paths, {t.size}, K], got {np.shape(deltas)}")
    k = d.shape[2]
    rw = np.asarray(risk_weights, dtype=np.float64).reshape(-1)
    if rw.size != k or not np.all(np.isfinite(rw)) or np.any(rw < 0):
        raise ValueError(f"risk_weights: {k} non-negative weights (one per risk factor), got {rw.size}")
    rho = np.eye(k) if correlation is None else np.asarray(correlation, dtype=np.float64)
    if rho.shape != (k, k) or not np.allclose(rho, rho.T) or not np.allclose(np.diag(rho), 1.0):
        raise ValueError(f"correlation: a symmetric [{k}, {k}] matrix with a unit diagonal")
    if np.abs(rho).max() > 1 or np.linalg.eigvalsh(rho).min() < -1e-10:
        raise ValueError("correlation: entries in [-1, 1], positive semi-definite")
    ws = d * rw
    im = np.sqrt(np.maximum(np.einsum("ntk,kl,ntl->nt", ws, rho, ws), 0.0))
    return InitialMarginPaths(t, im, "sensitivities", quantile)
