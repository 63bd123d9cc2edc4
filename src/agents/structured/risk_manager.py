"""The risk manager: stresses every proposed structure and judges it against the request's limits.

It waits for both the quant researcher's `StructuresProposed` and the market strategist's
`AssumptionsValidated` of a request (the join is kept in its state rows, so it survives a
restart), then sends the structures to the engine workers as `structured.stress` in chunks of
structures, all on the desk's 320-scenario grid (crashes × vol regimes × correlations × curve and
skew moves) with common random numbers. From the gathered report it emits `StressTested` with,
per structure, the issuer's VaR and ES held to maturity, the worst stressed 99% VaR, gap and
trigger risk, capital at risk of the hedged book, a hedge proposal with the Greeks left after it
against the desk's targets (delta 0, |gamma| ≤ 0.1, |vega| ≤ 0.05), and pass/fail: capital at
risk within `limits.capital_at_risk` (5% by default), gap risk within `targets.max_gap_risk`,
99% VaR within `limits.var_99` when given, and the strategist accepted its assumptions. The
full report (P&L per scenario) goes to the artifact store and travels by reference.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.structured.desk_agent import DeskAgent
from agents.structured.desk_state import OwnCompute
from bus.events.structured import HedgeProposal, RiskLimits, StressTested, StructureStress
from bus.runtime.actor import HandlerContext
from engines import registry
from engines.structured.hedge import hedge_proposal
from engines.structured.market import MarketData
from engines.structured.spec import AutocallSpec
from engines.structured.stress import default_scenarios


def structure_stress(
    result: dict[str, Any],
    spec: AutocallSpec,
    market: MarketData,
    greeks: dict[str, Any],
    limits: RiskLimits,
    max_gap_risk: float,
    assumptions: dict[str, Any] | None,
) -> StructureStress:
    """One structure's stress figures, hedge proposal and verdict."""
    hedge = hedge_proposal(spec, market, greeks)
    breaches = []
    if result["capital_at_risk"] > limits.capital_at_risk:
        breaches.append(
            f"capital at risk {result['capital_at_risk']:.2%} above the limit {limits.capital_at_risk:.2%} "
            f"(worst: {result['worst_scenario']})"
        )
    if result["gap_risk"] > max_gap_risk:
        breaches.append(f"gap risk {result['gap_risk']:.2%} above the target {max_gap_risk:.2%}")
    if limits.var_99 is not None and result["base_var"]["0.99"] > limits.var_99:
        breaches.append(f"99% VaR {result['base_var']['0.99']:.2%} above the limit {limits.var_99:.2%}")
    if assumptions is not None and not assumptions["accepted"]:
        names = ", ".join(r["assumption"] for r in assumptions["rejected"])
        breaches.append(f"pricing assumptions contradicted by the scenarios: {names}")
    trigger = result.get("trigger_risk") or {}
    return StructureStress(
        structure_id=spec.name,
        var=result["base_var"],
        es=result["base_es"],
        stressed_var_99=max(result["var"]["0.99"]),
        gap_risk=result["gap_risk"],
        trigger_risk=max((v["max_abs_gamma"] for v in trigger.values()), default=0.0),
        capital_at_risk=result["capital_at_risk"],
        capital_at_risk_delta_hedged=result["capital_at_risk_delta_hedged"],
        capital_at_risk_unhedged=result["capital_at_risk_unhedged"],
        worst_scenario=result["worst_scenario"],
        hedge=HedgeProposal.model_validate(hedge.to_dict()),
        passes=not breaches,
        breaches=breaches,
    )


class RiskManager(DeskAgent):
    """Joins structures and validated assumptions, stresses the structures, and rules on the limits."""

    name = "risk-manager"
    version = "1"
    parts_needed = ("request", "structures", "assumptions")
    computes = True

    async def on_ready(self, request_id: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        request = parts["request"]
        constraints = request["constraints"]
        market = await self.market(request)
        specs = [s["spec"] for s in parts["structures"]["structures"]]
        scenarios = default_scenarios()
        if constraints.get("stress_scenarios"):
            scenarios = scenarios[: constraints["stress_scenarios"]]
        inputs = {
            "specs": specs,
            "market": market.model_dump(mode="json"),
            "options": {"paths": constraints["paths"], "seed": constraints["seed"]},
            "scenarios": [s.model_dump(mode="json") for s in scenarios],
            "stress": {"capital_at_risk_limit": request["requirements"]["limits"]["capital_at_risk"]},
        }
        chunks = registry.get("structured.stress").split(inputs, constraints["chunks"])
        await self.state.emit_compute(ctx, request_id, "stress", "structured.stress", chunks)

    async def on_compute(self, own: OwnCompute, parts: dict[str, Any], ctx: HandlerContext) -> None:
        if await self.compute_failures(ctx, own):
            return
        request = parts["request"]
        limits = RiskLimits.model_validate(request["requirements"]["limits"])
        max_gap = request["requirements"]["targets"]["max_gap_risk"]
        market = await self.market(request)
        report = registry.combine("structured.stress", await self.results_of(own))
        structures = {s["structure_id"]: s for s in parts["structures"]["structures"]}
        assumptions = {a["structure_id"]: a for a in parts["assumptions"]["structures"]}

        def build() -> list[StructureStress]:
            return [
                structure_stress(
                    r,
                    AutocallSpec.model_validate(structures[r["name"]]["spec"]),
                    market,
                    structures[r["name"]]["greeks"],
                    limits,
                    max_gap,
                    assumptions.get(r["name"]),
                )
                for r in report["results"]
            ]

        results = await asyncio.to_thread(build)
        report_ref = await asyncio.to_thread(self.store.put_json, report)
        passing = [r for r in results if r.passes]
        best = min(results, key=lambda r: r.capital_at_risk)
        narrative = await self.narrate(
            f"stress results for design request {own.request_id}",
            {
                "count": len(results),
                "scenarios": len(report["scenarios"]),
                "paths": report["paths"],
                "passing": len(passing),
                "limit": limits.capital_at_risk,
                "best": best.structure_id,
                "best_car": best.capital_at_risk,
                "best_worst": best.worst_scenario,
                "median_car": sorted(r.capital_at_risk for r in results)[len(results) // 2],
                "hedged": sum(r.hedge.within_targets for r in results),
            },
            "Stressed {count} structures on {scenarios} scenarios with {paths} paths each; {passing} pass every "
            "limit (capital at risk limit {limit:.1%}). Lowest capital at risk: {best} at {best_car:.2%} (worst "
            "scenario {best_worst}); median {median_car:.2%}. {hedged} structures can be hedged within the Greek "
            "targets.",
        )
        ctx.emit(
            StressTested(
                request_id=own.request_id,
                scenario_count=len(report["scenarios"]),
                paths=report["paths"],
                seed=report["seed"],
                limits=limits,
                results=results,
                report_ref=report_ref,
                compute_request_id=own.gathered.request_id,
                narrative=narrative,
            )
        )
        await self.finish(ctx, own.request_id)
