"""The desk's stresses against closed forms of a Brownian netting-set value V(t) = sigma W(t).

EE(t) = ENE(t) = sigma sqrt(t / 2 pi). A spread shift ds on a flat hazard gives the flat hazard
lambda + ds / (1 - R), whose CVA is the closed form of test_adjustments; a funding shift ds adds
ds int EE(t) w(t) dt; posting k of the positive exposure scales the EE by (1 - k)+ and adds (k - 1)+ EE to the
ENE (the collateral model's own algebra, checked on the paths).
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy.special import gamma, gammainc

from engines.xva import adjustments as A
from engines.xva.saccr_models import NettingSet
from engines.xva.xva_stress import (
    XvaScenario,
    collateralised_paths,
    collateralised_profiles,
    desk_scenarios,
    shift_survival,
    stress_xva,
)

SIGMA, RATE, LC, LB, R = 1e6, 0.03, 0.02, 0.01, 0.4
T = np.linspace(0.005, 5.0, 1000)


def sqrt_integral(k: float, horizon: float = 5.0) -> float:
    """int_0^T sqrt(t) e^{-k t} dt."""
    return float(gamma(1.5) * gammainc(1.5, k * horizon) / k**1.5)


def base_inputs(ns: int = 1) -> tuple[A.ExposureProfiles, A.CreditInputs, A.FundingSpreads]:
    ee = np.tile(SIGMA * np.sqrt(T / (2 * math.pi)), (ns, 1))
    im = np.full((ns, T.size), 5e5)
    p = A.expected_profiles(T, ee, ee, np.exp(-RATE * T), initial_margin=im)
    credit = A.CreditInputs(A.survival_from_hazard(T, LC), R, A.survival_from_hazard(T, LB), R)
    return p, credit, A.FundingSpreads(0.006, 0.002)


def test_counterparty_spreads_up_100bp_is_the_cva_of_the_shifted_hazard() -> None:
    p, credit, funding = base_inputs()
    report = stress_xva(p, credit, funding, options=A.XvaOptions(bilateral=False))
    up = report.result("counterparty credit +100bp")
    shifted = LC + 0.01 / (1 - R)
    closed = (1 - R) * shifted * SIGMA / math.sqrt(2 * math.pi) * sqrt_integral(RATE + shifted)
    assert float(up.cva[0]) == pytest.approx(closed, rel=1e-3)
    base_closed = (1 - R) * LC * SIGMA / math.sqrt(2 * math.pi) * sqrt_integral(RATE + LC)
    assert float(report.base.cva[0]) == pytest.approx(base_closed, rel=1e-3)
    print(f"CVA +100bp: ours {float(up.cva[0]):.1f}, closed form {closed:.1f} (base {base_closed:.1f})")
    # 2% hazard = 120 bp of spread at 40% recovery: -100 bp leaves 20 bp = 0.333% hazard
    down = report.result("counterparty credit -100bp")
    low = LC - 0.01 / (1 - R)
    assert float(down.cva[0]) == pytest.approx(
        (1 - R) * low * SIGMA / math.sqrt(2 * math.pi) * sqrt_integral(RATE + low), rel=1e-3
    )


def test_a_spread_cut_below_zero_floors_the_hazard() -> None:
    t = np.array([0.5, 1.0, 3.0])
    s = A.survival_from_hazard(t, np.array([0.01, 0.03, 0.02]))
    np.testing.assert_allclose(
        shift_survival(t, s, -0.015), A.survival_from_hazard(t, np.array([0.0, 0.015, 0.005])), rtol=1e-14
    )
    p, _, funding = base_inputs()
    riskless = A.CreditInputs(A.survival_from_hazard(T, 0.005), R)
    report = stress_xva(p, riskless, funding, scenarios=[XvaScenario(name="cut", counterparty_spread_shift=-0.01)])
    assert float(report.results[0].cva[0]) == 0.0


def test_own_credit_stress_moves_dva_and_the_bilateral_cva() -> None:
    p, credit, funding = base_inputs()
    report = stress_xva(p, credit, funding)
    base, up = report.base, report.result("own credit +100bp")
    assert up.dva[0] > base.dva[0] and up.cva[0] < base.cva[0]
    lb = LB + 0.01 / (1 - R)
    closed_dva = (1 - R) * lb * SIGMA / math.sqrt(2 * math.pi) * sqrt_integral(RATE + LC + lb)
    assert float(up.dva[0]) == pytest.approx(closed_dva, rel=1e-3)
    both = report.result("all credit +100bp")
    lc = LC + 0.01 / (1 - R)
    closed_cva = (1 - R) * lc * SIGMA / math.sqrt(2 * math.pi) * sqrt_integral(RATE + lc + lb)
    assert float(both.cva[0]) == pytest.approx(closed_cva, rel=1e-3)


def test_funding_spreads_move_fca_fba_and_mva_by_the_shift_times_the_funded_amount() -> None:
    p, credit, funding = base_inputs()
    report = stress_xva(p, credit, funding)
    k = RATE + LC + LB
    ee_integral = SIGMA / math.sqrt(2 * math.pi) * sqrt_integral(k)
    im_integral = 5e5 * (1 - math.exp(-k * 5.0)) / k
    for name, shift in (("funding +50bp", 0.005), ("funding -50bp", -0.005)):
        change = report.changes(name)
        assert change["fca"] == pytest.approx(shift * ee_integral, rel=1e-3)
        assert change["fba"] == pytest.approx(shift * ee_integral, rel=1e-3)
        assert change["fva"] == pytest.approx(0.0, abs=1e-6 * abs(change["fca"]))  # EE = ENE: FCA and FBA move alike
        assert change["mva"] == pytest.approx(shift * im_integral, rel=1e-3)
        assert change["cva"] == 0 and change["dva"] == 0


def test_collateral_posting_on_profiles_matches_the_paths() -> None:
    rng = np.random.default_rng(9)
    t = np.linspace(0.1, 3.0, 30)
    v = rng.normal(2e5, 1e6, (3, 2_000, t.size))
    d = np.exp(-0.03 * t)
    base = A.exposure_profiles(t, v, d)
    for k in (0.0, 0.25, 1.0, 1.2):
        for two_way in (False, True):
            from_paths = A.exposure_profiles(t, collateralised_paths(v, k, two_way), d)
            from_profiles = collateralised_profiles(base, k, two_way)
            np.testing.assert_allclose(from_profiles.ee, from_paths.ee, rtol=1e-12, atol=1e-6)
            np.testing.assert_allclose(from_profiles.ene, from_paths.ene, rtol=1e-12, atol=1e-6)


def test_collateral_scenarios_scale_cva_and_fca_and_move_the_excess_to_the_ene() -> None:
    p, credit, funding = base_inputs(ns=2)
    ns = NettingSet.model_validate(
        {"id": "ns", "trades": [{"id": "s", "asset_class": "interest_rate", "notional": 1e8, "direction": "long",
                                 "maturity_years": 6, "currency": "USD"}]}
    )  # fmt: skip
    cap = A.capital_profile([ns, ns], T)
    report = stress_xva(p, credit, funding, cap, uncollateralised=p)
    base = report.base
    r0, r50 = report.result("collateral 0%"), report.result("collateral 50%")
    np.testing.assert_allclose(r0.total, base.total, rtol=1e-12)
    np.testing.assert_allclose(r50.cva, 0.5 * base.cva, rtol=1e-12)
    np.testing.assert_allclose(r50.fca, 0.5 * base.fca, rtol=1e-12)
    np.testing.assert_allclose(r50.dva, base.dva, rtol=1e-12)
    full, over = report.result("collateral 100%"), report.result("collateral 120%")
    assert np.all(full.cva == 0) and np.all(over.cva == 0)
    # 120%: the 20% excess is owed back, the counterparty's exposure to the bank: ENE = ENE + 0.2 EE
    np.testing.assert_allclose(over.dva, base.dva + 0.2 * _dva_on(p.ee, credit), rtol=1e-10)
    kva = [float(report.result(f"collateral {k}%").kva[0]) for k in (0, 25, 50, 75, 100)]
    assert all(a > b for a, b in itertools.pairwise(kva))
    np.testing.assert_allclose(full.mva, base.mva)
    data = json.loads(json.dumps(report.to_dict()))
    assert len(data["scenarios"]) == len(desk_scenarios()) == 14
    assert data["scenarios"][-1]["changes"]["cva"] == pytest.approx(-base.totals()["cva"])


def _dva_on(ee: np.ndarray, credit: A.CreditInputs) -> np.ndarray:
    """DVA of an exposure profile taken as the ENE, first-to-default against the counterparty."""
    d_b = A.first_to_default(np.broadcast_to(credit.own_survival, ee.shape), credit.counterparty_survival)
    return (1 - credit.own_recovery) * np.sum(ee * d_b, axis=1)


def test_stress_errors_name_the_field() -> None:
    p, credit, funding = base_inputs()
    with pytest.raises(ValueError, match="collateral_fraction"):
        stress_xva(p, credit, funding, scenarios=[XvaScenario(name="c", collateral_fraction=0.5)])
    with pytest.raises(ValueError, match="own_spread_shift"):
        stress_xva(p, A.CreditInputs(credit.counterparty_survival, R), funding,
                   scenarios=[XvaScenario(name="o", own_spread_shift=0.01)])  # fmt: skip
    assert len(stress_xva(p, credit, funding).scenarios) == 8  # no uncollateralised profiles: no collateral scenarios
    with pytest.raises(ValueError, match="used twice"):
        stress_xva(p, credit, funding, scenarios=[XvaScenario(name="a"), XvaScenario(name="a")])
    with pytest.raises(ValueError, match="collateral_fraction"):
        collateralised_paths(np.ones((2, 2)), 2.5)
