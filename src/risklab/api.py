"""The HTTP API: publish events, query the audit trail, the early-warning board and the structured
desk's design requests, stream alerts.

Bearer-token authentication with three roles, each including the ones before it: reader (queries
and the alert stream), publisher (publish events), admin (verify the audit trail). Tokens come from
`RISKLAB_API_TOKENS`. Every refusal is a JSON body `{"error": {"field": ..., "reason": ...}}` with
the status that fits (400, 401, 403, 404, 413, 422); nothing is published unless every event of a
request is valid.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from bus.codec import decode
from bus.errors import BusError, InvalidEvent
from bus.topics import ALERTS, USER_TOPICS
from bus.transport import TopicPartition, Transport
from risklab import queries
from risklab.ingest import EventTooLarge, IngestError, parse_submissions
from risklab.settings import Settings

log = logging.getLogger("risklab.api")

Role = Literal["reader", "publisher", "admin"]
_RANK: dict[str, int] = {"reader": 1, "publisher": 2, "admin": 3}
MAX_BODY_BYTES = 16 * 1024 * 1024
API_PRODUCER = "risklab-api"


class ApiError(HTTPException):
    """An HTTP error whose body names the field at fault and the reason."""

    def __init__(self, status: int, reason: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(status, {"field": field, "reason": reason, **extra})


class PublishRequest(BaseModel):
    """Events to publish on one topic, each as `{"type", "payload", ...}` (see `risklab publish`)."""

    events: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


class PublishResult(BaseModel):
    topic: str
    published: int
    event_ids: list[str]


class StructuredRequestSummary(BaseModel):
    """One design request of the structured desk, as listed."""

    request_id: str
    status: Literal["requested", "in_progress", "proposed", "rejected"]
    correlation_id: str | None = Field(description="The correlation of the request's events (audit trail).")
    requested_at: datetime | None = Field(description="When the request was published; None if not seen yet.")
    updated_at: datetime = Field(description="occurred_at of the latest event of the request.")
    recommendation: str | None = Field(description="The recommended structure, once proposed.")
    rejected_by: str | None = Field(description="The agent that rejected the request, if one did.")
    rejected_field: str | None
    rejected_reason: str | None
    structures: int = Field(description="Structures priced for the request.")


class StructuredRequestList(BaseModel):
    requests: list[StructuredRequestSummary]


class StructuredStage(BaseModel):
    """One stage of a request as seen on the log; `event_id` leads to its lineage."""

    stage: str = Field(description="The agent that spoke (requester for the request itself).")
    event_type: str
    event_id: str
    occurred_at: datetime


Rows = list[dict[str, Any]]


class StructuredRequestView(BaseModel):
    """Everything the desk view holds on one request. Figures are fractions of notional unless
    named otherwise; every row carries the `event_id` it came from."""

    request_id: str
    status: Literal["requested", "in_progress", "proposed", "rejected"]
    correlation_id: str | None
    requested_at: datetime | None
    updated_at: datetime
    requirements: dict[str, Any] | None = Field(description="The request's base note, grid, targets and limits.")
    constraints: dict[str, Any] | None
    client_base: str | None
    market_uri: str | None
    market_sha256: str | None
    market_checks: Rows | None = Field(description="The market strategist's checks of the market data.")
    rejected_by: str | None
    rejected_field: str | None
    rejected_reason: str | None
    recommendation: str | None
    proposal: dict[str, Any] | None = Field(
        description="weights, pareto_set, recommendation, segments, rationale, documents, narrative."
    )
    timeline: list[StructuredStage] = Field(description="The stages seen, oldest first.")
    structures: Rows = Field(description="Priced structures with their metrics, in ranking order.")
    assumptions: Rows
    scenarios: Rows
    stress: Rows = Field(description="VaR/ES 99%, stressed VaR, gap and trigger risk, capital at risk, pass/fail.")
    segments: Rows
    suitability: Rows = Field(description="The suitability matrix (structure x segment), assigned pairs marked.")
    compliance: Rows = Field(description="Decision per structure, rules fired, target markets, KID, documents.")
    ranking: Rows


bearer = HTTPBearer(auto_error=False)


def role_of(settings: Settings, token: str) -> str | None:
    """The highest role whose token matches, compared in constant time."""
    found = None
    for role, secret in settings.api_tokens.items():
        if role in _RANK and hmac.compare_digest(secret.get_secret_value().encode(), token.encode()):
            if found is None or _RANK[role] > _RANK[found]:
                found = role
    return found


def require(role: Role):
    """A dependency refusing requests without a token of `role` or above (401 / 403)."""

    def check(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        settings: Settings = request.app.state.settings
        if creds is None or creds.scheme.lower() != "bearer":
            raise HTTPException(
                401,
                {"field": "Authorization", "reason": "a bearer token is required"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        held = role_of(settings, creds.credentials)
        if held is None:
            raise HTTPException(
                401, {"field": "Authorization", "reason": "unknown token"}, headers={"WWW-Authenticate": "Bearer"}
            )
        if _RANK[held] < _RANK[role]:
            raise ApiError(403, f"this needs the {role} role; the token has {held}", "Authorization")
        return held

    return check


def create_app(settings: Settings, transport: Transport | None = None, pool: asyncpg.Pool | None = None) -> FastAPI:
    """The API on a given transport and pool; without them it opens its own from the settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned: list[Any] = []
        if app.state.transport is None:
            from risklab.servers import open_transport

            app.state.transport = open_transport(settings, client_id="risklab-api")
            await app.state.transport.start()
            owned.append(app.state.transport)
        if app.state.pool is None:
            from bus.database import connect_pool
            from risklab.servers import database_url

            app.state.pool = await connect_pool(database_url(settings))
            owned.append(app.state.pool)
        try:
            yield
        finally:
            for resource in reversed(owned):
                await resource.close()

    app = FastAPI(
        title="risklab",
        version="0.1.0",
        description="Publish market and portfolio events, query the audit trail, the early-warning board "
        "and the structured desk's design requests, and stream alerts.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.transport = transport
    app.state.pool = pool

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else {"field": None, "reason": str(exc.detail)}
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        return JSONResponse({"error": {"field": field, "reason": err["msg"]}}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", incident, request.method, request.url.path)
        return JSONResponse(
            {"error": {"field": None, "reason": f"internal error (incident {incident}); nothing was changed"}},
            status_code=500,
        )

    def parse_uuid(value: str, field: str) -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise ApiError(400, f"{value!r} is not a UUID", field) from None

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers. No authentication."""
        return {"status": "ok"}

    @app.post("/topics/{topic}/events", tags=["events"], response_model=PublishResult)
    async def publish(topic: str, request: Request, _: str = Depends(require("publisher"))) -> PublishResult:
        """Validate every event against the catalog, then publish them all; any error publishes nothing.

        Body: `{"events": [...]}` as JSON, or one event per line with `Content-Type: application/x-ndjson`.
        """
        if topic not in USER_TOPICS:
            raise ApiError(404, f"{topic!r} is not a topic users publish to; use one of {list(USER_TOPICS)}", "topic")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body of {len(body)} bytes exceeds {MAX_BODY_BYTES}", "body")
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
        lines: list[Any]
        if content_type == "application/x-ndjson":
            lines = body.decode("utf-8", errors="replace").splitlines()
        else:
            try:
                data = json.loads(body)
            except json.JSONDecodeError as exc:
                raise ApiError(
                    400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "body"
                ) from None
            try:
                lines = PublishRequest.model_validate(data).events
            except Exception as exc:
                raise ApiError(422, f'expected {{"events": [...]}}: {exc}'.splitlines()[0], "events") from None
        try:
            envelopes = parse_submissions(
                topic, lines, producer=API_PRODUCER, max_message_bytes=settings.max_message_bytes
            )
        except IngestError as exc:
            status = 413 if isinstance(exc, EventTooLarge) else 422
            raise ApiError(status, exc.reason, exc.field, line=exc.line) from None
        try:
            metas = await app.state.transport.publish_many(topic, envelopes)
        except BusError as exc:
            raise ApiError(422, str(exc), "events") from None
        return PublishResult(topic=topic, published=len(metas), event_ids=[str(e.event_id) for e in envelopes])

    @app.get("/audit/correlations/{correlation_id}", tags=["audit"])
    async def audit_show(correlation_id: str, _: str = Depends(require("reader"))) -> dict[str, Any]:
        """Every event of one correlation (a user request or run), in chain order."""
        cid = parse_uuid(correlation_id, "correlation_id")
        async with app.state.pool.acquire() as conn:
            rows = await queries.audit_show(conn, cid)
        if not rows:
            raise ApiError(404, f"no events with correlation id {cid}", "correlation_id")
        return {"correlation_id": str(cid), "events": rows}

    @app.get("/audit/events/{event_id}/lineage", tags=["audit"])
    async def audit_lineage(event_id: str, _: str = Depends(require("reader"))) -> dict[str, Any]:
        """The causation chain from an event back to the user's input that started it."""
        eid = parse_uuid(event_id, "event_id")
        async with app.state.pool.acquire() as conn:
            chain = await queries.audit_lineage(conn, eid)
        if not chain:
            raise ApiError(404, f"no event {eid} in the audit trail", "event_id")
        return {"event_id": str(eid), "lineage": chain}

    @app.post("/audit/verify", tags=["audit"])
    async def audit_verify(_: str = Depends(require("admin"))) -> dict[str, Any]:
        """Check every hash chain; lists each changed or deleted row."""
        async with app.state.pool.acquire() as conn:
            problems = await queries.audit_verify(conn)
        return {"intact": not problems, "problems": problems}

    @app.get("/early-warning", tags=["early warning"])
    async def early_warning(_: str = Depends(require("reader"))) -> dict[str, Any]:
        """The board: current value, capacity, ratio, level, since and trend per subject and metric."""
        async with app.state.pool.acquire() as conn:
            rows = await queries.board(conn)
        return {"thresholds": {"high": queries.HIGH, "critical": queries.CRITICAL}, "indicators": rows}

    @app.get("/structured/requests", tags=["structured desk"], response_model=StructuredRequestList)
    async def structured_requests(
        limit: int = Query(50, ge=1, le=1000, description="Most requests to list."),
        _: str = Depends(require("reader")),
    ) -> dict[str, Any]:
        """The structured desk's design requests, most recently updated first, with their status."""
        return {"requests": await queries.structured_requests(app.state.pool, limit)}

    @app.get("/structured/requests/{request_id:path}", tags=["structured desk"], response_model=StructuredRequestView)
    async def structured_request(request_id: str, _: str = Depends(require("reader"))) -> dict[str, Any]:
        """One design request: status and timeline, structures with their metrics, stress results,
        suitability matrix, compliance decisions, ranking and the proposal."""
        view = await queries.structured_request(app.state.pool, request_id)
        if view is None:
            raise ApiError(404, f"no structured design request {request_id!r}", "request_id")
        return view

    @app.get("/alerts/stream", tags=["alerts"])
    async def alert_stream(
        request: Request, from_beginning: bool = False, _: str = Depends(require("reader"))
    ) -> StreamingResponse:
        """Alerts as server-sent events (`alert_raised` / `alert_cleared`), new ones only unless
        `from_beginning=true`."""
        tr: Transport = app.state.transport

        async def start_at_end(tps: frozenset[TopicPartition]) -> dict[TopicPartition, int]:
            if from_beginning:
                return {tp: 0 for tp in tps}
            ends = await tr.end_offsets([ALERTS])
            return {tp: ends[tp] for tp in tps}

        sub = await tr.subscribe(f"api-alerts-{uuid.uuid4().hex[:12]}", [ALERTS], on_assign=start_at_end)

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"
                idle = 0.0
                while not await request.is_disconnected():
                    batches = await sub.poll(1.0, 200)
                    if not batches:
                        idle += 1.0
                        if idle >= 15:
                            idle = 0.0
                            yield b": keep-alive\n\n"
                        continue
                    idle = 0.0
                    for records in batches.values():
                        for record in records:
                            try:
                                decoded = decode(record.value)
                            except InvalidEvent:
                                continue
                            name = decoded.envelope.type.rsplit(".", 1)[-1]
                            body = decoded.envelope.model_dump_json()
                            yield f"id: {decoded.envelope.event_id}\nevent: {name}\ndata: {body}\n\n".encode()
            finally:
                await sub.close()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


async def serve(settings: Settings) -> None:
    """Run the API with uvicorn until SIGTERM/SIGINT."""
    import uvicorn

    config = uvicorn.Config(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info")
    await uvicorn.Server(config).serve()


__all__ = ["create_app", "serve"]
