"""The structured-products desk view: each design request, its status and every figure the desk concluded.

`StructuredDeskProjection` folds the events of `desk.structured` (see `bus.events.structured`) into
one row per request in `structured_requests` and one table per kind of conclusion: the priced
structures, the assumptions verdicts, the scenarios, the stress results, the client segments, the
suitability matrix, the compliance decisions and the ranking. Every row keeps the id of the event
it came from, so the lineage of any figure can be walked back to the user's request
(`risklab audit lineage <event-id>`).

Rules of the fold, all chosen so that a rebuild from the log gives the same rows:

- The request row is upserted by every event (an event may arrive before the request itself, e.g.
  a rejection): `stages` records each event type seen with its event id and `occurred_at`, and
  `status` is computed from `stages` by the database (rejected > proposed > in_progress >
  requested), so it never depends on the order the stages arrived in. `updated_at` is the latest
  `occurred_at` seen.
- Each stage event is that stage's full answer for the request: its rows replace the rows an
  earlier event of the same type wrote for the request (rows of other events are deleted, the
  event's own rows upserted by their natural keys). A redelivered event therefore writes the same
  rows again; the runtime's processed-events record skips it anyway.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import Any, ClassVar

import asyncpg

import bus.events  # noqa: F401  (registers the event types)
from bus.codec import DecodedEvent
from bus.envelope import Envelope
from bus.events.structured import (
    DESK_EVENTS,
    AssumptionsValidated,
    ComplianceReviewed,
    DistributionPlanned,
    ProductDesignRejected,
    ProductDesignRequested,
    ProductProposalPublished,
    ScenariosGenerated,
    StressTested,
    StructuresProposed,
)
from bus.runtime.actor import HandlerContext
from bus.topics import DESK_STRUCTURED
from projections.generations import DigestSpec, Projection, quote_identifier, render_sql, resolve_schema

PROJECTION = "structured_desk"
"""The projection's name (schemas `proj_structured_desk_gN`; names allow no hyphen)."""

STAGE_OF: dict[str, str] = {
    ProductDesignRequested.event_type: "requester",
    StructuresProposed.event_type: "quant-researcher",
    ScenariosGenerated.event_type: "market-strategist",
    AssumptionsValidated.event_type: "market-strategist",
    StressTested.event_type: "risk-manager",
    DistributionPlanned.event_type: "distribution-specialist",
    ComplianceReviewed.event_type: "compliance-officer",
    ProductProposalPublished.event_type: "desk-integrator",
    ProductDesignRejected.event_type: "rejected",
}
"""Who speaks at each stage, by event type, in the desk's order (a rejection names its agent)."""


@dataclass(frozen=True)
class Table:
    """A per-request table fed by one event type: its key after `request_id`, its other columns
    with their SQL types (for `jsonb_to_recordset`), and `event_id` last. Code constants only."""

    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]

    @property
    def jsonb_columns(self) -> frozenset[str]:
        return frozenset(c for c, t in self.columns if t == "jsonb")

    def all_columns(self) -> tuple[str, ...]:
        return ("request_id", *(c for c, _ in self.columns), "event_id")

    def upsert_sql(self) -> str:
        """Upsert the rows of one event by their natural key: $1 request id, $2 event id, $3 JSON array of rows."""
        names = [c for c, _ in self.columns]
        typed = ", ".join(f"{c} {t}" for c, t in self.columns)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in [*names, "event_id"] if c not in self.key)
        # Only code constants go into this text (table and column names of this module).
        return (
            f"INSERT INTO __schema__.{self.name} (request_id, {', '.join(names)}, event_id) "  # noqa: S608
            f"SELECT $1, {', '.join('x.' + c for c in names)}, $2 FROM jsonb_to_recordset($3::jsonb) AS x({typed}) "
            f"ON CONFLICT (request_id, {', '.join(self.key)}) DO UPDATE SET {updates}"
        )

    def delete_others_sql(self) -> str:
        """Delete the request's rows an earlier event of the same type wrote: $1 request id, $2 event id."""
        return f"DELETE FROM __schema__.{self.name} WHERE request_id = $1 AND event_id <> $2"  # noqa: S608

    def digest(self) -> DigestSpec:
        order = tuple(f'{c} COLLATE "C"' for c in ("request_id", *self.key))
        return DigestSpec(self.all_columns(), order)


_F = "float8"
STRUCTURES = Table(
    "structured_structures",
    ("structure_id",),
    (
        ("structure_id", "text"),
        ("spec", "jsonb"),
        ("price", _F),
        ("stderr", _F),
        ("issuer_margin", _F),
        ("coupon_rate", _F),
        ("fair_coupon", _F),
        ("autocall_probability", _F),
        ("autocall_by_date", "jsonb"),
        ("expected_life_years", _F),
        ("knock_in_probability", _F),
        ("capital_loss_probability", _F),
        ("irr_mean", _F),
        ("irr_median", _F),
        ("target_score", _F),
        ("meets_targets", "boolean"),
        ("greeks", "jsonb"),
        ("target_gaps", "jsonb"),
    ),
)
ASSUMPTIONS = Table(
    "structured_assumptions",
    ("structure_id",),
    (("structure_id", "text"), ("accepted", "boolean"), ("rejected", "jsonb")),
)
SCENARIOS = Table(
    "structured_scenarios",
    ("scenario_id",),
    (
        ("scenario_id", "text"),
        ("kind", "text"),
        ("regime", "text"),
        ("horizon_months", "integer"),
        ("probability", _F),
        ("figures", "jsonb"),
    ),
)
STRESS = Table(
    "structured_stress",
    ("structure_id",),
    (
        ("structure_id", "text"),
        ("var_99", _F),
        ("es_99", _F),
        ("stressed_var_99", _F),
        ("gap_risk", _F),
        ("trigger_risk", _F),
        ("capital_at_risk", _F),
        ("capital_at_risk_delta_hedged", _F),
        ("capital_at_risk_unhedged", _F),
        ("worst_scenario", "text"),
        ("passes", "boolean"),
        ("breaches", "jsonb"),
        ("hedge", "jsonb"),
        ("var_levels", "jsonb"),
        ("es_levels", "jsonb"),
    ),
)
SEGMENTS = Table(
    "structured_segments",
    ("segment_id",),
    (("segment_id", "text"), ("label", "text"), ("size", "integer"), ("attributes", "jsonb")),
)
SUITABILITY = Table(
    "structured_suitability",
    ("structure_id", "segment_id"),
    (
        ("structure_id", "text"),
        ("segment_id", "text"),
        ("score", _F),
        ("assigned", "boolean"),
        ("value_proposition", "text"),
        ("reasons", "jsonb"),
    ),
)
COMPLIANCE = Table(
    "structured_compliance",
    ("structure_id",),
    (
        ("structure_id", "text"),
        ("decision", "text"),
        ("rulebook_name", "text"),
        ("rulebook_version", "text"),
        ("rulebook_sha256", "text"),
        ("rules_fired", "jsonb"),
        ("conditions", "jsonb"),
        ("target_market", "jsonb"),
        ("negative_target_market", "jsonb"),
        ("kid", "jsonb"),
        ("documents", "jsonb"),
    ),
)
RANKING = Table(
    "structured_ranking",
    ("structure_id",),
    (
        ("structure_id", "text"),
        ("rank", "integer"),
        ("score", _F),
        ("components", "jsonb"),
        ("pareto_optimal", "boolean"),
        ("eligible", "boolean"),
        ("segments", "jsonb"),
    ),
)
TABLES: tuple[Table, ...] = (STRUCTURES, ASSUMPTIONS, SCENARIOS, STRESS, SEGMENTS, SUITABILITY, COMPLIANCE, RANKING)

REQUEST_COLUMNS = (
    "request_id",
    "correlation_id",
    "stages",
    "status",
    "requested_at",
    "updated_at",
    "requirements",
    "constraints",
    "client_base",
    "market_uri",
    "market_sha256",
    "market_checks",
    "rejected_by",
    "rejected_field",
    "rejected_reason",
    "recommendation",
    "proposal",
)
REQUEST_JSONB = frozenset({"stages", "requirements", "constraints", "market_checks", "proposal"})

_TOUCH = """
    INSERT INTO __schema__.structured_requests AS r (request_id, correlation_id, stages, updated_at)
    VALUES ($1, $2, $3::jsonb, $4)
    ON CONFLICT (request_id) DO UPDATE SET
        correlation_id = coalesce(r.correlation_id, EXCLUDED.correlation_id),
        stages = r.stages || EXCLUDED.stages,
        updated_at = greatest(r.updated_at, EXCLUDED.updated_at)"""
_REQUESTED = """
    UPDATE __schema__.structured_requests SET correlation_id = $2, requested_at = $3, requirements = $4::jsonb,
        constraints = $5::jsonb, client_base = $6, market_uri = $7, market_sha256 = $8
    WHERE request_id = $1"""
_MARKET_SHA = """
    UPDATE __schema__.structured_requests SET market_sha256 = coalesce(market_sha256, $2) WHERE request_id = $1"""
_MARKET_CHECKS = "UPDATE __schema__.structured_requests SET market_checks = $2::jsonb WHERE request_id = $1"
_REJECTED = """
    UPDATE __schema__.structured_requests SET rejected_by = $2, rejected_field = $3, rejected_reason = $4
    WHERE request_id = $1"""
_PROPOSED = """
    UPDATE __schema__.structured_requests SET recommendation = $2, proposal = $3::jsonb WHERE request_id = $1"""


def _finite(value: Any) -> Any:
    """`value` with non-finite floats as None: jsonb stores no NaN or infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(_finite(value), allow_nan=False, ensure_ascii=False)


def at_99(levels: Mapping[str, float]) -> float | None:
    """The 99% figure of a {confidence: figure} map, whichever way the level is spelt."""
    for key in ("0.99", "99", "99%", "0.990", "var_99", "es_99", "p99"):
        if key in levels:
            return levels[key]
    return None


def _stage(envelope: Envelope) -> str:
    occurred = envelope.occurred_at.astimezone(UTC).isoformat()
    return _json({envelope.type: {"event_id": str(envelope.event_id), "occurred_at": occurred}})


class StructuredDeskProjection(Projection):
    """Folds `desk.structured` into the desk view (see the module docstring).

    One event per transaction step: the request row is upserted (stage, `updated_at`), then the
    event's own rows are written, each table in one statement from a JSON array
    (`jsonb_to_recordset`), whatever the number of structures.
    """

    name: ClassVar[str] = PROJECTION
    version: ClassVar[str] = "1"
    topics = (DESK_STRUCTURED,)
    accepts = frozenset(STAGE_OF)
    sql_folder: ClassVar[str] = "sql/structured_desk"
    digest_tables: ClassVar[Mapping[str, DigestSpec]] = {
        "structured_requests": DigestSpec(REQUEST_COLUMNS, ('request_id COLLATE "C"',)),
        **{t.name: t.digest() for t in TABLES},
    }

    def __init__(self, *, generation: int = 1) -> None:
        super().__init__(generation=generation)
        sql = {
            "touch": _TOUCH,
            "requested": _REQUESTED,
            "market_sha": _MARKET_SHA,
            "market_checks": _MARKET_CHECKS,
            "rejected": _REJECTED,
            "proposed": _PROPOSED,
        }
        self._sql = {k: render_sql(v, self.schema) for k, v in sql.items()}
        self._upsert = {t.name: render_sql(t.upsert_sql(), self.schema) for t in TABLES}
        self._delete = {t.name: render_sql(t.delete_others_sql(), self.schema) for t in TABLES}

    async def handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        """Record the stage on the request row, then the event's figures."""
        ev, env, conn = event.event, event.envelope, ctx.conn
        if not isinstance(ev, DESK_EVENTS):
            return
        request_id = ev.request_id
        await conn.execute(self._sql["touch"], request_id, env.correlation_id, _stage(env), env.occurred_at)
        match ev:
            case ProductDesignRequested():
                await conn.execute(
                    self._sql["requested"],
                    request_id,
                    env.correlation_id,
                    env.occurred_at,
                    _json(ev.requirements.model_dump(mode="json")),
                    _json(ev.constraints.model_dump(mode="json")),
                    ev.client_base,
                    ev.market_ref.uri,
                    ev.market_ref.sha256,
                )
            case StructuresProposed():
                await conn.execute(self._sql["market_sha"], request_id, ev.market_sha256)
                await self._replace(conn, STRUCTURES, request_id, env.event_id, _structures(ev))
            case ScenariosGenerated():
                await self._replace(conn, SCENARIOS, request_id, env.event_id, _scenarios(ev))
            case AssumptionsValidated():
                checks = [c.model_dump(mode="json") for c in ev.market_checks]
                await conn.execute(self._sql["market_checks"], request_id, _json(checks))
                rows = [
                    {
                        "structure_id": s.structure_id,
                        "accepted": s.accepted,
                        "rejected": [r.model_dump(mode="json") for r in s.rejected],
                    }
                    for s in ev.structures
                ]
                await self._replace(conn, ASSUMPTIONS, request_id, env.event_id, rows)
            case StressTested():
                await self._replace(conn, STRESS, request_id, env.event_id, _stress(ev))
            case DistributionPlanned():
                await self._replace(conn, SEGMENTS, request_id, env.event_id, _segments(ev))
                await self._replace(conn, SUITABILITY, request_id, env.event_id, _suitability(ev))
            case ComplianceReviewed():
                await self._replace(conn, COMPLIANCE, request_id, env.event_id, _compliance(ev))
            case ProductProposalPublished():
                proposal = ev.model_dump(mode="json", exclude={"request_id", "ranking", "narrative"})
                proposal["narrative"] = ev.narrative.text
                await conn.execute(self._sql["proposed"], request_id, ev.recommendation, _json(proposal))
                await self._replace(conn, RANKING, request_id, env.event_id, _ranking(ev))
            case ProductDesignRejected():
                await conn.execute(self._sql["rejected"], request_id, ev.agent, ev.field, ev.reason)

    async def _replace(
        self, conn: asyncpg.Connection, table: Table, request_id: str, event_id: uuid.UUID, rows: list[dict[str, Any]]
    ) -> None:
        """Make the event's rows the request's rows of `table` (the last row of a repeated key wins)."""
        unique = list({tuple(r[k] for k in table.key): r for r in rows}.values())
        await conn.execute(self._delete[table.name], request_id, event_id)
        if unique:
            await conn.execute(self._upsert[table.name], request_id, event_id, _json(unique))


# -- rows of each event ------------------------------------------------------------------------


def _structures(ev: StructuresProposed) -> list[dict[str, Any]]:
    names = [c for c, _ in STRUCTURES.columns]
    return [{k: v for k, v in s.model_dump(mode="json").items() if k in names} for s in ev.structures]


def _scenarios(ev: ScenariosGenerated) -> list[dict[str, Any]]:
    out = []
    for s in ev.scenarios:
        figures = s.model_dump(
            mode="json", include={"equity_return", "realised_vol", "correlation", "rate_shift", "description"}
        )
        out.append(
            {
                "scenario_id": s.scenario_id,
                "kind": s.kind,
                "regime": s.regime,
                "horizon_months": s.horizon_months,
                "probability": s.probability,
                "figures": figures,
            }
        )
    return out


def _stress(ev: StressTested) -> list[dict[str, Any]]:
    out = []
    for r in ev.results:
        out.append(
            {
                "structure_id": r.structure_id,
                "var_99": at_99(r.var),
                "es_99": at_99(r.es),
                "stressed_var_99": r.stressed_var_99,
                "gap_risk": r.gap_risk,
                "trigger_risk": r.trigger_risk,
                "capital_at_risk": r.capital_at_risk,
                "capital_at_risk_delta_hedged": r.capital_at_risk_delta_hedged,
                "capital_at_risk_unhedged": r.capital_at_risk_unhedged,
                "worst_scenario": r.worst_scenario,
                "passes": r.passes,
                "breaches": list(r.breaches),
                "hedge": r.hedge.model_dump(mode="json"),
                "var_levels": dict(r.var),
                "es_levels": dict(r.es),
            }
        )
    return out


def _segments(ev: DistributionPlanned) -> list[dict[str, Any]]:
    return [
        {
            "segment_id": s.segment_id,
            "label": s.label,
            "size": s.size,
            "attributes": s.model_dump(mode="json", exclude={"segment_id", "label", "size"}),
        }
        for s in ev.segments
    ]


def _suitability(ev: DistributionPlanned) -> list[dict[str, Any]]:
    """The matrix, with the plan's assignments marked (an assigned pair missing from the matrix is
    added with the assignment's score)."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for s in ev.suitability:
        cells[(s.structure_id, s.segment_id)] = {
            "structure_id": s.structure_id,
            "segment_id": s.segment_id,
            "score": s.score,
            "assigned": False,
            "value_proposition": None,
            "reasons": list(s.reasons),
        }
    for a in ev.assignments:
        cell = cells.setdefault(
            (a.structure_id, a.segment_id),
            {"structure_id": a.structure_id, "segment_id": a.segment_id, "score": a.score, "reasons": []},
        )
        cell.update(assigned=True, value_proposition=a.value_proposition)
    return list(cells.values())


def _compliance(ev: ComplianceReviewed) -> list[dict[str, Any]]:
    book = {
        "rulebook_name": ev.rulebook.name,
        "rulebook_version": ev.rulebook.version,
        "rulebook_sha256": ev.rulebook.sha256,
    }
    return [{**d.model_dump(mode="json"), **book} for d in ev.decisions]


def _ranking(ev: ProductProposalPublished) -> list[dict[str, Any]]:
    return [{**r.model_dump(mode="json"), "rank": i} for i, r in enumerate(ev.ranking, start=1)]


# -- queries -----------------------------------------------------------------------------------

_REQUEST = "SELECT {cols} FROM __schema__.structured_requests WHERE request_id = $1"
_RECENT = """
    SELECT r.request_id, r.status, r.correlation_id, r.requested_at, r.updated_at, r.recommendation,
           r.rejected_by, r.rejected_field, r.rejected_reason,
           (SELECT count(*) FROM __schema__.structured_structures s WHERE s.request_id = r.request_id) AS structures
    FROM __schema__.structured_requests r
    ORDER BY r.updated_at DESC, r.request_id COLLATE "C" LIMIT $1"""
_ROWS = "SELECT {cols} FROM __schema__.{table} WHERE request_id = $1 ORDER BY {order}"
_BY_STRUCTURE = (
    # per-structure rows follow the ranking when there is one, then the target score
    "(SELECT k.rank FROM __schema__.structured_ranking k "
    "WHERE k.request_id = t.request_id AND k.structure_id = t.structure_id) NULLS LAST, "
    "(SELECT s.target_score FROM __schema__.structured_structures s "
    "WHERE s.request_id = t.request_id AND s.structure_id = t.structure_id) DESC NULLS LAST, "
    'structure_id COLLATE "C"'
)
_ORDER: dict[str, str] = {
    RANKING.name: 'rank, structure_id COLLATE "C"',
    SCENARIOS.name: 'horizon_months, kind, scenario_id COLLATE "C"',
    SEGMENTS.name: 'segment_id COLLATE "C"',
    SUITABILITY.name: 'structure_id COLLATE "C", segment_id COLLATE "C"',
}


def _value(value: Any, jsonb: bool) -> Any:
    if jsonb and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _row(record: asyncpg.Record, jsonb: frozenset[str]) -> dict[str, Any]:
    return {k: _value(v, k in jsonb) for k, v in record.items()}


@asynccontextmanager
async def _snapshot(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """One consistent read of several tables (inside a caller's transaction: the caller's)."""
    if conn.is_in_transaction():
        yield
    else:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            yield


async def _schema(conn: asyncpg.Connection, schema: str | None) -> str | None:
    """The active schema, or None when the projection has not created its tables yet."""
    resolved = await resolve_schema(conn, PROJECTION, schema)
    exists = await conn.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f"{quote_identifier(resolved)}.structured_requests"
    )
    return resolved if exists else None


def timeline(stages: Mapping[str, Mapping[str, str]], rejected_by: str | None) -> list[dict[str, Any]]:
    """The stages seen, oldest first (ties in the desk's order): stage, event type, event id, occurred_at."""
    order = list(STAGE_OF)
    out = []
    for event_type, seen in stages.items():
        stage = STAGE_OF.get(event_type, event_type)
        if event_type == ProductDesignRejected.event_type and rejected_by:
            stage = rejected_by
        out.append(
            {"stage": stage, "event_type": event_type, "event_id": seen["event_id"], "occurred_at": seen["occurred_at"]}
        )
    rank = {t: i for i, t in enumerate(order)}
    return sorted(out, key=lambda s: (s["occurred_at"], rank.get(s["event_type"], len(order))))


async def request_view(
    conn: asyncpg.Connection, request_id: str, *, schema: str | None = None
) -> dict[str, Any] | None:
    """Everything the desk view holds on one request, JSON-ready; None when the request is unknown.

    Keys: the request's columns (status, times, requirements, constraints, market, rejection,
    recommendation, proposal), `timeline`, and one list per table: `structures` (ranking order,
    else by target score), `assumptions`, `scenarios`, `stress`, `segments`, `suitability`,
    `compliance`, `ranking`. Every row carries its `event_id`.
    """
    async with _snapshot(conn):
        resolved = await _schema(conn, schema)
        if resolved is None:
            return None
        head = await conn.fetchrow(render_sql(_REQUEST.format(cols=", ".join(REQUEST_COLUMNS)), resolved), request_id)
        if head is None:
            return None
        view = _row(head, REQUEST_JSONB)
        view["timeline"] = timeline(view.pop("stages"), view["rejected_by"])
        for key, table in (
            ("structures", STRUCTURES),
            ("assumptions", ASSUMPTIONS),
            ("scenarios", SCENARIOS),
            ("stress", STRESS),
            ("segments", SEGMENTS),
            ("suitability", SUITABILITY),
            ("compliance", COMPLIANCE),
            ("ranking", RANKING),
        ):
            sql = _ROWS.format(
                cols=", ".join(c for c, _ in table.columns) + ", event_id",
                table=table.name + " t",
                order=_ORDER.get(table.name, _BY_STRUCTURE),
            )
            rows = await conn.fetch(render_sql(sql, resolved), request_id)
            view[key] = [_row(r, table.jsonb_columns) for r in rows]
    return view


async def recent_requests(
    conn: asyncpg.Connection, limit: int = 50, *, schema: str | None = None
) -> list[dict[str, Any]]:
    """The most recently updated requests first: status, times, recommendation or rejection, structure count."""
    resolved = await _schema(conn, schema)
    if resolved is None:
        return []
    return [_row(r, frozenset()) for r in await conn.fetch(render_sql(_RECENT, resolved), limit)]


__all__ = [
    "PROJECTION",
    "STAGE_OF",
    "TABLES",
    "StructuredDeskProjection",
    "at_99",
    "recent_requests",
    "request_view",
    "timeline",
]
