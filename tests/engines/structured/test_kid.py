"""PRIIPs KID indicators from the engine's own simulation (`kid.kid_indicators`).

The PRIIPs arithmetic itself (VEV, MRM and SRI tables, credit steps, performance scenarios) is tested in
test_priips.py; here the notes are simulated and the indicators must order products as their risk does.
"""

from __future__ import annotations

import json
import math

import pytest

from engines.structured.kid import MIN_PRIIPS_PATHS, KidOptions, kid_indicators
from engines.structured.market import Curve, MarketData, UnderlyingMarket
from engines.structured.pricing import PricingOptions
from engines.structured.priips import summary_risk_indicator
from engines.structured.spec import AutocallSpec

R = 0.02
OPTIONS = PricingOptions(paths=16_384, seed=9, target_margin=None)


def market(vol: float) -> MarketData:
    underlying = UnderlyingMarket(spot=100.0, dividend_yield=Curve.flat(0.01), volatility=vol)
    return MarketData(rates=Curve.flat(R), underlyings={"A": underlying})


def note(name: str, barrier: float | None, coupon: float = 0.05, protection: float = 0.0) -> AutocallSpec:
    """3-year quarterly autocallable on A with a European knock-in at `barrier` (none when None)."""
    knock_in = None if barrier is None else {"barrier": barrier, "monitoring": "european"}
    return AutocallSpec(name=name, underlyings=["A"], maturity_years=3.0, coupon={"rate": coupon},
                        knock_in=knock_in, capital_protection=protection)  # fmt: skip


def mrm(ind: dict) -> int:
    return ind["market_risk"]["mrm"]


def test_indicators_are_in_range_consistent_and_json() -> None:
    ind = kid_indicators(note("standard", 0.6), market(0.25), OPTIONS)
    assert 1 <= ind["sri"] <= 7 and 1 <= mrm(ind) <= 7 and 1 <= ind["credit_risk"]["crm"] <= 6
    assert ind["sri"] == summary_risk_indicator(mrm(ind), ind["credit_risk"]["crm"])
    assert ind["rhp_years"] == 3.0 and ind["name"] == "standard" and ind["paths"] == OPTIONS.paths
    assert ind["model"] == "bs" and ind["stressed_vol_multiplier"] == KidOptions().stressed_vol_multiplier
    assert json.loads(json.dumps(ind)) == ind


def test_a_capital_protected_note_is_in_the_lowest_market_risk_classes() -> None:
    protected = note("protected", None, coupon=0.03, protection=1.0)
    ind = kid_indicators(protected, market(0.25), OPTIONS)
    assert mrm(ind) <= 2, ind["market_risk"]
    # par at worst, rolled up at the risk-free rate: the VaR in return space is no worse than discounting
    assert ind["market_risk"]["var_return_space"] >= -R * 3.0 - 1e-9


def test_a_knock_in_barrier_closer_to_par_is_riskier() -> None:
    safer = kid_indicators(note("KI 50%", 0.5), market(0.20), OPTIONS)
    riskier = kid_indicators(note("KI 90%", 0.9), market(0.20), OPTIONS)
    assert mrm(riskier) >= mrm(safer) and riskier["sri"] >= safer["sri"]
    assert riskier["market_risk"]["vev"] > safer["market_risk"]["vev"]
    assert mrm(riskier) > mrm(safer), (safer["market_risk"], riskier["market_risk"])


def test_higher_volatility_is_riskier() -> None:
    calm = kid_indicators(note("KI 90%", 0.9), market(0.20), OPTIONS)
    wild = kid_indicators(note("KI 90%", 0.9), market(0.35), OPTIONS)
    assert mrm(wild) >= mrm(calm) and wild["sri"] >= calm["sri"]
    assert wild["market_risk"]["vev"] > calm["market_risk"]["vev"]
    assert mrm(wild) > mrm(calm), (calm["market_risk"], wild["market_risk"])


def test_the_stress_scenario_uses_the_stressed_volatility() -> None:
    ind = kid_indicators(note("standard", 0.6), market(0.25), OPTIONS)
    period = ind["performance_scenarios"]["periods"][0]
    assert period["holding_period_years"] == 3.0
    assert period["stress"]["value"] <= period["unfavourable"]["value"] <= period["moderate"]["value"]
    assert period["moderate"]["value"] <= period["favourable"]["value"]


def test_fewer_than_the_regulatory_minimum_of_paths_is_refused() -> None:
    assert MIN_PRIIPS_PATHS == 10_000
    too_few = OPTIONS.model_copy(update={"paths": MIN_PRIIPS_PATHS - 2})
    with pytest.raises(ValueError, match=r"^paths: .*at least 10000"):
        kid_indicators(note("standard", 0.6), market(0.25), too_few)
    enough = OPTIONS.model_copy(update={"paths": MIN_PRIIPS_PATHS})
    assert kid_indicators(note("standard", 0.6), market(0.25), enough)["paths"] == MIN_PRIIPS_PATHS


def test_a_holding_period_before_maturity_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^rhp_years: 2\.0 is before the maturity 3\.0"):
        kid_indicators(note("standard", 0.6), market(0.25), OPTIONS, KidOptions(rhp_years=2.0))


def test_a_holding_period_after_maturity_rolls_the_cash_flows_up() -> None:
    at_maturity = kid_indicators(note("protected", None, 0.03, 1.0), market(0.25), OPTIONS)
    later = kid_indicators(note("protected", None, 0.03, 1.0), market(0.25), OPTIONS, KidOptions(rhp_years=4.0))
    assert later["rhp_years"] == 4.0
    moderate = [x["performance_scenarios"]["periods"][0]["moderate"]["value"] for x in (at_maturity, later)]
    # one more year of risk-free reinvestment of a protected note's payout
    assert moderate[1] == pytest.approx(moderate[0] * math.exp(R), rel=1e-6)
