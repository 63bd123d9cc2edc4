"""`risklab margin baseline | stress | model-change` on the sample book, and the compute kinds behind them.

Commands run in-process through typer's `CliRunner` on the real `risklab` app. `--json` output is parsed
from stdout; it must be self-consistent (venues add up to the totals, breakdowns add up, the phase-in
weights follow the change set). Refusals are one line naming the option, file or field, exit code 2 for
options and 1 for data, and no traceback.
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

CHANGE = {
    "name": "longer lookback",
    "venues": ["CCP-01", "CCP-04"],
    "changes": {"lookback_days": 1000, "confidence": 0.995},
    "effective_date": "2026-12-01",
    "phase_in": {"start": "2026-12-01", "end": "2027-03-01"},
}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["margin", *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_refusal(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    text = " ".join(result.stderr.split())  # one message, however the console wraps it
    assert text.count("error:") == 1 and text.startswith("error:"), text
    for w in words:
        assert w in text, text


def test_baseline_json_adds_up() -> None:
    data = as_json(run("baseline", "sample", "--json"))
    t = data["totals"]
    assert len(data["venues"]) == 200 and t["im_usd"] > 0
    assert t["ccp_im_usd"] + t["bilateral_im_usd"] == pytest.approx(t["im_usd"])
    assert sum(v["im_usd"] for v in data["venues"]) == pytest.approx(t["im_usd"])
    assert sum(v["vm_usd"] for v in data["venues"]) == pytest.approx(t["vm_usd"])
    for dimension in ("manager", "strategy", "currency", "asset_class"):
        parts = data["breakdowns"][dimension]
        assert sum(p["im_usd"] for p in parts.values()) == pytest.approx(t["im_usd"], rel=1e-9), dimension
    assert len(data["breakdowns"]["manager"]) == 30
    assert sum(p["im_usd"] for p in data["breakdowns"]["counterparty"].values()) == pytest.approx(t["bilateral_im_usd"])


def test_baseline_tables() -> None:
    result = run("baseline", "sample", "--top", "3")
    assert result.exit_code == 0, result.output
    assert "Top 3 venues by IM" in result.stdout and "By manager" in result.stdout


def test_stress_json() -> None:
    data = as_json(run("stress", "sample", "--multipliers", "2,5", "--no-correlation-breakdown", "--json"))
    assert list(data["totals"]) == ["baseline", "vol x2", "vol x5"]
    base, x2, x5 = (data["totals"][n]["im_usd"] for n in ("baseline", "vol x2", "vol x5"))
    assert base < x2 < x5
    assert data["bilateral_treatment"] == "scaled"
    b1, b2, b5 = (data["totals"][n]["bilateral_im_usd"] for n in ("baseline", "vol x2", "vol x5"))
    assert b5 - b2 == pytest.approx(3 * (b2 - b1), rel=1e-9)  # SIMM × m plus independent amounts that do not move
    managers = data["breakdowns"]["manager"]
    assert sum(v[2] for v in managers.values()) == pytest.approx(x5, rel=1e-9)


def test_model_change_json(tmp_path: Path) -> None:
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps(CHANGE))
    data = as_json(run("model-change", "sample", str(changes), "--dates", "2026-11-30,2027-01-15,2027-03-01", "--json"))
    assert data["dates"] == ["2026-11-30", "2027-01-15", "2027-03-01"]
    assert data["weights"] == pytest.approx([0.0, 45 / 90, 1.0])
    assert set(data["venues"]) == {"CCP-01", "CCP-04"}
    t = data["totals"]
    assert t["after_usd"][1] == pytest.approx(t["before_usd"] + 0.5 * (t["full_usd"] - t["before_usd"]))
    assert sum(m["increase_usd"][2] for m in data["managers"].values()) == pytest.approx(t["increase_usd"][2], abs=1.0)


def test_refusals(tmp_path: Path) -> None:
    one_line_refusal(run("stress", "sample", "--multipliers", "2,x"), 2, "--multipliers")
    one_line_refusal(run("baseline", str(tmp_path / "missing")), 1, "missing")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    one_line_refusal(run("model-change", "sample", str(bad)), 1, "bad.json", "not JSON")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(CHANGE | {"changes": {"confidence": 2.0}}))
    one_line_refusal(run("model-change", "sample", str(wrong)), 1, "wrong.json", "changes", "confidence")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps(CHANGE | {"venues": ["CCP-01", "NOPE"]}))
    one_line_refusal(run("model-change", "sample", str(unknown)), 1, "venues[1]", "NOPE")
    one_line_refusal(run("model-change", "sample", str(unknown), "--dates", "soon"), 2, "--dates")


def test_compute_kinds() -> None:
    assert {"margin.baseline", "margin.stress", "margin.model_change"} <= set(registry.kinds())
    out = registry.run("margin.baseline", {"book": "sample", "top": 3}, seed=2026)
    assert out["seed"] == 2026 and len(out["venues"]) == 3
    json.dumps(out)  # plain JSON
    for kind, inputs, field in (
        ("margin.baseline", {"book": "sample", "colour": 1}, "colour"),
        ("margin.baseline", {"book": "sample", "options": {"horizon": "weekly"}}, "options.horizon"),
        ("margin.baseline", {"book": 7}, "book"),
        ("margin.stress", {"book": "sample", "multipliers": [2, -1]}, "multipliers[1]"),
        ("margin.stress", {"book": "sample", "bilateral": "frozen"}, "bilateral"),
        ("margin.model_change", {"book": "sample"}, "change_set"),
        ("margin.model_change", {"book": "sample", "change_set": CHANGE | {"phase_in": {"start": "2027-01-01",
                                                                                        "end": "2026-12-15"}}},
         "change_set.phase_in.end"),
        ("margin.model_change", {"book": "sample", "change_set": CHANGE, "dates": ["2026-13-01"]}, "dates[0]"),
        ("margin.model_change", {"book": "sample", "change_set": CHANGE | {"venues": ["CPTY-001"]}}, "venues[0]"),
    ):  # fmt: skip
        with pytest.raises(InvalidInputs) as info:
            registry.run(kind, inputs)
        assert info.value.field == field, (kind, info.value)
