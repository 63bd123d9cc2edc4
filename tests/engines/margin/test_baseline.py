"""Baseline margin of a small hand-built book: IM per venue is the CCP model's figure or SIMM plus the
independent amount, today's VM is the last day's move (in full at a CCP, through the CSA bilaterally,
both computed by hand here), and every breakdown adds up to the totals."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from engines.margin import ccp
from engines.margin.arrays import FactorHistory, MarginBook
from engines.margin.baseline import DIMENSIONS, baseline_margin, bilateral_margin
from engines.margin.venues import BilateralCounterparty, Ccp, CcpMarginModel, CsaTerms

M = 1e6
FACTORS = ("EQ.SPX", "IR.USD.5Y", "FX.EURUSD")
CLASSES = np.array([2, 0, 1], dtype=np.int8)  # equity, rates, fx


def venues() -> list:
    return [
        Ccp(id="CCP-A", name="A", region="US", currency="USD", margin_model=CcpMarginModel(lookback_days=500)),
        Ccp(id="CCP-B", name="B", region="EU", currency="EUR",
            margin_model=CcpMarginModel(lookback_days=250, apc="none", measure="var")),
        BilateralCounterparty(id="DLR-X", name="X", region="US",
                              csa=CsaTerms(threshold_usd=0.0, independent_amount_usd=1 * M, call_timing="same_day")),
        BilateralCounterparty(id="DLR-Y", name="Y", region="UK",
                              csa=CsaTerms(threshold_usd=5 * M, initial_margin="none", currency="GBP")),
    ]  # fmt: skip


# position: venue, manager, strategy, factor, delta, gamma, notional, value
POSITIONS = [
    (0, 0, 0, 0, 40 * M, 40 * M, 40 * M, 0.0),
    (0, 1, 2, 1, -9 * M, 2 * M, 200 * M, 0.0),
    (0, 0, 1, 2, 15 * M, 15 * M, 15 * M, 0.0),
    (1, 1, 2, 0, -25 * M, -25 * M, 25 * M, 0.0),
    (1, 2, 3, 1, 12 * M, 0.0, 250 * M, 0.0),
    (2, 0, 0, 0, 30 * M, 0.0, 30 * M, 2.5 * M),
    (2, 2, 3, 2, -20 * M, 0.0, 20 * M, -0.4 * M),
    (3, 1, 2, 0, 10 * M, 0.0, 10 * M, 7.2 * M),
]


def loaded(history: FactorHistory | None = None) -> SimpleNamespace:
    rng = np.random.default_rng(9)
    h = history or FactorHistory(
        np.datetime64("2016-01-04") + np.arange(900).astype("timedelta64[D]"),
        FACTORS,
        rng.standard_t(5, size=(900, 3)) * np.array([0.012, 0.0006, 0.006]),
        np.zeros(900, dtype=bool),
    )
    p = np.array(POSITIONS)
    n = len(p)
    arrays = MarginBook(
        factors=FACTORS,
        factor_class=CLASSES,
        factor_currency=np.array([0, 0, 1], dtype=np.int16),
        factor_depth_usd=np.array([5e8, 2e9, 1e9]),
        venues=tuple(v.id for v in venues()),
        venue_is_ccp=np.array([True, True, False, False]),
        managers=("m0", "m1", "m2"),
        strategies=("s0", "s1", "s2", "s3"),
        strategy_manager=np.array([0, 0, 1, 2], dtype=np.int32),
        currencies=("USD", "EUR"),
        position_ids=tuple(f"p{i}" for i in range(n)),
        position_venue=p[:, 0].astype(np.int32),
        position_manager=p[:, 1].astype(np.int32),
        position_strategy=p[:, 2].astype(np.int32),
        position_currency=np.zeros(n, dtype=np.int16),
        position_class=CLASSES[p[:, 3].astype(int)],
        position_notional_usd=p[:, 6],
        position_value_usd=p[:, 7],
        position_expected_return_usd=np.zeros(n),
        position_liquidity_factor=p[:, 3].astype(np.int32),
        load_position=np.arange(n, dtype=np.int32),
        load_factor=p[:, 3].astype(np.int32),
        load_delta=p[:, 4],
        load_gamma=p[:, 5],
    )
    return SimpleNamespace(book=SimpleNamespace(venues=venues()), history=h, arrays=arrays)


def fake_simm(arrays: MarginBook) -> dict[int, SimpleNamespace]:
    return {2: SimpleNamespace(total_usd=5 * M), 3: SimpleNamespace(total_usd=7 * M)}


def test_im_per_venue_is_the_model_figure_or_simm_plus_independent_amount() -> None:
    lb = loaded()
    base = baseline_margin(lb, simm_im=fake_simm)
    models = [v.margin_model if v.kind == "ccp" else None for v in lb.book.venues]
    alone = ccp.ccp_initial_margin(lb.arrays, lb.history, models)
    np.testing.assert_allclose(base.venue_im_usd[:2], alone.total_usd[:2], rtol=1e-12)
    assert base.venue_im_usd[2] == 5 * M + 1 * M  # SIMM plus the independent amount
    assert base.venue_im_usd[3] == 0.0  # CSA without regulatory IM and no independent amount
    assert base.total_im_usd == pytest.approx(alone.total_usd.sum() + 6 * M)
    assert base.ccp_im_usd + base.bilateral_im_usd == pytest.approx(base.total_im_usd)


def test_vm_today_by_hand() -> None:
    lb = loaded()
    base = baseline_margin(lb, simm_im=fake_simm)
    r = lb.history.returns[-1]
    pnl = np.zeros(4)
    for v, _, _, f, d, g, _, _ in POSITIONS:
        pnl[int(v)] += d * r[int(f)] + 0.5 * g * r[int(f)] ** 2
    np.testing.assert_allclose(base.venue_pnl_usd, pnl, rtol=1e-12)
    np.testing.assert_allclose(base.venue_vm_usd[:2], -pnl[:2], rtol=1e-12)
    # dealer X: no threshold, MTA 500k, rounding 10k, the fund posts a 1m independent amount; value today
    # 2.1m, before the move 2.1m − pnl; the balance matched the credit support amount before the move
    held, required = (2.1 * M - pnl[2]) - 1 * M, 2.1 * M - 1 * M
    transfer = required - held  # + to the fund
    giver_holds = max(held, 0.0) if transfer < 0 else max(-held, 0.0)  # what the paying side gives back
    ret = min(abs(transfer), giver_holds)
    size = np.floor(ret / 10_000 + 1e-9) * 10_000 + np.ceil((abs(transfer) - ret) / 10_000 - 1e-9) * 10_000
    expected = 0.0 if abs(transfer) < 500_000 else -np.sign(transfer) * size
    assert abs(transfer) > 500_000  # the history's last day moves this netting set by more than the MTA
    assert base.venue_vm_usd[2] == pytest.approx(expected)
    # dealer Y: 7.2m value, 5m threshold
    before, after = 7.2 * M - pnl[3], 7.2 * M
    transfer = max(after - 5 * M, 0) - max(before - 5 * M, 0)
    if abs(transfer) < 500_000:
        assert base.venue_vm_usd[3] == 0.0
    else:
        assert abs(base.venue_vm_usd[3] + transfer) < 10_000


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_breakdowns_add_up(dimension: str) -> None:
    base = baseline_margin(loaded(), simm_im=fake_simm)
    parts = base.breakdown(dimension)
    im = sum(x["im_usd"] for x in parts.values())
    vm = sum(x["vm_usd"] for x in parts.values())
    if dimension == "counterparty":
        assert set(parts) == {"DLR-X", "DLR-Y"}
        assert im == pytest.approx(base.bilateral_im_usd, rel=1e-12)
    else:
        assert im == pytest.approx(base.total_im_usd, rel=1e-10)
        assert vm == pytest.approx(base.total_vm_usd, rel=1e-10, abs=1e-6)
    if dimension == "currency":
        assert set(parts) == {"USD", "EUR", "GBP"}
        assert parts["EUR"]["im_usd"] == pytest.approx(base.venue_im_usd[1])


def test_position_pieces_add_up_per_venue() -> None:
    lb = loaded()
    base = baseline_margin(lb, simm_im=fake_simm)
    v = lb.arrays.position_venue
    np.testing.assert_allclose(np.bincount(v, weights=base.position_im_usd, minlength=4), base.venue_im_usd, rtol=1e-10)
    np.testing.assert_allclose(np.bincount(v, weights=base.position_vm_usd, minlength=4), base.venue_vm_usd, atol=1e-6)
    out = base.to_dict(top=2)
    assert len(out["venues"]) == 2 and out["venues"][0]["im_usd"] == base.venue_im_usd.max()
    assert out["totals"]["im_usd"] == pytest.approx(base.total_im_usd)


def test_real_simm_is_used_for_bilateral_venues() -> None:
    from engines.margin.simm import simm_by_counterparty

    lb = loaded()
    bm = bilateral_margin(lb)
    expected = simm_by_counterparty(lb.arrays)
    assert bm.simm_usd[2] == pytest.approx(expected[2].total_usd) and bm.simm_usd[2] > 0
    assert bm.simm_usd[3] == 0.0  # initial_margin="none"
    assert bm.breakdown_sum_usd[2] >= bm.simm_usd[2]


def test_venue_order_is_checked() -> None:
    lb = loaded()
    lb.book.venues = list(reversed(lb.book.venues))
    with pytest.raises(ValueError, match=r"arrays\.venues"):
        baseline_margin(lb, simm_im=fake_simm)


def test_tiny_book_end_to_end(tiny_book: Any) -> None:  # the shared fixture of conftest.py
    from engines.margin.simm import simm_by_counterparty

    base = baseline_margin(tiny_book)
    a = tiny_book.arrays
    assert np.all(base.venue_im_usd[a.venue_is_ccp] > 0)
    simm = simm_by_counterparty(a)
    for v in np.flatnonzero(~a.venue_is_ccp):
        csa = tiny_book.book.venues[v].csa
        expected = (simm[v].total_usd if csa.initial_margin == "simm" else 0.0) + csa.independent_amount_usd
        assert base.venue_im_usd[v] == pytest.approx(expected)
    summed = np.bincount(a.position_venue, weights=base.position_im_usd, minlength=len(a.venues))
    np.testing.assert_allclose(summed, base.venue_im_usd, rtol=1e-9)
    assert sum(x["im_usd"] for x in base.breakdown("manager").values()) == pytest.approx(base.total_im_usd)
