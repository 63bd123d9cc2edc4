"""CVA, DVA, FVA, MVA and KVA against closed forms, continuous integrals, limits and the SA-CCR/BA-CVA engines.

References, none taken from this module's output:
- A Brownian netting-set value V(t) = sigma W(t) has EE(t) = sigma sqrt(t / 2 pi); with flat hazards and rate the
  continuous CVA is (1 - R) lambda_c sigma / sqrt(2 pi) int_0^T sqrt(t) e^{-k t} dt = ... k^{-3/2} gamma(3/2, k T),
  k = r + lambda_c (+ lambda_b bilaterally).
- A forward on a lognormal asset (zero rates), V(t) = S(t) - K, has EE(t) = the Black-Scholes call of expiry t;
  its CVA is the integral (1 - R) int EE(t) lambda e^{-lambda t} dt by scipy's quad.
- Exact discrete identities: a flat exposure with flat hazards gives the first-to-default share
  lambda_c / (lambda_c + lambda_b) of the joint default probability; the counterparty's CVA is our DVA.
- SA-CCR: the aged netting set's add-on against `saccr` on the netting set rebuilt by hand at each date; the EAD
  against `saccr` with the trade's value set to the expected exposure; the CVA capital against `ba_cva_reduced`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import gamma, gammainc, ndtr

from engines.xva import adjustments as A
from engines.xva.bacva import Counterparty, ba_cva_reduced, risk_weight, supervisory_discount_factor
from engines.xva.saccr import saccr
from engines.xva.saccr_models import NettingSet


def brownian_cva(sigma: float, hazard: float, rate: float, horizon: float, recovery: float, other: float = 0.0):
    """(1 - R) int_0^T sigma sqrt(t / 2 pi) hazard e^{-(rate + hazard + other) t} dt."""
    k = rate + hazard + other
    integral = gamma(1.5) * gammainc(1.5, k * horizon) / k**1.5
    return (1 - recovery) * hazard * sigma / math.sqrt(2 * math.pi) * integral


def black_call(spot: float, strike: float, vol: float, t: np.ndarray | float) -> np.ndarray:
    t = np.maximum(np.asarray(t, dtype=np.float64), 1e-300)
    root = vol * np.sqrt(t)
    d1 = (np.log(spot / strike) + 0.5 * root**2) / root
    return spot * ndtr(d1) - strike * ndtr(d1 - root)


def grid(n: int, horizon: float = 5.0) -> np.ndarray:
    return np.linspace(horizon / n, horizon, n)


# ---- CVA -------------------------------------------------------------------------------------------------


def test_cva_of_a_brownian_value_converges_to_the_closed_form() -> None:
    sigma, lam, r, R, T = 1e6, 0.02, 0.03, 0.4, 5.0
    exact = brownian_cva(sigma, lam, r, T, R)
    errors = []
    for n in (50, 500, 5000):
        t = grid(n, T)
        ee = sigma * np.sqrt(t / (2 * math.pi)) * np.exp(-r * t)
        errors.append(abs(float(A.cva(t, ee, A.survival_from_hazard(t, lam), R)) / exact - 1))
    # first order in dt: ten times more dates, about ten times less error
    assert errors[2] < 2e-4, errors
    assert 5 < errors[0] / errors[1] < 20 and 5 < errors[1] / errors[2] < 20, errors


def test_cva_of_a_lognormal_forward_matches_the_continuous_integral() -> None:
    spot, strike, vol, lam, R, T = 100.0, 105.0, 0.25, 0.03, 0.4, 3.0
    reference = (1 - R) * quad(lambda u: black_call(spot, strike, vol, u) * lam * math.exp(-lam * u), 0, T)[0]
    t = grid(600, T)
    ours = float(A.cva(t, black_call(spot, strike, vol, t), A.survival_from_hazard(t, lam), R))
    assert ours == pytest.approx(reference, rel=2e-3)
    print(f"forward CVA: ours {ours:.6f}, integral {reference:.6f}")


def test_path_wise_cva_agrees_with_the_exact_profile_within_standard_errors() -> None:
    sigma, lam, r, R, T, n = 1e6, 0.02, 0.03, 0.4, 5.0, 100
    t = grid(n, T)
    rng = np.random.default_rng(7)
    w = np.cumsum(rng.standard_normal((20_000, n)) * math.sqrt(T / n), axis=1)
    df = np.exp(-r * t)
    s = A.survival_from_hazard(t, lam)
    est = A.cva_paths(t, sigma * w, s, R, discount=df)
    exact_on_grid = float(A.cva(t, sigma * np.sqrt(t / (2 * math.pi)) * df, s, R))
    assert abs(est.value - exact_on_grid) < 3 * est.stderr, (est, exact_on_grid)
    assert est.stderr / est.value < 0.02
    # the same with stochastic discount factors given per path (here all equal to the curve)
    est2 = A.cva_paths(t, sigma * w, s, R, discount=np.broadcast_to(df, w.shape))
    assert est2.value == pytest.approx(est.value, rel=1e-12)


def test_cva_vanishes_linearly_as_the_hazard_goes_to_zero() -> None:
    t = grid(40)
    ee = 1e5 * np.sqrt(t)
    lam = 1e-9
    ours = float(A.cva(t, ee, A.survival_from_hazard(t, lam), 0.3))
    limit = 0.7 * lam * float(np.sum(ee * np.diff(t, prepend=0.0)))
    assert ours == pytest.approx(limit, rel=1e-6)


def test_bilateral_cva_is_the_exact_first_to_default_probability_for_a_flat_exposure() -> None:
    t = np.array([0.0, 0.3, 1.0, 2.5, 4.0, 7.0])
    lc, lb, R = 0.05, 0.02, 0.25
    ours = float(A.cva(t, np.ones(t.size), A.survival_from_hazard(t, lc), R, A.survival_from_hazard(t, lb)))
    exact = (1 - R) * lc / (lc + lb) * (1 - math.exp(-(lc + lb) * t[-1]))
    assert ours == pytest.approx(exact, rel=1e-13)


def test_bilateral_cva_of_a_brownian_value_matches_the_closed_form() -> None:
    sigma, lc, lb, r, R, T = 1e6, 0.04, 0.015, 0.02, 0.4, 5.0
    t = grid(5000, T)
    ee = sigma * np.sqrt(t / (2 * math.pi)) * np.exp(-r * t)
    ours = float(A.cva(t, ee, A.survival_from_hazard(t, lc), R, A.survival_from_hazard(t, lb)))
    assert ours == pytest.approx(brownian_cva(sigma, lc, r, T, R, other=lb), rel=2e-4)
    unilateral = float(A.cva(t, ee, A.survival_from_hazard(t, lc), R))
    assert ours < unilateral


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.0, 0.5), min_size=1, max_size=12),
    st.lists(st.floats(0.0, 0.5), min_size=1, max_size=12),
)
def test_first_to_default_probabilities_add_up_to_the_joint_default(hc: list[float], hb: list[float]) -> None:
    n = min(len(hc), len(hb))
    t = np.cumsum(np.linspace(0.2, 1.0, n))
    sc, sb = A.survival_from_hazard(t, np.array(hc[:n])), A.survival_from_hazard(t, np.array(hb[:n]))
    c_first, b_first = A.first_to_default(sc, sb), A.first_to_default(sb, sc)
    assert np.all(c_first >= 0) and np.all(b_first >= 0)
    assert np.all(c_first <= A.first_to_default(sc, None) + 1e-15)
    np.testing.assert_allclose(np.cumsum(c_first + b_first), 1 - sc * sb, atol=1e-14)


# ---- the mirror: the counterparty's view ------------------------------------------------------------


def test_the_counterpartys_cva_is_our_dva() -> None:
    rng = np.random.default_rng(3)
    t = grid(30)
    ee, ene = rng.uniform(0, 1e6, (4, 30)), rng.uniform(0, 1e6, (4, 30))
    df = np.exp(-0.02 * t)
    ours = A.expected_profiles(t, ee, ene, df)
    theirs = A.expected_profiles(t, ene, ee, df)
    hazards = rng.uniform(0.005, 0.08, 4)
    sc = A.survival_from_hazard(t, hazards[:, None])
    sb = A.survival_from_hazard(t, 0.012)
    us = A.xva(ours, A.CreditInputs(sc, 0.4, sb, 0.3))
    # one counterparty at a time: its own curve becomes the "own" curve of the mirrored view
    for i in range(4):
        them = A.xva(
            A.ExposureProfiles(t, theirs.ee[i : i + 1], theirs.ene[i : i + 1], theirs.discount[i : i + 1], ("x",)),
            A.CreditInputs(sb, 0.3, sc[i], 0.4),
        )
        assert them.cva[0] == pytest.approx(us.dva[i], rel=1e-12)
        assert them.dva[0] == pytest.approx(us.cva[i], rel=1e-12)
        assert (them.cva - them.dva)[0] == pytest.approx(-(us.cva - us.dva)[i], rel=1e-12)


# ---- funding -----------------------------------------------------------------------------------------


def test_fva_with_equal_spreads_is_the_spread_times_the_expected_discounted_value() -> None:
    spot, strike, vol, lc, lb, s, T = 100.0, 90.0, 0.3, 0.02, 0.01, 0.006, 4.0
    t = grid(4000, T)
    ee = black_call(spot, strike, vol, t)
    ene = ee - (spot - strike)  # put-call parity: E[(K - S)+] = C - (S - K)
    p = A.expected_profiles(t, ee, ene, 1.0)
    credit = A.CreditInputs(A.survival_from_hazard(t, lc), 0.4, A.survival_from_hazard(t, lb), 0.4)
    r = A.xva(p, credit, A.FundingSpreads(s, s))
    # E[V(t)] = S - K: FVA = s (S - K) int_0^T e^{-(lc + lb) t} dt
    closed = s * (spot - strike) * (1 - math.exp(-(lc + lb) * T)) / (lc + lb)
    assert float(r.fva[0]) == pytest.approx(closed, rel=1e-3)
    assert float(r.fca[0]) > float(r.fva[0]) > 0


def test_asymmetric_spreads_charge_the_positive_side_at_the_borrowing_spread() -> None:
    t = grid(200, 5.0)
    sigma = 1e6
    ee = sigma * np.sqrt(t / (2 * math.pi))
    p = A.expected_profiles(t, ee, ee, 1.0)  # symmetric exposure: E[V] = 0
    credit = A.CreditInputs(np.ones(t.size), 0.4)
    sym = A.xva(p, credit, A.FundingSpreads(0.004, 0.004), options=A.XvaOptions(funding_survival="none"))
    asym = A.xva(p, credit, A.FundingSpreads(0.006, 0.002), options=A.XvaOptions(funding_survival="none"))
    assert float(sym.fva[0]) == pytest.approx(0.0, abs=1e-6)
    # FVA = (s_b - s_l) int EE: sigma sqrt(2/pi)/3 T^{3/2} x 0.004 for the continuous integral
    closed = 0.004 * sigma * math.sqrt(1 / (2 * math.pi)) * 2 / 3 * 5.0**1.5
    assert float(asym.fva[0]) == pytest.approx(closed, rel=5e-3)
    assert float(asym.fca[0]) == pytest.approx(3 * float(asym.fba[0]), rel=1e-12)


def test_funding_costs_stop_at_the_first_default() -> None:
    t = grid(2000, 10.0)
    p = A.expected_profiles(t, np.full(t.size, 1e6), 0.0, 1.0)
    lc, lb = 0.03, 0.01
    credit = A.CreditInputs(A.survival_from_hazard(t, lc), 0.4, A.survival_from_hazard(t, lb), 0.4)
    fca = {}
    for mode, k in (("both", lc + lb), ("counterparty", lc), ("none", 0.0)):
        r = A.xva(p, credit, A.FundingSpreads(0.01, 0.0), options=A.XvaOptions(funding_survival=mode))
        fca[mode] = float(r.fca[0])
        closed = 0.01 * 1e6 * ((1 - math.exp(-k * 10)) / k if k else 10.0)
        assert fca[mode] == pytest.approx(closed, rel=1e-3), mode
    assert fca["both"] < fca["counterparty"] < fca["none"]


def test_mva_funds_the_expected_initial_margin() -> None:
    t = grid(2000, 5.0)
    r_, lc, s = 0.03, 0.02, 0.005
    im = 2e6 * np.exp(-0.2 * t)  # IM running down as the trades age
    p = A.expected_profiles(t, np.zeros(t.size), 0.0, np.exp(-r_ * t), initial_margin=im)
    result = A.xva(p, A.CreditInputs(A.survival_from_hazard(t, lc), 0.4), A.FundingSpreads(s, 0.0))
    k = 0.2 + r_ + lc
    assert float(result.mva[0]) == pytest.approx(s * 2e6 * (1 - math.exp(-k * 5)) / k, rel=1e-3)
    assert "mva" not in result.not_computed and "kva" in result.not_computed


# ---- capital and KVA ---------------------------------------------------------------------------------

TRADES: list[dict[str, Any]] = [
    {"id": "s1", "asset_class": "interest_rate", "notional": 1e8, "direction": "long", "maturity_years": 7,
     "currency": "USD"},
    {"id": "s2", "asset_class": "interest_rate", "notional": 6e7, "direction": "short", "maturity_years": 3,
     "start_years": 1, "end_years": 3, "currency": "USD"},
    {"id": "s4", "asset_class": "interest_rate", "notional": 2e7, "direction": "long", "maturity_years": 1.5,
     "currency": "USD"},  # moves from the 1-5y bucket to the first alone, while s1 stays over 5y
    {"id": "s3", "asset_class": "interest_rate", "notional": 4e7, "direction": "short", "maturity_years": 12,
     "currency": "EUR"},
    {"id": "o1", "asset_class": "fx", "notional": 5e7, "currency_pair": "EUR/USD", "maturity_years": 2,
     "option": {"kind": "call", "position": "bought", "underlying_price": 1.1, "strike": 1.05, "exercise_years": 1.5}},
    {"id": "c1", "asset_class": "credit", "notional": 2e7, "direction": "long", "maturity_years": 4,
     "reference": "X", "credit_quality": "BBB"},
    {"id": "c2", "asset_class": "credit", "notional": 3e7, "direction": "short", "maturity_years": 6,
     "reference": "Y", "credit_quality": "A"},
    {"id": "e1", "asset_class": "equity", "notional": 1e7, "direction": "long", "maturity_years": 0.8,
     "reference": "SPX", "index": True},
    {"id": "e2", "asset_class": "equity", "notional": 1e7, "maturity_years": 2.5, "reference": "SPX", "index": True,
     "option": {"kind": "put", "position": "sold", "underlying_price": 100, "strike": 90, "exercise_years": 2.5}},
    {"id": "k1", "asset_class": "commodity", "notional": 1e7, "direction": "short", "maturity_years": 1.2,
     "reference": "oil", "commodity_set": "energy"},
]  # fmt: skip
MARGIN = {"margined": True, "threshold": 1e6, "minimum_transfer_amount": 1e5, "independent_collateral_held": 3e5}


def aged_by_hand(t: float, margin: dict[str, Any]) -> NettingSet | None:
    """The netting set as it stands at t, rebuilt through the boundary model."""
    aged = []
    for tr in TRADES:
        if tr["maturity_years"] <= t:
            continue
        d = {**tr, "maturity_years": tr["maturity_years"] - t}
        if "start_years" in d:
            d["start_years"] = max(d["start_years"] - t, 0.0)
        if "end_years" in d:
            d["end_years"] = d["end_years"] - t
        if "option" in d:
            d["option"] = {**d["option"], "exercise_years": max(d["option"]["exercise_years"] - t, 10 / 250)}
        aged.append(d)
    return NettingSet.model_validate({"id": "ns", "trades": aged, **margin}) if aged else None


@pytest.mark.parametrize("margin", [{}, MARGIN], ids=["unmargined", "margined"])
def test_aged_add_ons_are_saccr_on_the_netting_set_rebuilt_at_each_date(margin: dict[str, Any]) -> None:
    ns = NettingSet.model_validate({"id": "ns", "trades": TRADES, **margin})
    times = np.array([0.0, 0.5, 0.9, 1.0, 1.6, 2.2, 4.1, 5.5, 6.5, 8.0, 12.0, 13.0])
    add_on, unmargined, alive, maturity = A.aged_add_ons(ns, times)
    for i, t in enumerate(times):
        aged = aged_by_hand(t, margin)
        if aged is None:
            assert not alive[i] and add_on[i] == 0 and unmargined[i] == 0
            continue
        assert alive[i]
        assert add_on[i] == pytest.approx(saccr(aged).add_on, rel=1e-12)
        unmargined_set = NettingSet.model_validate({"id": "ns", "trades": [t.model_dump() for t in aged.trades]})
        assert unmargined[i] == pytest.approx(saccr(unmargined_set).add_on, rel=1e-12)
        weights = np.array([tr.notional for tr in aged.trades])
        m = np.array([tr.maturity_years for tr in aged.trades])
        assert maturity[i] == pytest.approx(max(1.0, float(weights @ m / weights.sum())))


def test_ead_profile_is_saccr_with_the_expected_exposure_as_the_replacement_cost() -> None:
    t = np.array([0.5, 2.0, 3.5])
    values = np.array([2e6, -1e6, 5e5])  # expected collateralised value at each date
    ee = np.array([3e6, 1e6, 5e5])  # the last below the margined floor TH + MTA - NICA = 8e5
    for margin in ({}, MARGIN):
        ns = NettingSet.model_validate({"id": "ns", "trades": TRADES, **margin})
        cap = A.capital_profile([ns], t)
        ead = A.ead_profile(cap, ee[None, :], values[None, :])[0]
        for i, ti in enumerate(t):
            aged = aged_by_hand(float(ti), margin)
            assert aged is not None
            # a netting set whose V - C is the expected value; its RC then is max(V - C, floor): we give EE instead
            trades = [tr.model_dump() for tr in aged.trades]
            trades[0]["mtm"] = values[i] + aged.net_collateral
            ref = saccr(NettingSet.model_validate({"id": "ns", "trades": trades, **margin}))
            floor = MARGIN["threshold"] + MARGIN["minimum_transfer_amount"] - MARGIN["independent_collateral_held"]
            rc = max(ee[i], floor) if margin else ee[i]
            expected = 1.4 * (rc + ref.pfe_multiplier * ref.add_on)
            if margin:
                expected = min(
                    expected, 1.4 * (ee[i] + ref.unmargined_ead / 1.4 - max(ref.value - ref.net_collateral, 0))
                )
            assert ead[i] == pytest.approx(expected, rel=1e-12)


def test_ead_of_one_swap_by_hand() -> None:
    ns = NettingSet.model_validate(
        {"id": "swap", "trades": [{"id": "s", "asset_class": "interest_rate", "notional": 1e8, "direction": "long",
                                   "maturity_years": 5, "currency": "USD"}]}
    )  # fmt: skip
    cap = A.capital_profile([ns], [2.0, 4.5, 6.0])
    ead = A.ead_profile(cap, np.array([[1e6, 2e5, 0.0]]), np.array([[1e6, 2e5, 0.0]]))[0]
    sd3 = (1 - math.exp(-0.05 * 3)) / 0.05
    sd05 = (1 - math.exp(-0.05 * 0.5)) / 0.05
    assert ead[0] == pytest.approx(1.4 * (1e6 + 0.005 * 1e8 * sd3), rel=1e-12)
    assert ead[1] == pytest.approx(1.4 * (2e5 + 0.005 * 1e8 * sd05 * math.sqrt(0.5)), rel=1e-12)
    assert ead[2] == 0.0
    assert cap.effective_maturity[0].tolist() == [3.0, 1.0, 1.0]


def test_cva_capital_is_the_reduced_ba_cva_of_one_counterparty() -> None:
    ns = NettingSet.model_validate({"id": "ns", "trades": TRADES})
    rw = risk_weight("financial", "IG")
    cap = A.capital_profile([ns], [0.0, 1.5], ccr_risk_weight=0.5, cva_risk_weight=rw)
    ead = np.array([[4e6, 2e6]])
    k_ccr, k_cva = A.capital_requirement(cap, ead)
    for i in range(2):
        m = float(cap.effective_maturity[0, i])
        ref = ba_cva_reduced(
            [Counterparty.model_validate({"id": "c", "sector": "financial", "credit_quality": "IG",
                                          "netting_sets": [{"ead": ead[0, i], "maturity_years": m}]})]
        )  # fmt: skip
        assert k_cva[0, i] == pytest.approx(ref.capital, rel=1e-12)
        assert k_ccr[0, i] == pytest.approx(0.08 * 0.5 * ead[0, i])
    assert supervisory_discount_factor(1.0) < 1


def test_kva_of_a_flat_capital_profile_is_the_discounted_annuity() -> None:
    t = grid(3000, 6.0)
    r_, lc, lb, coc = 0.03, 0.02, 0.01, 0.12
    k = r_ + lc + lb
    w = A.survival_from_hazard(t, lc) * A.survival_from_hazard(t, lb)
    ours = float(A.kva(t, np.full(t.size, 5e6), np.exp(-r_ * t), w, coc))
    assert ours == pytest.approx(coc * 5e6 * (1 - math.exp(-k * 6)) / k, rel=1e-3)


def test_kva_through_xva_uses_the_aged_capital_profile() -> None:
    ns = NettingSet.model_validate({"id": "ns", "trades": TRADES})
    t = grid(100, 13.0)
    ee = np.full(t.size, 2e6)
    p = A.expected_profiles(t, ee, 5e5, np.exp(-0.03 * t), netting_set_ids=["ns"])
    cap = A.capital_profile([ns], t, ccr_risk_weight=1.0, cva_risk_weight=0.05)
    credit = A.CreditInputs(A.survival_from_hazard(t, 0.02), 0.4, A.survival_from_hazard(t, 0.01), 0.4)
    r = A.xva(p, credit, capital=cap)
    ead = A.ead_profile(cap, ee[None, :], np.full((1, t.size), 1.5e6))
    k_ccr, k_cva = A.capital_requirement(cap, ead)
    w = credit.counterparty_survival * credit.own_survival
    by_hand = 0.10 * np.sum((k_ccr + k_cva)[0] * np.exp(-0.03 * t) * w * np.diff(t, prepend=0.0))
    assert float(r.kva[0]) == pytest.approx(by_hand, rel=1e-12)
    assert np.all(ead[0, t >= 12.0] == 0) and np.all(ead[0, t < 12.0] > 0)
    # a what-if row swap: the netting set without its long swap
    smaller = NettingSet.model_validate({"id": "ns", "trades": [tr for tr in TRADES if tr["id"] != "s1"]})
    two = A.capital_profile([ns, ns], t)
    swapped = two.with_netting_set(1, A.capital_profile([smaller], t))
    np.testing.assert_array_equal(swapped.rows([0]).add_on, two.rows([0]).add_on)
    np.testing.assert_array_equal(swapped.add_on[1], A.aged_add_ons(smaller, t)[0])


# ---- batch, paths, JSON and errors ---------------------------------------------------------------------


def test_the_batch_is_the_netting_sets_one_by_one() -> None:
    rng = np.random.default_rng(11)
    ns, n = 6, 25
    t = grid(n)
    ee, ene = rng.uniform(0, 1e6, (ns, n)), rng.uniform(0, 1e6, (ns, n))
    im = rng.uniform(0, 1e6, (ns, n))
    df = np.exp(-rng.uniform(0, 0.05, (ns, 1)) * t)
    sc = A.survival_from_hazard(t, rng.uniform(0.005, 0.05, (ns, 1)))
    rec = rng.uniform(0.2, 0.6, ns)
    sb = A.survival_from_hazard(t, 0.01)
    borrow, lend = rng.uniform(0, 0.01, (ns, n)), rng.uniform(0, 0.005, (ns, n))
    batch = A.xva(A.expected_profiles(t, ee, ene, df, initial_margin=im), A.CreditInputs(sc, rec, sb, 0.35),
                  A.FundingSpreads(borrow, lend))  # fmt: skip
    for i in range(ns):
        one = A.xva(
            A.expected_profiles(t, ee[i], ene[i], df[i], initial_margin=im[i]),
            A.CreditInputs(sc[i], float(rec[i]), sb, 0.35),
            A.FundingSpreads(borrow[i], lend[i]),
        )
        for name in A.COMPONENTS:
            assert one.component(name)[0] == pytest.approx(batch.component(name)[i], rel=1e-12), name


def test_paths_profiles_and_json() -> None:
    rng = np.random.default_rng(5)
    t = grid(20, 2.0)
    x = rng.normal(0, 1e6, (2, 500, 20))
    d = np.exp(-0.03 * t) * np.exp(rng.normal(0, 0.01, (500, 20)))
    p = A.exposure_profiles(t, x, d, netting_set_ids=["a", "b"], currency="EUR")
    np.testing.assert_allclose(p.ee[1], np.mean(d * np.maximum(x[1], 0), axis=0), rtol=1e-12)
    np.testing.assert_allclose(p.ene[0], np.mean(d * np.maximum(-x[0], 0), axis=0), rtol=1e-12)
    np.testing.assert_allclose(p.discount[0], d.mean(axis=0), rtol=1e-12)
    credit = A.CreditInputs(A.survival_from_hazard(t, 0.03), 0.4, A.survival_from_hazard(t, 0.01), 0.4)
    r = A.xva(p, credit, A.FundingSpreads(0.005, 0.001))
    one = A.xva_from_paths(t, x[0], credit, A.FundingSpreads(0.005, 0.001), discount=d)
    assert one.total[0] == pytest.approx(r.total[0], rel=1e-12)
    data = json.loads(json.dumps(r.to_dict()))
    assert data["currency"] == "EUR" and [row["id"] for row in data["netting_sets"]] == ["a", "b"]
    assert data["totals"]["cva"] == pytest.approx(sum(row["cva"] for row in data["netting_sets"]))
    tot = data["totals"]
    assert tot["total"] == pytest.approx(tot["cva"] - tot["dva"] + tot["fca"] - tot["fba"] + tot["mva"] + tot["kva"])
    assert r.netting_set("b")["dva"] == pytest.approx(float(r.dva[1]))
    no_dva = A.xva(p, credit, A.FundingSpreads(0.005, 0.001), options=A.XvaOptions(include_dva=False))
    np.testing.assert_allclose(no_dva.total, r.total + r.dva)
    unilateral = A.xva(p, credit, options=A.XvaOptions(bilateral=False))
    np.testing.assert_allclose(unilateral.cva, unilateral.cva_unilateral)
    assert np.all(r.cva < r.cva_unilateral)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: A.cva(t, np.ones(3), [1.0, 0.9, 0.95], 0.4), "counterparty_survival"),
        (lambda t: A.cva(t, np.ones(3), [0.99, 0.98], 0.4), "counterparty_survival"),
        (lambda t: A.CreditInputs(np.ones(3), 1.0), "counterparty_recovery"),
        (lambda t: A.survival_from_hazard(t, -0.01), "hazard"),
        (lambda t: A.check_times([0.5, 0.5, 1.0]), r"times\[1\]"),
        (lambda t: A.expected_profiles(t, np.ones(3), -np.ones(3), 1.0), "ene"),
        (lambda t: A.exposure_profiles(t, np.ones((10, 3)), np.ones((9, 3))), "discount"),
        (lambda t: A.xva(A.expected_profiles(t, np.ones((2, 3)), 0.0, 1.0), A.CreditInputs(np.ones((3, 3)), 0.4)),
         "counterparty_survival"),
        (lambda t: A.xva(A.expected_profiles(t, np.ones(3), 0.0, 1.0), A.CreditInputs(np.ones(3), 0.4),
                         A.FundingSpreads(np.ones(2) * 0.01, 0.0)), "borrow"),
    ],
)  # fmt: skip
def test_errors_name_the_field(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(np.array([0.5, 1.0, 2.0]))


def test_parts_in_the_exposure_engines_layout_concat_and_what_if_rows() -> None:
    rng = np.random.default_rng(12)
    t = grid(10, 2.0)
    x = rng.normal(0, 1e6, (3, 400, 10))
    d = np.exp(-0.03 * t)[:, None] * np.exp(rng.normal(0, 0.01, (10, 400)))
    from_paths = A.exposure_profiles(t, x, d.T, netting_set_ids=["a", "b", "c"])
    layout = x.transpose(0, 2, 1)  # [set, date, path]
    parts = A.exposure_profiles_from_parts(t, np.maximum(layout, 0), np.minimum(layout, 0), d,
                                           netting_set_ids=["a", "b", "c"])  # fmt: skip
    for name in ("ee", "ene", "discount"):
        np.testing.assert_allclose(getattr(parts, name), getattr(from_paths, name), rtol=1e-12)
    split = A.ExposureProfiles.concat(
        [A.exposure_profiles(t, x[:1], d.T, netting_set_ids=["a"]),
         A.exposure_profiles(t, x[1:], d.T, netting_set_ids=["b", "c"])]
    )  # fmt: skip
    np.testing.assert_allclose(split.ee, from_paths.ee, rtol=1e-12)
    assert split.netting_set_ids == ("a", "b", "c")
    changed = from_paths.with_netting_set(A.exposure_profiles(t, 2 * x[1], d.T, netting_set_ids=["b"]))
    np.testing.assert_allclose(changed.ee[1], 2 * from_paths.ee[1], rtol=1e-12)
    np.testing.assert_allclose(changed.ee[[0, 2]], from_paths.ee[[0, 2]])
    with pytest.raises(ValueError, match="negative"):
        A.exposure_profiles_from_parts(t, np.maximum(layout, 0), np.maximum(layout, 0), d)
