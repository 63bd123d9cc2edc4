"""`risklab replay`: rebuild the projections from the log and print a digest per table."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
    console.print(digest_table(report))
    return report


def digest_table(report: RebuildReport) -> Table:
    table = Table(title="Rebuilt projections", title_justify="left")
    for col in ("projection", "generation", "table", "sha256 digest"):
        table.add_column(col)
    for p in report.projections:
        for name, digest in sorted(p.digests.items()):
            table.add_row(p.projection, f"g{p.previous_generation} → g{p.generation}", name, digest)
    return table
