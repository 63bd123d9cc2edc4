"""The HTTP API: bearer roles, refusals that name the field and change nothing, publishing, the audit
trail and early-warning board over HTTP, OpenAPI, and the alert stream over server-sent events.

Requests go through httpx's `ASGITransport` straight into `create_app(...)` on a memory transport.
Tests that only exercise authentication and refusals run without a database (`pool=None`: those
paths never touch it). Tests marked `integration` give the app a pool on a fresh PostgreSQL
database and run the real actors (`risklab.groups.all_actors`) on the same transport and pool, so
queries answer with what the platform derived. The alert stream is read through a real uvicorn
server on an ephemeral port, since `ASGITransport` buffers a response until it ends.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from bus.database import connect_pool
from bus.memory import MemoryTransport
from bus.runtime.progress import wait_settled
from bus.runtime.runner import RuntimeOptions
from bus.topics import ALL_TOPICS, MARKET_DATA, PORTFOLIO_TRADES, USER_TOPICS, topic_specs
from risklab.api import MAX_BODY_BYTES, create_app
from risklab.groups import all_actors
from risklab.process import RunningActors, running
from risklab.settings import Settings

TOKENS = {"reader": "reader-secret", "publisher": "publisher-secret", "admin": "admin-secret"}
READER = {"Authorization": f"Bearer {TOKENS['reader']}"}
PUBLISHER = {"Authorization": f"Bearer {TOKENS['publisher']}"}
ADMIN = {"Authorization": f"Bearer {TOKENS['admin']}"}
SMALL_LIMIT = 8192
OPTIONS = RuntimeOptions(poll_timeout_seconds=0.05, backoff_seconds=0.05, max_backoff_seconds=0.2)
TRADES_URL = f"/topics/{PORTFOLIO_TRADES}/events"


def settings_for(home: Path) -> Settings:
    return Settings(home=home, api_tokens=TOKENS, max_message_bytes=SMALL_LIMIT, transport="memory")


# -- submissions ----------------------------------------------------------------------------


def trade(trade_id: str, notional: float, portfolio: str = "PM-API", **extra: Any) -> dict[str, Any]:
    return {
        "type": "portfolio.trade_booked",
        "payload": {
            "portfolio_id": portfolio,
            "trade_id": trade_id,
            "instrument_type": "equity_swap",
            "underlying": "SPX",
            "direction": "long",
            "notional": notional,
            "currency": "USD",
            "trade_date": "2026-11-02",
        },
        **extra,
    }


def limit(capacity: float, portfolio: str = "PM-API", **extra: Any) -> dict[str, Any]:
    return {
        "type": "portfolio.limit_set",
        "payload": {"portfolio_id": portfolio, "metric": "gross_notional", "capacity": capacity, "currency": "USD"},
        **extra,
    }


def snapshot(quotes: int) -> dict[str, Any]:
    return {
        "type": "market.snapshot_published",
        "payload": {
            "snapshot_id": "EOD-API",
            "universe": "api-eod",
            "as_of": "2026-11-02T08:00:00+00:00",
            "base_currency": "USD",
            "quotes": [
                {"instrument": f"Q-{i:05d}", "quote_type": "spot", "value": float(i + 1), "unit": "USD"}
                for i in range(quotes)
            ],
        },
    }


def without_notional(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "payload": {k: v for k, v in event["payload"].items() if k != "notional"}}


async def log_size(transport: MemoryTransport) -> int:
    """Records on every topic of the log."""
    return sum((await transport.end_offsets(list(ALL_TOPICS))).values())


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


# -- fixtures -------------------------------------------------------------------------------


@dataclass
class Bare:
    client: httpx.AsyncClient
    transport: MemoryTransport


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[Bare]:
    """The API on a memory transport and no database: for authentication and refusals."""
    transport = MemoryTransport(topic_specs(6, SMALL_LIMIT))
    app = create_app(settings_for(tmp_path), transport=transport, pool=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://risklab.test") as client:
        yield Bare(client, transport)


@dataclass
class Live:
    client: httpx.AsyncClient
    transport: MemoryTransport
    pool: asyncpg.Pool
    group: RunningActors
    app: Any

    async def settled(self) -> None:
        await wait_settled(self.pool, self.transport, self.group.consumers(), timeout=30)


@pytest.fixture
async def live(database_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    """The API with every actor group running on the same memory transport and a fresh database."""
    settings = settings_for(tmp_path)
    transport = MemoryTransport(topic_specs(6, SMALL_LIMIT))
    pool = await connect_pool(database_url, min_size=1, max_size=16)
    try:
        actors = await all_actors(settings, pool)
        async with running(actors, transport, pool, OPTIONS) as group:
            app = create_app(settings, transport=transport, pool=pool)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://risklab.test") as client:
                live = Live(client, transport, pool, group, app)
                # every actor has applied its migrations (a runner is idle only after them) and read the (empty) log
                await asyncio.wait_for(asyncio.gather(*(r.idle.wait() for r in group.runners)), timeout=30)
                await live.settled()
                yield live
    finally:
        await pool.close()


# -- service endpoints ----------------------------------------------------------------------


async def test_health_needs_no_token(bare: Bare) -> None:
    response = await bare.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_openapi_lists_the_endpoints(bare: Bare) -> None:
    response = await bare.client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["title"] == "risklab"
    paths = spec["paths"]
    assert {
        "/health": {"get"},
        "/topics/{topic}/events": {"post"},
        "/audit/correlations/{correlation_id}": {"get"},
        "/audit/events/{event_id}/lineage": {"get"},
        "/audit/verify": {"post"},
        "/early-warning": {"get"},
        "/alerts/stream": {"get"},
    }.items() <= {path: set(ops) for path, ops in paths.items()}.items()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


# -- authentication -------------------------------------------------------------------------


async def test_missing_token_is_401_with_www_authenticate(bare: Bare) -> None:
    response = await bare.client.post(TRADES_URL, json={"events": [trade("T-1", 1e6)]})
    assert error_of(response, 401) == {"field": "Authorization", "reason": "a bearer token is required"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert await log_size(bare.transport) == 0


async def test_non_bearer_scheme_is_401(bare: Bare) -> None:
    response = await bare.client.post(
        TRADES_URL, json={"events": [trade("T-1", 1e6)]}, headers={"Authorization": "Basic cHVibGlzaGVyOnNlY3JldA=="}
    )
    assert error_of(response, 401) == {"field": "Authorization", "reason": "a bearer token is required"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert await log_size(bare.transport) == 0


async def test_unknown_token_is_401(bare: Bare) -> None:
    response = await bare.client.post(
        TRADES_URL, json={"events": [trade("T-1", 1e6)]}, headers={"Authorization": "Bearer publisher-secreT"}
    )
    assert error_of(response, 401) == {"field": "Authorization", "reason": "unknown token"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert await log_size(bare.transport) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/early-warning"),
        ("get", f"/audit/correlations/{uuid.uuid4()}"),
        ("get", f"/audit/events/{uuid.uuid4()}/lineage"),
        ("post", "/audit/verify"),
        ("get", "/alerts/stream"),
    ],
)
async def test_every_query_needs_a_token(bare: Bare, method: str, path: str) -> None:
    response = await bare.client.request(method.upper(), path)
    assert error_of(response, 401)["field"] == "Authorization"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_reader_token_cannot_publish(bare: Bare) -> None:
    response = await bare.client.post(TRADES_URL, json={"events": [trade("T-1", 1e6)]}, headers=READER)
    assert error_of(response, 403) == {
        "field": "Authorization",
        "reason": "this needs the publisher role; the token has reader",
    }
    assert await log_size(bare.transport) == 0


@pytest.mark.parametrize("headers", [PUBLISHER, ADMIN], ids=["publisher", "admin"])
async def test_publisher_and_admin_can_publish(bare: Bare, headers: dict[str, str]) -> None:
    response = await bare.client.post(
        TRADES_URL, json={"events": [limit(10e6), trade("T-1", 1e6), trade("T-2", 2e6)]}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["topic"] == PORTFOLIO_TRADES
    assert body["published"] == 3
    assert len({uuid.UUID(i) for i in body["event_ids"]}) == 3
    assert await log_size(bare.transport) == 3
    assert sum((await bare.transport.end_offsets([PORTFOLIO_TRADES])).values()) == 3


async def test_reader_cannot_verify(bare: Bare) -> None:
    response = await bare.client.post("/audit/verify", headers=READER)
    assert error_of(response, 403) == {
        "field": "Authorization",
        "reason": "this needs the admin role; the token has reader",
    }
    response = await bare.client.post("/audit/verify", headers=PUBLISHER)
    assert error_of(response, 403)["reason"] == "this needs the admin role; the token has publisher"


# -- bad input: named, and nothing published ---------------------------------------------------


async def test_malformed_json_body_is_400(bare: Bare) -> None:
    body = b'{"events": [{"type": "portfolio.trade_booked",\n "payload": {oops}}]}'
    response = await bare.client.post(
        TRADES_URL, content=body, headers={**PUBLISHER, "Content-Type": "application/json"}
    )
    assert error_of(response, 400) == {
        "field": "body",
        "reason": "malformed JSON: Expecting property name enclosed in double quotes at line 2 column 14",
    }
    assert await log_size(bare.transport) == 0


@pytest.mark.parametrize(
    ("body", "reason_start"),
    [
        ({"event": [{}]}, 'expected {"events": [...]}'),
        ({"events": []}, 'expected {"events": [...]}'),
        ([1, 2], 'expected {"events": [...]}'),
        ({"events": ["not an object"]}, 'expected {"events": [...]}'),
    ],
)
async def test_body_that_is_not_an_event_list_is_422(bare: Bare, body: Any, reason_start: str) -> None:
    response = await bare.client.post(TRADES_URL, json=body, headers=PUBLISHER)
    error = error_of(response, 422)
    assert error["field"] == "events"
    assert error["reason"].startswith(reason_start)
    assert "\n" not in error["reason"]
    assert await log_size(bare.transport) == 0


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        (
            {**trade("T-9", 1e6), "type": "portfolio.trade_exploded"},
            "type",
            "unknown event type 'portfolio.trade_exploded'",
        ),
        (
            # a reason containing "exceeds" is still a 422, not a size refusal
            {**trade("T-9", 1e6), "type": "portfolio.exceeds_limit"},
            "type",
            "unknown event type 'portfolio.exceeds_limit'",
        ),
        (
            trade("T-9", 1e6, version=2),
            "version",
            "portfolio.trade_booked version 2 is newer than the latest known version 1",
        ),
        (without_notional(trade("T-9", 1e6)), "payload.notional", "Field required"),
        ({**trade("T-9", 1e6), "colour": "red"}, "colour", "Extra inputs are not permitted"),
        (
            snapshot(1),
            "type",
            "market.snapshot_published belongs on topic 'market.data', not 'portfolio.trades'",
        ),
    ],
    ids=["unknown-type", "type-saying-exceeds", "newer-version", "missing-field", "extra-field", "wrong-topic"],
)
async def test_invalid_event_is_422_naming_line_field_reason(
    bare: Bare, bad: dict[str, Any], field: str, reason: str
) -> None:
    events = [limit(10e6), trade("T-1", 1e6), bad, trade("T-2", 1e6)]
    response = await bare.client.post(TRADES_URL, json={"events": events}, headers=PUBLISHER)
    assert error_of(response, 422) == {"field": field, "reason": reason, "line": 3}
    assert await log_size(bare.transport) == 0


async def test_invalid_line_of_ndjson_is_422_naming_line(bare: Bare) -> None:
    body = "\n".join(
        [
            json.dumps(trade("T-1", 1e6)),
            "",
            json.dumps(without_notional(trade("T-2", 1e6))),
            json.dumps(trade("T-3", 1)),
        ]
    )
    response = await bare.client.post(
        TRADES_URL, content=body.encode(), headers={**PUBLISHER, "Content-Type": "application/x-ndjson"}
    )
    assert error_of(response, 422) == {"field": "payload.notional", "reason": "Field required", "line": 3}
    assert await log_size(bare.transport) == 0


async def test_malformed_line_of_ndjson_is_422_naming_line_and_column(bare: Bare) -> None:
    body = "\n".join([json.dumps(trade("T-1", 1e6)), '{"type": "portfolio.trade_booked", payload: {}}'])
    response = await bare.client.post(
        TRADES_URL, content=body.encode(), headers={**PUBLISHER, "Content-Type": "application/x-ndjson"}
    )
    assert error_of(response, 422) == {
        "field": None,
        "reason": "malformed JSON: Expecting property name enclosed in double quotes at column 36",
        "line": 2,
    }
    assert await log_size(bare.transport) == 0


async def test_good_ndjson_publishes_every_line(bare: Bare) -> None:
    body = "\n".join(json.dumps(e) for e in [limit(10e6), trade("T-1", 1e6), trade("T-2", 1e6)]) + "\n"
    response = await bare.client.post(
        TRADES_URL, content=body.encode(), headers={**PUBLISHER, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["published"] == 3
    assert await log_size(bare.transport) == 3


async def test_oversized_event_is_413(bare: Bare) -> None:
    response = await bare.client.post(
        f"/topics/{MARKET_DATA}/events", json={"events": [snapshot(2), snapshot(400)]}, headers=PUBLISHER
    )
    error = error_of(response, 413)
    assert (error["field"], error["line"]) == ("payload", 2)
    size = int(error["reason"].split()[2])
    assert size > SMALL_LIMIT
    assert error["reason"] == (
        f"event of {size} bytes exceeds the {SMALL_LIMIT}-byte limit; "
        "put large content in the artifact store and send a reference"
    )
    assert await log_size(bare.transport) == 0


async def test_oversized_body_is_413(bare: Bare) -> None:
    body = b'{"events": [' + b" " * MAX_BODY_BYTES + b"]}"
    response = await bare.client.post(
        TRADES_URL, content=body, headers={**PUBLISHER, "Content-Type": "application/json"}
    )
    assert error_of(response, 413) == {
        "field": "body",
        "reason": f"request body of {len(body)} bytes exceeds {MAX_BODY_BYTES}",
    }
    assert await log_size(bare.transport) == 0


@pytest.mark.parametrize("topic", ["no.such.topic", "alerts", "deadletter", "compute.results"])
async def test_topic_users_do_not_publish_to_is_404(bare: Bare, topic: str) -> None:
    response = await bare.client.post(
        f"/topics/{topic}/events", json={"events": [trade("T-1", 1e6)]}, headers=PUBLISHER
    )
    assert error_of(response, 404) == {
        "field": "topic",
        "reason": f"{topic!r} is not a topic users publish to; use one of {list(USER_TOPICS)}",
    }
    assert await log_size(bare.transport) == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [("/audit/correlations/not-a-uuid", "correlation_id"), ("/audit/events/12345/lineage", "event_id")],
)
async def test_bad_uuid_in_path_is_400_naming_the_field(bare: Bare, path: str, field: str) -> None:
    response = await bare.client.get(path, headers=READER)
    value = path.split("/")[3]
    assert error_of(response, 400) == {"field": field, "reason": f"{value!r} is not a UUID"}


async def test_bad_query_parameter_is_422_naming_it(bare: Bare) -> None:
    response = await bare.client.get("/alerts/stream", params={"from_beginning": "maybe"}, headers=READER)
    error = error_of(response, 422)
    assert error["field"] == "query.from_beginning"
    assert "boolean" in error["reason"]


# -- the platform behind the API (real PostgreSQL) ------------------------------------------------


@pytest.mark.integration
async def test_publish_then_query_audit_board_and_verify(live: Live) -> None:
    request_id = uuid.uuid4()
    events = [
        limit(100e6, correlation_id=str(request_id)),
        trade("T-1", 40e6, correlation_id=str(request_id)),
        trade("T-2", 35e6, correlation_id=str(request_id)),  # 75m of 100m: high
    ]
    response = await live.client.post(TRADES_URL, json={"events": events}, headers=PUBLISHER)
    assert response.status_code == 200, response.text
    limit_id, first_id, second_id = (uuid.UUID(i) for i in response.json()["event_ids"])
    await live.settled()

    # the whole request by its correlation id: the user's three events, one indicator after each
    # (from the portfolio monitor) and one alert when the book crossed 0.7 of its limit
    response = await live.client.get(f"/audit/correlations/{request_id}", headers=READER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["correlation_id"] == str(request_id)
    rows = body["events"]
    assert [r["seq"] for r in rows] == list(range(1, 8))
    types = sorted(r["type"] for r in rows)
    assert types == sorted(
        ["portfolio.limit_set"]
        + ["portfolio.trade_booked"] * 2
        + ["risk.indicator_observed"] * 3
        + ["risk.alert_raised"]
    )
    by_id = {uuid.UUID(r["event_id"]): r for r in rows}
    assert {limit_id, first_id, second_id} <= set(by_id)
    assert all(by_id[i]["producer"] == "risklab-api" for i in (limit_id, first_id, second_id))
    assert all(r["correlation_id"] == str(request_id) for r in rows)

    indicators = {
        uuid.UUID(r["causation_id"]): r for r in rows if r["type"] == "risk.indicator_observed"
    }  # by the event that caused them
    assert set(indicators) == {limit_id, first_id, second_id}
    crossing = indicators[second_id]
    assert crossing["producer"].startswith("portfolio-monitor")
    assert crossing["payload"]["value"] == 75e6
    assert crossing["payload"]["capacity"] == 100e6
    (alert,) = [r for r in rows if r["type"] == "risk.alert_raised"]
    assert alert["causation_id"] == crossing["event_id"]

    # lineage: from the alert back through the monitor's indicator to the user's trade
    response = await live.client.get(f"/audit/events/{alert['event_id']}/lineage", headers=READER)
    assert response.status_code == 200, response.text
    chain = response.json()["lineage"]
    assert [(s["depth"], s["event_id"], s["type"]) for s in chain] == [
        (0, alert["event_id"], "risk.alert_raised"),
        (1, crossing["event_id"], "risk.indicator_observed"),
        (2, str(second_id), "portfolio.trade_booked"),
    ]
    response = await live.client.get(f"/audit/events/{crossing['event_id']}/lineage", headers=READER)
    assert [s["event_id"] for s in response.json()["lineage"]] == [crossing["event_id"], str(second_id)]
    assert response.json()["lineage"][-1]["causation_id"] is None

    # the board
    response = await live.client.get("/early-warning", headers=READER)
    assert response.status_code == 200, response.text
    board = response.json()
    assert board["thresholds"] == {"high": 0.7, "critical": 0.9}
    (row,) = board["indicators"]
    assert (row["subject"], row["metric"], row["level"]) == ("PM-API", "gross_notional_usd", "high")
    assert (row["value"], row["capacity"], row["unit"]) == (75e6, 100e6, "USD")
    assert row["ratio"] == pytest.approx(0.75)
    assert row["last_event_id"] == crossing["event_id"]

    # the hash chains hold
    response = await live.client.post("/audit/verify", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() == {"intact": True, "problems": []}


@pytest.mark.integration
async def test_unknown_ids_are_404_naming_the_field(live: Live) -> None:
    missing = uuid.uuid4()
    response = await live.client.get(f"/audit/correlations/{missing}", headers=READER)
    assert error_of(response, 404) == {"field": "correlation_id", "reason": f"no events with correlation id {missing}"}
    response = await live.client.get(f"/audit/events/{missing}/lineage", headers=READER)
    assert error_of(response, 404) == {"field": "event_id", "reason": f"no event {missing} in the audit trail"}
    response = await live.client.get("/early-warning", headers=READER)
    assert response.status_code == 200
    assert response.json()["indicators"] == []


@pytest.mark.integration
async def test_refused_requests_change_nothing(live: Live) -> None:
    response = await live.client.post(TRADES_URL, json={"events": [limit(10e6)]}, headers=PUBLISHER)
    assert response.status_code == 200, response.text
    await live.settled()
    before = await live.transport.end_offsets(list(ALL_TOPICS))
    board_before = (await live.client.get("/early-warning", headers=READER)).json()

    refused = [
        (TRADES_URL, {}, {"events": [trade("T-1", 9e6)]}, 401),
        (TRADES_URL, {"Authorization": "Bearer nope"}, {"events": [trade("T-1", 9e6)]}, 401),
        (TRADES_URL, READER, {"events": [trade("T-1", 9e6)]}, 403),
        (TRADES_URL, PUBLISHER, {"events": [trade("T-1", 9e6), without_notional(trade("T-2", 1e6))]}, 422),
        (TRADES_URL, PUBLISHER, {"events": [trade("T-1", 9e6, version=5)]}, 422),
        ("/topics/alerts/events", ADMIN, {"events": [trade("T-1", 9e6)]}, 404),
        ("/audit/verify", READER, None, 403),
        ("/audit/verify", PUBLISHER, None, 403),
    ]
    for url, headers, body, status in refused:
        response = await live.client.post(url, json=body, headers=headers)
        assert response.status_code == status, (url, headers, response.text)
    await live.settled()
    assert await live.transport.end_offsets(list(ALL_TOPICS)) == before
    assert (await live.client.get("/early-warning", headers=READER)).json() == board_before

    response = await live.client.post("/audit/verify", headers=ADMIN)
    assert response.json() == {"intact": True, "problems": []}


# -- the alert stream (server-sent events through a real server) ----------------------------------


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """`app` on uvicorn at 127.0.0.1 on an ephemeral port, in this loop; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise AssertionError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """Server-sent events as {field: value}; comments (": ...") come as {"comment": ...}."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if fields:
                yield fields
            fields = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


@pytest.mark.integration
async def test_alert_stream_delivers_alert_raised(live: Live) -> None:
    async with asyncio.timeout(45), serving(live.app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        response = await http.get("/alerts/stream", headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401

        async with http.stream("GET", "/alerts/stream", params={"from_beginning": "true"}, headers=READER) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = sse_events(stream)
            assert await anext(events) == {"comment": "connected"}

            published = await http.post(
                TRADES_URL,
                json={
                    "events": [
                        limit(200e6, portfolio="PM-SSE"),
                        trade("T-1", 100e6, portfolio="PM-SSE"),
                        trade("T-2", 45e6, portfolio="PM-SSE"),
                    ]
                },  # 145m of 200m: 0.725, high
                headers=PUBLISHER,
            )
            assert published.status_code == 200, published.text
            crossing_trade = published.json()["event_ids"][2]

            async for event in events:
                if "comment" in event:
                    continue
                assert event["event"] == "alert_raised", event
                envelope = json.loads(event["data"])
                break
            else:
                raise AssertionError("the stream ended without an alert")

    assert envelope["event_id"] == event["id"]
    assert envelope["type"] == "risk.alert_raised"
    assert envelope["correlation_id"] == crossing_trade  # the trade's own chain
    payload = envelope["payload"]
    assert (payload["subject"], payload["metric"], payload["level"], payload["previous_level"]) == (
        "PM-SSE",
        "gross_notional_usd",
        "high",
        "ok",
    )
    assert payload["ratio"] == pytest.approx(0.725)
    assert payload["threshold"] == 0.7
