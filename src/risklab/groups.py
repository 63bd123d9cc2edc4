"""Which actors run together: the groups a process can be started with (`risklab run <group>`).

Each group scales out by running more processes of it: they join the same consumer groups and
share the partitions. Desk issues add their own groups here.
"""

from __future__ import annotations

from collections.abc import Callable

from agents.platform.portfolio_monitor import PortfolioMonitor
from bus.runtime.actor import Actor
from projections.audit import AuditTrailProjection
from projections.early_warning import EarlyWarningProjection
from risklab.engine_worker import EngineWorker
from risklab.settings import Settings

ActorFactory = Callable[[Settings], list[Actor]]


def _platform(settings: Settings) -> list[Actor]:
    return [PortfolioMonitor()]


def _projector(settings: Settings) -> list[Actor]:
    return [AuditTrailProjection(), EarlyWarningProjection()]


def _engine_worker(settings: Settings) -> list[Actor]:
    return [EngineWorker(settings.artifacts_path)]


ACTOR_GROUPS: dict[str, ActorFactory] = {
    "platform": _platform,
    "projector": _projector,
    "engine-worker": _engine_worker,
}
"""Actor groups by name; `risklab run api` is the HTTP API, not an actor group."""


def actors_of(group: str, settings: Settings) -> list[Actor]:
    try:
        factory = ACTOR_GROUPS[group]
    except KeyError:
        raise ValueError(f"unknown group {group!r}; known: {[*ACTOR_GROUPS, 'api']}") from None
    return factory(settings)


def all_actors(settings: Settings) -> list[Actor]:
    """Every actor of every group: what the embedded default runs in one process."""
    return [a for factory in ACTOR_GROUPS.values() for a in factory(settings)]
