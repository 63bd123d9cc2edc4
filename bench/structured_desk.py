"""Wall time of the structured desk from `ProductDesignRequested` to `ProductProposalPublished`.

    uv run python bench/structured_desk.py --workers 1 2 --runs 1      # starts the local stack

The bundled design request (75 variations of the sample worst-of phoenix, 10,000 paths, the
320-scenario stress grid, KIDs for every variation) on the local stack: real Kafka and
PostgreSQL, with the desk's agents (`risklab run structured`), the projector and 1 or 2 engine
workers (`risklab run engine-worker`) each in its own process, as a deployment runs them. Per run
it prints the wall time and the per-stage breakdown from the audit trail's timestamps (each stage
event's `occurred_at`, relative to the request's), and the peak resident memory of each process.
Each run uses a fresh namespace and database.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from bus.database import connect_pool  # noqa: E402
from risklab import queries  # noqa: E402
from risklab.artifacts import artifact_store  # noqa: E402
from risklab.embedded import fresh_database  # noqa: E402
from risklab.servers import open_transport  # noqa: E402
from risklab.settings import Settings  # noqa: E402
from risklab.structured_desk import STAGE_OF_TYPE, build_request, sample_request_data, submit_and_follow  # noqa: E402

STAGES = (
    "structured.scenarios_generated",
    "structured.structures_proposed",
    "structured.assumptions_validated",
    "structured.distribution_planned",
    "structured.stress_tested",
    "structured.compliance_reviewed",
    "structured.product_proposal_published",
)


def _when(value) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def risklab_exe() -> str:
    return str(Path(sys.executable).with_name("risklab"))


def start_processes(groups: list[str], env: dict[str, str], logs: Path) -> list[subprocess.Popen]:
    """`risklab run <group>` for each group, each logging to its own file."""
    procs = []
    for i, g in enumerate(groups):
        with open(logs / f"{g}-{i}.log", "wb") as log:
            procs.append(subprocess.Popen([risklab_exe(), "run", g], env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


async def one_run(stack, home: Path, workers: int, run: int) -> dict:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    server = stack.database_url.rsplit("/", 1)[0] + "/postgres"
    url = await fresh_database(server, f"risklab_desk_bench_{run}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKLAB_")}
    env.update(
        RISKLAB_TRANSPORT="kafka",
        RISKLAB_KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        RISKLAB_DATABASE_URL=url,
        RISKLAB_NAMESPACE=namespace,
        RISKLAB_HOME=str(home),
        RISKLAB_LOG_LEVEL="WARNING",
    )
    logs = home / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    groups = ["projector", "structured"] + ["engine-worker"] * workers
    procs = start_processes(groups, env, logs)
    peaks = [0] * len(procs)
    settings = Settings(home=home, transport="kafka", kafka_bootstrap=stack.kafka_bootstrap, namespace=namespace)
    transport = open_transport(settings, client_id="bench-desk")
    await transport.start()
    pool = await connect_pool(url)
    stop = asyncio.Event()

    async def sample_memory() -> None:
        while not stop.is_set():
            for i, p in enumerate(procs):
                try:
                    rss = psutil.Process(p.pid).memory_info().rss
                    peaks[i] = max(peaks[i], rss)
                except psutil.Error:
                    pass
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_memory())
    try:
        for _ in range(120):  # the processes create the topics
            try:
                await transport.end_offsets(["desk.structured", "compute.results"])
                break
            except Exception:
                await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # let the consumer groups settle before the clock starts
        request = build_request(sample_request_data(), artifact_store(settings))
        started = time.perf_counter()
        outcome = await submit_and_follow(transport, request, timeout=3600)
        wall = time.perf_counter() - started
        assert outcome.proposed, outcome.final.payload
        correlation = outcome.final.correlation_id
        rows: list[dict] = []
        for _ in range(120):
            async with pool.acquire() as conn:
                rows = await queries.audit_show(conn, correlation)
            if {r["type"] for r in rows} >= set(STAGES):
                break
            await asyncio.sleep(0.5)
        at = {r["type"]: _when(r["occurred_at"]) for r in rows}
        t0 = at["structured.product_design_requested"]
        stages = {t: (at[t] - t0).total_seconds() for t in STAGES if t in at}
    finally:
        stop.set()
        await sampler
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        await pool.close()
        await transport.close()
    return {
        "wall": wall,
        "stages": stages,
        "peaks": dict(zip([f"{g}#{i}" for i, g in enumerate(groups)], peaks, strict=True)),
    }


async def main(args: argparse.Namespace) -> None:
    from risklab.stack import LocalStack

    home = args.home
    stack = LocalStack(Settings(home=home))
    stack.up()
    data = sample_request_data()
    c = data["constraints"]
    print(
        f"design request: {c['min_variations']} variations x 320 scenarios x {c['paths']:,} paths "
        f"({c['chunks']} chunks per engine request), KIDs for every variation; local stack Kafka + PostgreSQL"
    )
    run = 0
    for workers in args.workers:
        walls = []
        for _ in range(args.runs):
            r = await one_run(stack, home, workers, run)
            run += 1
            walls.append(r["wall"])
            print(f"\n{workers} engine worker(s): request -> proposal {r['wall']:.1f} s")
            previous = 0.0
            for t, s in sorted(r["stages"].items(), key=lambda kv: kv[1]):
                print(f"  {STAGE_OF_TYPE[t]:32s} at {s:7.1f} s  (+{s - previous:6.1f} s)")
                previous = s
            print("  peak RSS: " + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in r["peaks"].items()))
        print(f"{workers} engine worker(s): median wall time {statistics.median(walls):.1f} s over {len(walls)} run(s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--home", type=lambda p: Path(p).resolve(), default=".risklab-bench")
    asyncio.run(main(parser.parse_args()))
