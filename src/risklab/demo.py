"""`risklab demo`: the whole platform in one process on bundled sample data.

Memory transport, an embedded PostgreSQL (a fresh `risklab_demo` database each run), every actor
group; it publishes the sample market, portfolio and indicator events, sends a Monte Carlo
pricing job to the engine worker in chunks, sends the bundled design request to the structured
desk and follows it to its ranked proposal, waits until every actor has processed the whole log,
and reports what the platform concluded. Each desk issue extends it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from itertools import groupby
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from bus.database import connect_pool
from bus.envelope import Envelope
from bus.memory import MemoryTransport
from bus.runtime.progress import wait_settled
from bus.runtime.runner import ensure_runtime_schema
from bus.topics import topic_specs
from engines import registry
from risklab import queries
from risklab.artifacts import artifact_store
from risklab.compute_client import request_and_gather
from risklab.embedded import fresh_database, start_embedded_postgres
from risklab.groups import all_actors
from risklab.ingest import parse_submissions
from risklab.process import RunningActors, running, runtime_options
from risklab.report import board_table, summary_table
from risklab.samples import SAMPLE_PRODUCER, sample_events
from risklab.settings import Settings
from risklab.structured_desk import STAGE_OF_TYPE, build_request, sample_request_data, submit_and_follow

DEMO_DATABASE = "risklab_demo"
DEMO_SEED = 20261123
STRUCTURED_TIMEOUT = 1800.0
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
    structured: dict[str, Any] = field(default_factory=dict)
    """The structured desk's final event for the sample design request (proposal or rejection)."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@asynccontextmanager
async def embedded_platform(settings: Settings, database: str = DEMO_DATABASE) -> AsyncIterator[EmbeddedPlatform]:
    """Every actor group in this process: memory transport and a fresh database on the embedded PostgreSQL."""
    url = await fresh_database(start_embedded_postgres(settings.home), database)
    pool = await connect_pool(url, max_size=24)
    transport = MemoryTransport(topic_specs(settings.partitions, settings.max_message_bytes))
    try:
        await ensure_runtime_schema(pool)
        actors = await all_actors(settings, pool)
        async with running(actors, transport, pool, runtime_options(settings)) as group:
            yield EmbeddedPlatform(transport, pool, group)
    finally:
        await pool.close()
        await transport.close()


@dataclass
class EmbeddedPlatform:
    transport: MemoryTransport
    pool: asyncpg.Pool
    group: RunningActors


async def run_demo(settings: Settings, console: Console | None = None) -> DemoReport:
    """Run the demo end to end and return its report."""
    started = time.perf_counter()
    status = console.status("starting the embedded PostgreSQL") if console else None
    if status:
        status.start()
    try:
        async with embedded_platform(settings) as platform:
            transport, pool = platform.transport, platform.pool
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
            mc = await request_and_gather(transport, "mc.european_option", [OPTION] * 4, seed=DEMO_SEED, timeout=120)
            closed = registry.run("bs.european_option", {k: v for k, v in OPTION.items() if k != "paths"}, None)
            if status:
                status.update("structured desk: design request -> priced, stressed, distributed, reviewed proposal")
            store = artifact_store(settings)
            request = build_request(sample_request_data(), store)

            def stage(envelope: Envelope) -> None:
                if status:
                    status.update(f"structured desk: {STAGE_OF_TYPE.get(envelope.type, envelope.type)} done")

            outcome = await submit_and_follow(transport, request, timeout=STRUCTURED_TIMEOUT, on_event=stage)
            if status:
                status.update("waiting until every actor has processed the whole log")
            await wait_settled(pool, transport, platform.group.consumers(), timeout=120)
            async with pool.acquire() as conn:
                report = DemoReport(
                    published=published + 1,
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
                    structured=outcome.final.model_dump(mode="json"),
                )
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
    if report.structured:
        console.print()
        print_proposal(report.structured, console)


def _variation(structure_id: str) -> str:
    """What sets a lab variation apart ("ki0.6 cpn0.07 trig1"), the whole name otherwise."""
    inner = structure_id.rpartition("[")[2].rstrip("]")
    return inner if structure_id.endswith("]") and inner else structure_id


def proposal_table(proposal: dict[str, Any], top: int = 10) -> Table:
    """The structured desk's ranking: the best `top` structures with their component scores."""
    payload = proposal["payload"]
    shown = f"top {top} of {len(payload['ranking'])}"
    table = Table(title=f"Structured desk proposal for {payload['request_id']} ({shown})")
    for col in ("#", "structure", "score", "client", "margin", "risk", "distrib.", "compl.", "Pareto", "eligible"):
        table.add_column(col, justify="left" if col == "structure" else "right")
    for i, r in enumerate(payload["ranking"][:top], start=1):
        c = r["components"]
        table.add_row(
            str(i), _variation(r["structure_id"]), f"{r['score']:.3f}", f"{c['client_value']:.2f}",
            f"{c['issuer_margin']:.2f}", f"{c['risk']:.2f}", f"{c['distribution']:.2f}", f"{c['compliance']:.2f}",
            "yes" if r["pareto_optimal"] else "", "yes" if r["eligible"] else "",
        )  # fmt: skip
    return table


def print_proposal(final: dict[str, Any], console: Console) -> None:
    """The desk's answer: the ranked proposal and its recommendation, or the rejection and its reason."""
    payload = final["payload"]
    if final["type"] == "structured.product_design_rejected":
        field = f" ({payload['field']})" if payload.get("field") else ""
        console.print(f"[bold red]design request {payload['request_id']} rejected by {payload['agent']}{field}:[/] ")
        console.print(payload["reason"], markup=False)
        return
    console.print(proposal_table(final))
    console.print(f"[bold]Recommendation:[/] {payload['recommendation'] or 'none'}", highlight=False)
    console.print(payload["rationale"], markup=False, highlight=False)
    for doc in payload["documents"]:
        console.print(f"  {doc['kind']} ({doc['format']}): {doc['artifact']['uri']}", markup=False, highlight=False)
    console.print(f"[dim]narrative ({payload['narrative']['source']}):[/] ", end="")
    console.print(payload["narrative"]["text"], markup=False, highlight=False)
