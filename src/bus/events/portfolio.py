"""Portfolio events: trades booked, amended and terminated, and the limits portfolios run under."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from bus.catalog import CATALOG, Event
from bus.events.common import Currency, Finite, Identifier
from bus.topics import PORTFOLIO_TRADES

InstrumentType = Literal[
    "equity",
    "equity_option",
    "equity_swap",
    "future",
    "fx_forward",
    "interest_rate_swap",
    "cross_currency_swap",
    "swaption",
    "cds",
    "cds_index",
    "bond",
    "autocallable",
    "other",
]


@CATALOG.register
class TradeBooked(Event, type="portfolio.trade_booked", version=1, topic=PORTFOLIO_TRADES, key="portfolio_id"):
    """A new trade in a portfolio. Notional is in `currency`, always positive; `direction` gives the side."""

    portfolio_id: Identifier
    trade_id: Identifier
    instrument_type: InstrumentType
    underlying: Identifier
    direction: Literal["long", "short"]
    notional: Finite = Field(gt=0, description="Notional amount in `currency`.")
    currency: Currency
    trade_date: dt.date
    maturity_date: dt.date | None = None
    counterparty: Identifier | None = None
    venue: Identifier | None = Field(default=None, description="Clearing house or execution venue.")

    @model_validator(mode="after")
    def _maturity_after_trade(self) -> TradeBooked:
        if self.maturity_date is not None and self.maturity_date <= self.trade_date:
            raise ValueError("maturity_date must be after trade_date")
        return self


@CATALOG.register
class TradeAmended(Event, type="portfolio.trade_amended", version=1, topic=PORTFOLIO_TRADES, key="portfolio_id"):
    """New terms for a booked trade; fields left out keep their value."""

    portfolio_id: Identifier
    trade_id: Identifier
    notional: Finite | None = Field(default=None, gt=0, description="New notional in the trade's currency.")
    direction: Literal["long", "short"] | None = None
    maturity_date: dt.date | None = None
    reason: str = Field(min_length=1, max_length=500)


@CATALOG.register
class TradeTerminated(Event, type="portfolio.trade_terminated", version=1, topic=PORTFOLIO_TRADES, key="portfolio_id"):
    """A trade taken out of a portfolio (matured, unwound, novated, compressed)."""

    portfolio_id: Identifier
    trade_id: Identifier
    termination_date: dt.date
    reason: str = Field(min_length=1, max_length=500)


@CATALOG.register
class PortfolioLimitSet(Event, type="portfolio.limit_set", version=1, topic=PORTFOLIO_TRADES, key="portfolio_id"):
    """The capacity a portfolio may use of a metric, e.g. gross notional in USD."""

    portfolio_id: Identifier
    metric: Literal["gross_notional"]
    capacity: Finite = Field(gt=0, description="Limit in `currency`.")
    currency: Currency
