"""`risklab xva saccr`: tables and JSON for the Basel worked examples, and one-line refusals of bad files.

The command runs in-process through typer's `CliRunner` on `xva_app`. `--json` output is parsed from stdout
alone; messages go to stderr. A refusal is one line naming the file and the field, exit code 1, no traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from risklab.xva_cli import xva_app

FIXTURES = Path(__file__).parent / "engines" / "xva" / "fixtures"
EXAMPLE_1 = FIXTURES / "bcbs279_example_1.json"
EXAMPLE_5 = FIXTURES / "bcbs279_example_5.json"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(xva_app, ["saccr", *args])


def said(text: str) -> str:
    return " ".join(_ANSI.sub("", text).split())


def refused(result: Result) -> str:
    message = said(result.stderr)
    assert result.exit_code == 1, (result.exit_code, message, result.stdout)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return message


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_table_shows_rc_multiplier_add_ons_and_ead() -> None:
    result = invoke(str(EXAMPLE_5))
    assert result.exit_code == 0, result.output
    out = said(result.stdout)
    for text in (
        "bcbs279-example-5",
        "replacement cost 0.00",
        "PFE multiplier 0.9581",
        "MPOR (business days) 14",
        "interest_rate",
        "commodity",
        "energy",
        "crude oil",
        "metals",
        "EAD 1,879.21",
    ):
        assert text in out, text


def test_json_output_is_the_engine_result() -> None:
    result = invoke(str(EXAMPLE_1), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (r,) = data["results"]
    assert round(r["ead"]) == 569 and r["replacement_cost"] == 60  # BCBS 279 Annex 4a, example 1
    assert round(r["add_ons"]["interest_rate"]) == 347
    assert {h["hedging_set"] for h in r["hedging_sets"]} == {"USD", "EUR"}
    assert round(r["ir_maturity_buckets"]["EUR"][2]) == -10_083
    assert data["total_ead"] == r["ead"]


@pytest.mark.parametrize("shape", ["list", "wrapped"])
def test_files_with_several_netting_sets(tmp_path: Path, shape: str) -> None:
    sets = [json.loads(EXAMPLE_1.read_text()), json.loads(EXAMPLE_5.read_text())]
    path = write(tmp_path / "sets.json", sets if shape == "list" else {"netting_sets": sets})
    data = json.loads(invoke(str(path), "--json").stdout)
    assert [round(r["ead"]) for r in data["results"]] == [569, 1_879]
    table = invoke(str(path))
    assert table.exit_code == 0 and "Total EAD of 2 netting sets" in said(table.stdout)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("{not json", "invalid JSON at line 1"),
        ("42", "holds int"),
        ("[]", "give a non-empty list of netting sets"),
        ({"netting_sets": [], "extra": 1}, "extra: not a known field"),
    ],
)
def test_unreadable_files_are_refused_naming_the_file(tmp_path: Path, content: Any, expected: str) -> None:
    path = tmp_path / "ns.json"
    if content is not None:
        write(path, content)
    message = refused(invoke(str(path)))
    assert f"{path}:" in message and expected in message


def test_invalid_field_is_named(tmp_path: Path) -> None:
    single = json.loads(EXAMPLE_1.read_text())
    del single["trades"][0]["currency"]
    message = refused(invoke(str(write(tmp_path / "one.json", single))))
    assert message.startswith(f"error: {tmp_path / 'one.json'}: trades[0].currency: ")
    listed = [json.loads(EXAMPLE_1.read_text()), {**json.loads(EXAMPLE_1.read_text()), "margined": "maybe"}]
    message = refused(invoke(str(write(tmp_path / "two.json", {"netting_sets": listed}))))
    assert "two.json: netting_sets[1].margined: " in message
    bare = [json.loads(EXAMPLE_1.read_text()), single]
    assert "three.json: [1].trades[0].currency: " in refused(invoke(str(write(tmp_path / "three.json", bare))))
