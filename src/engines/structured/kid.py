"""PRIIPs KID indicators of a note from the engine's own simulation (category 3).

The note's cash flows on each simulated path are rolled up at the risk-free rate to the
recommended holding period (the maturity unless given): coupons and an early redemption are
reinvested risk-free until then, which is the value an investor holding for the RHP receives.
That distribution gives the market risk measure and the favourable, moderate and unfavourable
scenarios; the stress scenario is the same note simulated with every underlying's volatility
multiplied by `stressed_vol_multiplier` (a documented assumption standing in for the
regulation's stressed volatility from the underlyings' price history, which this engine does
not hold). Performance scenarios are given at the RHP only: an intermediate holding period
needs the note's value before maturity on every path (a nested valuation), not provided here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.structured.market import MarketData
from engines.structured.pricing import PricingOptions
from engines.structured.priips import priips_indicators
from engines.structured.simulation import Shift, make_groups, run_group
from engines.structured.spec import AutocallSpec

MIN_PRIIPS_PATHS = 10_000
"""The regulation's minimum number of simulations for category 3 figures."""


class KidOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer_rating: str = Field("A", min_length=1, description="Issuer's long-term rating (S&P/Fitch or Moody's).")
    rhp_years: float | None = Field(None, gt=0, le=10, description="Recommended holding period; maturity by default.")
    price: float = Field(1.0, gt=0, le=2, description="Price paid by the investor, as a fraction of notional.")
    stressed_vol_multiplier: float = Field(1.5, ge=1, le=5)
    investment: float = Field(10_000.0, gt=0)


def values_at_horizon(
    spec: AutocallSpec, market: MarketData, options: PricingOptions, horizon: float, vol_multiplier: float = 1.0
) -> tuple[np.ndarray, float]:
    """Per-path value at `horizon` of the note's cash flows reinvested risk-free, and the risk-free DF to it."""
    if horizon + 1e-9 < spec.maturity_years:
        raise ValueError(f"rhp_years: {horizon} is before the maturity {spec.maturity_years}; not supported")
    risk_free = spec.model_copy(update={"funding_spread": 0.0})
    group = make_groups([risk_free], market, options.model, options.steps_per_year)[0]
    shift = Shift()
    if vol_multiplier != 1.0:
        atm = [float(market.underlyings[u].atm_vols()[1].mean()) for u in group.underlyings]
        shift = Shift(name="stressed", vol_shift=tuple((vol_multiplier - 1.0) * v for v in atm))
    run = run_group(group, market, [shift], paths=options.paths, seed=options.seed, sampler=options.sampler,
                    antithetic=options.antithetic, backend=options.backend)  # fmt: skip
    pv = run.pv_red[0, 0] + risk_free.coupon.rate * run.pv_cpn[0, 0]
    df = float(np.exp(-market.rates.integral(horizon)))
    return pv / df, df


def kid_indicators(
    spec: AutocallSpec, market: MarketData, options: PricingOptions, kid: KidOptions = KidOptions()
) -> dict[str, Any]:
    """MRM, CRM, SRI and the performance scenarios at the RHP, with the simulation settings used."""
    if options.paths < MIN_PRIIPS_PATHS:
        raise ValueError(f"paths: PRIIPs figures need at least {MIN_PRIIPS_PATHS} simulations, got {options.paths}")
    rhp = kid.rhp_years or spec.maturity_years
    values, df = values_at_horizon(spec, market, options, rhp)
    stressed, _ = values_at_horizon(spec, market, options, rhp, kid.stressed_vol_multiplier)
    ind = priips_indicators(values, kid.price, rhp, df, kid.issuer_rating, {rhp: values}, {rhp: stressed},
                            kid.investment)  # fmt: skip
    return {
        **ind.to_dict(),
        "name": spec.name,
        "paths": options.paths,
        "model": options.model,
        "stressed_vol_multiplier": kid.stressed_vol_multiplier,
    }
