"""Running the structured-products desk: its actors, a design request from a file, and following a
request from `ProductDesignRequested` to its proposal or rejection.

A request file is JSON: `{"requirements": {...}, "market": "sample" | <path> | {...},
"constraints": {...}, "client_base": "sample", "request_id": "..."}` (all but `requirements`
optional; see `DesignRequirements`). The market data is written to the artifact store under its
content hash and the request carries that reference, so every agent prices from the same bytes
and the audit lineage of a figure ends at the request that names them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agents.narrator import Narrator, narrator_from
from agents.structured.compliance_officer import ComplianceOfficer
from agents.structured.desk_integrator import DeskIntegrator
from agents.structured.distribution_specialist import DistributionSpecialist
from agents.structured.market_strategist import MarketStrategist
from agents.structured.quant_researcher import QuantResearcher
from agents.structured.risk_manager import RiskManager
from bus.artifacts import ArtifactStore
from bus.catalog import CATALOG, invalid_from_validation
from bus.codec import decode
from bus.envelope import Envelope
from bus.errors import InvalidEvent
from bus.events.structured import (
    DesignConstraints,
    DesignRequirements,
    ProductDesignRejected,
    ProductDesignRequested,
    ProductProposalPublished,
)
from bus.runtime.actor import Actor
from bus.topics import DESK_STRUCTURED
from bus.transport import Transport, subscribe_from_now
from risklab.settings import Settings
from risklab.structured_samples import sample_file

PRODUCER = "risklab-structured"
SAMPLE_REQUEST = "design-request.json"
FINAL_TYPES = (ProductProposalPublished.event_type, ProductDesignRejected.event_type)
STAGE_OF_TYPE = {
    "structured.product_design_requested": "requested",
    "structured.structures_proposed": "quant-researcher",
    "structured.scenarios_generated": "market-strategist (scenarios)",
    "structured.assumptions_validated": "market-strategist (assumptions)",
    "structured.stress_tested": "risk-manager",
    "structured.distribution_planned": "distribution-specialist",
    "structured.compliance_reviewed": "compliance-officer",
    "structured.product_proposal_published": "desk-integrator",
    "structured.product_design_rejected": "rejected",
}


class DesignRequestError(ValueError):
    """A request file that cannot become a valid `ProductDesignRequested`; names the field and why."""


def narrator_of(settings: Settings) -> Narrator:
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    return narrator_from(
        key,
        base_url=settings.anthropic_base_url,
        model=settings.anthropic_model,
        timeout_seconds=settings.narrator_timeout_seconds,
    )


def desk_actors(store: ArtifactStore, narrator: Narrator) -> list[Actor]:
    """The structured desk's six actors."""
    return [
        QuantResearcher(store, narrator),
        MarketStrategist(store, narrator),
        RiskManager(store, narrator),
        DistributionSpecialist(store, narrator),
        ComplianceOfficer(store, narrator),
        DeskIntegrator(store, narrator),
    ]


def sample_request_data() -> dict[str, Any]:
    """The bundled design request: the sample worst-of phoenix, the lab's 75-variation grid."""
    return json.loads(sample_file(SAMPLE_REQUEST).read_text())


def _market_data(market: Any, base_dir: Path | None) -> Any:
    if market in (None, "sample"):
        return json.loads(sample_file("market.json").read_text())
    if isinstance(market, dict):
        return market
    if isinstance(market, str):
        path = Path(market) if base_dir is None or Path(market).is_absolute() else base_dir / market
        try:
            return json.loads(path.read_text())
        except OSError as exc:
            raise DesignRequestError(f"market: cannot read {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise DesignRequestError(f"market: {path} is not JSON: {exc}") from None
    raise DesignRequestError('market: give "sample", a file path or the market data object')


def build_request(
    data: Mapping[str, Any], store: ArtifactStore, *, base_dir: Path | None = None
) -> ProductDesignRequested:
    """The event a request file describes; its market data is put in the artifact store first.

    Raises DesignRequestError naming the field when the file does not describe a valid request.
    """
    unknown = set(data) - {"requirements", "market", "constraints", "client_base", "request_id"}
    if unknown:
        raise DesignRequestError(f"{sorted(unknown)[0]}: unknown field of a design request")
    if "requirements" not in data:
        raise DesignRequestError("requirements: missing (the base note, grid, targets and limits)")
    try:
        requirements = DesignRequirements.model_validate(data["requirements"])
    except ValidationError as exc:
        raise DesignRequestError(str(invalid_from_validation(exc, prefix="requirements"))) from None
    try:
        constraints = DesignConstraints.model_validate(data.get("constraints") or {})
    except ValidationError as exc:
        raise DesignRequestError(str(invalid_from_validation(exc, prefix="constraints"))) from None
    market_ref = store.put_json(_market_data(data.get("market"), base_dir))
    try:
        return ProductDesignRequested(
            request_id=data.get("request_id") or f"design-{uuid.uuid4().hex[:12]}",
            requirements=requirements,
            market_ref=market_ref,
            client_base=data.get("client_base") or "sample",
            constraints=constraints,
        )
    except ValidationError as exc:
        raise DesignRequestError(str(invalid_from_validation(exc, prefix=""))) from None


@dataclass
class RequestOutcome:
    """How a request ended: its final event and every desk event seen for it, in log order."""

    request_id: str
    final: Envelope
    events: list[Envelope] = field(default_factory=list)

    @property
    def proposed(self) -> bool:
        return self.final.type == ProductProposalPublished.event_type


class RequestTimedOut(TimeoutError):
    """The request had not ended when the wait ran out; names the stages reached."""


async def submit_and_follow(
    transport: Transport,
    request: ProductDesignRequested,
    *,
    timeout: float,
    on_event: Callable[[Envelope], None] | None = None,
) -> RequestOutcome:
    """Publish the request and read `desk.structured` until its proposal or rejection."""
    subscription = await subscribe_from_now(
        transport, f"{PRODUCER}-follow-{request.request_id}-{uuid.uuid4().hex[:6]}", [DESK_STRUCTURED]
    )
    seen: list[Envelope] = []
    key = request.request_id.encode()
    try:
        envelope = CATALOG.envelope(request, producer=PRODUCER, correlation_id=uuid.uuid4())
        await transport.publish(DESK_STRUCTURED, envelope)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                stages = ", ".join(STAGE_OF_TYPE.get(e.type, e.type) for e in seen) or "none"
                raise RequestTimedOut(
                    f"design request {request.request_id} has not ended after {timeout:g} s; stages reached: "
                    f"{stages} (are the structured desk's agents and the engine workers running?)"
                )
            batches = await subscription.poll(min(remaining, 0.5))
            for records in batches.values():
                for record in records:
                    if record.key != key:
                        continue
                    try:
                        decoded = decode(record.value)
                    except InvalidEvent:
                        continue
                    seen.append(decoded.envelope)
                    if on_event is not None:
                        on_event(decoded.envelope)
                    if decoded.envelope.type in FINAL_TYPES:
                        return RequestOutcome(request.request_id, decoded.envelope, seen)
    finally:
        await subscription.close()
