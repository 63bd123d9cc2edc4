"""The IM proxies against Gaussian value processes whose conditional quantile over the MPOR is known.

- A Brownian netting-set value sigma W(t): the change over the MPOR is N(0, sigma^2 MPOR) on every path, so the
  99% IM is z_99 sigma sqrt(MPOR) everywhere (here from the next grid date, scaled by the square root of time).
- A Gaussian change whose volatility is affine in the level (kept away from zero),
  V(t + MPOR) = V + (a + b V) sqrt(MPOR) Z: the conditional quantile is z_99 |a + b V| sqrt(MPOR) path by path,
  and with V ~ N(0, t) its expectation is the folded-normal mean z_99 sqrt(MPOR) E|a + b V|.
- A linear two-factor portfolio with correlated Gaussian factor moves: the exact quantile z_99 sqrt(d' Sigma d).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from engines.xva.adjustments import CreditInputs, FundingSpreads, exposure_profiles, survival_from_hazard, xva
from engines.xva.initial_margin import (
    SIMM_MPOR_YEARS,
    InitialMarginOptions,
    polynomial_features,
    regression_initial_margin,
    sensitivity_initial_margin,
)

Z99 = float(ndtri(0.99))
MPOR = SIMM_MPOR_YEARS


def brownian(n: int, t: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.diff(t, prepend=0.0)
    return np.cumsum(rng.standard_normal((n, t.size)) * np.sqrt(dt), axis=1)


def test_brownian_value_gives_the_constant_quantile_from_the_next_grid_date() -> None:
    t = np.linspace(0.0, 5.0, 101)  # includes today: every path in the same state
    sigma = 2e6
    v = sigma * brownian(20_000, t, 1)
    im = regression_initial_margin(t, v)
    exact = Z99 * sigma * math.sqrt(MPOR)
    np.testing.assert_allclose(im.expected, exact, rtol=0.03)
    assert abs(float(im.expected.mean()) / exact - 1) < 0.005
    central = (v > np.quantile(v, 0.01, axis=0)) & (v < np.quantile(v, 0.99, axis=0))
    assert np.all(np.abs(im.paths[:, 1:][central[:, 1:]] / exact - 1) < 0.08)
    assert np.ptp(im.paths[:, 0]) == 0  # today: the unconditional quantile on every path
    print(f"Brownian IM: mean over dates {im.expected.mean():.1f}, exact {exact:.1f}")


def test_affine_volatility_recovers_the_conditional_quantile_path_by_path() -> None:
    t = np.linspace(0.25, 5.0, 20)
    a, b = 1.0, 0.1  # a + b V stays away from 0 on the central paths (where the square root would amplify noise)
    rng = np.random.default_rng(2)
    v = brownian(40_000, t, 3)
    closeout = v + (a + b * v) * math.sqrt(MPOR) * rng.standard_normal(v.shape)
    im = regression_initial_margin(t, v, closeout_values=closeout)
    exact = Z99 * np.abs(a + b * v) * math.sqrt(MPOR)
    central = (v > np.quantile(v, 0.01, axis=0)) & (v < np.quantile(v, 0.99, axis=0))
    rel = np.abs(im.paths / exact - 1)[central]
    assert float(np.quantile(rel, 0.99)) < 0.03 and float(rel.max()) < 0.12, (np.quantile(rel, 0.99), rel.max())
    # E|a + b V| for V ~ N(0, t): the folded normal mean
    s = b * np.sqrt(t)
    folded = s * np.sqrt(2 / np.pi) * np.exp(-(a**2) / (2 * s**2)) + a * (1 - 2 * ndtr(-a / s))
    np.testing.assert_allclose(im.expected, Z99 * math.sqrt(MPOR) * folded, rtol=0.015)
    # a constant fit (degree 0) misses the state dependence: its error on the paths is large
    flat = regression_initial_margin(t, v, closeout_values=closeout, options=InitialMarginOptions(degree=0))
    assert float(np.abs(flat.paths / exact - 1)[central].max()) > 0.3


def test_linear_two_factor_portfolio_sensitivities_and_regression_agree_with_the_exact_quantile() -> None:
    t = np.linspace(0.5, 3.0, 6)
    vols, rho = np.array([0.01, 0.2]), 0.6
    corr = np.array([[1.0, rho], [rho, 1.0]])
    cov = corr * np.outer(vols, vols)
    deltas = np.array([-4e7, 2e6])
    exact = Z99 * math.sqrt(float(deltas @ cov @ deltas) * MPOR)
    rng = np.random.default_rng(4)
    n = 20_000
    factors = np.einsum("ntk,lk->ntl", brownian(n * 2, t, 5).reshape(n, 2, t.size).transpose(0, 2, 1),
                        np.linalg.cholesky(cov))  # fmt: skip
    v = factors @ deltas
    moves = rng.standard_normal((n, t.size, 2)) @ np.linalg.cholesky(cov).T * math.sqrt(MPOR)
    closeout = (factors + moves) @ deltas
    sens = sensitivity_initial_margin(t, np.broadcast_to(deltas, (n, t.size, 2)), Z99 * vols * math.sqrt(MPOR), corr)
    np.testing.assert_allclose(sens.paths, exact, rtol=1e-12)
    reg = regression_initial_margin(t, v, closeout_values=closeout, state=factors)
    np.testing.assert_allclose(reg.expected, exact, rtol=0.02)
    single = sensitivity_initial_margin(t, np.full((3, t.size), -5.0), [2.0])
    np.testing.assert_allclose(single.paths, 10.0)


def test_mva_of_the_brownian_im_profile() -> None:
    t = np.linspace(0.05, 5.0, 100)
    sigma, r, lc, s = 1e6, 0.03, 0.02, 0.006
    v = sigma * brownian(10_000, t, 6)
    im = regression_initial_margin(t, v)
    df = np.exp(-r * t)
    p = exposure_profiles(t, v, df, initial_margin_paths=im.paths)
    np.testing.assert_allclose(p.initial_margin[0], im.discounted_expected(df), rtol=1e-12)
    result = xva(p, CreditInputs(survival_from_hazard(t, lc), 0.4), FundingSpreads(s, 0.0))
    k = r + lc
    closed = s * Z99 * sigma * math.sqrt(MPOR) * (1 - math.exp(-k * 5.0)) / k
    assert float(result.mva[0]) == pytest.approx(closed, rel=0.02)


def test_rescaling_to_todays_im_and_features() -> None:
    t = np.linspace(0.0, 1.0, 5)
    v = brownian(2_000, t, 8)
    im = regression_initial_margin(t, v, im_today=123.0)
    assert float(im.paths[:, 0].mean()) == pytest.approx(123.0)
    assert im.to_dict()["scale"] == pytest.approx(im.scale)
    f = polynomial_features(np.array([[2.0, 3.0]]), 2)
    np.testing.assert_allclose(f, [[1, 2, 3, 4, 6, 9]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"value_paths": np.ones((1, 3))}, "value_paths"),
        ({"value_paths": np.ones((4, 3)), "closeout_values": np.ones((4, 2))}, "closeout_values"),
        ({"value_paths": np.ones((4, 3)), "state": np.ones((3, 3))}, "state"),
        ({"value_paths": np.ones((4, 3)), "im_today": -1.0}, "im_today"),
    ],
)
def test_errors_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        regression_initial_margin([0.5, 1.0, 2.0], **kwargs)


def test_sensitivity_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="risk_weights"):
        sensitivity_initial_margin([1.0], np.ones((2, 1, 2)), [1.0])
    with pytest.raises(ValueError, match="correlation"):
        sensitivity_initial_margin([1.0], np.ones((2, 1, 2)), [1.0, 1.0], [[1.0, 2.0], [2.0, 1.0]])
