"""Market data events: snapshots of quotes that agents and engines price from."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from bus.catalog import CATALOG, Event
from bus.events.common import Currency, Finite, Identifier
from bus.topics import MARKET_DATA

QuoteType = Literal[
    "spot",
    "forward",
    "zero_rate",
    "par_rate",
    "implied_vol",
    "dividend_yield",
    "fx_rate",
    "cds_spread",
    "correlation",
    "price",
]


class MarketQuote(BaseModel):
    """One observed market quote. Rates, yields, vols and spreads are decimals (0.05 = 5%)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instrument: Identifier = Field(description="What is quoted, e.g. SPX, USD.SOFR, EURUSD, ACME.CDS.5Y.")
    quote_type: QuoteType
    value: Finite
    unit: str = Field(min_length=1, max_length=40, description="Unit of value, e.g. USD, decimal, decimal_per_year.")
    tenor: str | None = Field(default=None, pattern=r"^\d+[DWMY]$", description="Tenor such as 3M or 10Y.")
    strike: Finite | None = Field(default=None, description="Strike for option quotes, in the underlying's units.")


@CATALOG.register
class MarketDataSnapshotPublished(
    Event, type="market.snapshot_published", version=1, topic=MARKET_DATA, key="universe"
):
    """A consistent snapshot of market quotes for one universe at one time."""

    snapshot_id: Identifier
    universe: Identifier = Field(description="The market data set, e.g. global-eod; the partition key.")
    as_of: AwareDatetime
    base_currency: Currency
    quotes: list[MarketQuote] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_quotes(self) -> MarketDataSnapshotPublished:
        seen: set[tuple[str, str, str | None, float | None]] = set()
        for i, q in enumerate(self.quotes):
            ident = (q.instrument, q.quote_type, q.tenor, q.strike)
            if ident in seen:
                raise ValueError(f"quotes[{i}] repeats {q.instrument} {q.quote_type} {q.tenor or ''}".rstrip())
            seen.add(ident)
        return self
