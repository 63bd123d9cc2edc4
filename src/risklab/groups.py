"""Which actors run together: the groups a process can be started with (`risklab run <group>`).

Each group scales out by running more processes of it: they join the same consumer groups and
share the partitions. Projections start at their active generation (see `projections.generations`),
so a process started after `risklab replay` writes to the rebuilt tables. Desk issues add their
own groups here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from agents.platform.portfolio_monitor import PortfolioMonitor
from bus.runtime.actor import Actor
from projections.audit import AuditTrailProjection
from projections.early_warning import EarlyWarningProjection
from projections.structured_desk import StructuredDeskProjection
from risklab.artifacts import artifact_store
from risklab.engine_worker import EngineWorker
from risklab.settings import Settings

ActorFactory = Callable[[Settings, asyncpg.Pool], Awaitable[list[Actor]]]


async def _platform(settings: Settings, pool: asyncpg.Pool) -> list[Actor]:
    return [PortfolioMonitor()]


async def _projector(settings: Settings, pool: asyncpg.Pool) -> list[Actor]:
    return [
        await AuditTrailProjection.active(pool),
        await EarlyWarningProjection.active(pool),
        await StructuredDeskProjection.active(pool),
    ]


async def _structured(settings: Settings, pool: asyncpg.Pool) -> list[Actor]:
    from risklab.structured_desk import desk_actors, narrator_of

    return desk_actors(artifact_store(settings), narrator_of(settings))


async def _engine_worker(settings: Settings, pool: asyncpg.Pool) -> list[Actor]:
    return [EngineWorker(artifact_store(settings))]


ACTOR_GROUPS: dict[str, ActorFactory] = {
    "platform": _platform,
    "projector": _projector,
    "structured": _structured,
    "engine-worker": _engine_worker,
}
"""Actor groups by name; `risklab run api` is the HTTP API, not an actor group."""


def check_group(group: str) -> None:
    if group not in ACTOR_GROUPS:
        raise ValueError(f"unknown group {group!r}; known: {', '.join([*ACTOR_GROUPS, 'api'])}")


async def actors_of(group: str, settings: Settings, pool: asyncpg.Pool) -> list[Actor]:
    """The actors of `group`, projections at their active generation."""
    check_group(group)
    return await ACTOR_GROUPS[group](settings, pool)


async def all_actors(settings: Settings, pool: asyncpg.Pool) -> list[Actor]:
    """Every actor of every group: what the embedded default runs in one process."""
    return [a for factory in ACTOR_GROUPS.values() for a in await factory(settings, pool)]
