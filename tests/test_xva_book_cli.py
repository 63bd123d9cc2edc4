"""`risklab xva sample | run | whatif | stress` in-process: JSON that adds up, tables, and one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from risklab.cli import app

FAST = ("--paths", "64", "--grid", "1M:monthly,2Y:quarterly,10Y:annual,20Y", "--seed", "4")


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["xva", *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_refusal(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.stderr.split())
    assert text.count("error:") == 1 and text.startswith("error:"), text
    for w in words:
        assert w in text, text


@pytest.fixture(scope="module")
def book_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("xva-book")
    result = run("sample", str(d), "--counterparties", "6", "--trades", "60")
    assert result.exit_code == 0, result.output
    assert {p.name for p in d.iterdir()} == {"book.json", "trades.parquet", "market.json"}
    return d


def args(book_dir: Path) -> tuple[str, ...]:
    return (str(book_dir / "book.json"), "--market", str(book_dir / "market.json"), *FAST)


def test_run_json_adds_up_and_table_prints(book_dir: Path) -> None:
    data = as_json(run("run", *args(book_dir), "--json"))
    rows = data["netting_sets"]
    assert data["run"]["seed"] == 4 and data["run"]["paths"] == 64 and data["run"]["trades"] == 60
    assert data["totals"]["cva"] == pytest.approx(sum(r["cva"] for r in rows))
    assert data["totals"]["total_with_wrong_way"] == pytest.approx(sum(r["total_with_wrong_way"] for r in rows))
    assert set(rows[0]["horizons"]) >= {"1M", "1Y", "10Y"}
    table = run("run", *args(book_dir), "--top", "3")
    assert table.exit_code == 0, table.output
    assert "Largest 3 netting sets by total cost" in table.stdout and "BA-CVA capital" in table.stdout


def test_whatif_and_stress(book_dir: Path, tmp_path: Path) -> None:
    book = json.loads((book_dir / "book.json").read_text())
    ns = book["netting_sets"][0]["netting_set_id"]
    terms = {"currency": "USD", "notional": 2e8, "fixed_rate": 0.04, "pay_fixed": True}
    dates = {"start_date": "2025-06-30", "maturity_date": "2035-06-30"}
    trade = {"type": "irs", "trade_id": "NEW-1", "netting_set_id": ns, **terms, **dates}
    change = tmp_path / "trade.json"
    change.write_text(json.dumps(trade))
    data = as_json(run("whatif", *args(book_dir), str(change), "--json"))
    assert data["netting_set_id"] == ns and data["change"]["action"] == "add"
    assert data["difference"]["ead"] > 0
    assert data["after"]["cva"] - data["before"]["cva"] == pytest.approx(data["difference"]["cva"])
    table = run("whatif", *args(book_dir), str(change))
    assert table.exit_code == 0 and "What-if on" in table.stdout, table.output
    stress = as_json(run("stress", *args(book_dir), "--json"))
    names = [s["scenario"]["name"] for s in stress["scenarios"]]
    assert "funding +50bp" in names and "collateral 0%" in names
    funding = next(s for s in stress["scenarios"] if s["scenario"]["name"] == "funding +50bp")
    assert funding["changes"]["fca"] > 0


def test_refusals(book_dir: Path, tmp_path: Path) -> None:
    one_line_refusal(run("run", str(tmp_path / "none.json"), *FAST), 1, "none.json", "no such file")
    one_line_refusal(run("run", "sample", "--grid", "banana", "--paths", "8"), 2, "--grid")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"action": "remove"}))
    one_line_refusal(run("whatif", *args(book_dir), str(bad)), 1, "bad.json", "trade_id")
    gone = tmp_path / "gone.json"
    gone.write_text(json.dumps({"action": "remove", "trade_id": "NOPE"}))
    one_line_refusal(run("whatif", *args(book_dir), str(gone)), 1, "trade_id", "NOPE")
