"""`risklab margin liquidity | optimise | venue-whatif`: the 30-day margin and cash-flow ladder with the
concentration and efficiency summary, the strategy optimiser that cuts stressed margin at the return
target, and the venue what-if. With `--json` each prints the result of the matching compute kind
(`margin.liquidity`, `margin.optimise`, `margin.venue_whatif`) on stdout; otherwise rich tables, with a
progress bar on stderr while the engine works. The engine is imported inside the commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from risklab.margin_cli.book import DEFAULT_SEED, BookArg, load_book_arg
from risklab.margin_cli.common import (
    JsonOpt,
    SeedOpt,
    console,
    engine_errors,
    figures_table,
    margin_app,
    money,
    print_json,
    progress,
)

TopOpt = Annotated[int, typer.Option("--top", min=1, help="Venues and groups listed in the tables.")]
VolOpt = Annotated[
    float, typer.Option("--vol-multiplier", min=1.0, max=100.0, help="Volatility multiplier of the stress.")
]
CreditOpt = Annotated[
    float,
    typer.Option("--inflow-credit", min=0.0, max=1.0, help="Share of VM received elsewhere counted against calls."),
]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _day(value: int | None) -> str:
    return "none within the ladder" if value is None else f"day {value}"


@margin_app.command("liquidity")
def liquidity_command(
    book: BookArg,
    seed: SeedOpt = DEFAULT_SEED,
    as_json: JsonOpt = False,
    days: Annotated[int, typer.Option("--days", min=1, max=60, help="Business days of the ladder.")] = 30,
    vol_multiplier: VolOpt = 2.0,
    inflow_credit: CreditOpt = 0.0,
    top: TopOpt = 10,
) -> None:
    """30-day margin and cash-flow ladder by currency and venue, with concentration and efficiency.

    Expected view: mean VM calls, IM unchanged; stressed view: 99% expected shortfall of the book's calls and
    CCP IM climbing towards its level at --vol-multiplier times today's volatility. Both add IM released by
    expiries and FX forward settlements; the buffer is breached when calls exceed usable cash plus the
    facility drawn so far."""
    from engines.margin.compute.liquidity import liquidity_report

    loaded = load_book_arg(book, seed)
    with progress("liquidity ladder", as_json) as report:
        data = engine_errors(
            lambda: liquidity_report(
                loaded,
                days=days,
                vol_multiplier=vol_multiplier,
                vm_inflow_credit=inflow_credit,
                top=None if as_json else top,
                progress=report,
            )
        )
    if as_json:
        print_json(data)
        return
    ladder = data["ladder"]
    res = ladder["resources"]
    console.print(
        f"[bold]Liquidity as of {data['as_of']}[/]: usable cash {money(res['usable_cash_usd'])} (buffer "
        f"{money(res['operational_buffer_usd'])} kept back), facility {money(res['facility_limit_usd'])} at "
        f"{money(res['facility_max_draw_per_day_usd'])} a day after {res['facility_notice_days']} day(s) notice",
        highlight=False,
    )
    for name in ("expected", "stressed"):
        view = ladder[name]
        console.print(
            f"{name}: buffer breached {_day(view['first_breach_day'])}; facility needed "
            f"{_day(view['facility_needed_day'])}; currencies short: "
            + (
                ", ".join(f"{c} day {d}" for c, d in sorted(view["currency_short_day"].items(), key=lambda x: x[1]))
                or "none"
            ),
            highlight=False,
        )
    table = figures_table(
        f"Stressed ladder, {ladder['confidence']:.0%} (USD)",
        ["day", "VM", "IM change", "known flows", "cumulative", "available", "headroom"],
    )
    for row in ladder["stressed"]["ladder"]:
        cells = [money(row[k]) for k in ("vm_usd", "im_change_usd", "known_flows_usd", "cumulative_outflow_usd",
                                          "available_usd", "headroom_usd")]  # fmt: skip
        style = "red" if row["headroom_usd"] < 0 else None
        table.add_row(str(row["day"]), *cells, style=style)
    console.print(table)
    venues = figures_table(
        f"Top {top} venues by stressed {days}-day outflow (USD)", ["venue", "ccy", "stressed", "expected"]
    )
    for v in ladder["venues"]:
        venues.add_row(v["venue"], v["currency"], money(v["stressed_outflow_usd"]), money(v["expected_outflow_usd"]))
    console.print(venues)
    conc = data["concentration"]
    breaches = figures_table(
        "Concentration breaches (share of IM)", ["group", "dimension", "IM share", "limit", "notional"]
    )
    for b in conc["breaches"]:
        breaches.add_row(b["name"], b["dimension"], _pct(b["im_share"]), _pct(b["limit"]), _pct(b["notional_share"]))
    if not conc["breaches"]:
        breaches.add_row("none", "", "", "", "")
    console.print(breaches)
    eff = data["efficiency"]
    table = figures_table(
        f"Least margin-efficient strategies ({eff['risk_measure']})",
        ["strategy", "manager", "IM", "standalone risk", "IM / risk", "return / IM"],
    )
    for e in eff["strategies"]:
        ratio = "" if e["im_per_risk"] is None else f"{e['im_per_risk']:.2f}"
        table.add_row(
            e["name"], e["manager"], money(e["im_usd"]), money(e["standalone_es_usd"]), ratio, _pct(e["return_on_im"])
        )
    console.print(table)


@margin_app.command("optimise")
def optimise_command(
    book: BookArg,
    seed: SeedOpt = DEFAULT_SEED,
    as_json: JsonOpt = False,
    vol_multiplier: VolOpt = 2.0,
    return_target: Annotated[
        float | None,
        typer.Option(
            "--return-target", help="Expected return to keep, USD a year (default: today's).", show_default=False
        ),
    ] = None,
    max_change: Annotated[
        float, typer.Option("--max-change", min=0.0, max=0.99, help="Largest change of a strategy's size.")
    ] = 0.25,
    model_check: Annotated[
        bool, typer.Option("--model-check/--no-model-check", help="Run the venues' own stressed models too.")
    ] = True,
    top: TopOpt = 15,
) -> None:
    """Scale strategies within ±max-change to cut total stressed margin while keeping the return target.

    The objective is the sum over venues of the 99% expected shortfall of the venue's loss on FHS scenarios at
    --vol-multiplier times today's volatility (each venue at its margin period of risk), solved exactly as a
    linear programme; --model-check reruns the CCP models and SIMM on the book before and after."""
    from engines.margin.compute.liquidity import optimise_report

    loaded = load_book_arg(book, seed)
    with progress("optimiser", as_json) as report:
        data = engine_errors(
            lambda: optimise_report(
                loaded,
                vol_multiplier=vol_multiplier,
                return_target_usd=return_target,
                max_change=max_change,
                check_with_model=model_check,
                progress=report,
            )
        )
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]Stressed margin (vol x{vol_multiplier:g}) as of {data['as_of']}[/]: {money(data['margin_before_usd'])}"
        f" → {money(data['margin_after_usd'])} (−{money(data['reduction_usd'])}, {data['reduction_share']:.1%}); "
        f"expected return {money(data['return_before_usd'])} → {money(data['return_after_usd'])} (target "
        f"{money(data['return_target_usd'])}, {'met' if data['return_target_met'] else 'NOT met'}); largest change "
        f"{data['largest_change']:.0%}",
        highlight=False,
    )
    if data["model_margin_before_usd"] is not None:
        before, after = data["model_margin_before_usd"], data["model_margin_after_usd"]
        console.print(
            f"venues' own stressed models: {money(before)} → {money(after)} ({(after - before) / before:+.1%})",
            highlight=False,
        )
    table = figures_table(f"Largest changes (top {top})", ["strategy", "manager", "scale", "return before", "after"])
    for c in data["strategies"][:top]:
        table.add_row(
            c["strategy"],
            c["manager"],
            f"{c['scale']:.3f}",
            money(c["expected_return_before_usd"]),
            money(c["expected_return_after_usd"]),
        )
    console.print(table)


@margin_app.command("venue-whatif")
def venue_whatif_command(
    book: BookArg,
    to_venue: Annotated[str, typer.Option("--to", help="The venue the positions move to.", show_default=False)],
    manager: Annotated[str | None, typer.Option("--manager", help="Move this manager's positions.")] = None,
    asset_class: Annotated[str | None, typer.Option("--asset-class", help="... in this asset class.")] = None,
    from_venue: Annotated[str | None, typer.Option("--from", help="... held at this venue.")] = None,
    ids: Annotated[str | None, typer.Option("--ids", help="... with these position ids (comma-separated).")] = None,
    seed: SeedOpt = DEFAULT_SEED,
    as_json: JsonOpt = False,
) -> None:
    """IM change per venue and in total when positions move to another venue (the netting benefit)."""
    from engines.margin.compute.liquidity import venue_whatif_report

    id_list = [i.strip() for i in ids.split(",") if i.strip()] if ids else None
    loaded = load_book_arg(book, seed)
    with progress("venue what-if", as_json):
        data = engine_errors(
            lambda: venue_whatif_report(
                loaded, to_venue, ids=id_list, manager=manager, asset_class=asset_class, from_venue=from_venue
            )
        )
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]Moving {len(data['positions'])} position(s) to {data['to_venue']}[/]: total IM "
        f"{money(data['total_before_usd'])} → {money(data['total_after_usd'])}; netting benefit "
        f"{money(data['netting_benefit_usd'])}",
        highlight=False,
    )
    table = figures_table("IM by venue (USD)", ["venue", "before", "after", "change"])
    for v in sorted(data["venues"], key=lambda v: v["change_usd"]):
        table.add_row(v["venue"], money(v["im_before_usd"]), money(v["im_after_usd"]), money(v["change_usd"]))
    console.print(table)
