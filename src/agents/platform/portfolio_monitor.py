"""The portfolio monitor: keeps each portfolio's live trades and tells the early-warning board how
much of its limits they use.

It folds trade events (booked, amended, terminated) and limit settings into its own state rows,
and after each change emits an `IndicatorObserved` with the gross notional of the affected
currency against the portfolio's limit in that currency. Gross notional is the sum of live
notionals in one currency, whatever their direction; no FX conversion is made, so a limit binds
the trades of its own currency. Trade events that contradict the book (a second booking of one
trade id, amending or terminating an unknown or terminated trade) are rejected to `deadletter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bus.catalog import Event
from bus.codec import DecodedEvent
from bus.events import IndicatorObserved, PortfolioLimitSet, TradeAmended, TradeBooked, TradeTerminated
from bus.migrations import Migration
from bus.runtime.actor import Actor, HandlerContext, Rejected
from bus.topics import PORTFOLIO_TRADES

_SCHEMA = """
CREATE TABLE portfolio_monitor_trades (
    portfolio_id text    NOT NULL,
    trade_id     text    NOT NULL,
    currency     text    NOT NULL,
    notional     double precision NOT NULL,
    direction    text    NOT NULL,
    live         boolean NOT NULL DEFAULT true,
    PRIMARY KEY (portfolio_id, trade_id)
);
CREATE INDEX portfolio_monitor_trades_live ON portfolio_monitor_trades (portfolio_id, currency) WHERE live;
CREATE TABLE portfolio_monitor_limits (
    portfolio_id text NOT NULL,
    metric       text NOT NULL,
    currency     text NOT NULL,
    capacity     double precision NOT NULL,
    PRIMARY KEY (portfolio_id, metric, currency)
);
"""


_RUNNING_GROSS = """
CREATE TABLE portfolio_monitor_gross (
    portfolio_id text NOT NULL,
    currency     text NOT NULL,
    gross        double precision NOT NULL,
    PRIMARY KEY (portfolio_id, currency)
);
INSERT INTO portfolio_monitor_gross (portfolio_id, currency, gross)
SELECT portfolio_id, currency, sum(notional) FROM portfolio_monitor_trades WHERE live GROUP BY 1, 2;
"""


@dataclass
class _Trade:
    currency: str
    notional: float
    direction: str
    live: bool


def indicator_metric(currency: str) -> str:
    """The early-warning metric name of gross notional in `currency`."""
    return f"gross_notional_{currency.lower()}"


class PortfolioMonitor(Actor):
    """Tracks live trades per portfolio and reports gross-notional limit usage."""

    name = "portfolio-monitor"
    version = "1"
    topics = (PORTFOLIO_TRADES,)
    accepts = frozenset(
        {TradeBooked.event_type, TradeAmended.event_type, TradeTerminated.event_type, PortfolioLimitSet.event_type}
    )
    migrations = (
        Migration("portfolio-monitor", 1, "trades_and_limits", _SCHEMA),
        Migration("portfolio-monitor", 2, "running_gross", _RUNNING_GROSS),
    )

    async def handle_batch(self, items: Sequence[tuple[DecodedEvent, HandlerContext]]) -> None:
        """The batch folded in memory in log order and written back in a few set-based statements.

        Reads the batch's trades, running grosses and limits once, applies the events in order,
        and writes the final rows. An event that contradicts the book raises `Rejected`; the
        runtime then replays the batch event by event through `handle`, which dead-letters just
        that event. Both paths add the same deltas in the same order, so they agree exactly.
        """
        if len(items) == 1:
            await self.handle(*items[0])
            return
        conn = items[0][1].conn
        events: list[Event] = [ev.event for ev, _ in items]
        portfolios = sorted({e.portfolio_id for e in events})  # type: ignore[attr-defined]
        keys = sorted({(e.portfolio_id, e.trade_id) for e in events if hasattr(e, "trade_id")})  # type: ignore[attr-defined]
        trades: dict[tuple[str, str], _Trade] = {
            (r["portfolio_id"], r["trade_id"]): _Trade(r["currency"], r["notional"], r["direction"], r["live"])
            for r in await conn.fetch(_LOAD_TRADES, [k[0] for k in keys], [k[1] for k in keys])
        }
        gross = {(r["portfolio_id"], r["currency"]): r["gross"] for r in await conn.fetch(_LOAD_GROSS, portfolios)}
        limits = {(r["portfolio_id"], r["currency"]): r["capacity"] for r in await conn.fetch(_LOAD_LIMITS, portfolios)}
        touched_trades: set[tuple[str, str]] = set()
        touched_limits: set[tuple[str, str]] = set()
        touched_gross: set[tuple[str, str]] = set()
        for (_, ctx), e in zip(items, events, strict=True):
            if isinstance(e, PortfolioLimitSet):
                key = (e.portfolio_id, e.currency)
                limits[key] = e.capacity
                touched_limits.add(key)
            else:
                tkey = (e.portfolio_id, e.trade_id)  # type: ignore[attr-defined]
                trade = trades.get(tkey)
                if isinstance(e, TradeBooked):
                    if trade is not None:
                        raise Rejected(f"trade_id {e.trade_id!r} is already booked in portfolio {e.portfolio_id!r}")
                    trade = trades[tkey] = _Trade(e.currency, e.notional, e.direction, True)
                    delta = e.notional
                elif trade is None or not trade.live:
                    raise Rejected(f"trade_id {tkey[1]!r} is not a live trade of portfolio {tkey[0]!r}")
                elif isinstance(e, TradeAmended):
                    new_notional = e.notional if e.notional is not None else trade.notional
                    delta = new_notional - trade.notional
                    trade.notional, trade.direction = new_notional, e.direction or trade.direction
                else:
                    trade.live = False
                    delta = -trade.notional
                touched_trades.add(tkey)
                key = (e.portfolio_id, trade.currency)  # type: ignore[attr-defined]
                gross[key] = gross.get(key, 0.0) + delta
                touched_gross.add(key)
            capacity = limits.get(key)
            if capacity is not None:
                self._emit_usage(ctx, key[0], key[1], gross.get(key, 0.0), capacity)
        if touched_trades:
            rows = [(k, trades[k]) for k in sorted(touched_trades)]
            await conn.execute(
                _SAVE_TRADES,
                [k[0] for k, _ in rows],
                [k[1] for k, _ in rows],
                [t.currency for _, t in rows],
                [t.notional for _, t in rows],
                [t.direction for _, t in rows],
                [t.live for _, t in rows],
            )
        if touched_gross:
            keys_g = sorted(touched_gross)
            await conn.execute(_SAVE_GROSS, [k[0] for k in keys_g], [k[1] for k in keys_g], [gross[k] for k in keys_g])
        if touched_limits:
            keys_l = sorted(touched_limits)
            await conn.execute(
                _SAVE_LIMITS, [k[0] for k in keys_l], [k[1] for k in keys_l], [limits[k] for k in keys_l]
            )

    def _emit_usage(self, ctx: HandlerContext, portfolio_id: str, currency: str, gross: float, capacity: float) -> None:
        ctx.emit(
            IndicatorObserved(
                subject=portfolio_id,
                metric=indicator_metric(currency),
                value=float(gross),
                capacity=float(capacity),
                unit=currency,
                observed_at=ctx.cause.occurred_at,
            )
        )

    async def handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        e: Event = event.event
        conn = ctx.conn
        if isinstance(e, TradeBooked):
            row = await conn.fetchrow(_BOOK, e.portfolio_id, e.trade_id, e.currency, e.notional, e.direction)
            if not row["changed"]:
                raise Rejected(f"trade_id {e.trade_id!r} is already booked in portfolio {e.portfolio_id!r}")
        elif isinstance(e, TradeAmended):
            row = await conn.fetchrow(_AMEND, e.portfolio_id, e.trade_id, e.notional, e.direction)
            if row is None or not row["changed"]:
                raise Rejected(f"trade_id {e.trade_id!r} is not a live trade of portfolio {e.portfolio_id!r}")
        elif isinstance(e, TradeTerminated):
            row = await conn.fetchrow(_TERMINATE, e.portfolio_id, e.trade_id)
            if row is None or not row["changed"]:
                raise Rejected(f"trade_id {e.trade_id!r} is not a live trade of portfolio {e.portfolio_id!r}")
        elif isinstance(e, PortfolioLimitSet):
            row = await conn.fetchrow(_SET_LIMIT, e.portfolio_id, e.metric, e.currency, e.capacity)
        else:  # pragma: no cover - `accepts` keeps other types out
            return
        if row["capacity"] is None:
            return  # no limit in this currency: nothing to measure against
        self._emit_usage(ctx, e.portfolio_id, row["currency"], row["gross"], row["capacity"])


# Each statement changes the book and the running gross of the trade's currency in one round trip,
# and returns whether it changed anything, the currency, the new gross and the limit (if any).
# The statement's reads see the tables as they were before it (PostgreSQL's rule for data-modifying
# WITH), so the new gross is the previous one plus this change's delta.
_USAGE = """
SELECT (SELECT count(*) FROM changed) > 0 AS changed, cur.currency,
       COALESCE((SELECT gross FROM portfolio_monitor_gross g
                  WHERE g.portfolio_id = $1 AND g.currency = cur.currency), 0)
         + COALESCE((SELECT sum(delta) FROM changed), 0) AS gross,
       (SELECT capacity FROM portfolio_monitor_limits l
         WHERE l.portfolio_id = $1 AND l.metric = 'gross_notional' AND l.currency = cur.currency) AS capacity
FROM cur"""
_MOVE_GROSS = """
moved AS (
    INSERT INTO portfolio_monitor_gross (portfolio_id, currency, gross)
    SELECT $1, currency, delta FROM changed
    ON CONFLICT (portfolio_id, currency) DO UPDATE SET gross = portfolio_monitor_gross.gross + EXCLUDED.gross
)"""
_BOOK = f"""
WITH changed AS (
    INSERT INTO portfolio_monitor_trades (portfolio_id, trade_id, currency, notional, direction)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING
    RETURNING currency, notional AS delta
), {_MOVE_GROSS.strip()},
cur AS (SELECT $3::text AS currency)
{_USAGE}"""  # noqa: S608 - composed of the constant fragments above, no outside text
_AMEND = f"""
WITH old AS (
    SELECT currency, notional FROM portfolio_monitor_trades
    WHERE portfolio_id = $1 AND trade_id = $2 AND live FOR UPDATE
), upd AS (
    UPDATE portfolio_monitor_trades t
    SET notional = COALESCE($3, t.notional), direction = COALESCE($4, t.direction)
    FROM old WHERE t.portfolio_id = $1 AND t.trade_id = $2 AND t.live
    RETURNING t.currency, t.notional - old.notional AS delta
), changed AS (SELECT currency, delta FROM upd), {_MOVE_GROSS.strip()},
cur AS (SELECT currency FROM old)
{_USAGE}"""  # noqa: S608 - composed of the constant fragments above, no outside text
_TERMINATE = f"""
WITH changed AS (
    UPDATE portfolio_monitor_trades SET live = false
    WHERE portfolio_id = $1 AND trade_id = $2 AND live
    RETURNING currency, -notional AS delta
), {_MOVE_GROSS.strip()},
cur AS (SELECT currency FROM changed)
{_USAGE}"""  # noqa: S608 - composed of the constant fragments above, no outside text
_SET_LIMIT = """
WITH changed AS (
    INSERT INTO portfolio_monitor_limits (portfolio_id, metric, currency, capacity)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (portfolio_id, metric, currency) DO UPDATE SET capacity = EXCLUDED.capacity
    RETURNING currency
)
SELECT true AS changed, $3::text AS currency,
       COALESCE((SELECT gross FROM portfolio_monitor_gross g
                  WHERE g.portfolio_id = $1 AND g.currency = $3), 0) AS gross,
       $4::double precision AS capacity"""

_LOAD_TRADES = """
SELECT t.portfolio_id, t.trade_id, t.currency, t.notional, t.direction, t.live
FROM portfolio_monitor_trades t
JOIN unnest($1::text[], $2::text[]) AS k(p, id) ON t.portfolio_id = k.p AND t.trade_id = k.id
ORDER BY t.portfolio_id, t.trade_id FOR UPDATE OF t"""
_LOAD_GROSS = """
SELECT portfolio_id, currency, gross FROM portfolio_monitor_gross WHERE portfolio_id = ANY($1::text[])
ORDER BY portfolio_id, currency FOR UPDATE"""
_LOAD_LIMITS = """
SELECT portfolio_id, currency, capacity FROM portfolio_monitor_limits
WHERE portfolio_id = ANY($1::text[]) AND metric = 'gross_notional'"""
_SAVE_TRADES = """
INSERT INTO portfolio_monitor_trades (portfolio_id, trade_id, currency, notional, direction, live)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::double precision[], $5::text[], $6::boolean[])
ON CONFLICT (portfolio_id, trade_id) DO UPDATE
SET notional = EXCLUDED.notional, direction = EXCLUDED.direction, live = EXCLUDED.live"""
_SAVE_GROSS = """
INSERT INTO portfolio_monitor_gross (portfolio_id, currency, gross)
SELECT * FROM unnest($1::text[], $2::text[], $3::double precision[])
ON CONFLICT (portfolio_id, currency) DO UPDATE SET gross = EXCLUDED.gross"""
_SAVE_LIMITS = """
INSERT INTO portfolio_monitor_limits (portfolio_id, metric, currency, capacity)
SELECT p, 'gross_notional', c, v FROM unnest($1::text[], $2::text[], $3::double precision[]) AS x(p, c, v)
ON CONFLICT (portfolio_id, metric, currency) DO UPDATE SET capacity = EXCLUDED.capacity"""
