"""The topics of the event log and the settings each is created with.

Domain topics keep every event (no time or size retention): the log is the source of truth and
projections are rebuilt from it. Compute topics carry work and results that are re-derivable,
so they keep a week.
"""

from __future__ import annotations

from dataclasses import dataclass

MARKET_DATA = "market.data"
PORTFOLIO_TRADES = "portfolio.trades"
DESK_STRUCTURED = "desk.structured"
DESK_MARGIN = "desk.margin"
DESK_XVA = "desk.xva"
COMPUTE_REQUESTS = "compute.requests"
COMPUTE_RESULTS = "compute.results"
ALERTS = "alerts"
DEADLETTER = "deadletter"
RISK_INDICATORS = "risk.indicators"

KEEP_FOREVER = -1
ONE_WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """A topic and the settings the bus creates it with."""

    name: str
    partitions: int
    retention_ms: int = KEEP_FOREVER
    max_message_bytes: int = 1_048_576

    def kafka_config(self) -> dict[str, str]:
        """Topic-level Kafka configuration for this spec."""
        return {
            "retention.ms": str(self.retention_ms),
            "retention.bytes": "-1",
            "cleanup.policy": "delete",
            "max.message.bytes": str(self.max_message_bytes),
            "min.insync.replicas": "1",
        }


DOMAIN_TOPICS = (
    MARKET_DATA,
    PORTFOLIO_TRADES,
    RISK_INDICATORS,
    DESK_STRUCTURED,
    DESK_MARGIN,
    DESK_XVA,
    ALERTS,
    DEADLETTER,
)
COMPUTE_TOPICS = (COMPUTE_REQUESTS, COMPUTE_RESULTS)
ALL_TOPICS = DOMAIN_TOPICS + COMPUTE_TOPICS
USER_TOPICS = (
    MARKET_DATA,
    PORTFOLIO_TRADES,
    RISK_INDICATORS,
    DESK_STRUCTURED,
    DESK_MARGIN,
    DESK_XVA,
    COMPUTE_REQUESTS,
)
"""Topics a user may publish to through the CLI or the API."""


def topic_specs(partitions: int = 6, max_message_bytes: int = 1_048_576) -> tuple[TopicSpec, ...]:
    """The topic catalog with the given partition count and message size limit."""
    specs = [TopicSpec(name, partitions, KEEP_FOREVER, max_message_bytes) for name in DOMAIN_TOPICS]
    specs += [TopicSpec(name, partitions, ONE_WEEK_MS, max_message_bytes) for name in COMPUTE_TOPICS]
    return tuple(specs)
