"""Driving real risklab processes against the test session's Kafka and PostgreSQL.

Each test gets its own Kafka namespace (topic and group prefix) and its own database, runs actor
groups as `risklab run <group>` subprocesses, and compares what the system recorded with an
expectation computed here, independently of the system's code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bus.catalog import CATALOG
from bus.envelope import Envelope
from bus.events import PortfolioLimitSet, TradeBooked, TradeTerminated

HIGH, CRITICAL = 0.7, 0.9


def risklab_executable() -> str:
    exe = Path(sys.executable).with_name("risklab")
    if exe.exists():
        return str(exe)
    found = shutil.which("risklab")
    if found is None:
        raise RuntimeError("the risklab command is not installed in this environment")
    return found


@dataclass
class Deployment:
    """Subprocesses of one test's risklab deployment."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    restarts: Counter[str] = field(default_factory=Counter)

    def start(self, group: str, name: str | None = None) -> None:
        """Run `risklab run <group>`; `name` tells apart several processes of one group."""
        key = name or group
        n = self.restarts[key]
        log = open(self.logs / f"{key}.{n}.log", "wb")
        self.procs[key] = subprocess.Popen(
            [risklab_executable(), "run", group], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def kill(self, group: str) -> None:
        """SIGKILL: no chance to finish the event in hand or commit anything."""
        proc = self.procs[group]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        self.restarts[group] += 1

    def stop(self, group: str, timeout: float = 60) -> int:
        proc = self.procs[group]
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise

    def check_alive(self) -> None:
        for group, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{group} exited with {proc.returncode}:\n{self.log_tail(group)}")

    def log_tail(self, group: str, lines: int = 40) -> str:
        path = self.logs / f"{group}.{self.restarts[group]}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def deployment_env(kafka_bootstrap: str, database_url: str, namespace: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKLAB_")}
    env.update(
        RISKLAB_TRANSPORT="kafka",
        RISKLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
        RISKLAB_DATABASE_URL=database_url,
        RISKLAB_NAMESPACE=namespace,
        RISKLAB_HOME=str(home),
        RISKLAB_PARTITIONS="6",
        RISKLAB_RETRY_BACKOFF_SECONDS="0.05",
        RISKLAB_LOG_LEVEL="INFO",
    )
    return env


def new_namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Book:
    """The stream a fault test publishes: limits, then bookings and terminations, all in USD."""

    portfolios: int
    events: list[tuple[str, Envelope]]

    def inputs(self) -> list[Envelope]:
        return [e for _, e in self.events]


def trade_stream(total: int, portfolios: int = 50, capacity: float = 100e6) -> Book:
    """`total` portfolio events: a limit per portfolio, then bookings that walk each book through
    high and critical, with a termination every 7th event that can bring it back down."""
    events: list[tuple[str, Envelope]] = []
    t0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
    corr = uuid.uuid4()
    for p in range(portfolios):
        ev = PortfolioLimitSet(portfolio_id=f"P{p:03d}", metric="gross_notional", capacity=capacity, currency="USD")
        at = t0 - dt.timedelta(seconds=portfolios - p)
        events.append(
            ("portfolio.trades", CATALOG.envelope(ev, producer="fault-test", correlation_id=corr, occurred_at=at))
        )
    live: dict[str, list[str]] = {f"P{p:03d}": [] for p in range(portfolios)}
    i = 0
    while len(events) < total:
        pid = f"P{i % portfolios:03d}"
        if i % 7 == 6 and live[pid]:
            trade = live[pid].pop(0)
            ev = TradeTerminated(
                portfolio_id=pid, trade_id=trade, termination_date=dt.date(2026, 11, 3), reason="unwind"
            )
        else:
            trade = f"{pid}-T{i}"
            live[pid].append(trade)
            notional = 1e6 * (1 + (i * 7919) % 13)
            ev = TradeBooked(
                portfolio_id=pid,
                trade_id=trade,
                instrument_type="equity_swap",
                underlying="SPX",
                direction="long" if i % 2 else "short",
                notional=notional,
                currency="USD",
                trade_date=dt.date(2026, 11, 2),
            )
        occurred = t0 + dt.timedelta(milliseconds=i)
        events.append(
            ("portfolio.trades", CATALOG.envelope(ev, producer="fault-test", correlation_id=corr, occurred_at=occurred))
        )
        i += 1
    return Book(portfolios, events)


@dataclass(frozen=True)
class Expected:
    """What the system must have concluded from a stream, computed independently."""

    indicators: int
    final: dict[str, tuple[float, str]]  # portfolio -> (gross, level)
    raised: int
    cleared: int


def level(ratio: float) -> str:
    return "critical" if ratio >= CRITICAL else "high" if ratio >= HIGH else "ok"


def expected_outcome(book: Book) -> Expected:
    capacity: dict[str, float] = {}
    trades: dict[str, dict[str, float]] = {}
    levels: dict[str, str] = {}
    indicators = raised = cleared = 0
    rank = {"ok": 0, "high": 1, "critical": 2}
    for _, env in book.events:
        p = env.payload
        pid = p["portfolio_id"]
        if env.type == "portfolio.limit_set":
            capacity[pid] = p["capacity"]
        elif env.type == "portfolio.trade_booked":
            trades.setdefault(pid, {})[p["trade_id"]] = p["notional"]
        elif env.type == "portfolio.trade_terminated":
            trades[pid].pop(p["trade_id"])
        if pid in capacity:
            indicators += 1
            new = level(sum(trades.get(pid, {}).values()) / capacity[pid])
            old = levels.get(pid, "ok")
            raised += rank[new] > rank[old]
            cleared += rank[new] < rank[old]
            levels[pid] = new
    final = {pid: (sum(trades.get(pid, {}).values()), levels.get(pid, "ok")) for pid in capacity}
    return Expected(indicators, final, raised, cleared)


async def publish_in_batches(transport, events: list[tuple[str, Envelope]], batch: int = 500, on_batch=None) -> None:
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        await transport.publish_many(chunk[0][0], [e for _, e in chunk])
        if on_batch is not None:
            await on_batch(start + len(chunk))


async def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
