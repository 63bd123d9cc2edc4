"""Reading and writing books and markets: JSON for a whole book or market, CSV or Parquet for trade tables.

A book file is JSON with ``counterparties``, ``netting_sets`` and either ``trades`` (inline) or
``trades_file`` (a CSV or Parquet table, relative to the JSON file). A trade table has one row per trade and
one column per field, nested fields flattened with dots (``pay_leg.currency``); an empty cell is an absent
field. Every error names the file, then the row (or JSON path) and the field, and the reason:
``trades.csv: row 12 (trade_id T000012), field notional: Input should be greater than 0``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, TypeAdapter, ValidationError

from engines.xva.market import Market
from engines.xva.trades import TRADE_TYPES, Book, Trade

_TRADES = TypeAdapter(list[Trade])
TABLE_SUFFIXES = (".csv", ".parquet")


class BookFileError(ValueError):
    """A book, market or trade file that cannot be read: `file`, `location` (row/path and field) and `reason`."""

    def __init__(self, file: Path | str, location: str, reason: str) -> None:
        self.file = str(file)
        self.location = location
        self.reason = reason
        super().__init__(f"{self.file}: {location}: {reason}" if location else f"{self.file}: {reason}")


# ---------------------------------------------------------------------------------------------
# Validation errors → locations
# ---------------------------------------------------------------------------------------------


def _json_path(loc: Sequence[str | int]) -> str:
    """('trades', 3, 'irs', 'notional') → 'trades[3].notional' (the union's tag dropped)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in TRADE_TYPES and i > 0 and isinstance(loc[i - 1], int):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: ValidationError) -> tuple[str, str]:
    """(location, reason) of the first error, noting how many more there are."""
    errors = error.errors(include_url=False)
    first = errors[0]
    reason = str(first["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    location = _json_path(first["loc"])
    if not location and ": " in reason and not reason.startswith(" "):
        location, reason = reason.split(": ", 1)
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return location, reason


# ---------------------------------------------------------------------------------------------
# Trade tables
# ---------------------------------------------------------------------------------------------


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        elif value is not None:
            out[f"{prefix}{key}"] = value
    return out


def _unflatten(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or value == "":
            continue
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"column {key!r} nests under a plain field {p!r}")
        node[parts[-1]] = value
    return out


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {"type": None, "trade_id": None, "netting_set_id": None}
    for r in rows:
        for k in r:
            seen.setdefault(k)
    return list(seen)


def _trade_rows(trades: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [_flatten(t.model_dump(mode="python")) for t in trades]


def write_trades(trades: Sequence[BaseModel], path: Path | str) -> None:
    """Write trades as a CSV or Parquet table (by the file's suffix), one row per trade."""
    path = Path(path)
    rows = _trade_rows(trades)
    columns = _columns(rows)
    if path.suffix == ".csv":
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            for r in rows:
                w.writerow([_cell(r.get(c)) for c in columns])
    elif path.suffix == ".parquet":
        table = pa.table({c: pa.array([r.get(c) for r in rows]) for c in columns})
        pq.write_table(table, path)
    else:
        raise BookFileError(path, "", f"a trade table must end in {' or '.join(TABLE_SUFFIXES)}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def load_trades(path: Path | str) -> list[Trade]:
    """Read a CSV or Parquet trade table; a bad row raises `BookFileError` naming the row, trade id and field."""
    path = Path(path)
    if not path.is_file():
        raise BookFileError(path, "", "no such file")
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            raw = list(csv.DictReader(f))
    elif path.suffix == ".parquet":
        try:
            raw = pq.read_table(path).to_pylist()
        except (pa.ArrowInvalid, OSError) as exc:
            raise BookFileError(path, "", f"not a readable Parquet file ({exc})") from None
    else:
        raise BookFileError(path, "", f"a trade table must end in {' or '.join(TABLE_SUFFIXES)}")
    rows = []
    for i, r in enumerate(raw):
        try:
            rows.append(_unflatten(r))
        except ValueError as exc:
            raise BookFileError(path, f"row {i + 1}", str(exc)) from None
    try:
        return _TRADES.validate_python(rows)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = first["loc"]
        row = int(loc[0]) if loc and isinstance(loc[0], int) else 0
        rest = loc[1:]
        if rest and rest[0] in TRADE_TYPES:  # the union's tag
            rest = rest[1:]
        field = _json_path(rest)
        trade_id = rows[row].get("trade_id", "?") if row < len(rows) else "?"
        _, reason = _describe(exc)
        where = f"row {row + 1} (trade_id {trade_id})" + (f", field {field}" if field else "")
        raise BookFileError(path, where, reason) from None


# ---------------------------------------------------------------------------------------------
# Books and markets
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise BookFileError(path, "", "no such file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BookFileError(path, f"line {exc.lineno} column {exc.colno}", f"not valid JSON ({exc.msg})") from None


def load_book(path: Path | str) -> Book:
    """Read a book from JSON (trades inline, or in the CSV/Parquet table named by ``trades_file``)."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise BookFileError(path, "", "a book is a JSON object with counterparties, netting_sets and trades")
    if "trades_file" in data:
        if "trades" in data:
            raise BookFileError(path, "trades_file", "give trades inline or in trades_file, not both")
        table = path.parent / str(data.pop("trades_file"))
        data["trades"] = load_trades(table)
    try:
        return Book.model_validate(data)
    except ValidationError as exc:
        location, reason = _describe(exc)
        raise BookFileError(path, location, reason) from None


def write_book(book: Book, path: Path | str, *, trades_file: Path | str | None = None) -> None:
    """Write `book` as JSON; with `trades_file` (.csv/.parquet, next to the JSON) the trades go to that table."""
    path = Path(path)
    data = book.model_dump(mode="json")
    if trades_file is not None:
        table = Path(trades_file)
        if table.parent != path.parent and not table.is_absolute():
            table = path.parent / table
        write_trades(book.trades, table)
        data.pop("trades")
        data["trades_file"] = table.name if table.parent == path.parent else str(table)
    path.write_text(json.dumps(data, indent=1))


def load_market(path: Path | str) -> Market:
    """Read a `Market` from JSON."""
    path = Path(path)
    data = _read_json(path)
    try:
        return Market.model_validate(data)
    except ValidationError as exc:
        location, reason = _describe(exc)
        raise BookFileError(path, location, reason) from None


def write_market(market: Market, path: Path | str) -> None:
    Path(path).write_text(market.model_dump_json(indent=1))
