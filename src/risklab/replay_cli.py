"""`risklab replay`: rebuild the projections from the log and print a digest per table."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bus.database import connect_pool
from bus.runtime.runner import ensure_runtime_schema
from projections.replay import RebuildReport, rebuild
from risklab.servers import database_url, open_transport
from risklab.settings import Settings


async def run_replay(settings: Settings, console: Console) -> RebuildReport:
    """Rebuild every projection into a new generation, switch to it, print the digests."""
    transport = open_transport(settings, client_id="risklab-replay")
    await transport.start()
    pool = await connect_pool(database_url(settings))
    try:
        await ensure_runtime_schema(pool)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as bar:
            tasks: dict[str, int] = {}

            def on_progress(projection: str, done: int, total: int) -> None:
                if projection not in tasks:
                    tasks[projection] = bar.add_task(f"rebuilding {projection}", total=total)
                bar.update(tasks[projection], completed=done, total=total)

            report = await rebuild(transport, pool, on_progress=on_progress)
    finally:
        await pool.close()
        await transport.close()
    for line in digest_lines(report):
        console.print(line, highlight=False, soft_wrap=True)
    return report


def digest_lines(report: RebuildReport) -> list[str]:
    """One line per rebuilt table: projection, generations, table and its full sha256 digest."""
    return [
        f"{p.projection} g{p.previous_generation} -> g{p.generation} {name} {digest}"
        for p in report.projections
        for name, digest in sorted(p.digests.items())
    ]
