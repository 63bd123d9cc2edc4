"""`risklab margin baseline | stress | model-change`: the book's initial and variation margin per venue,
its stressed margin under vol multipliers and correlation breakdown, and the impact of a CCP model
change with its phase-in. With `--json` each prints the result of the matching compute kind
(`margin.baseline`, `margin.stress`, `margin.model_change`) on stdout; otherwise rich tables, with a
progress bar on stderr while the engine works. The engine is imported inside the commands.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from risklab.margin_cli.book import DEFAULT_SEED, BookArg, load_book_arg
from risklab.margin_cli.common import (
    OPTION_ERROR,
    JsonOpt,
    SeedOpt,
    console,
    engine_errors,
    fail,
    figures_table,
    margin_app,
    money,
    print_json,
    progress,
)

TopOpt = Annotated[int, typer.Option("--top", min=1, help="Venues (and managers) listed in the tables.")]
MultipliersOpt = Annotated[str, typer.Option("--multipliers", help="Vol multipliers, comma-separated (e.g. 2,5,10).")]
BreakdownOpt = Annotated[
    bool,
    typer.Option("--correlation-breakdown/--no-correlation-breakdown", help="Add the correlation breakdown scenarios."),
]
BilateralOpt = Annotated[
    Literal["scaled", "unchanged"],
    typer.Option("--bilateral", help="SIMM under a vol multiplier: risk weights scaled by it, or unchanged."),
]
DatesOpt = Annotated[str | None, typer.Option("--dates", help="ISO dates, comma-separated (default: the phase-in's).")]


@margin_app.command("baseline")
def baseline_command(book: BookArg, seed: SeedOpt = DEFAULT_SEED, as_json: JsonOpt = False, top: TopOpt = 15) -> None:
    """Initial margin per venue (CCP models with APC and add-ons, SIMM for bilaterals) and today's VM.

    Venue columns: model = the CCP's FHS VaR/ES with its anti-procyclicality option; add-ons =
    concentration + liquidity; SIMM+IA = bilateral SIMM plus independent amount; VM paid > 0 when the
    fund pays."""
    from engines.margin.compute.baseline import baseline_report

    loaded = load_book_arg(book, seed)
    started = time.perf_counter()
    with progress("baseline margin", as_json) as report:
        data = engine_errors(lambda: baseline_report(loaded, top=None if as_json else top, progress=report))
    elapsed = time.perf_counter() - started
    if as_json:
        print_json(data)
        return
    t = data["totals"]
    console.print(
        f"[bold]Baseline margin as of {data['as_of']}[/]: IM {money(t['im_usd'])} (CCP {money(t['ccp_im_usd'])}, "
        f"bilateral {money(t['bilateral_im_usd'])}); VM today {money(t['vm_usd'])} paid net "
        f"({money(t['vm_paid_usd'])} paid, {money(t['vm_received_usd'])} received) — {elapsed:.1f} s",
        highlight=False,
    )
    console.print(
        f"CCP: core {money(t['ccp_core_usd'])}, APC {money(t['ccp_apc_usd'])}, concentration "
        f"{money(t['ccp_concentration_usd'])}, liquidity {money(t['ccp_liquidity_usd'])}; bilateral: SIMM "
        f"{money(t['simm_usd'])}, independent amounts {money(t['independent_amount_usd'])}",
        highlight=False,
    )
    venues = figures_table(
        f"Top {top} venues by IM (USD)", ["venue", "ccy", "IM", "model", "add-ons", "SIMM+IA", "VM paid"]
    )
    for r in data["venues"]:
        model = r["core_usd"] + r["apc_usd"]
        add_ons = r["concentration_usd"] + r["liquidity_usd"]
        bilateral = r["simm_usd"] + r["independent_amount_usd"]
        cells = [money(x) for x in (r["im_usd"], model, add_ons, bilateral, r["vm_usd"])]
        venues.add_row(r["venue"], r["currency"], *cells)
    console.print(venues)
    for dimension, limit in (("manager", top), ("currency", None), ("asset_class", None)):
        parts = sorted(data["breakdowns"][dimension].items(), key=lambda kv: -kv[1]["im_usd"])
        table = figures_table(f"By {dimension.replace('_', ' ')} (USD)", [dimension.replace("_", " "), "IM", "VM paid"])
        for name, v in parts[:limit]:
            table.add_row(name, money(v["im_usd"]), money(v["vm_usd"]))
        console.print(table)


def _multipliers(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise fail(f"--multipliers: numbers separated by commas (e.g. 2,5,10), got {text!r}", OPTION_ERROR) from None
    if not values or any(not 0 < v <= 1000 for v in values):
        raise fail(f"--multipliers: positive numbers up to 1000, got {text!r}", OPTION_ERROR)
    return values


@margin_app.command("stress")
def stress_command(
    book: BookArg,
    multipliers: MultipliersOpt = "2,5,10",
    correlation_breakdown: BreakdownOpt = True,
    bilateral: BilateralOpt = "scaled",
    seed: SeedOpt = DEFAULT_SEED,
    as_json: JsonOpt = False,
    top: TopOpt = 10,
) -> None:
    """Baseline and stressed IM under vol multipliers and correlation breakdown, per venue, manager, currency."""
    from engines.margin.compute.baseline import stress_report

    values = _multipliers(multipliers)
    loaded = load_book_arg(book, seed)
    with progress("stressed margin", as_json) as report:
        data = engine_errors(
            lambda: stress_report(
                loaded,
                multipliers=values,
                correlation_breakdown=correlation_breakdown,
                bilateral=bilateral,
                progress=report,
            )
        )
    if as_json:
        print_json(data)
        return
    names = list(data["totals"])
    totals = figures_table(
        f"Stressed IM as of {data['as_of']} (USD)", ["scenario", "IM", "CCP", "bilateral", "× baseline"]
    )
    for name, t in data["totals"].items():
        ratio = t["ratio_to_baseline"]
        totals.add_row(name, money(t["im_usd"]), money(t["ccp_im_usd"]), money(t["bilateral_im_usd"]),
                       "" if ratio is None else f"{ratio:.2f}")  # fmt: skip
    console.print(totals)
    console.print(f"bilateral: {data['bilateral_note']}", highlight=False)
    short = ["baseline", *[n for n in names[1:] if "+" not in n]]
    cols = [names.index(n) for n in short]
    for dimension, limit in (("venue", top), ("manager", top), ("currency", None)):
        rows = sorted(data["breakdowns"][dimension].items(), key=lambda kv: -kv[1][0])
        table = figures_table(f"By {dimension} (USD)", [dimension, *short])
        for name, values_ in rows[:limit]:
            table.add_row(name, *[money(values_[c]) for c in cols])
        console.print(table)


def _dates(text: str | None) -> list[Any] | None:
    if text is None:
        return None
    import datetime as dt

    try:
        return [dt.date.fromisoformat(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise fail(f"--dates: ISO dates separated by commas (e.g. 2026-12-01,2027-01-04), got {text!r}",
                   OPTION_ERROR) from None  # fmt: skip


@margin_app.command("model-change")
def model_change_command(
    book: BookArg,
    changes: Annotated[Path, typer.Argument(help="JSON file of a CCP model change set.", show_default=False)],
    dates: DatesOpt = None,
    seed: SeedOpt = DEFAULT_SEED,
    as_json: JsonOpt = False,
    top: TopOpt = 10,
) -> None:
    """Impact of a CCP model change set (effective date, phase-in) per venue, manager and date."""
    from pydantic import ValidationError

    from engines.margin.compute.baseline import model_change_report
    from engines.margin.model_change import ModelChangeSet
    from engines.registry import split_named_field

    days = _dates(dates)
    try:
        raw = json.loads(changes.read_text())
    except OSError as exc:
        raise fail(f"{changes}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise fail(f"{changes}: not JSON (line {exc.lineno}: {exc.msg})") from None
    try:
        change = ModelChangeSet.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        named, msg = split_named_field(str(first["msg"]))
        where = ".".join(x for x in (loc, named) if x)
        raise fail(f"{changes.name}: {where}: {msg}" if where else f"{changes.name}: {msg}") from None
    loaded = load_book_arg(book, seed)
    with progress("model change", as_json) as report:
        data = engine_errors(lambda: model_change_report(loaded, change, days, progress=report))
    if as_json:
        print_json(data)
        return
    t = data["totals"]
    console.print(f"[bold]{change.name}[/] on {len(data['venues'])} CCP(s): IM {money(t['before_usd'])} before, "
                  f"{money(t['full_usd'])} once phased in", highlight=False)  # fmt: skip
    per_date = figures_table("Per date (USD)", ["date", "weight", "IM", "increase"])
    for d, w, after, inc in zip(data["dates"], data["weights"], t["after_usd"], t["increase_usd"], strict=True):
        per_date.add_row(d, f"{w:.2f}", money(after), money(inc))
    console.print(per_date)
    for key, title in (("venues", "venue"), ("managers", "manager")):
        rows = sorted(data[key].items(), key=lambda kv: -abs(kv[1]["increase_usd"][-1]))
        table = figures_table(f"By {title}, on {data['dates'][-1]} (USD)", [title, "before", "after", "increase"])
        for name, r in rows[:top]:
            table.add_row(name, money(r["before_usd"]), money(r["after_usd"][-1]), money(r["increase_usd"][-1]))
        console.print(table)
