"""End-to-end throughput and latency of the event bus with the exactly-once runtime on.

    uv run python bench/bus.py --transport memory --events 50000 --runs 3
    uv run python bench/bus.py --transport kafka --events 30000 --runs 3     # starts the local stack

Two pipelines, each run on the memory transport or on Kafka, always with a real PostgreSQL (the
embedded one for memory, the local stack's for Kafka):
- `audit`: users' trade events → audit-trail projection rows (every envelope, hash chained);
- `full`:  trade events → portfolio monitor (state rows + an IndicatorObserved each, through the
  outbox and relay) → audit trail and early-warning board; the run ends when every consumer has
  processed the whole log and the outbox is empty.
Throughput is input events per second from the first publish until settled. Latency is measured
separately at half the throughput rate: for each input event, the time from its publication
(its `occurred_at`) to its audit row's transaction time, reported as p50 and p99. Peak memory is
the benchmark process's maximum resident set (the actors run inside it; the servers do not).
Figures are medians over `--runs`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import logging
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and its name would shadow the `bus`
# package; the benchmark imports the installed packages instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from agents.platform.portfolio_monitor import PortfolioMonitor  # noqa: E402
from bus.catalog import CATALOG  # noqa: E402
from bus.database import connect_pool  # noqa: E402
from bus.events import PortfolioLimitSet, TradeBooked  # noqa: E402
from bus.memory import MemoryTransport  # noqa: E402
from bus.runtime.actor import Actor  # noqa: E402
from bus.runtime.progress import wait_settled  # noqa: E402
from bus.runtime.runner import RuntimeOptions, ensure_runtime_schema  # noqa: E402
from bus.topics import topic_specs  # noqa: E402
from projections.audit import AuditTrailProjection  # noqa: E402
from projections.early_warning import EarlyWarningProjection  # noqa: E402
from risklab.embedded import fresh_database, start_embedded_postgres  # noqa: E402
from risklab.process import running  # noqa: E402
from risklab.servers import open_transport  # noqa: E402
from risklab.settings import Settings  # noqa: E402

PORTFOLIOS = 200
_TICKS = os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time used so far by every PostgreSQL process on the machine (user + system)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("postgres") or name.startswith("postmaster"):
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def make_events(n: int, *, start: dt.datetime | None = None) -> list:
    """`n` input envelopes: a limit per portfolio, then bookings spread over the portfolios."""
    corr = uuid.uuid4()
    tag = uuid.uuid4().hex[:6]
    out = []
    for p in range(PORTFOLIOS):
        ev = PortfolioLimitSet(portfolio_id=f"B{p:04d}", metric="gross_notional", capacity=5e9, currency="USD")
        out.append(CATALOG.envelope(ev, producer="bench", correlation_id=corr, occurred_at=start))
    for i in range(n - PORTFOLIOS):
        ev = TradeBooked(
            portfolio_id=f"B{i % PORTFOLIOS:04d}",
            trade_id=f"T{tag}-{i}",
            instrument_type="equity_swap",
            underlying="SPX",
            direction="long",
            notional=1e6 + i,
            currency="USD",
            trade_date=dt.date(2026, 11, 2),
        )
        out.append(CATALOG.envelope(ev, producer="bench", correlation_id=uuid.uuid4(), occurred_at=start))
    return out


def actors_for(pipeline: str) -> list[Actor]:
    if pipeline == "audit":
        return [AuditTrailProjection()]
    return [PortfolioMonitor(), AuditTrailProjection(), EarlyWarningProjection()]


async def one_run(args: argparse.Namespace, pipeline: str, db_url: str, make_transport) -> dict:
    pool = await connect_pool(db_url, max_size=40)
    transport = make_transport()
    await transport.start()
    try:
        await transport.ensure_topics(topic_specs(args.partitions))
        await ensure_runtime_schema(pool)
        actors = actors_for(pipeline)
        events = make_events(args.events)
        # The inputs are built before timing and held to the end: the benchmark's own data, which a
        # publisher elsewhere would not keep, is exempted from garbage collection like start-up state.
        gc.freeze()
        options = RuntimeOptions() if args.batch is None else RuntimeOptions(max_records=args.batch)
        async with running(actors, transport, pool, options) as group:
            await wait_settled(pool, transport, group.consumers(), timeout=600)
            t0 = time.perf_counter()
            cpu0, pg0 = time.process_time(), postgres_cpu_seconds()
            for i in range(0, len(events), 2000):
                await transport.publish_many("portfolio.trades", events[i : i + 2000])
            await wait_settled(pool, transport, group.consumers(), timeout=1200, interval=0.02)
            elapsed = time.perf_counter() - t0
            cpu, pg = time.process_time() - cpu0, postgres_cpu_seconds() - pg0
            throughput = len(events) / elapsed
            # latency at half that rate
            rate = throughput / 2
            paced = make_events(max(PORTFOLIOS + 1, int(rate * args.latency_seconds)))[PORTFOLIOS:]
            ids = []
            t1 = time.perf_counter()
            step = max(1, int(rate / 100))  # publish in 10 ms slices
            for i in range(0, len(paced), step):
                target = t1 + i / rate
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = dt.datetime.now(dt.UTC)
                batch = [e.model_copy(update={"occurred_at": now}) for e in paced[i : i + step]]
                ids.extend(e.event_id for e in batch)
                await transport.publish_many("portfolio.trades", batch)
            await wait_settled(pool, transport, group.consumers(), timeout=600, interval=0.02)
        async with pool.acquire() as conn:
            lat = await conn.fetch(
                "SELECT extract(epoch FROM recorded_at - occurred_at) * 1000 AS ms "
                "FROM proj_audit_g1.audit_events WHERE event_id = ANY($1::uuid[])",
                ids,
            )
        ms = sorted(r["ms"] for r in lat)
        assert len(ms) == len(ids), f"{len(ids) - len(ms)} paced events missing from the audit trail"
        return {
            "throughput": throughput,
            "latency_rate": rate,
            "p50": ms[len(ms) // 2],
            "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
            "latency_events": len(ms),
            "cpu_us": cpu / len(events) * 1e6,
            "pg_us": pg / len(events) * 1e6,
        }
    finally:
        await pool.close()
        await transport.close()


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = Settings(home=Path(args.home))
    if args.transport == "memory":
        server = start_embedded_postgres(settings.home)

        def make_transport():
            return MemoryTransport(topic_specs(args.partitions))
    else:
        from risklab.stack import LocalStack

        stack = LocalStack(settings)
        stack.up()
        server = stack.database_url.rsplit("/", 1)[0] + "/postgres"

        def make_transport():
            return open_transport(
                Settings(
                    home=settings.home,
                    transport="kafka",
                    kafka_bootstrap=stack.kafka_bootstrap,
                    namespace=f"bench{uuid.uuid4().hex[:8]}",
                    partitions=args.partitions,
                ),
                client_id="bench",
            )

    print(f"transport={args.transport} events={args.events} partitions={args.partitions} runs={args.runs}")
    for pipeline in args.pipelines:
        results = []
        for run in range(args.runs):
            url = await fresh_database(server, f"risklab_bench_{run}")
            r = await one_run(args, pipeline, url, make_transport)
            results.append(r)
            print(
                f"  {pipeline:5s} run {run + 1}: {r['throughput']:>9,.0f} events/s; at {r['latency_rate']:,.0f}/s "
                f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms ({r['latency_events']:,} events); "
                f"CPU per event: {r['cpu_us']:.0f} µs here, {r['pg_us']:.0f} µs in PostgreSQL"
            )
        med = {k: statistics.median(r[k] for r in results) for k in ("throughput", "p50", "p99", "latency_rate")}
        print(
            f"{pipeline:5s} median: {med['throughput']:,.0f} events/s; latency at {med['latency_rate']:,.0f}/s: "
            f"p50 {med['p50']:.1f} ms, p99 {med['p99']:.1f} ms"
        )
    print(f"peak memory of the benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transport", choices=["memory", "kafka"], default="memory")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--batch", type=int, default=None, help="most records per round (default: the runtime's, as `risklab run`)"
    )
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    parser.add_argument("--pipelines", nargs="+", default=["audit", "full"], choices=["audit", "full"])
    parser.add_argument("--home", default=".risklab-bench")
    asyncio.run(main(parser.parse_args()))
