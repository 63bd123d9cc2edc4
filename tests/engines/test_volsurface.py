"""Arbitrage-free implied-vol surfaces: SSVI calibration, arbitrage checks, SVI slices, Dupire local vol."""

from __future__ import annotations

import numpy as np
import pytest

from engines.common.black_scholes import black_scholes_price
from engines.common.volsurface import (
    SSVISurface,
    SVISlice,
    VolQuotes,
    calibrate_ssvi,
    calibrate_svi_slice,
    check_quotes,
    check_svi_butterfly,
    flat_surface,
    local_vol,
    local_vol_grid,
    svi_butterfly_density,
)
from engines.registry import InvalidInputs

EXPIRIES = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 5.0])
ATM_VOLS = np.array([0.18, 0.19, 0.20, 0.21, 0.215, 0.22])
K = np.linspace(-0.6, 0.4, 21)
RHO, ETA, GAMMA = -0.6, 1.2, 0.4


def known_surface(gamma: float = GAMMA) -> SSVISurface:
    return SSVISurface(expiries=EXPIRIES, theta=ATM_VOLS**2 * EXPIRIES, rho=RHO, eta=ETA, gamma=gamma)


def known_quotes() -> VolQuotes:
    surface = known_surface()
    return VolQuotes(EXPIRIES, K, surface.implied_vol(K[None, :], EXPIRIES[:, None]))


# 1. calibration recovers a known SSVI surface ---------------------------------------------------


def test_calibrate_ssvi_recovers_known_parameters_and_vols() -> None:
    truth = known_surface()
    truth.check_arbitrage()
    quotes = known_quotes()
    fitted = calibrate_ssvi(quotes)
    fitted.check_arbitrage()
    model = fitted.implied_vol(K[None, :], EXPIRIES[:, None])
    assert np.max(np.abs(model - quotes.vols)) < 1e-4
    np.testing.assert_allclose(fitted.theta, truth.theta, rtol=1e-4)
    assert fitted.rho == pytest.approx(RHO, abs=1e-3)
    assert fitted.eta == pytest.approx(ETA, abs=1e-3)
    assert fitted.gamma == pytest.approx(GAMMA, abs=1e-3)


def test_calibrate_ssvi_from_strike_quotes_with_per_expiry_grids() -> None:
    truth = known_surface()
    forwards = 100.0 * np.exp(0.03 * EXPIRIES)
    strikes = np.linspace(60.0, 140.0, 17)
    quotes_k = np.log(strikes[None, :] / forwards[:, None])
    vols = truth.implied_vol(quotes_k, EXPIRIES[:, None])
    quotes = VolQuotes.from_strikes(EXPIRIES, strikes, vols, forwards)
    assert quotes.log_moneyness.shape == (EXPIRIES.size, strikes.size)
    np.testing.assert_allclose(quotes.log_moneyness, quotes_k)
    fitted = calibrate_ssvi(quotes)
    assert np.max(np.abs(fitted.implied_vol(quotes_k, EXPIRIES[:, None]) - vols)) < 1e-4
    assert fitted.rho == pytest.approx(RHO, abs=1e-3)


def test_calibrate_ssvi_refuses_quotes_no_ssvi_fits() -> None:
    # Arbitrage-free quotes whose skew flips sign between expiries: one global rho cannot fit them.
    k = np.linspace(-0.4, 0.4, 9)
    short = SSVISurface(np.array([0.5]), np.array([0.02]), rho=0.7, eta=1.0, gamma=0.5)
    long = SSVISurface(np.array([2.0]), np.array([0.16]), rho=-0.7, eta=1.0, gamma=0.5)
    vols = np.vstack((short.implied_vol(k, 0.5), long.implied_vol(k, 2.0)))
    quotes = VolQuotes(np.array([0.5, 2.0]), k, vols)
    check_quotes(quotes)  # no static arbitrage ...
    with pytest.raises(InvalidInputs) as info:  # ... but not an SSVI surface
        calibrate_ssvi(quotes)
    assert info.value.field == "quotes"
    assert "arbitrage-free SSVI" in info.value.reason and "quotes.vols[" in info.value.reason
    with pytest.raises(InvalidInputs) as info:
        calibrate_ssvi(known_quotes(), max_rms_error=0.0)
    assert info.value.field == "max_rms_error"


# 2. arbitrageable quotes are refused ------------------------------------------------------------


def test_calendar_arbitrage_is_refused_naming_the_quote() -> None:
    quotes = known_quotes()
    vols = quotes.vols.copy()
    w_before = vols[2, 5] ** 2 * EXPIRIES[2]
    vols[3, 5] = np.sqrt(0.98 * w_before / EXPIRIES[3])  # T=2 total variance below T=1's at the same k
    with pytest.raises(InvalidInputs) as info:
        check_quotes(VolQuotes(EXPIRIES, K, vols))
    assert info.value.field == "quotes.vols[3][5]"
    assert "calendar arbitrage" in str(info.value)
    with pytest.raises(InvalidInputs, match=r"quotes\.vols\[3\]\[5\]: calendar"):
        calibrate_ssvi(VolQuotes(EXPIRIES, K, vols))


def test_calendar_arbitrage_on_different_grids_is_refused() -> None:
    expiries = np.array([1.0, 2.0])
    k = np.array([[-0.2, -0.1, 0.0, 0.1, 0.2], [-0.25, -0.15, -0.05, 0.05, 0.15]])
    vols = np.full((2, 5), 0.2)
    check_quotes(VolQuotes(expiries, k, vols))
    vols[1, 2] = 0.14  # w = 0.0392 at T=2, below 0.04 of T=1 interpolated at k=-0.05
    with pytest.raises(InvalidInputs) as info:
        check_quotes(VolQuotes(expiries, k, vols))
    assert info.value.field == "quotes.vols[1][2]"


def test_butterfly_arbitrage_is_refused_naming_the_spike() -> None:
    k = np.array([-0.2, -0.1, 0.0, 0.1, 0.2])
    flat = np.full((1, 5), 0.2)
    check_quotes(VolQuotes(np.array([1.0]), k, flat))
    spiked = flat.copy()
    spiked[0, 2] = 0.26
    with pytest.raises(InvalidInputs) as info:
        check_quotes(VolQuotes(np.array([1.0]), k, spiked))
    assert info.value.field == "quotes.vols[0][2]"
    assert "butterfly arbitrage" in str(info.value)
    # the same spike on the last expiry of a full grid (no later expiry to hide it)
    quotes = known_quotes()
    vols = quotes.vols.copy()
    vols[-1, 10] += 0.05
    with pytest.raises(InvalidInputs, match="butterfly arbitrage") as info:
        calibrate_ssvi(VolQuotes(EXPIRIES, K, vols))
    assert info.value.field == "quotes.vols[5][10]"


def test_ssvi_check_arbitrage_rejects_parameters_outside_the_no_arbitrage_region() -> None:
    theta = ATM_VOLS**2 * EXPIRIES
    cases = {
        "surface.eta": dict(rho=-0.6, eta=1.5, gamma=0.4),  # eta (1 + |rho|) = 2.4 > 2
        "surface.gamma": dict(rho=-0.6, eta=1.0, gamma=0.7),
        "surface.rho": dict(rho=1.0, eta=0.5, gamma=0.4),
    }
    for field, params in cases.items():
        with pytest.raises(InvalidInputs) as info:
            SSVISurface(EXPIRIES, theta, **params).check_arbitrage()
        assert info.value.field == field
    decreasing = theta.copy()
    decreasing[3] = decreasing[2] * 0.9
    with pytest.raises(InvalidInputs) as info:
        SSVISurface(EXPIRIES, decreasing, RHO, ETA, GAMMA).check_arbitrage()
    assert info.value.field == "surface.theta[3]"
    with pytest.raises(InvalidInputs):
        local_vol(SSVISurface(EXPIRIES, theta, rho=-0.6, eta=1.5, gamma=0.4), 0.0, 1.0)


# 3. raw SVI slices ------------------------------------------------------------------------------


def test_svi_slice_round_trip() -> None:
    truth = SVISlice(a=0.04, b=0.1, rho=-0.4, m=0.05, sigma=0.2)
    check_svi_butterfly(truth)
    k = np.linspace(-1.0, 1.0, 21)
    fitted = calibrate_svi_slice(k, truth.total_variance(k))
    np.testing.assert_allclose(fitted.total_variance(k), truth.total_variance(k), rtol=1e-8)
    for name in ("a", "b", "rho", "m", "sigma"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), abs=1e-5), name
    assert np.min(svi_butterfly_density(fitted, np.linspace(-3, 3, 601))) > 0


def test_svi_slice_with_negative_density_is_refused() -> None:
    # The literature's arbitrageable raw SVI slice (T = 1): positive total variance everywhere but
    # a negative density g(k) on part of the strike range.
    arbitrageable = SVISlice(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)
    grid = np.linspace(-1.5, 1.5, 3001)
    assert np.min(arbitrageable.total_variance(grid)) > 0
    assert np.min(svi_butterfly_density(arbitrageable, grid)) < 0
    with pytest.raises(InvalidInputs, match="butterfly arbitrage") as info:
        check_svi_butterfly(arbitrageable)
    assert info.value.field == "slice"
    k = np.linspace(-1.5, 1.5, 31)
    with pytest.raises(InvalidInputs, match="butterfly arbitrage") as info:
        calibrate_svi_slice(k, arbitrageable.total_variance(k))
    assert info.value.field == "total_variance"


# 4. local volatility ----------------------------------------------------------------------------


def test_local_vol_of_flat_surface_is_the_flat_vol() -> None:
    surface = flat_surface(0.25, EXPIRIES)
    surface.check_arbitrage()
    times = np.linspace(0.0, 6.0, 13)
    k = np.linspace(-3.0, 3.0, 61)
    grid = local_vol_grid(surface, times, k)
    assert grid.shape == (13, 61) and grid.dtype == np.float64
    np.testing.assert_allclose(grid, 0.25, rtol=1e-12)
    np.testing.assert_allclose(surface.implied_vol(k, 0.7), 0.25, rtol=1e-12)


def _atm_skew_ratio(surface: SSVISurface, t: float, h: float = 1e-5) -> float:
    local_skew = (local_vol(surface, h, t) - local_vol(surface, -h, t)) / (2 * h)
    implied_skew = (surface.implied_vol(h, t) - surface.implied_vol(-h, t)) / (2 * h)
    return float(local_skew / implied_skew)


def test_short_maturity_local_skew_is_about_twice_the_implied_skew() -> None:
    # The short-maturity rule: the ATM local-vol skew is twice the implied skew when the implied
    # skew stays finite as t -> 0. Power-law SSVI with theta linear in t has an implied skew
    # growing like t^-gamma, and the ratio then tends to 2 - gamma instead; gamma = 0.1 keeps the
    # skew nearly regular, so at t = 0.02 the ratio lies in [1.8, 2.2].
    assert 1.8 <= _atm_skew_ratio(known_surface(gamma=0.1), 0.02) <= 2.2
    for gamma in (0.1, 0.25):
        assert _atm_skew_ratio(known_surface(gamma=gamma), 1e-4) == pytest.approx(2 - gamma, abs=0.01)
    # the strongly exploding gamma = 0.4 surface sits between the two rules at t = 0.02
    assert 2 - GAMMA < _atm_skew_ratio(known_surface(), 0.02) < 2.0


def test_local_vol_monte_carlo_reprices_vanillas_from_the_implied_surface() -> None:
    # Euler scheme in x = ln(S/F) (zero rates, F = 1): dx = -σ²/2 dt + σ dW with σ = σ_loc(x, t)
    # interpolated linearly in x on the local-vol grid, 100 steps over one year, 200k paths.
    # Tolerance: 3 Monte Carlo standard errors plus 0.002 for the time discretisation.
    surface = known_surface()
    steps, paths = 100, 200_000
    dt = 1.0 / steps
    k_grid = np.linspace(-4.0, 4.0, 801)
    grid = local_vol_grid(surface, np.arange(steps) * dt, k_grid)
    assert np.all(np.isfinite(grid)) and np.all(grid > 0)
    rng = np.random.default_rng(20240611)
    x = np.zeros(paths)
    for i in range(steps):
        vol = np.interp(x, k_grid, grid[i])
        x += -0.5 * vol**2 * dt + vol * np.sqrt(dt) * rng.standard_normal(paths)
    terminal = np.exp(x)
    for k in (-0.3, -0.1, 0.0, 0.1, 0.2):
        strike = float(np.exp(k))
        payoff = np.maximum(terminal - strike, 0.0)
        price, stderr = payoff.mean(), payoff.std(ddof=1) / np.sqrt(paths)
        black = black_scholes_price(1.0, strike, 0.0, 0.0, float(surface.implied_vol(k, 1.0)), 1.0, "call")
        assert abs(price - black) < 3 * stderr + 0.002, (k, price, black, stderr)


def test_derivatives_match_finite_differences() -> None:
    surface = known_surface()
    k = np.array([-0.5, -0.1, 0.0, 0.2, 0.7])
    for t in (0.1, 0.7, 1.5, 7.0):  # inside segments and beyond the last expiry
        w, w_k, w_kk, w_t = surface.derivatives(k, t)
        h = 1e-4
        np.testing.assert_allclose(w, surface.total_variance(k, t), rtol=1e-14)
        fd_k = (surface.total_variance(k + h, t) - surface.total_variance(k - h, t)) / (2 * h)
        fd_kk = (surface.total_variance(k + h, t) - 2 * w + surface.total_variance(k - h, t)) / h**2
        fd_t = (surface.total_variance(k, t + 1e-6) - surface.total_variance(k, t - 1e-6)) / 2e-6
        np.testing.assert_allclose(w_k, fd_k, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(w_kk, fd_kk, rtol=1e-4, atol=1e-8)
        np.testing.assert_allclose(w_t, fd_t, rtol=1e-6)
    assert float(surface.total_variance(0.0, 0.0)) == 0.0
    assert float(surface.atm_total_variance(7.0)) > float(surface.theta[-1])


# 5. bad inputs name the field -------------------------------------------------------------------


def test_bad_quotes_name_the_field() -> None:
    vols = np.full((3, 4), 0.2)
    expiries = np.array([0.5, 1.0, 2.0])
    k = np.linspace(-0.2, 0.2, 4)
    negative = vols.copy()
    negative[1, 2] = -0.1
    cases = [
        ((expiries, k, negative), "quotes.vols[1][2]"),
        ((expiries, k, np.where(vols > 0, np.nan, vols)), "quotes.vols[0][0]"),
        ((np.array([0.5, 1.0, 1.0]), k, vols), "quotes.expiries[2]"),
        ((np.array([0.5, 0.3, 2.0]), k, vols), "quotes.expiries[1]"),
        ((np.array([0.0, 1.0, 2.0]), k, vols), "quotes.expiries[0]"),
        ((expiries, k, vols[:, :3]), "quotes.vols"),
        ((expiries, np.zeros((2, 4)), vols), "quotes.log_moneyness"),
        ((expiries, k[::-1], vols), "quotes.log_moneyness[1]"),
    ]
    for args, field in cases:
        with pytest.raises(InvalidInputs) as info:
            VolQuotes(*args)
        assert info.value.field == field, (field, str(info.value))
    with pytest.raises(InvalidInputs) as info:
        VolQuotes.from_strikes(expiries, np.array([80.0, 90.0, 100.0, 110.0]), vols, np.array([100.0, -1.0, 100.0]))
    assert info.value.field == "quotes.forwards[1]"
    with pytest.raises(InvalidInputs) as info:
        check_quotes("not quotes")  # type: ignore[arg-type]
    assert info.value.field == "quotes"


def test_bad_surface_and_grid_inputs_name_the_field() -> None:
    theta = ATM_VOLS**2 * EXPIRIES
    with pytest.raises(InvalidInputs) as info:
        SSVISurface(EXPIRIES, theta[:-1], RHO, ETA, GAMMA)
    assert info.value.field == "surface.theta"
    with pytest.raises(InvalidInputs) as info:
        SSVISurface(EXPIRIES, theta, float("nan"), ETA, GAMMA)
    assert info.value.field == "surface.rho"
    surface = known_surface()
    with pytest.raises(InvalidInputs) as info:
        local_vol_grid(surface, np.array([0.0, 0.5, 0.5]), K)
    assert info.value.field == "times[2]"
    with pytest.raises(InvalidInputs) as info:
        local_vol(surface, 0.0, 0.0)
    assert info.value.field == "t"
    with pytest.raises(InvalidInputs) as info:
        surface.implied_vol(np.array([0.0, np.inf]), 1.0)
    assert info.value.field == "k[1]"
    with pytest.raises(InvalidInputs) as info:
        flat_surface(-0.2, EXPIRIES)
    assert info.value.field == "vol"
    with pytest.raises(InvalidInputs) as info:
        SVISlice(a=0.01, b=-0.1, rho=0.0, m=0.0, sigma=0.1)
    assert info.value.field == "slice.b"
    with pytest.raises(InvalidInputs) as info:
        calibrate_svi_slice(np.linspace(-1, 1, 5), np.array([0.05, 0.04, -0.03, 0.04, 0.05]))
    assert info.value.field == "total_variance[2]"
