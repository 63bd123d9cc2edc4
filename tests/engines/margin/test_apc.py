"""EMIR RTS Art. 28(1) anti-procyclicality options on a constructed series: calm (1% daily moves), a
stress episode (4%), calm, a second stress, calm. Every return has the same size within a regime and a
random sign, so the FHS residuals are exactly ±1 in long calm and the margins there are known by hand:
a long position of 1m USD delta at one-day MPOR and 99% ES has a core margin of 1% · 1m, and any tail
that reaches the stress observations is 4% · 1m.

What is checked, option by option, on the margin each day would have had:
- buffer (a): 25% above the unbuffered margin in calm, less (released) in stress and exhausted at the
  peak, never below the unbuffered margin, rebuilt in the calm that follows;
- stressed weight (b): 25% of the weight on the stress observations, so after a stress the margin is
  the stress loss; checked by hand on the weighted measure as well;
- ten-year floor (c): never below the same measure on ten years of raw returns, which after a stress is
  the stress loss;
and each option lowers the peak-to-trough ratio of the margin (procyclicality) against no option.
"""

from __future__ import annotations

import numpy as np
import pytest

from engines.margin import ccp
from engines.margin.arrays import FactorHistory
from engines.margin.venues import CcpMarginModel

CALM, STRESS = 0.01, 0.04
A = slice(600, 750)  # first stress
B = slice(1650, 1800)  # second stress
T = 2300
DAYS = np.arange(900, T, 2)
DELTA = 1e6


@pytest.fixture(scope="module")
def history() -> FactorHistory:
    size = np.full(T, CALM)
    size[A] = size[B] = STRESS
    signs = np.where(np.random.default_rng(17).random(T) < 0.5, -1.0, 1.0)
    flags = np.zeros(T, dtype=bool)
    flags[A] = flags[B] = True
    dates = np.datetime64("2012-01-02") + np.arange(T).astype("timedelta64[D]")
    return FactorHistory(dates, ("EQ.SPX",), (signs * size)[:, None], flags)


@pytest.fixture(scope="module")
def series(history: FactorHistory) -> dict[str, ccp.MarginSeries]:
    out = {}
    for apc in ("none", "buffer", "stressed_weight", "ten_year_floor"):
        model = CcpMarginModel(measure="es", confidence=0.99, mpor_days=1, lookback_days=250, ewma_decay=0.97, apc=apc)
        out[apc] = ccp.margin_series(history, np.array([DELTA]), None, model, DAYS)
    return out


def at(days: slice) -> np.ndarray:
    return (DAYS >= days.start) & (DAYS < days.stop)


LONG_CALM = slice(1400, 1650)  # 650 days after the first stress: the filter's vol is back at 1%
STRESS_B = slice(B.start, B.stop)
LATE_CALM = slice(2100, T)


def test_core_margin_by_hand_in_long_calm(series: dict[str, ccp.MarginSeries]) -> None:
    core = series["none"]
    np.testing.assert_allclose(core.margin[at(LONG_CALM)], CALM * DELTA, rtol=1e-6)
    np.testing.assert_array_equal(core.margin, core.core)
    for s in series.values():
        np.testing.assert_allclose(s.core, core.core, rtol=1e-12)


def test_buffer_is_25_percent_in_calm_released_in_stress_never_below(series: dict[str, ccp.MarginSeries]) -> None:
    s = series["buffer"]
    ratio = s.margin / s.core
    assert np.all(ratio >= 1.0 - 1e-12)  # never below the unbuffered margin
    np.testing.assert_allclose(ratio[at(LONG_CALM)], 1.25, rtol=1e-12)
    np.testing.assert_allclose(ratio[at(LATE_CALM)], 1.25, rtol=1e-12)  # rebuilt once calm returns
    in_stress = ratio[at(STRESS_B)]
    assert in_stress.max() < 1.25 and in_stress.min() == pytest.approx(1.0)  # released, fully at the peak
    peak = np.argmax(s.core)
    assert s.margin[peak] == pytest.approx(s.core[peak])


@pytest.mark.parametrize(
    ("rise", "expected"),
    [(1.05, 1.25 * 1.05), (1.2, 1.25 * 1.1), (1.5, 1.5)],  # full buffer; held at 1.25 · 1.1 · reference; exhausted
)
def test_buffer_release_rule_by_hand(history: FactorHistory, rise: float, expected: float) -> None:
    """Today's vol `rise` times the calm of the past year: the reference margin is 1% · 1m."""
    model = CcpMarginModel(measure="es", mpor_days=1, lookback_days=250, ewma_decay=0.97, apc="buffer")
    rm = ccp.row_margins(history, np.array([[DELTA]]), np.zeros((1, 1)), [model], vol_multiplier=rise, as_of=1600)
    assert rm.core[0] == pytest.approx(rise * CALM * DELTA, rel=1e-6)
    assert rm.margin[0] == pytest.approx(expected * CALM * DELTA, rel=1e-6)
    assert rm.buffer_applied[0] == pytest.approx(expected / rise - 1, rel=1e-5)


def test_stressed_weight_puts_25_percent_on_the_stress(series: dict[str, ccp.MarginSeries]) -> None:
    s = series["stressed_weight"]
    # after the first stress its observations carry 25% of the weight: the 1% tail is all 4% losses
    np.testing.assert_allclose(s.margin[at(LONG_CALM)], STRESS * DELTA, rtol=1e-12)
    assert np.all(s.margin[at(LONG_CALM)] >= 3.9 * s.core[at(LONG_CALM)])


def test_weighted_measure_by_hand() -> None:
    """200 lookback losses of 0 (weight 75%) and stress losses 1..100 (weight 25%, 0.25% each)."""
    losses = np.r_[np.zeros(200), np.arange(1.0, 101.0)][:, None]
    weights = np.r_[np.full(200, 0.75 / 200), np.full(100, 0.25 / 100)]
    es, _ = ccp.tail_measure(losses, 0.99, "es", weights=weights)
    var, _ = ccp.tail_measure(losses, 0.99, "var", weights=weights)
    assert es[0] == pytest.approx(np.mean([97, 98, 99, 100]), rel=1e-12)  # 1% = the 4 worst at 0.25% each
    assert var[0] == 97.0
    es90, _ = ccp.tail_measure(losses, 0.90, "es", weights=weights)
    assert es90[0] == pytest.approx(np.mean(np.arange(61, 101)), rel=1e-12)


def test_ten_year_floor_is_never_below_the_ten_year_margin(history: FactorHistory, series: dict) -> None:
    s = series["ten_year_floor"]
    assert np.all(s.margin >= s.core)
    # by hand: over the raw history up to any day after the first stress, the 1% tail is 4% losses
    np.testing.assert_allclose(s.margin[at(LONG_CALM)], STRESS * DELTA, rtol=1e-12)
    for day in DAYS[::50]:
        raw = -DELTA * history.returns[max(0, day - 2519) : day + 1, 0]
        k = int(len(raw) * 0.01)
        worst = np.sort(raw)[::-1]
        floor = (worst[:k].sum() + (len(raw) * 0.01 - k) * worst[k]) / (len(raw) * 0.01)
        assert s.margin[DAYS == day][0] >= floor * (1 - 1e-12)


def test_every_option_lowers_the_peak_to_trough_ratio(series: dict[str, ccp.MarginSeries]) -> None:
    without = ccp.procyclicality(series["none"].margin).peak_to_trough
    assert without > 4.0
    for apc in ("buffer", "stressed_weight", "ten_year_floor"):
        assert ccp.procyclicality(series[apc].margin).peak_to_trough < 0.85 * without, apc


def test_procyclicality_measures_by_hand() -> None:
    p = ccp.procyclicality(np.array([1.0, 2.0, 4.0, 2.0, 3.0]), window_days=2)
    assert p.peak_to_trough == 4.0 and p.max_rise == 4.0 and p.window_days == 2
    with pytest.raises(ValueError, match="margin"):
        ccp.procyclicality(np.array([1.0, 0.0]))
