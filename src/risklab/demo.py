"""`risklab demo`: the whole platform in one process on bundled sample data.

Memory transport, an embedded PostgreSQL (a fresh `risklab_demo` database each run), every actor
group; it publishes the sample market, portfolio and indicator events, sends a Monte Carlo
pricing job to the engine worker in chunks, waits until every actor has processed the whole log,
and reports what the platform concluded. Each desk issue extends it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from itertools import groupby
from typing import Any

from rich.console import Console

from bus.database import connect_pool
from bus.memory import MemoryTransport
from bus.runtime.progress import wait_settled
from bus.runtime.runner import ensure_runtime_schema
from bus.topics import topic_specs
from engines import registry
from risklab import queries
from risklab.compute_client import request_and_gather
from risklab.embedded import fresh_database, start_embedded_postgres
from risklab.groups import all_actors
from risklab.ingest import parse_submissions
from risklab.process import running, runtime_options
from risklab.report import board_table, summary_table
from risklab.samples import SAMPLE_PRODUCER, sample_events
from risklab.settings import Settings

DEMO_DATABASE = "risklab_demo"
DEMO_SEED = 20261123
OPTION = {
    "spot": 100.0,
    "strike": 95.0,
    "rate": 0.03,
    "dividend_yield": 0.01,
    "volatility": 0.25,
    "maturity_years": 1.0,
    "option": "put",
    "paths": 100_000,
}


@dataclass
class DemoReport:
    """What the demo published and what the platform concluded."""

    published: int
    audit: list[dict[str, Any]]
    board: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    chain_problems: list[dict[str, Any]]
    compute: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run_demo(settings: Settings, console: Console | None = None) -> DemoReport:
    """Run the demo end to end and return its report."""
    started = time.perf_counter()
    status = console.status("starting the embedded PostgreSQL") if console else None
    if status:
        status.start()
    try:
        url = await fresh_database(start_embedded_postgres(settings.home), DEMO_DATABASE)
        pool = await connect_pool(url, max_size=24)
        transport = MemoryTransport(topic_specs(settings.partitions, settings.max_message_bytes))
        try:
            await ensure_runtime_schema(pool)
            actors = await all_actors(settings, pool)
            async with running(actors, transport, pool, runtime_options(settings)) as group:
                if status:
                    status.update("publishing the sample events")
                published = 0
                for topic, items in groupby(sample_events(), key=lambda e: e.topic):
                    envelopes = parse_submissions(
                        topic,
                        [e.submission for e in items],
                        producer=SAMPLE_PRODUCER,
                        max_message_bytes=settings.max_message_bytes,
                    )
                    published += len(await transport.publish_many(topic, envelopes))
                if status:
                    status.update("pricing a European put on the engine worker in 4 chunks")
                mc = await request_and_gather(
                    transport, "mc.european_option", [OPTION] * 4, seed=DEMO_SEED, timeout=120
                )
                closed = registry.run("bs.european_option", {k: v for k, v in OPTION.items() if k != "paths"}, None)
                if status:
                    status.update("waiting until every actor has processed the whole log")
                await wait_settled(pool, transport, group.consumers(), timeout=120)
            async with pool.acquire() as conn:
                report = DemoReport(
                    published=published,
                    audit=await queries.audit_summary(conn),
                    board=await queries.board(conn),
                    alerts=await queries.recent_alerts(conn),
                    chain_problems=await queries.audit_verify(conn),
                    compute={
                        "kind": "mc.european_option",
                        "seed": DEMO_SEED,
                        "chunks": 4,
                        "paths": mc["paths"],
                        "price": mc["price"],
                        "standard_error": mc["standard_error"],
                        "closed_form": closed["price"],
                    },
                )
        finally:
            await pool.close()
            await transport.close()
    finally:
        if status:
            status.stop()
    report.seconds = time.perf_counter() - started
    return report


def print_report(report: DemoReport, console: Console) -> None:
    """The demo's report as rich tables."""
    from risklab.alerts_cli import alert_line

    console.print(f"published {report.published} sample events; the platform settled in {report.seconds:.1f}s\n")
    console.print(summary_table(report.audit))
    if report.chain_problems:
        console.print(f"[bold red]audit trail: {len(report.chain_problems)} problems[/]")
    else:
        console.print("audit trail: every hash chain verifies\n")
    console.print(board_table(report.board))
    console.print("\n[bold]Alerts[/]")
    for alert in report.alerts:
        console.print("  " + alert_line(alert["type"], alert), highlight=False)
    c = report.compute
    if c:
        z = (c["price"] - c["closed_form"]) / c["standard_error"]
        console.print(
            f"\n[bold]Engine worker[/] {c['kind']} ({c['chunks']} chunks, {c['paths']:,} paths, seed {c['seed']}): "
            f"{c['price']:.4f} ± {c['standard_error']:.4f}; Black–Scholes {c['closed_form']:.4f} ({z:+.2f} SE)"
        )
