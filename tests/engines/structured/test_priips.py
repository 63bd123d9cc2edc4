"""PRIIPs indicators: VEV against its closed form, MRM classes, credit mapping, the SRI table, scenarios."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from engines.registry import InvalidInputs
from engines.structured.priips import (
    credit_quality_step,
    credit_risk,
    market_risk,
    mrm_class,
    performance_scenarios,
    priips_indicators,
    stress_percentile,
    summary_risk_indicator,
)

# Annex II, Part 3: rows MRM 1..7, columns CRM 1..6 (written out independently of the module).
EXPECTED_SRI = [
    [1, 1, 3, 5, 5, 6],
    [2, 2, 3, 5, 5, 6],
    [3, 3, 3, 5, 5, 6],
    [4, 4, 4, 5, 5, 6],
    [5, 5, 5, 5, 5, 6],
    [6, 6, 6, 6, 6, 6],
    [7, 7, 7, 7, 7, 7],
]


def lognormal_values(
    sigma: float, years: float, price: float = 1.0, discount_factor: float = 1.0, n: int = 200_001
) -> np.ndarray:
    """Undiscounted values at the RHP whose discounted log return ln(V·DF/P) has exact normal quantiles.

    ln(V·DF/P) = -σ²T/2 + σ√T z at z = Φ⁻¹((i + ½)/n): the empirical percentiles are the normal
    ones up to the grid spacing, with no sampling noise. Shuffled, so order cannot matter.
    """
    z = norm.ppf((np.arange(n) + 0.5) / n)
    log_return = -0.5 * sigma**2 * years + sigma * math.sqrt(years) * z
    values = price * np.exp(log_return) / discount_factor
    return np.random.default_rng(7).permutation(values)


# ---------------------------------------------------------------------------------------------
# 1. Market risk measure
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sigma", "years", "price", "discount_factor"),
    [
        (0.10, 5.0, 1.0, 0.85),
        (0.25, 3.0, 0.98, 0.94),
        (0.04, 1.5, 1.02, 0.97),
        (0.60, 2.0, 1.0, 1.0),
        (0.15, 10.0, 1, 0.7),
    ],
)
def test_vev_of_an_exact_lognormal_is_sigma(sigma: float, years: float, price: float, discount_factor: float) -> None:
    values = lognormal_values(sigma, years, price, discount_factor)
    result = market_risk(values, price, years, discount_factor)
    assert result.vev == pytest.approx(sigma, abs=1e-3)
    expected_var = -0.5 * sigma**2 * years + sigma * math.sqrt(years) * norm.ppf(0.025)
    assert result.var_return_space == pytest.approx(expected_var, abs=1e-4)
    assert isinstance(result.mrm, int)


def test_vev_of_a_seeded_normal_sample_is_sigma() -> None:
    sigma, years = 0.20, 4.0
    rng = np.random.default_rng(2024)
    log_return = -0.5 * sigma**2 * years + sigma * math.sqrt(years) * rng.standard_normal(400_000)
    result = market_risk(np.exp(log_return) / 0.9, 1.0, years, 0.9)
    assert result.vev == pytest.approx(sigma, abs=3e-3)
    assert result.mrm == 5


@pytest.mark.parametrize(
    ("sigma", "expected_mrm"),
    [(0.003, 1), (0.049, 2), (0.051, 3), (0.119, 3), (0.121, 4), (0.19, 4), (0.21, 5), (0.25, 5), (0.31, 6), (0.85, 7)],
)
def test_mrm_classes_either_side_of_the_boundaries(sigma: float, expected_mrm: int) -> None:
    years = 3.0
    assert market_risk(lognormal_values(sigma, years), 1.0, years, 1.0).mrm == expected_mrm


@pytest.mark.parametrize(
    ("vev", "expected"),
    [
        (0.0, 1),
        (0.00499, 1),
        (0.005, 2),
        (0.04999, 2),
        (0.05, 3),
        (0.12, 4),
        (0.2, 5),
        (0.3, 6),
        (0.79999, 6),
        (0.8, 7),
    ],
)
def test_mrm_class_lower_bounds_are_inclusive(vev: float, expected: int) -> None:
    assert mrm_class(vev) == expected


def test_discounting_moves_the_var_by_the_log_discount_factor() -> None:
    values = lognormal_values(0.15, 5.0)
    undiscounted = market_risk(values, 1.0, 5.0, 1.0)
    discounted = market_risk(values, 1.0, 5.0, 0.9)
    assert discounted.var_return_space - undiscounted.var_return_space == pytest.approx(math.log(0.9), abs=1e-12)
    assert discounted.vev > undiscounted.vev


def test_a_total_loss_at_the_var_is_mrm_7_and_stays_json() -> None:
    values = np.concatenate([np.zeros(50), np.ones(950)])  # 5 % of paths return nothing
    result = market_risk(values, 1.0, 3.0, 0.95)
    assert result.mrm == 7 and math.isinf(result.vev)
    assert json.loads(json.dumps(result.to_dict())) == {"var_return_space": None, "vev": None, "mrm": 7}


def test_a_capital_protected_note_is_in_the_lowest_classes() -> None:
    values = np.full(10_000, 1.0)  # repays par whatever happens, bought at par, no discounting
    result = market_risk(values, 1.0, 5.0, 1.0)
    assert result.mrm == 1
    discounted = market_risk(values, 1.0, 5.0, math.exp(-0.03 * 5))  # par at 5 years, 3 % rates
    assert discounted.mrm == 2  # losing the time value of money for sure: VEV ≈ 3.4 % on 5 years


# ---------------------------------------------------------------------------------------------
# 2. Credit risk measure
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rating", "step"),
    [
        ("AAA", 1),
        ("aa+", 1),
        ("AA-", 1),
        ("A+", 2),
        ("a", 2),
        ("A-", 2),
        ("BBB+", 3),
        (" BBB- ", 3),
        ("BB+", 4),
        ("BB", 4),
        ("B-", 5),
        ("CCC+", 6),
        ("CC", 6),
        ("C", 6),
        ("D", 6),
        ("Aaa", 1),
        ("Aa2", 1),
        ("A1", 2),
        ("A3", 2),
        ("Baa1", 3),
        ("BAA3", 3),
        ("ba2", 4),
        ("B3", 5),
        ("Caa1", 6),
        ("Ca", 6),
    ],
)
def test_credit_quality_steps_of_sp_fitch_and_moodys_ratings(rating: str, step: int) -> None:
    assert credit_quality_step(rating) == step
    result = credit_risk(rating, 5.0)
    assert result.credit_quality_step == step
    assert result.crm == step  # CQS 1..6 -> CRM 1..6
    assert result.rating == rating.strip()
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


@pytest.mark.parametrize(
    "rating", ["XYZ", "AAA+", "AA++", "Baa4", "Aaa1", "CC+", "B0", "NR", "WR", "", "unrated", None]
)
def test_unknown_or_missing_ratings_are_refused_naming_the_field(rating: object) -> None:
    with pytest.raises(InvalidInputs) as err:
        credit_risk(rating, 5.0)  # type: ignore[arg-type]
    assert err.value.field == "rating"


def test_unrated_issuer_message_says_why() -> None:
    with pytest.raises(InvalidInputs, match="unrated issuers are not supported"):
        credit_risk("NR", 5.0)


@pytest.mark.parametrize("years", [0.5, 1.0, 12.5, 20.0])
def test_rhp_needing_the_maturity_adjustment_is_refused(years: float) -> None:
    with pytest.raises(InvalidInputs) as err:
        credit_risk("A", years)
    assert err.value.field == "rhp_years"


@pytest.mark.parametrize("years", [1.25, 2.0, 12.0])
def test_rhp_in_the_unadjusted_range_is_accepted(years: float) -> None:
    assert credit_risk("BBB", years).crm == 3


# ---------------------------------------------------------------------------------------------
# 3. Summary risk indicator
# ---------------------------------------------------------------------------------------------


def test_sri_table_all_42_combinations() -> None:
    seen = 0
    for mrm in range(1, 8):
        for crm in range(1, 7):
            assert summary_risk_indicator(mrm, crm) == EXPECTED_SRI[mrm - 1][crm - 1], (mrm, crm)
            seen += 1
    assert seen == 42


def test_sri_is_monotone_and_never_below_the_mrm() -> None:
    for mrm in range(1, 8):
        for crm in range(1, 7):
            sri = summary_risk_indicator(mrm, crm)
            assert sri >= mrm
            if mrm < 7:
                assert summary_risk_indicator(mrm + 1, crm) >= sri
            if crm < 6:
                assert summary_risk_indicator(mrm, crm + 1) >= sri


@pytest.mark.parametrize(
    ("mrm", "crm", "field"),
    [(0, 1, "mrm"), (8, 1, "mrm"), (True, 1, "mrm"), (2.0, 1, "mrm"), (1, 0, "crm"), (1, 7, "crm"), (3, "2", "crm")],
)
def test_sri_refuses_classes_out_of_range(mrm: object, crm: object, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        summary_risk_indicator(mrm, crm)  # type: ignore[arg-type]
    assert err.value.field == field


# ---------------------------------------------------------------------------------------------
# 4. Performance scenarios
# ---------------------------------------------------------------------------------------------

GRID = np.random.default_rng(3).permutation(np.linspace(0.5, 1.5, 1001))  # percentile q is 0.5 + q/100 exactly
STRESSED_GRID = np.random.default_rng(4).permutation(np.linspace(0.2, 1.2, 1001))  # q is 0.2 + q/100


def test_percentiles_amounts_and_returns_on_a_known_grid() -> None:
    result = performance_scenarios({3.0: GRID, 1.0: GRID}, {1.0: STRESSED_GRID, 3.0: STRESSED_GRID}, price=1.0)
    assert [p.holding_period_years for p in result.periods] == [1.0, 3.0]

    rhp = result.period(3.0)
    assert rhp.unfavourable.value == pytest.approx(0.6, abs=1e-12)
    assert rhp.moderate.value == pytest.approx(1.0, abs=1e-12)
    assert rhp.favourable.value == pytest.approx(1.4, abs=1e-12)
    assert rhp.stress.percentile == 5.0 and rhp.stress.value == pytest.approx(0.25, abs=1e-12)
    assert not rhp.stress_capped
    assert rhp.unfavourable.amount == pytest.approx(6_000.0)
    assert rhp.moderate.amount == pytest.approx(10_000.0)
    assert rhp.favourable.amount == pytest.approx(14_000.0)
    assert rhp.stress.amount == pytest.approx(2_500.0)
    assert rhp.return_is_annualised
    assert rhp.unfavourable.average_return_per_year == pytest.approx(0.6 ** (1 / 3) - 1)
    assert rhp.favourable.average_return_per_year == pytest.approx(1.4 ** (1 / 3) - 1)
    assert rhp.moderate.average_return_per_year == pytest.approx(0.0, abs=1e-12)

    one_year = result.period(1.0)
    assert one_year.stress.percentile == 1.0 and one_year.stress.value == pytest.approx(0.21, abs=1e-12)
    assert one_year.stress.average_return_per_year == pytest.approx(-0.79)

    for period in result.periods:
        s, u, m, f = period.stress, period.unfavourable, period.moderate, period.favourable
        assert s.amount <= u.amount <= m.amount <= f.amount
        assert s.average_return_per_year <= u.average_return_per_year <= m.average_return_per_year
        assert m.average_return_per_year <= f.average_return_per_year


def test_amounts_scale_with_the_investment_and_price() -> None:
    base = performance_scenarios({2.0: GRID}, {2.0: STRESSED_GRID}, price=0.98)
    double = performance_scenarios({2.0: GRID}, {2.0: STRESSED_GRID}, price=0.98, investment=20_000.0)
    for name in ("stress", "unfavourable", "moderate", "favourable"):
        one, two = getattr(base.period(2.0), name), getattr(double.period(2.0), name)
        assert two.amount == pytest.approx(2 * one.amount)
        assert two.average_return_per_year == pytest.approx(one.average_return_per_year)
    assert base.period(2.0).moderate.amount == pytest.approx(10_000.0 / 0.98)
    assert base.period(2.0).moderate.average_return_per_year == pytest.approx((1 / 0.98) ** 0.5 - 1)


def test_short_holding_period_uses_the_first_percentile_and_a_plain_return() -> None:
    assert stress_percentile(0.5) == 1.0 and stress_percentile(1.0) == 1.0 and stress_percentile(1.5) == 5.0
    half = performance_scenarios({0.5: GRID}, {0.5: STRESSED_GRID}, price=1.0).period(0.5)
    assert not half.return_is_annualised
    assert half.unfavourable.average_return_per_year == pytest.approx(-0.4)
    assert half.stress.value == pytest.approx(0.21, abs=1e-12)


def test_stress_above_the_unfavourable_value_is_capped_and_flagged() -> None:
    narrow = np.linspace(0.9, 1.1, 1001)  # a stressed distribution whose 5th percentile (0.91) beats 0.6
    period = performance_scenarios({5.0: GRID}, {5.0: narrow}, price=1.0).period(5.0)
    assert period.stress_capped
    assert period.stress.value == pytest.approx(period.unfavourable.value)
    assert period.stress.amount == pytest.approx(period.unfavourable.amount)


def test_scenarios_to_dict_is_json() -> None:
    result = performance_scenarios({1.0: GRID, 3.0: GRID}, {1.0: STRESSED_GRID, 3.0: STRESSED_GRID}, price=1.0)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["investment"] == 10_000.0
    assert [p["holding_period_years"] for p in data["periods"]] == [1.0, 3.0]
    assert data["periods"][1]["favourable"]["amount"] == pytest.approx(14_000.0)


def test_priips_indicators_bundle() -> None:
    sigma, years, df = 0.15, 5.0, math.exp(-0.025 * 5.0)
    values = lognormal_values(sigma, years, discount_factor=df)
    stressed = lognormal_values(0.30, years, discount_factor=df)
    one_year = lognormal_values(sigma, 1.0, discount_factor=df)
    one_year_stressed = lognormal_values(0.30, 1.0, discount_factor=df)
    result = priips_indicators(
        values, 1.0, years, df, "A-", {1.0: one_year, 5.0: values}, {1.0: one_year_stressed, 5.0: stressed}
    )
    assert result.market_risk.mrm == 4 and result.credit_risk.crm == 2 and result.sri == 4
    high_yield = priips_indicators(values, 1.0, years, df, "BB+", {5.0: values}, {5.0: stressed})
    assert high_yield.credit_risk.crm == 4 and high_yield.sri == 5
    data = json.loads(json.dumps(result.to_dict()))
    assert data["sri"] == 4 and data["market_risk"]["mrm"] == 4 and len(data["performance_scenarios"]["periods"]) == 2


# ---------------------------------------------------------------------------------------------
# 5. Bad inputs
# ---------------------------------------------------------------------------------------------

GOOD = np.linspace(0.5, 1.5, 101)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"values_at_rhp": np.array([])}, "values_at_rhp"),
        ({"values_at_rhp": np.array([1.0, np.nan])}, "values_at_rhp"),
        ({"values_at_rhp": np.array([1.0, np.inf])}, "values_at_rhp"),
        ({"values_at_rhp": np.array([1.0, -0.1])}, "values_at_rhp"),
        ({"values_at_rhp": ["a", "b"]}, "values_at_rhp"),
        ({"price": 0.0}, "price"),
        ({"price": -1.0}, "price"),
        ({"price": float("nan")}, "price"),
        ({"price": "1"}, "price"),
        ({"rhp_years": 0.0}, "rhp_years"),
        ({"rhp_years": float("inf")}, "rhp_years"),
        ({"discount_factor": 0.0}, "discount_factor"),
        ({"discount_factor": float("nan")}, "discount_factor"),
    ],
)
def test_market_risk_bad_inputs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"values_at_rhp": GOOD, "price": 1.0, "rhp_years": 3.0, "discount_factor": 0.95}
    args.update(kwargs)
    with pytest.raises(InvalidInputs) as err:
        market_risk(**args)  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"values": {}}, "values"),
        ({"values": {0.0: GOOD}}, "values"),
        ({"values": {3.0: np.array([])}}, "values"),
        ({"values": {3.0: np.array([np.nan])}}, "values"),
        ({"values": [GOOD]}, "values"),
        ({"stressed_values": {}}, "stressed_values"),
        ({"stressed_values": {2.0: GOOD}}, "stressed_values"),
        ({"stressed_values": {3.0: GOOD, 1.0: GOOD}}, "stressed_values"),
        ({"stressed_values": {3.0: np.array([-1.0])}}, "stressed_values"),
        ({"price": 0.0}, "price"),
        ({"investment": 0.0}, "investment"),
        ({"investment": float("nan")}, "investment"),
    ],
)
def test_performance_scenarios_bad_inputs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"values": {3.0: GOOD}, "stressed_values": {3.0: GOOD}, "price": 1.0}
    args.update(kwargs)
    with pytest.raises(InvalidInputs) as err:
        performance_scenarios(**args)  # type: ignore[arg-type]
    assert err.value.field == field


def test_priips_indicators_needs_the_rhp_among_the_scenarios() -> None:
    with pytest.raises(InvalidInputs) as err:
        priips_indicators(GOOD, 1.0, 3.0, 0.95, "A", {1.0: GOOD}, {1.0: GOOD})
    assert err.value.field == "scenario_values"


def test_priips_indicators_bad_rating_names_the_field() -> None:
    with pytest.raises(InvalidInputs) as err:
        priips_indicators(GOOD, 1.0, 3.0, 0.95, "Z", {3.0: GOOD}, {3.0: GOOD})
    assert err.value.field == "rating"
