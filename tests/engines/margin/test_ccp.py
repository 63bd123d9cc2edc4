"""CCP initial margin: VaR and ES against the closed forms on Gaussian returns and against order statistics
counted by hand, exact scaling with the vol multiplier, Euler contributions that add up and equal the
positions' mean tail losses, the concentration add-on's super-linearity and the liquidity add-on by hand.

Sampling tolerance of the Gaussian checks: 20 venues each hold one position on its own iid Gaussian factor,
2,520 two-day scenarios each. One venue's 99% VaR or ES has a sampling error of about 4% (overlapping
windows), so each is checked within 15%; the mean of the 20 ratios to the closed form has about 1%,
checked within 3.5%. The closed form uses the filter's own volatility forecast (the revolatilisation target).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from scipy.stats import norm

from engines.margin import ccp, fhs
from engines.margin.arrays import ASSET_CLASSES, FactorHistory, MarginBook
from engines.margin.venues import CcpMarginModel, ConcentrationAddOn, LiquidityAddOn

NO_ADD_ONS = {
    "concentration": ConcentrationAddOn(coefficient=0.0),
    "liquidity": LiquidityAddOn(spread_bp={}),
}


def history_of(
    returns: np.ndarray, names: Sequence[str] | None = None, stressed: np.ndarray | None = None
) -> FactorHistory:
    returns = np.asarray(returns, dtype=np.float64)
    t, f = returns.shape
    dates = np.datetime64("2014-01-01") + np.arange(t).astype("timedelta64[D]")
    names = tuple(names or (f"EQ.X{i}" for i in range(f)))
    return FactorHistory(dates, names, returns, np.zeros(t, dtype=bool) if stressed is None else stressed)


def book_of(
    factors: Sequence[str],
    venues: Sequence[tuple[str, bool]],
    positions: Sequence[dict],
    depth: float = 1e12,
) -> MarginBook:
    """A book from position dicts: venue, manager, strategy, notional, class, loads [(factor, delta, gamma)], liq."""
    managers = sorted({p.get("manager", "m0") for p in positions})
    strategies = sorted({p.get("strategy", "s0") for p in positions})
    load = [(i, f, d, g) for i, p in enumerate(positions) for f, d, g in p["loads"]]
    return MarginBook(
        factors=tuple(factors),
        factor_class=np.array([_class_of(f) for f in factors], dtype=np.int8),
        factor_currency=np.zeros(len(factors), dtype=np.int16),
        factor_depth_usd=np.full(len(factors), depth),
        venues=tuple(v for v, _ in venues),
        venue_is_ccp=np.array([c for _, c in venues]),
        managers=tuple(managers),
        strategies=tuple(strategies),
        strategy_manager=np.zeros(len(strategies), dtype=np.int32),
        currencies=("USD",),
        position_ids=tuple(f"p{i}" for i in range(len(positions))),
        position_venue=np.array([p["venue"] for p in positions], dtype=np.int32),
        position_manager=np.array([managers.index(p.get("manager", "m0")) for p in positions], dtype=np.int32),
        position_strategy=np.array([strategies.index(p.get("strategy", "s0")) for p in positions], dtype=np.int32),
        position_currency=np.zeros(len(positions), dtype=np.int16),
        position_class=np.array([_class_of(factors[p["loads"][0][0]]) for p in positions], dtype=np.int8),
        position_notional_usd=np.array([p.get("notional", abs(p["loads"][0][1])) for p in positions], dtype=float),
        position_value_usd=np.zeros(len(positions)),
        position_expected_return_usd=np.zeros(len(positions)),
        position_liquidity_factor=np.array([p.get("liq", p["loads"][0][0]) for p in positions], dtype=np.int32),
        load_position=np.array([x[0] for x in load], dtype=np.int32),
        load_factor=np.array([x[1] for x in load], dtype=np.int32),
        load_delta=np.array([x[2] for x in load], dtype=float),
        load_gamma=np.array([x[3] for x in load], dtype=float),
    )


def _class_of(factor: str) -> int:
    prefix = factor.split(".")[1 if factor.startswith("VOL.") else 0]
    return ASSET_CLASSES.index({"IR": "rates", "FX": "fx", "EQ": "equity", "CR": "credit", "CM": "commodity"}[prefix])


def test_gaussian_linear_positions_match_normal_var_and_es() -> None:
    n, sigma, mpor, c = 20, 0.015, 2, 0.99
    rng = np.random.default_rng(11)
    h = history_of(rng.normal(0.0, sigma, size=(2600, n)))
    venues = [(f"CCP{i}", True) for i in range(n)]
    positions = [{"venue": i, "loads": [(i, 2e6 * (-1) ** i, 0.0)]} for i in range(n)]
    book = book_of(h.factors, venues, positions)
    scale = 2e6 * fhs.current_vol(h, 0.99) * math.sqrt(mpor)
    z = norm.ppf(c)
    for measure, closed in (("var", z), ("es", norm.pdf(z) / (1 - c))):
        model = CcpMarginModel(measure=measure, confidence=c, mpor_days=mpor, lookback_days=2520, ewma_decay=0.99,
                               apc="none", **NO_ADD_ONS)  # fmt: skip
        im = ccp.ccp_initial_margin(book, h, [model] * n)
        ratio = im.total_usd / (closed * scale)
        assert np.all(np.abs(ratio - 1) < 0.15), ratio
        assert abs(ratio.mean() - 1) < 0.035, ratio.mean()
        np.testing.assert_array_equal(im.apc_usd, 0.0)


def test_var_and_es_are_the_order_statistics() -> None:
    """N = 1,000 scenarios at 99%: VaR is the 10th worst loss, ES the mean of the 10 worst."""
    rng = np.random.default_rng(5)
    h = history_of(rng.standard_t(3, size=(1100, 3)) * 0.01)
    positions = [
        {"venue": 0, "loads": [(0, 1e6, 0.0), (1, -5e5, 2e7)]},
        {"venue": 0, "loads": [(2, 3e6, -1e7)]},
        {"venue": 0, "loads": [(1, 7e5, 0.0)]},
    ]
    book = book_of(h.factors, [("CCP", True)], positions)
    s = fhs.scenarios(h, lookback_days=1000, mpor_days=3, ewma_decay=0.95)
    pos_loss = np.zeros((1000, 3))
    for i, p in enumerate(positions):
        for f, d, g in p["loads"]:
            pos_loss[:, i] -= d * s[:, f] + 0.5 * g * s[:, f] ** 2
    loss = pos_loss.sum(axis=1)
    worst = np.argsort(-loss)[:10]
    for measure, expected, contrib in (
        ("es", loss[worst].mean(), pos_loss[worst].mean(axis=0)),
        ("var", loss[worst[-1]], pos_loss[worst[-1]]),
    ):
        model = CcpMarginModel(measure=measure, mpor_days=3, lookback_days=1000, ewma_decay=0.95, apc="none",
                               **NO_ADD_ONS)  # fmt: skip
        im = ccp.ccp_initial_margin(book, h, [model], options=ccp.CcpOptions(var_neighbourhood=0))
        assert im.core_usd[0] == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(im.position_core_usd, contrib, rtol=1e-10)


def test_tail_measure_with_partial_boundary_weight() -> None:
    losses = np.arange(1.0, 151.0)[:, None]  # N = 150 at 99%: 1.5 scenarios in the tail
    var, _ = ccp.tail_measure(losses, 0.99, "var")
    es, alloc_es = ccp.tail_measure(losses, 0.99, "es")
    assert var[0] == 149.0  # cumulative weight 2/150 ≥ 1% first at the second worst
    assert es[0] == pytest.approx((150.0 + 0.5 * 149.0) / 1.5, rel=1e-14)
    assert alloc_es[:, 0] @ losses[:, 0] == pytest.approx(es[0], rel=1e-14)
    smooth, alloc_v = ccp.tail_measure(losses, 0.99, "var", var_neighbourhood=2)
    assert smooth[0] == var[0] and alloc_v[:, 0] @ losses[:, 0] == pytest.approx(var[0], rel=1e-14)
    assert np.count_nonzero(alloc_v) == 4  # 147..150 around the quantile scenario (clipped at the worst)


def linear_book(rng: np.random.Generator, n_f: int = 6) -> tuple[FactorHistory, MarginBook]:
    h = history_of(rng.standard_t(4, size=(900, n_f)) * 0.01)
    positions = [
        {"venue": int(v), "manager": f"m{int(v) % 2}", "loads": [(int(f), float(d), 0.0)]}
        for v, f, d in zip(rng.integers(0, 3, 40), rng.integers(0, n_f, 40), rng.normal(0, 1e6, 40), strict=True)
    ]
    return h, book_of(h.factors, [("A", True), ("B", True), ("C", True)], positions)


@pytest.mark.parametrize("measure", ["var", "es"])
def test_linear_book_margin_scales_exactly_with_the_vol_multiplier(measure: str) -> None:
    h, book = linear_book(np.random.default_rng(21))
    model = CcpMarginModel(measure=measure, lookback_days=500, apc="none", mpor_days=2, **NO_ADD_ONS)
    base = ccp.ccp_initial_margin(book, h, [model] * 3)
    assert np.all(base.total_usd > 0)
    for m in (2.0, 5.0, 10.0):
        stressed = ccp.ccp_initial_margin(book, h, [model] * 3, vol_multiplier=m)
        np.testing.assert_allclose(stressed.total_usd, m * base.total_usd, rtol=1e-12)
        np.testing.assert_allclose(stressed.position_core_usd, m * base.position_core_usd, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("apc", ["none", "buffer", "stressed_weight", "ten_year_floor"])
@pytest.mark.parametrize("measure", ["var", "es"])
def test_euler_pieces_add_up_to_the_venue(apc: str, measure: str) -> None:
    rng = np.random.default_rng(8)
    h, book = linear_book(rng)
    gamma = rng.normal(0, 5e7, len(book.load_gamma))
    book = book._replace(load_gamma=gamma, factor_depth_usd=np.full(6, 2e6))
    model = CcpMarginModel(
        measure=measure, lookback_days=500, apc=apc, concentration=ConcentrationAddOn(threshold_days=0.1)
    )
    im = ccp.ccp_initial_margin(book, h, [model] * 3, options=ccp.CcpOptions(stressed_period="worst_window"))
    assert np.all(im.concentration_usd > 0) and np.all(im.liquidity_usd > 0)
    for venue_part, position_part in (
        (im.core_usd, im.position_core_usd),
        (im.apc_usd, im.position_apc_usd),
        (im.concentration_usd, im.position_concentration_usd),
        (im.liquidity_usd, im.position_liquidity_usd),
        (im.total_usd, im.position_total_usd),
    ):
        summed = np.bincount(book.position_venue, weights=position_part, minlength=3)
        np.testing.assert_allclose(summed, venue_part, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(im.total_usd, im.core_usd + im.apc_usd + im.concentration_usd + im.liquidity_usd)


def test_concentration_add_on_is_super_linear_in_size() -> None:
    terms = ConcentrationAddOn(threshold_days=0.2, coefficient=0.5, exponent=1.5)
    depth, vol = 1e8, 0.02
    sizes = np.array([1e7, 2e7, 4e7, 8e7, 1.6e8, 3.2e8])
    add_on = ccp.concentration_add_on(sizes, sizes, np.full(6, depth), np.full(6, vol), terms)
    assert add_on[0] == 0.0 and add_on[1] == 0.0  # within 0.2 depth-days: no charge
    # by hand: 0.5 · 0.02 · n · (n/d − 0.2)^1.5
    assert add_on[3] == pytest.approx(0.5 * 0.02 * 8e7 * 0.6**1.5, rel=1e-14)
    assert np.all(add_on[3:] > 2 * add_on[2:-1])  # doubling the size more than doubles the charge
    zero_threshold = ccp.concentration_add_on(sizes, sizes, depth, vol, ConcentrationAddOn(threshold_days=0.0))
    np.testing.assert_allclose(zero_threshold[1:] / zero_threshold[:-1], 2.0**2.5, rtol=1e-12)  # n^(1 + exponent)


def test_book_concentration_and_liquidity_by_hand() -> None:
    rng = np.random.default_rng(3)
    h = history_of(rng.normal(0, 0.01, size=(600, 2)), names=["EQ.A", "IR.USD.5Y"])
    positions = [
        {"venue": 0, "notional": 3e8, "loads": [(0, 3e8, 0.0)], "manager": "a"},
        {"venue": 0, "notional": 1e8, "loads": [(0, -1e8, 0.0)], "manager": "b"},
        {"venue": 0, "notional": 5e8, "loads": [(1, -2.5e7, 0.0)], "manager": "b"},  # a receiver swap
        {"venue": 1, "notional": 9e8, "loads": [(0, 9e8, 0.0)]},  # bilateral: no CCP margin
    ]
    book = book_of(h.factors, [("CCP", True), ("Dealer", False)], positions, depth=1e8)
    terms = ConcentrationAddOn(threshold_days=0.5, coefficient=0.4, exponent=2.0)
    model = CcpMarginModel(lookback_days=500, apc="none", concentration=terms, ewma_decay=0.95)
    im = ccp.ccp_initial_margin(book, h, [model, None])
    vol = fhs.current_vol(h, 0.95)
    eq = 0.4 * vol[0] * 2e8 * (2.0 - 0.5) ** 2  # net 2e8 notional = 2 depth-days
    ir = 0.4 * vol[1] * 2.5e7 * (5.0 - 0.5) ** 2  # 5e8 notional, delta 2.5e7 (duration 5)
    assert im.concentration_usd[0] == pytest.approx(eq + ir, rel=1e-12)
    np.testing.assert_allclose(im.position_concentration_usd, [1.5 * eq, -0.5 * eq, ir, 0.0], rtol=1e-12)
    liquidity = (3e8 + 1e8) * 5e-4 + 5e8 * 0.5e-4  # equity 5 bp, rates 0.5 bp on gross notional
    assert im.liquidity_usd[0] == pytest.approx(liquidity, rel=1e-12)
    assert im.total_usd[1] == 0.0 and im.position_total_usd[3] == 0.0


def test_errors_name_the_field() -> None:
    h, book = linear_book(np.random.default_rng(1))
    model = CcpMarginModel(lookback_days=500)
    with pytest.raises(ValueError, match="models: expected one per venue"):
        ccp.ccp_initial_margin(book, h, [model])
    bilateral = book._replace(venue_is_ccp=np.array([True, True, False]))
    with pytest.raises(ValueError, match=r"models\[2\]: venue C is bilateral"):
        ccp.ccp_initial_margin(bilateral, h, [model] * 3)
    with pytest.raises(ValueError, match="lookback_days: 2520 scenarios"):
        ccp.ccp_initial_margin(book, h, [CcpMarginModel(lookback_days=2520)] * 3)
