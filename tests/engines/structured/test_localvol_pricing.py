"""The local-volatility model through the autocallable engine: vanillas, skew effects, steepening, bad quotes.

The market's implied-vol quotes are generated from a known arbitrage-free power-law SSVI surface
(ρ = −0.6, η = 1.0 so η(1 + |ρ|) = 1.6 ≤ 2, γ = 0.4, 20% ATM-forward vol, r = 2%, q = 1%) on
strikes relative to spot; the engine calibrates its own SSVI to them and builds the Dupire grid.

The "European put in disguise" note is never callable, pays no coupon, has no barrier and
strike K, so PV = df·(1 − (K − S_T/S₀)⁺/K): the put in units of S₀ is K·(df − PV) and its Monte
Carlo standard error is K·se(PV). It is compared with Black–Scholes at the SSVI implied vol of
that strike and expiry (forward log-moneyness k = ln(K·S₀/F)). Tolerance: 3 standard errors plus
a discretisation allowance of 0.15 vol points converted to price with the Black–Scholes vega; it
is stated in each assertion message.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from engines.common.black_scholes import black_scholes_price
from engines.common.volsurface import SSVISurface, local_vol_grid
from engines.registry import InvalidInputs
from engines.structured import localvol
from engines.structured.localvol import ATM_INDEX, GRID_LOG_MONEYNESS, steepened, surface_of, surfaces_for
from engines.structured.market import Curve, MarketData, SurfaceQuotes, UnderlyingMarket
from engines.structured.pricing import PricingOptions, price_many
from engines.structured.spec import AutocallSpec

SPOT, R, Q = 100.0, 0.02, 0.01
RHO, ETA, GAMMA, ATM_VOL = -0.6, 1.0, 0.4, 0.20
EXPIRIES = (0.25, 0.5, 1.0, 2.0, 3.0)
STRIKES = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)
VOL_ALLOWANCE = 0.0015  # 0.15 vol points of discretisation allowance
PUT_CASES = [(t, k) for t in (1.0, 2.0) for k in (0.8, 0.9, 1.0, 1.1)]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def known_ssvi() -> SSVISurface:
    assert ETA * (1 + abs(RHO)) <= 2, "the SSVI parameters must be in the no-arbitrage region"
    surface = SSVISurface(expiries=np.array(EXPIRIES), theta=ATM_VOL**2 * np.array(EXPIRIES), rho=RHO, eta=ETA,
                          gamma=GAMMA)  # fmt: skip
    surface.check_arbitrage()
    return surface


def fwd(t: float) -> float:
    return SPOT * math.exp((R - Q) * t)


def ssvi_vol(surface: SSVISurface, strike: float, t: float) -> float:
    """Implied vol of a strike given relative to spot, at expiry t."""
    return float(surface.implied_vol(math.log(strike * SPOT / fwd(t)), t))


def quotes_from(surface: SSVISurface) -> SurfaceQuotes:
    vols = [[ssvi_vol(surface, k, t) for k in STRIKES] for t in EXPIRIES]
    return SurfaceQuotes(expiries=list(EXPIRIES), strikes=list(STRIKES), vols=vols)


def market_with(quotes: SurfaceQuotes, name: str = "X") -> MarketData:
    underlying = UnderlyingMarket(spot=SPOT, dividend_yield=Curve.flat(Q), surface=quotes)
    return MarketData(rates=Curve.flat(R), underlyings={name: underlying})


def put_note(t: float, strike: float) -> AutocallSpec:
    return AutocallSpec(name=f"put T={t:g} K={strike:g}", underlyings=["X"], maturity_years=t,
                        schedule={"dates": [t]}, autocall={"triggers": [None]}, coupon={"rate": 0.0}, knock_in=None,
                        strike=strike, capital_protection=0.0, funding_spread=0.0)  # fmt: skip


def autocallable(underlying: str = "X") -> AutocallSpec:
    """2-year quarterly worst-of-one autocallable: 6% conditional memory coupons, 60% continuous knock-in."""
    return AutocallSpec(name="phoenix", underlyings=[underlying], maturity_years=2.0,
                        schedule={"frequency": "quarterly"}, coupon={"rate": 0.06, "barrier": 0.7},
                        knock_in={"barrier": 0.6, "monitoring": "continuous"})  # fmt: skip


def bs_put_vega(strike: float, vol: float, t: float) -> float:
    """Black–Scholes vega (per unit vol) of the put on spot 1, strike `strike`."""
    d1 = (math.log(1.0 / strike) + (R - Q + 0.5 * vol**2) * t) / (vol * math.sqrt(t))
    return math.exp(-Q * t) * math.sqrt(t) * norm.pdf(d1)


def ssvi_digital(surface: SSVISurface, strike: float, t: float) -> float:
    """Risk-neutral P(S_t ≥ strike·S₀) of the SSVI smile: −∂C/∂K / df by central differences."""
    h = 1e-4

    def call(k: float) -> float:
        return black_scholes_price(1.0, k, R, Q, ssvi_vol(surface, k, t), t, "call")

    return -(call(strike + h) - call(strike - h)) / (2 * h) * math.exp(R * t)


def vanilla_mismatches(paths: int, sampler: str) -> list[str]:
    """Price the put notes under local vol and list those outside the stated tolerance."""
    surface = known_ssvi()
    specs = [put_note(t, k) for t, k in PUT_CASES]
    options = PricingOptions(model="localvol", sampler=sampler, paths=paths, steps_per_year=52, seed=11,
                             target_margin=None)  # fmt: skip
    results = price_many(specs, market_with(quotes_from(surface)), options)
    bad = []
    for (t, k), res in zip(PUT_CASES, results, strict=True):
        df = math.exp(-R * t)
        mc, se = k * (df - res.price), k * res.stderr
        vol = ssvi_vol(surface, k, t)
        reference = black_scholes_price(1.0, k, R, Q, vol, t, "put")
        tolerance = 3 * se + VOL_ALLOWANCE * bs_put_vega(k, vol, t)
        if not abs(mc - reference) <= tolerance:
            bad.append(
                f"T={t:g} K={k:g}: local-vol put {mc:.5f} vs Black–Scholes {reference:.5f} at the SSVI vol {vol:.4f}, "
                f"error {mc - reference:+.5f} ({(mc - reference) / bs_put_vega(k, vol, t) * 100:+.2f} vol points) "
                f"exceeds 3·se + 0.15 vol points·vega = 3·{se:.2e} + {tolerance - 3 * se:.2e}"
            )
    return bad


# ---------------------------------------------------------------------------------------------
# 1. Vanillas: local vol reprices the surface it was built from
# ---------------------------------------------------------------------------------------------


def test_the_quotes_calibrate_back_to_the_known_ssvi() -> None:
    # the premise of the vanilla test: the engine's surface is the one the quotes came from
    surface, fitted = known_ssvi(), surface_of(market_with(quotes_from(known_ssvi())), "X")
    for t in EXPIRIES:
        for k in STRIKES:
            got = float(fitted.implied_vol(math.log(k * SPOT / fwd(t)), t))
            assert got == pytest.approx(ssvi_vol(surface, k, t), abs=1e-4), (t, k)


@pytest.mark.parametrize("sampler", ["sobol", "pseudo"])
def test_local_vol_reproduces_vanilla_puts_through_the_engine(sampler: str) -> None:
    bad = vanilla_mismatches(65_536, sampler)
    assert not bad, "\n".join(bad)


def test_on_a_fine_local_vol_time_grid_the_engine_reproduces_vanilla_puts(monkeypatch: pytest.MonkeyPatch) -> None:
    # A daily local-vol time grid reprices every put within the same tolerance (the grid's resolution in time
    # is not what limits the accuracy).
    monkeypatch.setattr(localvol, "GRID_TIMES_PER_YEAR", 252)
    bad = vanilla_mismatches(65_536, "sobol")
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------------------------------------
# 2. Skew moves the barrier and autocall probabilities
# ---------------------------------------------------------------------------------------------


def _price_both(market: MarketData, paths: int = 32_768):
    base = PricingOptions(paths=paths, seed=3, sampler="sobol", steps_per_year=52, target_margin=None)
    lv = price_many([autocallable()], market, base.model_copy(update={"model": "localvol"}))[0]
    bs = price_many([autocallable()], market, base.model_copy(update={"model": "bs"}))[0]
    return lv, bs


def _binomial_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def test_negative_skew_raises_the_knock_in_probability_and_cheapens_the_note() -> None:
    # Under "bs" the same market prices at its ATM column (the surface's ATM vol term structure).
    surface = known_ssvi()
    lv, bs = _price_both(market_with(quotes_from(surface)))
    n = lv.paths
    ki_se = math.hypot(_binomial_se(lv.knock_in_probability, n), _binomial_se(bs.knock_in_probability, n))
    assert lv.knock_in_probability > bs.knock_in_probability + 5 * ki_se, (
        f"knock-in probability under local vol {lv.knock_in_probability:.4f} should exceed Black–Scholes "
        f"{bs.knock_in_probability:.4f} by 5 binomial SE ({5 * ki_se:.4f}): the downside local vol is higher"
    )
    se = math.hypot(lv.stderr, bs.stderr)
    assert lv.price < bs.price - 5 * se, (
        f"the note under the skew ({lv.price:.5f}) should be cheaper than at the ATM vol ({bs.price:.5f}) "
        f"by more than 5 combined SE ({5 * se:.5f})"
    )
    # A negative skew makes the digital call, i.e. the first autocall at a 100% trigger, more likely.
    p_lv, p_bs = lv.autocall_probability[0], bs.autocall_probability[0]
    p_se = math.hypot(_binomial_se(p_lv, n), _binomial_se(p_bs, n))
    assert p_lv > p_bs + 5 * p_se, (p_lv, p_bs, p_se)
    digital = ssvi_digital(surface, 1.0, 0.25)
    assert abs(p_lv - digital) < abs(p_bs - digital), (
        f"first-call probability under local vol {p_lv:.4f} should be nearer the SSVI digital {digital:.4f} than "
        f"Black–Scholes' {p_bs:.4f}"
    )


def test_on_a_flat_surface_local_vol_and_black_scholes_agree() -> None:
    flat = SurfaceQuotes(
        expiries=list(EXPIRIES), strikes=list(STRIKES), vols=[[ATM_VOL] * len(STRIKES)] * len(EXPIRIES)
    )
    lv, bs = _price_both(market_with(flat), paths=16_384)
    se = math.hypot(lv.stderr, bs.stderr)
    assert abs(lv.price - bs.price) <= 3 * se, (
        f"flat surface: local vol {lv.price:.6f} vs Black–Scholes {bs.price:.6f}, tolerance 3 combined SE {3 * se:.2e}"
    )
    ki_se = math.hypot(_binomial_se(lv.knock_in_probability, lv.paths), _binomial_se(bs.knock_in_probability, bs.paths))
    assert abs(lv.knock_in_probability - bs.knock_in_probability) <= 3 * ki_se
    assert lv.autocall_probability == pytest.approx(bs.autocall_probability, abs=3 * _binomial_se(0.5, lv.paths))


# ---------------------------------------------------------------------------------------------
# 3. Skew steepening of the local-vol grid
# ---------------------------------------------------------------------------------------------


def _ssvi_grid() -> np.ndarray:
    return local_vol_grid(known_ssvi(), np.linspace(0.0, 3.0, 37), GRID_LOG_MONEYNESS)


def test_the_atm_index_is_zero_log_moneyness() -> None:
    assert GRID_LOG_MONEYNESS[ATM_INDEX] == pytest.approx(0.0, abs=1e-12)


def test_steepening_by_one_is_the_identity() -> None:
    grid = _ssvi_grid()
    np.testing.assert_array_equal(steepened(grid, 1.0), grid)


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.5, 2.0, 4.0])
def test_steepening_scales_the_distance_from_the_atm_column_floored_at_a_quarter(factor: float) -> None:
    grid = _ssvi_grid()
    out = steepened(grid, factor)
    atm = grid[:, [ATM_INDEX]]
    assert out.shape == grid.shape
    np.testing.assert_array_equal(out[:, ATM_INDEX], grid[:, ATM_INDEX])  # the ATM level stays
    assert np.all(out >= 0.25 * grid - 1e-15), "a steepened local vol never falls below 25% of the original"
    scaled = atm + factor * (grid - atm)
    free = scaled >= 0.25 * grid
    np.testing.assert_allclose(out[free], scaled[free], rtol=0, atol=1e-14)
    np.testing.assert_allclose(out[~free], 0.25 * grid[~free], rtol=0, atol=1e-15)
    if factor == 0.0:  # no skew at all: the ATM vol everywhere, unless a quarter of the original is above it
        full = np.broadcast_to(atm, grid.shape)
        np.testing.assert_allclose(out, np.maximum(full, 0.25 * grid), rtol=0, atol=1e-15)


def test_a_steep_enough_factor_hits_the_floor_on_the_upside() -> None:
    grid = _ssvi_grid()
    out = steepened(grid, 4.0)
    upside = GRID_LOG_MONEYNESS > 0.3  # local vols below the ATM one: 4x the distance would go negative
    floored = np.isclose(out, 0.25 * grid, rtol=0, atol=1e-15)
    assert floored[:, upside].any() and not floored[:, ATM_INDEX].any()
    assert np.all(out > 0)


def test_surfaces_for_steepens_the_calibrated_grid_and_keeps_the_atm_vol() -> None:
    market = market_with(quotes_from(known_ssvi()))
    surfaces = surfaces_for(market, ["X"], horizon=3.0)
    np.testing.assert_array_equal(surfaces["k"], GRID_LOG_MONEYNESS)
    base, atm = surfaces["X"](1.0)
    steep, atm_steep = surfaces["X"](1.5)
    assert atm == atm_steep == pytest.approx(float(known_ssvi().implied_vol(0.0, 1.0)), abs=1e-4)
    np.testing.assert_allclose(steep, steepened(base, 1.5), rtol=0, atol=0)
    np.testing.assert_array_equal(steep[:, ATM_INDEX], base[:, ATM_INDEX])
    downside = GRID_LOG_MONEYNESS < -0.1
    assert np.all(steep[1:, downside] > base[1:, downside]), "a negative skew steepened puts more vol on the downside"


# ---------------------------------------------------------------------------------------------
# 4. Arbitrageable quotes are refused
# ---------------------------------------------------------------------------------------------


def calendar_arbitrage_quotes() -> SurfaceQuotes:
    """The known quotes with the 2-year ATM vol cut so its total variance falls below the 1-year one."""
    vols = [list(row) for row in quotes_from(known_ssvi()).vols]
    vols[3][4] = 0.6 * vols[2][4]  # 2·(0.6σ)² = 0.72σ² < 1·σ²
    return SurfaceQuotes(expiries=list(EXPIRIES), strikes=list(STRIKES), vols=vols)


def test_calendar_arbitrage_in_the_market_quotes_is_refused_naming_the_quote() -> None:
    market = market_with(calendar_arbitrage_quotes(), name="SX5E")
    options = PricingOptions(model="localvol", paths=1024, target_margin=None)
    with pytest.raises(InvalidInputs) as info:
        price_many([autocallable("SX5E")], market, options)
    assert info.value.field.startswith("underlyings.SX5E.surface.quotes.vols["), info.value.field
    assert info.value.field == "underlyings.SX5E.surface.quotes.vols[3][4]"
    assert "calendar arbitrage" in info.value.reason
    assert str(info.value).startswith("underlyings.SX5E.surface.quotes.vols[3][4]: ")
