"""The market strategist: validates the request's market data, generates the scenarios the desk
reasons with, and checks each proposed structure's pricing assumptions against them.

On `ProductDesignRequested` it checks forwards, the rate curve, the volatility surfaces (calendar
and butterfly arbitrage, skew), vol levels and correlations against historical ranges, and that
every underlying of the design is quoted; a failed check rejects the request (naming
`market_ref`). Otherwise it emits `ScenariosGenerated`: about 50 forward-looking (a seeded
regime-switching model) and historical scenarios on the horizons 1 to 60 months. On
`StructuresProposed` it emits `AssumptionsValidated`, with every assumption a structure's price
rests on that the scenarios contradict, and why.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict
from typing import Any

from agents.structured.desk_agent import DeskAgent
from bus.events.structured import (
    AssumptionsValidated,
    MarketCheck,
    MarketScenario,
    RejectedAssumption,
    ScenariosGenerated,
    StructureAssumptions,
)
from bus.runtime.actor import HandlerContext
from engines.structured.assumptions import check_assumptions
from engines.structured.market_checks import check_market, market_is_usable
from engines.structured.scenarios import Scenario, generate_scenarios
from engines.structured.spec import AutocallSpec

HORIZONS_MONTHS = (1, 3, 6, 12, 24, 36, 60)


def design_underlyings(requirements: dict[str, Any]) -> list[str]:
    """Every underlying the design can use: the base note's and those of the grid's baskets."""
    names = list(requirements["base"].get("underlyings") or [])
    for basket in (requirements.get("grid") or {}).get("baskets") or []:
        names += [u for u in basket if u not in names]
    return list(dict.fromkeys(names))


class MarketStrategist(DeskAgent):
    """Checks the market, generates scenarios, and validates each structure's assumptions."""

    name = "market-strategist"
    version = "1"
    parts_needed = ("request",)
    parts_later = ("structures",)

    async def on_part(self, request_id: str, part: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        if part == "structures" and "scenarios_out" in parts:
            await self._validate(request_id, parts, ctx)

    async def on_ready(self, request_id: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        request = parts["request"]
        underlyings = design_underlyings(request["requirements"])
        try:
            market = await self.market(request)
        except ValueError as exc:
            await self.reject(ctx, request_id, str(exc), "market_ref")
            return
        checks = await asyncio.to_thread(check_market, market, underlyings)
        if not market_is_usable(checks):
            failed = "; ".join(f"{c.check}: {c.detail}" for c in checks if c.status == "failed")
            await self.reject(ctx, request_id, f"the market data fails validation: {failed}", "market_ref")
            return
        seed = request["constraints"]["seed"]
        scenarios = await asyncio.to_thread(generate_scenarios, market, underlyings, seed, HORIZONS_MONTHS)
        regimes = sorted({s.regime for s in scenarios})
        narrative = await self.narrate(
            f"market checks and scenarios for design request {request_id}",
            {
                "checks": len(checks),
                "warnings": sum(c.status == "warning" for c in checks),
                "warning_list": "; ".join(f"{c.check}: {c.detail}" for c in checks if c.status == "warning") or "none",
                "count": len(scenarios),
                "forward": sum(s.kind == "forward" for s in scenarios),
                "historical": sum(s.kind == "historical" for s in scenarios),
                "horizons": ", ".join(str(h) for h in HORIZONS_MONTHS),
                "regimes": ", ".join(regimes),
                "worst": min(scenarios, key=lambda s: min(s.equity_return.values())).scenario_id,
            },
            "The market data passes {checks} checks with {warnings} warnings ({warning_list}). Generated {count} "
            "scenarios ({forward} forward-looking, {historical} historical) on horizons of {horizons} months, "
            "across the regimes {regimes}; the deepest drawdown is in {worst}.",
        )
        await self.state.put(ctx.conn, request_id, "scenarios_out", [s.to_dict() for s in scenarios])
        await self.state.put(ctx.conn, request_id, "checks", [asdict(c) for c in checks])
        ctx.emit(
            ScenariosGenerated(
                request_id=request_id,
                horizons_months=list(HORIZONS_MONTHS),
                scenarios=[MarketScenario(**s.to_dict()) for s in scenarios],
                seed=seed,
                narrative=narrative,
            )
        )
        if "structures" in parts:
            await self._validate(request_id, await self.state.parts(ctx.conn, request_id), ctx)

    async def _validate(self, request_id: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        market = await self.market(parts["request"])
        scenarios = [Scenario(**s) for s in parts["scenarios_out"]]
        structures = parts["structures"]["structures"]

        def run() -> list[Any]:
            return [check_assumptions(AutocallSpec.model_validate(s["spec"]), s, market, scenarios) for s in structures]

        verdicts = await asyncio.to_thread(run)
        out = [
            StructureAssumptions(
                structure_id=v.structure_id,
                accepted=v.accepted,
                rejected=[RejectedAssumption(assumption=a, reason=r, scenarios=list(ids)) for a, r, ids in v.rejected],
            )
            for v in verdicts
        ]
        rejected = [o for o in out if not o.accepted]
        reasons = Counter(r.assumption for o in rejected for r in o.rejected)
        narrative = await self.narrate(
            f"assumption checks for design request {request_id}",
            {
                "count": len(out),
                "accepted": len(out) - len(rejected),
                "rejected": len(rejected),
                "reasons": ", ".join(f"{k} ({n})" for k, n in sorted(reasons.items())) or "none",
            },
            "Checked the pricing assumptions of {count} structures against the scenarios: {accepted} accepted, "
            "{rejected} with assumptions the scenarios contradict (by assumption: {reasons}).",
        )
        ctx.emit(
            AssumptionsValidated(
                request_id=request_id,
                market_checks=[MarketCheck(**c) for c in parts["checks"]],
                structures=out,
                narrative=narrative,
            )
        )
        await self.finish(ctx, request_id)
