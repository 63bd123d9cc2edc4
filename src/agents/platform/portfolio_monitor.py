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
    migrations = (Migration("portfolio-monitor", 1, "trades_and_limits", _SCHEMA),)

    async def handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        e: Event = event.event
        conn = ctx.conn
        if isinstance(e, TradeBooked):
            inserted = await conn.fetchval(
                """INSERT INTO portfolio_monitor_trades (portfolio_id, trade_id, currency, notional, direction)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
                e.portfolio_id,
                e.trade_id,
                e.currency,
                e.notional,
                e.direction,
            )
            if not inserted:
                raise Rejected(f"trade_id {e.trade_id!r} is already booked in portfolio {e.portfolio_id!r}")
            currency = e.currency
        elif isinstance(e, TradeAmended):
            currency = await conn.fetchval(
                """UPDATE portfolio_monitor_trades
                   SET notional = COALESCE($3, notional), direction = COALESCE($4, direction)
                   WHERE portfolio_id = $1 AND trade_id = $2 AND live RETURNING currency""",
                e.portfolio_id,
                e.trade_id,
                e.notional,
                e.direction,
            )
            if currency is None:
                raise Rejected(f"trade_id {e.trade_id!r} is not a live trade of portfolio {e.portfolio_id!r}")
        elif isinstance(e, TradeTerminated):
            currency = await conn.fetchval(
                """UPDATE portfolio_monitor_trades SET live = false
                   WHERE portfolio_id = $1 AND trade_id = $2 AND live RETURNING currency""",
                e.portfolio_id,
                e.trade_id,
            )
            if currency is None:
                raise Rejected(f"trade_id {e.trade_id!r} is not a live trade of portfolio {e.portfolio_id!r}")
        elif isinstance(e, PortfolioLimitSet):
            await conn.execute(
                """INSERT INTO portfolio_monitor_limits (portfolio_id, metric, currency, capacity)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (portfolio_id, metric, currency) DO UPDATE SET capacity = EXCLUDED.capacity""",
                e.portfolio_id,
                e.metric,
                e.currency,
                e.capacity,
            )
            currency = e.currency
        else:  # pragma: no cover - `accepts` keeps other types out
            return
        await self._report_usage(ctx, e.portfolio_id, currency)

    async def _report_usage(self, ctx: HandlerContext, portfolio_id: str, currency: str) -> None:
        row = await ctx.conn.fetchrow(
            """SELECT l.capacity,
                      (SELECT COALESCE(sum(t.notional), 0) FROM portfolio_monitor_trades t
                        WHERE t.portfolio_id = l.portfolio_id AND t.currency = l.currency AND t.live) AS gross
               FROM portfolio_monitor_limits l
               WHERE l.portfolio_id = $1 AND l.metric = 'gross_notional' AND l.currency = $2""",
            portfolio_id,
            currency,
        )
        if row is None:
            return  # no limit in this currency: nothing to measure against
        ctx.emit(
            IndicatorObserved(
                subject=portfolio_id,
                metric=indicator_metric(currency),
                value=float(row["gross"]),
                capacity=float(row["capacity"]),
                unit=currency,
                observed_at=ctx.cause.occurred_at,
            )
        )
