"""Book directories: write → load gives the same book and arrays in every format; a bad file is refused with one
error naming the file, the row (CSV line, JSON/Parquet index), the field and the reason; the `risklab margin
sample` command and `load_book_arg`, which every margin command uses for its <book> argument.
"""

from __future__ import annotations

import csv
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from engines.margin.arrays import MarginBook
from engines.margin.files import POSITION_COLUMNS, BookFileError, LoadedBook, load_book, write_book
from risklab.cli import app
from risklab.margin_cli.book import load_book_arg


def assert_same_arrays(a: MarginBook, b: MarginBook) -> None:
    for f in fields(MarginBook):
        if f.name == "_cache":
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


@pytest.mark.parametrize("positions_format", ["csv", "json", "parquet"])
@pytest.mark.parametrize("history_format", ["parquet", "csv"])
def test_round_trip_of_the_tiny_book(
    tiny_book: LoadedBook, tmp_path: Path, positions_format: str, history_format: str
) -> None:
    written = write_book(tiny_book, tmp_path, positions_format=positions_format, history_format=history_format)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    loaded = load_book(tmp_path)
    assert loaded.book == tiny_book.book
    assert_same_arrays(loaded.arrays, tiny_book.arrays)
    np.testing.assert_array_equal(loaded.history.dates, tiny_book.history.dates)
    np.testing.assert_array_equal(loaded.history.stressed, tiny_book.history.stressed)
    assert loaded.history.returns.tobytes() == tiny_book.history.returns.tobytes()


def test_round_trip_of_the_sample(sample_book: LoadedBook, tmp_path: Path) -> None:
    write_book(sample_book, tmp_path / "p", positions_format="parquet", history_format="parquet")
    loaded = load_book(tmp_path / "p")
    assert loaded.book == sample_book.book
    assert_same_arrays(loaded.arrays, sample_book.arrays)
    assert loaded.history.returns.tobytes() == sample_book.history.returns.tobytes()


def test_writing_another_format_replaces_the_old_files(tiny_book: LoadedBook, tmp_path: Path) -> None:
    write_book(tiny_book, tmp_path, positions_format="csv", history_format="csv")
    write_book(tiny_book, tmp_path, positions_format="json", history_format="parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.json", "history.parquet", "positions.json"]


def test_positions_csv_has_flat_columns(tiny_book: LoadedBook, tmp_path: Path) -> None:
    write_book(tiny_book, tmp_path)
    with (tmp_path / "positions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == POSITION_COLUMNS
    future = rows[0]
    assert (future["instrument"], future["contracts"], future["strike"], future["maturity"]) == (
        "listed_future", "10.0", "", ""
    )  # fmt: skip
    assert json.loads((tmp_path / "book.json").read_text()).keys() >= {"as_of", "venues", "factors", "resources"}


# -- refusals -------------------------------------------------------------------------------------


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write_csv_rows(path: Path, rows: list[dict[str, str]], columns: Any = POSITION_COLUMNS) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _refused(directory: Path) -> str:
    with pytest.raises(BookFileError) as info:
        load_book(directory)
    return str(info.value)


@pytest.fixture
def book_dir(tiny_book: LoadedBook, tmp_path: Path) -> Path:
    write_book(tiny_book, tmp_path, positions_format="csv", history_format="csv")
    return tmp_path


def _edit_position(directory: Path, row: int, **changes: str) -> None:
    rows = _csv_rows(directory / "positions.csv")
    rows[row].update(changes)
    _write_csv_rows(directory / "positions.csv", rows)


CSV_REFUSALS = [
    (3, {"strike": "-5"}, "positions.csv line 5: strike: must be positive, got -5"),
    (3, {"strike": "cheap"}, "positions.csv line 5: strike: must be a number, got 'cheap'"),
    (0, {"strike": "100"}, "positions.csv line 2: strike: is not a field of a listed_future position"),
    (0, {"expiry": ""}, "positions.csv line 2: expiry: is required"),
    (0, {"expiry": "18/12/2026"}, "positions.csv line 2: expiry: must be a date (YYYY-MM-DD), got '18/12/2026'"),
    (0, {"instrument": "swaption"}, "positions.csv line 2: instrument: must be one of 'listed_future', "
     "'listed_option', 'cleared_irs', 'cds_index', 'fx_forward', 'equity_trs', 'uncleared_irs', 'uncleared_option', "
     "got 'swaption'"),
    (2, {"venue": "CCP-99"}, "positions.csv line 4: venue: 'CCP-99' is not a venue of the book"),
    (9, {"venue": "CCP-A"}, "positions.csv line 11: venue: 'CCP-A' is a CCP; a fx_forward position is held with a "
     "bilateral counterparty"),
    (5, {"direction": "sideways"}, "positions.csv line 7: direction: must be 'pay_fixed' or 'receive_fixed', got "
     "'sideways'"),
    (1, {"id": "F1"}, "positions.csv line 3: id: 'F1' is used by positions[0] too"),
    (0, {"underlying": "EQ.NKY"}, "positions.csv line 2: underlying: 'EQ.NKY' is not a factor of the book"),
    (14, {"volatility": ""}, "positions.csv line 16: volatility: is required for an FX option (the grammar has no FX "
     "vol factor)"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "changes", "message"), CSV_REFUSALS)
def test_bad_positions_csv_is_refused_naming_line_and_field(
    book_dir: Path, row: int, changes: dict[str, str], message: str
) -> None:
    _edit_position(book_dir, row, **changes)
    assert _refused(book_dir) == message


def test_positions_csv_columns_are_checked(book_dir: Path) -> None:
    rows = _csv_rows(book_dir / "positions.csv")
    _write_csv_rows(book_dir / "positions.csv", [{**r, "colour": ""} for r in rows], [*POSITION_COLUMNS, "colour"])
    assert _refused(book_dir).startswith("positions.csv line 1: column 'colour' is not a position field")
    (book_dir / "positions.csv").write_text("id,instrument\nF1,listed_future,extra\n")
    assert _refused(book_dir) == "positions.csv line 2: has 3 cells, the header 2"


def test_bad_positions_json_and_parquet_are_refused_naming_the_index(tiny_book: LoadedBook, tmp_path: Path) -> None:
    write_book(tiny_book, tmp_path, positions_format="json")
    rows = json.loads((tmp_path / "positions.json").read_text())
    del rows[3]["expiry"]
    (tmp_path / "positions.json").write_text(json.dumps(rows))
    assert _refused(tmp_path) == "positions.json index 3: expiry: is required"
    (tmp_path / "positions.json").write_text('[{"id": "F1",}]')
    assert (
        _refused(tmp_path)
        == "positions.json line 1 column 14: is not valid JSON: Expecting property name enclosed in double quotes"
    )

    write_book(tiny_book, tmp_path, positions_format="parquet")
    table = pq.read_table(tmp_path / "positions.parquet")
    strike = table.column("strike").to_pylist()
    strike[4] = -5.0
    table = table.set_column(table.column_names.index("strike"), "strike", pa.array(strike, type=pa.float64()))
    pq.write_table(table, tmp_path / "positions.parquet")
    assert _refused(tmp_path) == "positions.parquet index 4: strike: must be positive, got -5.0"


def test_a_factor_the_history_lacks_names_the_position_and_the_factor(book_dir: Path) -> None:
    lines = (book_dir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("EQ.SX5E")
    kept = [",".join(c for k, c in enumerate(line.split(",")) if k != drop) for line in lines]
    (book_dir / "history.csv").write_text("\n".join(kept) + "\n")
    assert _refused(book_dir) == (
        "positions.csv line 3: underlying: position 'F2' needs factor 'EQ.SX5E', which history.csv does not have"
    )


def test_bad_history_is_refused_naming_line_and_column(book_dir: Path) -> None:
    original = (book_dir / "history.csv").read_text().splitlines()
    header = original[0].split(",")
    spx = header.index("EQ.SPX")

    def write(lines: list[str]) -> None:
        (book_dir / "history.csv").write_text("\n".join(lines) + "\n")

    cells = original[4].split(",")
    cells[spx] = "abc"
    write([*original[:4], ",".join(cells), *original[5:]])
    assert _refused(book_dir) == "history.csv line 5: EQ.SPX: must be a number, got 'abc'"
    write([*original[:4], original[2], *original[5:]])
    day2, day3 = original[2].split(",")[0], original[3].split(",")[0]
    assert _refused(book_dir) == f"history.csv line 5: date: {day2} is not after the previous date {day3}"
    cells = original[6].split(",")
    cells[spx] = "nan"
    write([*original[:6], ",".join(cells), *original[7:]])
    assert _refused(book_dir) == "history.csv line 7: EQ.SPX: must be a finite number, got nan"
    cells = original[2].split(",")
    cells[1] = "maybe"
    write([original[0], ",".join(cells), *original[3:]])
    assert _refused(book_dir) == "history.csv line 2: stressed: must be true or false, got 'maybe'"
    write([original[0].replace("EQ.SPX", "EQ.NKY"), *original[1:]])
    assert _refused(book_dir) == "history.csv line 1: column 'EQ.NKY' is not a factor of book.json"


def test_bad_history_parquet_names_the_index(tiny_book: LoadedBook, tmp_path: Path) -> None:
    write_book(tiny_book, tmp_path, history_format="parquet")
    table = pq.read_table(tmp_path / "history.parquet")
    values = table.column("CM.WTI").to_pylist()
    values[7] = float("inf")
    table = table.set_column(table.column_names.index("CM.WTI"), "CM.WTI", pa.array(values, type=pa.float64()))
    pq.write_table(table, tmp_path / "history.parquet")
    assert _refused(tmp_path) == "history.parquet index 7: CM.WTI: must be a finite number, got inf"


def test_bad_book_json_is_refused_naming_the_path(book_dir: Path) -> None:
    original = json.loads((book_dir / "book.json").read_text())

    def refused_with(change: Any) -> str:
        data = json.loads(json.dumps(original))
        change(data)
        (book_dir / "book.json").write_text(json.dumps(data))
        return _refused(book_dir)

    assert refused_with(lambda d: d["venues"][0]["margin_model"].update(confidence=1.5)) == (
        "book.json: venues[0].margin_model.confidence: must be less than 1.0, got 1.5"
    )
    assert refused_with(lambda d: d["strategies"][0].update(manager="M9")) == (
        "book.json: strategies[0].manager: 'M9' is not a manager of the book"
    )
    assert refused_with(lambda d: d["factors"][8].update(level=None)) == (
        "book.json: factors[8].level: 'EQ.SPX' needs a level to price positions[0]"
    )
    assert refused_with(lambda d: d.update(positions=[])) == (
        "book.json: positions: positions belong in positions.csv, not in book.json"
    )
    assert refused_with(lambda d: d["venues"][2].update(kind="exchange")) == (
        "book.json: venues[2].kind: must be one of 'ccp', 'bilateral', got 'exchange'"
    )
    (book_dir / "book.json").write_text('{\n  "as_of": "2026-11-20",\n  oops\n}')
    assert _refused(book_dir).startswith("book.json line 3 column 3: is not valid JSON")


def test_book_directory_problems(tiny_book: LoadedBook, tmp_path: Path) -> None:
    assert _refused(tmp_path / "missing").endswith(
        "is not a book directory (a folder with book.json, positions.* and history.*)"
    )
    write_book(tiny_book, tmp_path, positions_format="csv")
    (tmp_path / "positions.json").write_text("[]")
    assert _refused(tmp_path) == f"{tmp_path}: positions.csv and positions.json are both there; keep one"
    (tmp_path / "positions.json").unlink()
    (tmp_path / "history.parquet").unlink()
    assert _refused(tmp_path) == f"{tmp_path}: no history.parquet or history.csv in the book directory"


# -- the command line -----------------------------------------------------------------------------


def test_sample_command_writes_a_book_that_loads(sample_book: LoadedBook, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["margin", "sample", str(tmp_path / "book"), "--positions-format", "json", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["positions"], summary["ccps"], summary["bilateral_counterparties"]) == (5000, 50, 150)
    assert summary["history_days"] == 2520 and len(summary["stress_periods"]) >= 3
    assert sorted(p.name for p in (tmp_path / "book").iterdir()) == ["book.json", "history.parquet", "positions.json"]
    loaded = load_book_arg(str(tmp_path / "book"))
    assert loaded.book == sample_book.book
    assert_same_arrays(loaded.arrays, sample_book.arrays)


def test_sample_command_refuses_an_unknown_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["margin", "sample", str(tmp_path), "--positions-format", "xlsx"])
    assert result.exit_code == 2
    assert not any(tmp_path.iterdir())


def test_load_book_arg(sample_book: LoadedBook, book_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert load_book_arg("sample") is sample_book
    assert len(load_book_arg(str(book_dir)).book.positions) == 16
    _edit_position(book_dir, 3, strike="-5")
    with pytest.raises(typer.Exit) as info:
        load_book_arg(str(book_dir))
    assert info.value.exit_code == 1
    assert "positions.csv line 5: strike: must be positive, got -5" in capsys.readouterr().err
