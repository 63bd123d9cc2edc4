"""The margin-call avalanche against independent references: Philox's published known answers, the normal closed
form of cumulative variation margin in the limit case, exact conservation identities, exact scaling in the
volatility, exact equality of runs that must be equal (chunks against the whole, feedback off against no
impact), and the direction of the feedback.

Books are built by hand as `MarginBook` arrays, small enough that every figure can be reasoned about.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engines.margin import avalanche as A
from engines.margin import avalanche_kernels as K
from engines.margin import random_streams as rs
from engines.margin.arrays import EQUITY, RATES, FactorHistory, MarginBook
from engines.margin.venues import (
    BilateralCounterparty,
    Ccp,
    CcpMarginModel,
    CreditFacility,
    CsaTerms,
    LiquidityResources,
)

AMPLE = LiquidityResources(
    cash_usd={"USD": 1e15}, facility=CreditFacility(limit_usd=0.0, notice_hours=0, max_draw_per_day_usd=0.0)
)


def make_book(
    positions: list[dict], n_factors: int, venue_is_ccp: list[bool], *, depth: float = 5e9, classes=None
) -> MarginBook:
    """A MarginBook from positions given as dicts: venue, factor, delta, and optionally gamma, notional, value,
    manager (0 or 1); each position loads on its own factor only, which is also its liquidity factor."""
    n_p = len(positions)
    get = lambda key, default: np.array([p.get(key, default(p)) for p in positions])  # noqa: E731
    venue = get("venue", lambda p: 0).astype(np.int32)
    factor = get("factor", lambda p: 0).astype(np.int32)
    manager = get("manager", lambda p: 0).astype(np.int32)
    delta = get("delta", lambda p: 0.0).astype(float)
    return MarginBook(
        factors=tuple(f"EQ.F{i}" for i in range(n_factors)),
        factor_class=np.asarray(classes if classes is not None else [EQUITY] * n_factors, dtype=np.int8),
        factor_currency=np.zeros(n_factors, dtype=np.int16),
        factor_depth_usd=np.full(n_factors, depth),
        venues=tuple(f"V{i}" for i in range(len(venue_is_ccp))),
        venue_is_ccp=np.array(venue_is_ccp),
        managers=("M0", "M1"),
        strategies=("S0", "S1"),
        strategy_manager=np.array([0, 1], dtype=np.int32),
        currencies=("USD",),
        position_ids=tuple(f"P{i}" for i in range(n_p)),
        position_venue=venue,
        position_manager=manager,
        position_strategy=manager,
        position_currency=np.zeros(n_p, dtype=np.int16),
        position_class=np.full(n_p, EQUITY, dtype=np.int8),
        position_notional_usd=get("notional", lambda p: abs(p["delta"])).astype(float),
        position_value_usd=get("value", lambda p: 0.0).astype(float),
        position_expected_return_usd=np.zeros(n_p),
        position_liquidity_factor=factor,
        load_position=np.arange(n_p, dtype=np.int32),
        load_factor=factor,
        load_delta=delta,
        load_gamma=get("gamma", lambda p: 0.0).astype(float),
    )


def make_history(vols: list[float], corr: float = 0.5, days: int = 600, seed: int = 3, t_df: int = 0) -> FactorHistory:
    """Daily returns with the given vols and a common correlation (Student-t days when t_df > 0)."""
    rng = np.random.default_rng(seed)
    n = len(vols)
    c = np.full((n, n), corr) + (1 - corr) * np.eye(n)
    z = rng.standard_normal((days, n)) @ np.linalg.cholesky(c).T
    if t_df:
        z *= np.sqrt(t_df / rng.chisquare(t_df, size=(days, 1)))
    returns = z * np.asarray(vols)
    return FactorHistory(np.arange(days).astype("datetime64[D]"), tuple(f"EQ.F{i}" for i in range(n)), returns,
                         np.zeros(days, dtype=bool))  # fmt: skip


def resources(cash: float, limit: float = 0.0, notice: int = 0, cap: float = 0.0, buffer: float = 0.0):
    facility = CreditFacility(limit_usd=limit, notice_hours=notice, max_draw_per_day_usd=cap)
    return LiquidityResources(cash_usd={"USD": cash}, operational_buffer_usd=buffer, facility=facility)


EOD_ONLY = CcpMarginModel(intraday_call_hours=(), end_of_day_hour=17, payment_delay_hours=1)


# ---- random numbers ---------------------------------------------------------------------------

PHILOX_KAT = [  # Random123's kat_vectors for philox4x32-10
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]  # fmt: skip


@pytest.mark.parametrize(("counter", "key", "expected"), PHILOX_KAT)
def test_philox_matches_the_published_known_answers(counter, key, expected) -> None:
    args = [np.uint64(x) for x in (*counter, *key)]
    assert tuple(int(x) for x in rs.philox4x32(*args)) == expected  # compiled
    assert tuple(int(x) for x in rs.philox4x32.py_func(*args)) == expected  # as the CUDA simulator runs it


def test_normals_are_standard_and_a_pure_function_of_the_counter() -> None:
    n = 400_000
    z = rs.normals(7, 123, 45, rs.STREAM_DIFFUSION, n)
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)
    assert abs(np.mean(z**3)) < 4 * math.sqrt(15 / n)
    assert abs(np.mean(z**4) - 3) < 4 * math.sqrt(96 / n)
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4 / math.sqrt(n)
    again = rs.normals(7, 123, 45, rs.STREAM_DIFFUSION, 10)
    assert np.array_equal(again, z[:10])
    assert rs.normal_pair.py_func(7, 123, 45, 0, 2) == (z[4], z[5])
    for other in (rs.normals(8, 123, 45, 0, 10), rs.normals(7, 124, 45, 0, 10), rs.normals(7, 123, 46, 0, 10),
                  rs.normals(7, 123, 45, 1, 10)):  # fmt: skip
        assert not np.any(other == z[:10])


# ---- the limit case ---------------------------------------------------------------------------


def test_limit_case_cumulative_vm_is_the_normal_closed_form() -> None:
    """No jumps, constant vol, IM fixed, one CCP with one linear position calling VM at end of day only, ample
    cash: the cumulative calls after the last call are −δ times a normal with the daily variance × hours/24."""
    sigma, delta, paths = 0.012, 2.5e8, 4000
    book = make_book([{"venue": 0, "factor": 0, "delta": delta}], 1, [True])
    raw = np.random.default_rng(5).standard_normal(500)
    returns = sigma * (raw - raw.mean()) / raw.std(ddof=1)  # sample vol exactly sigma
    history = FactorHistory(np.arange(500).astype("datetime64[D]"), ("EQ.F0",), returns[:, None], np.zeros(500, bool))
    ccp = Ccp(id="V0", name="c", region="US", currency="USD", margin_model=EOD_ONLY)
    settings = A.AvalancheSettings(paths=paths, hours=240, seed=11, garch_alpha=0.0, garch_beta=0.0, jumps_per_day=0.0,
                                   jump_size=0.0, ccp_im_procyclicality=0.0, calibration_days=500)  # fmt: skip
    result = A.simulate_avalanche(book, history, np.array([1e7]), AMPLE, [ccp], settings)
    s = result.stats
    last_call = 9 * 24 + 17  # the end-of-day call of day 9; due an hour later, within the 240 hours
    sd = abs(delta) * sigma * math.sqrt(last_call / 24)
    n_end = s[:, K.S_NET_END]
    assert abs(n_end.mean()) < 4 * sd / math.sqrt(paths)
    assert abs(n_end.var(ddof=1) / sd**2 - 1) < 4 * math.sqrt(2 / (paths - 1))
    # the fraction beyond ±1σ and ±2σ
    assert abs(np.mean(np.abs(n_end) > sd) - 0.3173) < 4 * math.sqrt(0.3173 * 0.6827 / paths)
    assert abs(np.mean(np.abs(n_end) > 2 * sd) - 0.0455) < 4 * math.sqrt(0.0455 * 0.9545 / paths)
    assert np.all(s[:, K.S_EXHAUST_HOUR] == -1) and np.all(s[:, K.S_SHORTFALL] == 0)
    assert result.summary()["exhaustion"]["probability"]["p"] == 0.0
    assert np.all(s[:, K.S_CALLS] <= 10) and np.all(s[:, K.S_MAX_VOL] == 1.0)
    assert set(np.unique(s[:, K.S_PEAK_HOUR])) <= {0.0, *(24.0 * d + 18 for d in range(10))}  # paid at 18:00
    cal = result.calibration
    assert cal["components"] == 1 and cal["explained_variance"] == pytest.approx(1.0)


# ---- conservation and the waterfall -----------------------------------------------------------


def stressed_case(paths: int = 400, **changes):
    """Two CCPs (one with intraday calls) and two CSAs (threshold, MTA, rounding; same and next day) on three
    factors with gamma, small cash, a facility with notice and a daily cap, shallow markets: every branch of
    the waterfall is taken in some path."""
    positions = [
        {"venue": 0, "factor": 0, "delta": 3e9, "gamma": 1e9, "manager": 0},
        {"venue": 0, "factor": 1, "delta": -1e9, "manager": 1},
        {"venue": 1, "factor": 1, "delta": 2e9, "manager": 1},
        {"venue": 1, "factor": 2, "delta": 1e9, "gamma": -5e8, "manager": 0},
        {"venue": 2, "factor": 0, "delta": 1.5e9, "value": 2e7, "manager": 0},
        {"venue": 3, "factor": 2, "delta": -2e9, "value": -3e7, "manager": 1},
        {"venue": 3, "factor": 0, "delta": 1e9, "manager": 0},
    ]
    book = make_book(positions, 3, [True, True, False, False], depth=2e9)
    history = make_history([0.012, 0.008, 0.015], corr=0.4, days=800, t_df=4)
    venues = [
        Ccp(id="V0", name="a", region="US", currency="USD",
            margin_model=CcpMarginModel(intraday_call_hours=(10, 13), intraday_call_threshold=0.05)),
        Ccp(id="V1", name="b", region="EU", currency="EUR", margin_model=EOD_ONLY),
        BilateralCounterparty(id="V2", name="c", region="US",
                              csa=CsaTerms(threshold_usd=5e6, minimum_transfer_amount_usd=1e6, rounding_usd=1e5,
                                           call_timing="same_day")),
        BilateralCounterparty(id="V3", name="d", region="UK",
                              csa=CsaTerms(minimum_transfer_amount_usd=5e5, rounding_usd=1e4, currency="GBP")),
    ]  # fmt: skip
    im = np.array([1.5e8, 1e8, 4e7, 6e7])
    res = resources(cash=1.3e8, buffer=3e7, limit=1e8, notice=6, cap=4e7)
    fields = dict(paths=paths, hours=120, seed=5, vol_multiplier=2.5, jumps_per_day=0.3, jump_size=3.0,
                  bilateral_im_procyclicality=1.0, backend="cpu")  # fmt: skip
    fields.update(changes)
    return book, history, im, res, venues, A.AvalancheSettings(**fields)


@pytest.fixture(scope="module")
def stressed() -> A.AvalancheResult:
    book, history, im, res, venues, settings = stressed_case()
    return A.simulate_avalanche(book, history, im, res, venues, settings)


def test_every_call_is_paid_from_the_waterfall_or_reported_short(stressed: A.AvalancheResult) -> None:
    s = stressed.stats
    usable = 1.3e8 - 3e7
    scale = np.maximum(s[:, K.S_GROSS], 1.0)
    assert np.all(np.abs(stressed.conservation_residual_usd()) <= 1e-9 * scale)
    # cash: usable cash + returns received − paid from cash (a sub-cent payment may overdraw it)
    assert np.allclose(s[:, K.S_CASH_END], usable + s[:, K.S_RETURNS] - s[:, K.S_CASH], rtol=0, atol=1e-6 * scale.max())
    assert np.all(s[:, K.S_CASH_END] > -K.CENT)
    # facility: what arrived less what it paid; requested = arrived + in transit ≤ limit, paid ≤ arrived
    assert np.allclose(s[:, K.S_FACILITY_END], s[:, K.S_ARRIVED] - s[:, K.S_FACILITY], atol=1e-6)
    assert np.all(s[:, K.S_REQUESTED] <= 1e8 + 1e-6) and np.all(s[:, K.S_ARRIVED] <= s[:, K.S_REQUESTED] + 1e-6)
    # net calls = calls − returns; liquidation losses are non-negative; exhaustion = first liquidation or shortfall
    assert np.allclose(s[:, K.S_NET_END], s[:, K.S_GROSS] - s[:, K.S_RETURNS], atol=1e-6 * scale.max())
    assert np.all(s[:, K.S_LOSS] >= 0) and np.all(s[:, K.S_NEED] >= s[:, K.S_PEAK] - 1e-6)
    liq, short = s[:, K.S_LIQUIDATION_HOUR], s[:, K.S_SHORTFALL_HOUR]
    first = np.where((liq >= 0) & ((short < 0) | (liq <= short)), liq, short)
    assert np.array_equal(s[:, K.S_EXHAUST_HOUR], first)
    assert np.all((s[:, K.S_SHORTFALL] > 0) == (short >= 0))
    assert np.all((s[:, K.S_CLOSED] > 0) == (liq >= 0))
    # every branch is exercised
    assert np.mean(liq >= 0) > 0.05 and np.mean(short >= 0) > 0.01 and np.mean(liq < 0) > 0.05
    assert np.mean(s[:, K.S_FACILITY] > 0) > 0.05 and np.mean(s[:, K.S_ARRIVED] < s[:, K.S_REQUESTED]) > 0.01


def test_contributions_add_up_to_the_tail_peak(stressed: A.AvalancheResult) -> None:
    c = stressed.summary()["contributions"]
    total = c["tail_mean_peak_calls_usd"]
    assert c["tail_paths"] == math.ceil(0.01 * 400)
    top = np.sort(stressed.stats[:, K.S_PEAK])[::-1][: c["tail_paths"]]
    assert total == pytest.approx(top.mean(), rel=1e-12)
    for key in ("by_venue", "by_manager", "by_currency"):
        assert sum(c[key].values()) == pytest.approx(total, rel=1e-9), key
    assert set(c["by_currency"]) == {"USD", "EUR", "GBP"}
    assert np.allclose(stressed.manager_weights.sum(axis=1), 1.0)
    # each tail path's venue figures add up to its peak; a CSA venue's are multiples of its rounding
    peaks = dict(zip(stressed.path_ids.tolist(), stressed.stats[:, K.S_PEAK].tolist(), strict=True))
    for pid, row in zip(stressed.tail_ids, stressed.tail_venue, strict=True):
        assert row.sum() == pytest.approx(peaks[int(pid)], rel=1e-9)
        assert row[2] / 1e5 == pytest.approx(round(row[2] / 1e5), abs=1e-6)
        assert row[3] / 1e4 == pytest.approx(round(row[3] / 1e4), abs=1e-6)


def test_summary_probabilities_match_the_paths(stressed: A.AvalancheResult) -> None:
    s, summary = stressed.stats, stressed.summary()
    ex = summary["exhaustion"]
    hit = s[:, K.S_EXHAUST_HOUR] >= 0
    assert ex["probability"]["p"] == hit.mean()
    assert ex["probability_by_day"][-1] == hit.mean()
    assert all(a <= b for a, b in zip(ex["probability_by_day"], ex["probability_by_day"][1:], strict=False))
    assert summary["peak_calls_usd"]["p99"] == pytest.approx(np.quantile(s[:, K.S_PEAK], 0.99))
    assert summary["conservation"]["max_rel_residual"] < 1e-9


# ---- runs that must be equal ------------------------------------------------------------------


def test_chunks_combine_to_exactly_the_whole_run(stressed: A.AvalancheResult) -> None:
    book, history, im, res, venues, settings = stressed_case()
    model = A.prepare(book, history, im, res, venues, settings)
    parts = [A.simulate_avalanche(None, None, None, None, model=model, first_path=a, paths=b)
             for a, b in ((250, 150), (0, 97), (97, 153))]  # fmt: skip
    for part in parts:  # through the JSON form, as chunks travel between workers
        assert len(part.tail_ids) == math.ceil(0.01 * 400)
    combined = A.combine([A.AvalancheResult.from_dict(p.to_dict()) for p in parts])
    assert np.array_equal(combined.path_ids, np.arange(400))
    assert np.array_equal(combined.stats, stressed.stats)
    assert np.array_equal(combined.tail_ids, stressed.tail_ids)
    assert np.array_equal(combined.tail_venue, stressed.tail_venue)
    assert combined.summary() == stressed.summary()
    with pytest.raises(ValueError, match="path 0 appears in more than one chunk"):
        A.combine([parts[1], parts[1]])


def test_the_same_seed_gives_the_same_paths_and_another_seed_other_paths(stressed: A.AvalancheResult) -> None:
    book, history, im, res, venues, settings = stressed_case(paths=50)
    again = A.simulate_avalanche(book, history, im, res, venues, settings)
    assert np.array_equal(again.stats, stressed.stats[:50])  # path i does not depend on how many paths run
    other = A.simulate_avalanche(book, history, im, res, venues, settings.model_copy(update={"seed": 6}))
    assert not np.array_equal(other.stats[:, K.S_GROSS], again.stats[:, K.S_GROSS])


def test_feedback_off_is_exactly_a_run_without_impact() -> None:
    book, history, im, res, venues, settings = stressed_case(paths=200)
    off = A.simulate_avalanche(book, history, im, res, venues, settings.model_copy(update={"feedback": False}))
    zero = A.simulate_avalanche(book, history, im, res, venues, settings.model_copy(update={"impact_coefficient": 0.0}))
    assert np.mean(off.stats[:, K.S_LIQUIDATION_HOUR] >= 0) > 0.05
    assert np.array_equal(off.stats, zero.stats)
    assert np.array_equal(off.tail_venue, zero.tail_venue)
    assert np.all(off.stats[:, K.S_LOSS] == 0)


# ---- directions ---------------------------------------------------------------------------------


def test_more_volatility_scales_variation_margin_exactly() -> None:
    """Linear CCP book, VM at end of day only (IM fixed; an intraday threshold on the IM would not scale): every
    move scales with the vol multiplier (GARCH and jumps included), so every path's calls and peak scale exactly."""
    positions = [{"venue": 0, "factor": 0, "delta": 1e9}, {"venue": 1, "factor": 1, "delta": -2e9},
                 {"venue": 1, "factor": 0, "delta": 5e8}]  # fmt: skip
    book = make_book(positions, 2, [True, True])
    history = make_history([0.01, 0.02], days=700, t_df=5)
    venues = [Ccp(id=f"V{v}", name="c", region="US", currency="USD", margin_model=EOD_ONLY) for v in range(2)]
    base = A.AvalancheSettings(paths=300, hours=96, ccp_im_procyclicality=0.0, jumps_per_day=0.5, jump_size=2.0)
    im = np.array([5e7, 5e7])
    runs = {m: A.simulate_avalanche(book, history, im, AMPLE, venues, base.model_copy(update={"vol_multiplier": m}))
            for m in (1.0, 2.0, 3.5)}  # fmt: skip
    assert runs[1.0].calibration["garch_alpha_daily"] > 0
    for m in (2.0, 3.5):
        for col in (K.S_GROSS, K.S_RETURNS, K.S_PEAK, K.S_NET_END):
            assert np.allclose(runs[m].stats[:, col], m * runs[1.0].stats[:, col], rtol=1e-9, atol=1e-3), (m, col)


def test_more_volatility_more_calls_with_procyclical_margin() -> None:
    book, history, im, _, venues, settings = stressed_case(paths=300)
    ample = resources(cash=1e15)
    peaks = {}
    for m in (1.0, 2.0, 4.0):
        run = A.simulate_avalanche(book, history, im, ample, venues, settings.model_copy(update={"vol_multiplier": m}))
        peaks[m] = run.stats[:, K.S_PEAK]
    for lo, hi in ((1.0, 2.0), (2.0, 4.0)):
        diff = peaks[hi] - peaks[lo]  # common random numbers: the paired difference
        assert diff.mean() > 4 * diff.std(ddof=1) / math.sqrt(len(diff)), (lo, hi)


def test_feedback_raises_the_calls_of_venues_exposed_to_the_sold_market() -> None:
    """Three CCPs long the same market: liquidation at one pushes the price down for the others."""
    positions = [{"venue": v, "factor": 0, "delta": 2e9} for v in range(3)] + [{"venue": 2, "factor": 1, "delta": 1e9}]
    book = make_book(positions, 2, [True, True, True], depth=1e9)
    history = make_history([0.015, 0.01], days=600)
    settings = A.AvalancheSettings(paths=300, hours=120, vol_multiplier=2.0, impact_coefficient=3.0)
    res = resources(cash=5e7)
    im = np.array([1e8, 1e8, 1.2e8])
    on = A.simulate_avalanche(book, history, im, res, None, settings)
    off = A.simulate_avalanche(book, history, im, res, None, settings.model_copy(update={"feedback": False}))
    liquidated = off.stats[:, K.S_LIQUIDATION_HOUR] >= 0
    assert liquidated.mean() > 0.2
    diff = on.stats[:, K.S_GROSS] - off.stats[:, K.S_GROSS]
    assert diff.mean() > 4 * diff.std(ddof=1) / math.sqrt(len(diff))
    calm = ~liquidated & (on.stats[:, K.S_LIQUIDATION_HOUR] < 0)
    assert calm.any() and np.array_equal(on.stats[calm], off.stats[calm])
    assert on.summary()["liquidation"]["loss_usd"]["mean"] > 0


# ---- inputs ---------------------------------------------------------------------------------------


def test_settings_and_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="garch_beta"):
        A.AvalancheSettings(garch_alpha=0.1)
    with pytest.raises(ValueError, match="below 1"):
        A.AvalancheSettings(garch_alpha=0.5, garch_beta=0.6)
    with pytest.raises(ValueError, match="jump_df"):
        A.AvalancheSettings(jump_df=2)
    book, history, im, res, venues, settings = stressed_case(paths=10)
    with pytest.raises(ValueError, match="venue_im_usd"):
        A.prepare(book, history, im[:3], res, venues, settings)
    with pytest.raises(ValueError, match=r"venues\[1\]"):
        A.prepare(book, history, im, res, [venues[0], venues[0], *venues[2:]], settings)
    with pytest.raises(ValueError, match="paths"):
        A.simulate_avalanche(book, history, im, res, venues, settings, first_path=5, paths=6)


def test_rates_factors_cost_their_duration_in_liquidation() -> None:
    """A swap's delta per unit rate over its notional is its duration: closing it costs σ_rate · duration."""
    book = make_book([{"venue": 0, "factor": 0, "delta": -7e10, "notional": 1e10}], 1, [True], classes=[RATES])
    ptr, factor, flt = A._liquidation_pairs(book, np.array([0.0007]))
    assert ptr.tolist() == [0, 1] and factor.tolist() == [0]
    assert flt[0, K.PF_COST] == pytest.approx(0.0007 * 7.0)
    assert flt[0, K.PF_MOVE] == pytest.approx(+0.0007)  # closing a receiver (short rates) pushes rates up


def test_a_loaded_book_runs_with_its_baseline_margin_and_venue_models(tiny_book) -> None:
    from engines.margin.baseline import baseline_margin

    result = A.avalanche_of_book(tiny_book, A.AvalancheSettings(paths=64, hours=48, vol_multiplier=3.0))
    assert result.venues == ("CCP-A", "CCP-B", "DEALER-A", "DEALER-B")
    assert result.venue_currency == ("USD", "EUR", "USD", "GBP")  # the CCPs' and the CSAs' settlement currencies
    assert result.resources["usable_cash_usd"] == 65e6 and result.resources["facility_notice_hours"] == 24
    model = A.prepare_book(tiny_book, result.settings)
    assert np.array_equal(model.array("venue_flt")[:, K.VF_IM0], baseline_margin(tiny_book).venue_im_usd)
    summary = result.summary()
    assert summary["conservation"]["max_rel_residual"] < 1e-9 and summary["paths"] == 64
    assert summary["waterfall_mean_usd"]["calls"] > 0
