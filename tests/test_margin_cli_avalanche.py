"""`risklab margin avalanche | facility` and the compute kinds behind them (`margin.avalanche`,
`margin.facility_sizing`), on a small generated book written as a book directory.

Commands run in-process through typer's `CliRunner` on the real `risklab` app; `--json` output is parsed from
stdout and must be self-consistent (conservation, contributions adding up, settings recorded). The compute kind
split into path chunks and combined must give exactly the unsplit answer. Refusals are one line naming the
option, file or field, exit code 2 for options and 1 for data, and no traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from engines import registry
from engines.registry import InvalidInputs
from risklab.cli import app

SMALL = {"paths": 240, "hours": 72}


@pytest.fixture(scope="module")
def book_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from engines.margin.files import write_book
    from engines.margin.generator import build_sample

    directory = tmp_path_factory.mktemp("avalanche_book")
    write_book(build_sample(7, managers=3, positions=60, ccps=3, bilaterals=4, years=4), directory)
    return str(directory)


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
    assert text.count("error:") == 1 and text.startswith("error:"), text
    for w in words:
        assert w in text, text


@pytest.fixture(scope="module")
def cli_json(book_dir: str) -> dict[str, Any]:
    options = ("--paths", "240", "--hours", "72", "--seed", "4", "--vol-multiplier", "2.5", "--json")
    return as_json(run("avalanche", book_dir, *options))


def test_avalanche_json_adds_up(cli_json: dict[str, Any]) -> None:
    s = cli_json["summary"]
    assert "per_path" not in cli_json and cli_json["path_range"] == [0, 240]
    assert s["paths"] == 240 and s["complete"] and s["hours"] == 72
    assert s["settings"]["seed"] == 4 and s["settings"]["vol_multiplier"] == 2.5 and s["settings"]["feedback"]
    assert s["conservation"]["max_rel_residual"] < 1e-9
    w = s["waterfall_mean_usd"]
    assert w["cash"] + w["facility"] + w["liquidation"] + w["shortfall"] == pytest.approx(w["calls"], rel=1e-9)
    c = s["contributions"]
    assert c["tail_paths"] == 3 and len(c["by_venue"]) == 7 and len(c["by_manager"]) == 3
    for key in ("by_venue", "by_manager", "by_currency"):
        assert sum(c[key].values()) == pytest.approx(c["tail_mean_peak_calls_usd"], rel=1e-9), key
    q = s["peak_calls_usd"]
    assert q["p50"] <= q["p95"] <= q["p99"] <= q["p99.9"] <= q["max"]
    assert s["peak_need_usd"]["mean"] >= q["mean"]
    assert 0 <= s["exhaustion"]["probability"]["p"] <= 1


def test_avalanche_tables(book_dir: str) -> None:
    result = run("avalanche", book_dir, "--paths", "120", "--hours", "48", "--top", "3")
    assert result.exit_code == 0, result.output
    for words in ("Margin-call avalanche", "peak cumulative calls", "P(exhaust)", "by venue", "by manager"):
        assert words in result.stdout, words


def test_cli_and_compute_kind_agree_and_no_feedback_is_no_impact(book_dir: str, cli_json: dict[str, Any]) -> None:
    settings = {**SMALL, "seed": 4, "vol_multiplier": 2.5}
    kind = registry.run("margin.avalanche", {"book": book_dir, "settings": settings})
    assert kind["summary"] == cli_json["summary"]
    off = as_json(run("avalanche", book_dir, "--paths", "240", "--hours", "72", "--seed", "4", "--vol-multiplier",
                      "2.5", "--no-feedback", "--json"))  # fmt: skip
    zero = registry.run("margin.avalanche", {"book": book_dir, "settings": {**settings, "impact_coefficient": 0.0}})
    a, b = off["summary"], zero["summary"]
    for key in ("peak_calls_usd", "peak_need_usd", "exhaustion", "liquidation", "waterfall_mean_usd", "contributions"):
        assert a[key] == b[key], key


def test_compute_kind_chunks_combine_to_the_unsplit_answer(book_dir: str) -> None:
    inputs = {"book": book_dir, "settings": {**SMALL, "seed": 9, "vol_multiplier": 3.0}}
    whole = registry.run("margin.avalanche", inputs)
    chunks = registry.get("margin.avalanche").split(inputs, 3)
    assert [(c["first_path"], c["paths"]) for c in chunks] == [(0, 80), (80, 80), (160, 80)]
    parts = [registry.run("margin.avalanche", c, seed=1000 + i) for i, c in enumerate(chunks)]  # own seeds ignored
    combined = registry.combine("margin.avalanche", list(reversed(parts)))
    assert combined["summary"] == whole["summary"]
    assert combined["per_path"] == whole["per_path"]
    assert combined["path_range"] == [0, 240]
    # chunks drawn with different seeds are refused
    unseeded = {"book": book_dir, "settings": {**SMALL}}
    a, b = registry.get("margin.avalanche").split(unseeded, 2)
    with pytest.raises(ValueError, match=r"settings\.seed"):
        registry.combine("margin.avalanche", [registry.run("margin.avalanche", a, seed=1),
                                              registry.run("margin.avalanche", b, seed=2)])  # fmt: skip


def test_facility_json(book_dir: str) -> None:
    data = as_json(run("facility", book_dir, "--paths", "200", "--hours", "72", "--vol-multiplier", "2", "--json"))
    assert data["confidence"] == 0.99 and data["paths"] == 200
    assert data["current_limit_usd"] == 1.08e9
    wd, wo = data["with_delays"], data["without_delays"]
    assert wd["notice_hours"] == 24 and wd["daily_cap"] == "proportional"
    assert wo["notice_hours"] == 0 and wo["max_draw_per_day_usd"] is None and wo["daily_cap"] == "none"
    assert wo["limit_usd"] is not None
    if wd["limit_usd"] is not None:
        assert wd["max_draw_per_day_usd"] == pytest.approx(0.25 * wd["limit_usd"])  # 270m a day for 1,080m today
        assert data["cost_of_delays_usd"] == pytest.approx(wd["limit_usd"] - wo["limit_usd"])
        assert data["cost_of_delays_usd"] >= 0 and wd["exhaust_probability"] <= 0.01
    else:
        assert wd["unlimited_exhaust_probability"] > 0.01 and data["cost_of_delays_usd"] is None
    result = run("facility", book_dir, "--paths", "100", "--hours", "48")
    assert result.exit_code == 0, result.output
    assert "Smallest limit" in result.stdout and "Cost of the delays" in result.stdout


def test_refusals_name_the_option_or_file(book_dir: str, tmp_path: Path) -> None:
    one_line_refusal(run("avalanche", book_dir, "--vol-multiplier", "-1"), 2, "--vol-multiplier")
    one_line_refusal(run("avalanche", book_dir, "--hours", "5000"), 2, "--hours")
    one_line_refusal(run("facility", book_dir, "--confidence", "1.5"), 2, "--confidence")
    one_line_refusal(run("avalanche", str(tmp_path / "nowhere")), 1, "nowhere")
    assert run("avalanche", book_dir, "--paths", "0").exit_code == 2


def test_compute_kind_refusals_name_the_field(book_dir: str) -> None:
    cases = [
        ({"book": book_dir, "settings": {"vol_multiplier": 0}}, "settings.vol_multiplier"),
        ({"book": book_dir, "settings": {"pathz": 3}}, "settings.pathz"),
        ({"book": book_dir, "settings": {"paths": 10}, "first_path": 10}, "first_path"),
        ({"book": book_dir, "settings": {"paths": 10}, "paths": 11}, "paths"),
        ({"book": 3}, "book"),
        ({"book": book_dir, "colour": "red"}, "colour"),
    ]
    for inputs, field in cases:
        with pytest.raises(InvalidInputs) as info:
            registry.run("margin.avalanche", inputs)
        assert info.value.field == field, (inputs, info.value)
    with pytest.raises(InvalidInputs) as info:
        registry.run("margin.facility_sizing", {"book": book_dir, "confidence": 1.0})
    assert info.value.field == "confidence"
    assert not registry.get("margin.facility_sizing").chunkable and registry.get("margin.avalanche").chunkable
