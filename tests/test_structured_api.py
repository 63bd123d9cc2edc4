"""The structured desk over HTTP: GET /structured/requests and /structured/requests/{request_id}.

Authentication is checked without a database (refused before any query). The integration tests
fold a hand-built request (tests/structured_desk_events.py) into the desk view with the real
runtime on a fresh PostgreSQL database, then query it through `create_app` over httpx's
`ASGITransport`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bus.database import connect_pool
from bus.envelope import Envelope
from bus.memory import MemoryTransport
from bus.runtime.progress import wait_settled
from bus.runtime.runner import RuntimeOptions
from bus.topics import DESK_STRUCTURED, topic_specs
from projections.structured_desk import StructuredDeskProjection
from risklab.api import create_app
from risklab.process import running
from risklab.settings import Settings
from structured_desk_events import RECOMMENDED, T0, chain, full_request, rejection, requested

TOKENS = {"reader": "reader-secret", "publisher": "publisher-secret", "admin": "admin-secret"}
READER = {"Authorization": f"Bearer {TOKENS['reader']}"}
OPTIONS = RuntimeOptions(poll_timeout_seconds=0.05, backoff_seconds=0.05, max_backoff_seconds=0.2)


def settings_for(home: Path) -> Settings:
    return Settings(home=home, api_tokens=TOKENS, transport="memory")


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The API without a database: authentication refuses before any query."""
    app = create_app(settings_for(tmp_path), transport=MemoryTransport(topic_specs()), pool=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://risklab.test") as client:
        yield client


@dataclass
class Desk:
    client: httpx.AsyncClient
    proposed: list[Envelope]
    rejected: Envelope


@pytest.fixture
async def desk(database_url: str, tmp_path: Path) -> AsyncIterator[Desk]:
    """A proposed request, a rejected one and one just requested (its id has a slash), folded
    into the desk view; the API on the same database."""
    transport = MemoryTransport(topic_specs())
    proposed = full_request("REQ-API")
    [rejected] = chain([rejection("REQ-REJ")])
    just_asked = chain([requested("desk/REQ-7")], start=T0.replace(year=2027))
    for env in [*proposed, rejected, *just_asked]:
        await transport.publish(DESK_STRUCTURED, env)
    pool = await connect_pool(database_url, min_size=1, max_size=8)
    try:
        async with running([StructuredDeskProjection()], transport, pool, OPTIONS) as group:
            await wait_settled(pool, transport, group.consumers(), timeout=30)
        app = create_app(settings_for(tmp_path), transport=transport, pool=pool)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://risklab.test") as client:
            yield Desk(client, proposed, rejected)
    finally:
        await pool.close()


# -- without a database ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/structured/requests", "/structured/requests/REQ-API"])
async def test_a_token_is_needed(bare: httpx.AsyncClient, path: str) -> None:
    response = await bare.get(path)
    assert error_of(response, 401) == {"field": "Authorization", "reason": "a bearer token is required"}
    assert response.headers["www-authenticate"] == "Bearer"
    response = await bare.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert error_of(response, 401) == {"field": "Authorization", "reason": "unknown token"}


async def test_openapi_documents_the_endpoints(bare: httpx.AsyncClient) -> None:
    spec = (await bare.get("/openapi.json")).json()
    listing = spec["paths"]["/structured/requests"]["get"]
    one = spec["paths"]["/structured/requests/{request_id}"]["get"]
    assert listing["tags"] == one["tags"] == ["structured desk"]
    assert one["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("StructuredRequestView")
    assert [p["name"] for p in listing["parameters"]] == ["limit"]
    view = spec["components"]["schemas"]["StructuredRequestView"]["properties"]
    assert {"status", "timeline", "structures", "stress", "suitability", "compliance", "ranking"} <= set(view)
    assert listing["security"] == one["security"] == [{"HTTPBearer": []}]


async def test_a_bad_limit_is_422_naming_it(bare: httpx.AsyncClient) -> None:
    response = await bare.get("/structured/requests", params={"limit": 0}, headers=READER)
    assert error_of(response, 422)["field"] == "query.limit"


# -- on the desk view ------------------------------------------------------------------------


@pytest.mark.integration
async def test_one_request_with_everything_the_desk_concluded(desk: Desk) -> None:
    response = await desk.client.get("/structured/requests/REQ-API", headers=READER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["request_id"], body["status"], body["recommendation"]) == ("REQ-API", "proposed", RECOMMENDED)
    assert body["correlation_id"] == str(desk.proposed[0].event_id)
    assert [s["event_id"] for s in body["timeline"]] == [str(e.event_id) for e in desk.proposed]
    assert body["timeline"][-1]["stage"] == "desk-integrator"
    assert [s["structure_id"] for s in body["structures"]] == ["AC-60-8", "AC-50-7", "AC-70-9"]
    assert {s["structure_id"]: s["passes"] for s in body["stress"]} == {
        "AC-60-8": True,
        "AC-50-7": True,
        "AC-70-9": False,
    }
    assert len(body["suitability"]) == 6 and sum(c["assigned"] for c in body["suitability"]) == 2
    assert {c["decision"] for c in body["compliance"]} == {"approve", "approve_with_conditions", "reject"}
    assert [r["rank"] for r in body["ranking"]] == [1, 2, 3]
    assert body["proposal"]["rationale"].startswith("Best client value")
    assert body["rejected_by"] is None


@pytest.mark.integration
async def test_the_list_and_ids_with_a_slash(desk: Desk) -> None:
    response = await desk.client.get("/structured/requests", headers=READER)
    assert response.status_code == 200, response.text
    listed = [(r["request_id"], r["status"], r["structures"]) for r in response.json()["requests"]]
    assert listed == [("desk/REQ-7", "requested", 0), ("REQ-API", "proposed", 3), ("REQ-REJ", "rejected", 0)]
    response = await desk.client.get("/structured/requests", params={"limit": 1}, headers=READER)
    assert [r["request_id"] for r in response.json()["requests"]] == ["desk/REQ-7"]

    response = await desk.client.get("/structured/requests/desk/REQ-7", headers=READER)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "requested"

    response = await desk.client.get("/structured/requests/REQ-REJ", headers=READER)
    body = response.json()
    assert (body["status"], body["rejected_by"], body["requested_at"]) == ("rejected", "risk-manager", None)
    assert body["timeline"] == [
        {
            "stage": "risk-manager",
            "event_type": "structured.product_design_rejected",
            "event_id": str(desk.rejected.event_id),
            "occurred_at": "2026-11-24T09:00:00Z",
        }
    ]


@pytest.mark.integration
async def test_an_unknown_request_is_404_naming_it(desk: Desk) -> None:
    response = await desk.client.get("/structured/requests/REQ-NOPE", headers=READER)
    assert error_of(response, 404) == {"field": "request_id", "reason": "no structured design request 'REQ-NOPE'"}
