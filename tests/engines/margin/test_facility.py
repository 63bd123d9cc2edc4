"""Credit facility sizing against its exact reference and the directions it must have.

Without delays (drawings arrive at once, no daily cap) a path needs forced liquidation or falls short exactly
when the limit is below its peak cumulative net calls minus the usable cash, measured on a run where nothing is
ever liquidated; the sizing at 99% is then an order statistic of that need. With delays the limit can only be
larger, a larger limit never exhausts more paths, and when the delays bind no limit is enough.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engines.margin import avalanche as A
from engines.margin import avalanche_kernels as K
from engines.margin import facility as F
from engines.margin.arrays import EQUITY, FactorHistory, MarginBook
from engines.margin.venues import (
    BilateralCounterparty,
    Ccp,
    CcpMarginModel,
    CreditFacility,
    CsaTerms,
    LiquidityResources,
)


def make_book() -> MarginBook:
    """Two CCPs and a CSA on three equity factors (long, short, long), managers 0 and 1."""
    venue = np.array([0, 0, 1, 2, 2], dtype=np.int32)
    factor = np.array([0, 1, 1, 2, 0], dtype=np.int32)
    delta = np.array([3e9, -1e9, 2e9, 1.5e9, 1e9])
    n = len(venue)
    return MarginBook(
        factors=("EQ.A", "EQ.B", "EQ.C"),
        factor_class=np.full(3, EQUITY, dtype=np.int8),
        factor_currency=np.zeros(3, dtype=np.int16),
        factor_depth_usd=np.full(3, 3e9),
        venues=("C0", "C1", "D0"),
        venue_is_ccp=np.array([True, True, False]),
        managers=("M0", "M1"),
        strategies=("S0", "S1"),
        strategy_manager=np.array([0, 1], dtype=np.int32),
        currencies=("USD",),
        position_ids=tuple(f"P{i}" for i in range(n)),
        position_venue=venue,
        position_manager=np.array([0, 1, 1, 0, 0], dtype=np.int32),
        position_strategy=np.array([0, 1, 1, 0, 0], dtype=np.int32),
        position_currency=np.zeros(n, dtype=np.int16),
        position_class=np.full(n, EQUITY, dtype=np.int8),
        position_notional_usd=np.abs(delta),
        position_value_usd=np.zeros(n),
        position_expected_return_usd=np.zeros(n),
        position_liquidity_factor=factor,
        load_position=np.arange(n, dtype=np.int32),
        load_factor=factor,
        load_delta=delta,
        load_gamma=np.array([5e8, 0.0, 0.0, -2e8, 0.0]),
    )


def make_history(days: int = 700) -> FactorHistory:
    rng = np.random.default_rng(9)
    c = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])
    z = rng.standard_normal((days, 3)) @ np.linalg.cholesky(c).T * np.sqrt(5 / rng.chisquare(5, (days, 1)))
    return FactorHistory(np.arange(days).astype("datetime64[D]"), ("EQ.A", "EQ.B", "EQ.C"), z * [0.012, 0.01, 0.015],
                         np.zeros(days, dtype=bool))  # fmt: skip


VENUES = [
    Ccp(id="C0", name="a", region="US", currency="USD", margin_model=CcpMarginModel(intraday_call_hours=(11,))),
    Ccp(id="C1", name="b", region="EU", currency="EUR"),
    BilateralCounterparty(id="D0", name="c", region="UK", csa=CsaTerms(rounding_usd=1e5)),
]
IM = np.array([1.2e8, 6e7, 5e7])


def model(cash: float = 7e8, limit: float = 1e8, notice: int = 12, cap: float = 1e8, paths: int = 500, **kw):
    facility = CreditFacility(limit_usd=limit, notice_hours=notice, max_draw_per_day_usd=cap)
    res = LiquidityResources(cash_usd={"USD": cash}, operational_buffer_usd=1e7, facility=facility)
    fields = dict(paths=paths, hours=120, seed=21, vol_multiplier=1.5, jumps_per_day=0.05, jump_size=2.0,
                  impact_coefficient=2.0)  # fmt: skip
    settings = A.AvalancheSettings(**{**fields, **kw})
    return A.prepare(make_book(), make_history(), IM, res, VENUES, settings)


@pytest.fixture(scope="module")
def base() -> A.AvalancheModel:
    return model()


@pytest.fixture(scope="module")
def sizing(base: A.AvalancheModel) -> F.FacilitySizing:
    return F.size_facility(base, confidence=0.99, tolerance_usd=1e4)


def test_without_delays_the_limit_is_the_order_statistic_of_the_need(base, sizing) -> None:
    instant = base.with_facility(F.UNLIMITED_USD, 0, F.UNLIMITED_USD)
    stats, _ = A.run_model(instant, np.arange(500))
    assert np.all(stats[:, K.S_EXHAUST_HOUR] == -1)  # an unlimited instant facility: nothing is ever liquidated
    usable = 7e8 - 1e7
    need = np.sort(np.maximum(stats[:, K.S_PEAK] - usable, 0.0))[::-1]
    allowed = math.floor(0.01 * 500)
    reference = need[allowed]  # at most `allowed` paths need more than this
    assert reference > 0 and need[0] > reference
    found = sizing.without_delays.limit_usd
    assert reference - 2 * K.CENT <= found <= reference + 1e4 + 2 * K.CENT
    # and the relation holds path by path at a limit between order statistics
    between = 0.5 * (need[allowed] + need[allowed + 3])
    at, _ = A.run_model(base.with_facility(between, 0, F.UNLIMITED_USD), np.arange(500))
    unsorted = np.maximum(stats[:, K.S_PEAK] - usable, 0.0)
    assert np.array_equal(at[:, K.S_EXHAUST_HOUR] >= 0, unsorted > between)


def test_delays_cost_facility_and_the_current_facility_is_reported(base, sizing) -> None:
    assert sizing.with_delays.limit_usd is not None
    assert sizing.cost_of_delays_usd >= 0
    assert sizing.with_delays.exhaust_probability <= 0.01
    assert sizing.with_delays.paths_simulated < (sizing.with_delays.bisection_steps + 2) * 500  # statuses reused
    stats, _ = A.run_model(base, np.arange(500))
    assert sizing.current_exhaust_probability == np.mean(stats[:, K.S_EXHAUST_HOUR] >= 0)
    assert sizing.current_exhaust_probability > 0.01  # the book's own facility is too small here
    data = sizing.to_dict()
    assert data["limit_usd"] == sizing.with_delays.limit_usd and data["settings"]["seed"] == 21


@pytest.mark.parametrize("daily_cap", ["fixed", "proportional"])
def test_the_sized_limit_meets_the_confidence_and_a_bit_less_does_not(base, daily_cap) -> None:
    found, _ = F.smallest_limit(base, confidence=0.99, daily_cap=daily_cap, tolerance_usd=1e4)
    limit = found.limit_usd
    cap = 1e8 if daily_cap == "fixed" else limit  # today's cap is 100% of today's limit
    assert found.max_draw_per_day_usd == pytest.approx(cap)
    at, _ = A.run_model(base.with_facility(limit, None, cap), np.arange(500))
    smaller = limit - 2e6
    below, _ = A.run_model(base.with_facility(smaller, None, 1e8 if daily_cap == "fixed" else smaller), np.arange(500))
    assert np.mean(at[:, K.S_EXHAUST_HOUR] >= 0) == found.exhaust_probability <= 0.01
    assert np.mean(below[:, K.S_EXHAUST_HOUR] >= 0) > 0.01


def test_a_fixed_daily_cap_the_calls_outrun_leaves_no_limit_enough() -> None:
    tight = model(cap=2e7)
    fixed, _ = F.smallest_limit(tight, daily_cap="fixed")
    proportional, _ = F.smallest_limit(tight, daily_cap="proportional")
    assert fixed.limit_usd is None and fixed.unlimited_exhaust_probability > 0.01
    assert proportional.limit_usd is not None and proportional.max_draw_per_day_usd == pytest.approx(
        0.2 * proportional.limit_usd
    )


def test_more_facility_never_more_liquidation(base) -> None:
    previous = None
    for limit in (0.0, 5e7, 1e8, 2e8, 4e8):
        stats, _ = A.run_model(base.with_facility(limit), np.arange(300))
        hit = stats[:, K.S_EXHAUST_HOUR] >= 0
        if previous is not None:
            assert np.all(hit <= previous), limit  # every path exhausted now was exhausted with less
        previous = hit
    assert previous.mean() < 0.5


def test_no_limit_is_enough_when_the_notice_is_too_long() -> None:
    m = model(cash=1.1e7, notice=72, paths=200)  # usable cash 1m: calls fall due long before any cash
    sizing = F.size_facility(m, confidence=0.99)
    assert sizing.with_delays.limit_usd is None
    assert sizing.with_delays.unlimited_exhaust_probability > 0.01
    assert sizing.cost_of_delays_usd is None
    assert sizing.without_delays.limit_usd is not None and sizing.without_delays.limit_usd > 0


def test_confidence_is_checked(base) -> None:
    with pytest.raises(ValueError, match="confidence"):
        F.smallest_limit(base, confidence=1.0)
