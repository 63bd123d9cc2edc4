"""Suitability of each structure for each client segment, the variant-to-segment plan and the advisers' pitch.

A structure is scored for a segment from the quant researcher's figures (`StructureFigures`: the
spec and the Monte Carlo probabilities) and the segment's attributes. Five fits, each in [0, 1]:

- risk (weight 0.35): the probability of a capital loss at maturity against the most a tolerance
  accepts (low 5%, medium 15%, high 30%, very high 45%), full fit up to it and falling linearly to
  0 at twice it (60% of the fit); and the distance from the strike to the knock-in barrier against
  the cushion a tolerance asks for (low 45%, medium 35%, high 25%, very high 15%), falling linearly
  to 0 at 20 points short (40%). No barrier with full capital protection fits everyone.
- horizon (0.15): the maturity and the expected life against the segment's horizon (the shortest
  horizon of its members); each is 1 when within it and otherwise 1 - shortfall / figure; the fit
  is their mean.
- complexity (0.25): complexity points (worst-of basket 0.5 per underlying beyond the first, knock-in
  barrier 0.5, conditional coupon 0.5, memory 0.5, step-down or explicit triggers 0.5, daily or
  continuous barrier monitoring 1.0) against what the segment's knowledge carries (basic 1.5,
  informed 3.0, advanced 5.0); 1 within it, falling by 0.5 per point above.
- return appeal (0.15): the coupon p.a. against the return a tolerance looks for (low 3%, medium
  5%, high 7%, very high 9%), capped at 1.
- ticket (0.10): the minimum ticket (10,000 in the note's currency) as a share of the segment's
  median portfolio: 1 up to 5%, falling linearly to 0 at 20% (one note should not concentrate a
  portfolio).

The score is the weighted mean, except that a note the segment cannot bear (capital loss
probability at least twice the tolerance's maximum) or understand (complexity fit 0) is capped at
0.3: no other merit makes it suitable. Each score comes with one short reason per fit naming its
driver.

`plan_distribution` scores every pair and gives each segment its best structures scoring at least
`min_score` (ties: lower capital loss probability, then structure id), each with a value
proposition for advisers built from the figures. A segment with no suitable structure gets no
assignment; `unassigned_segments` lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.structured.segments import HORIZON_BAND_TEXT, Segment, horizon_band, to_event
from bus.events.structured import Assignment, ClientSegment, StructureFigures, Suitability
from engines.structured.spec import AutocallSpec

WEIGHTS: dict[str, float] = {"risk": 0.35, "horizon": 0.15, "complexity": 0.25, "return": 0.15, "ticket": 0.10}
MAX_CAPITAL_LOSS_PROBABILITY = {"low": 0.05, "medium": 0.15, "high": 0.30, "very_high": 0.45}
MIN_BARRIER_DISTANCE = {"low": 0.45, "medium": 0.35, "high": 0.25, "very_high": 0.15}
BARRIER_SHORTFALL_TO_ZERO = 0.20
RETURN_EXPECTATION = {"low": 0.03, "medium": 0.05, "high": 0.07, "very_high": 0.09}
COMPLEXITY_CAPACITY = {"basic": 1.5, "informed": 3.0, "advanced": 5.0}
COMPLEXITY_FIT_PER_POINT = 0.5
MIN_TICKET = 10_000.0
TICKET_SHARE_FULL = 0.05
TICKET_SHARE_ZERO = 0.20
UNSUITABLE_CAP = 0.3
SCORE_DECIMALS = 4
BASKET_TEXT = {"worst_of": "worst of", "best_of": "best of", "average": "average of"}

SegmentLike = Segment | ClientSegment
StructureLike = StructureFigures | Mapping[str, Any]


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


@dataclass(frozen=True)
class Complexity:
    """A note's complexity points and the features that make them up."""

    points: float
    features: tuple[str, ...]


def complexity(spec: AutocallSpec) -> Complexity:
    """Complexity points of a note (see the module docstring) and the features counted."""
    points = 0.0
    features: list[str] = []
    n = len(spec.underlyings)
    if n > 1:
        points += 0.5 * (n - 1)
        features.append(f"{n}-asset {spec.basket.replace('_', '-')}")
    if spec.knock_in is not None:
        points += 0.5
        features.append("knock-in barrier")
        if spec.knock_in.monitoring != "european":
            points += 1.0
            features.append(f"{spec.knock_in.monitoring} barrier")
    if spec.coupon.conditional and spec.coupon.rate > 0:
        points += 0.5
        features.append("conditional coupon")
        if spec.coupon.memory:
            points += 0.5
            features.append("memory coupon")
    if spec.autocall.step_down > 0 or spec.autocall.triggers is not None:
        points += 0.5
        features.append("step-down trigger")
    return Complexity(points=points, features=tuple(features))


def barrier_distance(spec: AutocallSpec) -> float:
    """How far the underlying(s) can fall before the capital is at risk: strike minus knock-in barrier.

    Capital protection and a downside buffer add to it; with no barrier, the capital is at risk
    below the strike (distance 0) unless fully protected (distance 1).
    """
    if spec.capital_protection >= 1.0:
        return 1.0
    barrier = spec.knock_in.barrier if spec.knock_in is not None else spec.strike
    return max(0.0, 1.0 - barrier) + spec.downside_buffer


@dataclass(frozen=True)
class _Segment:
    segment_id: str
    label: str
    risk_tolerance: str
    sophistication: str
    horizon_years: float
    median_portfolio: float


def _segment(segment: SegmentLike, note_per_eur: float) -> _Segment:
    event = to_event(segment, note_per_eur) if isinstance(segment, Segment) else segment
    if event.risk_tolerance not in MAX_CAPITAL_LOSS_PROBABILITY:
        raise ValueError(f"segment {event.segment_id}: unknown risk_tolerance {event.risk_tolerance!r}")
    if event.sophistication not in COMPLEXITY_CAPACITY:
        raise ValueError(f"segment {event.segment_id}: unknown sophistication {event.sophistication!r}")
    return _Segment(
        segment_id=event.segment_id,
        label=event.label,
        risk_tolerance=event.risk_tolerance,
        sophistication=event.sophistication,
        horizon_years=event.horizon_years,
        median_portfolio=event.median_portfolio,
    )


def _structure(structure: StructureLike) -> tuple[StructureFigures, AutocallSpec]:
    figures = structure if isinstance(structure, StructureFigures) else StructureFigures.model_validate(structure)
    try:
        spec = AutocallSpec.model_validate(figures.spec)
    except ValueError as exc:
        raise ValueError(f"structure {figures.structure_id}: spec is not a valid AutocallSpec: {exc}") from exc
    return figures, spec


def _risk_fit(figures: StructureFigures, spec: AutocallSpec, tolerance: str) -> tuple[float, float, str]:
    """(risk fit, capital-loss part, reason)."""
    cap = MAX_CAPITAL_LOSS_PROBABILITY[tolerance]
    clp = figures.capital_loss_probability
    loss_fit = _clip(1.0 - (clp - cap) / cap)
    need = MIN_BARRIER_DISTANCE[tolerance]
    distance = barrier_distance(spec)
    barrier_fit = _clip(1.0 - max(0.0, need - distance) / BARRIER_SHORTFALL_TO_ZERO)
    fit = 0.6 * loss_fit + 0.4 * barrier_fit
    loss_text = f"capital loss probability {_pct(clp)} {'within' if clp <= cap else 'above'} {_pct(cap)}"
    barrier_text = f"barrier distance {_pct(distance)} {'meets' if distance >= need else 'short of'} {_pct(need)}"
    return fit, loss_fit, f"risk {fit:.2f}: {loss_text}, {barrier_text} for {tolerance.replace('_', ' ')} tolerance"


def _horizon_fit(figures: StructureFigures, spec: AutocallSpec, horizon: float) -> tuple[float, str]:
    maturity = spec.maturity_years
    life = max(figures.expected_life_years, 0.0)
    maturity_fit = 1.0 if maturity <= horizon else _clip(1.0 - (maturity - horizon) / maturity)
    life_fit = 1.0 if life <= horizon else _clip(1.0 - (life - horizon) / life)
    fit = 0.5 * (maturity_fit + life_fit)
    text = f"horizon {fit:.2f}: maturity {maturity:g}y, expected life {life:.1f}y vs {horizon:g}y (shortest horizon)"
    return fit, text


def _complexity_fit(spec: AutocallSpec, sophistication: str) -> tuple[float, str]:
    c = complexity(spec)
    capacity = COMPLEXITY_CAPACITY[sophistication]
    fit = _clip(1.0 - COMPLEXITY_FIT_PER_POINT * max(0.0, c.points - capacity))
    features = ", ".join(c.features) or "plain note"
    verdict = "within" if c.points <= capacity else "above"
    return (
        fit,
        f"complexity {fit:.2f}: {c.points:g} points ({features}) {verdict} {sophistication} capacity {capacity:g}",
    )


def _return_fit(figures: StructureFigures, tolerance: str) -> tuple[float, str]:
    expected = RETURN_EXPECTATION[tolerance]
    fit = _clip(figures.coupon_rate / expected)
    return fit, f"return {fit:.2f}: coupon {100 * figures.coupon_rate:.1f}% p.a. vs {_pct(expected)} sought"


def _ticket_fit(median_portfolio: float, currency: str) -> tuple[float, str]:
    share = MIN_TICKET / median_portfolio if median_portfolio > 0 else float("inf")
    fit = _clip((TICKET_SHARE_ZERO - share) / (TICKET_SHARE_ZERO - TICKET_SHARE_FULL))
    return fit, f"ticket {fit:.2f}: minimum {MIN_TICKET:,.0f} {currency} is {100 * share:.1f}% of the median portfolio"


@dataclass(frozen=True)
class SuitabilityScore:
    """A structure's score for a segment, its fits per component and the reasons."""

    score: float
    fits: dict[str, float]
    reasons: tuple[str, ...]


def suitability_breakdown(
    structure: StructureLike, segment: SegmentLike, *, note_per_eur: float = 1.0
) -> SuitabilityScore:
    """The score with its component fits (see the module docstring)."""
    figures, spec = _structure(structure)
    seg = _segment(segment, note_per_eur)
    risk_fit, loss_fit, risk_text = _risk_fit(figures, spec, seg.risk_tolerance)
    parts = {
        "risk": (risk_fit, risk_text),
        "horizon": _horizon_fit(figures, spec, seg.horizon_years),
        "complexity": _complexity_fit(spec, seg.sophistication),
        "return": _return_fit(figures, seg.risk_tolerance),
        "ticket": _ticket_fit(seg.median_portfolio, spec.currency),
    }
    fits = {name: fit for name, (fit, _) in parts.items()}
    score = sum(WEIGHTS[name] * fit for name, fit in fits.items())
    reasons = [text for _, text in parts.values()]
    if loss_fit == 0.0 or fits["complexity"] == 0.0:
        score = min(score, UNSUITABLE_CAP)
        blocker = "capital loss probability" if loss_fit == 0.0 else "complexity"
        reasons.insert(0, f"unsuitable: {blocker} beyond what the segment can bear (score capped at {UNSUITABLE_CAP})")
    return SuitabilityScore(score=round(_clip(score), SCORE_DECIMALS), fits=fits, reasons=tuple(reasons))


def score_suitability(
    structure: StructureLike, segment: SegmentLike, *, note_per_eur: float = 1.0
) -> tuple[float, list[str]]:
    """The suitability of a structure for a segment, in [0, 1], with one short reason per component.

    `structure` is a `StructureFigures` (or its dict); `segment` a `Segment` or its `ClientSegment`
    event. `note_per_eur` converts a `Segment`'s EUR portfolio into the note's currency.
    """
    result = suitability_breakdown(structure, segment, note_per_eur=note_per_eur)
    return result.score, list(result.reasons)


# ----------------------------------------------------------------------------------------------
# the plan


def _who(seg: _Segment, segment: SegmentLike) -> str:
    band = segment.horizon_band if isinstance(segment, Segment) else horizon_band(seg.horizon_years)
    return (
        f"{seg.risk_tolerance.replace('_', ' ')}-tolerance, {seg.sophistication} clients "
        f"with a {HORIZON_BAND_TEXT[band].replace(' horizon', '')} horizon"
    )


def value_proposition(structure: StructureLike, segment: SegmentLike, *, note_per_eur: float = 1.0) -> str:
    """A short pitch for advisers: coupon, autocall, barrier, maturity, loss probability, who it suits and why."""
    figures, spec = _structure(structure)
    seg = _segment(segment, note_per_eur)
    result = suitability_breakdown(figures, segment, note_per_eur=note_per_eur)
    if len(spec.underlyings) == 1:
        names = spec.underlyings[0]
    else:
        names = f"the {BASKET_TEXT[spec.basket]} {', '.join(spec.underlyings)}"
    coupon_kind = (
        ("conditional coupon with memory" if spec.coupon.memory else "conditional coupon")
        if spec.coupon.conditional
        else "fixed coupon"
    )
    frequency = (spec.schedule.frequency or "scheduled").replace("_", "-")
    if spec.knock_in is not None:
        monitoring = "observed at maturity" if spec.knock_in.monitoring == "european" else "monitored daily"
        barrier = f"capital protected unless {names} falls below {_pct(spec.knock_in.barrier)} ({monitoring})"
    elif spec.capital_protection >= 1.0:
        barrier = "capital fully protected at maturity"
    else:
        barrier = (
            f"no barrier: capital at risk below {_pct(spec.strike)} (protected to {_pct(spec.capital_protection)})"
        )
    strengths = sorted((n for n, f in result.fits.items() if f >= 0.8), key=lambda n: (-result.fits[n], n))
    why = {
        "risk": "risk within tolerance",
        "horizon": "fits the horizon",
        "complexity": "features they understand",
        "return": "the income they look for",
        "ticket": "a ticket small against the portfolio",
    }
    because = ", ".join(why[n] for n in strengths[:3]) or "the best available fit"
    return (
        f"{100 * figures.coupon_rate:.2f}% p.a. {coupon_kind} on {names}, observed {frequency}; "
        f"{_pct(figures.autocall_probability)} probability of early redemption "
        f"(expected life {figures.expected_life_years:.1f}y, maturity {spec.maturity_years:g}y); "
        f"{barrier}; {_pct(figures.capital_loss_probability)} probability of a capital loss at maturity. "
        f"Suits {_who(seg, segment)}: {because} (suitability {result.score:.2f}). "
        f"Minimum ticket {MIN_TICKET:,.0f} {spec.currency}."
    )


def plan_distribution(
    structures: Sequence[StructureLike],
    segments: Sequence[SegmentLike],
    min_score: float = 0.5,
    max_per_segment: int = 1,
    *,
    note_per_eur: float = 1.0,
) -> tuple[list[Suitability], list[Assignment]]:
    """Score every structure for every segment and assign each segment its best suitable structures.

    Returns the suitability matrix (segments in the given order, structures in the given order
    within each) and the assignments: per segment, up to `max_per_segment` structures scoring at
    least `min_score`, best first (ties: lower capital loss probability, then structure id), each
    with its value proposition. Segments with no structure at or above `min_score` get none.
    """
    if not 0.0 <= min_score <= 1.0:
        raise ValueError(f"min_score: must be in [0, 1], got {min_score}")
    if max_per_segment < 1:
        raise ValueError(f"max_per_segment: must be at least 1, got {max_per_segment}")
    parsed = [_structure(s) for s in structures]
    ids = [f.structure_id for f, _ in parsed]
    if len(set(ids)) != len(ids):
        raise ValueError("structures: structure ids must be distinct")
    segment_ids = [s.segment_id for s in segments]
    if len(set(segment_ids)) != len(segment_ids):
        raise ValueError("segments: segment ids must be distinct")

    suitability: list[Suitability] = []
    assignments: list[Assignment] = []
    for segment in segments:
        scored = []
        for figures, _ in parsed:
            result = suitability_breakdown(figures, segment, note_per_eur=note_per_eur)
            suitability.append(
                Suitability(
                    structure_id=figures.structure_id,
                    segment_id=segment.segment_id,
                    score=result.score,
                    reasons=list(result.reasons),
                )
            )
            if result.score >= min_score:
                scored.append((result.score, figures))
        scored.sort(key=lambda item: (-item[0], item[1].capital_loss_probability, item[1].structure_id))
        for score, figures in scored[:max_per_segment]:
            assignments.append(
                Assignment(
                    segment_id=segment.segment_id,
                    structure_id=figures.structure_id,
                    score=score,
                    value_proposition=value_proposition(figures, segment, note_per_eur=note_per_eur),
                )
            )
    return suitability, assignments


def unassigned_segments(segments: Iterable[SegmentLike], assignments: Iterable[Assignment]) -> list[str]:
    """The ids of the segments no structure was assigned to, in the given order."""
    assigned = {a.segment_id for a in assignments}
    return [s.segment_id for s in segments if s.segment_id not in assigned]
