"""`risklab margin avalanche | facility`: the margin-call avalanche simulation of a book (hourly calls at every
venue, the cash waterfall, forced liquidation with its market-impact feedback) and the sizing of the credit
facility at 99% over the stress.

With `--json` each prints the result of the matching compute kind (`margin.avalanche` without its per-path
arrays, `margin.facility_sizing`) on stdout; otherwise rich tables, with a progress bar on stderr fed as blocks
of paths (or trial limits) finish. `--seed` is the Monte Carlo seed, `--book-seed` the sample book's. The
engine is imported inside the commands, so `risklab --help` stays fast.
"""

from __future__ import annotations

import time
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

PathsOpt = Annotated[int, typer.Option("--paths", min=1, help="Monte Carlo paths.")]
HoursOpt = Annotated[int, typer.Option("--hours", min=1, help="Hourly steps (240 = 10 days).")]
BookSeedOpt = Annotated[int, typer.Option("--book-seed", min=0, help="Seed of the generated sample book.")]
VolOpt = Annotated[float, typer.Option("--vol-multiplier", help="Volatility at the start over the calibrated one.")]
FeedbackOpt = Annotated[
    bool, typer.Option("--feedback/--no-feedback", help="Forced liquidation moves prices and volatility.")
]
TopOpt = Annotated[int, typer.Option("--top", min=1, help="Venues and managers listed in the contributions.")]
ConfidenceOpt = Annotated[float, typer.Option("--confidence", help="Share of paths without liquidation or shortfall.")]
DailyCapOpt = Annotated[
    Literal["proportional", "fixed"],
    typer.Option("--daily-cap", help="A resized facility's daily drawdown cap: same share of the limit, or as is."),
]
FACILITY_STRESS = 2.0
"""Default vol multiplier of the facility sizing: the 10-day stress it is sized for."""


def _settings(**fields: Any) -> Any:
    from pydantic import ValidationError

    from engines.margin.avalanche import AvalancheSettings

    try:
        return AvalancheSettings(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        raise fail(f"--{name.replace('_', '-')}: {first['msg']}", OPTION_ERROR) from None


def _pct(p: float) -> str:
    return f"{100 * p:.2f}%"


@margin_app.command("avalanche")
def avalanche_command(
    book: BookArg,
    paths: PathsOpt = 10_000,
    hours: HoursOpt = 240,
    seed: SeedOpt = DEFAULT_SEED,
    book_seed: BookSeedOpt = DEFAULT_SEED,
    vol_multiplier: VolOpt = 1.0,
    feedback: FeedbackOpt = True,
    as_json: JsonOpt = False,
    top: TopOpt = 10,
) -> None:
    """Margin-call avalanche: hourly calls at every venue, the cash waterfall, forced liquidation and its feedback.

    Peak calls = the largest cumulative net margin paid (calls minus returns) over the hours; need = also
    counting calls made and not yet due. Exhausted = the path needed forced liquidation or fell short.
    Contributions: each venue's cumulative calls at the peak hour, averaged over the 1% worst paths."""
    from engines.margin.compute.avalanche import avalanche_report

    settings = _settings(paths=paths, hours=hours, seed=seed, vol_multiplier=vol_multiplier, feedback=feedback)
    loaded = load_book_arg(book, book_seed)
    started = time.perf_counter()
    with progress("avalanche", as_json) as report:
        data = engine_errors(lambda: avalanche_report(loaded, settings, per_path=False, progress=report))
    elapsed = time.perf_counter() - started
    if as_json:
        print_json(data)
        return
    s = data["summary"]
    ex = s["exhaustion"]
    console.print(
        f"[bold]Margin-call avalanche as of {data['as_of']}[/]: {s['paths']:,} paths × {s['hours']} hours, "
        f"vol ×{settings.vol_multiplier:g}, feedback {'on' if settings.feedback else 'off'}, seed {settings.seed} "
        f"— {elapsed:.1f} s"
    )
    r = s["resources"]
    console.print(
        f"Resources: usable cash {money(r['usable_cash_usd'])}, facility {money(r['facility_limit_usd'])} "
        f"({r['facility_notice_hours']:.0f} h notice, {money(r['facility_max_draw_per_day_usd'])} a day)"
    )
    t = figures_table("Distribution over paths", ["figure", "mean", "50%", "95%", "99%", "99.9%"])
    for label, key in (("peak cumulative calls", "peak_calls_usd"), ("peak liquidity need", "peak_need_usd"),
                       ("gross calls", "gross_calls_usd"), ("shortfall", "shortfall_usd")):  # fmt: skip
        q = s[key]
        t.add_row(label, *(money(q[k]) for k in ("mean", "p50", "p95", "p99", "p99.9")))
    q = s["liquidation"]["loss_usd"]
    t.add_row("liquidation loss", *(money(q[k]) for k in ("mean", "p50", "p95", "p99", "p99.9")))
    console.print(t)
    hour = ex["hour"]
    when = f"hour {hour['p50']:.0f} (median of exhausted paths)" if ex["probability"]["p"] > 0 else "never"
    console.print(
        f"P(exhaust) {_pct(ex['probability']['p'])} ± {_pct(ex['probability']['stderr'])} — forced liquidation "
        f"{_pct(ex['liquidation_probability']['p'])}, shortfall {_pct(ex['shortfall_probability']['p'])}; "
        f"first at {when}"
    )
    w = s["waterfall_mean_usd"]
    console.print(
        f"Waterfall (mean): calls {money(w['calls'])}, returns {money(w['returns'])}; "
        f"paid from cash {money(w['cash'])}, "
        f"facility {money(w['facility'])}, liquidation {money(w['liquidation'])}, short {money(w['shortfall'])}; "
        f"conservation residual ≤ {s['conservation']['max_abs_residual_usd']:.2g} USD"
    )
    c = s["contributions"]
    console.print(
        f"Contributions to the peak in the {c['tail_paths']} worst paths "
        f"(mean peak {money(c['tail_mean_peak_calls_usd'])}):"
    )
    for title, key in (("venue", "by_venue"), ("manager", "by_manager"), ("currency", "by_currency")):
        items = sorted(c[key].items(), key=lambda kv: -abs(kv[1]))[:top]
        table = figures_table(f"by {title}", [title, "calls at peak", "share"])
        total = c["tail_mean_peak_calls_usd"] or 1.0
        for name, value in items:
            table.add_row(name, money(value), f"{100 * value / total:.1f}%")
        console.print(table)


@margin_app.command("facility")
def facility_command(
    book: BookArg,
    paths: PathsOpt = 10_000,
    hours: HoursOpt = 240,
    seed: SeedOpt = DEFAULT_SEED,
    book_seed: BookSeedOpt = DEFAULT_SEED,
    vol_multiplier: VolOpt = FACILITY_STRESS,
    feedback: FeedbackOpt = True,
    confidence: ConfidenceOpt = 0.99,
    daily_cap: DailyCapOpt = "proportional",
    as_json: JsonOpt = False,
) -> None:
    """Credit facility sizing: the smallest limit with which the stated share of the avalanche paths needs no
    forced liquidation and has no shortfall over the stress (by default vol ×2), with the facility's notice and
    daily cap and without them."""
    from engines.margin.compute.avalanche import facility_report

    if not 0.0 < confidence < 1.0:
        raise fail(f"--confidence: must lie strictly between 0 and 1, got {confidence}", OPTION_ERROR)
    settings = _settings(paths=paths, hours=hours, seed=seed, vol_multiplier=vol_multiplier, feedback=feedback)
    loaded = load_book_arg(book, book_seed)
    started = time.perf_counter()
    with progress("facility sizing", as_json) as report:
        data = engine_errors(
            lambda: facility_report(loaded, settings, confidence=confidence, daily_cap=daily_cap, progress=report)
        )
    elapsed = time.perf_counter() - started
    if as_json:
        print_json(data)
        return
    r = data["resources"]
    console.print(
        f"[bold]Credit facility sizing as of {data['as_of']}[/]: {_pct(confidence)} of {data['paths']:,} paths over "
        f"{hours} hours, vol ×{settings.vol_multiplier:g} — {elapsed:.1f} s"
    )
    t = figures_table("Smallest limit", ["terms", "limit", "P(exhaust) at it", "P(exhaust), unlimited"])
    for label, key in (("with notice and daily cap", "with_delays"), ("instant, no daily cap", "without_delays")):
        z = data[key]
        cap = "none" if z["max_draw_per_day_usd"] is None else money(z["max_draw_per_day_usd"])
        limit = "not reachable" if z["limit_usd"] is None else money(z["limit_usd"])
        t.add_row(f"{label} ({z['notice_hours']} h, cap {cap})", limit, _pct(z["exhaust_probability"]),
                  _pct(z["unlimited_exhaust_probability"]))  # fmt: skip
    console.print(t)
    cost = data["cost_of_delays_usd"]
    console.print(
        f"Cost of the delays: {'n/a' if cost is None else money(cost)}. "
        f"Current facility {money(data['current_limit_usd'])}"
        f" (usable cash {money(r['usable_cash_usd'])}): P(exhaust) {_pct(data['current_exhaust_probability'])}"
    )
