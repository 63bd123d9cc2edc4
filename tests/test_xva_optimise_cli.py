"""`risklab xva optimise` on a small generated book: the ranked table, the strategy, the JSON report, refusals.

The commands run in-process through typer's `CliRunner` on `xva_app`: `xva sample DIR` writes a book of six
counterparties and sixty trades, which `xva optimise` then reads with its market. `--json` output is parsed
from stdout alone; a bad option ends with exit code 2 and no traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from risklab.xva_cli import xva_app

GRID = "1M:monthly,1Y:quarterly,5Y:semiannual,10Y:annual,30Y"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(xva_app, list(args))


def said(text: str) -> str:
    return " ".join(_ANSI.sub("", text).split())


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("xva-optimise")
    result = invoke("sample", str(directory), "--counterparties", "6", "--trades", "60")
    assert result.exit_code == 0, result.output
    return directory


def optimise(sample: Path, *extra: str) -> Result:
    return invoke(
        "optimise", str(sample / "book.json"), "--market", str(sample / "market.json"), "--paths", "64",
        "--grid", GRID, "--seed", "3", *extra,
    )  # fmt: skip


def test_json_report_ranks_candidates_and_gives_the_strategy(sample: Path) -> None:
    result = optimise(sample, "--top", "5", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["book"]["trades"] == 60 and data["book"]["gross_notional"] > 0
    candidates = data["candidates"]
    assert 0 < len(candidates) <= 5 and data["candidates_evaluated"] >= len(candidates)
    assert [c["rank"] for c in candidates] == list(range(1, len(candidates) + 1))
    assert [c["benefit"] for c in candidates] == sorted((c["benefit"] for c in candidates), reverse=True)
    for c in candidates:
        assert c["kind"] in ("compression", "novation", "csa_amendment", "cva_hedge")
        for key in ("cva", "kva", "funding", "ead", "k_ccr", "ba_cva_capital", "total_with_wrong_way"):
            assert c["change"][key] == pytest.approx(c["after"][key] - c["before"][key], abs=1e-6)
    strategy = data["strategy"]
    assert strategy["benefit_bp_of_xva"] == pytest.approx(strategy["benefit"] / data["book"]["total_xva"] * 1e4)
    assert set(strategy["candidate_ids"]) == {c["id"] for c in strategy["candidates"]}


def test_table_shows_candidates_and_strategy(sample: Path) -> None:
    result = optimise(sample, "--top", "3", "--kind", "csa_amendment", "--kind", "novation")
    assert result.exit_code == 0, result.output
    out = said(result.stdout)
    assert "candidates" in out and "Integrated strategy" in out and "bp of the book's XVA" in out
    assert any(label in out for label in ("novate", "add CSA", "zero thresh.", "lower MTA", "exchange IM"))
    assert "hedge" not in out.split("Integrated strategy")[0] and "compress " not in out


@pytest.mark.parametrize(("args", "word"), [(("--top", "0"), "--top"), (("--kind", "bogus"), "--kind")])
def test_bad_options_are_refused(sample: Path, args: tuple[str, ...], word: str) -> None:
    result = optimise(sample, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert word in said(result.output)
