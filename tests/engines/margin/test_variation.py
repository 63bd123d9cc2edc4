"""Variation margin and CSA mechanics, every figure computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from engines.margin.arrays import MarginBook
from engines.margin.variation import CsaArrays, csa_call, csa_path, position_pnl, variation_margin, venue_pnl
from engines.margin.venues import CsaTerms

M = 1e6


def small_book() -> MarginBook:
    """Venue 0 is a CCP, venue 1 a dealer. p0: long 2m SPX delta with 1e7 gamma; p1: 10-year swap; p2 at the dealer."""
    return MarginBook(
        factors=("EQ.SPX", "IR.USD.10Y"),
        factor_class=np.array([2, 0], dtype=np.int8),
        factor_currency=np.zeros(2, dtype=np.int16),
        factor_depth_usd=np.full(2, 1e9),
        venues=("CCP", "Dealer"),
        venue_is_ccp=np.array([True, False]),
        managers=("m",),
        strategies=("s",),
        strategy_manager=np.zeros(1, dtype=np.int32),
        currencies=("USD",),
        position_ids=("p0", "p1", "p2"),
        position_venue=np.array([0, 0, 1], dtype=np.int32),
        position_manager=np.zeros(3, dtype=np.int32),
        position_strategy=np.zeros(3, dtype=np.int32),
        position_currency=np.zeros(3, dtype=np.int16),
        position_class=np.array([2, 0, 2], dtype=np.int8),
        position_notional_usd=np.array([2 * M, 50 * M, 30 * M]),
        position_value_usd=np.array([0.0, 0.0, 4.3 * M]),
        position_expected_return_usd=np.zeros(3),
        position_liquidity_factor=np.array([0, 1, 0], dtype=np.int32),
        load_position=np.array([0, 1, 2], dtype=np.int32),
        load_factor=np.array([0, 1, 0], dtype=np.int32),
        load_delta=np.array([2 * M, -4.5e8, 30 * M]),
        load_gamma=np.array([1e7, 0.0, 0.0]),
    )


def test_pnl_is_delta_gamma_by_hand() -> None:
    book = small_book()
    r = np.array([-0.03, 0.0010])  # SPX −3%, 10-year rate +10 bp
    p0 = 2 * M * -0.03 + 0.5 * 1e7 * 0.03**2  # −60,000 + 4,500
    p1 = -4.5e8 * 0.001  # −450,000: a receiver loses when rates rise
    p2 = 30 * M * -0.03
    np.testing.assert_allclose(position_pnl(book, r), [p0, p1, p2], rtol=1e-14)
    np.testing.assert_allclose(venue_pnl(book, r), [p0 + p1, p2], rtol=1e-14)
    days = np.array([r, -r])
    np.testing.assert_allclose(venue_pnl(book, days)[0], [p0 + p1, p2], rtol=1e-14)
    np.testing.assert_allclose(position_pnl(book, days)[1, 0], -2 * M * -0.03 + 0.5 * 1e7 * 0.03**2, rtol=1e-14)
    with pytest.raises(ValueError, match="returns"):
        venue_pnl(book, np.zeros(3))


def terms(**kw: object) -> CsaArrays:
    base = {"threshold_usd": 1 * M, "minimum_transfer_amount_usd": 250_000.0, "rounding_usd": 10_000.0}
    return CsaArrays.from_terms([CsaTerms(**(base | kw))])


@pytest.mark.parametrize(
    ("mtm", "held", "csa", "transfer", "ret", "delivery"),
    [
        (3.234 * M, 0.0, {}, 2.24 * M, 0.0, 2.24 * M),  # dealer delivers 2.234m, rounded up
        (3.234 * M, 2.5 * M, {}, -0.26 * M, -0.26 * M, 0.0),  # fund returns 266k, rounded down
        (1.1 * M, 0.0, {}, 0.0, 0.0, 0.0),  # 100k over the threshold: under the transfer minimum
        (3.2 * M, 2.0 * M, {}, 0.0, 0.0, 0.0),  # required 2.2m, held 2m: 200k is under the transfer minimum
        (3.2 * M, 3.0 * M, {}, -0.8 * M, -0.8 * M, 0.0),  # required 2.2m, held 3m: the fund returns 800k
        (-5.0123 * M, 1 * M, {}, -5.02 * M, -1.0 * M, -4.02 * M),  # return all 1m, then deliver 4.0123m up
        (0.0, 0.0, {"independent_amount_usd": 2 * M}, -2 * M, 0.0, -2 * M),  # the fund posts its IA
        (2.345678 * M, 0.0, {"threshold_usd": 0.0, "rounding_usd": 0.0}, 2.345678 * M, 0.0, 2.345678 * M),
        (-0.8 * M, -1.0 * M, {"threshold_usd": 0.0, "minimum_transfer_amount_usd": 0.0}, 0.2 * M, 0.2 * M, 0.0),
    ],
)
def test_csa_call_by_hand(mtm: float, held: float, csa: dict, transfer: float, ret: float, delivery: float) -> None:
    call = csa_call(np.array([mtm]), np.array([held]), terms(**csa))
    assert call.transfer_usd[0] == pytest.approx(transfer, abs=1e-6)
    assert call.return_usd[0] == pytest.approx(ret, abs=1e-6)
    assert call.delivery_usd[0] == pytest.approx(delivery, abs=1e-6)


def test_csa_path_next_day_settlement_by_hand() -> None:
    csa = terms(threshold_usd=0.0, minimum_transfer_amount_usd=100_000.0, call_timing="next_day")
    mtm = np.array([1.0, 1.5, 1.52, 0.9])[:, None] * M
    path = csa_path(mtm, csa, np.zeros(1))
    np.testing.assert_allclose(path.calls_usd[:, 0], [1.0 * M, 0.5 * M, 0.0, -0.6 * M])
    np.testing.assert_allclose(path.settled_usd[:, 0], [0.0, 1.0 * M, 0.5 * M, 0.0])
    np.testing.assert_allclose(path.balance_usd[:, 0], [0.0, 1.0 * M, 1.5 * M, 1.5 * M])
    same = csa_path(mtm, terms(threshold_usd=0.0, minimum_transfer_amount_usd=100_000.0, call_timing="same_day"),
                    np.zeros(1))  # fmt: skip
    np.testing.assert_allclose(same.balance_usd[:, 0], [1.0 * M, 1.5 * M, 1.5 * M, 0.9 * M])


def test_pending_calls_are_not_called_twice() -> None:
    base = terms(threshold_usd=0.0, minimum_transfer_amount_usd=0.0, rounding_usd=0.0)
    two_days = CsaArrays(base.threshold_usd, base.minimum_transfer_usd, base.independent_amount_usd,
                         base.rounding_usd, np.array([2]))  # fmt: skip
    path = csa_path(np.full((3, 1), 1.0 * M), two_days, np.zeros(1))
    np.testing.assert_allclose(path.calls_usd[:, 0], [1.0 * M, 0.0, 0.0])
    np.testing.assert_allclose(path.balance_usd[:, 0], [0.0, 0.0, 1.0 * M])


def test_variation_margin_ccp_in_full_and_bilateral_through_the_csa() -> None:
    book = small_book()
    r = np.array([0.02, -0.0002])
    csa = CsaTerms(threshold_usd=3 * M, minimum_transfer_amount_usd=250_000.0, rounding_usd=10_000.0)
    vm = variation_margin(book, r, [None, csa])
    ccp_pnl = 2 * M * 0.02 + 0.5 * 1e7 * 0.02**2 + -4.5e8 * -0.0002  # 40,000 + 2,000 + 90,000
    assert vm.pnl_usd[0] == pytest.approx(ccp_pnl)
    assert vm.paid_usd[0] == pytest.approx(-ccp_pnl)  # the fund receives its gain in full
    # dealer: value 4.3m after a 600k gain, 3.7m before; held 0.7m; required 1.3m; 600k delivered to the fund
    assert vm.pnl_usd[1] == pytest.approx(0.6 * M)
    assert vm.paid_usd[1] == pytest.approx(-0.6 * M)
    assert list(vm.settlement_lag_days) == [0, 1]
    small = variation_margin(book, np.array([0.005, 0.0]), [None, csa])  # 150k move: under the MTA
    assert small.paid_usd[1] == 0.0
