"""A book on disk: a directory with the book, its positions and its factor history.

    book.json                       everything of the `Book` but its positions (JSON)
    positions.csv | .json | .parquet  one row per position, flat columns (`POSITION_COLUMNS`); the
                                    columns another instrument uses stay empty (CSV, Parquet) or are
                                    left out (JSON: a list of objects)
    history.parquet | .csv          date, stressed (true/false), one column of returns per factor

`load_book` validates everything and refuses with one error that names the file, the row (line
number for CSV, counting the header as line 1; index from 0 for JSON and Parquet), the field and the
reason: ``positions.csv line 42: strike: must be positive, got -5``. A factor a position needs that
the history lacks names both the position's row and the factor. `write_book` writes a directory that
`load_book` reads back to the same arrays, in any format.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import TypeAdapter, ValidationError

from engines.margin.arrays import FactorHistory, MarginBook
from engines.margin.book import Book, Position, book_arrays, describe_error, describe_validation_error
from engines.registry import InvalidInputs

PositionsFormat = Literal["csv", "json", "parquet"]
HistoryFormat = Literal["parquet", "csv"]

POSITION_COLUMNS: tuple[str, ...] = (
    "id", "instrument", "strategy", "venue", "currency", "underlying", "contracts", "multiplier", "quantity",
    "notional", "direction", "protection", "option", "strike", "expiry", "maturity", "fixed_rate",
    "payments_per_year", "coupon", "recovery_rate", "volatility", "dividend_yield", "buy_currency", "buy_amount",
    "sell_currency", "sell_amount",
)  # fmt: skip
"""Every field of every position type, in the order of the columns of a positions file."""
_TEXT = frozenset(
    {
        "id",
        "instrument",
        "strategy",
        "venue",
        "currency",
        "underlying",
        "direction",
        "protection",
        "option",
        "buy_currency",
        "sell_currency",
    }
)
_DATES = frozenset({"expiry", "maturity"})
_INTEGERS = frozenset({"payments_per_year"})
_POSITION = TypeAdapter(Position)
_ROW = re.compile(r"^positions\[(\d+)\](?:\.(.+))?$")


@dataclass(frozen=True, eq=False)
class LoadedBook:
    """A validated book, its factor history and the arrays the kernels read (all read-only)."""

    book: Book
    history: FactorHistory
    arrays: MarginBook

    def __post_init__(self) -> None:
        for holder in (self.history, self.arrays):
            for f in fields(holder):
                value = getattr(holder, f.name)
                if isinstance(value, np.ndarray):
                    value.setflags(write=False)


class BookFileError(ValueError):
    """A book directory that cannot be loaded: the file, the row, the field and why."""

    def __init__(self, file: str, reason: str, *, row: str | None = None, field: str | None = None) -> None:
        self.file, self.row, self.field, self.reason = file, row, field, reason
        where = f"{file} {row}" if row else file
        super().__init__(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")


# -- loading --------------------------------------------------------------------------------------


def load_book(path: str | Path) -> LoadedBook:
    """Read and validate a book directory (see the module docstring); `BookFileError` on any fault."""
    directory = Path(path)
    if not directory.is_dir():
        raise BookFileError(
            str(directory), "is not a book directory (a folder with book.json, positions.* and history.*)"
        )
    book_file = directory / "book.json"
    if not book_file.is_file():
        raise BookFileError(str(directory), "no book.json in the book directory")
    positions_file = _one_of(directory, "positions", ("csv", "json", "parquet"))
    history_file = _one_of(directory, "history", ("parquet", "csv"))

    data = _read_json(book_file)
    if not isinstance(data, dict):
        raise BookFileError("book.json", f"must be a JSON object, got {type(data).__name__}")
    if "positions" in data:
        raise BookFileError(
            "book.json", f"positions belong in {positions_file.name}, not in book.json", field="positions"
        )
    reader = {"csv": _positions_csv, "json": _positions_json, "parquet": _positions_parquet}[positions_file.suffix[1:]]
    rows, label = reader(positions_file)
    positions = [_position(row, positions_file.name, label(i)) for i, row in enumerate(rows)]
    try:
        book = Book.model_validate({**data, "positions": positions})
    except ValidationError as exc:
        raise _book_error(exc, positions_file.name, label) from None
    history = (_history_csv if history_file.suffix == ".csv" else _history_parquet)(history_file, book)
    try:
        arrays = book_arrays(book, history)
    except InvalidInputs as exc:
        raise _mapped(
            exc.field, exc.reason.replace("the history", history_file.name), positions_file.name, label
        ) from None
    return LoadedBook(book=book, history=history, arrays=arrays)


def _one_of(directory: Path, stem: str, suffixes: Sequence[str]) -> Path:
    found = [directory / f"{stem}.{s}" for s in suffixes if (directory / f"{stem}.{s}").is_file()]
    names = " or ".join(f"{stem}.{s}" for s in suffixes)
    if not found:
        raise BookFileError(str(directory), f"no {names} in the book directory")
    if len(found) > 1:
        raise BookFileError(str(directory), f"{' and '.join(p.name for p in found)} are both there; keep one")
    return found[0]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise BookFileError(path.name, f"is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise BookFileError(
            path.name, f"is not valid JSON: {exc.msg}", row=f"line {exc.lineno} column {exc.colno}"
        ) from None


def _position(row: dict[str, Any], file: str, row_label: str) -> Any:
    try:
        return _POSITION.validate_python(row)
    except ValidationError as exc:
        field, reason = describe_error(exc.errors(include_url=False)[0])
        raise BookFileError(file, reason, row=row_label, field=field or None) from None


def _mapped(path: str, reason: str, positions_file: str, label: Any) -> BookFileError:
    """An error about ``positions[i].field`` as one about the positions file's row; anything else as book.json's."""
    match = _ROW.match(path)
    if match:
        return BookFileError(positions_file, reason, row=label(int(match.group(1))), field=match.group(2))
    return BookFileError("book.json", reason, field=path or None)


def _book_error(exc: ValidationError, positions_file: str, label: Any) -> BookFileError:
    path, reason = describe_validation_error(exc)[0]
    return _mapped(path, reason, positions_file, label)


def _positions_csv(path: Path) -> tuple[list[dict[str, Any]], Any]:
    name = path.name
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise BookFileError(name, "is empty; the first line must name the columns", row="line 1")
            _check_columns([h.strip() for h in header], name, "line 1")
            columns = [h.strip() for h in header]
            rows = []
            for line_no, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    raise BookFileError(name, "is empty", row=f"line {line_no}")
                if len(cells) != len(columns):
                    raise BookFileError(
                        name, f"has {len(cells)} cells, the header {len(columns)}", row=f"line {line_no}"
                    )
                rows.append({c: v.strip() for c, v in zip(columns, cells, strict=True) if v.strip() != ""})
    except UnicodeDecodeError as exc:
        raise BookFileError(name, f"is not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise BookFileError(name, f"is not valid CSV: {exc}") from None
    return rows, lambda i: f"line {i + 2}"


def _check_columns(columns: Sequence[str], file: str, row: str) -> None:
    for c in columns:
        if c not in POSITION_COLUMNS:
            raise BookFileError(
                file, f"column {c!r} is not a position field (fields: {', '.join(POSITION_COLUMNS)})", row=row
            )
    for c in ("id", "instrument"):
        if c not in columns:
            raise BookFileError(file, f"column {c!r} is missing", row=row)
    duplicated = sorted({c for c in columns if list(columns).count(c) > 1})
    if duplicated:
        raise BookFileError(file, f"column {duplicated[0]!r} appears more than once", row=row)


def _positions_json(path: Path) -> tuple[list[dict[str, Any]], Any]:
    data = _read_json(path)
    if isinstance(data, dict) and set(data) == {"positions"}:
        data = data["positions"]
    if not isinstance(data, list):
        raise BookFileError(path.name, f"must be a list of position objects, got {type(data).__name__}")
    rows = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise BookFileError(path.name, f"must be an object, got {type(item).__name__}", row=f"index {i}")
        rows.append({k: v for k, v in item.items() if v is not None})
    return rows, lambda i: f"index {i}"


def _parquet_table(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise BookFileError(path.name, f"is not a readable Parquet file ({exc})") from None


def _positions_parquet(path: Path) -> tuple[list[dict[str, Any]], Any]:
    table = _parquet_table(path)
    _check_columns(table.column_names, path.name, "schema")
    rows = [{k: v for k, v in r.items() if v is not None} for r in table.to_pylist()]
    for row in rows:  # floats stored for an integer field (a column typed by its other rows) are still integers
        for k in _INTEGERS & row.keys():
            if isinstance(row[k], float) and row[k].is_integer():
                row[k] = int(row[k])
    return rows, lambda i: f"index {i}"


def _history_csv(path: Path, book: Book) -> FactorHistory:
    name = path.name
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise BookFileError(name, f"is not UTF-8 text ({exc.reason})") from None
    if not lines:
        raise BookFileError(name, "is empty; the first line must name the columns", row="line 1")
    factors = _history_columns([h.strip() for h in lines[0]], name, "line 1", book)
    body = lines[1:]
    if not body:
        raise BookFileError(name, "has no rows of returns")
    dates = np.empty(len(body), dtype="datetime64[D]")
    stressed = np.zeros(len(body), dtype=bool)
    returns = np.empty((len(body), len(factors)))
    width = len(factors) + 2
    for i, cells in enumerate(body):
        where = f"line {i + 2}"
        if len(cells) != width:
            raise BookFileError(name, f"has {len(cells)} cells, the header {width}", row=where)
        dates[i] = _date(cells[0], name, where)
        stressed[i] = _flag(cells[1], name, where)
        try:
            returns[i] = [float(c) for c in cells[2:]]
        except ValueError:
            for factor, c in zip(factors, cells[2:], strict=True):
                try:
                    float(c)
                except ValueError:
                    raise BookFileError(name, f"must be a number, got {c.strip()!r}", row=where, field=factor) from None
    return _history(dates, factors, returns, stressed, name, lambda i: f"line {i + 2}")


def _history_parquet(path: Path, book: Book) -> FactorHistory:
    import pyarrow as pa

    table = _parquet_table(path)
    factors = _history_columns(table.column_names, path.name, "schema", book)
    label = lambda i: f"index {i}"  # noqa: E731
    date_type = table.schema.field("date").type
    if pa.types.is_date(date_type) or pa.types.is_timestamp(date_type):
        dates = table.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
        if table.column("date").null_count:
            raise BookFileError(
                path.name, "is empty", row=label(table.column("date").to_pylist().index(None)), field="date"
            )
    else:
        dates = np.array([_date(str(v), path.name, label(i)) for i, v in enumerate(table.column("date").to_pylist())])
    stressed = np.array(
        [_flag(v, path.name, label(i)) for i, v in enumerate(table.column("stressed").to_pylist())], dtype=bool
    )
    columns = []
    for factor in factors:
        column = table.column(factor)
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            raise BookFileError(
                path.name, f"must be a column of numbers, got {column.type}", row="schema", field=factor
            )
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        columns.append(values)
    returns = np.column_stack(columns) if columns else np.zeros((len(dates), 0))
    return _history(dates, factors, returns, stressed, path.name, label)


def _history_columns(columns: Sequence[str], file: str, row: str, book: Book) -> tuple[str, ...]:
    if len(columns) < 3 or columns[0] != "date" or columns[1] != "stressed":
        raise BookFileError(file, "the columns must be date, stressed, then one per factor", row=row)
    known = {f.id for f in book.factors}
    seen: set[str] = set()
    for c in columns[2:]:
        if c not in known:
            raise BookFileError(file, f"column {c!r} is not a factor of book.json", row=row)
        if c in seen:
            raise BookFileError(file, f"column {c!r} appears more than once", row=row)
        seen.add(c)
    return tuple(columns[2:])


def _date(text: str, file: str, row: str) -> np.datetime64:
    try:
        return np.datetime64(date.fromisoformat(text.strip()), "D")
    except ValueError:
        raise BookFileError(file, f"must be a date (YYYY-MM-DD), got {text.strip()!r}", row=row, field="date") from None


def _flag(value: Any, file: str, row: str) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise BookFileError(file, f"must be true or false, got {value!r}", row=row, field="stressed")


def _history(
    dates: np.ndarray, factors: tuple[str, ...], returns: np.ndarray, stressed: np.ndarray, file: str, label: Any
) -> FactorHistory:
    if len(dates) == 0:
        raise BookFileError(file, "has no rows of returns")
    steps = np.diff(dates.astype(np.int64))
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0)) + 1
        raise BookFileError(
            file, f"{dates[i]} is not after the previous date {dates[i - 1]}", row=label(i), field="date"
        )
    bad = ~np.isfinite(returns)
    if bad.any():
        i, j = (int(x) for x in np.argwhere(bad)[0])
        raise BookFileError(file, f"must be a finite number, got {returns[i, j]}", row=label(i), field=factors[j])
    return FactorHistory(dates=dates, factors=factors, returns=returns, stressed=stressed)


# -- writing --------------------------------------------------------------------------------------


def write_book(
    loaded: LoadedBook,
    path: str | Path,
    *,
    positions_format: PositionsFormat = "csv",
    history_format: HistoryFormat = "parquet",
) -> list[Path]:
    """Write `loaded` as a book directory (created if need be; the book files of other formats in it are
    removed so that the directory holds one book); returns the files written."""
    if positions_format not in ("csv", "json", "parquet"):
        raise ValueError(f"positions_format: must be 'csv', 'json' or 'parquet', got {positions_format!r}")
    if history_format not in ("parquet", "csv"):
        raise ValueError(f"history_format: must be 'parquet' or 'csv', got {history_format!r}")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, suffixes in (("positions", ("csv", "json", "parquet")), ("history", ("parquet", "csv"))):
        for s in suffixes:
            (directory / f"{stem}.{s}").unlink(missing_ok=True)
    book = loaded.book
    book_file = directory / "book.json"
    book_file.write_text(
        json.dumps(book.model_dump(mode="json", exclude={"positions"}), indent=2) + "\n", encoding="utf-8"
    )
    positions_file = directory / f"positions.{positions_format}"
    {"csv": _write_positions_csv, "json": _write_positions_json, "parquet": _write_positions_parquet}[positions_format](
        book.positions, positions_file
    )
    history_file = directory / f"history.{history_format}"
    (_write_history_csv if history_format == "csv" else _write_history_parquet)(loaded.history, history_file)
    return [book_file, positions_file, history_file]


def _write_positions_csv(positions: Sequence[Any], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=POSITION_COLUMNS, restval="", lineterminator="\n")
        writer.writeheader()
        for p in positions:
            writer.writerow({k: v for k, v in p.model_dump(mode="json").items() if v is not None})


def _write_positions_json(positions: Sequence[Any], path: Path) -> None:
    rows = [{k: v for k, v in p.model_dump(mode="json").items() if v is not None} for p in positions]
    path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def _write_positions_parquet(positions: Sequence[Any], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dumps = [p.model_dump() for p in positions]
    columns = {}
    for c in POSITION_COLUMNS:
        kind = (
            pa.string()
            if c in _TEXT
            else pa.date32()
            if c in _DATES
            else pa.int64()
            if c in _INTEGERS
            else pa.float64()
        )
        columns[c] = pa.array([d.get(c) for d in dumps], type=kind)
    pq.write_table(pa.table(columns), path)


def _write_history_csv(history: FactorHistory, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["date", "stressed", *history.factors])
        for d, s, row in zip(history.dates, history.stressed, history.returns.tolist(), strict=True):
            writer.writerow([str(d), "true" if s else "false", *map(repr, row)])


def _write_history_parquet(history: FactorHistory, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {
        "date": pa.array(history.dates.astype("datetime64[D]"), type=pa.date32()),
        "stressed": pa.array(np.asarray(history.stressed, dtype=bool)),
    }
    for j, factor in enumerate(history.factors):
        columns[factor] = pa.array(np.ascontiguousarray(history.returns[:, j]))
    pq.write_table(pa.table(columns), path)
