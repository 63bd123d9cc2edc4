"""The desk integrator: one ranked, documented proposal from the five agents' conclusions.

When a request has its structures, stress results, distribution plan and compliance review, each
structure gets five component scores in [0, 1] — client value (mean client IRR, scaled between
the lowest and highest of the request), issuer margin (reach of the target margin), risk (1 -
capital at risk / the limit, floored at 0), distribution (its best suitability over the segments it
may be offered to), compliance (1 approve, 0.6 approve with conditions, 0 reject) — and the score
is their weighted sum with the desk's weights (0.3, 0.2, 0.2, 0.15, 0.15). The Pareto-optimal set
is the structures no other structure beats on every component. A structure is eligible when it
passes the risk limits, is not rejected by compliance and has at least one segment it may be
offered to; the recommendation is the best-scoring eligible structure of the Pareto set (or of
all eligible ones), proposed to the segments assigned to it that compliance allows, never to a
segment in its negative target market. With nothing eligible the proposal says so and why.
"""

from __future__ import annotations

from typing import Any

from agents.structured.desk_agent import DeskAgent
from bus.events.structured import DocumentRef, ProductProposalPublished, RankedStructure
from bus.runtime.actor import HandlerContext

WEIGHTS = {"client_value": 0.3, "issuer_margin": 0.2, "risk": 0.2, "distribution": 0.15, "compliance": 0.15}
COMPLIANCE_SCORE = {"approve": 1.0, "approve_with_conditions": 0.6, "reject": 0.0}


def pareto_front(components: dict[str, dict[str, float]]) -> set[str]:
    """The ids whose components no other id matches or beats everywhere while beating somewhere."""
    ids = list(components)
    front = set()
    for a in ids:
        ca = components[a]
        dominated = any(
            all(components[b][k] >= ca[k] for k in ca) and any(components[b][k] > ca[k] for k in ca)
            for b in ids
            if b != a
        )
        if not dominated:
            front.add(a)
    return front


def rank(parts: dict[str, Any]) -> tuple[list[RankedStructure], dict[str, list[str]]]:
    """Rank the request's structures; also returns the segments each may be proposed to."""
    structures = {s["structure_id"]: s for s in parts["structures"]["structures"]}
    stress = {s["structure_id"]: s for s in parts["stress"]["results"]}
    decisions = {d["structure_id"]: d for d in parts["compliance"]["decisions"]}
    plan = parts["distribution"]
    request = parts["request"]
    target_margin = request["requirements"]["targets"]["issuer_margin"]
    limit = request["requirements"]["limits"]["capital_at_risk"]
    irr = [s["irr_mean"] for s in structures.values()]
    lo, hi = min(irr), max(irr)
    suitability: dict[str, dict[str, float]] = {}
    for s in plan["suitability"]:
        suitability.setdefault(s["structure_id"], {})[s["segment_id"]] = s["score"]
    assigned: dict[str, list[str]] = {}
    for a in plan["assignments"]:
        assigned.setdefault(a["structure_id"], []).append(a["segment_id"])
    components: dict[str, dict[str, float]] = {}
    segments_of: dict[str, list[str]] = {}
    for sid, s in structures.items():
        d = decisions[sid]
        allowed = set(d["target_market"]) - set(d["negative_target_market"])
        scores = [v for seg, v in suitability.get(sid, {}).items() if seg in allowed]
        segments_of[sid] = sorted(seg for seg in assigned.get(sid, []) if seg in allowed)
        components[sid] = {
            "client_value": (s["irr_mean"] - lo) / (hi - lo) if hi > lo else 1.0,
            "issuer_margin": min(1.0, max(0.0, s["issuer_margin"] / target_margin)) if target_margin > 0 else 1.0,
            "risk": max(0.0, 1.0 - stress[sid]["capital_at_risk"] / limit),
            "distribution": max(scores, default=0.0),
            "compliance": COMPLIANCE_SCORE[d["decision"]],
        }
    front = pareto_front(components)
    ranked = [
        RankedStructure(
            structure_id=sid,
            score=sum(WEIGHTS[k] * v for k, v in c.items()),
            components=c,
            pareto_optimal=sid in front,
            eligible=stress[sid]["passes"] and decisions[sid]["decision"] != "reject" and bool(segments_of[sid]),
            segments=segments_of[sid],
        )
        for sid, c in components.items()
    ]
    ranked.sort(key=lambda r: (-r.score, r.structure_id))
    return ranked, segments_of


def _why_none(parts: dict[str, Any], ranked: list[RankedStructure]) -> str:
    stress = parts["stress"]["results"]
    passing = [s for s in stress if s["passes"]]
    if not passing:
        best = min(stress, key=lambda s: s["capital_at_risk"])
        return (
            f"No structure passes the risk limits: the lowest capital at risk is {best['capital_at_risk']:.2%} "
            f"({best['structure_id']}), against a limit of {parts['stress']['limits']['capital_at_risk']:.2%}; "
            f"its breaches: {'; '.join(best['breaches'])}."
        )
    return (
        f"{len(passing)} structures pass the risk limits, but none of them is both approved by compliance and "
        f"assigned to a segment it may be offered to."
    )


class DeskIntegrator(DeskAgent):
    """Ranks the structures, keeps the Pareto-optimal set and publishes the desk's proposal."""

    name = "desk-integrator"
    version = "1"
    parts_needed = ("request", "structures", "stress", "distribution", "compliance")

    async def on_ready(self, request_id: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        ranked, _ = rank(parts)
        pareto = [r.structure_id for r in ranked if r.pareto_optimal]
        eligible = [r for r in ranked if r.eligible]
        choice = next((r for r in eligible if r.pareto_optimal), eligible[0] if eligible else None)
        decisions = {d["structure_id"]: d for d in parts["compliance"]["decisions"]}
        structures = {s["structure_id"]: s for s in parts["structures"]["structures"]}
        stress = {s["structure_id"]: s for s in parts["stress"]["results"]}
        if choice is None:
            rationale = _why_none(parts, ranked)
            documents: list[DocumentRef] = []
            facts: dict[str, Any] = {"count": len(ranked), "pareto": len(pareto), "rationale": rationale}
            template = "Ranked {count} structures ({pareto} Pareto-optimal); no recommendation. {rationale}"
        else:
            s, st, d = structures[choice.structure_id], stress[choice.structure_id], decisions[choice.structure_id]
            c = choice.components
            standing = "Pareto-optimal" if choice.pareto_optimal else "the best eligible structure"
            rationale = (
                f"{choice.structure_id} scores {choice.score:.3f} (client value {c['client_value']:.2f}, issuer "
                f"margin {c['issuer_margin']:.2f}, risk {c['risk']:.2f}, distribution {c['distribution']:.2f}, "
                f"compliance {c['compliance']:.2f}) and is {standing}: coupon {s['coupon_rate']:.2%} p.a., issuer "
                f"margin {s['issuer_margin']:.2%}, early-redemption probability {s['autocall_probability']:.0%}, "
                f"capital at risk {st['capital_at_risk']:.2%}, compliance {d['decision'].replace('_', ' ')}; "
                f"proposed to {', '.join(choice.segments)}."
            )
            documents = [DocumentRef.model_validate(doc) for doc in d["documents"]]
            facts = {
                "count": len(ranked),
                "pareto": len(pareto),
                "eligible": len(eligible),
                "rationale": rationale,
            }
            template = "Ranked {count} structures ({pareto} Pareto-optimal, {eligible} eligible). {rationale}"
        narrative = await self.narrate(f"proposal for design request {request_id}", facts, template)
        ctx.emit(
            ProductProposalPublished(
                request_id=request_id,
                weights=WEIGHTS,
                ranking=ranked,
                pareto_set=pareto,
                recommendation=choice.structure_id if choice else None,
                segments=choice.segments if choice else [],
                rationale=rationale,
                documents=documents,
                narrative=narrative,
            )
        )
        await self.finish(ctx, request_id)
