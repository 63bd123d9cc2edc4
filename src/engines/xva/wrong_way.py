"""CVA with wrong-way risk: the counterparty's default probability moves with the exposure, path by path.

Given on each path the exposure X(t_i) and the counterparty's survival probability conditional on that path,
S_n(t_i) (from simulated intensities, or from a copula on the exposure driver), the CVA is the path average

    CVA = (1 - R) E[sum_i D(t_i) max(X(t_i), 0) (S_n(t_{i-1}) - S_n(t_i))]
        = (1 - R) E[sum_i D(t_i) max(X(t_i), 0) 1{tau in (t_{i-1}, t_i]}]

(the default indicator's conditional expectation given the path). When the paths with large exposures are the
paths where the counterparty is likely to default, the CVA exceeds the CVA with independent default, computed
on the same paths with the unconditional curve S(t) = E[S_n(t)]: the `ratio` of the two is the wrong-way
multiplier. Both come with Monte Carlo standard errors, and so does their difference (a paired estimate on the
same paths, much tighter than either).

Two ways to the conditional survival probabilities:

- Intensity paths (`survival_from_intensity`): S_n(t) = exp(-int_0^t lambda_n(u) du), the integral by the
  trapezoid rule on the grid. A credit intensity correlated with the exposure's market driver (the exposure
  engine's credit factor) carries the wrong-way risk; a Gaussian intensity may dip below zero, and then S_n
  may exceed 1 on a path (its expectation still fits the curve). The exposure engine's `CreditPaths` already
  holds the integrated hazards: survival paths = exp(-cumulative[name]).T, [paths, dates].
- A Gaussian copula between the default time and a standard normal driver Z of the path (`copula_survival`):
  tau <= t when Phi^-1(1 - S(t)) exceeds the latent variable Y = -rho Z + sqrt(1 - rho^2) eps, so that
      P(tau <= t | Z) = Phi((Phi^-1(1 - S(t)) + rho Z) / sqrt(1 - rho^2)).
  rho > 0 makes default likelier on paths where Z is high: wrong-way when the exposure rises with Z.
  rho = 0 gives back the unconditional curve on every path (the CVA with independence, exactly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from engines.xva.adjustments import check_survival, check_times

__all__ = ["WrongWayCva", "copula_survival", "survival_from_intensity", "wrong_way_cva"]


@dataclass(frozen=True)
class WrongWayCva:
    """CVA with the path-conditional default probabilities, and with independent default on the same paths."""

    cva: float
    stderr: float
    independent_cva: float
    independent_stderr: float
    excess_stderr: float
    paths: int

    @property
    def excess(self) -> float:
        """CVA - independent CVA: the wrong-way (positive) or right-way (negative) part."""
        return self.cva - self.independent_cva

    @property
    def ratio(self) -> float:
        """CVA / independent CVA: the wrong-way multiplier (nan without exposure)."""
        return self.cva / self.independent_cva if self.independent_cva > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "cva": self.cva,
            "stderr": self.stderr,
            "independent_cva": self.independent_cva,
            "independent_stderr": self.independent_stderr,
            "excess": self.excess,
            "excess_stderr": self.excess_stderr,
            "ratio": self.ratio,
            "paths": self.paths,
        }


def survival_from_intensity(
    times: np.ndarray | Sequence[float],
    intensity_paths: np.ndarray,
    initial_intensity: np.ndarray | float | None = None,
) -> np.ndarray:
    """S_n(t_i) = exp(-int_0^{t_i} lambda_n), trapezoid rule on 0, t_1, ..., t_T; `intensity_paths` [N, T].

    `initial_intensity` is lambda(0) (a scalar or one per path); None takes the first date's value (flat back
    to time 0). Intensities are decimals per year.
    """
    t = check_times(times)
    lam = np.asarray(intensity_paths, dtype=np.float64)
    if lam.ndim != 2 or lam.shape[1] != t.size or not np.all(np.isfinite(lam)):
        raise ValueError(f"intensity_paths: expected finite [paths, {t.size}], got {lam.shape}")
    start = lam[:, 0] if initial_intensity is None else np.broadcast_to(initial_intensity, lam.shape[:1])
    previous = np.concatenate([np.asarray(start, dtype=np.float64)[:, None], lam[:, :-1]], axis=1)
    return np.exp(-np.cumsum(0.5 * (previous + lam) * np.diff(t, prepend=0.0), axis=1))


def copula_survival(
    times: np.ndarray | Sequence[float],
    survival: np.ndarray | Sequence[float],
    driver: np.ndarray,
    correlation: float,
) -> np.ndarray:
    """Survival given each path's standard normal driver Z [N]: 1 - Phi((Phi^-1(1 - S) + rho Z) / sqrt(1 - rho^2))."""
    t = check_times(times)
    s = check_survival(survival, t, "survival")
    if s.ndim != 1:
        raise ValueError(f"survival: the counterparty's curve [{t.size}], got {s.shape}")
    if not math.isfinite(correlation) or abs(correlation) >= 1:
        raise ValueError(f"correlation: {correlation} must lie strictly between -1 and 1")
    z = np.asarray(driver, dtype=np.float64)
    if z.ndim != 1 or not np.all(np.isfinite(z)):
        raise ValueError(f"driver: one finite standard normal value per path, got shape {z.shape}")
    threshold = ndtri(np.clip(1.0 - s, 0.0, 1.0))  # -inf where S = 1: no default before that date
    default = ndtr((threshold[None, :] + correlation * z[:, None]) / math.sqrt(1.0 - correlation**2))
    return 1.0 - default


def wrong_way_cva(
    times: np.ndarray | Sequence[float],
    exposure_paths: np.ndarray,
    survival_paths: np.ndarray,
    recovery: float,
    discount: np.ndarray | None = None,
) -> WrongWayCva:
    """(1 - R) E[sum_i D(t_i) max(X(t_i), 0) (S_n(t_{i-1}) - S_n(t_i))], and the same with S = E[S_n].

    `exposure_paths` and `survival_paths` [N, T] on the same paths; `discount` None, [T] or [N, T].
    """
    t = check_times(times)
    x = np.asarray(exposure_paths, dtype=np.float64)
    s = np.asarray(survival_paths, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != t.size or x.shape[0] < 2:
        raise ValueError(f"exposure_paths: expected [paths >= 2, {t.size}], got {x.shape}")
    if s.shape != x.shape:
        raise ValueError(f"survival_paths: expected the exposure paths' shape {x.shape}, got {s.shape}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("exposure_paths, survival_paths: values must be finite, survival probabilities >= 0")
    if not math.isfinite(recovery) or not 0 <= recovery < 1:
        raise ValueError(f"recovery: {recovery} is not a fraction in [0, 1)")
    d = 1.0 if discount is None else np.asarray(discount, dtype=np.float64)
    loss = (1.0 - recovery) * d * np.maximum(x, 0.0)
    previous = np.concatenate([np.ones((s.shape[0], 1)), s[:, :-1]], axis=1)
    conditional = np.sum(loss * (previous - s), axis=1)
    mean_s = s.mean(axis=0)
    independent = loss @ (np.concatenate([[1.0], mean_s[:-1]]) - mean_s)
    root = math.sqrt(x.shape[0])
    return WrongWayCva(
        cva=float(conditional.mean()),
        stderr=float(conditional.std(ddof=1) / root),
        independent_cva=float(independent.mean()),
        independent_stderr=float(independent.std(ddof=1) / root),
        excess_stderr=float((conditional - independent).std(ddof=1) / root),
        paths=x.shape[0],
    )
