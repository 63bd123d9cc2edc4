"""`risklab structured show <request-id>`: the desk view of one design request, from PostgreSQL.

A hand-built request (tests/structured_desk_events.py) is folded into the desk view with the real
runtime on a fresh database; the command then runs in-process through typer's `CliRunner` on the
real `risklab` app, in a worker thread (it calls `asyncio.run` itself), with RISKLAB_DATABASE_URL
naming that database.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner, Result

from bus.database import connect_pool
from bus.memory import MemoryTransport
from bus.runtime.progress import wait_settled
from bus.runtime.runner import RuntimeOptions
from bus.topics import DESK_STRUCTURED, topic_specs
from projections.structured_desk import StructuredDeskProjection
from risklab.cli import app
from risklab.process import running
from structured_desk_events import KID, RECOMMENDED, TERM_SHEET, chain, full_request, rejection

OPTIONS = RuntimeOptions(poll_timeout_seconds=0.05, backoff_seconds=0.05, max_backoff_seconds=0.2)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def show(*args: str, database_url: str) -> Result:
    env = {"RISKLAB_DATABASE_URL": database_url, "RISKLAB_LOG_LEVEL": "WARNING"}
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(CliRunner().invoke, app, ["structured", "show", *args], env=env).result()


def said(text: str) -> str:
    """Printed text as one line (rich wraps long lines at the terminal width)."""
    return " ".join(_ANSI.sub("", text).split())


@pytest.fixture
async def desk_db(database_url: str) -> AsyncIterator[str]:
    """A database whose desk view holds a proposed request (REQ-SHOW) and a rejected one (REQ-REJ)."""
    transport = MemoryTransport(topic_specs())
    for env in [*full_request("REQ-SHOW"), *chain([rejection("REQ-REJ", agent="compliance-officer")])]:
        await transport.publish(DESK_STRUCTURED, env)
    pool = await connect_pool(database_url, min_size=1, max_size=4)
    try:
        async with running([StructuredDeskProjection()], transport, pool, OPTIONS) as group:
            await wait_settled(pool, transport, group.consumers(), timeout=30)
    finally:
        await pool.close()
    yield database_url


@pytest.mark.integration
def test_show_prints_status_tables_and_the_recommendation(desk_db: str) -> None:
    result = show("REQ-SHOW", database_url=desk_db)
    assert result.exit_code == 0, result.output
    out = said(result.stdout)
    assert "structured request REQ-SHOW — proposed" in out
    assert f"recommendation: {RECOMMENDED} for SEG-A" in out
    assert "Best client value within the risk limits" in out
    assert f"kid (html): {KID.artifact.uri}" in out
    assert f"term_sheet (pdf): {TERM_SHEET.artifact.uri}" in out
    for title in ("timeline", "top 3 of 3 structures by rank", "stress: 2 pass, 1 fail of 3 structures"):
        assert title in out
    assert "suitability: segments x assigned structures" in out
    assert "compliance under rulebook eu-retail 2026.1: 1 approve, 1 approve_with_conditions, 1 reject" in out
    assert "FAIL" in out and "Balanced savers (SEG-A)" in out
    assert len(set(_UUID.findall(out))) == 8  # the event id of every stage (the first is the correlation)


@pytest.mark.integration
def test_show_top_limits_the_structures(desk_db: str) -> None:
    result = show("REQ-SHOW", "--top", "1", database_url=desk_db)
    assert result.exit_code == 0, result.output
    assert "top 1 of 3 structures by rank" in said(result.stdout)


@pytest.mark.integration
def test_show_json_is_the_query(desk_db: str) -> None:
    result = show("REQ-SHOW", "--json", database_url=desk_db)
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert (view["status"], view["recommendation"]) == ("proposed", RECOMMENDED)
    assert [r["structure_id"] for r in view["ranking"]] == [RECOMMENDED, "AC-50-7", "AC-70-9"]
    assert len(view["timeline"]) == 8


@pytest.mark.integration
def test_show_of_a_rejected_request_says_who_and_why(desk_db: str) -> None:
    result = show("REQ-REJ", database_url=desk_db)
    assert result.exit_code == 0, result.output
    out = said(result.stdout)
    assert "structured request REQ-REJ — rejected" in out
    assert "rejected by compliance-officer (field requirements.limits.capital_at_risk): no structure can meet" in out


@pytest.mark.integration
def test_show_of_an_unknown_request_exits_1(desk_db: str) -> None:
    result = show("REQ-NOPE", database_url=desk_db)
    assert result.exit_code == 1
    assert said(result.stderr) == "error: no structured design request 'REQ-NOPE' in the desk view"
    assert "Traceback" not in result.output


@pytest.mark.integration
def test_show_before_the_desk_view_exists_exits_1(database_url: str) -> None:
    result = show("REQ-SHOW", database_url=database_url)  # an empty database: no projection tables yet
    assert result.exit_code == 1
    assert "no structured design request 'REQ-SHOW'" in said(result.stderr)


def test_show_without_a_database_says_so() -> None:
    result = show("REQ-SHOW", database_url="postgresql://postgres@127.0.0.1:9/risklab")
    assert result.exit_code == 1
    assert said(result.stderr).startswith("error: cannot read the desk view from PostgreSQL:")
    assert "Traceback" not in result.output
