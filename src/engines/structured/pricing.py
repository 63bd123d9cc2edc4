"""Price autocallable notes: price and standard error, fair coupon, probabilities, IRR distribution and Greeks.

All products are priced together: products on the same underlyings share one path set per
market scenario, and every Greek is a bump-and-revalue on the same normals (common random
numbers), so the noise of a difference is the noise of the difference, not of two prices.

Units: prices, Greeks and P&L are fractions of notional (0.97 = 97%). `delta[a]` is the change
in value for a 100% relative move of underlying a (so 0.6 means 60% of notional of equity
exposure; per 1% move divide by 100), `gamma[a]` is the second derivative in the same relative
units, `vega[a]` is per vol point (0.01), `rho` per basis point of the rate curve, and
`correlation` per 0.01 added to every pairwise correlation. Coupons are linear in the coupon
rate on a fixed path set, so the fair coupon for a target issuer margin is solved exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.structured.market import MarketData
from engines.structured.sampling import Sampler
from engines.structured.simulation import Group, GroupRun, Model, Shift, make_groups, run_group
from engines.structured.spec import AutocallSpec

Greek = Literal["delta", "gamma", "vega", "rho", "correlation"]
SPOT_BUMP = 0.01
VOL_BUMP = 0.01
RATE_BUMP = 0.001
CORRELATION_BUMP = 0.05
IRR_PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


class PricingOptions(BaseModel):
    """How to simulate: paths, seed, sampler, model, which Greeks, and the issuer margin to solve for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: int = Field(10_000, ge=2, le=50_000_000)
    seed: int = Field(20261123, ge=0)
    sampler: Sampler = "sobol"
    antithetic: bool = True
    model: Model = "bs"
    greeks: list[Greek] = []
    steps_per_year: int | None = Field(
        None, ge=1, le=2520, description="At least this many time steps a year (local vol, continuous barriers)."
    )
    backend: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Kernel backend: a CUDA GPU when present (auto), or forced."
    )
    target_margin: float | None = Field(0.03, ge=-0.5, le=0.5, description="Issuer margin for the fair coupon.")


@dataclass
class PriceResult:
    """One note's price and risk figures (fractions of notional; see the module docstring)."""

    name: str
    price: float
    stderr: float
    coupon_rate: float
    coupon_value: float
    fair_coupon: float | None
    autocall_probability: list[float]
    expected_life_years: float
    knock_in_probability: float
    capital_loss_probability: float
    expected_redemption_if_loss: float | None
    irr_percentiles: dict[str, float]
    irr_mean: float
    greeks: dict[str, Any] = field(default_factory=dict)
    paths: int = 0
    seed: int = 0
    sampler: str = ""
    model: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mean_and_stderr(values: np.ndarray, pairs: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Monte Carlo standard error along the last axis (antithetic pairs are i and i + n/2)."""
    values = _samples(values, pairs)
    m = values.shape[-1]
    mean = values.mean(axis=-1, dtype=np.float64)
    sd = values.std(axis=-1, ddof=1, dtype=np.float64) if m > 1 else np.zeros_like(mean)
    return mean, sd / np.sqrt(m)


def greek_shifts(n_assets: int, greeks: Sequence[str]) -> list[Shift]:
    """The bumped scenarios the requested Greeks need (after the base scenario)."""
    shifts: list[Shift] = []
    if "delta" in greeks or "gamma" in greeks:
        for a in range(n_assets):
            for sign in (1, -1):
                m = np.ones(n_assets)
                m[a] += sign * SPOT_BUMP
                shifts.append(Shift(name=f"spot{a}{'+' if sign > 0 else '-'}", spot=tuple(m)))
    if "vega" in greeks:
        for a in range(n_assets):
            for sign in (1, -1):
                v = np.zeros(n_assets)
                v[a] = sign * VOL_BUMP
                shifts.append(Shift(name=f"vol{a}{'+' if sign > 0 else '-'}", vol_shift=tuple(v)))
    if "rho" in greeks:
        shifts += [Shift(name="rate+", rate_shift=RATE_BUMP), Shift(name="rate-", rate_shift=-RATE_BUMP)]
    if "correlation" in greeks and n_assets > 1:
        shifts += [
            Shift(name="corr+", correlation_shift=CORRELATION_BUMP),
            Shift(name="corr-", correlation_shift=-CORRELATION_BUMP),
        ]
    return shifts


def greeks_from(values: dict[str, np.ndarray], base: np.ndarray, n_assets: int, greeks: Sequence[str]) -> list[dict]:
    """Finite-difference Greeks per product from the mean values under each named shift."""
    out: list[dict[str, Any]] = [{} for _ in range(base.shape[0])]
    for p, g in enumerate(out):
        if "delta" in greeks or "gamma" in greeks:
            up = np.array([values[f"spot{a}+"][p] for a in range(n_assets)])
            dn = np.array([values[f"spot{a}-"][p] for a in range(n_assets)])
            if "delta" in greeks:
                g["delta"] = ((up - dn) / (2 * SPOT_BUMP)).tolist()
            if "gamma" in greeks:
                g["gamma"] = ((up - 2 * base[p] + dn) / SPOT_BUMP**2).tolist()
        if "vega" in greeks:
            up = np.array([values[f"vol{a}+"][p] for a in range(n_assets)])
            dn = np.array([values[f"vol{a}-"][p] for a in range(n_assets)])
            g["vega"] = ((up - dn) / 2).tolist()
        if "rho" in greeks:
            g["rho"] = float((values["rate+"][p] - values["rate-"][p]) / (2 * RATE_BUMP * 1e4))
        if "correlation" in greeks:
            g["correlation"] = (
                float((values["corr+"][p] - values["corr-"][p]) / (2 * CORRELATION_BUMP * 100)) if n_assets > 1 else 0.0
            )
    return out


def _fair_coupon(red: float, cpn: float, margin: float | None) -> float | None:
    if margin is None or cpn <= 0:
        return None
    return float((1.0 - margin - red) / cpn)


IRR_BIN_EDGES = np.linspace(-1.0, 1.0, 4001)
"""IRR histogram bins (0.05% wide): percentiles of chunked runs combine exactly through the histogram."""


@dataclass
class ProductStats:
    """Sufficient statistics of one product over a range of paths; chunks combine by adding them.

    `samples` counts the independent samples (antithetic pairs or single paths); `value_sum[s]`
    and `value_sq[s]` are the sum and sum of squares of the sample values under shift s.
    """

    name: str
    shifts: list[str]
    n_assets: int
    coupon_rate: float
    samples: int
    paths: int
    value_sum: list[float]
    value_sq: list[float]
    redemption_sum: float
    coupon_sum: float
    autocall_counts: list[int]
    knock_in_sum: float
    life_sum: float
    loss_count: int
    loss_redemption_sum: float
    irr_sum: float
    irr_histogram: list[int]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProductStats:
        return cls(**data)

    def __add__(self, other: ProductStats) -> ProductStats:
        if (self.name, self.shifts, self.coupon_rate) != (other.name, other.shifts, other.coupon_rate):
            raise ValueError(f"cannot add the statistics of {self.name!r} and {other.name!r}: different runs")

        def add(a: list, b: list) -> list:
            return (np.asarray(a) + np.asarray(b)).tolist()

        return ProductStats(
            self.name, self.shifts, self.n_assets, self.coupon_rate, self.samples + other.samples,
            self.paths + other.paths, add(self.value_sum, other.value_sum), add(self.value_sq, other.value_sq),
            self.redemption_sum + other.redemption_sum, self.coupon_sum + other.coupon_sum,
            add(self.autocall_counts, other.autocall_counts), self.knock_in_sum + other.knock_in_sum,
            self.life_sum + other.life_sum, self.loss_count + other.loss_count,
            self.loss_redemption_sum + other.loss_redemption_sum, self.irr_sum + other.irr_sum,
            add(self.irr_histogram, other.irr_histogram),
            sorted(set(self.warnings) | set(other.warnings)),
        )  # fmt: skip


def _samples(values: np.ndarray, pairs: bool) -> np.ndarray:
    """The independent samples in float64: antithetic pair averages (paths i and i + n/2), or the paths."""
    if pairs:
        half = values.shape[-1] // 2
        return 0.5 * (values[..., :half].astype(np.float64) + values[..., half : 2 * half])
    return values.astype(np.float64)


def market_warnings(group: Group, market: MarketData) -> list[str]:
    """What the caller must know about the market data used (a repaired correlation matrix)."""
    corr = market.correlation_for(list(group.underlyings))
    if corr.repaired:
        return [
            f"correlation of {list(group.underlyings)} was not positive semi-definite and was replaced by the "
            f"nearest correlation matrix (largest change {corr.max_change:.4f})"
        ]
    return []


def _group_stats(group: Group, run: GroupRun, shifts: list[Shift], warnings: list[str]) -> list[ProductStats]:
    table = group.table
    rates = table.p_flt[:, 0]
    y = _samples(run.pv_red + rates[None, :, None] * run.pv_cpn, run.pairs)
    red = _samples(run.pv_red[0], run.pairs)
    cpn = _samples(run.pv_cpn[0], run.pairs)
    assert run.call_idx is not None and run.ki_prob is not None and run.life is not None
    assert run.redemption is not None and run.irr is not None
    out = []
    for p, spec in enumerate(table.specs):
        n_obs = int(table.p_int[p, 0])
        called = run.call_idx[p]
        not_called = called < 0
        loss = not_called & (run.redemption[p] < 1.0 - 1e-9)
        irr = np.clip(run.irr[p], IRR_BIN_EDGES[0], IRR_BIN_EDGES[-1])
        out.append(
            ProductStats(
                name=spec.name,
                shifts=[s.name for s in shifts],
                n_assets=len(group.underlyings),
                coupon_rate=float(rates[p]),
                samples=int(y.shape[-1]),
                paths=int(called.size),
                value_sum=y[:, p].sum(axis=-1).tolist(),
                value_sq=(y[:, p] ** 2).sum(axis=-1).tolist(),
                redemption_sum=float(red[p].sum()),
                coupon_sum=float(cpn[p].sum()),
                autocall_counts=np.bincount(called[called >= 0], minlength=n_obs)[:n_obs].tolist(),
                knock_in_sum=float(np.where(not_called, run.ki_prob[p], 0.0).sum(dtype=np.float64)),
                life_sum=float(run.life[p].sum(dtype=np.float64)),
                loss_count=int(loss.sum()),
                loss_redemption_sum=float(run.redemption[p][loss].sum(dtype=np.float64)),
                irr_sum=float(run.irr[p].sum(dtype=np.float64)),
                irr_histogram=np.histogram(irr, IRR_BIN_EDGES)[0].tolist(),
                warnings=list(warnings),
            )
        )
    return out


def _histogram_percentiles(counts: np.ndarray, percentiles: Sequence[float]) -> list[float]:
    cum = np.cumsum(counts)
    total = cum[-1]
    out = []
    for q in percentiles:
        target = q / 100 * total
        i = int(np.searchsorted(cum, target))
        i = min(i, len(counts) - 1)
        before = cum[i - 1] if i else 0
        frac = (target - before) / counts[i] if counts[i] else 0.5
        out.append(float(IRR_BIN_EDGES[i] + frac * (IRR_BIN_EDGES[i + 1] - IRR_BIN_EDGES[i])))
    return out


def result_from_stats(stats: ProductStats, options: PricingOptions) -> PriceResult:
    """The price and risk figures of a product from its (possibly combined) statistics."""
    n = stats.samples
    mean = np.asarray(stats.value_sum) / n
    var = (np.asarray(stats.value_sq) - n * mean**2) / max(n - 1, 1)
    se = np.sqrt(np.maximum(var, 0.0) / n)
    by_name = {name: np.array([mean[i]]) for i, name in enumerate(stats.shifts)}
    greeks = greeks_from(by_name, np.array([mean[0]]), stats.n_assets, options.greeks)[0]
    red, cpn = stats.redemption_sum / n, stats.coupon_sum / n
    warnings = list(stats.warnings)
    if options.sampler == "sobol" and stats.paths & (stats.paths - 1):
        warnings.append("Sobol points are best used in powers of two; the standard error is a pseudo-random estimate")
    counts = np.asarray(stats.irr_histogram)
    return PriceResult(
        name=stats.name,
        price=float(mean[0]),
        stderr=float(se[0]),
        coupon_rate=stats.coupon_rate,
        coupon_value=float(stats.coupon_rate * cpn),
        fair_coupon=_fair_coupon(red, cpn, options.target_margin),
        autocall_probability=(np.asarray(stats.autocall_counts) / stats.paths).tolist(),
        expected_life_years=stats.life_sum / stats.paths,
        knock_in_probability=stats.knock_in_sum / stats.paths,
        capital_loss_probability=stats.loss_count / stats.paths,
        expected_redemption_if_loss=stats.loss_redemption_sum / stats.loss_count if stats.loss_count else None,
        irr_percentiles={
            f"p{q}": v for q, v in zip(IRR_PERCENTILES, _histogram_percentiles(counts, IRR_PERCENTILES), strict=True)
        },
        irr_mean=stats.irr_sum / stats.paths,
        greeks=greeks,
        paths=stats.paths,
        seed=options.seed,
        sampler=options.sampler,
        model=options.model,
        warnings=warnings,
    )


def price_stats(
    specs: Sequence[AutocallSpec],
    market: MarketData,
    options: PricingOptions = PricingOptions(),
    *,
    first_path: int = 0,
    paths: int | None = None,
    surfaces: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ProductStats]:
    """Statistics of every spec over paths [first_path, first_path + paths) (all of `options.paths` by default).

    A run split into path ranges that start on block boundaries draws exactly the normals of the
    unsplit run, so adding the ranges' statistics reproduces it. `progress(done, total)` reports
    path-scenarios simulated.
    """
    if not specs:
        raise ValueError("specs: give at least one product")
    paths = options.paths if paths is None else paths
    if options.antithetic and paths % 2:
        raise ValueError(f"paths: antithetic sampling needs an even path count, got {paths}")
    if options.model == "localvol" and surfaces is None:
        from engines.structured.localvol import surfaces_for

        surfaces = surfaces_for(market, {u for s in specs for u in s.underlyings})
    out: list[ProductStats | None] = [None] * len(specs)
    groups = make_groups(specs, market, options.model, options.steps_per_year)
    plan = [[Shift(), *greek_shifts(len(g.underlyings), options.greeks)] for g in groups]
    tick = _progress_counter(progress, paths * sum(len(p) for p in plan))
    for group, shifts in zip(groups, plan, strict=True):
        run = run_group(group, market, shifts, paths=paths, seed=options.seed, sampler=options.sampler,
                        antithetic=options.antithetic, details=True, surfaces=surfaces,
                        first_path=first_path, progress=tick, backend=options.backend)  # fmt: skip
        for i, st in zip(group.indices, _group_stats(group, run, shifts, market_warnings(group, market)), strict=True):
            out[i] = st
    return [st for st in out if st is not None]


def _progress_counter(progress: Callable[[int, int], None] | None, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)

    return tick


def price_many(
    specs: Sequence[AutocallSpec],
    market: MarketData,
    options: PricingOptions = PricingOptions(),
    *,
    surfaces: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[PriceResult]:
    """Price every spec (in the given order) with the requested Greeks; products on the same underlyings share paths."""
    stats = price_stats(specs, market, options, surfaces=surfaces, progress=progress)
    return [result_from_stats(st, options) for st in stats]


def price(spec: AutocallSpec, market: MarketData, options: PricingOptions = PricingOptions()) -> PriceResult:
    """Price one note (see `price_many`)."""
    return price_many([spec], market, options)[0]
