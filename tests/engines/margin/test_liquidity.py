"""The 30-day liquidity ladder on hand-built books, against figures computed here by hand.

A linear book's loss over d days on √d-scaled scenarios is √d times its one-day loss, so the expected
outflow at day d is √d · mean(L⁺) and the stressed one √d · ES(L⁺); the facility's deliveries, the
first day the buffer is breached and the currencies' shortfalls are counted day by day in plain Python.
"""

from __future__ import annotations

import json
import math
from datetime import date
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hand_built_books import hand_book

from engines.margin.liquidity import dated_flows, facility_available, liquidity_ladder
from engines.margin.venues import CreditFacility, LiquidityResources


def resources(
    cash: dict[str, float], buffer: float, limit: float, per_day: float, notice_hours: int
) -> LiquidityResources:
    facility = CreditFacility(limit_usd=limit, notice_hours=notice_hours, max_draw_per_day_usd=per_day)
    return LiquidityResources(cash_usd=cash, operational_buffer_usd=buffer, facility=facility)


def tail_mean(x: np.ndarray, confidence: float) -> float:
    k = (1 - confidence) * len(x)
    worst = np.sort(x)[::-1]
    whole = int(k)
    return float((worst[:whole].sum() + (k - whole) * (worst[whole] if whole < len(x) else 0.0)) / k)


@pytest.mark.parametrize(
    ("notice_hours", "expected"),
    [(0, [100, 200, 250, 250, 250]), (24, [0, 100, 200, 250, 250]), (30, [0, 0, 100, 200, 250])],
)
def test_facility_delivers_after_its_notice_at_most_its_daily_limit(notice_hours: int, expected: list[int]) -> None:
    res = resources({"USD": 1.0}, 0.0, 250.0, 100.0, notice_hours)
    assert facility_available(res, 5).tolist() == expected


def test_ladder_of_a_linear_book_scales_with_the_square_root_of_time() -> None:
    rng = np.random.default_rng(4)
    r = rng.standard_normal((400, 2)) * 0.01
    delta = np.array([[1e8, 0.0], [0.0, -5e7], [2e7, 3e7]])
    book = hand_book(delta, [0, 1, 2])
    res = resources({"USD": 1e12}, 0.0, 0.0, 0.0, 24)
    ladder = liquidity_ladder(book, r, np.zeros(3), ["USD", "USD", "EUR"], res, days=30)
    loss = -(r @ delta.T)  # [N, V] one-day venue losses
    calls = np.maximum(loss, 0.0)
    for d in (1, 7, 30):
        exp_cum = ladder.expected.vm_usd[:d].sum(axis=0)
        assert exp_cum == pytest.approx(math.sqrt(d) * calls.mean(axis=0), rel=1e-10)
        assert ladder.stressed.vm_usd[:d].sum() == pytest.approx(math.sqrt(d) * tail_mean(calls.sum(axis=1), 0.99))
    # stressed per venue: mean over the book's own tail scenarios (adds up to the total)
    worst = np.argsort(-calls.sum(axis=1))[:4]
    assert ladder.stressed.vm_usd.sum(axis=0) == pytest.approx(math.sqrt(30) * calls[worst].mean(axis=0), rel=1e-10)
    by_ccy = dict(zip(ladder.currencies, ladder.stressed.outflow_by_currency_usd.sum(axis=0), strict=True))
    assert by_ccy["EUR"] == pytest.approx(ladder.stressed.vm_usd[:, 2].sum())
    assert ladder.expected.first_breach_day is None and ladder.stressed.first_breach_day is None


@pytest.mark.parametrize("notice_hours", [48, 0])
def test_first_breach_day_counts_cash_facility_im_ramp_and_known_flows_by_hand(notice_hours: int) -> None:
    r = np.full((100, 1), -0.01)
    r[:50] = 0.01  # the long venue loses 1m on half of the days: ES99 of its call is 1m a day (√d over d days)
    book = hand_book(np.array([[1e8]]), [0])
    im_now, im_stressed = np.array([10e6]), np.array([16e6])
    known = np.zeros((30, 2))
    known[2, 0] = 2e6  # a 2m EUR receipt on day 3
    res = resources({"USD": 5e6, "EUR": 1e6}, 2e6, 6e6, 1.5e6, notice_hours)
    ladder = liquidity_ladder(
        book, r, im_now, ["USD"], res, stressed_im_usd=im_stressed, vol_multiplier=3.0, ewma_decay=0.8,
        known_flows_usd=known,
    )  # fmt: skip
    assert ladder.currencies == ("EUR", "USD")
    usable = 5e6 + 1e6 - 2e6
    notice_days = math.ceil(notice_hours / 24)
    breach = facility_day = usd_short = None
    headroom = []
    for d in range(1, 31):
        vm = 1e6 * math.sqrt(d)
        vol = math.sqrt(0.8**d + (1 - 0.8**d) * 9.0)  # the filter's vol on day d, in units of today's
        im = (vol - 1) / 2 * 6e6
        out = vm + im - (2e6 if d >= 3 else 0.0)
        delivered = min(1.5e6 * max(d - notice_days, 0), 6e6)
        headroom.append(usable + delivered - out)
        if breach is None and out > usable + delivered:
            breach = d
        if facility_day is None and out > usable:
            facility_day = d
        if usd_short is None and vm + im > 5e6:
            usd_short = d
    assert ladder.stressed.first_breach_day == breach
    assert ladder.stressed.facility_needed_day == facility_day
    assert ladder.stressed.currency_short_day == {"USD": usd_short}
    assert (breach, facility_day, usd_short) == ((2, 2, 3) if notice_hours else (None, 2, 3))
    assert ladder.stressed.headroom_usd == pytest.approx(headroom, rel=1e-12)
    assert ladder.stressed.im_change_usd[0, 0] == pytest.approx((math.sqrt(0.8 + 0.2 * 9) - 1) / 2 * 6e6)
    assert 0.99 * 6e6 < ladder.stressed.im_change_usd.sum() < 6e6  # nearly all the way after 30 days
    assert ladder.expected.im_change_usd.sum() == 0.0
    assert ladder.expected.vm_usd.sum() == pytest.approx(0.5e6 * math.sqrt(30))  # mean of L⁺: 1m half the time
    assert ladder.expected.first_breach_day is None


def test_scheduled_im_changes_and_inflow_credit_enter_both_views() -> None:
    r = np.vstack([np.full((50, 1), 0.01), np.full((50, 1), -0.01)])
    book = hand_book(np.array([[1e8], [-1e8]]), [0, 1])  # opposite venues: one gains what the other loses
    scheduled = np.zeros((10, 2))
    scheduled[4, 1] = 3e6
    res = resources({"USD": 1e9}, 0.0, 0.0, 0.0, 24)
    full = liquidity_ladder(book, r, np.zeros(2), ["USD", "USD"], res, days=10, scheduled_im_change_usd=scheduled,
                            vm_inflow_credit=1.0)  # fmt: skip
    none = liquidity_ladder(book, r, np.zeros(2), ["USD", "USD"], res, days=10, scheduled_im_change_usd=scheduled)
    assert full.stressed.vm_usd.sum() == pytest.approx(0.0, abs=1e-6)  # every call offset by the other's receipt
    assert none.stressed.vm_usd.sum() == pytest.approx(1e6 * math.sqrt(10))
    for ladder in (full, none):
        assert ladder.expected.im_change_usd[4, 1] == ladder.stressed.im_change_usd[4, 1] == 3e6
    text = json.dumps(none.to_dict())
    data = json.loads(text)
    assert [row["day"] for row in data["stressed"]["ladder"]] == list(range(1, 11))
    assert data["stressed"]["ladder"][4]["im_change_usd"] == pytest.approx(3e6)
    assert data["venues"][0]["venue"] in ("VEN0", "VEN1")


def test_ladder_refuses_bad_inputs_naming_the_field() -> None:
    book = hand_book(np.array([[1e6]]), [0])
    res = resources({"USD": 1.0}, 0.0, 0.0, 0.0, 24)
    r = np.zeros((100, 1))
    with pytest.raises(ValueError, match=r"^venue_currency: one currency per venue"):
        liquidity_ladder(book, r, np.zeros(1), [], res)
    with pytest.raises(ValueError, match=r"^known_flows_usd: expected shape \(30, 1\)"):
        liquidity_ladder(book, r, np.zeros(1), ["USD"], res, known_flows_usd=np.zeros((5, 1)))
    with pytest.raises(ValueError, match=r"^scenarios: expected shape"):
        liquidity_ladder(book, np.zeros((100, 3)), np.zeros(1), ["USD"], res)
    with pytest.raises(ValueError, match=r"^resources.cash_usd: currencies GBP"):
        liquidity_ladder(book, r, np.zeros(1), ["USD"], resources({"GBP": 1.0}, 0, 0, 0, 0), currencies=["USD"])


def test_dated_flows_release_expiring_margin_and_settle_fx_forwards_by_currency() -> None:
    # as of Friday 2026-11-20: business day 1 is Monday the 23rd
    book = hand_book(np.array([[1e6], [2e6], [3e6]]), [0, 1, 1], n_venues=2)
    book = book._replace(position_value_usd=np.array([3e5, 0.0, 0.0]))
    fx_forward = SimpleNamespace(instrument="fx_forward", maturity=date(2026, 11, 24), buy_currency="EUR",
                                 buy_amount=10e6, sell_currency="USD", sell_amount=11.5e6)  # fmt: skip
    future = SimpleNamespace(instrument="listed_future", expiry=date(2026, 11, 28))  # a Saturday: rolls to day 6
    swap = SimpleNamespace(instrument="cleared_irs", maturity=date(2031, 1, 15))
    dated_book = SimpleNamespace(
        as_of=date(2026, 11, 20),
        positions=(fx_forward, future, swap),
        factors=(SimpleNamespace(id="FX.EURUSD", level=1.1), SimpleNamespace(id="EQ.SPX", level=6000.0)),
    )
    flows = dated_flows(dated_book, book, np.array([4e5, 7e5, -2e5]), ["GBP", "USD"], days=10)
    assert (flows.expiring_positions, flows.settling_fx_forwards) == (2, 1)
    assert flows.currencies == ("EUR", "GBP", "USD")
    known = dict(zip(flows.currencies, flows.known_flows_usd.T, strict=True))
    assert known["EUR"][1] == pytest.approx(11e6)  # 10m EUR at 1.10
    assert known["USD"][1] == pytest.approx(-11.5e6)
    assert known["GBP"][1] == pytest.approx(-3e5)  # the variation margin held against it goes back
    assert sum(k.sum() for k in known.values()) == pytest.approx(11e6 - 11.5e6 - 3e5)
    assert flows.im_change_usd[1, 0] == pytest.approx(-4e5)
    assert flows.im_change_usd[5, 1] == pytest.approx(-7e5)
    assert np.count_nonzero(flows.im_change_usd) == 2


def test_book_ladder_moves_ccp_margin_at_each_filters_pace_and_releases_expiring_margin(tiny_book: Any) -> None:
    # the tiny book's SPX and SX5E futures expire on 18 December 2026, business day 20 after 20 November
    from engines.margin.baseline import baseline_margin
    from engines.margin.liquidity import book_ladder
    from engines.margin.stressed import stressed_margin

    base = baseline_margin(tiny_book)
    stressed = stressed_margin(tiny_book, multipliers=(3.0,), correlation_breakdown=False, bilateral="unchanged")
    ladder = book_ladder(tiny_book, baseline=base, vol_multiplier=3.0)
    ids = tiny_book.arrays.position_ids
    released = base.position_im_usd[ids.index("F1")] + base.position_im_usd[ids.index("F2")]
    ccp_a = tiny_book.arrays.venues.index("CCP-A")
    assert ladder.expected.im_change_usd[19, ccp_a] == pytest.approx(-released)
    assert np.count_nonzero(ladder.expected.im_change_usd) == 1
    expected_rise = 0.0
    for v, venue in enumerate(tiny_book.book.venues):
        if venue.kind == "ccp":
            decay = venue.margin_model.ewma_decay**30
            expected_rise += (
                (stressed.venue_im_usd[1, v] - base.venue_im_usd[v]) * (math.sqrt(decay + (1 - decay) * 9) - 1) / 2
            )
        else:
            assert stressed.venue_im_usd[1, v] == base.venue_im_usd[v]  # SIMM does not follow realised vol
    assert ladder.stressed.im_change_usd.sum() == pytest.approx(expected_rise - released, rel=1e-9)
    assert ladder.currencies == ("EUR", "GBP", "USD")  # the venues' (GBP: a CSA's) and the cash's
    assert ladder.stressed.known_flows_usd.sum() == 0.0
