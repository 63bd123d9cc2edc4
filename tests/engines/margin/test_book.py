"""The book's models and its arrays: instrument analytics against QuantLib, closed forms and finite differences;
loadings against full revaluation; cross-reference validation with errors that name the path.

References: QuantLib's BlackCalculator and Bachelier formula (options), QuantLib's VanillaSwap on a flat curve
(whose par rate is that flat rate, so its NPV is exactly N·A·(S − K)), the geometric-series closed form of the
risky annuity (CDS), the common Black–Scholes engine, and hand computations of linear loadings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import QuantLib as ql
from pydantic import ValidationError

from engines.common.black_scholes import black_scholes_delta, black_scholes_price
from engines.margin import instruments as ins
from engines.margin.arrays import ASSET_CLASSES, FactorHistory
from engines.margin.book import (
    Book,
    RiskFactor,
    book_arrays,
    describe_validation_error,
    parse_factor_id,
)
from engines.margin.files import LoadedBook
from engines.registry import InvalidInputs

# -- instrument analytics -------------------------------------------------------------------------

OPTIONS = [  # spot, strike, years, rate, carry yield, vol, call
    (100.0, 95.0, 0.5, 0.03, 0.01, 0.2, True),
    (100.0, 110.0, 2.0, 0.01, 0.03, 0.35, False),
    (6500.0, 6600.0, 0.33, 0.037, 0.013, 0.17, True),
    (1.10, 1.08, 0.25, 0.037, 0.02, 0.075, False),
]


@pytest.mark.parametrize(("s", "k", "t", "r", "q", "vol", "call"), OPTIONS)
def test_black_scholes_matches_quantlib(
    s: float, k: float, t: float, r: float, q: float, vol: float, call: bool
) -> None:
    g = ins.black_scholes(s, k, t, r, q, vol, call)
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k)
    calc = ql.BlackCalculator(payoff, s * math.exp((r - q) * t), vol * math.sqrt(t), math.exp(-r * t))
    assert float(g.value) == pytest.approx(calc.value(), rel=1e-10)
    assert float(g.delta) == pytest.approx(calc.delta(s), rel=1e-10)
    assert float(g.gamma) == pytest.approx(calc.gamma(s), rel=1e-9)
    assert float(g.vega) == pytest.approx(calc.vega(t), rel=1e-9)
    # and the platform's own Black–Scholes (written independently)
    option = "call" if call else "put"
    assert float(g.value) == pytest.approx(black_scholes_price(s, k, r, q, vol, t, option), rel=1e-10)
    assert float(g.delta) == pytest.approx(black_scholes_delta(s, k, r, q, vol, t, option), rel=1e-10)


@pytest.mark.parametrize(("s", "k", "t", "r", "q", "vol", "call"), OPTIONS)
def test_black_scholes_greeks_are_derivatives_of_the_price(
    s: float, k: float, t: float, r: float, q: float, vol: float, call: bool
) -> None:
    def price(spot: float = s, sigma: float = vol) -> float:
        return float(ins.black_scholes(spot, k, t, r, q, sigma, call).value)

    g = ins.black_scholes(s, k, t, r, q, vol, call)
    h, e = s * 1e-4, vol * 1e-4
    assert float(g.delta) == pytest.approx((price(s + h) - price(s - h)) / (2 * h), rel=1e-6, abs=1e-9)
    assert float(g.gamma) == pytest.approx((price(s + h) - 2 * price() + price(s - h)) / h**2, rel=1e-4)
    assert float(g.vega) == pytest.approx((price(sigma=vol + e) - price(sigma=vol - e)) / (2 * e), rel=1e-6)
    assert float(g.volga) == pytest.approx(
        (price(sigma=vol + e) - 2 * price() + price(sigma=vol - e)) / e**2, rel=1e-3, abs=1e-6 * s
    )


@pytest.mark.parametrize(
    ("f", "k", "t", "vol", "call"), [(0.04, 0.042, 2.0, 0.0085, True), (0.005, 0.0, 1.0, 0.005, False)]
)
def test_bachelier_matches_quantlib_and_its_derivatives(f: float, k: float, t: float, vol: float, call: bool) -> None:
    g = ins.bachelier(f, k, t, vol, call)
    kind = ql.Option.Call if call else ql.Option.Put
    assert float(g.value) == pytest.approx(ql.bachelierBlackFormula(kind, k, f, vol * math.sqrt(t), 1.0), rel=1e-10)

    def price(rate: float = f, sigma: float = vol) -> float:
        return float(ins.bachelier(rate, k, t, sigma, call).value)

    h, e = vol * math.sqrt(t) * 1e-3, vol * 1e-4
    assert float(g.delta) == pytest.approx((price(f + h) - price(f - h)) / (2 * h), rel=1e-6)
    assert float(g.gamma) == pytest.approx((price(f + h) - 2 * price() + price(f - h)) / h**2, rel=1e-4)
    assert float(g.vega) == pytest.approx((price(sigma=vol + e) - price(sigma=vol - e)) / (2 * e), rel=1e-6)
    assert float(g.volga) == pytest.approx((price(sigma=vol + e) - 2 * price() + price(sigma=vol - e)) / e**2, rel=1e-3)


def _quantlib_payer_swap(rate: float, fixed: float, years: int, per_year: int, notional: float = 1e8) -> float:
    """NPV of a spot-starting payer swap on a flat curve at `rate` compounded `per_year` times (30/360 throughout),
    the float leg indexed on the same curve: its par rate is `rate`."""
    today = ql.Date(20, 11, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Thirty360(ql.Thirty360.BondBasis)
    freq = {1: ql.Annual, 2: ql.Semiannual, 4: ql.Quarterly}[per_year]
    curve = ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc, ql.Compounded, freq))
    index = ql.IborIndex(
        "IDX",
        ql.Period(12 // per_year, ql.Months),
        0,
        ql.USDCurrency(),
        ql.NullCalendar(),
        ql.Unadjusted,
        False,
        dc,
        curve,
    )
    schedule = ql.Schedule(
        today, today + ql.Period(years, ql.Years), ql.Period(freq), ql.NullCalendar(), ql.Unadjusted, ql.Unadjusted,
        ql.DateGeneration.Backward, False,
    )  # fmt: skip
    swap = ql.VanillaSwap(ql.Swap.Payer, notional, schedule, fixed, dc, schedule, index, 0.0, dc)
    swap.setPricingEngine(ql.DiscountingSwapEngine(curve))
    return swap.NPV()


@pytest.mark.parametrize(
    ("rate", "fixed", "years", "per_year"), [(0.035, 0.03, 7, 1), (0.04, 0.045, 10, 2), (0.02, 0.021, 5, 4)]
)
def test_swap_value_and_dv01_match_quantlib(rate: float, fixed: float, years: int, per_year: int) -> None:
    g = ins.swap(1e8, fixed, rate, float(years), per_year, True)
    assert float(g.value[0]) == pytest.approx(_quantlib_payer_swap(rate, fixed, years, per_year), rel=1e-9)
    bump = 1e-4  # DV01: bump-and-reprice of the QuantLib swap by 1 bp either way
    dv01 = (
        _quantlib_payer_swap(rate + bump, fixed, years, per_year)
        - _quantlib_payer_swap(rate - bump, fixed, years, per_year)
    ) / 2
    assert float(g.delta[0]) * 1e-4 == pytest.approx(dv01, rel=1e-6)
    receiver = ins.swap(1e8, fixed, rate, float(years), per_year, False)
    assert float(receiver.delta[0]) == -float(g.delta[0])


@pytest.mark.parametrize(("rate", "fixed", "years", "per_year"), [(0.036, 0.034, 6.37, 1), (0.041, 0.041, 19.2, 2)])
def test_swap_greeks_bump_a_direct_summation_of_the_swap(
    rate: float, fixed: float, years: float, per_year: int
) -> None:
    g = ins.swap(5e7, fixed, rate, years, per_year, False)

    def value(s: float) -> float:
        return ins.swap_value(5e7, fixed, s, years, per_year, False)

    h = 1e-5
    assert float(g.value[0]) == pytest.approx(value(rate), rel=1e-12, abs=1e-6)
    assert float(g.delta[0]) == pytest.approx((value(rate + h) - value(rate - h)) / (2 * h), rel=1e-6)
    assert float(g.gamma[0]) == pytest.approx((value(rate + h) - 2 * value(rate) + value(rate - h)) / h**2, rel=1e-3)


def test_cds_cs01_at_par_is_the_risky_annuity_in_closed_form() -> None:
    spread, rate, recovery, years = 0.0058, 0.025, 0.4, 5.0
    q = math.exp(-(rate + spread / (1 - recovery)) / 4)
    n = 20
    annuity = 0.25 * q * (1 - q**n) / (1 - q)  # Σ_{k=1..20} ¼·q^k
    g = ins.cds(1e7, spread, spread, years, recovery, rate, True)
    assert float(g.value[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(g.delta[0]) == pytest.approx(1e7 * annuity, rel=1e-12)


def test_cds_greeks_are_derivatives_of_its_value() -> None:
    def value(s: float) -> float:
        return float(ins.cds(2e7, 0.05, s, 4.6, 0.3, 0.02, False).value[0])

    g = ins.cds(2e7, 0.05, 0.031, 4.6, 0.3, 0.02, False)
    h = 1e-6
    assert float(g.value[0]) > 0  # sold protection at 500 bp running on a 310 bp index: worth something
    assert float(g.delta[0]) == pytest.approx((value(0.031 + h) - value(0.031 - h)) / (2 * h), rel=1e-7)
    assert float(g.gamma[0]) == pytest.approx((value(0.031 + h) - 2 * value(0.031) + value(0.031 - h)) / h**2, rel=1e-3)


def test_swaption_is_annuity_times_bachelier_and_greeks_are_derivatives() -> None:
    s, k, t, tenor, vol = 0.04, 0.042, 2.0, 10.0, 0.0085
    g = ins.swaption(5e7, k, s, t, tenor, vol, True)
    annuity = sum((1 + s) ** -(t + j) for j in range(1, 11))
    expected = 5e7 * annuity * ql.bachelierBlackFormula(ql.Option.Call, k, s, vol * math.sqrt(t), 1.0)
    assert float(g.value[0]) == pytest.approx(expected, rel=1e-10)

    def value(rate: float = s, sigma: float = vol) -> float:
        return float(ins.swaption(5e7, k, rate, t, tenor, sigma, True).value[0])

    h, e = 1e-5, vol * 1e-4
    assert float(g.delta[0]) == pytest.approx((value(s + h) - value(s - h)) / (2 * h), rel=1e-6)
    assert float(g.gamma[0]) == pytest.approx((value(s + h) - 2 * value() + value(s - h)) / h**2, rel=1e-3)
    assert float(g.vega[0]) == pytest.approx((value(sigma=vol + e) - value(sigma=vol - e)) / (2 * e), rel=1e-6)


def test_pillar_split_uses_the_neighbouring_pillars() -> None:
    years = list(ins.PILLAR_YEARS.values())
    lo, hi, w = ins.pillar_split(years, [7.0, 5.0, 40.0, 0.1])
    assert [years[i] for i in lo[:1]] == [5.0] and [years[i] for i in hi[:1]] == [10.0]
    assert w[0] == pytest.approx(0.6)  # 7Y is 3/5 of the way from 10Y back to 5Y
    assert (years[lo[1]], years[hi[1]], w[1]) == (5.0, 5.0, 1.0)  # on a pillar: all of it there
    assert years[lo[2]] == years[hi[2]] == 30.0  # beyond the curve: the last pillar
    assert years[lo[3]] == years[hi[3]] == 0.25


# -- loadings -------------------------------------------------------------------------------------

PRICE_KINDS = ("FX", "EQ", "CM", "VOL.EQ", "VOL.IR")


def _shocked(book: Book, shocks: dict[str, float]) -> Book:
    """The book with factor levels moved by returns: log for prices and vols, absolute for rates and spreads."""
    factors = []
    for f in book.factors:
        r = shocks.get(f.id)
        if r is None or f.level is None:
            factors.append(f)
            continue
        moved = f.level * math.exp(r) if f.parsed.kind in PRICE_KINDS else f.level + r
        factors.append(f.model_copy(update={"level": moved}))
    return book.model_copy(update={"factors": tuple(factors)})


def _full_pnl(loaded: LoadedBook, shocks: dict[str, float]) -> np.ndarray:
    """Each position's USD P&L by full revaluation: repricing at the moved levels, plus the price move of the
    linear positions (futures are settled daily and TRS reset, so their value today is zero)."""
    book = loaded.book
    moved = _shocked(book, shocks)
    pnl = book_arrays(moved, loaded.history).position_value_usd - loaded.arrays.position_value_usd
    before = {f.id: f.level for f in book.factors}
    after = {f.id: f.level for f in moved.factors}
    for i, p in enumerate(book.positions):
        if p.instrument in ("listed_future", "equity_trs"):
            quote = next(f for f in book.factors if f.id == p.underlying).quote_currency
            fx = "FX.EURUSD" if quote == "EUR" else None
            x0, x1 = (before[fx], after[fx]) if fx else (1.0, 1.0)
            s0, s1 = before[p.underlying], after[p.underlying]
            if p.instrument == "listed_future":
                pnl[i] += p.contracts * p.multiplier * (s1 * x1 - s0 * x0)
            else:
                sign = 1.0 if p.direction == "receive_equity" else -1.0
                pnl[i] += sign * p.notional * (s1 / s0 - 1.0) * x1
    return pnl


def _groups(arrays: Any, i: int) -> list[list[str]]:
    """The factors position i loads on, as groups shocked together: a swap's curve pillars together, others alone."""
    names = [arrays.factors[f] for f in arrays.load_factor[arrays.load_position == i]]
    pillars = [n for n in names if n.startswith("IR.")]
    return ([pillars] if pillars else []) + [[n] for n in names if not n.startswith("IR.")]


def _size(name: str) -> float:
    kind = parse_factor_id(name).kind
    return 0.05 if kind.startswith("VOL") else 0.01 if kind in PRICE_KINDS else 0.001


def test_loadings_reproduce_full_revaluation_to_second_order(tiny_book: LoadedBook) -> None:
    arrays = tiny_book.arrays
    delta, gamma = arrays.position_delta(), arrays.position_gamma()
    index = {n: j for j, n in enumerate(arrays.factors)}
    checked = 0
    for i, pid in enumerate(arrays.position_ids):
        for group in _groups(arrays, i):
            errors = []
            for scale in (1.0, 0.5):
                shock = {n: _size(n) * scale for n in group}
                r = np.zeros(len(arrays.factors))
                for n, v in shock.items():
                    r[index[n]] = v
                full = _full_pnl(tiny_book, shock)[i]
                first = float(delta[i] @ r)
                second = first + 0.5 * float(gamma[i] @ (r * r))
                errors.append((abs(full - second), abs(full - first), abs(first)))
            (e2, e1, size), (e2_half, _, _) = errors
            noise = 1e-9 * size + 1e-6
            assert e2 <= 0.1 * e1 + noise, f"{pid} on {group}: delta-gamma misses by {e2}, delta alone by {e1}"
            assert e2_half <= e2 / 5 + noise, f"{pid} on {group}: error {e2} -> {e2_half} at half the shock"
            checked += 1
    assert checked == 25  # every loaded factor of the 16 positions, a swap's pillars counted once


def test_linear_loadings_are_signed_notional_in_usd(tiny_book: LoadedBook) -> None:
    a = tiny_book.arrays
    delta = a.position_delta()
    j = {n: k for k, n in enumerate(a.factors)}
    p = {pid: k for k, pid in enumerate(a.position_ids)}
    assert delta[p["F1"], j["EQ.SPX"]] == pytest.approx(10 * 50 * 6500.0)
    assert delta[p["F2"], j["EQ.SX5E"]] == pytest.approx(-20 * 10 * 5500.0 * 1.10)
    assert delta[p["F3"], j["CM.WTI"]] == pytest.approx(5 * 1000 * 64.0)
    assert delta[p["T1"], j["EQ.SX5E"]] == pytest.approx(15e6 * 1.10)
    assert a.position_gamma()[p["T1"], j["EQ.SX5E"]] == pytest.approx(15e6 * 1.10)  # N·(e^r − 1): γ = N
    # futures and TRS are worth nothing today, so their currency carries no FX loading
    assert delta[p["F2"], j["FX.EURUSD"]] == 0.0
    # an FX forward buying EUR 10m against USD: the EUR leg discounted on the EUR curve (2.15% at 2Y, flat before)
    t = (np.datetime64("2027-05-20") - np.datetime64("2026-11-20")).astype(int) / 365.0
    assert delta[p["X1"], j["FX.EURUSD"]] == pytest.approx(10e6 * 1.10 * math.exp(-0.0215 * t))


def test_option_loadings_in_log_returns_with_vega_times_sigma(tiny_book: LoadedBook) -> None:
    a = tiny_book.arrays
    i = a.position_ids.index("O1")  # 15 contracts × 100 of a 6600 call on SPX at 6500, vol 17%, March 2027
    j = {n: k for k, n in enumerate(a.factors)}
    t = (np.datetime64("2027-03-19") - np.datetime64("2026-11-20")).astype(int) / 365.0
    r = 0.037  # the tiny book's USD curve starts at 1Y (3.7%) and is flat before it
    payoff = ql.PlainVanillaPayoff(ql.Option.Call, 6600.0)
    calc = ql.BlackCalculator(payoff, 6500.0 * math.exp((r - 0.013) * t), 0.17 * math.sqrt(t), math.exp(-r * t))
    units = 1500.0
    assert a.position_delta()[i, j["EQ.SPX"]] == pytest.approx(units * 6500.0 * calc.delta(6500.0), rel=1e-9)
    assert a.position_gamma()[i, j["EQ.SPX"]] == pytest.approx(
        units * (6500.0**2 * calc.gamma(6500.0) + 6500.0 * calc.delta(6500.0)), rel=1e-9
    )
    assert a.position_delta()[i, j["VOL.EQ.SPX"]] == pytest.approx(units * calc.vega(t) * 0.17, rel=1e-9)
    assert a.position_value_usd[i] == pytest.approx(units * calc.value(), rel=1e-9)


def test_swap_dv01_is_split_onto_the_neighbouring_pillars(tiny_book: LoadedBook) -> None:
    a = tiny_book.arrays
    i = a.position_ids.index("S1")  # USD 100m pay fixed 3.6%, 7 years: between the 5Y and 10Y pillars
    j = {n: k for k, n in enumerate(a.factors)}
    t = (np.datetime64("2033-11-20") - np.datetime64("2026-11-20")).astype(int) / 365.0
    w = (10.0 - t) / 5.0
    par = w * 0.036 + (1 - w) * 0.040

    def value(s: float) -> float:
        return ins.swap_value(1e8, 0.036, s, t, 1, True)

    dv01 = (value(par + 1e-4) - value(par - 1e-4)) / 2  # bump and reprice, 1 bp
    row = a.position_delta()[i]
    assert row[j["IR.USD.5Y"]] == pytest.approx(w * dv01 * 1e4, rel=1e-6)
    assert row[j["IR.USD.10Y"]] == pytest.approx((1 - w) * dv01 * 1e4, rel=1e-6)
    assert np.count_nonzero(row) == 2
    assert 60_000 < dv01 < 75_000  # a 7-year swap on 100m: about 6.5 years of annuity


def test_expected_return_is_the_strategy_target_spread_by_notional(tiny_book: LoadedBook) -> None:
    a, book = tiny_book.arrays, tiny_book.book
    for s, strategy in enumerate(book.strategies):
        members = a.position_strategy == s
        er = a.position_expected_return_usd[members]
        assert er.sum() == pytest.approx(strategy.capital_usd * strategy.return_target)
        np.testing.assert_allclose(
            er / er.sum(), a.position_notional_usd[members] / a.position_notional_usd[members].sum()
        )


def test_arrays_index_the_book(tiny_book: LoadedBook) -> None:
    a, book = tiny_book.arrays, tiny_book.book
    assert a.shape[:3] == (len(tiny_book.history.factors), 4, 16)
    assert a.factors == tiny_book.history.factors
    assert list(a.venue_is_ccp) == [True, True, False, False]
    np.testing.assert_array_equal(a.position_manager, a.strategy_manager[a.position_strategy])
    assert a.currencies == ("USD", "EUR", "JPY")
    for i, p in enumerate(book.positions):
        assert a.venues[a.position_venue[i]] == p.venue
        assert a.currencies[a.position_currency[i]] == p.currency
        main = a.factors[a.position_liquidity_factor[i]]
        assert main == getattr(p, "underlying", main)
        assert ASSET_CLASSES[a.position_class[i]] == next(f.asset_class for f in book.factors if f.id == main)
    assert a.factors[a.position_liquidity_factor[a.position_ids.index("S1")]] == "IR.USD.5Y"
    assert a.factors[a.position_liquidity_factor[a.position_ids.index("X2")]] == "FX.JPYUSD"


def test_book_arrays_names_a_factor_the_history_lacks(tiny_book: LoadedBook) -> None:
    h = tiny_book.history
    keep = [k for k, n in enumerate(h.factors) if n != "EQ.SX5E"]
    short = FactorHistory(h.dates, tuple(h.factors[k] for k in keep), h.returns[:, keep], h.stressed)
    with pytest.raises(InvalidInputs) as info:
        book_arrays(tiny_book.book, short)
    assert (
        str(info.value)
        == "positions[1].underlying: position 'F2' needs factor 'EQ.SX5E', which the history does not have"
    )
    extra = FactorHistory(h.dates, (*h.factors, "EQ.NKY"), np.column_stack([h.returns, h.returns[:, 0]]), h.stressed)
    with pytest.raises(InvalidInputs, match=r"history.factors: 'EQ.NKY' is not a factor of the book"):
        book_arrays(tiny_book.book, extra)


# -- validation -----------------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        *parts, last = path.split(".")
        target: Any = data
        for part in parts:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return apply


REFUSALS = [
    ("positions.0.venue", "CCP-99", "positions[0].venue", "'CCP-99' is not a venue of the book"),
    ("positions.0.venue", "DEALER-A", "positions[0].venue",
     "'DEALER-A' is a bilateral counterparty; a listed_future position is held at a CCP"),
    ("positions.9.venue", "CCP-A", "positions[9].venue",
     "'CCP-A' is a CCP; a fx_forward position is held with a bilateral counterparty"),
    ("positions.0.strategy", "M9-nope", "positions[0].strategy", "'M9-nope' is not a strategy of the book"),
    ("positions.0.underlying", "EQ.NKY", "positions[0].underlying", "'EQ.NKY' is not a factor of the book"),
    ("positions.1.id", "F1", "positions[1].id", "'F1' is used by positions[0] too"),
    ("positions.0.expiry", "2026-11-20", "positions[0].expiry",
     "2026-11-20 is not after the book's as_of date 2026-11-20"),
    ("positions.0.currency", "EUR", "positions[0].currency", "'EUR' is not the currency of 'EQ.SPX' (USD)"),
    ("positions.3.strike", -5, "positions[3].strike", "must be positive, got -5"),
    ("positions.0.contracts", 0, "positions[0].contracts", "must not be zero"),
    ("positions.0.instrument", "swaption", "positions[0].instrument", "must be one of"),
    ("positions.5.currency", "JPY", "positions[5].currency",
     "the book has no IR.JPY.<tenor> factor with a level to price the swap on"),
    ("positions.14.volatility", None, "positions[14].volatility", "is required for an FX option"),
    ("positions.12.payments_per_year", 3, "positions[12].payments_per_year", "must be 1, 2 or 4, got 3"),
    ("positions.0.underlying", "IR.USD.10Y", "positions[0].underlying", "must be an equity index, commodity or FX"),
    ("strategies.0.manager", "M9", "strategies[0].manager", "'M9' is not a manager of the book"),
    ("factors.0.id", "IR.USD.7Y", "factors[0].id", "does not follow the factor grammar"),
    ("factors.8.asset_class", "rates", "factors[8].asset_class", "'EQ.SPX' belongs to equity, not rates"),
    ("factors.8.level", None, "factors[8].level", "'EQ.SPX' needs a level to price positions[0]"),
    ("venues.0.margin_model.confidence", 1.5, "venues[0].margin_model.confidence", "must be less than 1.0, got 1.5"),
]  # fmt: skip


@pytest.mark.parametrize(("where", "value", "path", "reason"), REFUSALS)
def test_book_refuses_with_the_path_and_reason(
    tiny_book_data: Callable[[], dict[str, Any]], where: str, value: Any, path: str, reason: str
) -> None:
    data = tiny_book_data()
    _set(where, value)(data)
    with pytest.raises(ValidationError) as info:
        Book.model_validate(data)
    got_path, got_reason = describe_validation_error(info.value)[0]
    assert got_path == path, f"{got_path}: {got_reason}"
    assert reason in got_reason, got_reason


def test_the_unbroken_tiny_book_is_valid(tiny_book_data: Callable[[], dict[str, Any]]) -> None:
    book = Book.model_validate(tiny_book_data())
    assert len(book.positions) == 16
    assert {p.instrument for p in book.positions} == {
        "listed_future", "listed_option", "cleared_irs", "cds_index", "fx_forward", "equity_trs", "uncleared_irs",
        "uncleared_option",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "kind", "name", "tenor"),
    [("IR.USD.10Y", "IR", "USD", "10Y"), ("FX.JPYUSD", "FX", "JPY", None), ("EQ.SX5E", "EQ", "SX5E", None),
     ("CR.ITRAXX_MAIN.5Y", "CR", "ITRAXX_MAIN", None), ("CM.WTI", "CM", "WTI", None),
     ("VOL.IR.EUR", "VOL.IR", "EUR", None), ("VOL.EQ.SPX", "VOL.EQ", "SPX", None)],
)  # fmt: skip
def test_factor_grammar_parses(text: str, kind: str, name: str, tenor: str | None) -> None:
    assert tuple(parse_factor_id(text)) == (kind, name, tenor)


@pytest.mark.parametrize("text", ["IR.USD.7Y", "FX.USDUSD", "FX.EURJPY", "CR.CDX_IG.3Y", "EQ.", "VOL.FX.EUR", "eq.spx"])
def test_factor_grammar_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"factor grammar|USD in USD"):
        parse_factor_id(text)


def test_risk_factor_checks_its_currency_and_level() -> None:
    with pytest.raises(ValidationError, match=r"currency: 'IR.USD.2Y' belongs to USD, not EUR"):
        RiskFactor(id="IR.USD.2Y", asset_class="rates", currency="EUR", depth_usd=1e9, level=0.03)
    with pytest.raises(ValidationError, match=r"level: 3.5 is not a rate in decimals"):
        RiskFactor(id="IR.USD.2Y", asset_class="rates", currency="USD", depth_usd=1e9, level=3.5)
    with pytest.raises(ValidationError, match=r"level: must be positive for 'EQ.SPX', got -1"):
        RiskFactor(id="EQ.SPX", asset_class="equity", currency="USD", depth_usd=1e9, level=-1.0)
    assert RiskFactor(id="IR.CHF.2Y", asset_class="rates", currency="CHF", depth_usd=1e9, level=-0.005).level == -0.005
