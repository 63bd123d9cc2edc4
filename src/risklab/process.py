"""Running actors in a process: start their runners, stop them gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from bus.runtime.actor import Actor
from bus.runtime.collector import tune_for_streaming
from bus.runtime.runner import ActorRunner, RuntimeOptions, ensure_runtime_schema
from bus.transport import Transport
from risklab.settings import Settings

log = logging.getLogger("risklab.process")


def runtime_options(settings: Settings) -> RuntimeOptions:
    return RuntimeOptions(retries=settings.handler_retries, backoff_seconds=settings.retry_backoff_seconds)


@dataclass
class RunningActors:
    """Runners started by `running`, with their tasks."""

    runners: list[ActorRunner]
    tasks: list[asyncio.Task[None]]

    def consumers(self) -> list[tuple[str, tuple[str, ...]]]:
        """(consumer name, topics) of each runner, for progress checks."""
        return [(r.name, r.actor.topics) for r in self.runners]


@asynccontextmanager
async def running(
    actors: Sequence[Actor], transport: Transport, pool: asyncpg.Pool, options: RuntimeOptions
) -> AsyncIterator[RunningActors]:
    """Run the actors while the block executes; on exit finish the events in hand and stop."""
    tune_for_streaming()
    await ensure_runtime_schema(pool)
    runners = [ActorRunner(a, transport, pool, options) for a in actors]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop), name=f"actor:{r.name}") for r in runners]
    try:
        yield RunningActors(runners, tasks)
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for runner, result in zip(runners, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("%s stopped with %s: %s", runner.name, type(result).__name__, result)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, so the process can finish the event in hand and exit."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_until_stopped(
    actors: Sequence[Actor], transport: Transport, pool: asyncpg.Pool, options: RuntimeOptions
) -> None:
    """Run the actors until SIGTERM or SIGINT; a runner that fails stops the process with its error."""
    stop = stop_on_signals()
    async with running(actors, transport, pool, options) as group:
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *group.tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} failed") from task.exception()
