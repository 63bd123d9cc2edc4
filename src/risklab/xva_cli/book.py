"""`risklab xva sample | run | whatif | stress`: the XVA of a book, one trade's effect, and the desk's stresses."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from risklab.cli_output import (
    OPTION_ERROR,
    JsonOpt,
    SeedOpt,
    console,
    engine_errors,
    fail,
    figures_table,
    money,
    print_json,
    progress,
)
from risklab.xva_cli.common import BookArg, xva_app

if TYPE_CHECKING:
    from engines.xva.book_xva import XvaBookResult, XvaRunOptions
    from engines.xva.market import Market
    from engines.xva.trades import Book

SAMPLE = "sample"
MarketOpt = Annotated[
    Path | None, typer.Option("--market", help="Market JSON (default: the sample market).", dir_okay=False)
]
PathsOpt = Annotated[int, typer.Option("--paths", min=2, help="Monte Carlo paths.")]
GridOpt = Annotated[
    str | None,
    typer.Option("--grid", help="Exposure dates, e.g. '1M:monthly,1Y:quarterly,10Y:semiannual,30Y' (default: desk's)."),
]
BorrowOpt = Annotated[float, typer.Option("--borrow-spread-bp", help="Unsecured borrowing spread, bp a year.")]
LendOpt = Annotated[float, typer.Option("--lend-spread-bp", help="Unsecured lending spread, bp a year.")]

SUMMARY = (
    ("CVA (bilateral)", "cva"),
    ("CVA (unilateral)", "cva_unilateral"),
    ("DVA", "dva"),
    ("FCA", "fca"),
    ("FBA", "fba"),
    ("MVA", "mva"),
    ("KVA", "kva"),
    ("wrong-way add-on", "wrong_way"),
    ("total cost", "total_with_wrong_way"),
)


def _load(book_arg: str, market_path: Path | None) -> tuple[Book, Market]:
    from engines.xva.files import BookFileError, load_book, load_market
    from engines.xva.market import sample_market

    try:
        market = load_market(market_path) if market_path is not None else sample_market()
        if book_arg.strip().lower() == SAMPLE:
            from engines.xva.generator import sample_book

            book = sample_book(market=market)
        else:
            book = load_book(book_arg)
    except BookFileError as exc:
        raise fail(str(exc)) from None
    return book, market


def _options(paths: int, seed: int, grid: str | None, borrow_bp: float, lend_bp: float) -> XvaRunOptions:
    from pydantic import ValidationError

    from engines.xva.book_xva import XvaRunOptions
    from engines.xva.scenarios import DEFAULT_GRID, parse_grid

    try:
        options = XvaRunOptions(
            paths=paths, seed=seed, grid=grid or DEFAULT_GRID, borrow_spread=borrow_bp / 1e4, lend_spread=lend_bp / 1e4
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}", OPTION_ERROR) from None
    try:
        parse_grid(options.grid, date(2000, 1, 3))  # the syntax; the dates come with the market's valuation date
    except ValueError as exc:
        raise fail(f"--grid: {exc}", OPTION_ERROR) from None
    return options


def run_book(book_arg: str, market: Path | None, options: XvaRunOptions, quiet: bool) -> XvaBookResult:
    """Load the book and market and run it, with a progress bar on stderr unless `quiet`."""
    from engines.xva.book_xva import run_xva

    book, mkt = _load(book_arg, market)
    with progress("netting sets", quiet) as report:
        return engine_errors(lambda: run_xva(book, mkt, options, progress=report))


@xva_app.command("sample")
def sample_command(
    directory: Annotated[Path, typer.Argument(help="Directory to write book.json, trades.parquet and market.json.")],
    counterparties: Annotated[int, typer.Option(min=1, help="Counterparties.")] = 1000,
    trades: Annotated[int, typer.Option(min=1, help="Trades.")] = 20000,
    book_seed: Annotated[int, typer.Option("--book-seed", min=0, help="Generator seed.")] = 7,
) -> None:
    """Write the generated sample book (trades as Parquet) and its market, to edit or to run."""
    from engines.xva.files import write_book, write_market
    from engines.xva.generator import sample_book
    from engines.xva.market import sample_market

    market = sample_market()
    book = engine_errors(lambda: sample_book(book_seed, counterparties, trades, market))
    directory.mkdir(parents=True, exist_ok=True)
    write_book(book, directory / "book.json", trades_file="trades.parquet")
    write_market(market, directory / "market.json")
    console.print(
        f"wrote {len(book.counterparties):,} counterparties, {len(book.netting_sets):,} netting sets and "
        f"{len(book.trades):,} trades to {directory}/book.json (+ trades.parquet), and market.json"
    )


def _totals_table(title: str, totals: dict[str, Any]) -> None:
    table = figures_table(title, ["", "USD"])
    for label, key in SUMMARY:
        table.add_row(label, money(totals[key]))
    table.add_row("CVA standard error", money(totals["cva_stderr"]))
    table.add_row("SA-CCR EAD", money(totals["ead"]))
    table.add_row("CCR capital (8% RWA)", money(totals["k_ccr"]))
    table.add_row("BA-CVA capital (reduced)", money(totals["ba_cva_capital"]))
    console.print(table)


@xva_app.command("run")
def run_command(
    book_arg: BookArg,
    market: MarketOpt = None,
    paths: PathsOpt = 2000,
    grid: GridOpt = None,
    seed: SeedOpt = 1,
    borrow_spread_bp: BorrowOpt = 60.0,
    lend_spread_bp: LendOpt = 40.0,
    top: Annotated[int, typer.Option("--top", min=0, help="Netting sets listed, by total cost.")] = 15,
    json_out: JsonOpt = False,
) -> None:
    """Exposures, CVA/DVA/FVA/MVA/KVA and SA-CCR / BA-CVA capital of every netting set of the book."""
    result = run_book(book_arg, market, _options(paths, seed, grid, borrow_spread_bp, lend_spread_bp), json_out)
    data = result.to_dict()
    if json_out:
        print_json(data)
        return
    run = data["run"]
    _totals_table(
        f"XVA of {run['netting_sets']:,} netting sets, {run['trades']:,} trades — {run['paths']:,} paths, "
        f"{run['exposure_dates']} dates, seed {run['seed']}",
        data["totals"],
    )
    rows = sorted(data["netting_sets"], key=lambda r: -r["total_with_wrong_way"])[:top]
    if rows:
        table = figures_table(
            f"Largest {len(rows)} netting sets by total cost",
            ["netting set", "trades", "EPE", "EAD", "CVA", "FVA", "MVA", "KVA", "total"],
        )
        for r in rows:
            table.add_row(
                r["id"], str(r["trades"]), *(money(r[k]) for k in ("epe", "ead", "cva", "fva", "mva", "kva")),
                money(r["total_with_wrong_way"]),
            )  # fmt: skip
        console.print(table)
    console.print(f"{data['seconds']['total']:.1f} s, peak memory {data['peak_memory_mb']:,.0f} MB")


def _read_change(path: Path) -> Any:
    from pydantic import ValidationError

    from engines.xva.book_xva import TradeChange

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise fail(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise fail(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    try:
        return TradeChange.parse(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise fail(f"{path}: {loc}: {first['msg']}") from None


@xva_app.command("whatif")
def whatif_command(
    book_arg: BookArg,
    change_file: Annotated[
        Path,
        typer.Argument(
            help='A trade (added), {"action": "amend", "trade": {...}} or {"action": "remove", "trade_id": ...}.'
        ),
    ],
    market: MarketOpt = None,
    paths: PathsOpt = 2000,
    grid: GridOpt = None,
    seed: SeedOpt = 1,
    borrow_spread_bp: BorrowOpt = 60.0,
    lend_spread_bp: LendOpt = 40.0,
    json_out: JsonOpt = False,
) -> None:
    """The XVA and capital effect of adding, removing or amending one trade, on the netting set's cached paths."""
    from engines.xva.book_xva import XvaSession

    change = _read_change(change_file)
    options = _options(paths, seed, grid, borrow_spread_bp, lend_spread_bp)
    book, mkt = _load(book_arg, market)
    if change.trade is not None:
        ns_id = change.trade.netting_set_id
    else:
        owner = {t.trade_id: t.netting_set_id for t in book.trades}
        if change.trade_id not in owner:
            raise fail(f"{change_file}: trade_id: no trade {change.trade_id!r} in the book")
        ns_id = owner[change.trade_id]
    if ns_id not in {n.netting_set_id for n in book.netting_sets}:
        raise fail(f"{change_file}: trade.netting_set_id: {ns_id!r} is not a netting set of the book")
    session = engine_errors(lambda: XvaSession.open(book, mkt, options, netting_sets=[ns_id]))
    result = engine_errors(lambda: session.what_if(change))
    data = result.to_dict()
    if json_out:
        print_json(data)
        return
    table = figures_table(
        f"What-if on {ns_id}: {change.action} {change.trade.trade_id if change.trade else change.trade_id}",
        ["", "before", "after", "change"],
    )
    for label, key in (*SUMMARY, ("SA-CCR EAD", "ead"), ("CCR capital", "k_ccr"), ("EPE", "epe")):
        table.add_row(label, money(data["before"][key]), money(data["after"][key]), money(data["difference"][key]))
    console.print(table)
    console.print(f"what-if valued in {result.seconds * 1000:.0f} ms on the cached paths")


@xva_app.command("stress")
def stress_command(
    book_arg: BookArg,
    market: MarketOpt = None,
    paths: PathsOpt = 2000,
    grid: GridOpt = None,
    seed: SeedOpt = 1,
    borrow_spread_bp: BorrowOpt = 60.0,
    lend_spread_bp: LendOpt = 40.0,
    json_out: JsonOpt = False,
) -> None:
    """The desk's stresses: credit spreads +-100 bp, funding spreads +-50 bp, collateral posted 0% to 120%."""
    result = run_book(book_arg, market, _options(paths, seed, grid, borrow_spread_bp, lend_spread_bp), json_out)
    report_ = engine_errors(result.stress)
    data = report_.to_dict()
    data["run"] = result.to_dict(netting_sets=False)["run"]
    if json_out:
        print_json(data)
        return
    keys = ("cva", "dva", "fva", "mva", "kva", "total")
    table = figures_table("XVA stresses (change from base)", ["scenario", *(k.upper() for k in keys)])
    base = report_.base.totals()
    table.add_row("base", *(money(base[k]) for k in keys))
    for sc in report_.scenarios:
        changes = report_.changes(sc.name)
        table.add_row(sc.name, *(money(changes[k]) for k in keys))
    console.print(table)
