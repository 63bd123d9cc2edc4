"""Stressed margin: the book's initial margin under volatility multipliers and a correlation breakdown,
beside the baseline, per venue, counterparty, manager, strategy, currency and asset class.

Scenarios (`stress_scenarios`): each vol multiplier m (default 2, 5, 10) alone; the correlation
breakdown alone; and the breakdown together with each multiplier.

- Vol multiplier at a CCP: today's volatility, the target of the FHS revolatilisation, is multiplied
  by m, so every FHS scenario is m times larger; for a linear book the core margin is exactly m
  times the baseline. The anti-procyclicality tools then act as EMIR intends: the buffer is released
  against the unstressed past, the ten-year floor and the stressed observations (history) stay where
  they are. The concentration add-on moves with σ (×m); the liquidity add-on (spreads on notional)
  does not.
- Correlation breakdown at a CCP: diversification across asset classes is removed within each venue —
  its core and APC margin is the sum of those of its rates, FX, equity, credit and commodity
  sub-portfolios, each run through the venue's model (hedges within a class, e.g. along a curve,
  still offset; across classes nothing does). Add-ons are those of the same vol multiplier.
- Bilateral (SIMM) venues: SIMM is computed from sensitivities and a fixed calibration, so a vol
  shock does not move it. With ``bilateral="scaled"`` (default) the shock is applied as a stressed
  calibration with every SIMM risk weight multiplied by m, which multiplies the SIMM figure by m
  (SIMM's margins are homogeneous of degree one in the weighted sensitivities); the correlation
  breakdown replaces the aggregation of risk classes with ψ by their sum. With ``"unchanged"`` SIMM
  stays at its baseline in every scenario. Independent amounts never move. The treatment used is in
  the result (`bilateral_treatment`).

Position pieces: CCP margins by their Euler allocation under each scenario; SIMM pieces scaled with
their venue's figure; so every breakdown adds up to the venue totals in every scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engines.margin import ccp
from engines.margin.baseline import (
    DIMENSIONS,
    BaselineMargin,
    LoadedBookLike,
    baseline_margin,
    group_sums,
    venue_models,
)

Progress = Callable[[int, int], None] | None
BilateralTreatment = Literal["scaled", "unchanged"]

BILATERAL_NOTES: dict[str, str] = {
    "scaled": "SIMM risk weights multiplied by the vol multiplier (SIMM × m); correlation breakdown: "
    "risk classes summed instead of aggregated with psi; independent amounts unchanged",
    "unchanged": "SIMM is sensitivity-based and left at its baseline in every scenario; independent amounts unchanged",
}


@dataclass(frozen=True)
class StressScenario:
    """A stress: today's vol times `vol_multiplier`, with or without the correlation breakdown."""

    name: str
    vol_multiplier: float
    correlation_breakdown: bool


def stress_scenarios(
    multipliers: Sequence[float] = (2.0, 5.0, 10.0), *, correlation_breakdown: bool = True
) -> list[StressScenario]:
    """Each multiplier alone; then the breakdown alone and with each multiplier (module docstring)."""
    ms = [float(m) for m in multipliers]
    if any(not (m > 0 and np.isfinite(m)) for m in ms):
        raise ValueError(f"multipliers: must be positive numbers, got {list(multipliers)}")
    out = [StressScenario(f"vol x{m:g}", m, False) for m in ms]
    if correlation_breakdown:
        out.append(StressScenario("correlation breakdown", 1.0, True))
        out += [StressScenario(f"vol x{m:g} + correlation breakdown", m, True) for m in ms]
    return out


@dataclass(frozen=True, eq=False)
class StressedMargin:
    """IM per venue and position under each scenario; row 0 is the baseline.

    `venue_im_usd[s, v]` and `position_im_usd[s, p]` (USD) for s = 0 (baseline) and the scenarios.
    """

    scenarios: tuple[StressScenario, ...]  # without the baseline
    venues: tuple[str, ...]
    venue_is_ccp: np.ndarray
    venue_currency: tuple[str, ...]
    venue_im_usd: np.ndarray  # [S + 1, V]
    position_im_usd: np.ndarray  # [S + 1, P]
    bilateral_treatment: BilateralTreatment
    labels: dict[str, tuple[np.ndarray, tuple[str, ...]]]

    @property
    def names(self) -> tuple[str, ...]:
        return ("baseline", *(s.name for s in self.scenarios))

    @property
    def total_usd(self) -> np.ndarray:
        return self.venue_im_usd.sum(axis=1)

    @property
    def ccp_usd(self) -> np.ndarray:
        return self.venue_im_usd[:, self.venue_is_ccp].sum(axis=1)

    @property
    def bilateral_usd(self) -> np.ndarray:
        return self.venue_im_usd[:, ~self.venue_is_ccp].sum(axis=1)

    def breakdown(self, dimension: str) -> dict[str, list[float]]:
        """{label: [IM under baseline and each scenario]} along one of `DIMENSIONS`."""
        if dimension == "venue":
            return {v: self.venue_im_usd[:, i].tolist() for i, v in enumerate(self.venues)}
        if dimension == "counterparty":
            return {v: self.venue_im_usd[:, i].tolist() for i, v in enumerate(self.venues) if not self.venue_is_ccp[i]}
        if dimension == "currency":
            out: dict[str, list[float]] = {}
            for c in sorted(set(self.venue_currency)):
                cols = np.array([x == c for x in self.venue_currency])
                out[c] = self.venue_im_usd[:, cols].sum(axis=1).tolist()
            return out
        if dimension not in self.labels:
            raise ValueError(f"dimension: one of {', '.join(DIMENSIONS)}, got {dimension!r}")
        labels, names = self.labels[dimension]
        rows = [group_sums(row, labels, names) for row in self.position_im_usd]
        return {k: [r[k] for r in rows] for k in rows[0]}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: scenarios, totals per scenario and every breakdown."""
        base = self.total_usd[0]
        return {
            "scenarios": [{"name": "baseline", "vol_multiplier": 1.0, "correlation_breakdown": False}]
            + [vars(s) for s in self.scenarios],
            "bilateral_treatment": self.bilateral_treatment,
            "bilateral_note": BILATERAL_NOTES[self.bilateral_treatment],
            "totals": {
                name: {
                    "im_usd": float(t),
                    "ccp_im_usd": float(c),
                    "bilateral_im_usd": float(b),
                    "increase_usd": float(t - base),
                    "ratio_to_baseline": float(t / base) if base > 0 else None,
                }
                for name, t, c, b in zip(self.names, self.total_usd, self.ccp_usd, self.bilateral_usd, strict=True)
            },
            "breakdowns": {d: self.breakdown(d) for d in DIMENSIONS},
        }


def stressed_margin(
    loaded: LoadedBookLike,
    *,
    multipliers: Sequence[float] = (2.0, 5.0, 10.0),
    correlation_breakdown: bool = True,
    bilateral: BilateralTreatment = "scaled",
    baseline: BaselineMargin | None = None,
    options: ccp.CcpOptions | None = None,
    progress: Progress = None,
) -> StressedMargin:
    """Baseline and stressed IM of a loaded book per venue and position (see the module docstring).

    `baseline` reuses a computed baseline (it must be of the same book); SIMM runs once.
    """
    if bilateral not in BILATERAL_NOTES:
        raise ValueError(f"bilateral: one of {', '.join(BILATERAL_NOTES)}, got {bilateral!r}")
    scenarios = stress_scenarios(multipliers, correlation_breakdown=correlation_breakdown)
    total = len(scenarios) + 1
    if progress:
        progress(0, total)
    base = baseline if baseline is not None else baseline_margin(loaded, options=options)
    if progress:
        progress(1, total)
    arrays, history = loaded.arrays, loaded.history
    models = venue_models(loaded.book)
    bm = base.bilateral
    venue_rows = [base.venue_im_usd]
    position_rows = [base.position_im_usd]
    undiversified = np.divide(bm.breakdown_sum_usd, bm.simm_usd, out=np.ones_like(bm.simm_usd), where=bm.simm_usd > 0)
    memos: dict[bool, dict] = {False: {}, True: {}}  # one per row layout: venues, venues by asset class
    for i, sc in enumerate(scenarios):
        cm = ccp.ccp_initial_margin(
            arrays,
            history,
            models,
            vol_multiplier=sc.vol_multiplier,
            options=options,
            by_asset_class=sc.correlation_breakdown,
            memo=memos[sc.correlation_breakdown],
        )
        factor = np.ones(len(arrays.venues))
        if bilateral == "scaled":
            factor = factor * sc.vol_multiplier * (undiversified if sc.correlation_breakdown else 1.0)
        v = arrays.position_venue
        venue_rows.append(cm.total_usd + bm.simm_usd * factor + bm.independent_amount_usd)
        position_rows.append(
            cm.position_total_usd + bm.position_simm_usd * factor[v] + bm.position_independent_amount_usd
        )
        if progress:
            progress(i + 2, total)
    return StressedMargin(
        scenarios=tuple(scenarios),
        venues=base.venues,
        venue_is_ccp=base.venue_is_ccp,
        venue_currency=base.venue_currency,
        venue_im_usd=np.array(venue_rows),
        position_im_usd=np.array(position_rows),
        bilateral_treatment=bilateral,
        labels=base.labels,
    )
