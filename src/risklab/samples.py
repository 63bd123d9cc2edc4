"""Bundled sample events for the demo: a market snapshot, portfolio limits and trades, and
margin-usage indicators of clearing venues.

Deterministic (fixed ids and times), so that two demo runs give the same audit trail and board.
The trades are laid out so that some books cross the early-warning thresholds and come back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bus.topics import MARKET_DATA, PORTFOLIO_TRADES, RISK_INDICATORS

SAMPLE_NAMESPACE = uuid.UUID("0b5e4c1e-8a57-5d1f-9c0e-2f4b6a7d8e90")
SAMPLE_START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SAMPLE_PRODUCER = "risklab-samples"


@dataclass(frozen=True)
class SampleEvent:
    topic: str
    submission: dict[str, Any]


def _quotes() -> list[dict[str, Any]]:
    quotes: list[dict[str, Any]] = []
    for name, spot, vol, div in (
        ("SPX", 5912.4, 0.165, 0.013),
        ("SX5E", 4876.2, 0.182, 0.031),
        ("NKY", 38410.0, 0.21, 0.018),
    ):
        quotes.append({"instrument": name, "quote_type": "spot", "value": spot, "unit": "index_points"})
        quotes.append({"instrument": name, "quote_type": "dividend_yield", "value": div, "unit": "decimal_per_year"})
        for tenor, bump in (("3M", 0.0), ("1Y", 0.012), ("5Y", 0.021)):
            quotes.append(
                {
                    "instrument": name,
                    "quote_type": "implied_vol",
                    "value": vol + bump,
                    "unit": "decimal",
                    "tenor": tenor,
                }
            )
    for tenor, rate in (("3M", 0.0432), ("1Y", 0.0405), ("5Y", 0.0371), ("10Y", 0.0389)):
        quotes.append(
            {"instrument": "USD.SOFR", "quote_type": "zero_rate", "value": rate, "unit": "decimal", "tenor": tenor}
        )
    quotes.append({"instrument": "EURUSD", "quote_type": "fx_rate", "value": 1.0842, "unit": "USD_per_EUR"})
    return quotes


# (portfolio, currency, limit in that currency)
_LIMITS = (
    ("PM-ALPHA", "USD", 500e6),
    ("PM-BETA", "USD", 400e6),
    ("PM-GAMMA", "EUR", 300e6),
    ("PM-DELTA", "USD", 800e6),
)
# (portfolio, trade, instrument type, underlying, direction, notional, currency)
_TRADES = (
    ("PM-ALPHA", "T-1001", "equity_option", "SPX", "long", 120e6, "USD"),
    ("PM-ALPHA", "T-1002", "future", "SPX", "short", 95e6, "USD"),
    ("PM-ALPHA", "T-1003", "equity_swap", "SPX", "long", 150e6, "USD"),  # 365m: 0.73 -> high
    ("PM-BETA", "T-2001", "interest_rate_swap", "USD.SOFR", "long", 180e6, "USD"),
    ("PM-BETA", "T-2002", "interest_rate_swap", "USD.SOFR", "short", 90e6, "USD"),
    ("PM-GAMMA", "T-3001", "equity_option", "SX5E", "long", 140e6, "EUR"),
    ("PM-GAMMA", "T-3002", "cds_index", "ITRAXX.MAIN", "short", 90e6, "EUR"),  # 230m: 0.77 -> high
    ("PM-GAMMA", "T-3003", "equity_swap", "SX5E", "long", 45e6, "EUR"),  # 275m: 0.92 -> critical
    ("PM-DELTA", "T-4001", "fx_forward", "EURUSD", "long", 210e6, "USD"),
    ("PM-DELTA", "T-4002", "equity_option", "NKY", "long", 160e6, "USD"),
)
# (subject, metric, [(value, capacity)...]) in USD
_VENUE_USAGE = (
    ("CCP-LCH-SWAPCLEAR", "initial_margin_usage", ((410e6, 1000e6), (720e6, 1000e6), (935e6, 1000e6), (810e6, 1000e6))),
    ("CCP-CME-CLEARING", "initial_margin_usage", ((300e6, 900e6), (420e6, 900e6), (455e6, 900e6))),
    ("CCP-EUREX-CLEARING", "initial_margin_usage", ((150e6, 600e6), (470e6, 600e6), (300e6, 600e6))),
)


def sample_events() -> list[SampleEvent]:
    """The demo's input events, in publishing order."""
    events: list[SampleEvent] = []
    clock = [SAMPLE_START]

    def add(topic: str, type_: str, payload: dict[str, Any]) -> None:
        n = len(events)
        events.append(
            SampleEvent(
                topic,
                {
                    "type": type_,
                    "payload": payload,
                    "event_id": str(uuid.uuid5(SAMPLE_NAMESPACE, f"sample/{n}")),
                    "producer": SAMPLE_PRODUCER,
                    "occurred_at": clock[0].isoformat(),
                },
            )
        )
        clock[0] += timedelta(minutes=5)

    add(
        MARKET_DATA,
        "market.snapshot_published",
        {
            "snapshot_id": "EOD-2026-11-02",
            "universe": "global-eod",
            "as_of": SAMPLE_START.isoformat(),
            "base_currency": "USD",
            "quotes": _quotes(),
        },
    )
    for portfolio, ccy, capacity in _LIMITS:
        add(
            PORTFOLIO_TRADES,
            "portfolio.limit_set",
            {"portfolio_id": portfolio, "metric": "gross_notional", "capacity": capacity, "currency": ccy},
        )
    for portfolio, trade, itype, underlying, direction, notional, ccy in _TRADES:
        add(
            PORTFOLIO_TRADES,
            "portfolio.trade_booked",
            {
                "portfolio_id": portfolio,
                "trade_id": trade,
                "instrument_type": itype,
                "underlying": underlying,
                "direction": direction,
                "notional": notional,
                "currency": ccy,
                "trade_date": "2026-11-02",
                "maturity_date": "2027-11-02",
            },
        )
    add(
        PORTFOLIO_TRADES,
        "portfolio.trade_amended",
        {"portfolio_id": "PM-BETA", "trade_id": "T-2001", "notional": 230e6, "reason": "upsized at client request"},
    )
    add(
        PORTFOLIO_TRADES,
        "portfolio.trade_terminated",
        {"portfolio_id": "PM-GAMMA", "trade_id": "T-3003", "termination_date": "2026-11-02", "reason": "unwound"},
    )
    for subject, metric, series in _VENUE_USAGE:
        for value, capacity in series:
            add(
                RISK_INDICATORS,
                "risk.indicator_observed",
                {
                    "subject": subject,
                    "metric": metric,
                    "value": value,
                    "capacity": capacity,
                    "unit": "USD",
                    "observed_at": clock[0].isoformat(),
                    "window": "1d",
                },
            )
    return events
