"""Filtered historical simulation: the filter's recurrence by hand, exact revolatilisation on a constructed
series, the horizon identities (overlapping sums, √MPOR), and Gaussian VaR/ES against the closed forms.

Sampling tolerance of the Gaussian checks: with N = 19,000 scenarios the 99% quantile's standard error is
about 1.1% of the quantile, the expected shortfall's about 1.5%, and the filter's end-of-history volatility
(decay 0.999, some 1,000 days of memory) adds about 1.1%; the checks allow 5%, over three standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from engines.margin import fhs
from engines.margin.arrays import FactorHistory


def history_of(returns: np.ndarray, stressed: np.ndarray | None = None) -> FactorHistory:
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim == 1:
        returns = returns[:, None]
    t, f = returns.shape
    dates = np.datetime64("2015-01-01") + np.arange(t).astype("timedelta64[D]")
    flags = np.zeros(t, dtype=bool) if stressed is None else stressed
    return FactorHistory(dates, tuple(f"EQ.X{i}" for i in range(f)), returns, flags)


def test_filter_follows_the_ewma_recurrence_by_hand() -> None:
    rng = np.random.default_rng(1)
    r = rng.normal(0, 0.01, size=(40, 2))
    decay = 0.9  # seed window ceil(1 / 0.1) = 10 days
    z, vol = fhs.ewma_filter(history_of(r), decay)
    for f in range(2):
        var = np.mean(r[:10, f] ** 2)
        for t in range(40):
            assert vol[t, f] == pytest.approx(math.sqrt(var), rel=1e-12)
            assert z[t, f] == pytest.approx(r[t, f] / math.sqrt(var), rel=1e-12)
            var = decay * var + (1 - decay) * r[t, f] ** 2
        assert vol[40, f] == pytest.approx(math.sqrt(var), rel=1e-12)
        assert fhs.current_vol(history_of(r), decay)[f] == pytest.approx(math.sqrt(var), rel=1e-12)


def test_zero_factor_gives_zero_scenarios() -> None:
    r = np.zeros((100, 2))
    r[:, 1] = np.random.default_rng(0).normal(0, 0.01, 100)
    s = fhs.scenarios(history_of(r), lookback_days=50, mpor_days=2, ewma_decay=0.94)
    assert np.all(s[:, 0] == 0.0) and np.all(np.isfinite(s))


def calm_then_stress(calm: int, stress: int, s1: float, s2: float, seed: int = 3) -> np.ndarray:
    """Returns of constant size (s1, then s2) with random signs: the filter's vol is exactly s1 in the calm."""
    signs = np.where(np.random.default_rng(seed).random(calm + stress) < 0.5, -1.0, 1.0)
    return signs * np.r_[np.full(calm, s1), np.full(stress, s2)]


def test_revolatilisation_is_exact_on_a_constructed_calm_series() -> None:
    r = calm_then_stress(600, 2000, 0.01, 0.04)
    h = history_of(r)
    # in the calm every residual is ±1, so every one-day scenario is ±(today's vol × multiplier)
    s = fhs.scenarios(h, lookback_days=300, mpor_days=1, ewma_decay=0.97, vol_multiplier=3.0, as_of=599)
    np.testing.assert_allclose(np.abs(s[:, 0]), 0.03, rtol=1e-12)
    np.testing.assert_array_equal(np.sign(s[:, 0]), np.sign(r[300:600]))
    # long into the stress the forecast has converged to 4%: calm days are revolatilised to it
    s = fhs.scenarios(h, lookback_days=2000, mpor_days=1, ewma_decay=0.97, as_of=-1)
    assert fhs.current_vol(h, 0.97)[0] == pytest.approx(0.04, rel=1e-9)
    raw = fhs.scenarios(h, lookback_days=2000, mpor_days=1, filtered=False)
    np.testing.assert_array_equal(raw[:, 0], r[-2000:])
    late = slice(1000, None)  # stress days far from the switch: residuals ±1 again
    np.testing.assert_allclose(np.abs(s[late, 0]), 0.04, rtol=1e-9)


def test_horizon_identities() -> None:
    r = np.random.default_rng(7).standard_t(4, size=(500, 3)) * 0.01
    h = history_of(r)
    one = fhs.scenarios(h, lookback_days=300, mpor_days=1, ewma_decay=0.97)
    three = fhs.scenarios(h, lookback_days=298, mpor_days=3, ewma_decay=0.97)
    np.testing.assert_allclose(three, one[2:] + one[1:-1] + one[:-2], rtol=1e-12, atol=1e-16)
    root = fhs.scenarios(h, lookback_days=300, mpor_days=3, ewma_decay=0.97, horizon="sqrt_time")
    np.testing.assert_allclose(root, math.sqrt(3) * one, rtol=1e-12)
    raw = fhs.scenarios(h, lookback_days=298, mpor_days=3, filtered=False)
    np.testing.assert_allclose(raw, r[202:] + r[201:-1] + r[200:-2], rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(
        fhs.scenarios(h, lookback_days=298, mpor_days=3, ewma_decay=0.97, vol_multiplier=5.0), 5.0 * three, rtol=1e-12
    )


def test_lookback_and_as_of_select_the_days() -> None:
    r = np.arange(1.0, 101.0)
    h = history_of(r)
    raw = fhs.scenarios(h, lookback_days=30, mpor_days=2, filtered=False, as_of=59)
    assert raw.shape == (30, 1)
    assert raw[0, 0] == r[30] + r[29] and raw[-1, 0] == r[59] + r[58]
    np.testing.assert_array_equal(fhs.scenario_days(h, n=30, as_of=59), np.arange(30, 60))
    # the history covers a 100-day lookback but not the day before it: the 99 windows it has
    assert len(fhs.scenarios(h, lookback_days=100, mpor_days=2, filtered=False)) == 99
    with pytest.raises(ValueError, match="lookback_days: 101 scenarios of 2 day"):
        fhs.scenarios(h, lookback_days=101, mpor_days=2, filtered=False)
    assert len(fhs.scenarios(h, lookback_days=101, mpor_days=2, filtered=False, truncate=True)) == 99
    with pytest.raises(ValueError, match="vol_multiplier"):
        fhs.scenarios(h, lookback_days=30, mpor_days=2, vol_multiplier=0.0)
    with pytest.raises(ValueError, match="as_of"):
        fhs.scenarios(h, lookback_days=30, mpor_days=2, as_of=100)


@pytest.mark.parametrize("horizon", ["overlapping", "sqrt_time"])
def test_gaussian_var_and_es_match_the_closed_forms(horizon: str) -> None:
    sigma, mpor, c = 0.012, 5, 0.99
    r = np.random.default_rng(2026).normal(0.0, sigma, size=20_000)
    s = fhs.scenarios(history_of(r), lookback_days=19_000, mpor_days=mpor, ewma_decay=0.999, horizon=horizon)
    loss = -1e6 * s[:, 0]  # a long position of 1m USD delta
    var = np.quantile(loss, c)
    es = loss[loss >= var].mean()
    z = norm.ppf(c)
    scale = 1e6 * sigma * math.sqrt(mpor)
    assert var == pytest.approx(z * scale, rel=0.05)
    assert es == pytest.approx(norm.pdf(z) / (1 - c) * scale, rel=0.05)
