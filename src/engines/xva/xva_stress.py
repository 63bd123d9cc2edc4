"""The desk's XVA stresses: credit spreads +-100 bp, funding spreads +-50 bp, collateral posting 0% to 120%.

Each scenario transforms the inputs of `engines.xva.adjustments.xva` and reprices every netting set at once:

- Credit spreads: a spread shift ds moves the hazard by ds / (1 - R) (the credit triangle), on the
  counterparties' curves, the bank's own curve, or both. The hazard of each grid interval is shifted and
  floored at zero (S'(t_i) = S'(t_{i-1}) exp(-max(h_i + dh, 0) dt_i)), so -100 bp on a 60 bp name leaves it
  riskless rather than making its survival grow.
- Funding spreads: the borrowing and lending spreads move by their shifts (FCA, FBA and MVA reprice).
- Collateral posting: the counterparty posts k times the positive uncollateralised exposure, C = k max(V, 0)
  on every path (with `two_way_collateral`, the bank also posts k times its negative exposure: C = k V). The
  collateralised exposure X = V - C is re-aggregated; the expectations transform exactly:
      one-way:  E[D X+] = (1 - k)+ E[D V+],   E[D X-] = E[D V-] + (k - 1)+ E[D V+]
      two-way:  X = (1 - k) V,  E[D X+] = (1 - k) E[D V+] for k <= 1, (k - 1) E[D V-] beyond (and the mirror),
  so the stress runs on the uncollateralised profiles (`collateralised_profiles`) and agrees with the paths
  (`collateralised_paths`, then `exposure_profiles`) to rounding. Above 100% the bank holds more than it is
  owed: the excess is the counterparty's exposure to the bank (ENE), which feeds DVA and FBA. The SA-CCR
  capital follows the new expected exposure (KVA); the initial margin is unchanged.

Every scenario reports the stressed adjustments per netting set and in total, beside the base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.xva.adjustments import (
    COMPONENTS,
    CapitalProfile,
    CreditInputs,
    ExposureProfiles,
    FundingSpreads,
    XvaOptions,
    XvaResult,
    check_survival,
    check_times,
    xva,
)

__all__ = [
    "XvaScenario",
    "XvaStressReport",
    "collateralised_paths",
    "collateralised_profiles",
    "desk_scenarios",
    "shift_survival",
    "stress_xva",
]

MAX_COLLATERAL_FRACTION = 2.0


class XvaScenario(BaseModel):
    """One stress: spread shifts in decimals (0.01 = 100 bp) and the collateral posted as a share of exposure."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    counterparty_spread_shift: float = Field(0.0, ge=-0.1, le=0.5, description="On every counterparty's CDS spread.")
    own_spread_shift: float = Field(0.0, ge=-0.1, le=0.5, description="On the bank's own CDS spread.")
    borrow_spread_shift: float = Field(0.0, ge=-0.1, le=0.5, description="On the unsecured borrowing spread.")
    lend_spread_shift: float = Field(0.0, ge=-0.1, le=0.5, description="On the lending spread.")
    collateral_fraction: float | None = Field(
        None, ge=0, le=MAX_COLLATERAL_FRACTION, description="k: collateral = k x positive exposure; None = as is."
    )
    two_way_collateral: bool = Field(False, description="The bank also posts k x its negative exposure.")


def desk_scenarios() -> list[XvaScenario]:
    """Credit +-100 bp (counterparties, own, both), funding +-50 bp, collateral 0, 25, 50, 75, 100 and 120%."""
    out = []
    for bp in (100, -100):
        s = bp / 1e4
        out += [
            XvaScenario(name=f"counterparty credit {bp:+d}bp", counterparty_spread_shift=s),
            XvaScenario(name=f"own credit {bp:+d}bp", own_spread_shift=s),
            XvaScenario(name=f"all credit {bp:+d}bp", counterparty_spread_shift=s, own_spread_shift=s),
        ]
    for bp in (50, -50):
        s = bp / 1e4
        out.append(XvaScenario(name=f"funding {bp:+d}bp", borrow_spread_shift=s, lend_spread_shift=s))
    for pct in (0, 25, 50, 75, 100, 120):
        out.append(XvaScenario(name=f"collateral {pct}%", collateral_fraction=pct / 100))
    return out


def shift_survival(
    times: np.ndarray | Sequence[float], survival: np.ndarray, hazard_shift: np.ndarray | float
) -> np.ndarray:
    """Survival curves [..., T] with each interval's hazard moved by `hazard_shift` (per curve) and floored at 0."""
    t = check_times(times)
    s = check_survival(survival, t, "survival")
    dt = np.diff(t, prepend=0.0)
    previous = np.concatenate([np.ones((*s.shape[:-1], 1)), s[..., :-1]], axis=-1)
    integrated = np.log(previous) - np.log(s)
    shift = np.asarray(hazard_shift, dtype=np.float64)
    shifted = np.maximum(integrated + shift[..., None] * dt if shift.ndim else integrated + shift * dt, 0.0)
    return np.exp(-np.cumsum(shifted, axis=-1))


def collateralised_paths(value_paths: np.ndarray, fraction: float, two_way: bool = False) -> np.ndarray:
    """X = V - C with C = k max(V, 0) (two-way: C = k V): the exposure after posting k of it, path by path."""
    v = np.asarray(value_paths, dtype=np.float64)
    _check_fraction(fraction)
    if two_way:
        return (1.0 - fraction) * v
    return v - fraction * np.maximum(v, 0.0)


def collateralised_profiles(
    uncollateralised: ExposureProfiles, fraction: float, two_way: bool = False
) -> ExposureProfiles:
    """The discounted EE/ENE after posting k of the exposure, from the uncollateralised ones (exact; see above)."""
    _check_fraction(fraction)
    ee, ene = uncollateralised.ee, uncollateralised.ene
    k = fraction
    if two_way:
        if k <= 1:
            new_ee, new_ene = (1.0 - k) * ee, (1.0 - k) * ene
        else:
            new_ee, new_ene = (k - 1.0) * ene, (k - 1.0) * ee
    else:
        new_ee = max(1.0 - k, 0.0) * ee
        new_ene = ene + max(k - 1.0, 0.0) * ee
    return replace(uncollateralised, ee=new_ee, ene=new_ene)


def _check_fraction(fraction: float) -> None:
    if not 0 <= fraction <= MAX_COLLATERAL_FRACTION:
        raise ValueError(f"collateral_fraction: {fraction} must lie in [0, {MAX_COLLATERAL_FRACTION}]")


@dataclass(frozen=True)
class XvaStressReport:
    """The base adjustments and those of each scenario, per netting set and in total."""

    base: XvaResult
    scenarios: list[XvaScenario]
    results: list[XvaResult]

    def result(self, name: str) -> XvaResult:
        for s, r in zip(self.scenarios, self.results, strict=True):
            if s.name == name:
                return r
        raise KeyError(f"scenario: no scenario named {name!r}")

    def changes(self, name: str) -> dict[str, float]:
        """Total of each adjustment under the scenario minus the base total."""
        stressed, base = self.result(name).totals(), self.base.totals()
        return {k: stressed[k] - base[k] for k in COMPONENTS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the base result, and per scenario its definition, totals, changes and netting sets."""
        base = self.base.to_dict()
        out = []
        for s, r in zip(self.scenarios, self.results, strict=True):
            d = r.to_dict()
            out.append(
                {
                    "scenario": s.model_dump(),
                    "totals": d["totals"],
                    "changes": self.changes(s.name),
                    "netting_sets": d["netting_sets"],
                }
            )
        return {"currency": self.base.currency, "base": base, "scenarios": out}


def stress_xva(
    exposure: ExposureProfiles,
    credit: CreditInputs,
    funding: FundingSpreads | None = None,
    capital: CapitalProfile | None = None,
    *,
    scenarios: Sequence[XvaScenario] | None = None,
    options: XvaOptions | None = None,
    uncollateralised: ExposureProfiles | None = None,
) -> XvaStressReport:
    """The base XVA and each scenario's.

    Collateral scenarios need the netting sets' `uncollateralised` profiles (same ids and grid as `exposure`).
    The default scenarios are `desk_scenarios()`, without the collateral ones when no uncollateralised profiles
    are given.
    """
    if scenarios is None:
        chosen = [s for s in desk_scenarios() if uncollateralised is not None or s.collateral_fraction is None]
    else:
        chosen = list(scenarios)
    names = [s.name for s in chosen]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"scenarios: the name {duplicate!r} is used twice")
    t = exposure.times
    s_c, r_c, s_b = credit.checked(t, exposure.size)
    if uncollateralised is not None and (
        uncollateralised.netting_set_ids != exposure.netting_set_ids or not np.array_equal(uncollateralised.times, t)
    ):
        raise ValueError("uncollateralised: profiles must have the exposure's netting sets (in order) and grid")
    base = xva(exposure, credit, funding, capital, options)
    results = []
    for i, sc in enumerate(chosen):
        stressed_credit = credit
        if sc.counterparty_spread_shift or sc.own_spread_shift:
            own = s_b
            if sc.own_spread_shift:
                if s_b is None:
                    raise ValueError(f"scenarios[{i}].own_spread_shift: no own_survival curve to shift")
                own = shift_survival(t, s_b, sc.own_spread_shift / (1.0 - credit.own_recovery))
            cpty = s_c
            if sc.counterparty_spread_shift:
                cpty = shift_survival(t, s_c, sc.counterparty_spread_shift / (1.0 - r_c))
            stressed_credit = replace(credit, counterparty_survival=cpty, counterparty_recovery=r_c, own_survival=own)
        stressed_funding = funding
        if sc.borrow_spread_shift or sc.lend_spread_shift:
            if funding is None:
                raise ValueError(f"scenarios[{i}]: funding shifts need funding spreads")
            borrow, lend = funding.checked(t, exposure.size)
            stressed_funding = FundingSpreads(borrow + sc.borrow_spread_shift, lend + sc.lend_spread_shift)
        stressed_exposure = exposure
        if sc.collateral_fraction is not None:
            if uncollateralised is None:
                raise ValueError(
                    f"scenarios[{i}].collateral_fraction: collateral scenarios need the netting sets' "
                    "uncollateralised exposure profiles (uncollateralised=...)"
                )
            posted = collateralised_profiles(uncollateralised, sc.collateral_fraction, sc.two_way_collateral)
            stressed_exposure = replace(posted, initial_margin=exposure.initial_margin)
        results.append(xva(stressed_exposure, stressed_credit, stressed_funding, capital, options))
    return XvaStressReport(base=base, scenarios=chosen, results=results)
