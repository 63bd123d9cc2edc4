"""What every structured-desk agent shares: the topics it listens to, the join of a request's
parts, its compute answers, the market data it reads from the artifact store, and its narrator.

A subclass names the parts it needs (`parts_needed`) and implements `on_ready`, called once when
all of them are in for a request (inside the transaction that delivered the last one); parts it
wants later (`parts_later`) reach `on_part`; if it sends compute work, `on_compute` gets each
gathered compute request. A request any agent rejected
is closed for every agent; so is one the agent has finished.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import asyncpg

from agents.narrator import Brief, Narrator
from agents.structured.desk_state import DESK_STATE_MIGRATIONS, DONE, REJECTED, DeskState, OwnCompute, reject
from bus.artifacts import ArtifactStore
from bus.codec import DecodedEvent
from bus.events.compute import ComputeCompleted, ComputeFailed
from bus.events.narrative import Narrative
from bus.events.structured import (
    AssumptionsValidated,
    ComplianceReviewed,
    DistributionPlanned,
    ProductDesignRejected,
    ProductDesignRequested,
    ScenariosGenerated,
    StressTested,
    StructuresProposed,
)
from bus.runtime.actor import Actor, HandlerContext
from bus.topics import COMPUTE_RESULTS, DESK_STRUCTURED
from engines.structured.market import MarketData

log = logging.getLogger("risklab.structured")

PART_OF_EVENT: dict[str, str] = {
    ProductDesignRequested.event_type: "request",
    StructuresProposed.event_type: "structures",
    ScenariosGenerated.event_type: "scenarios",
    AssumptionsValidated.event_type: "assumptions",
    StressTested.event_type: "stress",
    DistributionPlanned.event_type: "distribution",
    ComplianceReviewed.event_type: "compliance",
}


def _request_of(payload: Any) -> str | None:
    """The design request an event belongs to (compute answers carry it as their id's prefix)."""
    if isinstance(payload, ComputeCompleted | ComputeFailed):
        return payload.request_id.rsplit(".", 2)[0]  # "<request>.<agent>.<purpose>"
    return getattr(payload, "request_id", None)


class DeskAgent(Actor):
    """Base of the structured desk's agents (see the module docstring)."""

    parts_needed: ClassVar[tuple[str, ...]] = ()
    parts_later: ClassVar[tuple[str, ...]] = ()
    """Parts also remembered; each one arriving after the start is passed to `on_part`."""
    computes: ClassVar[bool] = False
    max_batch = 1

    def __init__(self, store: ArtifactStore, narrator: Narrator) -> None:
        self.store = store
        self.narrator = narrator
        self.state = DeskState(self.name)
        self._markets: dict[str, MarketData] = {}

    @property
    def topics(self) -> tuple[str, ...]:  # type: ignore[override]
        return (DESK_STRUCTURED, COMPUTE_RESULTS) if self.computes else (DESK_STRUCTURED,)

    @property
    def accepts(self) -> frozenset[str]:  # type: ignore[override]
        types = {ProductDesignRejected.event_type}
        types |= {t for t, part in PART_OF_EVENT.items() if part in self.parts_needed + self.parts_later}
        if self.computes:
            types |= {ComputeCompleted.event_type, ComputeFailed.event_type}
        return frozenset(types)

    @property
    def migrations(self):  # type: ignore[override]
        return DESK_STATE_MIGRATIONS

    async def handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        """Join the event into the request's parts and act; a fault of this agent ends the request.

        Database and I/O errors propagate, so the runtime retries the event. Any other exception is a
        fault that a retry would repeat: instead of leaving the request hanging (the event would go to
        the dead-letter topic and no answer would come), the request is rejected with the error.
        """
        try:
            await self._handle(event, ctx)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            raise
        except Exception as exc:
            request_id = _request_of(event.event)
            if request_id is None:
                raise
            log.exception("%s: failed on %s of %s", self.name, event.envelope.type, request_id)
            await self.reject(ctx, request_id, f"internal error in {self.name}: {type(exc).__name__}: {exc}")

    async def _handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        payload = event.event
        if isinstance(payload, ComputeCompleted | ComputeFailed):
            own = await self.state.gather(ctx.conn, payload)
            if own is not None and not await self.state.closed(ctx.conn, own.request_id):
                await self.on_compute(own, await self.state.parts(ctx.conn, own.request_id), ctx)
            return
        request_id = payload.request_id  # type: ignore[attr-defined]
        if isinstance(payload, ProductDesignRejected):
            await self.state.put(ctx.conn, request_id, REJECTED, payload.model_dump(mode="json"))
            return
        if await self.state.closed(ctx.conn, request_id):
            return
        part = PART_OF_EVENT[payload.event_type]
        await self.state.put(ctx.conn, request_id, part, payload.model_dump(mode="json"))
        parts = await self.state.parts(ctx.conn, request_id)
        if "started" in parts:
            await self.on_part(request_id, part, parts, ctx)
        elif all(p in parts for p in self.parts_needed):
            await self.state.put(ctx.conn, request_id, "started", True)
            await self.on_ready(request_id, parts, ctx)

    async def on_ready(self, request_id: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        raise NotImplementedError

    async def on_part(self, request_id: str, part: str, parts: dict[str, Any], ctx: HandlerContext) -> None:
        """A `parts_later` part arrived after `on_ready`."""

    async def on_compute(self, own: OwnCompute, parts: dict[str, Any], ctx: HandlerContext) -> None:
        raise NotImplementedError(f"{self.name} sends no compute work")

    async def finish(self, ctx: HandlerContext, request_id: str) -> None:
        """Mark the request done for this agent: later events of it are ignored."""
        await self.state.put(ctx.conn, request_id, DONE, True)

    async def reject(self, ctx: HandlerContext, request_id: str, reason: str, field: str | None = None) -> None:
        """End the request with a rejection naming this agent, the field at fault and the reason."""
        reject(ctx, request_id, self.name, reason, field)
        await self.state.put(ctx.conn, request_id, REJECTED, {"agent": self.name, "reason": reason})

    async def compute_failures(self, ctx: HandlerContext, own: OwnCompute) -> bool:
        """Reject the request if some chunks of a gathered compute request failed; True if so."""
        if own.gathered.complete:
            return False
        reasons = "; ".join(f"chunk {i}: {why}" for i, why in sorted(own.gathered.failures.items()))
        await self.reject(ctx, own.request_id, f"the engine workers could not compute {own.purpose}: {reasons}")
        return True

    async def results_of(self, own: OwnCompute) -> list[dict[str, Any] | None]:
        """The chunks' results in chunk order (None for a failed chunk), those sent by reference read
        from the artifact store."""

        def load(i: int, r: dict[str, Any] | None) -> dict[str, Any] | None:
            if i in own.gathered.failures or r is None:
                return None
            return self.store.get_json(r["result_ref"]) if set(r) == {"result_ref"} else r

        return await asyncio.to_thread(lambda: [load(i, r) for i, r in enumerate(own.gathered.results)])

    async def market(self, request: dict[str, Any]) -> MarketData:
        """The request's market data, read from the artifact store and validated (cached by content hash).

        Raises ValueError naming `market_ref` when it cannot be read or is not valid market data.
        """
        ref = request["market_ref"]
        cached = self._markets.get(ref["sha256"])
        if cached is not None:
            return cached
        try:
            data = await asyncio.to_thread(self.store.get_json, ref["uri"])
        except (OSError, LookupError, ValueError) as exc:
            raise ValueError(f"market_ref: the market data {ref['uri']} cannot be read: {exc}") from exc
        try:
            market = MarketData.model_validate(data)
        except ValueError as exc:
            raise ValueError(f"market_ref: {ref['uri']} is not valid market data: {exc}") from exc
        self._markets[ref["sha256"]] = market
        return market

    async def narrate(self, subject: str, facts: dict[str, Any], template: str) -> Narrative:
        return await self.narrator.narrate(Brief(agent=self.name, subject=subject, facts=facts, template=template))
