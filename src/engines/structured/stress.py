"""The stress grid: every variation revalued under hundreds of market scenarios, from the issuer's side.

The default grid is the desk's: spot crashes of -20/-30/-40/-50% × volatility regimes of 10/20/30/40
vol × worst-of correlations 0.3/0.5/0.7/0.9 × {unchanged, rates +100 bp, rates -100 bp, dividend
yields +100 bp, skew steepened}, 320 scenarios. All scenarios reuse the base normals (common
random numbers), so a P&L is a difference of two values on the same paths.

The issuer has sold the note at par and is short it. For each variation the report gives:
- `pnl[s]`: the issuer's mark-to-market P&L in scenario s, -(V_s - V_0), unhedged;
  `hedged_pnl[s]` after a delta hedge put on at the base (long delta_a of each underlying), and
  `delta_vega_hedged_pnl[s]` after a vega hedge in at-the-money puts of the note's maturity on each
  underlying (as many as make the book vega-neutral per underlying) and a delta hedge in the
  underlyings for what remains, the puts revalued in full by Black–Scholes in each scenario (at
  the scenario's spot, vol level, rates and dividends; skew and correlation do not move them);
- `var`/`es`: value at risk and expected shortfall at 95/99/99.9% of the issuer's P&L
  distribution held to maturity, 1 - PV(cash flows paid on the path), under the base market and
  under each scenario;
- `gap_risk`: the largest loss of the delta-hedged issuer when all underlyings gap down by
  `gap` (10%) from a level at or above the knock-in barrier to below it, between two
  observations, read off a revaluation ladder of common spot levels;
- `trigger_risk`: the largest |gamma| on that ladder within ±5% of the autocall trigger and of the
  knock-in barrier (where a hedger's delta jumps);
- `capital_at_risk`: the worst loss of the delta- and vega-hedged issuer over the grid, as a fraction
  of notional, with `passes` = capital at risk within the limit (5% by default); the worst
  delta-hedged and unhedged losses are reported beside it. What remains after the hedges is the
  risk a hedging desk cannot trade away: gamma, jumps through the barrier, correlation and skew.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.common.black_scholes import black_scholes_price
from engines.structured.market import MarketData, atm_total_variance, forward
from engines.structured.pricing import SPOT_BUMP, PricingOptions, greek_shifts, market_warnings, mean_and_stderr
from engines.structured.simulation import LOCALVOL_STEPS_PER_YEAR, Group, Shift, make_groups, run_group
from engines.structured.spec import AutocallSpec

CONFIDENCE_LEVELS = (0.95, 0.99, 0.999)
LADDER = np.round(np.arange(0.30, 1.3001, 0.02), 6)
SKEW_STEPS_PER_YEAR = LOCALVOL_STEPS_PER_YEAR
"""Local-vol steps a year for the skew increments under Black–Scholes (as for local-vol pricing: coarser
grids were seen to shift the increment by more than its standard error)."""
MEMORY_BUDGET_BYTES = 128 * 2**20
"""Per-path values held at once (scenarios are run in chunks that fit)."""


class ScenarioSpec(BaseModel):
    """A stress scenario as data (relative spot moves, absolute vol level, correlation, curve shifts, skew)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    spot_move: float = Field(0.0, gt=-1.0, le=5.0, description="Relative move of every underlying (-0.3 = -30%).")
    vol_level: float | None = Field(None, gt=0, le=5.0)
    correlation: float | None = Field(None, ge=-0.99, le=0.99)
    rate_shift: float = Field(0.0, ge=-0.2, le=0.2)
    dividend_shift: float = Field(0.0, ge=-0.2, le=0.2)
    skew_steepening: float = Field(1.0, gt=0, le=5.0, description="Multiplier of the surface's skew (1 = unchanged).")

    def shift(self, n_assets: int) -> Shift:
        return Shift(
            name=self.name,
            spot=tuple([1.0 + self.spot_move] * n_assets),
            vol_level=self.vol_level,
            correlation=self.correlation if n_assets > 1 else None,
            rate_shift=self.rate_shift,
            dividend_shift=self.dividend_shift,
            skew_steepening=self.skew_steepening,
        )


CRASHES = (-0.2, -0.3, -0.4, -0.5)
VOL_REGIMES = (0.10, 0.20, 0.30, 0.40)
CORRELATIONS = (0.3, 0.5, 0.7, 0.9)
CURVE_AND_SKEW = (
    ("flat", {}),
    ("rates+100bp", {"rate_shift": 0.01}),
    ("rates-100bp", {"rate_shift": -0.01}),
    ("divs+100bp", {"dividend_shift": 0.01}),
    ("skew x1.5", {"skew_steepening": 1.5}),
)


def default_scenarios() -> list[ScenarioSpec]:
    """The desk's 320-scenario grid (4 crashes × 4 vol regimes × 4 correlations × 5 curve/skew moves)."""
    out = []
    for crash, vol, corr, (label, extra) in itertools.product(CRASHES, VOL_REGIMES, CORRELATIONS, CURVE_AND_SKEW):
        name = f"crash{int(crash * 100)}% vol{int(vol * 100)} corr{corr:g} {label}"
        out.append(ScenarioSpec(name=name, spot_move=crash, vol_level=vol, correlation=corr, **extra))
    return out


class StressOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    capital_at_risk_limit: float = Field(0.05, gt=0, le=1)
    gap: float = Field(0.10, gt=0, lt=1, description="Size of the overnight gap for the gap risk.")


@dataclass
class StressResult:
    """The stress report of one variation (fractions of notional; see the module docstring)."""

    name: str
    base_value: float
    base_stderr: float
    delta: list[float]
    vega: list[float]
    pnl: list[float]
    hedged_pnl: list[float]
    delta_vega_hedged_pnl: list[float]
    pnl_stderr: list[float]
    var: dict[str, list[float]]
    es: dict[str, list[float]]
    base_var: dict[str, float]
    base_es: dict[str, float]
    gap_risk: float
    gap_risk_at: float | None
    trigger_risk: dict[str, Any]
    capital_at_risk: float
    capital_at_risk_delta_hedged: float
    capital_at_risk_unhedged: float
    worst_scenario: str
    passes: bool
    limit: float
    ladder: dict[str, list[float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StressReport:
    scenarios: list[ScenarioSpec]
    results: list[StressResult]
    paths: int
    seed: int
    model: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenarios": [s.model_dump() for s in self.scenarios],
            "results": [r.to_dict() for r in self.results],
            "paths": self.paths,
            "seed": self.seed,
            "model": self.model,
        }


def _tail(pnl_paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES (as positive losses) at CONFIDENCE_LEVELS along the last axis of P&L samples.

    VaR at level q is the loss of order floor(q·n) (0-based) among the n sorted losses; ES is the mean of that
    loss and every larger one. A partial sort (partition) finds them in linear time.
    """
    losses = -pnl_paths
    n = losses.shape[-1]
    ks = [min(n - 1, int(np.floor(level * n))) for level in CONFIDENCE_LEVELS]
    part = np.partition(losses, ks, axis=-1)
    var = np.stack([part[..., k] for k in ks], axis=-1)
    es = np.stack([part[..., k:].mean(axis=-1) for k in ks], axis=-1)
    return var, es


def _ladder_risks(values: np.ndarray, spec: AutocallSpec, gap: float) -> tuple[float, float | None, dict[str, Any]]:
    x = LADDER
    slope = np.gradient(values, x)
    curvature = np.gradient(slope, x)
    barrier = spec.knock_in.barrier if spec.knock_in is not None else spec.strike
    losses = []
    for i, level in enumerate(x):
        down = level * (1 - gap)
        if level >= barrier > down and down >= x[0]:
            v_down = float(np.interp(down, x, values))
            losses.append((slope[i] * level * gap - (values[i] - v_down), level))
    gap_loss, gap_at = max(losses, default=(0.0, None))
    trig = spec.triggers()
    first_trigger = float(trig[np.isfinite(trig)][0])
    risks: dict[str, Any] = {}
    for label, level in (("trigger", first_trigger), ("barrier", barrier)):
        near = np.abs(x - level) <= 0.05 + 1e-9
        if near.any():
            i = int(np.argmax(np.abs(curvature) * near))
            risks[label] = {"level": level, "max_abs_gamma": float(abs(curvature[i])), "at": float(x[i])}
    return max(0.0, float(gap_loss)), gap_at, risks


def stress_test(
    specs: Sequence[AutocallSpec],
    market: MarketData,
    options: PricingOptions = PricingOptions(),
    scenarios: Sequence[ScenarioSpec] | None = None,
    stress_options: StressOptions = StressOptions(),
    *,
    surfaces: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> StressReport:
    """Revalue every spec under every scenario (and a spot ladder) and report the issuer's risk.

    `progress(done, total)` reports path-scenarios simulated.
    """
    scenarios = list(default_scenarios() if scenarios is None else scenarios)
    if not specs:
        raise ValueError("specs: give at least one product")
    if options.model == "localvol" and surfaces is None:
        from engines.structured.localvol import surfaces_for

        surfaces = surfaces_for(market, {u for s in specs for u in s.underlyings})
    results: list[StressResult | None] = [None] * len(specs)
    groups = make_groups(specs, market, options.model, options.steps_per_year)
    total = 0
    for g in groups:
        n_assets = len(g.underlyings)
        total += 1 + 4 * n_assets + len(LADDER) + len(_scenario_shifts(scenarios, n_assets, options.model)[0])
        if options.model == "bs":
            total += 2 * sum(s.skew_steepening != 1.0 for s in scenarios)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, options.paths * total)

    for group in groups:
        found = _stress_group(group, market, options, scenarios, stress_options, surfaces, tick)
        for i, res in zip(group.indices, found, strict=True):
            results[i] = res
    return StressReport(scenarios, [r for r in results if r is not None], options.paths, options.seed, options.model)


def _scenario_shifts(scenarios: list[ScenarioSpec], n_assets: int, model: str) -> tuple[list[Shift], list[int]]:
    """The distinct market shifts the scenarios need, and for each scenario the index of its shift.

    Under Black–Scholes a skew steepening is not a shift of the model (it is added by
    `_skew_increments`), so such a scenario shares the shift of its unsteepened twin.
    """
    shifts = [s.shift(n_assets) for s in scenarios]
    if model == "bs":
        shifts = [dataclasses.replace(s, skew_steepening=1.0) for s in shifts]
    unique: dict[Shift, int] = {}
    for sh in shifts:
        unique.setdefault(dataclasses.replace(sh, name=""), len(unique))
    return list(unique), [unique[dataclasses.replace(sh, name="")] for sh in shifts]


@dataclass
class _Revaluation:
    means: np.ndarray  # [shift, product]
    stderr: np.ndarray  # [shift, product]
    diff_stderr: np.ndarray  # [shift, product]: standard error of (value under shift - value under shift 0)
    var: np.ndarray  # [shift, product, level]
    es: np.ndarray


def _revalue(
    group: Group,
    market: MarketData,
    options: PricingOptions,
    shifts: list[Shift],
    surfaces: Any,
    tick: Callable[[int], None],
    *,
    paired: bool = False,
    tails: bool = True,
) -> _Revaluation:
    """Mean, standard errors and tail measures of every product under every shift, in memory-bounded chunks.

    The differences' standard errors are taken against shift 0, or with `paired` against the shift
    just before (shifts come in pairs); every chunk reuses the same normals.
    """
    rates = group.table.p_flt[:, 0]
    n_products = rates.shape[0]
    chunk = max(2, MEMORY_BUDGET_BYTES // (2 * 4 * n_products * options.paths)) // 2 * 2
    means = np.empty((len(shifts), n_products))
    ses = np.empty_like(means)
    diff_ses = np.zeros_like(means)
    var = np.full((len(shifts), n_products, len(CONFIDENCE_LEVELS)), np.nan)
    es = np.full_like(var, np.nan)
    reference: np.ndarray | None = None
    for start in range(0, len(shifts), chunk):
        part = shifts[start : start + chunk]
        run = run_group(group, market, part, paths=options.paths, seed=options.seed, sampler=options.sampler,
                        antithetic=options.antithetic, surfaces=surfaces, dtype=np.float32, progress=tick,
                        backend=options.backend)  # fmt: skip
        for j in range(len(part)):
            pv = run.pv_red[j].astype(np.float64) + rates[:, None] * run.pv_cpn[j]
            means[start + j], ses[start + j] = mean_and_stderr(pv, run.pairs)
            if reference is None or (paired and (start + j) % 2 == 0):
                reference = pv
            else:
                diff_ses[start + j] = mean_and_stderr(pv - reference, run.pairs)[1]
            if tails:
                var[start + j], es[start + j] = _tail(1.0 - pv)
    return _Revaluation(means, ses, diff_ses, var, es)


def _skew_increments(
    group: Group,
    market: MarketData,
    options: PricingOptions,
    scenarios: list[ScenarioSpec],
    tick: Callable[[int], None],
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Under Black–Scholes, the value change a skew steepening adds to each scenario, from a local-vol run.

    For a scenario with `skew_steepening` f, the increment is V_lv(scenario, skew × f) − V_lv(scenario, skew × 1)
    on common normals, with the local-vol surfaces calibrated to the market's quotes. Underlyings without
    quotes have no skew to steepen (a warning says so).
    """
    from engines.structured.localvol import surfaces_for

    n_assets = len(group.underlyings)
    lv_group = make_groups(group.table.specs, market, "localvol", options.steps_per_year, SKEW_STEPS_PER_YEAR)[0]
    surfaces = surfaces_for(market, group.underlyings, horizon=float(lv_group.times[-1]))
    increments = np.zeros((len(scenarios), len(group.table.specs)))
    errors = np.zeros_like(increments)
    picked = [i for i, s in enumerate(scenarios) if s.skew_steepening != 1.0]
    shifts: list[Shift] = []
    for i in picked:  # adjacent pairs: (scenario with today's skew, scenario with the steeper skew)
        shifts += [
            scenarios[i].model_copy(update={"skew_steepening": 1.0}).shift(n_assets),
            scenarios[i].shift(n_assets),
        ]
    if shifts:
        r = _revalue(lv_group, market, options, shifts, surfaces, tick, paired=True, tails=False)
        increments[picked] = r.means[1::2] - r.means[0::2]
        errors[picked] = r.diff_stderr[1::2]
    flat = [u for u in group.underlyings if market.underlyings[u].surface is None]
    warnings = [f"no implied-vol quotes for {flat}: their skew cannot steepen (increment 0)"] if flat and picked else []
    return increments, errors, warnings


@dataclass(frozen=True)
class _OptionHedge:
    """Per product and underlying: puts held (per unit of notional, on the performance) and the shares after them."""

    puts: np.ndarray  # [product, asset]
    shares: np.ndarray  # [product, asset]
    base_put: np.ndarray  # [product, asset]
    maturity: np.ndarray  # [product]


def _atm_vol(market: MarketData, name: str, t: float) -> float:
    """The ATM implied vol at maturity t from the underlying's term structure."""
    times, vols = market.underlyings[name].atm_vols()
    return float(np.sqrt(atm_total_variance(times, vols, t) / t))


def _put(market: MarketData, name: str, t: float, x: float, sc: ScenarioSpec | None) -> float:
    """An ATM-struck European put on the performance S/S0 (strike 1, maturity t) at level x, under a scenario."""
    r = float(market.rates.zero(t))
    q = r - float(np.log(forward(market, name, np.array([t]))[0] / market.underlyings[name].spot)) / t
    vol = _atm_vol(market, name, t)
    if sc is not None:
        r, q = r + sc.rate_shift, q + sc.dividend_shift
        vol = sc.vol_level if sc.vol_level is not None else vol
    return float(black_scholes_price(x, 1.0, r, q, vol, t, "put"))


def _option_hedge(group: Group, market: MarketData, delta: np.ndarray, vega: np.ndarray) -> _OptionHedge:
    """Vega-neutral in at-the-money puts of the note's maturity, then delta-neutral in the underlyings."""
    n_products, n_assets = delta.shape
    puts = np.zeros((n_products, n_assets))
    shares = np.zeros_like(puts)
    base = np.zeros_like(puts)
    maturity = np.array([s.maturity_years for s in group.table.specs])
    for p, t in enumerate(maturity):
        for a, name in enumerate(group.underlyings):
            base[p, a] = _put(market, name, t, 1.0, None)
            h = 1e-4
            put_delta = (_put(market, name, t, 1.0 + h, None) - _put(market, name, t, 1.0 - h, None)) / (2 * h)
            put_vega = _put(
                market, name, t, 1.0, ScenarioSpec(name="vol+1", vol_level=_atm_vol(market, name, t) + 0.01)
            )
            put_vega -= base[p, a]  # per vol point, like the note's vega
            puts[p, a] = vega[p, a] / put_vega if put_vega > 0 else 0.0
            shares[p, a] = delta[p, a] - puts[p, a] * put_delta
    return _OptionHedge(puts, shares, base, maturity)


def _hedge_pnl(group: Group, market: MarketData, hedge: _OptionHedge, scenarios: list[ScenarioSpec]) -> np.ndarray:
    """P&L [scenario, product] of the option-and-share hedge, the puts revalued in full (Black–Scholes)."""
    out = np.zeros((len(scenarios), len(hedge.maturity)))
    for s, sc in enumerate(scenarios):
        x = 1.0 + sc.spot_move
        for p, t in enumerate(hedge.maturity):
            for a, name in enumerate(group.underlyings):
                put = _put(market, name, t, x, sc)
                out[s, p] += hedge.puts[p, a] * (put - hedge.base_put[p, a]) + hedge.shares[p, a] * sc.spot_move
    return out


def _stress_group(
    group: Group,
    market: MarketData,
    options: PricingOptions,
    scenarios: list[ScenarioSpec],
    stress_options: StressOptions,
    surfaces: Any,
    tick: Callable[[int], None],
) -> list[StressResult]:
    n_assets = len(group.underlyings)
    table = group.table
    head = [Shift(), *greek_shifts(n_assets, ["delta", "vega"])]
    ladder = [Shift(name=f"ladder{x:g}", spot=tuple([float(x)] * n_assets)) for x in LADDER]
    unique, where = _scenario_shifts(scenarios, n_assets, options.model)
    r = _revalue(group, market, options, head + ladder + unique, surfaces, tick)
    n_fixed = len(head) + len(ladder)
    pick = list(range(n_fixed)) + [n_fixed + w for w in where]
    r = _Revaluation(r.means[pick], r.stderr[pick], r.diff_stderr[pick], r.var[pick], r.es[pick])
    means, ses = r.means, r.stderr
    n_head, n_ladder = len(head), len(ladder)
    base = means[0]
    delta = np.stack([(means[1 + 2 * a] - means[2 + 2 * a]) / (2 * SPOT_BUMP) for a in range(n_assets)], axis=1)
    v0 = 1 + 2 * n_assets
    vega = np.stack([(means[v0 + 2 * a] - means[v0 + 1 + 2 * a]) / 2 for a in range(n_assets)], axis=1)
    ladder_values = means[n_head : n_head + n_ladder]
    scen = slice(n_head + n_ladder, None)
    moves = np.array([s.spot_move for s in scenarios])
    values = means[scen].copy()
    pnl_se = r.diff_stderr[scen].copy()
    warnings = market_warnings(group, market)
    if options.model == "bs" and any(s.skew_steepening != 1.0 for s in scenarios):
        increments, errors, skew_warnings = _skew_increments(group, market, options, scenarios, tick)
        warnings += skew_warnings
        values += increments
        pnl_se = np.hypot(pnl_se, errors)
    pnl = -(values - base[None, :])
    hedged = pnl + moves[:, None] * delta.sum(axis=1)[None, :]
    hedged_dv = pnl + _hedge_pnl(group, market, _option_hedge(group, market, delta, vega), scenarios)
    var, es = r.var, r.es
    results = []
    limit = stress_options.capital_at_risk_limit
    for p, spec in enumerate(table.specs):
        gap_loss, gap_at, trig = _ladder_risks(ladder_values[:, p], spec, stress_options.gap)
        worst = int(np.argmin(hedged_dv[:, p]))
        car = max(0.0, float(-hedged_dv[worst, p]))
        results.append(
            StressResult(
                name=spec.name,
                base_value=float(base[p]),
                base_stderr=float(ses[0, p]),
                delta=delta[p].tolist(),
                vega=vega[p].tolist(),
                pnl=pnl[:, p].tolist(),
                hedged_pnl=hedged[:, p].tolist(),
                delta_vega_hedged_pnl=hedged_dv[:, p].tolist(),
                pnl_stderr=pnl_se[:, p].tolist(),
                var={f"{lv:g}": var[scen, p, i].tolist() for i, lv in enumerate(CONFIDENCE_LEVELS)},
                es={f"{lv:g}": es[scen, p, i].tolist() for i, lv in enumerate(CONFIDENCE_LEVELS)},
                base_var={f"{lv:g}": float(var[0, p, i]) for i, lv in enumerate(CONFIDENCE_LEVELS)},
                base_es={f"{lv:g}": float(es[0, p, i]) for i, lv in enumerate(CONFIDENCE_LEVELS)},
                gap_risk=gap_loss,
                gap_risk_at=gap_at,
                trigger_risk=trig,
                capital_at_risk=car,
                capital_at_risk_delta_hedged=max(0.0, float(-hedged[:, p].min())),
                capital_at_risk_unhedged=max(0.0, float(-pnl[:, p].min())),
                worst_scenario=scenarios[worst].name,
                passes=car <= limit,
                limit=limit,
                ladder={"spot": LADDER.tolist(), "value": ladder_values[:, p].tolist()},
                warnings=list(warnings),
            )
        )
    return results
