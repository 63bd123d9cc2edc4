"""SA-CCR against the Basel Committee's worked examples, hand computations and limit cases.

The reference is BCBS 279 (2014), Annex 4a "Application of the SA-CCR to sample portfolios" (the same
examples are CRE99 of the Basel Framework), and Annex 4b for the margined replacement cost. The inputs are
the document's trades (fixtures/bcbs279_example_*.json) and every expected figure below is the one the
document prints, checked to half a unit of its last printed digit. The Open Source Risk Engine's SA-CCR is
not used (see the desk notes: it gets the interest rate add-on wrong).
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engines import registry
from engines.registry import InvalidInputs, split_named_field
from engines.xva import saccr as S
from engines.xva.compute.saccr import saccr_kind
from engines.xva.saccr import (
    compile_netting_set,
    ead_batch,
    exposure,
    leave_one_out,
    option_delta,
    pfe_multiplier,
    saccr,
    saccr_batch,
    supervisory_delta,
    with_terms,
    with_trades,
    without_trades,
)
from engines.xva.saccr_models import HedgingSetAddOn, NettingSet, SaccrResult, SaccrTrade

FIXTURES = Path(__file__).parent / "fixtures"


def example(k: int, **changes: Any) -> NettingSet:
    return NettingSet.model_validate({**json.loads((FIXTURES / f"bcbs279_example_{k}.json").read_text()), **changes})


def printed(actual: float, figure: float, decimals: int = 0) -> None:
    """`actual` rounds to the printed `figure` (within half a unit of its last digit)."""
    assert abs(actual - figure) <= 0.5 * 10.0**-decimals + 1e-9, (actual, figure)


def hedging_set(result: SaccrResult, name: str) -> HedgingSetAddOn:
    return next(h for h in result.hedging_sets if h.hedging_set == name)


def trade(result: SaccrResult, trade_id: str) -> Any:
    return next(t for t in result.trades if t.id == trade_id)


# ---- BCBS 279 Annex 4a -----------------------------------------------------------------------------


def test_example_1_interest_rate_netting_set() -> None:
    """Example 1: two USD swaps and a EUR swaption, unmargined. Published: EAD 569."""
    r = saccr(example(1))
    printed(r.replacement_cost, 60)
    assert r.pfe_multiplier == 1.0
    # the table of adjusted notionals: SD 7.87 / 3.63 / 7.49; d 78,694 / 36,254 / 37,428; delta 1 / -1 / -0.27
    for tid, sd, d, delta in (
        ("ex1-trade1", 7.87, 78_694, 1),
        ("ex1-trade2", 3.63, 36_254, -1),
        ("ex1-trade3", 7.49, 37_428, -0.27),
    ):
        t = trade(r, tid)
        notional = 5000 if tid == "ex1-trade3" else 10_000
        printed(t.adjusted_notional / notional, sd, 2)
        printed(t.adjusted_notional, d)
        printed(t.supervisory_delta, delta, 2)
        assert t.maturity_factor == 1.0
    # effective notionals per bucket: D(USD,2) = -36,254, D(USD,3) = 78,694, D(EUR,3) = -10,083
    usd, eur = r.ir_maturity_buckets["USD"], r.ir_maturity_buckets["EUR"]
    assert usd[0] == 0.0 and eur[:2] == [0.0, 0.0]
    printed(usd[1], -36_254)
    printed(usd[2], 78_694)
    printed(eur[2], -10_083)
    # hedging-set effective notionals 59,270 and 10,083; SF 0.5%; AddOn(IR) = 347
    printed(hedging_set(r, "USD").add_on / 0.005, 59_270)
    printed(hedging_set(r, "EUR").add_on / 0.005, 10_083)
    printed(r.add_ons["interest_rate"], 347)
    printed(r.add_on, 347)
    printed(r.ead, 569)


def test_example_2_credit_netting_set() -> None:
    """Example 2: CDS on Firm A (AA), Firm B (BBB) and CDX.IG. Published: multiplier 0.965, EAD 381."""
    r = saccr(example(2))
    printed(r.replacement_cost, 0)
    for tid, sd, d, delta in (
        ("ex2-trade1", 2.79, 27_858, 1),
        ("ex2-trade2", 5.18, 51_836, -1),
        ("ex2-trade3", 4.42, 44_240, 1),
    ):
        t = trade(r, tid)
        printed(t.adjusted_notional / 10_000, sd, 2)
        printed(t.adjusted_notional, d)
        assert t.supervisory_delta == delta
    addons = hedging_set(r, "credit").risk_factor_add_ons
    printed(addons["Firm A"], 106)
    printed(addons["Firm B"], -280)
    printed(addons["CDX.IG 5y"], 168)
    # the document's table: sum of rho x AddOn 47.5, its square 2,253; idiosyncratic component 77,344
    rho = {"Firm A": 0.5, "Firm B": 0.5, "CDX.IG 5y": 0.8}
    systematic = sum(rho[k] * a for k, a in addons.items())
    idiosyncratic = sum((1 - rho[k] ** 2) * a**2 for k, a in addons.items())
    printed(systematic, 47.5, 1)
    printed(systematic**2, 2_253)
    printed(idiosyncratic, 77_344)
    printed(r.add_ons["credit"], 282)
    printed(r.pfe_multiplier, 0.965, 3)
    printed(r.ead, 381)


def test_example_3_commodity_netting_set() -> None:
    """Example 3: WTI and Brent forwards (one type, crude oil) and a silver forward. Published: EAD 5,406."""
    r = saccr(example(3))
    printed(r.replacement_cost, 20)
    assert r.pfe_multiplier == 1.0
    assert trade(r, "ex3-trade1").maturity_factor == pytest.approx(math.sqrt(9 / 12), abs=1e-15)
    energy, metals = hedging_set(r, "energy"), hedging_set(r, "metals")
    printed(energy.effective_notionals["crude oil"], -11_340)
    printed(energy.risk_factor_add_ons["crude oil"], -2_041)
    printed(energy.add_on, 2_041)
    printed(metals.effective_notionals["silver"], 10_000)
    printed(metals.add_on, 1_800)
    printed(r.add_ons["commodity"], 3_841)
    printed(r.ead, 5_406)


def test_example_4_interest_rate_and_credit() -> None:
    """Example 4: the trades of examples 1 and 2. Published: RC 40, AddOn 347 + 282 = 629, EAD 936."""
    r = saccr(example(4))
    printed(r.replacement_cost, 40)
    printed(r.add_ons["interest_rate"], 347)
    printed(r.add_ons["credit"], 282)
    printed(r.add_on, 629)
    assert r.pfe_multiplier == 1.0
    printed(r.ead, 936)


def test_example_5_margined_netting_set() -> None:
    """Example 5: examples 1 and 3 under weekly margining. Published: MPOR 14, AddOn 1,401, EAD 1,879."""
    ns = example(5)
    r = saccr(ns)
    assert r.margined and r.mpor_business_days == 14  # 10 + 5 - 1 (BCBS 279), 9 + 5 (CRE52.50)
    printed(r.value, 80)
    printed(r.net_collateral, 200)
    printed(ns.threshold + ns.minimum_transfer_amount - ns.nica, -145)
    printed(r.replacement_cost, 0)
    assert r.maturity_factor == pytest.approx(1.5 * math.sqrt(14 / 250), abs=1e-15)
    usd, eur = r.ir_maturity_buckets["USD"], r.ir_maturity_buckets["EUR"]
    printed(usd[1], -12_869)
    printed(usd[2], 27_934)
    printed(eur[2], -3_579)
    printed(hedging_set(r, "USD").add_on / 0.005, 21_039)
    printed(hedging_set(r, "EUR").add_on / 0.005, 3_579)
    printed(r.add_ons["interest_rate"], 123)
    energy, metals = hedging_set(r, "energy"), hedging_set(r, "metals")
    printed(energy.effective_notionals["crude oil"], -3_550)
    printed(energy.risk_factor_add_ons["crude oil"], -639)
    printed(energy.add_on, 639)
    printed(metals.effective_notionals["silver"], 3_550)
    printed(metals.add_on, 639)
    printed(r.add_ons["commodity"], 1_278)
    printed(r.add_on, 1_401)
    printed(r.pfe_multiplier, 0.958, 3)
    printed(r.ead, 1_879)
    assert not r.capped and r.unmargined_ead is not None and r.unmargined_ead > r.ead


# ---- BCBS 279 Annex 4b: the margined replacement cost ---------------------------------------------


def _one_trade(mtm: float) -> list[dict[str, Any]]:
    return [
        {
            "id": "t",
            "asset_class": "interest_rate",
            "currency": "EUR",
            "notional": 1.0,
            "direction": "long",
            "maturity_years": 5.0,
            "mtm": mtm,
        }
    ]


@pytest.mark.parametrize(
    ("mtm", "terms", "v_minus_c", "floor_term", "rc"),
    [
        # 1: VM 80 received, IA 10 held, MTA 1: terms -10, -9, 0 -> RC 0
        (
            80,
            {"variation_margin_held": 80, "independent_collateral_held": 10, "minimum_transfer_amount": 1},
            -10,
            -9,
            0,
        ),
        # 2: VM 79.5, ICA 10 held and 10 posted unsegregated, MTA 1: terms 0.5, 1, 0 -> RC 1
        (
            80,
            {
                "variation_margin_held": 79.5,
                "independent_collateral_held": 10,
                "independent_collateral_posted": 10,
                "minimum_transfer_amount": 1,
            },
            0.5,
            1,
            1,
        ),
        # 3: clearing member, VM 50 posted, IM 10 posted bankruptcy-remote (not in NICA): RC 0
        (-50, {"variation_margin_posted": 50}, 0, 0, 0),
        # 4: the same, IM posted not bankruptcy-remote: terms 10, 10 -> RC 10
        (-50, {"variation_margin_posted": 50, "independent_collateral_posted": 10}, 10, 10, 10),
        # 5: maintenance margin 140% of MtM 50: 80 held of which ICA 20: terms -30, -20 -> RC 0
        (50, {"variation_margin_held": 60, "independent_collateral_held": 20}, -30, -20, 0),
    ],
)
def test_annex_4b_replacement_cost(
    mtm: float, terms: dict[str, float], v_minus_c: float, floor_term: float, rc: float
) -> None:
    ns = NettingSet.model_validate({"trades": _one_trade(mtm), "margined": True, **terms})
    r = saccr(ns)
    assert r.value - r.net_collateral == pytest.approx(v_minus_c)
    assert ns.threshold + ns.minimum_transfer_amount - ns.nica == pytest.approx(floor_term)
    assert r.replacement_cost == pytest.approx(rc)


# ---- maturity factors, MPOR floors and the unmargined cap --------------------------------------------


def _swap(
    tid: str = "s",
    *,
    maturity: float = 5.0,
    notional: float = 1_000_000.0,
    direction: str = "long",
    mtm: float = 0.0,
    currency: str = "EUR",
    **more: Any,
) -> dict[str, Any]:
    return {
        "id": tid,
        "asset_class": "interest_rate",
        "currency": currency,
        "notional": notional,
        "direction": direction,
        "maturity_years": maturity,
        "mtm": mtm,
        **more,
    }


@pytest.mark.parametrize(
    ("maturity", "mf"), [(0.5, math.sqrt(0.5)), (1.0, 1.0), (7.0, 1.0), (0.01, math.sqrt(10 / 250))]
)
def test_unmargined_maturity_factor(maturity: float, mf: float) -> None:
    r = saccr(NettingSet(trades=[SaccrTrade.model_validate(_swap(maturity=maturity))]))
    assert r.trades[0].maturity_factor == pytest.approx(mf, abs=1e-15)


@pytest.mark.parametrize(
    ("terms", "mpor"),
    [
        ({}, 10),  # daily margining
        ({"remargin_business_days": 5}, 14),  # 9 + N
        ({"remargin_business_days": 20}, 29),
        ({"illiquid": True}, 20),
        ({"remargin_business_days": 15, "illiquid": True}, 24),
        ({"margin_disputes": True}, 20),  # the floor doubles
        ({"remargin_business_days": 5, "margin_disputes": True}, 28),
        ({"mpor_business_days": 15}, 15),  # the bank's own estimate above the floor
        ({"mpor_business_days": 5}, 10),  # below it: the floor
    ],
)
def test_margin_period_of_risk(terms: dict[str, Any], mpor: int) -> None:
    r = saccr(NettingSet.model_validate({"trades": [_swap()], "margined": True, **terms}))
    assert r.mpor_business_days == mpor
    assert r.maturity_factor == pytest.approx(1.5 * math.sqrt(mpor / 250), abs=1e-15)
    assert r.trades[0].maturity_factor == r.maturity_factor


def test_more_than_5000_trades_raise_the_mpor_floor() -> None:
    trades = [SaccrTrade.model_validate(_swap(f"t{i}")) for i in range(5001)]
    assert NettingSet(trades=trades, margined=True).mpor == 20
    assert NettingSet(trades=trades[:5000], margined=True).mpor == 10


def test_margined_versus_unmargined_maturity_factor() -> None:
    """One long 5y swap at zero MtM, no collateral: EAD = 1.4 x SF x d x MF, MF 1 or 1.5 sqrt(10/250) = 0.3."""
    d = 1_000_000.0 * (1 - math.exp(-0.25)) / 0.05
    unmargined = saccr(NettingSet.model_validate({"trades": [_swap()]}))
    margined = saccr(NettingSet.model_validate({"trades": [_swap()], "margined": True}))
    assert unmargined.ead == pytest.approx(1.4 * 0.005 * d, rel=1e-12)
    assert margined.ead == pytest.approx(1.4 * 0.005 * d * 0.3, rel=1e-12)
    assert margined.unmargined_ead == pytest.approx(unmargined.ead, rel=1e-12)


def test_margined_ead_is_capped_at_the_unmargined_ead() -> None:
    """A short trade (M = 10 days) under disputes: margined MF 1.5 sqrt(20/250) beats sqrt(10/250) (CRE52.2 FAQ1)."""
    trades = [_swap(maturity=10 / 250)]
    r = saccr(NettingSet.model_validate({"trades": trades, "margined": True, "margin_disputes": True}))
    u = saccr(NettingSet.model_validate({"trades": trades}))
    assert r.capped and r.ead == pytest.approx(u.ead, rel=1e-12)
    # a large threshold: RC = TH + MTA - NICA exceeds what the unmargined netting set would have
    big = saccr(NettingSet.model_validate({"trades": [_swap(maturity=3.0)], "margined": True, "threshold": 1e9}))
    assert big.capped and big.ead == pytest.approx(big.unmargined_ead, rel=1e-12)
    assert big.replacement_cost == pytest.approx(1e9)


# ---- the PFE multiplier ------------------------------------------------------------------------------


def test_multiplier_formula_and_floor() -> None:
    assert pfe_multiplier(10.0, 100.0) == 1.0
    assert pfe_multiplier(0.0, 100.0) == 1.0
    assert pfe_multiplier(-50.0, 100.0) == pytest.approx(0.05 + 0.95 * math.exp(-50 / 190), rel=1e-14)
    assert pfe_multiplier(-1e12, 100.0) == pytest.approx(0.05, abs=1e-15)
    assert pfe_multiplier(-1.0, 0.0) == pytest.approx(0.05) and pfe_multiplier(1.0, 0.0) == 1.0


def test_over_collateralisation_lowers_the_multiplier_to_its_floor() -> None:
    """More independent collateral held: RC stays 0, the multiplier falls towards 5%, the EAD with it."""
    base = {"trades": [_swap(mtm=1_000.0)]}
    add_on = saccr(NettingSet.model_validate(base)).add_on
    eads, multipliers = [], []
    for held in (0.0, 1_000.0, 10_000.0, 50_000.0, 200_000.0, 1e8):
        r = saccr(NettingSet.model_validate({**base, "independent_collateral_held": held}))
        expected = min(1.0, 0.05 + 0.95 * math.exp((1_000.0 - held) / (2 * 0.95 * add_on)))
        assert r.pfe_multiplier == pytest.approx(expected, rel=1e-13)
        assert r.replacement_cost == pytest.approx(max(1_000.0 - held, 0.0))
        assert r.ead == pytest.approx(1.4 * (r.replacement_cost + expected * add_on), rel=1e-13)
        eads.append(r.ead)
        multipliers.append(r.pfe_multiplier)
    assert multipliers[0] == 1.0 and multipliers[-1] == pytest.approx(0.05, abs=1e-12)
    assert all(b <= a for a, b in itertools.pairwise(multipliers))
    assert all(b < a for a, b in itertools.pairwise(eads))
    assert eads[-1] == pytest.approx(1.4 * 0.05 * add_on, rel=1e-9)


def test_negative_value_activates_the_multiplier_without_collateral() -> None:
    r = saccr(NettingSet.model_validate({"trades": [_swap(mtm=-3_000.0)]}))
    assert r.replacement_cost == 0.0
    assert r.pfe_multiplier == pytest.approx(0.05 + 0.95 * math.exp(-3_000 / (1.9 * r.add_on)), rel=1e-13)


# ---- supervisory deltas ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["call", "put"])
@pytest.mark.parametrize("position", ["bought", "sold"])
@pytest.mark.parametrize(
    ("price", "strike", "years", "vol"),
    [(0.06, 0.05, 1.0, 0.5), (100.0, 120.0, 0.25, 1.2), (1.1, 1.05, 2.0, 0.15), (50, 50, 5, 0.7)],
)
def test_option_delta_against_quantlib_black(
    kind: str, position: str, price: float, strike: float, years: float, vol: float
) -> None:
    """CRE52.40 is the forward delta of Black's formula with no discounting; QuantLib computes it independently."""
    ql = pytest.importorskip("QuantLib")
    option_type = ql.Option.Call if kind == "call" else ql.Option.Put
    black = ql.BlackCalculator(ql.PlainVanillaPayoff(option_type, strike), price, vol * math.sqrt(years), 1.0)
    expected = black.deltaForward() * (1 if position == "bought" else -1)
    assert option_delta(kind, position, price, strike, years, vol) == pytest.approx(expected, abs=1e-12)


def test_bcbs_swaption_delta_and_shift_for_negative_rates() -> None:
    # Example 1: -Phi(-(ln(0.06/0.05) + 0.5 x 0.5^2 x 1) / (0.5 x 1)) = -0.27
    assert round(option_delta("put", "bought", 0.06, 0.05, 1.0, 0.5), 2) == -0.27
    # CRE52.40 FAQ2: a shift lambda moves P and K; negative forward rates then work
    shifted = option_delta("call", "bought", -0.002, 0.001, 2.0, 0.5, shift=0.01)
    assert shifted == pytest.approx(option_delta("call", "bought", 0.008, 0.011, 2.0, 0.5), abs=1e-15)
    with pytest.raises(ValidationError, match="underlying_price"):
        SaccrTrade.model_validate(
            _swap(
                option={
                    "kind": "call",
                    "position": "bought",
                    "underlying_price": -0.002,
                    "strike": 0.001,
                    "exercise_years": 1.0,
                },
                direction=None,
            )
        )


@pytest.mark.parametrize(
    ("fields", "vol"),
    [
        ({"asset_class": "interest_rate", "currency": "USD"}, 0.50),
        ({"asset_class": "fx", "currency_pair": "EUR/USD"}, 0.15),
        ({"asset_class": "credit", "reference": "X", "credit_quality": "A"}, 1.00),
        ({"asset_class": "credit", "reference": "IX", "index": True, "credit_quality": "SG"}, 0.80),
        ({"asset_class": "equity", "reference": "X"}, 1.20),
        ({"asset_class": "equity", "reference": "SX5E", "index": True}, 0.75),
        ({"asset_class": "commodity", "commodity_set": "energy", "reference": "power", "electricity": True}, 1.50),
        ({"asset_class": "commodity", "commodity_set": "metals", "reference": "gold"}, 0.70),
    ],
)
def test_supervisory_volatility_by_asset_class(fields: dict[str, Any], vol: float) -> None:
    option = {"kind": "call", "position": "sold", "underlying_price": 1.0, "strike": 1.1, "exercise_years": 0.5}
    t = SaccrTrade.model_validate({"id": "o", "notional": 1.0, "maturity_years": 1.0, "option": option, **fields})
    assert supervisory_delta(t) == pytest.approx(option_delta("call", "sold", 1.0, 1.1, 0.5, vol), abs=1e-15)


def test_cdo_tranche_delta() -> None:
    fields = {
        "id": "t",
        "asset_class": "credit",
        "reference": "CDX tranche",
        "index": True,
        "credit_quality": "IG",
        "notional": 1.0,
        "maturity_years": 5.0,
        "tranche": {"attachment": 0.03, "detachment": 0.07},
    }
    bought = SaccrTrade.model_validate({**fields, "direction": "long"})
    sold = SaccrTrade.model_validate({**fields, "direction": "short"})
    assert supervisory_delta(bought) == pytest.approx(15 / (1.42 * 1.98), abs=1e-14)
    assert supervisory_delta(sold) == pytest.approx(-15 / (1.42 * 1.98), abs=1e-14)


# ---- other asset classes, hedging-set construction ---------------------------------------------------


def test_fx_hedging_set_by_hand() -> None:
    """EUR/USD 100 bought 6 months forward, 60 sold 2 years: |100 sqrt(0.5) - 60| x 4%; USD/JPY alone."""
    trades = [
        {
            "id": "a",
            "asset_class": "fx",
            "currency_pair": "EUR/USD",
            "notional": 100,
            "direction": "long",
            "maturity_years": 0.5,
            "mtm": 1,
        },
        {
            "id": "b",
            "asset_class": "fx",
            "currency_pair": "EUR/USD",
            "notional": 60,
            "direction": "short",
            "maturity_years": 2,
            "mtm": 2,
        },
        {
            "id": "c",
            "asset_class": "fx",
            "currency_pair": "USD/JPY",
            "notional": 50,
            "direction": "short",
            "maturity_years": 3,
        },
    ]
    r = saccr(NettingSet.model_validate({"trades": trades}))
    eurusd = 0.04 * abs(100 * math.sqrt(0.5) - 60)
    assert hedging_set(r, "EUR/USD").add_on == pytest.approx(eurusd, rel=1e-14)
    assert hedging_set(r, "USD/JPY").add_on == pytest.approx(0.04 * 50, rel=1e-14)
    assert r.ead == pytest.approx(1.4 * (3 + eurusd + 2.0), rel=1e-14)


def test_equity_single_names_and_index_by_hand() -> None:
    trades = [
        {
            "id": "a",
            "asset_class": "equity",
            "reference": "ACME",
            "notional": 100,
            "direction": "long",
            "maturity_years": 1,
        },
        {
            "id": "b",
            "asset_class": "equity",
            "reference": "ACME",
            "notional": 40,
            "direction": "short",
            "maturity_years": 0.25,
        },
        {
            "id": "c",
            "asset_class": "equity",
            "reference": "SX5E",
            "index": True,
            "notional": 200,
            "direction": "short",
            "maturity_years": 2,
        },
    ]
    r = saccr(NettingSet.model_validate({"trades": trades}))
    a_acme = 0.32 * (100 - 40 * 0.5)
    a_index = 0.20 * -200
    expected = math.sqrt((0.5 * a_acme + 0.8 * a_index) ** 2 + 0.75 * a_acme**2 + 0.36 * a_index**2)
    assert r.add_ons["equity"] == pytest.approx(expected, rel=1e-14)


def test_commodity_types_within_a_hedging_set_by_hand() -> None:
    trades = [
        {
            "id": "a",
            "asset_class": "commodity",
            "commodity_set": "energy",
            "reference": "crude oil",
            "notional": 100,
            "direction": "long",
            "maturity_years": 1,
        },
        {
            "id": "b",
            "asset_class": "commodity",
            "commodity_set": "energy",
            "reference": "power",
            "electricity": True,
            "notional": 50,
            "direction": "short",
            "maturity_years": 1,
        },
        {
            "id": "c",
            "asset_class": "commodity",
            "commodity_set": "agricultural",
            "reference": "corn",
            "notional": 30,
            "direction": "long",
            "maturity_years": 1,
        },
    ]
    r = saccr(NettingSet.model_validate({"trades": trades}))
    oil, power = 0.18 * 100, 0.40 * -50
    energy = math.sqrt((0.4 * (oil + power)) ** 2 + 0.84 * (oil**2 + power**2))
    assert hedging_set(r, "energy").add_on == pytest.approx(energy, rel=1e-14)
    assert r.add_ons["commodity"] == pytest.approx(energy + 0.18 * 30, rel=1e-14)


def test_ir_buckets_offset_and_no_offset() -> None:
    trades = [_swap("a", maturity=0.5), _swap("b", maturity=3, direction="short"), _swap("c", maturity=8)]
    d = [1e6 * (1 - math.exp(-0.05 * m)) / 0.05 for m in (0.5, 3, 8)]
    d1, d2, d3 = d[0] * math.sqrt(0.5), -d[1], d[2]
    offset = saccr(NettingSet.model_validate({"trades": trades}))
    quad = d1**2 + d2**2 + d3**2 + 1.4 * d1 * d2 + 1.4 * d2 * d3 + 0.6 * d1 * d3
    assert offset.add_on == pytest.approx(0.005 * math.sqrt(quad), rel=1e-13)
    assert offset.ir_maturity_buckets["EUR"] == pytest.approx([d1, d2, d3], rel=1e-14)
    no_offset = saccr(NettingSet.model_validate({"trades": trades, "ir_bucket_offset": False}))
    assert no_offset.add_on == pytest.approx(0.005 * (abs(d1) + abs(d2) + abs(d3)), rel=1e-13)


def test_ir_bucket_boundaries() -> None:
    """An end date of exactly 1 year is in the first bucket, of exactly 5 years in the second (up to and including)."""
    trades = [_swap("a", maturity=1.0), _swap("b", maturity=5.0), _swap("c", maturity=5.0 + 1e-9)]
    buckets = saccr(NettingSet.model_validate({"trades": trades})).trades
    assert [t.risk_factor for t in buckets] == ["<=1y", "1y-5y", ">5y"]


def test_basis_and_volatility_hedging_sets() -> None:
    """Basis and volatility trades form their own hedging sets with SF x 1/2 and SF x 5 (CRE52.46-47, 52.73)."""
    trades = [
        _swap("a"),
        _swap("b", nature="basis", basis="3M/6M"),
        _swap("c", nature="volatility", direction="short"),
    ]
    r = saccr(NettingSet.model_validate({"trades": trades}))
    d = 1e6 * (1 - math.exp(-0.25)) / 0.05
    assert {h.hedging_set for h in r.hedging_sets} == {"EUR", "EUR basis 3M/6M", "EUR volatility"}
    assert hedging_set(r, "EUR").add_on == pytest.approx(0.005 * d, rel=1e-14)
    assert hedging_set(r, "EUR basis 3M/6M").add_on == pytest.approx(0.0025 * d, rel=1e-14)
    assert hedging_set(r, "EUR volatility").add_on == pytest.approx(0.025 * d, rel=1e-14)


def test_supervisory_duration_floor_and_forward_start() -> None:
    """SD floored at ten business days (CRE52.34); a forward-starting swap uses S and E."""
    short = saccr(NettingSet.model_validate({"trades": [_swap(maturity=0.01)]}))
    assert short.trades[0].adjusted_notional == pytest.approx(1e6 * 10 / 250, rel=1e-14)
    fwd = saccr(NettingSet.model_validate({"trades": [_swap(maturity=15, start_years=5, end_years=15)]}))
    assert fwd.trades[0].adjusted_notional == pytest.approx(1e6 * (math.exp(-0.25) - math.exp(-0.75)) / 0.05)
    assert fwd.ir_maturity_buckets["EUR"][2] != 0.0


def test_dates_with_as_of_match_years() -> None:
    as_of = "2024-03-28"
    dated = NettingSet.model_validate(
        {
            "as_of": as_of,
            "trades": [
                {
                    **_swap("a", start_date="2023-01-02", end_date="2031-06-30", maturity_date="2031-06-30"),
                    "maturity_years": None,
                },
            ],
        }
    )
    years = (np.datetime64("2031-06-30") - np.datetime64(as_of)).astype(int) / 365
    assert dated.trades[0].maturity_years == pytest.approx(years)
    assert dated.trades[0].start_years == 0.0  # a start already passed counts as 0
    plain = NettingSet.model_validate({"trades": [_swap("a", maturity=years)]})
    assert saccr(dated).ead == pytest.approx(saccr(plain).ead, rel=1e-14)


# ---- what-if: removing and adding trades, changing terms, scenarios ----------------------------------


def test_what_if_helpers_agree_with_recomputation() -> None:
    ns = example(4)
    removed = without_trades(ns, ["ex2-trade2"])
    assert [t.id for t in removed.trades] == [t.id for t in ns.trades if t.id != "ex2-trade2"]
    loo = leave_one_out(ns)
    assert loo["ex2-trade2"] == pytest.approx(saccr(removed).ead, rel=1e-13)
    for tid, ead in loo.items():
        assert ead == pytest.approx(saccr(without_trades(ns, [tid])).ead, rel=1e-13)
    back = with_trades(removed, [ns.trades[4]])
    assert saccr(back).ead == pytest.approx(saccr(ns).ead, rel=1e-13)
    margined = with_terms(example(5), remargin_business_days=1)
    assert saccr(margined).mpor_business_days == 10
    with pytest.raises(ValueError, match="trade_ids"):
        without_trades(ns, ["nope"])
    with pytest.raises(ValidationError, match="trades"):
        with_trades(ns, [ns.trades[0]])  # duplicate id


def test_weighted_scenarios_scale_notional_and_value() -> None:
    """A weight of 0.5 on a trade equals halving its notional and MtM; all scenarios in one evaluation."""
    ns = example(5)
    compiled = compile_netting_set(ns)
    n = len(compiled.trade_ids)
    weights = np.ones((3, n))
    weights[1, 0] = 0.5
    weights[2, :] = 0.0
    ex = exposure(compiled, weights)
    halved = [
        t.model_copy(update={"notional": t.notional / 2, "mtm": t.mtm / 2}) if i == 0 else t
        for i, t in enumerate(ns.trades)
    ]
    assert ex.ead[0] == pytest.approx(saccr(ns).ead, rel=1e-13)
    assert ex.ead[1] == pytest.approx(saccr(_rebuilt(ns, halved)).ead, rel=1e-13)
    empty = _rebuilt(ns, [])
    assert ex.ead[2] == pytest.approx(saccr(empty).ead, abs=1e-12)
    with pytest.raises(ValueError, match="weights"):
        exposure(compiled, np.ones((1, n + 1)))


def _rebuilt(ns: NettingSet, trades: list[SaccrTrade]) -> NettingSet:
    return NettingSet.model_validate({**ns.model_dump(exclude={"trades"}), "trades": trades})


def test_empty_netting_set_keeps_its_replacement_cost() -> None:
    r = saccr(NettingSet(margined=True, threshold=100.0))
    assert r.add_on == 0.0 and r.replacement_cost == 100.0
    assert r.ead == pytest.approx(0.0)  # capped at the unmargined EAD: max(0 - 0, 0) = 0


def test_batch_forms() -> None:
    sets = [example(k) for k in range(1, 6)]
    singles = [saccr(ns).ead for ns in sets]
    assert [r.ead for r in saccr_batch(sets)] == pytest.approx(singles, rel=1e-15)
    assert ead_batch(sets) == pytest.approx(singles, rel=1e-15)
    assert saccr_batch(sets)[0].trades == []


# ---- input errors name the field ---------------------------------------------------------------------


def _error_field(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        NettingSet.model_validate(data)
    err = info.value.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"])
    named, _ = split_named_field(str(err["msg"]))
    return ".".join(p for p in (loc, named) if p)


@pytest.mark.parametrize(
    ("trade_changes", "field"),
    [
        ({"currency": None}, "trades.0.currency"),
        ({"currency_pair": "EUR/USD"}, "trades.0.currency_pair"),
        ({"direction": None}, "trades.0.direction"),
        ({"notional": -1.0}, "trades.0.notional"),
        ({"maturity_years": 0.0}, "trades.0.maturity_years"),
        ({"asset_class": "crypto"}, "trades.0.asset_class"),
        ({"start_years": 6.0, "end_years": 5.0}, "trades.0.end_years"),
        ({"tranche": {"attachment": 0.1, "detachment": 0.2}}, "trades.0.tranche"),
        ({"nature": "basis"}, "trades.0.basis"),
        ({"mtm": float("nan")}, "trades.0.mtm"),
        ({"maturity_date": "2030-01-01", "maturity_years": None}, "trades[0].maturity_date"),
        (
            {"option": {"kind": "put", "position": "bought", "underlying_price": 1, "strike": 1, "exercise_years": 9}},
            "trades.0.direction",
        ),
    ],
)
def test_trade_errors_name_the_field(trade_changes: dict[str, Any], field: str) -> None:
    data = {k: v for k, v in {**_swap(), **trade_changes}.items() if v is not None}
    assert _error_field({"trades": [data]}) == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"trades": [_swap("a"), _swap("a")]}, "trades[1].id"),
        ({"trades": [_swap()], "threshold": 5.0}, "threshold"),
        ({"trades": [_swap()], "variation_margin_held": 5.0}, "variation_margin_held"),
        ({"trades": [_swap()], "margin_disputes": True}, "margin_disputes"),
        ({"trades": [_swap()], "currency": "usd"}, "currency"),
        ({"trades": [_swap()], "as_of": "2024-13-01"}, "as_of"),
        (
            {"as_of": "2024-01-01", "trades": [{**_swap(), "maturity_date": "2023-01-01", "maturity_years": None}]},
            "trades[0].maturity_date",
        ),
        (
            {
                "trades": [
                    {
                        "id": "a",
                        "asset_class": "fx",
                        "currency_pair": "EUR/USD",
                        "notional": 1,
                        "direction": "long",
                        "maturity_years": 1,
                    },
                    {
                        "id": "b",
                        "asset_class": "fx",
                        "currency_pair": "USD/EUR",
                        "notional": 1,
                        "direction": "long",
                        "maturity_years": 1,
                    },
                ]
            },
            "trades[1].currency_pair",
        ),
        (
            {
                "trades": [
                    {
                        "id": "a",
                        "asset_class": "credit",
                        "reference": "X",
                        "credit_quality": "A",
                        "notional": 1,
                        "direction": "long",
                        "maturity_years": 1,
                    },
                    {
                        "id": "b",
                        "asset_class": "credit",
                        "reference": "X",
                        "credit_quality": "BB",
                        "notional": 1,
                        "direction": "long",
                        "maturity_years": 1,
                    },
                ]
            },
            "trades[1].credit_quality",
        ),
        (
            {
                "trades": [
                    {
                        "id": "a",
                        "asset_class": "credit",
                        "reference": "X",
                        "credit_quality": "IG",
                        "notional": 1,
                        "direction": "long",
                        "maturity_years": 1,
                    }
                ]
            },
            "trades.0.credit_quality",
        ),
    ],
)
def test_netting_set_errors_name_the_field(data: dict[str, Any], field: str) -> None:
    data = {**data, "trades": [{k: v for k, v in t.items() if v is not None} for t in data["trades"]]}
    assert _error_field(data) == field


# ---- the compute kind --------------------------------------------------------------------------------


def _example_data(k: int) -> dict[str, Any]:
    return json.loads((FIXTURES / f"bcbs279_example_{k}.json").read_text())


def test_saccr_kind_chunks_combine_to_the_whole() -> None:
    assert {"xva.saccr", "xva.ba_cva"} <= set(registry.kinds())
    inputs = {"netting_sets": [_example_data(k) for k in range(1, 6)]}
    whole = registry.run("xva.saccr", inputs)
    kind = registry.get("xva.saccr")
    chunks = kind.split(inputs, 2)
    assert len(chunks) == 2
    combined = registry.combine("xva.saccr", [registry.run("xva.saccr", c) for c in chunks])
    assert [r["ead"] for r in combined["results"]] == [r["ead"] for r in whole["results"]]
    assert combined["total_ead"] == pytest.approx(whole["total_ead"])
    printed(whole["results"][0]["ead"], 569)
    printed(whole["results"][4]["ead"], 1_879)
    assert whole["results"][0]["trades"] == []
    assert registry.run("xva.saccr", {**inputs, "trade_detail": True})["results"][0]["trades"]


def test_saccr_kind_errors_name_the_field() -> None:
    bad = _example_data(2)
    del bad["trades"][1]["credit_quality"]
    chunk = {"netting_sets": [bad], "first_index": 3}
    with pytest.raises(InvalidInputs) as info:
        saccr_kind(chunk, None)
    assert info.value.field == "netting_sets[3].trades[1].credit_quality"
    with pytest.raises(InvalidInputs) as info:
        saccr_kind({"netting_sets": [], "detail": True}, None)
    assert info.value.field == "detail"
    with pytest.raises(InvalidInputs, match="netting_sets"):
        saccr_kind({"netting_sets": []}, None)


def test_module_constants_are_the_cre52_table() -> None:
    """Table 2 of CRE52.72 as printed; a typo here would move every add-on."""
    assert (S.IR_FACTOR, S.FX_FACTOR) == (0.005, 0.04)
    assert S.CREDIT_SINGLE_NAME_FACTORS == {
        "AAA": 0.0038,
        "AA": 0.0038,
        "A": 0.0042,
        "BBB": 0.0054,
        "BB": 0.0106,
        "B": 0.016,
        "CCC": 0.06,
    }
    assert S.CREDIT_INDEX_FACTORS == {"IG": 0.0038, "SG": 0.0106}
    assert (S.EQUITY_SINGLE_NAME, S.EQUITY_INDEX) == ((0.32, 0.5, 1.2), (0.2, 0.8, 0.75))
    assert (S.ELECTRICITY, S.OTHER_COMMODITY) == ((0.4, 0.4, 1.5), (0.18, 0.4, 0.7))
    assert (S.ALPHA, S.MULTIPLIER_FLOOR) == (1.4, 0.05)


# ---- invariants --------------------------------------------------------------------------------------

_TRADE_KINDS = [
    {"asset_class": "interest_rate", "currency": "USD"},
    {"asset_class": "interest_rate", "currency": "EUR"},
    {"asset_class": "fx", "currency_pair": "EUR/USD"},
    {"asset_class": "credit", "reference": "X", "credit_quality": "BBB"},
    {"asset_class": "credit", "reference": "IX", "index": True, "credit_quality": "IG"},
    {"asset_class": "equity", "reference": "E"},
    {"asset_class": "commodity", "commodity_set": "energy", "reference": "gas"},
]


@st.composite
def netting_sets(draw: st.DrawFn) -> NettingSet:
    n = draw(st.integers(1, 8))
    trades = [
        {
            "id": f"t{i}",
            **draw(st.sampled_from(_TRADE_KINDS)),
            "notional": draw(st.floats(0, 1e6)),
            "direction": draw(st.sampled_from(["long", "short"])),
            "maturity_years": draw(st.floats(0.01, 30)),
            "mtm": draw(st.floats(-1e4, 1e4)),
        }
        for i in range(n)
    ]
    held = draw(st.floats(0, 2e4))
    return NettingSet.model_validate({"trades": trades, "independent_collateral_held": held})


@settings(max_examples=40, deadline=None)
@given(netting_sets(), st.randoms(use_true_random=False))
def test_invariants(ns: NettingSet, rnd: Any) -> None:
    """EAD >= 0, independent of trade order; the margined EAD never exceeds the unmargined one."""
    r = saccr(ns)
    assert r.ead >= 0 and 0.05 - 1e-12 <= r.pfe_multiplier <= 1.0
    shuffled = list(ns.trades)
    rnd.shuffle(shuffled)
    assert saccr(_rebuilt(ns, shuffled)).ead == pytest.approx(r.ead, rel=1e-12, abs=1e-9)
    margined = saccr(with_terms(ns, margined=True, mpor_business_days=40))
    assert margined.ead <= r.ead * (1 + 1e-12) + 1e-9
