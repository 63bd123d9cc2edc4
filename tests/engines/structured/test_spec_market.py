"""The boundary models of the structured-products engine: AutocallSpec and MarketData.

Every refusal must name the field at fault in its message (the CLI and the compute kinds pass that
message on to the user), and what is accepted must mean what the docstrings say: observation
schedules, step-down triggers, coupon amounts, forwards with cash dividends and the repair of a
correlation matrix that is not positive semi-definite.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from engines.structured.market import (
    CashDividend,
    Curve,
    ForwardQuote,
    MarketData,
    SurfaceQuotes,
    UnderlyingMarket,
    VolPoint,
    forward,
    nearest_correlation,
)
from engines.structured.spec import AutocallSpec

NAMES = ("A", "B", "C")
VOLS = (0.20, 0.25, 0.30)
RATE = 0.03
DIVIDEND_YIELD = 0.01


def make_market(correlation: list[list[float]] | None = None, **kw) -> MarketData:
    """Three underlyings at spot 100, flat rate 3%, flat dividend yield 1%, vols 20/25/30%, pairwise correlation 0.5."""
    corr = correlation or [[1.0 if i == j else 0.5 for j in range(3)] for i in range(3)]
    underlyings = {
        n: UnderlyingMarket(spot=100.0, dividend_yield=Curve.flat(DIVIDEND_YIELD), volatility=v)
        for n, v in zip(NAMES, VOLS, strict=True)
    }
    return MarketData(rates=Curve.flat(RATE), underlyings=underlyings, correlation=corr, **kw)


def spec(**kw) -> AutocallSpec:
    data = {"underlyings": ["A", "B", "C"], "maturity_years": 2.0, **kw}
    return AutocallSpec.model_validate(data)


def refused(field: str, reason: str, **kw) -> None:
    """The spec built from `kw` is refused with a message naming `field` and containing `reason`."""
    with pytest.raises(ValidationError) as info:
        spec(**kw)
    message = str(info.value)
    assert field in message, f"{field!r} not named in: {message}"
    assert reason in message, f"{reason!r} not in: {message}"


def is_correlation(m: np.ndarray) -> bool:
    return (
        bool(np.allclose(m, m.T, atol=1e-12))
        and bool(np.allclose(np.diag(m), 1.0, atol=1e-12))
        and float(np.linalg.eigvalsh(m).min()) >= -1e-10
    )


# ---------------------------------------------------------------------------------------------
# AutocallSpec: refusals name the field
# ---------------------------------------------------------------------------------------------


def test_knock_in_barrier_above_the_lowest_callable_trigger_is_refused() -> None:
    # Step-down 1.0 → floor 0.8 over the quarterly observations: the lowest callable trigger is 0.8.
    step_down = {"trigger": 1.0, "step_down": 0.05, "floor": 0.8}
    refused("knock_in.barrier", "above the lowest autocall trigger 0.8", autocall=step_down, knock_in={"barrier": 0.85})
    assert spec(autocall=step_down, knock_in={"barrier": 0.8}).knock_in.barrier == 0.8  # equal is allowed


def test_non_callable_observations_do_not_count_as_the_lowest_trigger() -> None:
    # Explicit triggers: the None (not callable) of the first date is +inf and must be ignored, 0.7 is the lowest.
    dates = {"dates": [0.5, 1.0, 1.5, 2.0]}
    ok = spec(schedule=dates, autocall={"triggers": [None, 0.9, 0.8, 0.7]}, knock_in={"barrier": 0.7})
    assert ok.triggers()[0] == math.inf
    refused(
        "knock_in.barrier",
        "above the lowest autocall trigger 0.7",
        schedule=dates,
        autocall={"triggers": [None, 0.9, 0.8, 0.7]},
        knock_in={"barrier": 0.75},
    )


def test_knock_in_barrier_above_the_strike_is_refused() -> None:
    refused("knock_in.barrier", "above the strike 0.85", strike=0.85, knock_in={"barrier": 0.9})
    assert spec(strike=0.9, knock_in={"barrier": 0.9}).strike == 0.9


@pytest.mark.parametrize(
    ("dates", "reason"),
    [
        ([0.5, 0.5, 2.0], "strictly increasing"),
        ([1.0, 0.5, 2.0], "strictly increasing"),
        ([0.0, 1.0, 2.0], "positive years"),
        ([-0.5, 1.0, 2.0], "positive years"),
        ([], "at least one observation date"),
    ],
)
def test_bad_explicit_dates_are_refused(dates: list[float], reason: str) -> None:
    refused("dates", reason, schedule={"dates": dates})


def test_last_explicit_date_must_be_the_maturity() -> None:
    refused("schedule.dates", "must be the maturity", schedule={"dates": [0.5, 1.0, 1.5]})


def test_triggers_list_of_the_wrong_length_is_refused() -> None:
    # 2 years quarterly = 8 observations.
    refused("autocall.triggers", "one trigger per observation (8), got 7", autocall={"triggers": [1.0] * 7})
    refused("autocall.triggers", "one trigger per observation (8), got 9", autocall={"triggers": [1.0] * 9})


def test_no_call_period_covering_every_observation_is_refused() -> None:
    refused("autocall.no_call_observations", "leaves no callable date of 8", autocall={"no_call_observations": 8})
    assert np.isfinite(spec(autocall={"no_call_observations": 7}).triggers()).sum() == 1


@pytest.mark.parametrize("maturity", [0.0, -1.0, 10.25, 12.0])
def test_maturity_out_of_range_is_refused(maturity: float) -> None:
    with pytest.raises(ValidationError, match="maturity_years"):
        AutocallSpec(underlyings=["A"], maturity_years=maturity)


def test_maturity_of_ten_years_is_accepted() -> None:
    assert len(AutocallSpec(underlyings=["A"], maturity_years=10.0).observation_times()) == 40


@pytest.mark.parametrize("names", [[], ["A", "B", "C", "D", "E", "F"]])
def test_zero_or_six_underlyings_are_refused(names: list[str]) -> None:
    with pytest.raises(ValidationError, match="underlyings"):
        AutocallSpec(underlyings=names)


def test_five_underlyings_are_accepted() -> None:
    assert len(AutocallSpec(underlyings=list("ABCDE")).underlyings) == 5


def test_duplicate_underlyings_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"underlyings(.|\n)*distinct"):
        AutocallSpec(underlyings=["A", "B", "A"])


@pytest.mark.parametrize("basket", ["best_of", "average"])
def test_continuous_monitoring_on_a_non_worst_of_basket_is_refused(basket: str) -> None:
    refused("knock_in.monitoring", "worst-of baskets only", basket=basket, knock_in={"monitoring": "continuous"})


def test_continuous_monitoring_on_one_underlying_or_a_worst_of_is_accepted() -> None:
    assert AutocallSpec(underlyings=["A"], basket="best_of", knock_in={"monitoring": "continuous"}).knock_in
    assert spec(basket="worst_of", knock_in={"monitoring": "continuous"}).knock_in


@pytest.mark.parametrize(
    ("maturity", "frequency"), [(1.1, "quarterly"), (1.5, "annual"), (0.3, "semi_annual"), (2.04, "monthly")]
)
def test_maturity_not_a_whole_number_of_periods_is_refused(maturity: float, frequency: str) -> None:
    refused("maturity_years", "not a whole number", maturity_years=maturity, schedule={"frequency": frequency})


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="barier"):
        spec(knock_in={"barier": 0.6})


# ---------------------------------------------------------------------------------------------
# AutocallSpec: schedules, triggers, coupons
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "maturity", "count"),
    [("monthly", 1.0, 12), ("monthly", 0.25, 3), ("quarterly", 2.0, 8), ("semi_annual", 1.5, 3), ("annual", 5.0, 5)],
)
def test_regular_schedules(frequency: str, maturity: float, count: int) -> None:
    per_year = {"monthly": 12, "quarterly": 4, "semi_annual": 2, "annual": 1}[frequency]
    times = spec(maturity_years=maturity, schedule={"frequency": frequency}).observation_times()
    assert len(times) == count
    np.testing.assert_allclose(times, np.arange(1, count + 1) / per_year, rtol=0, atol=1e-15)
    assert times[-1] == pytest.approx(maturity, abs=1e-12)


def test_explicit_dates_are_the_schedule() -> None:
    s = spec(maturity_years=2.0, schedule={"dates": [0.5, 1.25, 2.0]})
    np.testing.assert_array_equal(s.observation_times(), [0.5, 1.25, 2.0])


def test_step_down_triggers_with_floor_and_no_call_period() -> None:
    s = spec(autocall={"trigger": 1.0, "step_down": 0.05, "floor": 0.85, "no_call_observations": 2})
    # 8 quarterly observations; steps count from the first callable one.
    expected = [math.inf, math.inf, 1.0, 0.95, 0.90, 0.85, 0.85, 0.85]
    np.testing.assert_allclose(s.triggers(), expected, rtol=0, atol=1e-12)


def test_flat_and_explicit_triggers_with_no_call_period() -> None:
    assert spec().triggers().tolist() == [1.0] * 8
    s = spec(autocall={"triggers": [0.9, 0.9, None, 0.8, 0.8, 0.8, 0.8, 0.8], "no_call_observations": 1})
    assert s.triggers().tolist() == [math.inf, 0.9, math.inf, 0.8, 0.8, 0.8, 0.8, 0.8]


def test_coupon_amounts_are_rate_times_period() -> None:
    regular = spec(coupon={"rate": 0.08})
    np.testing.assert_allclose(regular.coupon_amounts(), [0.02] * 8, rtol=0, atol=1e-15)
    irregular = spec(coupon={"rate": 0.06}, schedule={"dates": [0.5, 1.25, 2.0]})
    np.testing.assert_allclose(irregular.coupon_amounts(), [0.03, 0.045, 0.045], rtol=0, atol=1e-15)
    assert irregular.coupon_amounts().sum() == pytest.approx(0.06 * 2.0, abs=1e-15)


def test_spec_round_trips_through_json() -> None:
    s = spec(autocall={"triggers": [None, 1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.8]}, knock_in={"barrier": 0.6})
    again = AutocallSpec.model_validate_json(s.model_dump_json())
    assert again == s
    np.testing.assert_array_equal(again.triggers(), s.triggers())


# ---------------------------------------------------------------------------------------------
# MarketData
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vol", [-0.2, 0.0, 6.0])
def test_non_positive_or_absurd_volatility_is_refused(vol: float) -> None:
    with pytest.raises(ValidationError, match="volatility"):
        UnderlyingMarket(spot=100.0, volatility=vol)


def test_missing_volatility_is_refused() -> None:
    with pytest.raises(ValidationError, match="volatility"):
        UnderlyingMarket(spot=100.0)


NOT_PSD = [[1.0, 0.9, 0.7], [0.9, 1.0, -0.4], [0.7, -0.4, 1.0]]


def test_non_psd_correlation_is_refused_naming_the_lowest_eigenvalue() -> None:
    lowest = float(np.linalg.eigvalsh(np.array(NOT_PSD)).min())
    assert lowest < -0.1  # the fixture really is indefinite
    with pytest.raises(ValidationError) as info:
        make_market(NOT_PSD)
    message = str(info.value)
    assert "correlation" in message and "positive semi-definite" in message
    assert f"{lowest:.4g}" in message, message


def test_non_psd_correlation_with_repair_is_replaced_by_the_nearest_correlation_matrix() -> None:
    market = make_market(NOT_PSD, repair_correlation=True)
    result = market.correlation_for(list(NAMES))
    assert result.repaired
    assert result.max_change > 0.01
    assert is_correlation(result.matrix)
    np.testing.assert_allclose(result.matrix, nearest_correlation(np.array(NOT_PSD)), atol=1e-12)
    assert result.max_change == pytest.approx(float(np.abs(result.matrix - np.array(NOT_PSD)).max()), abs=1e-15)


def test_correlation_for_a_psd_subset_in_another_order_is_not_repaired() -> None:
    market = make_market(NOT_PSD, repair_correlation=True)
    sub = market.correlation_for(["C", "A"])  # [[1, 0.7], [0.7, 1]] is a valid correlation
    assert not sub.repaired and sub.max_change == 0.0
    np.testing.assert_array_equal(sub.matrix, [[1.0, 0.7], [0.7, 1.0]])


def test_valid_correlation_is_passed_through_unrepaired() -> None:
    result = make_market().correlation_for(["B", "C", "A"])
    assert not result.repaired and result.max_change == 0.0
    np.testing.assert_array_equal(result.matrix, [[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 1.0]])
    with pytest.raises(KeyError, match="underlyings"):
        make_market().correlation_for(["A", "Z"])


@pytest.mark.parametrize(
    ("matrix", "reason"),
    [
        ([[1.0, 0.5, 0.5], [0.4, 1.0, 0.5], [0.5, 0.5, 1.0]], "symmetric"),
        ([[1.0, 0.5, 0.5], [0.5, 0.9, 0.5], [0.5, 0.5, 1.0]], "diagonal"),
        ([[1.0, 1.2, 0.5], [1.2, 1.0, 0.5], [0.5, 0.5, 1.0]], "[-1, 1]"),
        ([[1.0, 0.5], [0.5, 1.0]], "3x3"),
    ],
)
def test_malformed_correlation_is_refused(matrix: list[list[float]], reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_market(matrix, repair_correlation=True)  # repair never excuses a malformed matrix
    message = str(info.value)
    assert "correlation" in message and reason in message, message


def hand_forward(spot: float, t: float, r_int, q_int, dividends: list[tuple[float, float]]) -> float:
    """F(t) = S·exp(∫r − ∫q) − Σ_{t_d ≤ t} D·exp((∫r − ∫q)(t) − (∫r − ∫q)(t_d))."""
    growth = math.exp(r_int(t) - q_int(t))
    return spot * growth - sum(d * growth / math.exp(r_int(td) - q_int(td)) for td, d in dividends if td <= t)


def dividend_market(forwards: list[ForwardQuote] = ()) -> MarketData:
    """One underlying at 100: rate curve 2% at 1y, 4% at 2y (linear zero rates), dividend yield 1%, cash 2 at 0.5y."""
    return MarketData(
        rates=Curve(times=[1.0, 2.0], rates=[0.02, 0.04]),
        underlyings={
            "A": UnderlyingMarket(
                spot=100.0,
                dividend_yield=Curve.flat(0.01),
                dividends=[CashDividend(time=0.5, amount=2.0)],
                volatility=0.2,
                forwards=list(forwards),
            )
        },
    )


def _r_int(t: float) -> float:
    zero = 0.02 if t <= 1.0 else 0.04 if t >= 2.0 else 0.02 + 0.02 * (t - 1.0)
    return zero * t


def _q_int(t: float) -> float:
    return 0.01 * t


def test_forward_with_a_cash_dividend_matches_a_hand_computation() -> None:
    market = dividend_market()
    times = np.array([0.25, 0.5, 1.0, 1.5, 3.0])
    got = forward(market, "A", times)
    # Before the ex-date: no dividend. At and after it: the dividend grown from its ex-date.
    assert got[0] == pytest.approx(100.0 * math.exp(0.02 * 0.25 - 0.01 * 0.25), rel=1e-14)
    assert got[1] == pytest.approx(100.0 * math.exp(0.02 * 0.5 - 0.005) - 2.0, rel=1e-14)
    assert got[3] == pytest.approx(
        100.0 * math.exp(0.045 - 0.015) - 2.0 * math.exp((0.045 - 0.015) - (0.01 - 0.005)), rel=1e-14
    )
    expected = [hand_forward(100.0, t, _r_int, _q_int, [(0.5, 2.0)]) for t in times]
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_consistent_quoted_forwards_are_accepted() -> None:
    quotes = [
        ForwardQuote(time=t, forward=hand_forward(100.0, t, _r_int, _q_int, [(0.5, 2.0)]) * bump)
        for t, bump in ((0.25, 1.0), (1.5, 1.0005), (3.0, 0.9995))  # within the 0.1% tolerance
    ]
    assert len(dividend_market(quotes).underlyings["A"].forwards) == 3


def test_inconsistent_quoted_forward_is_refused_naming_its_index() -> None:
    # Forgetting the cash dividend puts the 1.5y forward about 2% too high.
    no_dividend = 100.0 * math.exp(_r_int(1.5) - _q_int(1.5))
    quotes = [
        ForwardQuote(time=0.25, forward=hand_forward(100.0, 0.25, _r_int, _q_int, [])),
        ForwardQuote(time=1.5, forward=no_dividend),
    ]
    with pytest.raises(ValidationError) as info:
        dividend_market(quotes)
    message = str(info.value)
    assert "underlyings.A.forwards[1]" in message, message
    assert "forwards[0]" not in message


def test_calendar_arbitrage_in_the_atm_term_structure_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        UnderlyingMarket(spot=100.0, volatility=[VolPoint(time=1.0, vol=0.30), VolPoint(time=2.0, vol=0.20)])
    message = str(info.value)
    assert "volatility[1]" in message and "calendar arbitrage" in message, message
    # A falling vol with rising total variance (0.09 → 0.125) is fine.
    ok = UnderlyingMarket(spot=100.0, volatility=[VolPoint(time=1.0, vol=0.30), VolPoint(time=2.0, vol=0.25)])
    np.testing.assert_array_equal(ok.atm_vols()[1], [0.30, 0.25])


def test_unsorted_term_structure_is_refused() -> None:
    with pytest.raises(ValidationError, match="volatility"):
        UnderlyingMarket(spot=100.0, volatility=[VolPoint(time=2.0, vol=0.2), VolPoint(time=1.0, vol=0.2)])


def test_surface_quotes_shape_mismatch_is_refused_naming_the_row() -> None:
    with pytest.raises(ValidationError, match=r"vols\[1\]: one vol per strike \(3\), got 2"):
        SurfaceQuotes(expiries=[1.0, 2.0], strikes=[0.9, 1.0, 1.1], vols=[[0.22, 0.2, 0.19], [0.21, 0.2]])
    with pytest.raises(ValidationError, match=r"vols: one row per expiry \(2\), got 1"):
        SurfaceQuotes(expiries=[1.0, 2.0], strikes=[0.9, 1.0, 1.1], vols=[[0.22, 0.2, 0.19]])
    with pytest.raises(ValidationError, match=r"vols\[0\]\[2\]"):
        SurfaceQuotes(expiries=[1.0], strikes=[0.9, 1.0, 1.1], vols=[[0.22, 0.2, -0.19]])


def test_bad_curves_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"curve\.times"):
        Curve(times=[2.0, 1.0], rates=[0.01, 0.02])
    with pytest.raises(ValidationError, match="curve"):
        Curve(times=[1.0, 2.0], rates=[0.01])


# ---------------------------------------------------------------------------------------------
# nearest_correlation
# ---------------------------------------------------------------------------------------------


def clip_and_rescale(a: np.ndarray) -> np.ndarray:
    """The simple alternative: clip negative eigenvalues to zero, then rescale to a unit diagonal."""
    w, v = np.linalg.eigh(a)
    c = (v * np.maximum(w, 0.0)) @ v.T
    d = np.sqrt(np.diag(c))
    return c / np.outer(d, d)


def test_nearest_correlation_of_highams_example() -> None:
    """Higham (2002), 'Computing the nearest correlation matrix', §4: A = [[1,1,0],[1,1,1],[0,1,1]]."""
    a = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    x = nearest_correlation(a)
    assert is_correlation(x)
    expected = np.array([[1.0, 0.7607, 0.1573], [0.7607, 1.0, 0.7607], [0.1573, 0.7607, 1.0]])
    np.testing.assert_allclose(x, expected, atol=1e-4)
    assert np.linalg.norm(x - a) < np.linalg.norm(clip_and_rescale(a) - a) - 1e-3


@pytest.mark.parametrize(
    "matrix",
    [
        NOT_PSD,
        [[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]],
        [
            [1.0, 0.8, 0.6, -0.7],
            [0.8, 1.0, -0.3, 0.5],
            [0.6, -0.3, 1.0, 0.9],
            [-0.7, 0.5, 0.9, 1.0],
        ],
    ],
)
def test_nearest_correlation_is_a_correlation_no_farther_than_clipping(matrix: list[list[float]]) -> None:
    a = np.array(matrix)
    assert np.linalg.eigvalsh(a).min() < 0
    x = nearest_correlation(a)
    assert is_correlation(x)
    assert np.linalg.norm(x - a) <= np.linalg.norm(clip_and_rescale(a) - a) + 1e-6


def test_nearest_correlation_leaves_a_valid_correlation_matrix_alone() -> None:
    a = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
    np.testing.assert_allclose(nearest_correlation(a), a, atol=1e-10)


def test_a_repaired_correlation_is_reported_with_the_price_and_the_stress() -> None:
    from engines.structured.pricing import PricingOptions, price
    from engines.structured.stress import ScenarioSpec, stress_test

    bad = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]
    unders = {n: UnderlyingMarket(spot=100.0, volatility=0.2) for n in ("A", "B", "C")}
    market = MarketData(underlyings=unders, correlation=bad, repair_correlation=True)
    spec = AutocallSpec(underlyings=["A", "B", "C"], maturity_years=1.0)
    result = price(spec, market, PricingOptions(paths=2048, seed=1, sampler="pseudo"))
    assert any("nearest correlation matrix" in w for w in result.warnings), result.warnings
    report = stress_test([spec], market, PricingOptions(paths=2048, seed=1, sampler="pseudo"),
                         [ScenarioSpec(name="crash", spot_move=-0.3)])  # fmt: skip
    assert any("nearest correlation matrix" in w for w in report.results[0].warnings)
    healthy = MarketData(underlyings=unders)
    assert not price(spec, healthy, PricingOptions(paths=2048, seed=1, sampler="pseudo")).warnings
