"""The compliance officer: product governance per structure and segment, the KID, and the documents.

Once it has a request's structures and distribution plan, it asks the engine workers for every
structure's PRIIPs KID indicators (`structured.priips`, one chunk per structure: market risk
measure from the VaR-equivalent volatility, credit risk measure, summary risk indicator 1–7,
performance scenarios). It then applies the product-governance rulebook (a versioned rule file;
see `agents.structured.rulebook`) to every structure and segment, renders the term sheet and the
key information document (HTML and PDF) of the structures the distribution plan assigns and of
the best-scoring ones into the artifact store, and emits `ComplianceReviewed` with each decision,
every rule that fired, and the rulebook's name, version and hash. A segment blocked by a rule is
in the structure's negative target market, and the integrator never proposes it there.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from agents.structured.desk_agent import DeskAgent
from agents.structured.desk_state import OwnCompute
from agents.structured.documents import render_kid, render_term_sheet
from agents.structured.rulebook import Rulebook, review
from bus.events.structured import (
    ClientSegment,
    ComplianceDecision,
    ComplianceReviewed,
    DocumentRef,
    StructureFigures,
)
from bus.runtime.actor import HandlerContext
from engines.structured.kid import MIN_PRIIPS_PATHS


class ComplianceOfficer(DeskAgent):
    """Reviews each structure against the rulebook, computes its KID and renders its documents."""

    name = "compliance-officer"
    version = "1"
    parts_needed = ("request", "structures", "distribution")
    computes = True

    def __init__(self, store: Any, narrator: Any, rulebook: Rulebook | None = None) -> None:
        super().__init__(store, narrator)
        self.rulebook = rulebook or Rulebook.load()

    async def on_ready(self, request_id: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        request = parts["request"]
        market = (await self.market(request)).model_dump(mode="json")
        constraints = request["constraints"]
        # the RTS simulate at least 10,000 paths for the KID, whatever the request's pricing paths
        options = {"paths": max(constraints["paths"], MIN_PRIIPS_PATHS), "seed": constraints["seed"]}
        chunks = [{"spec": s["spec"], "market": market, "options": options} for s in parts["structures"]["structures"]]
        await self.state.emit_compute(ctx, request_id, "kid", "structured.priips", chunks)

    async def on_compute(self, own: OwnCompute, parts: dict[str, Any], ctx: HandlerContext) -> None:
        request = parts["request"]
        structures = [StructureFigures.model_validate(s) for s in parts["structures"]["structures"]]
        plan = parts["distribution"]
        segments = [ClientSegment.model_validate(s) for s in plan["segments"]]
        results = await self.results_of(own)
        top = sorted(structures, key=lambda s: -s.target_score)[: request["constraints"]["documents_for"]]
        documented = {a["structure_id"] for a in plan["assignments"]} | {s.structure_id for s in top}
        rulebook = self.rulebook
        as_of = ctx.cause.occurred_at.date().isoformat()

        def decide() -> list[ComplianceDecision]:
            out = []
            for structure, kid in zip(structures, results, strict=True):
                decision = review(structure, kid, segments, rulebook)
                if structure.structure_id in documented and decision.decision != "reject":
                    docs = self._documents(structure, kid, decision, segments, as_of)
                    decision = decision.model_copy(update={"documents": docs})
                out.append(decision)
            return out

        decisions = await asyncio.to_thread(decide)
        counts = {k: sum(d.decision == k for d in decisions) for k in ("approve", "approve_with_conditions", "reject")}
        fired = Counter(r.rule_id for d in decisions for r in d.rules_fired)
        narrative = await self.narrate(
            f"compliance review for design request {own.request_id}",
            {
                "count": len(decisions),
                "rulebook": f"{rulebook.ref.name} v{rulebook.ref.version}",
                **counts,
                "rules": ", ".join(f"{k} ({n})" for k, n in sorted(fired.items())) or "none",
                "documents": sum(len(d.documents) for d in decisions),
                "kid_missing": sum(k is None for k in results),
            },
            "Reviewed {count} structures under {rulebook}: {approve} approved, {approve_with_conditions} approved "
            "with conditions, {reject} rejected. Rules that fired: {rules}. Rendered {documents} documents; "
            "{kid_missing} structures have no KID.",
        )
        ctx.emit(
            ComplianceReviewed(
                request_id=own.request_id,
                rulebook=rulebook.ref,
                decisions=decisions,
                narrative=narrative,
            )
        )
        await self.finish(ctx, own.request_id)

    def _documents(
        self,
        structure: StructureFigures,
        kid: dict[str, Any] | None,
        decision: ComplianceDecision,
        segments: list[ClientSegment],
        as_of: str,
    ) -> list[DocumentRef]:
        docs = []
        ref = self.rulebook.ref
        common = {"as_of": as_of, "decision": decision, "segments": segments, "rulebook": ref}
        rendered = [("term_sheet", render_term_sheet(structure, **common))]
        if kid is not None:
            rendered.append(("kid", render_kid(structure, kid, **common)))
        for kind, (html, pdf) in rendered:
            docs.append(
                DocumentRef(
                    kind=kind,
                    format="html",
                    artifact=self.store.put(html.encode(), media_type="text/html", suffix=".html"),
                )
            )
            docs.append(
                DocumentRef(
                    kind=kind, format="pdf", artifact=self.store.put(pdf, media_type="application/pdf", suffix=".pdf")
                )
            )
        return docs
