"""Exposures against semi-analytic references, collateral behaviour, the Basel profile definitions, and the run.

- A single uncollateralised FX forward: its EE is a call on the forward. With deterministic rates the
  undiscounted EE(t) = N·P_d(t,T)·Black(F, K, σ²t); with stochastic rates the discounted EE
  E[D(t)V⁺(t)] = N·P_d(0,T)·Black(F, K, v(0,t;T)), v integrated here by quadrature from the model's vols and
  correlations — both compared within 3.5 standard errors.
- A single payer swap at a reset date: E[D(t)V⁺(t)] is the European swaption on the rest of the swap, priced by
  QuantLib's Jamshidian engine on the same Hull–White model.
- Collateral: zero threshold and MPOR → no exposure; a threshold caps exposure at the threshold exactly; the
  minimum transfer amount against an independent loop; initial margin received; a 10-day MPOR against the
  lagged values.
- EEPE: effective EE non-decreasing, first-year time weights, shorter maturities.
- The run: chunking does not change results; a what-if trade on the cached paths equals a full rerun.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import QuantLib as ql
from scipy.integrate import quad
from scipy.stats import norm

from engines.xva.exposure import (
    ExposureCache,
    book_scenarios,
    collateral_arrays,
    collateralised_exposures,
    effective_ee,
    exposure_profile,
    horizon_table,
    run_exposures,
    time_average,
    what_if,
)
from engines.xva.generator import sample_book
from engines.xva.market import Market, add_months, sample_market
from engines.xva.pricing import trade_values
from engines.xva.scenarios import simulate, time_grid
from engines.xva.trades import CSA, Book, Counterparty, FxForward, InterestRateSwap, NettingSet

Z_LIMIT = 3.5
DAY_TENORS = [91, 182, 365, 730, 1095, 1825, 2555, 3650, 5475, 7300, 10950]
AS_OF = date(2025, 6, 30)


def make_market(rates_vol: bool) -> Market:
    d = sample_market().model_dump(mode="json")
    for ccy in d["currencies"].values():
        ccy["discount"]["tenors"] = [n / 365 for n in DAY_TENORS]
        if not rates_vol:
            ccy["hull_white"]["volatilities"] = [0.0]
    return Market.model_validate(d)


def black_call(f, k, var):
    sd = np.sqrt(var)
    d1 = np.log(f / k) / sd + 0.5 * sd
    return f * norm.cdf(d1) - k * norm.cdf(d1 - sd)


def forward_eur() -> FxForward:
    return FxForward(trade_id="F", netting_set_id="N", buy_currency="EUR", buy_amount=1e8, sell_currency="USD",
                     sell_amount=1.1e8, delivery_date=date(2028, 6, 30))  # fmt: skip


def z_score(samples: np.ndarray, target: float) -> float:
    return (samples.mean() - target) / (samples.std(ddof=1) / np.sqrt(samples.size) + 1e-300)


def test_fx_forward_ee_matches_black_with_deterministic_rates():
    m = make_market(rates_vol=False)
    scen = simulate(m, time_grid("1M,3M:quarterly,3Y", m.as_of), 5000, seed=3)
    v = trade_values([forward_eur()], scen)[0]
    grid = scen.grid
    T = (date(2028, 6, 30) - m.as_of).days / 365
    usd, eur = m.currencies["USD"].discount, m.currencies["EUR"].discount
    f0 = m.fx_spot("EUR") * float(eur.discount(T) / usd.discount(T))
    sigma = m.fx["EUR"].volatility
    for k in (1, 4, 8, 12):
        t = grid.times[grid.exposure[k]]
        pos = np.maximum(v[grid.exposure[k]], 0.0)
        neg = np.minimum(v[grid.exposure[k]], 0.0)
        p_tT = float(usd.discount(T) / usd.discount(t))
        ee = 1e8 * p_tT * black_call(f0, 1.1, sigma**2 * t)
        ene = ee - 1e8 * p_tT * (f0 - 1.1)  # put–call parity
        assert abs(z_score(pos, ee)) < Z_LIMIT, f"EE at t={t:.2f}: {pos.mean():.6g} vs {ee:.6g}"
        assert abs(z_score(neg, -ene)) < Z_LIMIT, f"ENE at t={t:.2f}: {neg.mean():.6g} vs {-ene:.6g}"


def _model_forward_variance(m: Market, t: float, T: float) -> float:
    """Variance of ln(X_EUR P_EUR(·,T)/P_USD(·,T)) over (0, t), by quadrature of the model's instantaneous vols."""
    hw_u, hw_e = m.currencies["USD"].hull_white, m.currencies["EUR"].hull_white
    a_u, s_u = hw_u.mean_reversion, hw_u.volatilities[0]
    a_e, s_e = hw_e.mean_reversion, hw_e.volatilities[0]
    s_x = m.fx["EUR"].volatility
    c = m.correlation_matrix()
    i = {n: k for k, n in enumerate(m.driver_names)}
    r_xe, r_xu, r_eu = c[i["FX.EUR"], i["IR.EUR"]], c[i["FX.EUR"], i["IR.USD"]], c[i["IR.EUR"], i["IR.USD"]]

    def inst(u):
        be = (1 - np.exp(-a_e * (T - u))) / a_e
        bu = (1 - np.exp(-a_u * (T - u))) / a_u
        # d ln F = σ_X dW_X − σ_e B_e dW_e + σ_u B_u dW_u
        return (
            s_x**2 + (s_e * be) ** 2 + (s_u * bu) ** 2
            - 2 * r_xe * s_x * s_e * be + 2 * r_xu * s_x * s_u * bu - 2 * r_eu * s_e * be * s_u * bu
        )  # fmt: skip

    return quad(inst, 0.0, t, epsabs=1e-14)[0]


def test_fx_forward_discounted_ee_matches_black_with_stochastic_rates():
    m = make_market(rates_vol=True)
    scen = simulate(m, time_grid("1M,3M:quarterly,3Y", m.as_of), 5000, seed=4)
    v = trade_values([forward_eur()], scen)[0]
    grid = scen.grid
    T = (date(2028, 6, 30) - m.as_of).days / 365
    usd, eur = m.currencies["USD"].discount, m.currencies["EUR"].discount
    f0 = m.fx_spot("EUR") * float(eur.discount(T) / usd.discount(T))
    for k in (2, 6, 12):
        d = grid.exposure[k]
        t = grid.times[d]
        disc_pos = np.maximum(v[d], 0.0) * scen.numeraire[d]
        want = 1e8 * float(usd.discount(T)) * black_call(f0, 1.1, _model_forward_variance(m, t, T))
        assert abs(z_score(disc_pos, want)) < Z_LIMIT, f"t={t:.2f}: {disc_pos.mean():.6g} vs {want:.6g}"


def test_swap_discounted_ee_at_a_reset_is_quantlibs_swaption():
    m = make_market(rates_vol=True)
    scen = simulate(m, time_grid("1M,3M:quarterly,3Y", m.as_of), 5000, seed=5)
    swap = InterestRateSwap(trade_id="S", netting_set_id="N", currency="USD", notional=1e8, start_date=AS_OF,
                            maturity_date=add_months(AS_OF, 60), fixed_rate=0.038, pay_fixed=True)  # fmt: skip
    v = trade_values([swap], scen)[0]
    d = int(np.argmin(np.abs(scen.grid.times - 2.0)))
    assert scen.grid.dates[d] == np.datetime64(add_months(AS_OF, 24))
    disc_pos = np.maximum(v[d], 0.0) * scen.numeraire[d]
    today = ql.Date(AS_OF.day, AS_OF.month, AS_OF.year)
    ql.Settings.instance().evaluationDate = today
    curve = m.currencies["USD"].discount
    ts = ql.DiscountCurve(
        [today] + [today + n for n in DAY_TENORS],
        [1.0] + [float(curve.discount(n / 365)) for n in DAY_TENORS],
        ql.Actual365Fixed(),
    )
    handle = ql.YieldTermStructureHandle(ts)
    start, end = add_months(AS_OF, 24), add_months(AS_OF, 60)

    def sched(tenor):
        return ql.Schedule(ql.Date(start.day, start.month, start.year), ql.Date(end.day, end.month, end.year),
                           ql.Period(tenor), ql.NullCalendar(), ql.Unadjusted, ql.Unadjusted,
                           ql.DateGeneration.Backward, False)  # fmt: skip

    index = ql.IborIndex(
        "I", ql.Period("3M"), 0, ql.USDCurrency(), ql.NullCalendar(), ql.Unadjusted, False, ql.Actual360(), handle
    )
    underlying = ql.VanillaSwap(ql.VanillaSwap.Payer, 1e8, sched("6M"), 0.038, ql.Thirty360(ql.Thirty360.BondBasis),
                                sched("3M"), index, 0.0, ql.Actual360())  # fmt: skip
    option = ql.Swaption(underlying, ql.EuropeanExercise(ql.Date(start.day, start.month, start.year)))
    hw = m.currencies["USD"].hull_white
    option.setPricingEngine(ql.JamshidianSwaptionEngine(ql.HullWhite(handle, hw.mean_reversion, hw.volatilities[0])))
    assert abs(z_score(disc_pos, option.NPV())) < Z_LIMIT, f"{disc_pos.mean():.6g} vs QuantLib {option.NPV():.6g}"


# ---------------------------------------------------------------------------------------------
# Collateral
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_set():
    """A few swaps and FX forwards in one netting set, valued on 2,000 paths with 10-day call dates."""
    m = sample_market()
    book = sample_book(seed=2, counterparties=3, trades=40)
    trades = [t for t in book.trades if t.type in ("irs", "fx_forward", "xccy")][:12]
    scen = simulate(m, time_grid("1W,1M:monthly,1Y:quarterly,5Y", m.as_of, [14]), 2000, seed=8)
    values = trade_values(trades, scen).sum(axis=0)[None]
    return scen, values


def exposures(scen, values, csa):
    return collateralised_exposures(values, scen, collateral_arrays([csa], scen))


def test_zero_threshold_and_no_mpor_leave_no_exposure(small_set):
    scen, values = small_set
    uncoll, _ = exposures(scen, values, None)
    assert uncoll[0].mean() > 1e5
    for ccy in ("USD", "EUR"):
        pos, neg = exposures(scen, values, CSA(currency=ccy, margin_period_of_risk_days=0))
        assert np.abs(pos).max() < 1e-6 and np.abs(neg).max() < 1e-6


def test_threshold_caps_exposure_exactly(small_set):
    scen, values = small_set
    uncoll, _ = exposures(scen, values, None)
    pos, _ = exposures(scen, values, CSA(threshold_received=2e6, threshold_posted=2e6, margin_period_of_risk_days=0))
    np.testing.assert_allclose(pos[0], np.minimum(uncoll[0], 2e6), atol=1e-6)
    assert pos.mean(axis=2).max() <= 2e6


def test_minimum_transfer_amount_against_an_independent_loop(small_set):
    scen, values = small_set
    mta = 1.5e6
    pos, neg = exposures(scen, values, CSA(minimum_transfer_amount=mta, margin_period_of_risk_days=0))
    v = values[0][scen.grid.exposure]  # [date, path]
    balance = v[0].copy()
    want_pos = np.empty_like(v)
    for k in range(v.shape[0]):
        move = np.abs(v[k] - balance) >= mta
        balance = np.where(move, v[k], balance)
        want_pos[k] = np.maximum(v[k] - balance, 0.0)
    np.testing.assert_allclose(pos[0], want_pos, atol=1e-6)
    assert pos.max() < mta and neg.min() > -mta
    assert (pos > 0).mean() > 0.1  # the MTA does leave exposure


def test_mpor_exposure_is_the_move_over_the_margin_period(small_set):
    scen, values = small_set
    grid = scen.grid
    pos, _ = exposures(scen, values, CSA(margin_period_of_risk_days=10))
    v = values[0]
    want = np.maximum(v[grid.exposure] - v[grid.lags[14]], 0.0)
    np.testing.assert_allclose(pos[0], want, atol=1e-6)
    uncoll, _ = exposures(scen, values, None)
    assert 0 < pos[0, 5:].mean() < 0.6 * uncoll[0, 5:].mean()


def test_initial_margin_received_covers_the_mpor_exposure(small_set):
    scen, values = small_set
    pos, _ = exposures(scen, values, CSA(margin_period_of_risk_days=10))
    big_im = float(np.quantile(pos, 0.999)) * 2
    pos_im, neg_im = exposures(
        scen, values, CSA(margin_period_of_risk_days=10, initial_margin_received=big_im, initial_margin_posted=big_im)
    )
    assert (pos_im > 0).mean() < 5e-4
    assert (neg_im < 0).mean() < 5e-4


# ---------------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------------


def test_eepe_and_epe_follow_the_basel_definitions():
    times = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 2.0])
    ee = np.array([1.0, 3.0, 2.0, 4.0, 1.0, 9.0])
    np.testing.assert_array_equal(effective_ee(ee), [1, 3, 3, 4, 4, 9])
    # first year: weights 0.25 each on t = 0.25, 0.5, 0.75, 1.0
    assert time_average(ee, times, 1.0) == pytest.approx((3 + 2 + 4 + 1) / 4)
    assert time_average(effective_ee(ee), times, 1.0) == pytest.approx((3 + 3 + 4 + 4) / 4)
    # a netting set maturing at 0.5y averages over its life only
    assert time_average(effective_ee(ee), times, 0.5) == pytest.approx((3 + 3) / 2)
    pos = np.repeat(ee[:, None], 4, axis=1)
    profile = exposure_profile("N", times, pos, -pos, np.ones_like(pos), maturity=3.0)
    assert profile.eepe == pytest.approx(3.5) and profile.epe == pytest.approx(2.5)
    np.testing.assert_allclose(profile.pfe95, ee)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def test_run_is_independent_of_chunking_and_what_if_matches_a_rerun():
    m = sample_market()
    book = sample_book(seed=4, counterparties=6, trades=50)
    scen = book_scenarios(book, m, "1W,1M:monthly,1Y:quarterly,5Y:annual,10Y", 400, seed=21)
    seen = []
    cache = ExposureCache(scen, dtype=np.float64)
    one = run_exposures(
        book, m, scenarios=scen, max_chunk_trades=10, max_chunk_sets=2, cache=cache, on_chunk=seen.append
    )
    two = run_exposures(book, m, scenarios=scen, max_chunk_trades=10_000, max_chunk_sets=100)
    assert one.chunks > two.chunks == 1
    for ns, p in one.profiles.items():
        np.testing.assert_allclose(p.ee, two.profiles[ns].ee, rtol=1e-12, atol=1e-6)
        np.testing.assert_allclose(p.pfe99, two.profiles[ns].pfe99, rtol=1e-12, atol=1e-6)
    assert sum(len(c.netting_set_ids) for c in seen) == len(book.netting_sets)
    assert all(c.credit is not None and c.credit.intensity.shape[1] == len(scen.grid.exposure) for c in seen)
    table = horizon_table(next(iter(one.profiles.values())), scen)
    assert list(table) == ["1D", "1W", "2W", "1M", "3M", "6M", "1Y", "2Y", "3Y", "5Y", "7Y", "10Y"]
    # what-if: one more swap in the largest collateralised netting set
    target = next(n for n in book.netting_sets if n.csa is not None)
    extra = InterestRateSwap(
        trade_id="WHATIF", netting_set_id=target.netting_set_id, currency="EUR", notional=2e8,
        start_date=AS_OF, maturity_date=date(2032, 6, 30), fixed_rate=0.024, pay_fixed=False,
    )  # fmt: skip
    fast, _, _ = what_if(cache, book, target.netting_set_id, [extra])
    bigger = Book(counterparties=book.counterparties, netting_sets=book.netting_sets, trades=[*book.trades, extra])
    full = run_exposures(bigger, m, scenarios=scen, netting_sets=[target.netting_set_id]).profiles[
        target.netting_set_id
    ]
    np.testing.assert_allclose(fast.ee, full.ee, rtol=1e-10, atol=1e-4)
    np.testing.assert_allclose(fast.pfe95, full.pfe95, rtol=1e-10, atol=1e-4)
    assert not np.allclose(fast.ee, one.profiles[target.netting_set_id].ee)
    assert isinstance(bigger.counterparties[0], Counterparty) and isinstance(target, NettingSet)
