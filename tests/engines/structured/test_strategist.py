"""The market strategist's numerical pieces: market checks, the scenario set and the assumption checks.

Markets are built from the bundled sample market; figures (priced probabilities) are small
hand-made numbers, so each test states the contradiction it sets up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bus.events.structured import MarketCheck as MarketCheckEvent
from bus.events.structured import MarketScenario, StructureAssumptions
from engines.structured.assumptions import (
    CORRELATION_EXCESS_LIMIT,
    VOL_RATIO_LIMIT,
    AssumptionCheck,
    check_assumptions,
    pricing_figures,
)
from engines.structured.market import MarketData
from engines.structured.market_checks import MarketCheck, check_market, market_is_usable
from engines.structured.scenarios import HORIZONS_MONTHS, QUANTILES, Scenario, generate_scenarios
from engines.structured.spec import AutocallSpec, KnockIn

SAMPLE = Path("src/risklab/data/structured/market.json")
MARKET = MarketData.model_validate_json(SAMPLE.read_text())
NAMES = ["SX5E", "SPX", "NKY"]
SEED = 20261123
SCENARIOS = generate_scenarios(MARKET, NAMES, SEED)
FIGURES = {
    "autocall_probability": 0.65,
    "knock_in_probability": 0.22,
    "capital_loss_probability": 0.22,
    "expected_life_years": 2.5,
}


def _raw() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


def _three(correlation: list[list[float]], **extra: Any) -> dict[str, Any]:
    """The sample market cut down to SX5E, SPX and NKY with the given correlation."""
    raw = _raw()
    raw["underlyings"] = {n: raw["underlyings"][n] for n in NAMES}
    raw["correlation"] = correlation
    raw.update(extra)
    return raw


def _by_check(checks: list[MarketCheck]) -> dict[str, MarketCheck]:
    return {c.check: c for c in checks}


def _spec(barrier: float = 0.6, maturity: float = 5.0, names: list[str] = NAMES, **kw: Any) -> AutocallSpec:
    return AutocallSpec(
        name="note", underlyings=names, maturity_years=maturity, knock_in=KnockIn(barrier=barrier), **kw
    )


def _rejected(check: AssumptionCheck) -> dict[str, list[str]]:
    return {r.assumption: r.scenarios for r in check.rejected}


# ---------------------------------------------------------------------------------------------- market checks


def test_the_sample_market_passes_every_check() -> None:
    checks = check_market(MARKET)
    assert market_is_usable(checks)
    assert {c.status for c in checks} == {"ok"}, [c for c in checks if c.status != "ok"]
    names = {c.check for c in checks}
    for name in MARKET.underlyings:
        assert {f"vol_arbitrage:{name}", f"skew:{name}", f"atm_vol:{name}"} <= names
    assert {"forwards", "rate_curve", "correlation_psd", "correlation_range"} <= names
    for c in checks:
        MarketCheckEvent.model_validate(c.to_dict())


NON_PSD = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]


def test_a_non_psd_correlation_warns_when_repaired_and_fails_when_not() -> None:
    repaired = MarketData.model_validate(_three(NON_PSD, repair_correlation=True))
    checks = _by_check(check_market(repaired))
    assert checks["correlation_psd"].status == "warning"
    assert "repaired" in checks["correlation_psd"].detail
    assert market_is_usable(check_market(repaired))
    # the model refuses it unrepaired, so build it unvalidated: the checks must still catch it
    with pytest.raises(ValueError, match="not positive semi-definite"):
        MarketData.model_validate(_three(NON_PSD))
    broken = repaired.model_copy(update={"repair_correlation": False})
    checks = _by_check(check_market(broken))
    assert checks["correlation_psd"].status == "failed"
    assert not market_is_usable(list(checks.values()))


def test_correlations_outside_the_historical_range_warn() -> None:
    corr = [[1.0, 0.99, 0.5], [0.99, 1.0, 0.5], [0.5, 0.5, 1.0]]
    checks = _by_check(check_market(MarketData.model_validate(_three(corr))))
    assert checks["correlation_psd"].status == "ok"
    assert checks["correlation_range"].status == "warning" and "SX5E/SPX 0.990" in checks["correlation_range"].detail


def test_an_unknown_underlying_fails_naming_it() -> None:
    checks = check_market(MARKET, ["SX5E", "XYZ"])
    failed = [c for c in checks if c.status == "failed"]
    assert [c.check for c in failed] == ["underlying:XYZ"] and "XYZ" in failed[0].detail
    assert not market_is_usable(checks)
    assert "vol_arbitrage:SX5E" in {c.check for c in checks} and "skew:SPX" not in {c.check for c in checks}


@pytest.mark.parametrize(("vol", "status"), [(0.2, "ok"), (0.07, "warning"), (0.7, "warning"), (0.02, "failed")])
def test_atm_vols_against_historical_ranges(vol: float, status: str) -> None:
    market = MarketData(underlyings={"X": {"spot": 100.0, "volatility": vol}})
    assert _by_check(check_market(market))["atm_vol:X"].status == status


def test_rate_curve_skew_arbitrage_and_forward_checks() -> None:
    flat = {"spot": 100.0, "volatility": 0.2}
    high = MarketData(rates={"times": [1.0, 2.0], "rates": [0.02, 0.25]}, underlyings={"X": flat})
    assert _by_check(check_market(high))["rate_curve"].status == "failed"
    inverted = MarketData(rates={"times": [1.0, 2.0], "rates": [0.05, 0.01]}, underlyings={"X": flat})
    assert _by_check(check_market(inverted))["rate_curve"].status == "warning"  # negative forward rate
    negative = MarketData(rates={"times": [1.0, 2.0], "rates": [-0.005, -0.004]}, underlyings={"X": flat})
    assert _by_check(check_market(negative))["rate_curve"].status == "ok"
    assert _by_check(check_market(high))["skew:X"].status == "warning"  # no surface: flat in strike

    def surface(rows: list[list[float]]) -> MarketData:
        quotes = {"expiries": [0.5, 1.0], "strikes": [0.8, 0.9, 1.0, 1.1, 1.2], "vols": rows}
        return MarketData(underlyings={"X": {"spot": 100.0, "surface": quotes}})

    inverted_skew = _by_check(check_market(surface([[0.18, 0.19, 0.2, 0.21, 0.22]] * 2)))
    assert inverted_skew["skew:X"].status == "warning" and inverted_skew["vol_arbitrage:X"].status == "ok"
    calendar = _by_check(check_market(surface([[0.4, 0.35, 0.3, 0.3, 0.32], [0.2, 0.17, 0.15, 0.15, 0.16]])))
    assert calendar["vol_arbitrage:X"].status == "failed" and "calendar" in calendar["vol_arbitrage:X"].detail

    quoted = MarketData(underlyings={"X": {**flat, "forwards": [{"time": 1.0, "forward": 100.05}]}})
    check = _by_check(check_market(quoted))["forwards"]
    assert check.status == "ok" and "+0.05" in check.detail


# ---------------------------------------------------------------------------------------------- scenarios


def test_about_fifty_scenarios_with_every_horizon_and_weights_summing_to_one() -> None:
    assert 45 <= len(SCENARIOS) <= 55
    forward = [s for s in SCENARIOS if s.kind == "forward"]
    historical = [s for s in SCENARIOS if s.kind == "historical"]
    assert len(forward) == len(HORIZONS_MONTHS) * len(QUANTILES) and len(historical) >= 10
    assert {s.horizon_months for s in forward} == set(HORIZONS_MONTHS)
    for h in HORIZONS_MONTHS:
        assert sum(s.probability for s in forward if s.horizon_months == h) == pytest.approx(1.0)
    assert all(0 < s.probability <= 0.1 for s in historical)
    assert {s.regime for s in SCENARIOS} <= {"calm", "normal", "stressed", "crisis", "recovery"}
    assert len({s.scenario_id for s in SCENARIOS}) == len(SCENARIOS)
    for s in SCENARIOS:
        assert set(s.equity_return) == set(NAMES) == set(s.realised_vol)
        MarketScenario.model_validate(s.to_dict())
        if s.kind == "forward":
            assert len(s.regimes) == s.horizon_months
    assert "stylised" in historical[0].description


def test_forward_quantiles_are_ordered_by_the_worst_return() -> None:
    for h in HORIZONS_MONTHS:
        at = [s for s in SCENARIOS if s.kind == "forward" and s.horizon_months == h]
        worst = [min(s.equity_return.values()) for s in at]
        assert worst == sorted(worst)


def test_scenarios_are_deterministic_for_a_seed_and_differ_for_another() -> None:
    again = generate_scenarios(MARKET, NAMES, SEED)
    assert [s.to_dict() for s in again] == [s.to_dict() for s in SCENARIOS]
    other = generate_scenarios(MARKET, NAMES, SEED + 1)
    forward = [s.equity_return for s in SCENARIOS if s.kind == "forward"]
    assert forward != [s.equity_return for s in other if s.kind == "forward"]
    assert [s.to_dict() for s in other if s.kind == "historical"] == [
        s.to_dict() for s in SCENARIOS if s.kind == "historical"
    ]


def test_scenarios_refuse_unknown_underlyings_and_bad_horizons() -> None:
    with pytest.raises(KeyError, match="XYZ"):
        generate_scenarios(MARKET, ["SX5E", "XYZ"], 1)
    with pytest.raises(ValueError, match="horizons_months"):
        generate_scenarios(MARKET, ["SX5E"], 1, horizons_months=(0, 12))
    single = generate_scenarios(MARKET, ["SX5E"], 1, horizons_months=(12,))
    assert {s.horizon_months for s in single} == {12}


# ---------------------------------------------------------------------------------------------- assumptions


def test_a_note_priced_near_the_scenarios_is_accepted() -> None:
    check = check_assumptions(_spec(), FIGURES, MARKET, SCENARIOS)
    assert check.accepted, check.rejected
    assert StructureAssumptions.model_validate(check.to_dict()).accepted
    assert any("historical" in n for n in check.notes)


def test_a_note_priced_at_a_vol_far_below_the_scenarios_is_rejected() -> None:
    raw = _raw()
    for u in raw["underlyings"].values():
        u["volatility"], u["surface"] = 0.08, None
    low = MarketData.model_validate(raw)
    check = check_assumptions(_spec(), FIGURES, low, SCENARIOS)
    rejected = _rejected(check)
    assert {f"volatility:{n}" for n in NAMES} <= set(rejected)
    by_id = {s.scenario_id: s for s in SCENARIOS}
    for sid in rejected["volatility:SX5E"]:
        assert by_id[sid].kind == "forward" and by_id[sid].realised_vol["SX5E"] > VOL_RATIO_LIMIT * 0.08
    assert not any(
        a.startswith("volatility") for a in _rejected(check_assumptions(_spec(), FIGURES, MARKET, SCENARIOS))
    )


def _stress_scenario(sid: str, correlation: float, horizon: int = 12) -> Scenario:
    return Scenario(
        scenario_id=sid, kind="forward", regime="crisis", horizon_months=horizon, probability=1.0,
        equity_return=dict.fromkeys(NAMES, -0.1), realised_vol=dict.fromkeys(NAMES, 0.2),
        correlation=correlation, rate_shift=0.0, description="hand-made crisis scenario",
    )  # fmt: skip


def test_a_worst_of_priced_at_too_high_a_correlation_is_rejected() -> None:
    """Direction: a worst-of priced at a correlation ABOVE the stress scenarios' understates dispersion and so the
    knock-in risk of the worst underlying; priced below them it is conservative and passes."""
    high = MarketData.model_validate(_three([[1.0, 0.9, 0.9], [0.9, 1.0, 0.9], [0.9, 0.9, 1.0]]))
    lower_crisis = [_stress_scenario("crisis-0.6", 0.6)]
    rejected = _rejected(check_assumptions(_spec(), FIGURES, high, lower_crisis))
    assert rejected["correlation"] == ["crisis-0.6"]
    # within the tolerance: 0.9 - 0.8 <= 0.15
    assert "correlation" not in _rejected(check_assumptions(_spec(), FIGURES, high, [_stress_scenario("c", 0.8)]))
    # a pricing correlation below the stress scenarios' is conservative
    low = MarketData.model_validate(_three([[1.0, 0.3, 0.3], [0.3, 1.0, 0.3], [0.3, 0.3, 1.0]]))
    assert "correlation" not in _rejected(check_assumptions(_spec(), FIGURES, low, lower_crisis))
    # against the generated scenarios: the sample's correlations pass, a 0.9 pricing does not
    assert "correlation" in _rejected(check_assumptions(_spec(), FIGURES, high, SCENARIOS))
    # only worst-of baskets are checked
    average = _spec(basket="average")
    assert "correlation" not in _rejected(check_assumptions(average, FIGURES, high, lower_crisis))
    assert CORRELATION_EXCESS_LIMIT == 0.15


def test_a_high_barrier_with_a_tiny_priced_knock_in_probability_is_flagged() -> None:
    figures = {**FIGURES, "knock_in_probability": 0.002}
    check = check_assumptions(_spec(barrier=0.9), figures, MARKET, SCENARIOS)
    rejected = _rejected(check)
    assert rejected["barrier"] and all(sid.startswith("fwd-") for sid in rejected["barrier"])
    by_id = {s.scenario_id: s for s in SCENARIOS}
    assert all(min(by_id[sid].equity_return.values()) < -0.1 for sid in rejected["barrier"])
    # historical episodes breach a 0.9 barrier, and a knock-in probability under 1% is contradicted by them
    assert "hist-gfc2008-12m" in rejected["historical_barrier"]
    # the same barrier priced with a realistic knock-in probability passes both
    fair = check_assumptions(_spec(barrier=0.9), {**FIGURES, "knock_in_probability": 0.45}, MARKET, SCENARIOS)
    assert not {"barrier", "historical_barrier"} & set(_rejected(fair))
    assert any("hist-gfc2008" in n for n in fair.notes)


def test_the_first_autocall_date_is_checked_when_its_probability_is_given() -> None:
    spec = _spec(maturity=3.0)  # quarterly: first callable date at 3 months, trigger 1.0
    at_3m = [s for s in SCENARIOS if s.kind == "forward" and s.horizon_months == 3]
    share = sum(s.probability for s in at_3m if min(s.equity_return.values()) >= 0.0)
    assert "autocall" not in _rejected(check_assumptions(spec, FIGURES, MARKET, SCENARIOS))  # not given: skipped
    near = check_assumptions(spec, {**FIGURES, "first_call_probability": share + 0.1}, MARKET, SCENARIOS)
    assert "autocall" not in _rejected(near)
    far = check_assumptions(spec, {**FIGURES, "first_call_probability": min(1.0, share + 0.4)}, MARKET, SCENARIOS)
    ids = _rejected(far)["autocall"]
    assert ids and all(min(next(s for s in at_3m if s.scenario_id == i).equity_return.values()) < 0 for i in ids)


def test_pricing_figures_from_a_price_result() -> None:
    spec = _spec(maturity=1.0, autocall={"no_call_observations": 1})
    result = {"autocall_probability": [0.0, 0.3, 0.2, 0.1], "knock_in_probability": 0.1,
              "capital_loss_probability": 0.08, "expected_life_years": 0.7}  # fmt: skip
    figures = pricing_figures(spec, result)
    assert figures["autocall_probability"] == pytest.approx(0.6)
    assert figures["first_call_probability"] == 0.3
    assert figures["knock_in_probability"] == 0.1 and np.isfinite(list(figures.values())).all()
