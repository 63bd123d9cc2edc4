"""The distribution specialist: which variant goes to which client segment, and why.

On `StructuresProposed` it segments the request's client base (the bundled sample of a few
thousand generated clients unless the request names another; segments of at least 50 clients),
scores every structure's suitability for every segment, assigns to each segment its best-suited
structure above the minimum score, writes the value proposition for advisers, and emits
`DistributionPlanned`. The compliance officer then rules on target markets segment by segment.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.structured.clients import load_client_base, parse_client_base
from agents.structured.desk_agent import DeskAgent
from agents.structured.segments import segment_clients, to_event
from agents.structured.suitability import plan_distribution
from bus.events.structured import DistributionPlanned, StructureFigures
from bus.runtime.actor import HandlerContext

MIN_SEGMENT_SIZE = 50
MIN_SCORE = 0.5


class DistributionSpecialist(DeskAgent):
    """Segments the client base and plans which structure each segment is offered."""

    name = "distribution-specialist"
    version = "1"
    parts_needed = ("request", "structures")

    async def on_ready(self, request_id: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        source = parts["request"]["client_base"]
        try:
            base = await asyncio.to_thread(self._client_base, source)
        except (OSError, LookupError, ValueError) as exc:
            await self.reject(ctx, request_id, f"the client base cannot be used: {exc}", "client_base")
            return
        structures = [StructureFigures.model_validate(s) for s in parts["structures"]["structures"]]

        def plan() -> tuple[list[Any], list[Any], list[Any]]:
            segments = segment_clients(base, min_size=MIN_SEGMENT_SIZE)
            suitability, assignments = plan_distribution(structures, segments, min_score=MIN_SCORE)
            return segments, suitability, assignments

        segments, suitability, assignments = await asyncio.to_thread(plan)
        served = {a.segment_id for a in assignments}
        narrative = await self.narrate(
            f"distribution plan for design request {request_id}",
            {
                "clients": len(base.clients),
                "segments": len(segments),
                "served": len(served),
                "unserved": ", ".join(s.segment_id for s in segments if s.segment_id not in served) or "none",
                "structures": len({a.structure_id for a in assignments}),
                "min_score": MIN_SCORE,
            },
            "Segmented {clients} clients into {segments} segments of at least 50; {served} segments get a "
            "structure scoring at least {min_score} ({structures} distinct structures). Segments without a "
            "suitable structure: {unserved}.",
        )
        ctx.emit(
            DistributionPlanned(
                request_id=request_id,
                client_base=base.ref,
                client_count=len(base.clients),
                segments=[to_event(s) for s in segments],
                suitability=suitability,
                assignments=assignments,
                narrative=narrative,
            )
        )
        await self.finish(ctx, request_id)

    def _client_base(self, source: str) -> Any:
        if source == "sample":
            return load_client_base("sample")
        return parse_client_base(self.store.get(source), name=source.rsplit("/", 1)[-1], source=source)
