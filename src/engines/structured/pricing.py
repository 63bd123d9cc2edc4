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

from collections.abc import Sequence
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
    n = values.shape[-1]
    if pairs:
        half = n // 2
        values = 0.5 * (values[..., :half] + values[..., half : 2 * half])
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


def _group_results(group: Group, run: GroupRun, shifts: list[Shift], options: PricingOptions) -> list[PriceResult]:
    table = group.table
    rates = table.p_flt[:, 0]
    pv = run.pv_red + rates[None, :, None] * run.pv_cpn
    mean, se = mean_and_stderr(pv, run.pairs)
    red_mean, _ = mean_and_stderr(run.pv_red[0], run.pairs)
    cpn_mean, _ = mean_and_stderr(run.pv_cpn[0], run.pairs)
    by_name = {s.name: mean[i] for i, s in enumerate(shifts)}
    greeks = greeks_from(by_name, mean[0], len(group.underlyings), options.greeks)
    assert run.call_idx is not None and run.ki_prob is not None and run.life is not None
    assert run.redemption is not None and run.irr is not None
    results = []
    for p, spec in enumerate(table.specs):
        n_obs = int(table.p_int[p, 0])
        called = run.call_idx[p]
        counts = np.bincount(called[called >= 0], minlength=n_obs)[:n_obs] / called.size
        not_called = called < 0
        loss = not_called & (run.redemption[p] < 1.0 - 1e-9)
        irr = run.irr[p]
        warnings = []
        if options.sampler == "sobol" and options.paths & (options.paths - 1):
            warnings.append(
                "Sobol points are best used in powers of two; the standard error is a pseudo-random estimate"
            )
        results.append(
            PriceResult(
                name=spec.name,
                price=float(mean[0, p]),
                stderr=float(se[0, p]),
                coupon_rate=float(rates[p]),
                coupon_value=float(rates[p] * cpn_mean[p]),
                fair_coupon=_fair_coupon(float(red_mean[p]), float(cpn_mean[p]), options.target_margin),
                autocall_probability=counts.tolist(),
                expected_life_years=float(run.life[p].mean(dtype=np.float64)),
                knock_in_probability=float(np.where(not_called, run.ki_prob[p], 0.0).mean(dtype=np.float64)),
                capital_loss_probability=float(loss.mean()),
                expected_redemption_if_loss=float(run.redemption[p][loss].mean()) if loss.any() else None,
                irr_percentiles={
                    f"p{q}": float(v) for q, v in zip(IRR_PERCENTILES, np.percentile(irr, IRR_PERCENTILES), strict=True)
                },
                irr_mean=float(irr.mean(dtype=np.float64)),
                greeks=greeks[p],
                paths=options.paths,
                seed=options.seed,
                sampler=options.sampler,
                model=options.model,
                warnings=warnings,
            )
        )
    return results


def price_many(
    specs: Sequence[AutocallSpec], market: MarketData, options: PricingOptions = PricingOptions(), *, surfaces=None
) -> list[PriceResult]:
    """Price every spec (in the given order) with the requested Greeks; products on the same underlyings share paths."""
    if not specs:
        raise ValueError("specs: give at least one product")
    if options.antithetic and options.paths % 2:
        raise ValueError(f"paths: antithetic sampling needs an even path count, got {options.paths}")
    if options.model == "localvol" and surfaces is None:
        from engines.structured.localvol import surfaces_for

        surfaces = surfaces_for(market, {u for s in specs for u in s.underlyings})
    out: list[PriceResult | None] = [None] * len(specs)
    for group in make_groups(specs, market, options.model, options.steps_per_year):
        shifts = [Shift(), *greek_shifts(len(group.underlyings), options.greeks)]
        run = run_group(group, market, shifts, paths=options.paths, seed=options.seed, sampler=options.sampler,
                        antithetic=options.antithetic, details=True, surfaces=surfaces)  # fmt: skip
        for i, res in zip(group.indices, _group_results(group, run, shifts, options), strict=True):
            out[i] = res
    return [r for r in out if r is not None]


def price(spec: AutocallSpec, market: MarketData, options: PricingOptions = PricingOptions()) -> PriceResult:
    """Price one note (see `price_many`)."""
    return price_many([spec], market, options)[0]
