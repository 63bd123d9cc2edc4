"""The generic event types of the platform; importing this package registers them in the catalog."""

from bus.events.compute import ComputeCompleted, ComputeFailed, ComputeRequested
from bus.events.deadletter import DeadLettered
from bus.events.indicators import AlertCleared, AlertRaised, IndicatorObserved, Level
from bus.events.market import MarketDataSnapshotPublished, MarketQuote
from bus.events.narrative import Narrative
from bus.events.portfolio import PortfolioLimitSet, TradeAmended, TradeBooked, TradeTerminated
from bus.events.structured import (
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

__all__ = [
    "AlertCleared",
    "AlertRaised",
    "AssumptionsValidated",
    "ComplianceReviewed",
    "ComputeCompleted",
    "ComputeFailed",
    "ComputeRequested",
    "DeadLettered",
    "DistributionPlanned",
    "IndicatorObserved",
    "Level",
    "MarketDataSnapshotPublished",
    "MarketQuote",
    "Narrative",
    "PortfolioLimitSet",
    "ProductDesignRejected",
    "ProductDesignRequested",
    "ProductProposalPublished",
    "ScenariosGenerated",
    "StressTested",
    "StructuresProposed",
    "TradeAmended",
    "TradeBooked",
    "TradeTerminated",
]
