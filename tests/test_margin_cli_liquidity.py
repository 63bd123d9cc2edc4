"""`risklab margin liquidity | optimise | venue-whatif | reverse-stress` and the compute kinds behind them.

Commands run in-process through typer's `CliRunner` on the real `risklab` app, on a small generated book
written as a book directory (3 managers, 300 positions, 4 CCPs, 6 dealers, 5 years of history) and, for
the reverse stress test's validation, on the sample book. `--json` output is parsed from stdout and
checked for consistency by recomputing here: the ladder's running sums, concentration shares that add up,
the optimiser's bounds and return, and the reverse stress scenario's need rebuilt from the book's own
positions (their loadings and the CSA thresholds), which must exhaust the resources.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from engines import registry
from engines.margin.files import LoadedBook, load_book
from engines.registry import InvalidInputs
from risklab.cli import app


@pytest.fixture(scope="module")
def book_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engines.margin.files import write_book
    from engines.margin.generator import build_sample

    path = tmp_path_factory.mktemp("margin") / "small-book"
    write_book(build_sample(7, managers=3, positions=300, ccps=4, bilaterals=6, years=5), path)
    return path


@pytest.fixture(scope="module")
def small_book(book_dir: Path) -> LoadedBook:
    return load_book(book_dir)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["margin", *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_refusal(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    text = " ".join(result.stderr.split())
    assert text.count("error:") <= 1, text
    for w in words:
        assert w in text, text


def replayed_vm(loaded: Any, scenario: dict[str, float]) -> float:
    """VM the scenario calls, rebuilt from the loaded book: each loading's delta-gamma P&L summed by venue, the
    fall of the CSA's credit support sign(x)(|x| - T)+ from each netting set's value today."""
    a = loaded.arrays
    s = np.array([scenario[f] for f in a.factors])
    r = s[a.load_factor]
    per_position = np.zeros(len(a.position_ids))
    np.add.at(per_position, a.load_position, a.load_delta * r + 0.5 * a.load_gamma * r * r)
    called = 0.0
    for v, venue in enumerate(loaded.book.venues):
        members = a.position_venue == v
        pnl, value = per_position[members].sum(), a.position_value_usd[members].sum()
        threshold = venue.csa.threshold_usd if venue.kind == "bilateral" else 0.0

        def support(x: float, t: float = threshold) -> float:
            return float(np.sign(x) * max(abs(x) - t, 0.0))

        called += max(support(value) - support(value + pnl), 0.0)
    return called


# ---- liquidity ---------------------------------------------------------------------------------------------


def test_liquidity_json_ladder_runs_and_shares_add_up(book_dir: Path) -> None:
    data = as_json(run("liquidity", str(book_dir), "--json"))
    ladder = data["ladder"]
    for name in ("expected", "stressed"):
        rows = ladder[name]["ladder"]
        assert [r["day"] for r in rows] == list(range(1, 31))
        net = np.array([r["net_outflow_usd"] for r in rows])
        parts = np.array([r["vm_usd"] + r["im_change_usd"] - r["known_flows_usd"] for r in rows])
        assert net == pytest.approx(parts, rel=1e-9, abs=1e-3)
        assert [r["cumulative_outflow_usd"] for r in rows] == pytest.approx(np.cumsum(net).tolist(), abs=1e-3)
        headroom = [r["available_usd"] - r["cumulative_outflow_usd"] for r in rows]
        assert [r["headroom_usd"] for r in rows] == pytest.approx(headroom, abs=1e-3)
        breached = [r["day"] for r in rows if r["headroom_usd"] < 0]
        assert ladder[name]["first_breach_day"] == (breached[0] if breached else None)
        for r in rows:
            assert sum(r["by_currency_usd"].values()) == pytest.approx(r["net_outflow_usd"], abs=1e-3)
    res = ladder["resources"]
    assert res["usable_cash_usd"] == pytest.approx(sum(res["cash_usd"].values()) - res["operational_buffer_usd"])
    conc = data["concentration"]
    for dimension in ("manager", "asset_class"):
        assert sum(g["im_share"] for g in conc["groups"][dimension]) == pytest.approx(1.0)
    venue_total = sum(g["im_usd"] for d in ("venue", "counterparty") for g in conc["groups"][d])
    assert venue_total == pytest.approx(conc["total_im_usd"])
    breaches = {(b["dimension"], b["name"]) for b in conc["breaches"]}
    over = {(g["dimension"], g["name"]) for gs in conc["groups"].values() for g in gs if g["im_share"] > g["limit"]}
    assert breaches == over
    assert {e["name"] for e in data["efficiency"]["managers"]} == {"PM-01", "PM-02", "PM-03"}


def test_liquidity_tables_and_refusals(book_dir: Path) -> None:
    result = run("liquidity", str(book_dir), "--days", "10", "--top", "3")
    assert result.exit_code == 0, result.output
    assert "Stressed ladder" in result.stdout and "Concentration breaches" in result.stdout
    one_line_refusal(run("liquidity", str(book_dir / "missing")), 1, "missing")
    one_line_refusal(run("liquidity", str(book_dir), "--inflow-credit", "2"), 2, "--inflow-credit")


# ---- optimiser and venue what-if ---------------------------------------------------------------------------


def test_optimise_json_keeps_the_return_and_the_bounds(book_dir: Path, small_book: LoadedBook) -> None:
    data = as_json(run("optimise", str(book_dir), "--json", "--no-model-check"))
    assert data["margin_after_usd"] <= data["margin_before_usd"]
    assert data["return_target_met"] and data["return_after_usd"] >= data["return_before_usd"] * (1 - 1e-9)
    scales = {c["strategy"]: c["scale"] for c in data["strategies"]}
    assert all(0.75 - 1e-9 <= x <= 1.25 + 1e-9 for x in scales.values())
    # the return after is the book's own expected returns, strategy by strategy, times the scales
    a = small_book.arrays
    by_strategy = np.bincount(a.position_strategy, weights=a.position_expected_return_usd, minlength=len(a.strategies))
    after = sum(by_strategy[i] * scales.get(name, 1.0) for i, name in enumerate(a.strategies))
    assert data["return_after_usd"] == pytest.approx(after, rel=1e-9)
    assert data["model_margin_before_usd"] is None
    result = run("optimise", str(book_dir), "--max-change", "0.1", "--no-model-check")
    assert result.exit_code == 0 and "largest change 10%" in " ".join(result.stdout.split())


def test_venue_whatif_json_reports_the_netting_benefit(book_dir: Path, small_book: LoadedBook) -> None:
    target = small_book.book.venues[0].id
    data = as_json(run("venue-whatif", str(book_dir), "--to", target, "--manager", "PM-01", "--json"))
    assert data["to_venue"] == target and data["positions"]
    assert data["netting_benefit_usd"] == pytest.approx(data["total_before_usd"] - data["total_after_usd"])
    changed = sum(v["change_usd"] for v in data["venues"])
    assert changed == pytest.approx(data["total_after_usd"] - data["total_before_usd"], rel=1e-9, abs=1.0)
    one_line_refusal(run("venue-whatif", str(book_dir), "--to", "NOWHERE", "--manager", "PM-01"), 1, "to_venue")


# ---- reverse stress ------------------------------------------------------------------------------------------


def test_reverse_stress_json_scenario_exhausts_resources_when_replayed(book_dir: Path, small_book: LoadedBook) -> None:
    data = as_json(run("reverse-stress", str(book_dir), "--json", "--iterations", "80", "--seed", "4"))
    assert data["found"] and data["search"]["seed"] == 4 and data["search"]["iterations"] == 80
    replay = data["replay"]
    assert replay["exhausts"] and replay["need_usd"] >= data["resources_usd"] * (1 - 1e-9)
    assert replayed_vm(small_book, data["scenario"]) == pytest.approx(replay["vm_usd"], rel=1e-9)
    assert replay["need_usd"] == pytest.approx(replay["vm_usd"] + replay["im_increase_usd"], rel=1e-12)
    res = small_book.book.resources
    notice_days = -(-res.facility.notice_hours // 24)
    facility = min(res.facility.max_draw_per_day_usd * max(10 - notice_days, 0), res.facility.limit_usd)
    assert data["resources_usd"] == pytest.approx(res.usable_cash_usd + facility)
    assert 1 <= data["breach_day"] <= 10
    again = as_json(run("reverse-stress", str(book_dir), "--json", "--iterations", "80", "--seed", "4"))
    assert again["scenario"] == data["scenario"]
    result = run("reverse-stress", str(book_dir), "--iterations", "30")
    assert result.exit_code == 0 and "Venues that break first" in result.stdout
    one_line_refusal(run("reverse-stress", str(book_dir), "--iterations", "0"), 2, "--iterations")


def test_reverse_stress_on_the_sample_book_really_exhausts_its_resources() -> None:
    from engines.margin.generator import sample

    data = as_json(run("reverse-stress", "sample", "--json", "--iterations", "100"))
    assert data["found"] and data["replay"]["exhausts"]
    assert replayed_vm(sample(), data["scenario"]) + data["replay"]["im_increase_usd"] >= data["resources_usd"] * (
        1 - 1e-9
    )
    assert len(data["breaking_venues"]) == 10 and data["breaking_venues"][0]["share"] > 0
    assert data["distance"] > 1.0


# ---- compute kinds -------------------------------------------------------------------------------------------


def test_kinds_answer_as_the_commands_and_name_bad_fields(book_dir: Path) -> None:
    kinds = set(registry.kinds())
    assert {"margin.liquidity", "margin.concentration", "margin.optimise", "margin.venue_whatif",
            "margin.reverse_stress"} <= kinds  # fmt: skip
    inputs = {"book": str(book_dir), "iterations": 40, "population": 16}
    first = registry.run("margin.reverse_stress", inputs, seed=5)
    cli = as_json(run("reverse-stress", str(book_dir), "--json", "--iterations", "40", "--population", "16",
                      "--seed", "5"))  # fmt: skip
    assert first["scenario"] == cli["scenario"] and first["search"]["seed"] == 5
    second = registry.run("margin.reverse_stress", inputs, seed=6)
    combined = registry.combine("margin.reverse_stress", [first, second])
    assert combined["distance"] == min(first["distance"], second["distance"])
    assert [c["search_seed"] for c in combined["chunks"]] == [5, 6]
    conc = registry.run("margin.concentration", {"book": str(book_dir), "limits": {"manager": 0.5}, "top": 2})
    assert conc["concentration"]["limits"]["manager"] == 0.5 and conc["seed"] is None
    for kind, bad, field in (
        ("margin.reverse_stress", {"book": str(book_dir), "population": 2}, "population"),
        ("margin.reverse_stress", {"book": str(book_dir), "vm_inflow_credit": 3}, "vm_inflow_credit"),
        ("margin.concentration", {"book": str(book_dir), "limits": {"region": 0.1}}, "limits.region"),
        ("margin.venue_whatif", {"book": str(book_dir), "manager": "PM-01"}, "to_venue"),
        ("margin.venue_whatif", {"book": str(book_dir), "to_venue": "NOWHERE", "manager": "PM-01"}, "to_venue"),
        ("margin.liquidity", {"book": str(book_dir), "days": 0}, "days"),
        ("margin.optimise", {"book": str(book_dir), "max_change": 1.5}, "max_change"),
        ("margin.optimise", {"book": str(book_dir), "return_target_usd": 1e15}, "return_target_usd"),
    ):
        with pytest.raises(InvalidInputs) as refused:
            registry.run(kind, bad)
        assert refused.value.field == field, (kind, refused.value)
