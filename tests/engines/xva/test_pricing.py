"""Pricing on paths against independent references.

- t = 0: swaps (spot-starting, forward-starting, seasoned with a fixing), cross-currency swaps, FX forwards, FX
  options (USD-quoted and cross), equity options and forwards, swaptions and CDS against QuantLib on the same
  curves (QuantLib's DiscountingSwapEngine, cash-flow NPVs, Garman–Kohlhagen and Black–Scholes analytic engines
  with deterministic rates, Jamshidian on the same Hull–White parameters, the mid-point CDS engine).
- Paths: with stochastic rates, the mean discounted value at a future date equals the t = 0 value within 3.5
  standard errors for trades with no flow in between (martingale property) — including across a floating
  reset, across currencies, and at an option's expiry, where the mean discounted payoff checks the model
  variance used by the option formula.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import QuantLib as ql

from engines.xva.market import Market, add_months, bootstrap_hazard, sample_market
from engines.xva.pricing import reference_names, trade_values
from engines.xva.scenarios import simulate, time_grid
from engines.xva.trades import (
    CreditDefaultSwap,
    CrossCurrencySwap,
    EquityForward,
    EquityOption,
    FxForward,
    FxOption,
    InterestRateSwap,
    SwapLeg,
    Swaption,
)

DAY_TENORS = [91, 182, 365, 730, 1095, 1825, 2555, 3650, 5475, 7300, 10950]
QL_DC = {"ACT/360": ql.Actual360(), "ACT/365F": ql.Actual365Fixed(), "30/360": ql.Thirty360(ql.Thirty360.BondBasis)}
Z_LIMIT = 3.5


def make_market(rates_vol: bool) -> Market:
    """The sample market on day-based curve nodes (so QuantLib's dates are the same times), with a constant
    Hull–White σ per currency, or σ = 0 (deterministic rates) for the analytic FX and equity references."""
    d = sample_market().model_dump(mode="json")
    for ccy in d["currencies"].values():
        ccy["discount"]["tenors"] = [n / 365 for n in DAY_TENORS]
        if not rates_vol:
            ccy["hull_white"]["volatilities"] = [0.0]
    return Market.model_validate(d)


@pytest.fixture(scope="module")
def market() -> Market:
    return make_market(rates_vol=True)


@pytest.fixture(scope="module")
def flat_market() -> Market:
    return make_market(rates_vol=False)


def scenario(market: Market, paths: int = 1, grid: str = "1M,1Y", seed: int = 1):
    return simulate(market, time_grid(grid, market.as_of), paths, seed)


def qd(d: date) -> ql.Date:
    return ql.Date(d.day, d.month, d.year)


def ql_setup(market: Market) -> dict[str, ql.YieldTermStructureHandle]:
    today = qd(market.as_of)
    ql.Settings.instance().evaluationDate = today
    out = {}
    for c, cm in market.currencies.items():
        dates = [today] + [today + n for n in DAY_TENORS]
        dfs = [1.0] + [float(cm.discount.discount(n / 365)) for n in DAY_TENORS]
        ts = ql.DiscountCurve(dates, dfs, ql.Actual365Fixed())
        ts.enableExtrapolation()
        out[c] = ql.YieldTermStructureHandle(ts)
    return out


def sched(start: date, end: date, tenor: str) -> ql.Schedule:
    return ql.Schedule(
        qd(start), qd(end), ql.Period(tenor), ql.NullCalendar(), ql.Unadjusted, ql.Unadjusted,
        ql.DateGeneration.Backward, False,
    )  # fmt: skip


def ql_index(ccy: str, tenor: str, dc: str, handle) -> ql.IborIndex:
    return ql.IborIndex(f"IDX{ccy}{tenor}", ql.Period(tenor), 0, ql.USDCurrency(), ql.NullCalendar(), ql.Unadjusted,
                        False, QL_DC[dc], handle)  # fmt: skip


def value0(trade, market: Market) -> float:
    return float(trade_values([trade], scenario(market))[0, 0, 0])


# ---------------------------------------------------------------------------------------------
# t = 0 against QuantLib
# ---------------------------------------------------------------------------------------------

AS_OF = date(2025, 6, 30)
IRS_CASES = [
    # currency, start, maturity, pay fixed, spread, fixing of the running coupon
    ("USD", AS_OF, date(2035, 6, 30), True, 0.0, None),
    ("EUR", date(2026, 3, 15), date(2033, 9, 15), False, 0.001, None),
    ("GBP", date(2023, 11, 20), date(2031, 11, 20), True, 0.0, 0.0412),
    ("JPY", date(2024, 2, 29), date(2044, 2, 29), False, -0.0005, 0.0031),
    ("CHF", AS_OF + timedelta(days=3), date(2027, 7, 3), True, 0.0, None),
]


@pytest.mark.parametrize(("ccy", "start", "maturity", "pay_fixed", "spread", "fixing"), IRS_CASES)
def test_swap_at_t0_matches_quantlib(market, ccy, start, maturity, pay_fixed, spread, fixing):
    from engines.xva.trades import CONVENTIONS, schedule

    conv = CONVENTIONS[ccy]
    trade = InterestRateSwap(
        trade_id="S", netting_set_id="N", currency=ccy, notional=1e8, start_date=start, maturity_date=maturity,
        fixed_rate=0.031, pay_fixed=pay_fixed, float_spread=spread, current_fixing=fixing,
    )  # fmt: skip
    handles = ql_setup(market)
    index = ql_index(ccy, conv.float_frequency, conv.float_day_count, handles[ccy])
    if fixing is not None:
        starts, ends = schedule(start, maturity, conv.float_frequency)
        running = next(s for s, e in zip(starts, ends, strict=True) if s <= AS_OF < e)
        index.addFixing(qd(running), fixing)
    swap = ql.VanillaSwap(
        ql.VanillaSwap.Payer if pay_fixed else ql.VanillaSwap.Receiver, 1e8,
        sched(start, maturity, conv.fixed_frequency), 0.031, QL_DC[conv.fixed_day_count],
        sched(start, maturity, conv.float_frequency), index, spread, QL_DC[conv.float_day_count],
    )  # fmt: skip
    swap.setPricingEngine(ql.DiscountingSwapEngine(handles[ccy]))
    assert value0(trade, market) == pytest.approx(swap.NPV() * market.fx_spot(ccy), abs=1e-6 * 1e8)


def _ql_leg_npv(leg: SwapLeg, start: date, maturity: date, handles, exchange: bool, as_of: date) -> float:
    from engines.xva.trades import CONVENTIONS

    conv = CONVENTIONS[leg.currency]
    h = handles[leg.currency]
    if leg.fixed_rate is not None:
        flows = ql.FixedRateLeg(
            sched(start, maturity, conv.fixed_frequency), QL_DC[conv.fixed_day_count], [leg.notional], [leg.fixed_rate]
        )
    else:
        index = ql_index(leg.currency, conv.float_frequency, conv.float_day_count, h)
        flows = ql.IborLeg([leg.notional], sched(start, maturity, conv.float_frequency), index,
                           QL_DC[conv.float_day_count], ql.Unadjusted, [0], [1.0], [leg.spread])  # fmt: skip
    npv = ql.CashFlows.npv(flows, h, False)
    if exchange:
        if start > as_of:
            npv -= leg.notional * h.discount(qd(start))
        npv += leg.notional * h.discount(qd(maturity))
    return npv


@pytest.mark.parametrize("fixed_other", [True, False])
def test_cross_currency_swap_at_t0_matches_quantlib(market, fixed_other):
    start, maturity = date(2025, 9, 30), date(2032, 9, 30)
    usd = SwapLeg(currency="USD", notional=1.1e8)
    eur = (
        SwapLeg(currency="EUR", notional=1e8, fixed_rate=0.027)
        if fixed_other
        else SwapLeg(currency="EUR", notional=1e8, spread=-0.0012)
    )
    trade = CrossCurrencySwap(
        trade_id="X", netting_set_id="N", pay_leg=usd, receive_leg=eur, start_date=start, maturity_date=maturity
    )
    handles = ql_setup(market)
    want = _ql_leg_npv(eur, start, maturity, handles, True, AS_OF) * market.fx_spot("EUR") - _ql_leg_npv(
        usd, start, maturity, handles, True, AS_OF
    )
    assert value0(trade, market) == pytest.approx(want, abs=1e-6 * 1e8)


def test_fx_forward_at_t0_is_the_discounted_forward(market):
    handles = ql_setup(market)
    delivery = date(2027, 1, 15)
    trade = FxForward(trade_id="F", netting_set_id="N", buy_currency="JPY", buy_amount=1.5e10, sell_currency="GBP",
                      sell_amount=7.8e7, delivery_date=delivery)  # fmt: skip
    want = 1.5e10 * market.fx_spot("JPY") * handles["JPY"].discount(qd(delivery)) - 7.8e7 * market.fx_spot(
        "GBP"
    ) * handles["GBP"].discount(qd(delivery))
    assert value0(trade, market) == pytest.approx(want, rel=1e-12)


def _gk(
    spot, strike, vol, dom: ql.YieldTermStructureHandle, fgn: ql.YieldTermStructureHandle, expiry: date, call: bool
):
    today = ql.Settings.instance().evaluationDate
    process = ql.BlackScholesMertonProcess(  # Garman–Kohlhagen: the foreign curve as the dividend yield
        ql.QuoteHandle(ql.SimpleQuote(spot)), fgn, dom,
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, ql.Actual365Fixed())),
    )  # fmt: skip
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, strike), ql.EuropeanExercise(qd(expiry))
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return option.NPV()


@pytest.mark.parametrize(
    ("foreign", "domestic", "call"), [("EUR", "USD", True), ("JPY", "USD", False), ("EUR", "JPY", True)]
)
def test_fx_option_at_t0_matches_garman_kohlhagen(flat_market, foreign, domestic, call):
    m = flat_market
    handles = ql_setup(m)
    expiry = date(2026, 12, 18)
    spot = m.fx_spot(foreign) / m.fx_spot(domestic)
    strike = spot * 1.03
    # the model's vol of the cross: σ² = σ_f² + σ_d² − 2ρσ_fσ_d (σ = 0 for USD)
    vf = m.fx[foreign].volatility if foreign != "USD" else 0.0
    vd = m.fx[domestic].volatility if domestic != "USD" else 0.0
    corr = m.correlation_matrix()
    rho = corr[m.driver_names.index(f"FX.{foreign}"), m.driver_names.index(f"FX.{domestic}")] if vd and vf else 0.0
    vol = np.sqrt(vf * vf + vd * vd - 2 * rho * vf * vd)
    trade = FxOption(trade_id="O", netting_set_id="N", foreign=foreign, domestic=domestic, notional=1e7, strike=strike,
                     expiry_date=expiry, call=call, long=False)  # fmt: skip
    want = -1e7 * _gk(spot, strike, vol, handles[domestic], handles[foreign], expiry, call) * m.fx_spot(domestic)
    assert value0(trade, m) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(("name", "call"), [("SPX", True), ("SX5E", False), ("NKY", True)])
def test_equity_option_and_forward_at_t0_match_black_scholes(flat_market, name, call):
    m = flat_market
    handles = ql_setup(m)
    spec = m.equities[name]
    expiry = date(2027, 3, 19)
    strike = spec.spot * 0.95
    today = qd(m.as_of)
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spec.spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, spec.dividend_yield, ql.Actual365Fixed())),
        handles[spec.currency],
        ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(today, ql.NullCalendar(), spec.volatility, ql.Actual365Fixed())
        ),
    )
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, strike), ql.EuropeanExercise(qd(expiry))
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    fx = m.fx_spot(spec.currency)
    trade = EquityOption(
        trade_id="E", netting_set_id="N", underlying=name, quantity=1000, strike=strike, expiry_date=expiry, call=call
    )
    assert value0(trade, m) == pytest.approx(1000 * option.NPV() * fx, rel=1e-9)
    fwd = EquityForward(
        trade_id="G", netting_set_id="N", underlying=name, quantity=1000, strike=strike, maturity_date=expiry
    )
    t = (expiry - m.as_of).days / 365
    want = (
        1000
        * (spec.spot * np.exp(-spec.dividend_yield * t) - strike * handles[spec.currency].discount(qd(expiry)))
        * fx
    )
    assert value0(fwd, m) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(
    ("ccy", "payer", "long", "settlement"),
    [("USD", True, True, "physical"), ("EUR", False, False, "cash"), ("GBP", True, False, "physical")],
)
def test_swaption_at_t0_matches_quantlib_jamshidian(market, ccy, payer, long, settlement):
    from engines.xva.trades import CONVENTIONS

    conv = CONVENTIONS[ccy]
    handles = ql_setup(market)
    expiry, maturity = add_months(AS_OF, 18), add_months(AS_OF, 18 + 84)
    strike = 0.033
    spec = market.currencies[ccy].hull_white
    trade = Swaption(trade_id="W", netting_set_id="N", currency=ccy, notional=5e7, expiry_date=expiry,
                     maturity_date=maturity, strike=strike, payer=payer, long=long, settlement=settlement)  # fmt: skip
    index = ql_index(ccy, conv.float_frequency, conv.float_day_count, handles[ccy])
    swap = ql.VanillaSwap(
        ql.VanillaSwap.Payer if payer else ql.VanillaSwap.Receiver, 5e7,
        sched(expiry, maturity, conv.fixed_frequency), strike, QL_DC[conv.fixed_day_count],
        sched(expiry, maturity, conv.float_frequency), index, 0.0, QL_DC[conv.float_day_count],
    )  # fmt: skip
    option = ql.Swaption(swap, ql.EuropeanExercise(qd(expiry)))
    option.setPricingEngine(
        ql.JamshidianSwaptionEngine(ql.HullWhite(handles[ccy], spec.mean_reversion, spec.volatilities[0]))
    )
    want = (1 if long else -1) * option.NPV() * market.fx_spot(ccy)
    assert value0(trade, market) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(
    ("start", "years", "buyer"), [(AS_OF, 5, True), (date(2024, 3, 20), 5, False), (date(2025, 2, 10), 3, True)]
)
def test_cds_at_t0_matches_quantlib_midpoint_engine(market, start, years, buyer):
    handles = ql_setup(market)
    name = "REF07"
    curve = market.credit_curves[name]
    hz = bootstrap_hazard(curve, market.as_of, market.currencies["USD"].discount)
    today = qd(market.as_of)
    nodes = [today] + [today + round(float(t) * 365) for t in hz.times]
    hazard = ql.HazardRateCurve(nodes, [float(hz.hazards[0]), *map(float, hz.hazards)], ql.Actual365Fixed())
    hazard.enableExtrapolation()
    maturity = add_months(start, 12 * years)
    cds = ql.CreditDefaultSwap(
        ql.Protection.Buyer if buyer else ql.Protection.Seller, 1e7, 0.01, sched(start, maturity, "3M"), ql.Unadjusted,
        ql.Actual360(), True, True, qd(start), ql.FaceValueClaim(), ql.Actual360(), False,
    )  # fmt: skip
    cds.setPricingEngine(
        ql.MidPointCdsEngine(ql.DefaultProbabilityTermStructureHandle(hazard), curve.recovery, handles["USD"])
    )
    trade = CreditDefaultSwap(trade_id="C", netting_set_id="N", reference=name, notional=1e7, spread=0.01,
                              start_date=start, maturity_date=maturity, protection_buyer=buyer)  # fmt: skip
    # QuantLib puts the default on a whole date mid-period, we at the exact mid-time: agree to ~1e-6 of notional
    assert value0(trade, market) == pytest.approx(cds.NPV(), abs=2e-6 * 1e7)
    assert reference_names(market, [name])[0].volatility > 0


# ---------------------------------------------------------------------------------------------
# Martingale property on the paths (stochastic rates, all correlations on)
# ---------------------------------------------------------------------------------------------

GRID = "1M,3M:quarterly,3Y:annual,6Y"


@pytest.fixture(scope="module")
def paths(market):
    return simulate(market, time_grid(GRID, market.as_of, [14]), 6000, seed=99)


def _z(disc: np.ndarray, v0: float) -> float:
    return (disc.mean() - v0) / (disc.std(ddof=1) / np.sqrt(disc.size))


def martingale_trades(as_of: date) -> list:
    y1, y2, y3 = add_months(as_of, 12), add_months(as_of, 24), add_months(as_of, 36)
    return [
        # 6M floating coupons: the first resets at 1Y and is paid at 18M, so at 15M it is fixed on the path
        InterestRateSwap(trade_id="irs", netting_set_id="N", currency="EUR", notional=1e8, start_date=y1,
                         maturity_date=add_months(y1, 60), fixed_rate=0.026, pay_fixed=True),
        CrossCurrencySwap(trade_id="xccy", netting_set_id="N", start_date=y2, maturity_date=add_months(y2, 48),
                          pay_leg=SwapLeg(currency="USD", notional=1.08e8),
                          receive_leg=SwapLeg(currency="EUR", notional=1e8, fixed_rate=0.026)),
        FxForward(trade_id="fxf", netting_set_id="N", buy_currency="GBP", buy_amount=5e7, sell_currency="JPY",
                  sell_amount=9.4e9, delivery_date=y3),
        FxOption(trade_id="fxo", netting_set_id="N", foreign="EUR", domestic="JPY", notional=5e7, strike=158.0,
                 expiry_date=y2, call=True),
        EquityOption(trade_id="eqo", netting_set_id="N", underlying="SX5E", quantity=1e4, strike=5000.0,
                     expiry_date=y2, call=False),
        Swaption(trade_id="swo", netting_set_id="N", currency="GBP", notional=1e8, expiry_date=y2,
                 maturity_date=add_months(y2, 60), strike=0.04, payer=True),
    ]  # fmt: skip


def test_discounted_values_are_martingales_up_to_the_first_flow(paths):
    trades = martingale_trades(paths.market.as_of)
    values = trade_values(trades, paths)
    times = paths.grid.times
    # the dates to check per trade: strictly before its first flow; options also at expiry (the payoff itself)
    checks = {
        "irs": [1.0, 1.002],
        "xccy": [1.0, 1.5],
        "fxf": [1.0, 2.0],
        "fxo": [1.0],
        "eqo": [0.5, 1.0],
        "swo": [1.0, 2.0],
    }
    for i, trade in enumerate(trades):
        v0 = values[i, 0, 0]
        for t in checks[trade.trade_id]:
            k = int(np.argmin(np.abs(times - t)))
            disc = values[i, k] * paths.numeraire[k]
            z = _z(disc, v0)
            assert abs(z) < Z_LIMIT, (
                f"{trade.trade_id} at t={times[k]:.3f}: mean {disc.mean():.6g} vs {v0:.6g}, z={z:.2f}"
            )


def test_option_payoffs_at_expiry_average_to_the_t0_value(paths):
    """At expiry the kernels' value is gone (settled): average the discounted payoff computed here from the paths."""
    m = paths.market
    trades = martingale_trades(m.as_of)
    values = trade_values(trades, paths)
    times = paths.grid.times
    k = int(np.argmin(np.abs(times - 2.0)))
    eur, jpy = paths.currency_index("EUR"), paths.currency_index("JPY")
    cross = paths.fx[eur, k] / paths.fx[jpy, k]
    fx_payoff = 5e7 * np.maximum(cross - 158.0, 0.0) * paths.fx[jpy, k]
    spec = m.equities["SX5E"]
    e = paths.equities.index("SX5E")
    eq_payoff = 1e4 * np.maximum(5000.0 - paths.equity[e, k], 0.0) * paths.fx[eur, k]
    for name, payoff, v0 in (("fxo", fx_payoff, values[3, 0, 0]), ("eqo", eq_payoff, values[4, 0, 0])):
        z = _z(payoff * paths.numeraire[k], v0)
        assert abs(z) < Z_LIMIT, f"{name}: discounted payoff {np.mean(payoff * paths.numeraire[k]):.6g} vs {v0:.6g}"
    assert spec.currency == "EUR"


def test_chebyshev_aggregation_equals_direct_valuation_on_a_mixed_book():
    """The default method (per netting set and currency, Chebyshev in the state) against valuing every row on every
    path: seasoned swaps with fixings, cross-currency swaps, swaptions (both sides of expiry), CDS, options."""
    from engines.xva.exposure import book_scenarios
    from engines.xva.generator import sample_book
    from engines.xva.pricing import compile_trades, value_on_paths

    m = sample_market()
    book = sample_book(seed=12, counterparties=4, trades=160)
    scen = book_scenarios(book, m, "1W,1M:monthly,1Y:quarterly,10Y:annual,30Y", 300, seed=3)
    slot = np.array([int(t.trade_id[1:]) % 3 for t in book.trades])
    tables = compile_trades(book.trades, slot, scen, 3)
    assert len(tables.gates["slot"]) and len(tables.cds["slot"]) and (tables.coupons["fix_date"] > 0).any()
    fast = value_on_paths(tables, scen)
    slow = value_on_paths(tables, scen, method="direct")
    gross = sum(getattr(t, "notional", 0.0) or 0.0 for t in book.trades)
    assert np.abs(fast - slow).max() < 1e-10 * gross
    assert np.abs(slow).max() > 1e-3 * gross
