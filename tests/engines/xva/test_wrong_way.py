"""Wrong-way CVA against semi-analytic references.

Gaussian copula (the Gaussian exposure model of Gregory's "Counterparty Credit Risk", ch. 17): on each path
V(t) = mu(t) + sigma(t) Z, and the default time is tied to Z by a Gaussian copula of correlation rho. Given Z
the path's default probabilities are Phi((Phi^-1(F(t)) + rho Z) / sqrt(1 - rho^2)), so the discrete CVA is a
one-dimensional integral over Z (Gauss-Hermite quadrature here, no simulation); and given default at s, Z is
N(-rho Phi^-1(F(s)), 1 - rho^2), which gives the continuous formula
    CVA = (1 - R) int DF(s) [m Phi(m / v) + v phi(m / v)] dF(s),  m = mu(s) - rho sigma(s) Phi^-1(F(s)),
    v = sigma(s) sqrt(1 - rho^2).

Gaussian intensity correlated with the exposure: V(t) = sigma W1(t), lambda(t) = h + nu W2(t), d<W1, W2> = rho dt.
With A(s) = int_0^s W2, a Gaussian change of measure gives in closed form
    E[V+(t) exp(-Lambda(s))] = exp(-h s + nu^2 s^3 / 6) E[(sigma (W1(t) - nu rho s^2 / 2))+]      (s <= t),
so the discrete CVA sum_i E[V+(t_i) (S(t_{i-1}) - S(t_i))] is exact, and the continuous density
E[V+(t) lambda(t) S(t)] too (Stein's lemma for the lambda factor).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import ndtr, ndtri

from engines.xva.adjustments import cva_paths, survival_from_hazard
from engines.xva.wrong_way import copula_survival, survival_from_intensity, wrong_way_cva

HERMITE_Z, HERMITE_W = np.polynomial.hermite_e.hermegauss(160)
HERMITE_W = HERMITE_W / math.sqrt(2 * math.pi)


def positive_part_mean(mean: np.ndarray | float, sd: np.ndarray | float) -> np.ndarray:
    """E[max(X, 0)] for X ~ N(mean, sd^2)."""
    mean, sd = np.asarray(mean, dtype=np.float64), np.asarray(sd, dtype=np.float64)
    d = mean / sd
    return mean * ndtr(d) + sd * np.exp(-0.5 * d * d) / math.sqrt(2 * math.pi)


# ---- the Gaussian copula -----------------------------------------------------------------------------

LAM, R, RATE = 0.04, 0.4, 0.02
MU, SIGMA = 2e5, 1e6  # V(t) = MU t + SIGMA sqrt(t) Z


def copula_reference_discrete(t: np.ndarray, rho: float) -> float:
    """(1 - R) sum_i DF_i int phi(z) (mu_i + sigma_i z)+ [P(tau <= t_i | z) - P(tau <= t_{i-1} | z)] dz."""
    f = 1 - np.exp(-LAM * t)
    y = ndtri(f)
    z = HERMITE_Z[:, None]
    cond = ndtr((y[None, :] + rho * z) / math.sqrt(1 - rho**2))
    dpd = np.diff(cond, axis=1, prepend=0.0)
    v = np.maximum(MU * t + SIGMA * np.sqrt(t) * z, 0.0)
    return (1 - R) * float(HERMITE_W @ (v * dpd * np.exp(-RATE * t)).sum(axis=1))


def copula_reference_continuous(horizon: float, rho: float) -> float:
    def integrand(s: float) -> float:
        y = float(ndtri(1 - math.exp(-LAM * s)))
        m = MU * s - rho * SIGMA * math.sqrt(s) * y
        v = SIGMA * math.sqrt(s) * math.sqrt(1 - rho**2)
        return math.exp(-RATE * s) * float(positive_part_mean(m, v)) * LAM * math.exp(-LAM * s)

    return (1 - R) * quad(integrand, 0, horizon, limit=200)[0]


def copula_paths(t: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    z = np.random.default_rng(seed).standard_normal(n)
    return z, MU * t + SIGMA * np.sqrt(t) * z[:, None]


def test_zero_correlation_is_the_independent_cva_exactly() -> None:
    t = np.linspace(0.1, 5.0, 50)
    z, v = copula_paths(t, 5_000, 1)
    curve = survival_from_hazard(t, LAM)
    res = wrong_way_cva(t, v, copula_survival(t, curve, z, 0.0), R, np.exp(-RATE * t))
    assert res.cva == pytest.approx(res.independent_cva, rel=1e-12)
    assert res.cva == pytest.approx(cva_paths(t, v, curve, R, np.exp(-RATE * t)).value, rel=1e-12)
    assert res.excess_stderr == pytest.approx(0.0, abs=1e-9 * res.cva)


@pytest.mark.parametrize("rho", [0.5, -0.4])
def test_copula_cva_matches_the_semi_analytic_reference_within_standard_errors(rho: float) -> None:
    t = np.linspace(0.1, 5.0, 50)
    z, v = copula_paths(t, 100_000, 2)
    res = wrong_way_cva(t, v, copula_survival(t, survival_from_hazard(t, LAM), z, rho), R, np.exp(-RATE * t))
    reference = copula_reference_discrete(t, rho)
    assert abs(res.cva - reference) < 3 * res.stderr, (res.cva, reference, res.stderr)
    if rho > 0:
        assert res.excess > 10 * res.excess_stderr and res.ratio > 1.3
    else:
        assert res.excess < -10 * res.excess_stderr and res.ratio < 0.8
    print(f"copula rho={rho}: ours {res.cva:.1f} +- {res.stderr:.1f}, reference {reference:.1f}, ratio {res.ratio:.3f}")


def test_the_discrete_copula_reference_converges_to_the_continuous_formula() -> None:
    t = np.linspace(5.0 / 4000, 5.0, 4000)
    for rho in (0.0, 0.5):
        assert copula_reference_discrete(t, rho) == pytest.approx(copula_reference_continuous(5.0, rho), rel=2e-3)


# ---- a Gaussian intensity correlated with the exposure -------------------------------------------------

H, NU, SIG = 0.03, 0.02, 1e6


def intensity_reference_discrete(t: np.ndarray, rho: float) -> float:
    """sum_i E[V+(t_i) (S(t_{i-1}) - S(t_i))], exact survival, (1 - R) applied, no discounting."""
    total = 0.0
    prev = np.concatenate([[0.0], t[:-1]])
    for ti, si in zip(t, prev, strict=True):
        if ti == 0:
            continue
        terms = []
        for s in (si, ti):
            tilt = math.exp(-H * s + NU**2 * s**3 / 6)
            terms.append(tilt * float(positive_part_mean(-SIG * NU * rho * s**2 / 2, SIG * math.sqrt(ti))))
        total += terms[0] - terms[1]
    return (1 - R) * total


def intensity_reference_continuous(horizon: float, rho: float) -> float:
    """(1 - R) int_0^T E[V+(t) lambda(t) S(t)] dt in closed form under the tilted measure."""

    def density(s: float) -> float:
        mx, sx = -SIG * NU * rho * s**2 / 2, SIG * math.sqrt(s)
        my, cov = H - NU**2 * s**2 / 2, SIG * NU * rho * s
        ex = float(positive_part_mean(mx, sx))
        return math.exp(-H * s + NU**2 * s**3 / 6) * (my * ex + cov * float(ndtr(mx / sx)))

    return (1 - R) * quad(density, 1e-12, horizon, limit=200)[0]


def intensity_paths(t: np.ndarray, n: int, rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dt = np.diff(t, prepend=0.0)
    e1 = rng.standard_normal((n, t.size))
    e2 = rho * e1 + math.sqrt(1 - rho**2) * rng.standard_normal((n, t.size))
    w1, w2 = np.cumsum(e1 * np.sqrt(dt), axis=1), np.cumsum(e2 * np.sqrt(dt), axis=1)
    return SIG * w1, H + NU * w2


@pytest.mark.parametrize("rho", [0.6, 0.0, -0.6])
def test_intensity_cva_matches_the_closed_form_within_standard_errors(rho: float) -> None:
    t = np.linspace(0.0, 5.0, 61)
    v, lam = intensity_paths(t, 40_000, rho, 3)
    res = wrong_way_cva(t, v, survival_from_intensity(t, lam, initial_intensity=H), R)
    reference = intensity_reference_discrete(t, rho)
    assert abs(res.cva - reference) < 3 * res.stderr, (res.cva, reference, res.stderr)
    if rho == 0:
        assert abs(res.excess) < 3 * res.excess_stderr
    else:
        assert np.sign(res.excess) == np.sign(rho) and abs(res.excess) > 10 * res.excess_stderr
    print(f"intensity rho={rho}: ours {res.cva:.1f} +- {res.stderr:.1f}, closed form {reference:.1f}")


def test_the_discrete_intensity_reference_converges_to_the_continuous_integral() -> None:
    t = np.linspace(0.0, 5.0, 2001)
    for rho in (0.6, -0.3):
        assert intensity_reference_discrete(t, rho) == pytest.approx(intensity_reference_continuous(5.0, rho), rel=2e-3)


def test_survival_from_intensity_integrates_by_the_trapezoid_rule() -> None:
    t = np.array([0.5, 1.0, 2.0])
    flat = survival_from_intensity(t, np.full((2, 3), 0.05))
    np.testing.assert_allclose(flat, np.exp(-0.05 * t)[None, :].repeat(2, axis=0), rtol=1e-14)
    linear = survival_from_intensity(t, 0.01 + 0.02 * t[None, :], initial_intensity=0.01)
    np.testing.assert_allclose(linear[0], np.exp(-(0.01 * t + 0.01 * t**2)), rtol=1e-14)


def test_errors_name_the_field() -> None:
    t = np.array([0.5, 1.0])
    with pytest.raises(ValueError, match="correlation"):
        copula_survival(t, [0.99, 0.98], np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="survival_paths"):
        wrong_way_cva(t, np.ones((3, 2)), np.ones((3, 3)), 0.4)
    with pytest.raises(ValueError, match="recovery"):
        wrong_way_cva(t, np.ones((3, 2)), np.ones((3, 2)), 1.0)
    with pytest.raises(ValueError, match="intensity_paths"):
        survival_from_intensity(t, np.ones((3, 3)))
