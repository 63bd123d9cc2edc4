"""Stressed margin: exact scaling of a linear book under vol multipliers (core and concentration × m,
liquidity fixed, SIMM × m when scaled), the correlation breakdown as the sum of the asset-class
sub-portfolios' margins computed on separate books, and breakdowns that add up in every scenario."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from test_baseline import fake_simm, loaded  # the hand-built book of the baseline tests

from engines.margin import ccp
from engines.margin.baseline import DIMENSIONS, baseline_margin
from engines.margin.stressed import stress_scenarios, stressed_margin
from engines.margin.venues import CcpMarginModel, ConcentrationAddOn


def linear(apc: str = "none") -> SimpleNamespace:
    lb = loaded()
    lb.arrays = lb.arrays._replace(load_gamma=np.zeros(len(lb.arrays.load_gamma)))
    for i, v in enumerate(lb.book.venues):
        if v.kind == "ccp":
            model = CcpMarginModel(lookback_days=500, apc=apc, concentration=ConcentrationAddOn(threshold_days=0.01))
            lb.book.venues[i] = v.model_copy(update={"margin_model": model})
    return lb


def test_scenarios_in_order() -> None:
    names = [s.name for s in stress_scenarios((2, 5, 10))]
    assert names == ["vol x2", "vol x5", "vol x10", "correlation breakdown", "vol x2 + correlation breakdown",
                     "vol x5 + correlation breakdown", "vol x10 + correlation breakdown"]  # fmt: skip
    with pytest.raises(ValueError, match="multipliers"):
        stress_scenarios((2, -1))


def test_linear_book_scales_exactly_with_the_multiplier() -> None:
    lb = linear()
    base = baseline_margin(lb, simm_im=fake_simm)
    st = stressed_margin(lb, multipliers=(2, 5, 10), correlation_breakdown=False, baseline=base)
    c = base.ccp
    assert np.all(c.concentration_usd[:2] > 0)
    for row, m in enumerate((2.0, 5.0, 10.0), start=1):
        expected_ccp = m * (c.core_usd + c.concentration_usd) + c.liquidity_usd
        np.testing.assert_allclose(st.venue_im_usd[row, :2], expected_ccp[:2], rtol=1e-11)
        assert st.venue_im_usd[row, 2] == pytest.approx(m * 5e6 + 1e6)  # SIMM × m, independent amount fixed
        assert st.venue_im_usd[row, 3] == 0.0
    np.testing.assert_allclose(st.venue_im_usd[0], base.venue_im_usd)
    unchanged = stressed_margin(lb, multipliers=(5,), correlation_breakdown=False, baseline=base, bilateral="unchanged")
    assert unchanged.venue_im_usd[1, 2] == pytest.approx(6e6)
    assert unchanged.to_dict()["bilateral_treatment"] == "unchanged"


def test_buffer_is_released_under_a_vol_shock() -> None:
    lb = linear("buffer")
    base_margin = baseline_margin(lb, simm_im=fake_simm)
    st = stressed_margin(lb, multipliers=(2,), correlation_breakdown=False, baseline=base_margin)
    base = st.venue_im_usd[0, :2]
    assert np.all(st.venue_im_usd[1, :2] < 2 * base)  # the 25% buffer absorbs part of the doubling


def test_correlation_breakdown_is_the_sum_of_asset_class_margins() -> None:
    lb = linear()
    st = stressed_margin(lb, multipliers=(3,), baseline=baseline_margin(lb, simm_im=fake_simm))
    row = st.names.index("correlation breakdown")
    models = [v.margin_model if v.kind == "ccp" else None for v in lb.book.venues]
    a = lb.arrays
    expected = np.zeros(2)
    for cls in np.unique(a.position_class):
        keep = a.position_class == cls
        sub = a._replace(load_delta=np.where(keep[a.load_position], a.load_delta, 0.0))
        expected += ccp.ccp_initial_margin(sub, lb.history, models).core_usd[:2]
    base = ccp.ccp_initial_margin(a, lb.history, models)
    np.testing.assert_allclose(st.venue_im_usd[row, :2], expected + base.concentration_usd[:2] + base.liquidity_usd[:2],
                               rtol=1e-10)  # fmt: skip
    assert np.all(expected >= base.core_usd[:2] * (1 - 1e-12))  # ES is subadditive: no diversification costs more
    both = st.names.index("vol x3 + correlation breakdown")
    scaled = 3 * (expected + base.concentration_usd[:2]) + base.liquidity_usd[:2]
    np.testing.assert_allclose(st.venue_im_usd[both, :2], scaled, rtol=1e-10)


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_breakdowns_add_up_in_every_scenario(dimension: str) -> None:
    lb = loaded()
    st = stressed_margin(lb, multipliers=(2, 10), baseline=baseline_margin(lb, simm_im=fake_simm))
    parts = np.array(list(st.breakdown(dimension).values()))
    expected = st.bilateral_usd if dimension == "counterparty" else st.total_usd
    np.testing.assert_allclose(parts.sum(axis=0), expected, rtol=1e-10)
    out = st.to_dict()
    assert list(out["totals"]) == list(st.names)
    assert out["totals"]["vol x10"]["ratio_to_baseline"] > 1
