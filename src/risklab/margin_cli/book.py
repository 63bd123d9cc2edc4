"""`risklab margin sample`, and `load_book_arg`: how every margin command reads its `<book>` argument.

`<book>` is the word `sample` (the generated sample book, cached in the process) or a book directory
(book.json, positions.csv|json|parquet, history.parquet|csv; `risklab margin sample <dir>` writes
one). A directory that cannot be loaded ends the command with one line naming the file, the row and
the field (exit code 1). The engine is imported inside the functions so `risklab --help` stays fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich import box
from rich.table import Table

from risklab.margin_cli.common import JsonOpt, SeedOpt, console, fail, margin_app, money, print_json

if TYPE_CHECKING:
    from engines.margin.files import LoadedBook

SAMPLE = "sample"
DEFAULT_SEED = 2026

BookArg = Annotated[
    str, typer.Argument(help="A book directory, or 'sample' for the generated sample book.", show_default=False)
]
"""The `<book>` argument of the margin commands (read it with `load_book_arg`)."""


def load_book_arg(text: str, seed: int = DEFAULT_SEED) -> LoadedBook:
    """The book a command's `<book>` argument names: ``sample`` → the generated sample for `seed`,
    anything else → the book directory at that path. Errors become `fail(...)` (one line, exit code 1)."""
    if text.strip().lower() == SAMPLE:
        from engines.margin.generator import sample

        return sample(seed)
    from engines.margin.files import BookFileError, load_book

    try:
        return load_book(Path(text))
    except BookFileError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{text}: {exc.strerror or exc}") from None


def book_summary(loaded: LoadedBook) -> dict[str, Any]:
    """Counts and sizes of a book: what `risklab margin sample` prints."""
    from engines.margin.history import stress_windows

    book, history, arrays = loaded.book, loaded.history, loaded.arrays
    return {
        "as_of": book.as_of.isoformat(),
        "managers": len(book.managers),
        "strategies": len(book.strategies),
        "positions": len(book.positions),
        "ccps": sum(v.kind == "ccp" for v in book.venues),
        "bilateral_counterparties": sum(v.kind == "bilateral" for v in book.venues),
        "factors": len(history.factors),
        "currencies": list(arrays.currencies),
        "history_days": len(history.dates),
        "history_first_date": str(history.dates[0]),
        "stress_periods": [[str(first), str(last)] for first, last in stress_windows(history)],
        "capital_usd": sum(s.capital_usd for s in book.strategies),
        "gross_notional_usd": float(arrays.position_notional_usd.sum()),
        "expected_return_usd": float(arrays.position_expected_return_usd.sum()),
        "usable_cash_usd": book.resources.usable_cash_usd,
        "facility_usd": book.resources.facility.limit_usd,
    }


@margin_app.command("sample")
def sample_command(
    directory: Annotated[Path, typer.Argument(help="Directory to write the sample book into (created if need be).")],
    seed: SeedOpt = DEFAULT_SEED,
    positions_format: Annotated[
        Literal["csv", "json", "parquet"], typer.Option("--positions-format", help="File format of the positions.")
    ] = "csv",
    history_format: Annotated[
        Literal["parquet", "csv"], typer.Option("--history-format", help="File format of the factor history.")
    ] = "parquet",
    json_output: JsonOpt = False,
) -> None:
    """Write the generated sample book (synthetic data) as a book directory.

    30 managers, 5,000 positions, 50 CCPs, 150 dealers, 10 years of daily factor returns with stress periods.
    """
    from engines.margin.files import write_book
    from engines.margin.generator import sample

    started = time.perf_counter()
    loaded = sample(seed)
    generated = time.perf_counter() - started
    try:
        files = write_book(loaded, directory, positions_format=positions_format, history_format=history_format)
    except OSError as exc:
        raise fail(f"{directory}: {exc.strerror or exc}") from None
    summary = {"directory": str(directory), "files": [str(f) for f in files], "seed": seed, **book_summary(loaded)}
    if json_output:
        print_json(summary)
        return
    table = Table(title=f"Sample book (seed {seed}, synthetic) in {directory}", box=box.SIMPLE, show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("as of", summary["as_of"]),
        ("managers / strategies", f"{summary['managers']} / {summary['strategies']}"),
        ("positions", f"{summary['positions']:,}"),
        ("CCPs / bilateral counterparties", f"{summary['ccps']} / {summary['bilateral_counterparties']}"),
        ("risk factors / currencies", f"{summary['factors']} / {len(summary['currencies'])}"),
        ("history", f"{summary['history_days']:,} days from {summary['history_first_date']}"),
        ("stress periods", str(len(summary["stress_periods"]))),
        ("capital (USD)", money(summary["capital_usd"])),
        ("gross notional (USD)", money(summary["gross_notional_usd"])),
        ("usable cash / facility (USD)", f"{money(summary['usable_cash_usd'])} / {money(summary['facility_usd'])}"),
        ("generated in", f"{generated:.2f} s"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    console.print("files: " + ", ".join(Path(f).name for f in files), highlight=False)
