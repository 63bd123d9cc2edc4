"""The generic event types of the platform; importing this package registers them in the catalog."""

from bus.events.compute import ComputeCompleted, ComputeFailed, ComputeRequested
from bus.events.deadletter import DeadLettered
from bus.events.indicators import AlertCleared, AlertRaised, IndicatorObserved, Level
from bus.events.market import MarketDataSnapshotPublished, MarketQuote
from bus.events.portfolio import PortfolioLimitSet, TradeAmended, TradeBooked, TradeTerminated

__all__ = [
    "AlertCleared",
    "AlertRaised",
    "ComputeCompleted",
    "ComputeFailed",
    "ComputeRequested",
    "DeadLettered",
    "IndicatorObserved",
    "Level",
    "MarketDataSnapshotPublished",
    "MarketQuote",
    "PortfolioLimitSet",
    "TradeAmended",
    "TradeBooked",
    "TradeTerminated",
]
