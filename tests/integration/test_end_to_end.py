"""End to end on real Kafka and PostgreSQL, the way a user runs risklab distributed.

Actor groups, the engine worker and the API run as their own `risklab run <group>` processes; the
user publishes with `risklab publish`, asks for work with `risklab compute`, reads the board,
lineage and alerts over HTTP (alerts as server-sent events), verifies the audit trail and rebuilds
the projections with `risklab replay`, whose digests must equal the live tables'.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest
from harness import Deployment, deployment_env, new_namespace, risklab_executable, wait_for

from bus.database import connect_pool
from bus.envelope import derived_event_id
from bus.runtime.progress import progress
from projections.replay import digest
from risklab.servers import open_transport
from risklab.settings import Settings

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOKENS = {"reader": "reader-token-e2e", "publisher": "publisher-token-e2e", "admin": "admin-token-e2e"}
CONSUMERS = (
    ("portfolio-monitor", ("portfolio.trades",)),
    (
        "audit@g1",
        (
            "market.data",
            "portfolio.trades",
            "risk.indicators",
            "compute.requests",
            "compute.results",
            "alerts",
            "deadletter",
        ),
    ),
    ("early_warning@g1", ("risk.indicators",)),
    ("engine-worker", ("compute.requests",)),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [risklab_executable(), *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


async def test_publish_to_alert_through_separate_processes(servers, database_url, tmp_path):
    namespace = new_namespace()
    env = deployment_env(servers.kafka_bootstrap, database_url, namespace, tmp_path / "home")
    port = free_port()
    env.update(RISKLAB_API_PORT=str(port), RISKLAB_API_TOKENS=json.dumps(TOKENS))
    (tmp_path / "logs").mkdir()
    dep = Deployment(env, tmp_path / "logs")
    settings = Settings(transport="kafka", kafka_bootstrap=servers.kafka_bootstrap, namespace=namespace)
    transport = open_transport(settings, client_id="e2e-test")
    await transport.start()
    pool = await connect_pool(database_url)
    try:
        for group in ("projector", "platform", "engine-worker", "api"):
            dep.start(group)
        base = f"http://127.0.0.1:{port}"
        reader = {"Authorization": f"Bearer {TOKENS['reader']}"}

        async def api_up() -> bool:
            dep.check_alive()
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"{base}/health")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(api_up, 60, "the API to answer")

        # a reader listens to the alert stream before anything is published
        alerts: list[tuple[str, dict]] = []

        async def listen() -> None:
            async with (
                httpx.AsyncClient(timeout=None) as c,
                c.stream("GET", f"{base}/alerts/stream?from_beginning=true", headers=reader) as response,
            ):
                assert response.status_code == 200
                name = None
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: ") and name:
                        alerts.append((name, json.loads(line.removeprefix("data: "))))

        listener = asyncio.create_task(listen())

        # the user publishes the example files with the CLI (topics are created by the actor processes)
        await wait_for(lambda: _topics_exist(transport), 60, "the actor processes to create the topics")
        for topic, name in (
            ("market.data", "market.jsonl"),
            ("portfolio.trades", "trades.jsonl"),
            ("risk.indicators", "indicators.jsonl"),
        ):
            done = cli(env, "publish", topic, str(EXAMPLES / name))
            assert done.returncode == 0, done.stderr
        # and sends a Monte Carlo pricing job to the engine worker in 4 chunks
        computed = cli(
            env,
            "compute",
            "mc.european_option",
            str(EXAMPLES / "option.json"),
            "--chunks",
            "4",
            "--seed",
            "11",
            "--timeout",
            "180",
        )
        assert computed.returncode == 0, computed.stderr
        mc = json.loads(computed.stdout)
        assert mc["paths"] == 4 * 200_000 and mc["chunks"] == 4
        assert abs(mc["price"] - 6.485385) < 4 * mc["standard_error"]  # Black–Scholes put, see test_examples

        async def settled() -> bool:
            dep.check_alive()
            try:
                return (await progress(pool, transport, CONSUMERS)).settled
            except asyncpg.UndefinedTableError:
                return False

        await wait_for(settled, 120, "every actor to process the whole log")
        await wait_for(lambda: _at_least(alerts, 10), 30, "ten alerts on the stream")
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await listener

        # counts: 27 inputs, 16 indicators from the monitor (one per portfolio event), 10 alerts, 4+4 compute
        async with pool.acquire() as conn:
            counts = dict(await conn.fetch("SELECT type, count(*) FROM proj_audit_g1.audit_events GROUP BY type"))
            assert counts == {
                "market.snapshot_published": 1,
                "portfolio.limit_set": 4,
                "portfolio.trade_booked": 10,
                "portfolio.trade_amended": 1,
                "portfolio.trade_terminated": 1,
                "risk.indicator_observed": 10 + 16,
                "risk.alert_raised": 7,
                "risk.alert_cleared": 3,
                "compute.requested": 4,
                "compute.completed": 4,
            }
            trade = await conn.fetchrow(
                "SELECT event_id FROM proj_audit_g1.audit_events WHERE type = 'portfolio.trade_booked' "
                "AND payload->>'trade_id' = 'T-1003'"
            )
        assert sorted(n for n, _ in alerts) == ["alert_cleared"] * 3 + ["alert_raised"] * 7
        assert {(a["payload"]["subject"], a["payload"]["level"]) for n, a in alerts if n == "alert_raised"} >= {
            ("PM-ALPHA", "high"),
            ("PM-GAMMA", "critical"),
            ("CCP-LCH-SWAPCLEAR", "critical"),
        }

        async with httpx.AsyncClient(base_url=base, headers=reader) as c:
            board = (await c.get("/early-warning")).json()["indicators"]
            levels = {(r["subject"], r["metric"]): r["level"] for r in board}
            assert levels[("PM-ALPHA", "gross_notional_usd")] == "high"
            assert levels[("PM-GAMMA", "gross_notional_eur")] == "high"
            assert levels[("CCP-EUREX-CLEARING", "initial_margin_usage")] == "ok"
            # the indicator the monitor derived from trade T-1003 leads back to the user's booking
            indicator = derived_event_id(trade["event_id"], "portfolio-monitor", 0)
            lineage = (await c.get(f"/audit/events/{indicator}/lineage")).json()["lineage"]
            assert [step["type"] for step in lineage] == ["risk.indicator_observed", "portfolio.trade_booked"]
            assert lineage[-1]["event_id"] == str(trade["event_id"])
            verify = await c.post("/audit/verify", headers={"Authorization": f"Bearer {TOKENS['admin']}"})
            assert verify.json() == {"intact": True, "problems": []}

        # stop the projector, rebuild the projections from the log: same digests as the live tables
        assert dep.stop("projector") == 0
        async with pool.acquire() as conn:
            live = {
                "audit": await digest(conn, "proj_audit_g1"),
                "early_warning": await digest(conn, "proj_early_warning_g1"),
            }
        replay = cli(env, "replay")
        assert replay.returncode == 0, replay.stderr
        async with pool.acquire() as conn:
            rebuilt = {
                "audit": await digest(conn, "proj_audit_g2"),
                "early_warning": await digest(conn, "proj_early_warning_g2"),
            }
        assert rebuilt == live
        for tables in live.values():
            for value in tables.values():
                assert value in replay.stdout
        shown = cli(env, "audit", "verify")
        assert shown.returncode == 0 and "intact" in shown.stdout
    finally:
        dep.close()
        await pool.close()
        await transport.close()


async def _topics_exist(transport) -> bool:
    try:
        await transport.end_offsets(["portfolio.trades", "alerts"])
        return True
    except Exception:
        return False


async def _at_least(items: list, n: int) -> bool:
    return len(items) >= n
