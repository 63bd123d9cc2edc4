"""The early-warning board: the current status of every (subject, metric) against its capacity.

`EarlyWarningProjection` folds `IndicatorObserved` events into `early_warning`, one row per
(subject, metric): the latest value and capacity, ratio = value / capacity, the level (ok; high
from `HIGH_RATIO`; critical from `CRITICAL_RATIO`), since when the level holds, the trend against
the previous value, and the event it came from. When the level goes up it emits `AlertRaised`,
when it comes down `AlertCleared` — inside the runtime's transaction, so each transition is
announced exactly once however often the observation is delivered.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal, Self

import asyncpg

import bus.events  # noqa: F401  (registers the event types)
from bus.catalog import Event
from bus.codec import DecodedEvent
from bus.events.indicators import AlertCleared, AlertRaised, IndicatorObserved, Level
from bus.runtime.actor import HandlerContext
from bus.topics import RISK_INDICATORS
from projections.generations import DigestSpec, Projection, render_sql, resolve_schema

HIGH_RATIO = 0.7
"""ratio = value / capacity from which a subject's level is high."""
CRITICAL_RATIO = 0.9
"""ratio from which a subject's level is critical."""
PROJECTION = "early_warning"

Trend = Literal["up", "down", "flat"]
_RANK: dict[str, int] = {"ok": 0, "high": 1, "critical": 2}
_THRESHOLD: dict[str, float] = {"high": HIGH_RATIO, "critical": CRITICAL_RATIO}


def level_of(ratio: float) -> Level:
    """The level of a ratio: critical from `CRITICAL_RATIO`, high from `HIGH_RATIO`, else ok."""
    if ratio >= CRITICAL_RATIO:
        return "critical"
    if ratio >= HIGH_RATIO:
        return "high"
    return "ok"


@dataclass(frozen=True)
class WarningStatus:
    """One row of the board."""

    subject: str
    metric: str
    value: float
    capacity: float
    ratio: float
    unit: str
    level: Level
    since: datetime
    trend: Trend
    updated_at: datetime
    last_event_id: uuid.UUID


_COLUMNS = "subject, metric, value, capacity, ratio, unit, level, since, trend, updated_at, last_event_id"


_LOCK = """
    SELECT subject, metric, value, capacity, ratio, unit, level, since, trend, updated_at, last_event_id
    FROM __schema__.early_warning
    WHERE (subject, metric) IN (SELECT s, m FROM unnest($1::text[], $2::text[]) AS u(s, m))
    ORDER BY subject, metric FOR UPDATE"""
_UPSERT = """
    INSERT INTO __schema__.early_warning AS b
        (subject, metric, value, capacity, ratio, unit, level, since, trend, updated_at, last_event_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::text[],
                         $7::text[], $8::timestamptz[], $9::text[], $10::timestamptz[], $11::uuid[])
    ON CONFLICT (subject, metric) DO UPDATE SET
        value = EXCLUDED.value, capacity = EXCLUDED.capacity, ratio = EXCLUDED.ratio, unit = EXCLUDED.unit,
        level = EXCLUDED.level, since = EXCLUDED.since, trend = EXCLUDED.trend,
        updated_at = EXCLUDED.updated_at, last_event_id = EXCLUDED.last_event_id"""
_BOARD = """
    SELECT subject, metric, value, capacity, ratio, unit, level, since, trend, updated_at, last_event_id
    FROM __schema__.early_warning
    ORDER BY CASE level WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, ratio DESC, subject, metric"""


def _status(r: asyncpg.Record) -> WarningStatus:
    return WarningStatus(**{k: r[k] for k in _COLUMNS.split(", ")})


class EarlyWarningProjection(Projection):
    """Folds `risk.indicator_observed` into `early_warning` and announces level transitions.

    - Time is the observation's `observed_at`: `since` is the `observed_at` of the observation
      that moved the level to its current value (or of the first observation), `updated_at` that of
      the latest one. Both come from the log, so a rebuild gives the same rows.
    - Out-of-order observations are ignored: one whose `observed_at` is older than the stored
      `updated_at` of its (subject, metric) changes nothing and raises nothing (the newer state
      stands). An equal `observed_at` is applied (the later on the log wins).
    - `trend` compares the value with the previous stored value (up, down, flat); flat at first.
    - A level increase emits `AlertRaised` (previous_level, threshold of the new level); a
      decrease emits `AlertCleared` (cleared_level). A first observation at high or critical is
      an increase from ok. `emit_alerts=False` (replay) folds without emitting: those alerts are
      already on the log.
    - The observation's `window` is not part of the key: a metric observed over several windows
      should carry the window in its name (e.g. `margin_call_velocity_1h`).
    - Alert ids derive from (indicator event id, the projection's name, output index) — not its
      generation — so a rebuilt generation that reprocesses events an older one already handled
      produces the very same alert ids, which the outbox and every consumer deduplicate.
    """

    name: ClassVar[str] = PROJECTION
    version: ClassVar[str] = "1"
    topics = (RISK_INDICATORS,)
    accepts = frozenset({IndicatorObserved.event_type})
    sql_folder: ClassVar[str] = "sql/early_warning"
    digest_tables: ClassVar[Mapping[str, DigestSpec]] = {
        "early_warning": DigestSpec(tuple(_COLUMNS.split(", ")), ('subject COLLATE "C"', 'metric COLLATE "C"')),
    }

    def __init__(self, *, generation: int = 1, emit_alerts: bool = True) -> None:
        super().__init__(generation=generation)
        self.emit_alerts = emit_alerts
        self._lock_sql = render_sql(_LOCK, self.schema)
        self._upsert_sql = render_sql(_UPSERT, self.schema)

    @classmethod
    def for_rebuild(cls, generation: int) -> Self:
        """Replay folds the log again without announcing transitions a second time."""
        return cls(generation=generation, emit_alerts=False)

    async def handle_batch(self, items: Sequence[tuple[DecodedEvent, HandlerContext]]) -> None:
        """Fold the batch's observations in log order: lock the rows they touch (one SELECT … FOR
        UPDATE), fold in memory, write the changed rows back with one upsert."""
        if not items:
            return
        conn = items[0][1].conn
        observed = [ev.event for ev, _ in items if isinstance(ev.event, IndicatorObserved)]
        keys = sorted({(obs.subject, obs.metric) for obs in observed})
        rows = await conn.fetch(self._lock_sql, [s for s, _ in keys], [m for _, m in keys])
        state: dict[tuple[str, str], WarningStatus] = {(r["subject"], r["metric"]): _status(r) for r in rows}
        changed: dict[tuple[str, str], WarningStatus] = {}
        for decoded, ctx in items:
            obs = decoded.event
            if not isinstance(obs, IndicatorObserved):
                continue
            key = (obs.subject, obs.metric)
            new = self._fold(state.get(key), obs, decoded.envelope.event_id, ctx)
            if new is not None:
                state[key] = changed[key] = new
        if changed:
            rows_out = [changed[k] for k in sorted(changed)]
            await conn.execute(
                self._upsert_sql,
                *([getattr(s, col) for s in rows_out] for col in _COLUMNS.split(", ")),
            )

    def _fold(
        self, current: WarningStatus | None, obs: IndicatorObserved, event_id: uuid.UUID, ctx: HandlerContext
    ) -> WarningStatus | None:
        if current is not None and obs.observed_at < current.updated_at:
            return None  # out of order: the stored observation is newer
        ratio = obs.value / obs.capacity
        level = level_of(ratio)
        previous: Level = current.level if current is not None else "ok"
        if current is None:
            trend: Trend = "flat"
        else:
            trend = "up" if obs.value > current.value else "down" if obs.value < current.value else "flat"
        new = WarningStatus(
            subject=obs.subject,
            metric=obs.metric,
            value=obs.value,
            capacity=obs.capacity,
            ratio=ratio,
            unit=obs.unit,
            level=level,
            since=obs.observed_at if current is None or level != current.level else current.since,
            trend=trend,
            updated_at=obs.observed_at,
            last_event_id=event_id,
        )
        if self.emit_alerts and _RANK[level] != _RANK[previous]:
            common = {
                "subject": obs.subject,
                "metric": obs.metric,
                "value": obs.value,
                "capacity": obs.capacity,
                "ratio": ratio,
                "unit": obs.unit,
                "observed_at": obs.observed_at,
                "indicator_event_id": str(event_id),
            }
            alert: Event
            if _RANK[level] > _RANK[previous]:
                alert = AlertRaised(**common, level=level, previous_level=previous, threshold=_THRESHOLD[level])
            else:
                alert = AlertCleared(**common, level=level, cleared_level=previous)
            ctx.emit(alert)
        return new


async def board(conn: asyncpg.Connection, *, schema: str | None = None) -> list[WarningStatus]:
    """The board of the active generation: critical first, then high, then ok; within a level the
    highest ratio first (then subject and metric, for a stable order)."""
    rows = await conn.fetch(render_sql(_BOARD, await resolve_schema(conn, PROJECTION, schema)))
    return [_status(r) for r in rows]
