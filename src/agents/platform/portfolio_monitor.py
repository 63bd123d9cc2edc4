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
        ctx.emit(
            IndicatorObserved(
                subject=e.portfolio_id,
                metric=indicator_metric(row["currency"]),
                value=float(row["gross"]),
                capacity=float(row["capacity"]),
                unit=row["currency"],
                observed_at=ctx.cause.occurred_at,
            )
        )


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
