"""The market strategist's test of a structure's pricing assumptions against the scenario set.

A note is priced under one market (ATM vols, a correlation matrix) and the pricing reports
probabilities (knock-in, early call). `check_assumptions` asks whether the scenarios of
`engines.structured.scenarios` contradict them, and rejects each assumption they do, naming the
scenario ids that contradict it. Only scenarios that carry every underlying of the note count;
"horizons within the life" are horizons of at most the note's maturity.

Weights. Forward scenarios carry probabilities that sum to 1 within a horizon; a figure taken
"over horizons within the life" weights each such horizon equally (each scenario by its
probability divided by its horizon's total and by the number of horizons). Historical scenarios
carry plausibility weights and are used only where the checks say so.

The checks (tolerances are the module constants):

(a) volatility, per underlying: the pricing ATM vol at the note's maturity against the
    probability-weighted realised vol of the forward scenarios (root of the weighted mean variance):
    rejected if the scenarios imply more than `VOL_RATIO_LIMIT` (1.25) times the pricing vol. A note
    priced at too low a vol undervalues the barrier the client has sold.
(b) correlation, worst-of baskets of two or more: the pricing average pairwise correlation against
    the probability-weighted correlation of the forward scenarios in the stressed and crisis
    regimes (the historical ones in those regimes, by plausibility, if there are no forward ones):
    rejected if the pricing correlation exceeds it by more than `CORRELATION_EXCESS_LIMIT` (0.15).
    Direction: a worst-of loses when any one underlying falls, so the lower the correlation the more
    the underlyings disperse and the likelier the worst one ends below the barrier. A pricing
    correlation ABOVE what the stress regimes show understates the knock-in probability and
    overstates the note's value to the client; one below them is conservative and passes. (Stress
    regimes usually raise correlations; a stress set whose correlations are lower than the pricing
    one is exactly the case where the pricing is too optimistic.)
(c) barrier: per horizon within the life, the weighted share of forward scenarios whose basket
    (worst-of: the worst underlying) ends below the knock-in barrier; the largest share over those
    horizons is a lower bound of the probability of being below the barrier at some point of the
    life (ignoring early calls, hence the slack). Rejected if it exceeds
    `BARRIER_RATIO_LIMIT` × the priced knock-in probability + `BARRIER_MARGIN` (1.5× + 0.05).
(d) autocall: at the horizon of the first callable observation (a scenario horizon within half a
    month of it), the weighted share of forward scenarios whose basket is at or above the trigger,
    against the priced probability of a call at that date (`figures["first_call_probability"]`;
    skipped when absent): rejected if they differ by more than `AUTOCALL_TOLERANCE` (0.25, the
    five-quantile scenario set resolves probabilities no finer than its bands).
(e) historical episodes: the episodes whose replay within the life ends below the barrier are
    listed in `notes`; the assumption is rejected only if the priced knock-in probability is below
    `EPISODE_KNOCK_IN_FLOOR` (1%): a documented episode breached it, so it is not that remote.

`figures` carries the priced `autocall_probability` (any early call), `knock_in_probability`,
`capital_loss_probability` and `expected_life_years` (fractions and years), and optionally
`first_call_probability`; `pricing_figures` builds it from a `PriceResult.to_dict()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from engines.structured.market import MarketData, atm_total_variance
from engines.structured.scenarios import Scenario
from engines.structured.spec import AutocallSpec

VOL_RATIO_LIMIT = 1.25
"""Scenario realised vol may be at most this multiple of the pricing ATM vol."""
CORRELATION_EXCESS_LIMIT = 0.15
"""The pricing average correlation may exceed the stress-regime correlation of the scenarios by at most this."""
STRESS_REGIMES = ("stressed", "crisis")
BARRIER_RATIO_LIMIT = 1.5
BARRIER_MARGIN = 0.05
"""The scenarios' share below the barrier may be at most 1.5 × priced knock-in probability + 0.05."""
AUTOCALL_TOLERANCE = 0.25
"""Largest absolute gap between the scenarios' share at or above the first trigger and the priced first call."""
EPISODE_KNOCK_IN_FLOOR = 0.01
"""A priced knock-in probability below this is contradicted by any historical episode breaching the barrier."""
HORIZON_MATCH_MONTHS = 0.5


class Rejection(NamedTuple):
    """A rejected assumption: which, why (with the numbers), and the scenario ids that contradict it."""

    assumption: str
    reason: str
    scenarios: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The event payload `RejectedAssumption`."""
        return {"assumption": self.assumption, "reason": self.reason, "scenarios": list(self.scenarios)}


@dataclass(frozen=True)
class AssumptionCheck:
    """The verdict on one structure: accepted when nothing is rejected; `notes` say what was checked or skipped."""

    structure_id: str
    accepted: bool
    rejected: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The event payload `StructureAssumptions` (structure_id, accepted, rejected)."""
        return {
            "structure_id": self.structure_id,
            "accepted": self.accepted,
            "rejected": [r.to_dict() for r in self.rejected],
        }


def pricing_figures(spec: AutocallSpec, result: Mapping[str, Any]) -> dict[str, float]:
    """The `figures` of `check_assumptions` from a `PriceResult.to_dict()` of `spec`.

    `autocall_probability` there is per observation; here it is their sum (any early call), and the
    entry at the first callable observation is `first_call_probability`.
    """
    per_date = np.asarray(result["autocall_probability"], dtype=np.float64)
    first = int(np.flatnonzero(np.isfinite(spec.triggers()))[0])
    return {
        "autocall_probability": float(per_date.sum()),
        "first_call_probability": float(per_date[first]),
        "knock_in_probability": float(result["knock_in_probability"]),
        "capital_loss_probability": float(result["capital_loss_probability"]),
        "expected_life_years": float(result["expected_life_years"]),
    }


def _basket(spec: AutocallSpec, s: Scenario) -> float:
    """The basket performance (1 = initial level) at the end of a scenario."""
    perf = np.array([1.0 + s.equity_return[u] for u in spec.underlyings])
    if spec.basket == "worst_of":
        return float(perf.min())
    if spec.basket == "best_of":
        return float(perf.max())
    return float(perf.mean())


def _horizon_weights(scenarios: list[Scenario]) -> np.ndarray:
    """Each scenario's probability / its horizon's total / number of horizons (sums to 1)."""
    horizons = np.array([s.horizon_months for s in scenarios])
    p = np.array([s.probability for s in scenarios], dtype=np.float64)
    unique = np.unique(horizons)
    totals = {h: p[horizons == h].sum() for h in unique}
    return np.array([pi / totals[h] if totals[h] > 0 else 0.0 for pi, h in zip(p, horizons, strict=True)]) / len(unique)


def _pricing_vol(market: MarketData, name: str, t: float) -> float:
    times, vols = market.underlyings[name].atm_vols()
    return float(np.sqrt(atm_total_variance(times, vols, t) / t))


def check_assumptions(
    spec: AutocallSpec,
    figures: Mapping[str, float],
    market: MarketData,
    scenarios: Sequence[Scenario],
) -> AssumptionCheck:
    """Checks (a)-(e) of the module docstring for one structure priced under `market` with `figures`."""
    missing = [u for u in spec.underlyings if u not in market.underlyings]
    if missing:
        raise KeyError(f"underlyings: no market data for {missing}; have {list(market.underlyings)}")
    life_months = spec.maturity_years * 12 + 1e-9
    usable = [s for s in scenarios if all(u in s.equity_return and u in s.realised_vol for u in spec.underlyings)]
    forward = [s for s in usable if s.kind == "forward" and s.horizon_months <= life_months]
    historical = [s for s in usable if s.kind == "historical" and s.horizon_months <= life_months]
    rejected: list[Rejection] = []
    notes: list[str] = []
    if not forward:
        notes.append("no forward scenario on these underlyings within the life: checks (a)-(d) skipped")
    else:
        rejected += _check_volatility(spec, market, forward, notes)
        rejected += _check_correlation(spec, market, forward, historical, notes)
        rejected += _check_barrier(spec, figures, forward, notes)
        rejected += _check_autocall(spec, figures, forward, notes)
    rejected += _check_episodes(spec, figures, historical, notes)
    return AssumptionCheck(structure_id=spec.name, accepted=not rejected, rejected=rejected, notes=notes)


def _check_volatility(spec: AutocallSpec, market: MarketData, fwd: list[Scenario], notes: list[str]) -> list[Rejection]:
    weights = _horizon_weights(fwd)
    out = []
    for u in spec.underlyings:
        pricing = _pricing_vol(market, u, spec.maturity_years)
        vols = np.array([s.realised_vol[u] for s in fwd])
        implied = float(np.sqrt(weights @ vols**2))
        ratio = implied / pricing
        notes.append(f"volatility {u}: scenarios {implied:.2%} vs pricing {pricing:.2%} (x{ratio:.2f})")
        if ratio > VOL_RATIO_LIMIT:
            above = vols > VOL_RATIO_LIMIT * pricing
            ids = [s.scenario_id for s, a in zip(fwd, above if above.any() else vols > pricing, strict=True) if a]
            out.append(
                Rejection(
                    f"volatility:{u}",
                    f"the forward scenarios realise {implied:.2%} on {u} over the life, {ratio:.2f}x the pricing ATM "
                    f"vol {pricing:.2%} at {spec.maturity_years:g}y (limit {VOL_RATIO_LIMIT:g}x)",
                    ids,
                )
            )
    return out


def _check_correlation(
    spec: AutocallSpec, market: MarketData, fwd: list[Scenario], hist: list[Scenario], notes: list[str]
) -> list[Rejection]:
    n = len(spec.underlyings)
    if spec.basket != "worst_of" or n < 2:
        notes.append("correlation: not a worst-of basket of two or more, not checked")
        return []
    matrix = market.correlation_for(list(spec.underlyings)).matrix
    pricing = float(matrix[~np.eye(n, dtype=bool)].mean())
    stress = [s for s in fwd if s.regime in STRESS_REGIMES] or [s for s in hist if s.regime in STRESS_REGIMES]
    p = np.array([s.probability for s in stress], dtype=np.float64)
    if not stress or p.sum() <= 0:
        notes.append("correlation: no stressed or crisis scenario within the life, not checked")
        return []
    rho = np.array([s.correlation for s in stress])
    level = float(p @ rho / p.sum())
    notes.append(f"correlation: pricing {pricing:.3f} vs stressed/crisis scenarios {level:.3f}")
    if pricing - level <= CORRELATION_EXCESS_LIMIT:
        return []
    low = rho < pricing - CORRELATION_EXCESS_LIMIT
    ids = [s.scenario_id for s, x in zip(stress, low if low.any() else rho < pricing, strict=True) if x]
    return [
        Rejection(
            "correlation",
            f"the worst-of is priced at an average correlation {pricing:.3f}, {pricing - level:.3f} above the "
            f"{level:.3f} of the stressed and crisis scenarios (limit {CORRELATION_EXCESS_LIMIT:g}): too high a "
            "correlation understates the dispersion of the underlyings and the knock-in risk of the worst one",
            ids,
        )
    ]


def _check_barrier(
    spec: AutocallSpec, figures: Mapping[str, float], fwd: list[Scenario], notes: list[str]
) -> list[Rejection]:
    if spec.knock_in is None:
        notes.append("barrier: the note has no knock-in barrier")
        return []
    if "knock_in_probability" not in figures:
        notes.append("barrier: no priced knock_in_probability, not checked")
        return []
    barrier = spec.knock_in.barrier
    priced = float(figures["knock_in_probability"])
    horizons = np.array([s.horizon_months for s in fwd])
    p = np.array([s.probability for s in fwd], dtype=np.float64)
    below = np.array([_basket(spec, s) < barrier for s in fwd])
    shares = {int(h): float(p[(horizons == h) & below].sum() / max(p[horizons == h].sum(), 1e-300))
              for h in np.unique(horizons)}  # fmt: skip
    at, share = max(shares.items(), key=lambda kv: (kv[1], -kv[0]))
    limit = BARRIER_RATIO_LIMIT * priced + BARRIER_MARGIN
    notes.append(f"barrier {barrier:g}: scenarios {share:.1%} below at {at} months vs priced knock-in {priced:.1%}")
    if share <= limit:
        return []
    return [
        Rejection(
            "barrier",
            f"{share:.1%} of the weighted scenarios end below the {barrier:g} barrier at {at} months, above "
            f"{BARRIER_RATIO_LIMIT:g} x the priced knock-in probability {priced:.2%} + {BARRIER_MARGIN:g} "
            f"= {limit:.1%}",
            [s.scenario_id for s, b in zip(fwd, below, strict=True) if b],
        )
    ]


def _check_autocall(
    spec: AutocallSpec, figures: Mapping[str, float], fwd: list[Scenario], notes: list[str]
) -> list[Rejection]:
    if "first_call_probability" not in figures:
        notes.append("autocall: no priced first_call_probability, not checked")
        return []
    triggers = spec.triggers()
    first = int(np.flatnonzero(np.isfinite(triggers))[0])
    trigger = float(triggers[first])
    month = float(spec.observation_times()[first]) * 12
    at = [s for s in fwd if abs(s.horizon_months - month) <= HORIZON_MATCH_MONTHS]
    p = np.array([s.probability for s in at], dtype=np.float64)
    if not at or p.sum() <= 0:
        notes.append(f"autocall: no scenario horizon at the first callable date ({month:g} months), not checked")
        return []
    called = np.array([_basket(spec, s) >= trigger for s in at])
    share = float(p[called].sum() / p.sum())
    priced = float(figures["first_call_probability"])
    notes.append(f"autocall: scenarios {share:.1%} at or above {trigger:g} at {month:g} months vs priced {priced:.1%}")
    if abs(share - priced) <= AUTOCALL_TOLERANCE:
        return []
    contradicting = ~called if priced > share else called
    return [
        Rejection(
            "autocall",
            f"{share:.1%} of the weighted scenarios are at or above the {trigger:g} trigger at the first callable "
            f"date ({month:g} months) against a priced call probability {priced:.1%} there "
            f"(tolerance {AUTOCALL_TOLERANCE:g})",
            [s.scenario_id for s, c in zip(at, contradicting, strict=True) if c],
        )
    ]


def _check_episodes(
    spec: AutocallSpec, figures: Mapping[str, float], hist: list[Scenario], notes: list[str]
) -> list[Rejection]:
    if spec.knock_in is None or not hist:
        return []
    barrier = spec.knock_in.barrier
    breaching = [s for s in hist if _basket(spec, s) < barrier]
    if not breaching:
        notes.append(f"historical: no episode within the life breaches the {barrier:g} barrier")
        return []
    ids = [s.scenario_id for s in breaching]
    notes.append(f"historical: episodes breaching the {barrier:g} barrier within the life: {', '.join(ids)}")
    priced = figures.get("knock_in_probability")
    if priced is None or float(priced) >= EPISODE_KNOCK_IN_FLOOR:
        return []
    return [
        Rejection(
            "historical_barrier",
            f"the priced knock-in probability {float(priced):.2%} is below {EPISODE_KNOCK_IN_FLOOR:.0%}, yet "
            f"{len(breaching)} historical episode replays end below the {barrier:g} barrier within the life",
            ids,
        )
    ]
