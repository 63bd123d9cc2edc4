"""The quant researcher: turns a design request into priced variations scored against its targets.

On `ProductDesignRequested` it builds the variations of the base note over the request's design
grid (at least `constraints.min_variations`, 75 by default), checks that the market data covers
their underlyings, and sends them to the engine workers as `structured.lab` in path chunks (one
seeded path sequence split across workers, so the gathered answer equals an unchunked run). The
engine solves each variation's fair coupon for the target issuer margin exactly (coupons are linear
in the coupon rate on a fixed path set). Once every chunk is back it scores each variation against
the targets and emits `StructuresProposed`.

Target score: for each of client return (the coupon p.a.), issuer margin (1 - price when sold at
par) and probability of early redemption, 1 when the figure reaches the target and falling
linearly to 0 at zero; the score is their mean. Gap risk needs the stress grid, so the risk
manager checks it against `max_gap_risk`.

A request is rejected (`ProductDesignRejected`, naming the field) when the base note or the grid
is invalid, the grid gives too few variations, the market data is unreadable or misses an
underlying, or the targets are impossible: no variation can pay the target client return at the
target issuer margin (its fair coupon is below the target).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agents.structured.desk_agent import DeskAgent
from agents.structured.desk_state import OwnCompute
from bus.catalog import invalid_from_validation
from bus.events.structured import StructureFigures, StructuresProposed
from bus.runtime.actor import HandlerContext
from engines import registry
from engines.structured.lab import LabGrid, variations
from engines.structured.simulation import check_market_covers
from engines.structured.spec import AutocallSpec

GREEKS = ["delta", "gamma", "vega"]


def _reach(figure: float, target: float) -> float:
    """1 at or above the target, falling linearly to 0 at zero."""
    if target <= 0:
        return 1.0
    return float(min(1.0, max(0.0, figure / target)))


def structure_figures(spec: dict[str, Any], result: dict[str, Any], targets: dict[str, float]) -> StructureFigures:
    """One priced variation with its distance to the targets."""
    margin = 1.0 - result["price"]
    autocall = float(sum(result["autocall_probability"]))
    coupon = float(result["coupon_rate"])
    gaps = {
        "client_return": coupon - targets["client_return"],
        "issuer_margin": margin - targets["issuer_margin"],
        "autocall_probability": autocall - targets["autocall_probability"],
    }
    score = (
        _reach(coupon, targets["client_return"])
        + _reach(margin, targets["issuer_margin"])
        + _reach(autocall, targets["autocall_probability"])
    ) / 3
    return StructureFigures(
        structure_id=spec["name"],
        spec=spec,
        price=result["price"],
        stderr=result["stderr"],
        issuer_margin=margin,
        coupon_rate=coupon,
        fair_coupon=result["fair_coupon"],
        autocall_probability=min(1.0, autocall),
        autocall_by_date=result["autocall_probability"],
        expected_life_years=result["expected_life_years"],
        knock_in_probability=result["knock_in_probability"],
        capital_loss_probability=result["capital_loss_probability"],
        irr_mean=result["irr_mean"],
        irr_median=result["irr_percentiles"]["p50"],
        greeks=result["greeks"],
        target_score=score,
        meets_targets=all(g >= -1e-12 for g in gaps.values()),
        target_gaps=gaps,
    )


class QuantResearcher(DeskAgent):
    """Generates, prices and scores the variations of a design request."""

    name = "quant-researcher"
    version = "1"
    parts_needed = ("request",)
    computes = True

    async def on_ready(self, request_id: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        request = parts["request"]
        requirements = request["requirements"]
        constraints = request["constraints"]
        try:
            base = AutocallSpec.model_validate(requirements["base"])
        except ValidationError as exc:
            invalid = invalid_from_validation(exc, prefix="requirements.base")
            await self.reject(ctx, request_id, invalid.reason, invalid.field)
            return
        try:
            grid = LabGrid.model_validate(requirements.get("grid") or {})
        except ValidationError as exc:
            invalid = invalid_from_validation(exc, prefix="requirements.grid")
            await self.reject(ctx, request_id, invalid.reason, invalid.field)
            return
        try:
            specs = variations(base, grid)
        except ValueError as exc:
            await self.reject(ctx, request_id, str(exc), "requirements.grid")
            return
        if len(specs) < constraints["min_variations"]:
            await self.reject(
                ctx,
                request_id,
                f"the grid gives {len(specs)} variations, fewer than the {constraints['min_variations']} asked for",
                "requirements.grid",
            )
            return
        try:
            market = await self.market(request)
            check_market_covers(specs, market)
        except (ValueError, KeyError) as exc:
            await self.reject(ctx, request_id, str(exc).strip("'\""), "market_ref")
            return
        inputs = {
            "base": base.model_dump(mode="json"),
            "grid": grid.model_dump(mode="json"),
            "market": market.model_dump(mode="json"),
            "options": {
                "paths": constraints["paths"],
                "seed": constraints["seed"],
                "greeks": GREEKS,
                "target_margin": requirements["targets"]["issuer_margin"],
            },
        }
        chunks = registry.get("structured.lab").split(inputs, constraints["chunks"])
        await self.state.emit_compute(ctx, request_id, "lab", "structured.lab", chunks)

    async def on_compute(self, own: OwnCompute, parts: dict[str, Any], ctx: HandlerContext) -> None:
        if await self.compute_failures(ctx, own):
            return
        request = parts["request"]
        targets = request["requirements"]["targets"]
        combined = registry.combine("structured.lab", await self.results_of(own))
        structures = [
            structure_figures(spec, result, targets)
            for spec, result in zip(combined["specs"], combined["results"], strict=True)
        ]
        best = max(structures, key=lambda s: s.fair_coupon if s.fair_coupon is not None else float("-inf"))
        if best.fair_coupon is None or best.fair_coupon < targets["client_return"]:
            await self.reject(
                ctx,
                own.request_id,
                f"impossible targets: no variation pays {targets['client_return']:.2%} p.a. at an issuer margin of "
                f"{targets['issuer_margin']:.2%}; the highest fair coupon is "
                f"{(best.fair_coupon or 0.0):.2%} ({best.structure_id})",
                "requirements.targets.client_return",
            )
            return
        ranked = sorted(structures, key=lambda s: -s.target_score)
        meeting = sum(s.meets_targets for s in structures)
        narrative = await self.narrate(
            f"priced variations for design request {own.request_id}",
            {
                "count": len(structures),
                "paths": combined["options"]["paths"],
                "seed": combined["seed"],
                "meeting": meeting,
                "best": ranked[0].structure_id,
                "best_score": round(ranked[0].target_score, 4),
                "best_coupon": ranked[0].coupon_rate,
                "best_margin": round(ranked[0].issuer_margin, 5),
                "best_autocall": round(ranked[0].autocall_probability, 4),
                "top_fair_coupon": round(best.fair_coupon, 5),
                "top_fair_coupon_structure": best.structure_id,
                "targets": targets,
            },
            "Priced {count} variations on {paths} paths (seed {seed}); {meeting} meet every target. "
            "Closest to the targets: {best} (score {best_score}): coupon {best_coupon:.2%} p.a., issuer margin "
            "{best_margin:.2%}, early-redemption probability {best_autocall:.0%}. The highest fair coupon at the "
            "target margin is {top_fair_coupon:.2%} ({top_fair_coupon_structure}).",
        )
        ctx.emit(
            StructuresProposed(
                request_id=own.request_id,
                structures=ranked,
                paths=combined["options"]["paths"],
                seed=combined["seed"],
                compute_request_id=own.gathered.request_id,
                market_sha256=request["market_ref"]["sha256"],
                narrative=narrative,
            )
        )
        await self.finish(ctx, own.request_id)
