"""The issuer's stress report: the default grid, the report's invariants, economic signs, gap and trigger risk,
the Black–Scholes skew increment, memory-bounded chunking and progress.

The issuer sold the note at par and is short it, so a scenario that cheapens the note is a gain (pnl > 0).
Values are fractions of notional. Sign checks are asserted many standard errors away from zero (the
standard errors are the report's own `pnl_stderr`, from common random numbers); cross-checks against
independent repricings through `price_many` are to 2e-6 (the stress run keeps per-path values in float32).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from engines.common.volsurface import SSVISurface
from engines.structured import stress
from engines.structured.market import Curve, MarketData, SurfaceQuotes, UnderlyingMarket
from engines.structured.pricing import PricingOptions, price_many
from engines.structured.spec import AutocallSpec
from engines.structured.stress import (
    CONFIDENCE_LEVELS,
    LADDER,
    ScenarioSpec,
    StressOptions,
    StressReport,
    default_scenarios,
    stress_test,
)

SPOT, R, Q, VOL, RHO = 100.0, 0.02, 0.01, 0.25, 0.5
PATHS = 8192
LEVELS = [f"{lv:g}" for lv in CONFIDENCE_LEVELS]
FLOAT32_TOLERANCE = 2e-6
LIMIT = 0.025


def pair_market(r: float = R, q: float = Q, vol: float = VOL, rho: float = RHO) -> MarketData:
    underlyings = {n: UnderlyingMarket(spot=SPOT, dividend_yield=Curve.flat(q), volatility=vol) for n in ("A", "B")}
    return MarketData(rates=Curve.flat(r), underlyings=underlyings, correlation=[[1.0, rho], [rho, 1.0]])


SPECS = [
    AutocallSpec(name="worst-of 3y, 60% european KI", underlyings=["A", "B"], maturity_years=3.0,
                 schedule={"frequency": "quarterly"}, coupon={"rate": 0.08, "barrier": 0.7},
                 knock_in={"barrier": 0.6, "monitoring": "european"}),
    AutocallSpec(name="worst-of 2y step-down, 70% continuous KI", underlyings=["A", "B"], maturity_years=2.0,
                 schedule={"frequency": "semi_annual"}, autocall={"trigger": 1.0, "step_down": 0.05},
                 coupon={"rate": 0.06, "barrier": 0.8}, knock_in={"barrier": 0.7, "monitoring": "continuous"}),
]  # fmt: skip

SCENARIOS = [
    ScenarioSpec(name="unchanged"),
    ScenarioSpec(name="unchanged, spelt out", vol_level=VOL, correlation=RHO),
    ScenarioSpec(name="crash-30%", spot_move=-0.3),
    ScenarioSpec(name="rates+100bp", rate_shift=0.01),
    ScenarioSpec(name="rates+10bp", rate_shift=0.001),
    ScenarioSpec(name="divs+100bp", dividend_shift=0.01),
    ScenarioSpec(name="corr0.9", correlation=0.9),
    ScenarioSpec(name="vol30", vol_level=0.30),
    ScenarioSpec(name="crash-20% vol40 corr0.7", spot_move=-0.2, vol_level=0.40, correlation=0.7),
    ScenarioSpec(name="spot-1%", spot_move=-0.01),
]
INDEX = {s.name: i for i, s in enumerate(SCENARIOS)}
# scenarios that are a plain change of market data, and that market
REPRICEABLE = {
    "rates+100bp": pair_market(r=R + 0.01),
    "rates+10bp": pair_market(r=R + 0.001),
    "divs+100bp": pair_market(q=Q + 0.01),
    "corr0.9": pair_market(rho=0.9),
    "vol30": pair_market(vol=0.30),
}


def options(paths: int = PATHS, **kw: Any) -> PricingOptions:
    return PricingOptions(paths=paths, seed=5, sampler="sobol", target_margin=None, **kw)


@pytest.fixture(scope="module")
def report() -> StressReport:
    return stress_test(SPECS, pair_market(), options(), SCENARIOS, StressOptions(capital_at_risk_limit=LIMIT))


@pytest.fixture(scope="module")
def base_prices() -> list:
    return price_many(SPECS, pair_market(), options())


# ---------------------------------------------------------------------------------------------
# 1. The desk's default grid
# ---------------------------------------------------------------------------------------------


def test_default_grid_has_320_distinct_scenarios_covering_the_desk_grid() -> None:
    grid = default_scenarios()
    assert len(grid) == 320
    assert len({s.name for s in grid}) == 320, "scenario names must be distinct"
    assert len({s.model_dump_json(exclude={"name"}) for s in grid}) == 320, "no two scenarios are the same market"
    assert {s.spot_move for s in grid} == {-0.2, -0.3, -0.4, -0.5}
    assert {s.vol_level for s in grid} == {0.1, 0.2, 0.3, 0.4}
    assert {s.correlation for s in grid} == {0.3, 0.5, 0.7, 0.9}
    moves = {(s.rate_shift, s.dividend_shift, s.skew_steepening) for s in grid}
    assert moves == {(0.0, 0.0, 1.0), (0.01, 0.0, 1.0), (-0.01, 0.0, 1.0), (0.0, 0.01, 1.0), (0.0, 0.0, 1.5)}
    # the full product: every crash × vol × correlation × curve/skew move once
    cells = {(s.spot_move, s.vol_level, s.correlation, s.rate_shift, s.dividend_shift, s.skew_steepening) for s in grid}
    assert len(cells) == 4 * 4 * 4 * 5


# ---------------------------------------------------------------------------------------------
# 2. Invariants of the report
# ---------------------------------------------------------------------------------------------


def test_report_shape_and_echo(report: StressReport) -> None:
    assert [r.name for r in report.results] == [s.name for s in SPECS]
    assert report.scenarios == SCENARIOS and report.paths == PATHS and report.seed == 5 and report.model == "bs"
    for r in report.results:
        for field in (r.pnl, r.hedged_pnl, r.pnl_stderr):
            assert len(field) == len(SCENARIOS)
        assert set(r.var) == set(r.es) == set(r.base_var) == set(r.base_es) == set(LEVELS)
        assert all(len(r.var[lv]) == len(r.es[lv]) == len(SCENARIOS) for lv in LEVELS)
        assert len(r.delta) == 2 and r.limit == LIMIT
        assert r.ladder["spot"] == pytest.approx(LADDER.tolist()) and len(r.ladder["value"]) == len(LADDER)


def test_base_value_is_the_price_on_the_same_paths(report: StressReport, base_prices: list) -> None:
    for r, p in zip(report.results, base_prices, strict=True):
        assert r.base_value == pytest.approx(p.price, abs=FLOAT32_TOLERANCE)
        assert r.base_stderr == pytest.approx(p.stderr, rel=1e-4)


def test_pnl_is_minus_the_value_change_against_independent_repricings(report: StressReport, base_prices: list) -> None:
    # pnl[s] = −(V_s − V_0): for market-data scenarios, V_s is the price in the moved market on the same normals
    for name, market in REPRICEABLE.items():
        moved = price_many(SPECS, market, options())
        for r, v0, vs in zip(report.results, base_prices, moved, strict=True):
            expected = -(vs.price - v0.price)
            assert r.pnl[INDEX[name]] == pytest.approx(expected, abs=FLOAT32_TOLERANCE), (r.name, name)


def test_a_spot_scenario_is_valued_like_the_ladder_rung_at_the_same_level(report: StressReport) -> None:
    rung = int(np.argmin(np.abs(LADDER - 0.7)))
    assert LADDER[rung] == pytest.approx(0.7)
    for r in report.results:
        assert r.ladder["value"][int(np.argmin(np.abs(LADDER - 1.0)))] == pytest.approx(r.base_value, abs=1e-12)
        crash_value = r.base_value - r.pnl[INDEX["crash-30%"]]
        assert crash_value == pytest.approx(r.ladder["value"][rung], abs=1e-12)


def test_a_scenario_identical_to_the_base_has_exactly_zero_pnl(report: StressReport) -> None:
    for r in report.results:
        for name in ("unchanged", "unchanged, spelt out"):
            i = INDEX[name]
            assert r.pnl[i] == 0.0 and r.hedged_pnl[i] == 0.0 and r.pnl_stderr[i] == 0.0, (r.name, name)
            for lv in LEVELS:
                assert r.var[lv][i] == r.base_var[lv] and r.es[lv][i] == r.base_es[lv]


def test_hedged_pnl_adds_the_base_delta_hedge(report: StressReport) -> None:
    moves = np.array([s.spot_move for s in SCENARIOS])
    for r in report.results:
        expected = np.array(r.pnl) + moves * sum(r.delta)
        np.testing.assert_allclose(r.hedged_pnl, expected, rtol=0, atol=1e-15)


def test_the_option_hedge_takes_out_most_of_a_pure_vol_move(report: StressReport) -> None:
    names = [s.name for s in SCENARIOS]
    for r in report.results:
        for i, sc in enumerate(SCENARIOS):
            if sc.spot_move == 0 and sc.vol_level in (None, VOL) and sc.rate_shift == sc.dividend_shift == 0:
                assert r.delta_vega_hedged_pnl[i] == pytest.approx(r.pnl[i], abs=1e-12), sc.name  # hedge unmoved
        i = names.index("vol30")  # a pure +10 vol move: the puts' vega offsets the note's
        assert abs(r.delta_vega_hedged_pnl[i]) < abs(r.pnl[i]) / 3, (r.name, r.pnl[i], r.delta_vega_hedged_pnl[i])


def test_capital_at_risk_is_the_worst_hedged_loss_and_decides_pass(report: StressReport) -> None:
    for r in report.results:
        worst = int(np.argmin(r.delta_vega_hedged_pnl))
        assert r.capital_at_risk == max(0.0, -min(r.delta_vega_hedged_pnl))
        assert r.capital_at_risk_delta_hedged == max(0.0, -min(r.hedged_pnl))
        assert r.capital_at_risk_unhedged == max(0.0, -min(r.pnl))
        assert r.worst_scenario == SCENARIOS[worst].name
        assert r.passes == (r.capital_at_risk <= r.limit)
    # with the limit at 2.5%, one note passes and the other does not (both branches exercised)
    assert sorted(r.passes for r in report.results) == [False, True], [r.capital_at_risk for r in report.results]


def test_var_is_below_es_and_grows_with_the_confidence_level(report: StressReport) -> None:
    # VaR is an order statistic of a bounded loss (the note pays at most par and all coupons), so it is
    # non-decreasing in the level and can be flat in the far tail; ES ≥ VaR up to summation round-off.
    for r in report.results:
        for s in range(len(SCENARIOS)):
            var = [r.var[lv][s] for lv in LEVELS]
            es = [r.es[lv][s] for lv in LEVELS]
            assert all(v <= e + 1e-12 for v, e in zip(var, es, strict=True)), (r.name, s, var, es)
            assert var == sorted(var), (r.name, s, var)
            assert all(a <= b + 1e-12 for a, b in itertools.pairwise(es)), (r.name, s, es)
        base_var = [r.base_var[lv] for lv in LEVELS]
        assert base_var == sorted(base_var)
        assert all(r.base_var[lv] <= r.base_es[lv] + 1e-12 for lv in LEVELS)
        # the issuer's worst loss held to maturity is bounded by par plus every coupon
        spec = SPECS[[s.name for s in SPECS].index(r.name)]
        max_payout = 1.0 + float(spec.coupon_amounts().sum())
        assert max(r.es["0.999"]) <= max_payout - 1.0 + 1e-9


def test_pnl_stderr_benefits_from_common_random_numbers(report: StressReport) -> None:
    moved = price_many(SPECS, REPRICEABLE["rates+10bp"], options())
    for r, vs in zip(report.results, moved, strict=True):
        se = r.pnl_stderr[INDEX["rates+10bp"]]
        plain = math.hypot(vs.stderr, r.base_stderr)
        assert 0 < se < 0.5 * plain, (
            f"{r.name}: P&L standard error {se:.2e} should be positive and well below the independent-runs "
            f"value sqrt(se_s² + se_0²) = {plain:.2e}"
        )
        assert all(x > 0 for i, x in enumerate(r.pnl_stderr) if not SCENARIOS[i].name.startswith("unchanged"))


# ---------------------------------------------------------------------------------------------
# 3. Economic signs, from the issuer's (short) side
# ---------------------------------------------------------------------------------------------


def _z(r, name: str) -> float:
    i = INDEX[name]
    return r.pnl[i] / r.pnl_stderr[i]


def test_a_crash_cheapens_the_note_and_the_long_delta_hedge_gives_some_back(report: StressReport) -> None:
    i = INDEX["crash-30%"]
    for r in report.results:
        assert all(d > 0 for d in r.delta), "the note's value rises with each underlying"
        assert _z(r, "crash-30%") > 10, f"{r.name}: crash pnl {r.pnl[i]:.4f} ± {r.pnl_stderr[i]:.1e} should be > 0"
        assert r.hedged_pnl[i] < r.pnl[i], "the long-delta hedge loses in a crash"


def test_rates_up_moves_the_value(report: StressReport) -> None:
    for r in report.results:
        assert r.pnl[INDEX["rates+100bp"]] != 0.0
    first = report.results[0]
    assert abs(_z(first, "rates+100bp")) > 5, (first.pnl[INDEX["rates+100bp"]], first.pnl_stderr[INDEX["rates+100bp"]])


def test_higher_correlation_makes_a_worst_of_note_richer(report: StressReport) -> None:
    # worst-of: more correlation = less dispersion = a better worst performer, so the client's note is worth
    # more and the issuer, short it, loses
    for r in report.results:
        assert _z(r, "corr0.9") < -5, (r.name, r.pnl[INDEX["corr0.9"]], r.pnl_stderr[INDEX["corr0.9"]])


def test_dividends_up_cheapen_the_note(report: StressReport) -> None:
    for r in report.results:
        assert _z(r, "divs+100bp") > 5, (r.name, r.pnl[INDEX["divs+100bp"]], r.pnl_stderr[INDEX["divs+100bp"]])


# ---------------------------------------------------------------------------------------------
# 4. Gap and trigger risk
# ---------------------------------------------------------------------------------------------


def _check_gap_and_triggers(r, spec: AutocallSpec, gap: float) -> None:
    barrier = spec.knock_in.barrier if spec.knock_in is not None else spec.strike
    assert r.gap_risk >= 0.0
    if r.gap_risk > 0:
        assert r.gap_risk_at is not None
    if r.gap_risk_at is not None:
        assert np.isclose(LADDER, r.gap_risk_at).any(), "the gap starts from a ladder level"
        assert r.gap_risk_at >= barrier - 1e-12 and r.gap_risk_at * (1 - gap) < barrier, (r.gap_risk_at, barrier)
    assert set(r.trigger_risk) == {"trigger", "barrier"}
    first_trigger = float(spec.triggers()[np.isfinite(spec.triggers())][0])
    for label, level in (("trigger", first_trigger), ("barrier", barrier)):
        entry = r.trigger_risk[label]
        assert entry["level"] == pytest.approx(level)
        assert abs(entry["at"] - level) <= 0.05 + 1e-9 and np.isclose(LADDER, entry["at"]).any()
        assert entry["max_abs_gamma"] >= 0.0 and math.isfinite(entry["max_abs_gamma"])


def test_gap_and_trigger_risk_sit_at_the_barrier_and_trigger(report: StressReport) -> None:
    for r, spec in zip(report.results, SPECS, strict=True):
        _check_gap_and_triggers(r, spec, StressOptions().gap)
        assert r.gap_risk_at is not None, "a barrier inside the ladder has gap levels"


def test_a_barrier_below_the_ladder_has_no_gap_to_measure() -> None:
    low = AutocallSpec(name="deep barrier", underlyings=["A"], maturity_years=1.0, schedule={"frequency": "quarterly"},
                       knock_in={"barrier": 0.25}, coupon={"rate": 0.05})  # fmt: skip
    wide_gap = StressOptions(gap=0.2)
    r = stress_test([low], pair_market(), options(2048), [ScenarioSpec(name="crash", spot_move=-0.3)], wide_gap)
    res = r.results[0]
    assert res.gap_risk == 0.0 and res.gap_risk_at is None
    _check_gap_and_triggers(res, low, wide_gap.gap)


# ---------------------------------------------------------------------------------------------
# 5. Skew steepening under Black–Scholes: the local-vol increment
# ---------------------------------------------------------------------------------------------

SSVI_EXPIRIES = (0.25, 0.5, 1.0, 2.0, 3.0)
SSVI_STRIKES = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)


def skew_market() -> MarketData:
    """X quoted off an SSVI (ρ −0.6, η 1, γ 0.4, 20% ATM), Y with a flat 20% vol and no quotes."""
    t = np.array(SSVI_EXPIRIES)
    surface = SSVISurface(expiries=t, theta=0.04 * t, rho=-0.6, eta=1.0, gamma=0.4)
    vols = [[float(surface.implied_vol(math.log(k / math.exp((R - Q) * e)), e)) for k in SSVI_STRIKES] for e in t]
    quotes = SurfaceQuotes(expiries=list(SSVI_EXPIRIES), strikes=list(SSVI_STRIKES), vols=vols)
    return MarketData(
        rates=Curve.flat(R),
        underlyings={
            "X": UnderlyingMarket(spot=SPOT, dividend_yield=Curve.flat(Q), surface=quotes),
            "Y": UnderlyingMarket(spot=SPOT, dividend_yield=Curve.flat(Q), volatility=0.2),
        },
    )


def _single(name: str) -> AutocallSpec:
    return AutocallSpec(name=f"on {name}", underlyings=[name], maturity_years=2.0, coupon={"rate": 0.06},
                        knock_in={"barrier": 0.6, "monitoring": "continuous"})  # fmt: skip


SKEW_SCENARIOS = [ScenarioSpec(name="skew x1"), ScenarioSpec(name="skew x1.5", skew_steepening=1.5)]


def test_under_black_scholes_a_steeper_skew_adds_the_local_vol_increment() -> None:
    market = skew_market()
    opts = options(8192, steps_per_year=52)
    bs = stress_test([_single("X"), _single("Y")], market, opts, SKEW_SCENARIOS)
    x, y = bs.results
    increment = x.pnl[1] - x.pnl[0]
    error = math.sqrt(max(x.pnl_stderr[1] ** 2 - x.pnl_stderr[0] ** 2, 0.0))
    assert x.pnl[1] != x.pnl[0] and x.pnl_stderr[1] > x.pnl_stderr[0], "the increment and its error are added"
    assert increment > 5 * error > 0, (
        f"a steeper negative skew should cheapen the note (issuer gains): increment {increment:.5f} ± {error:.1e}"
    )
    assert x.warnings == []
    # the increment is the local-vol model's own value change between the two skews, on the same normals
    lv = stress_test([_single("X")], market, opts.model_copy(update={"model": "localvol"}), SKEW_SCENARIOS)
    lv_x = lv.results[0]
    assert increment == pytest.approx(lv_x.pnl[1] - lv_x.pnl[0], abs=FLOAT32_TOLERANCE)
    # an underlying without quotes has no skew to steepen: increment exactly 0 and a warning
    assert y.pnl[1] == y.pnl[0] and y.pnl_stderr[1] == y.pnl_stderr[0]
    assert len(y.warnings) == 1 and "no implied-vol quotes" in y.warnings[0] and "'Y'" in y.warnings[0]


# ---------------------------------------------------------------------------------------------
# 6. Memory-bounded chunking and progress
# ---------------------------------------------------------------------------------------------


def _assert_same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _assert_same(u, v, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert abs(a - b) <= 1e-12, (path, a, b)
    else:
        assert a == b, (path, a, b)


def test_chunks_of_two_shifts_give_the_same_report(report: StressReport, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real_run_group = stress.run_group

    def recording(group, market, shifts, **kw):
        sizes.append(len(shifts))
        return real_run_group(group, market, shifts, **kw)

    monkeypatch.setattr(stress, "MEMORY_BUDGET_BYTES", 1)
    monkeypatch.setattr(stress, "run_group", recording)
    chunked = stress_test(SPECS, pair_market(), options(), SCENARIOS, StressOptions(capital_at_risk_limit=LIMIT))
    assert sizes and max(sizes) == 2 and len(sizes) > 10, sizes
    _assert_same(chunked.to_dict(), report.to_dict())


def _progress(specs: list[AutocallSpec]) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    stress_test(specs, pair_market(), options(1024), [ScenarioSpec(name="crash", spot_move=-0.2)],
                progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    return seen


def test_progress_climbs_to_its_total() -> None:
    seen = _progress(SPECS)
    assert seen and all(total == seen[0][1] for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1][0] == seen[-1][1]


def test_progress_reaches_its_total_with_groups_of_different_sizes() -> None:
    single = AutocallSpec(name="on A", underlyings=["A"], maturity_years=1.0, schedule={"frequency": "quarterly"})
    seen = _progress([SPECS[0], single])
    assert seen[-1][0] == seen[-1][1], seen[-1]


def test_the_option_hedge_is_atm_puts_sized_to_the_vega_then_shares(report: StressReport) -> None:
    """Independent rebuild of the hedge P&L in the pure +10 vol scenario: per underlying, vega / put-vega ATM puts
    of the note's maturity (strike = initial level), repriced at 30 vol; the shares earn nothing without a spot move."""
    from engines.common.black_scholes import black_scholes_price

    i = [s.name for s in SCENARIOS].index("vol30")
    for spec, r in zip(SPECS, report.results, strict=True):
        t = spec.maturity_years
        base, bumped, moved = (float(black_scholes_price(1.0, 1.0, R, Q, v, t, "put")) for v in (VOL, VOL + 0.01, 0.30))
        puts = np.array(r.vega) / (bumped - base)
        expected = float((puts * (moved - base)).sum())
        assert r.delta_vega_hedged_pnl[i] - r.pnl[i] == pytest.approx(expected, rel=1e-9, abs=1e-12)
