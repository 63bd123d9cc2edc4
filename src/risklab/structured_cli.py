"""`risklab structured`: price, lab, stress and PRIIPs KID of autocallable notes from JSON files.

Every command reads spec files (one spec, a list, {"specs": [...]} or a lab file {"base", "grid"}),
prices on the bundled sample market unless `--market` names a MarketData file, and prints rich
tables, or with `--json` only the engine's result as JSON on stdout. Figures are fractions of
notional in JSON and percentages in the tables. A bad file or option ends with one line naming the
file or option and the field: exit code 1 for data, 2 for options.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:  # the engine (numba, scipy) is imported by the commands only, so `risklab --help` stays fast
    from pydantic import ValidationError

    from engines.structured.market import MarketData
    from engines.structured.pricing import PriceResult, PricingOptions
    from engines.structured.spec import AutocallSpec

structured_app = typer.Typer(
    help="Structured products: price, design lab, stress grid and PRIIPs KID of autocallable notes.",
    no_args_is_help=True,
)

console = Console()
err = Console(stderr=True)

GREEKS = ("delta", "gamma", "vega", "rho", "correlation")
SAMPLE_MARKET_LABEL = "the bundled sample market"
DATA_ERROR = 1
OPTION_ERROR = 2

Progressor = Callable[[int, int], None] | None


def _fail(message: str, code: int = DATA_ERROR) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # user text is not markup
    return typer.Exit(code)


# -- options shared by the commands ---------------------------------------------------------

SpecArg = Annotated[Path, typer.Argument(help='Spec file: one spec, a list, {"specs": [...]} or a lab file.')]
MarketOpt = Annotated[
    Path | None, typer.Option("--market", help="MarketData JSON file (default: the bundled EUR sample market).")
]
PathsOpt = Annotated[int, typer.Option("--paths", min=2, max=50_000_000, help="Monte Carlo paths (even).")]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", min=0, help="Random seed (default: the engine's fixed seed).", show_default=False),
]
ModelOpt = Annotated[Literal["bs", "localvol"], typer.Option("--model", help="Model.")]
SamplerOpt = Annotated[
    Literal["sobol", "pseudo"], typer.Option("--sampler", help="Normal numbers: Sobol or pseudo-random.")
]
GreeksOpt = Annotated[
    str, typer.Option("--greeks", help=f"Comma-separated Greeks among {', '.join(GREEKS)}; 'none' for none.")
]
MarginOpt = Annotated[
    float, typer.Option("--margin", min=-0.5, max=0.5, help="Target issuer margin for the fair coupon (0.03 = 3%).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only the results as JSON on stdout.")]


def _greeks(text: str) -> list[str]:
    names = [g.strip().lower() for g in text.split(",") if g.strip()]
    if names in ([], ["none"]):
        return []
    unknown = [g for g in names if g not in GREEKS]
    if unknown:
        raise _fail(f"--greeks: unknown Greek(s) {', '.join(unknown)}; choose among {', '.join(GREEKS)}", OPTION_ERROR)
    return list(dict.fromkeys(names))


OPTION_NAMES = {"target_margin": "margin", "issuer_rating": "rating", "rhp_years": "rhp",
                "stressed_vol_multiplier": "stressed-vol", "capital_at_risk_limit": "limit"}  # fmt: skip


def _option_error(exc: ValidationError) -> typer.Exit:
    """A refused option value, named as the command-line option (``--margin: ...``)."""
    from risklab.structured_samples import describe

    text = describe(exc)
    field, _, rest = text.partition(":")
    return _fail(f"--{OPTION_NAMES.get(field, field).replace('_', '-')}:{rest}", OPTION_ERROR)


def _options(paths: int, seed: int | None, model: str, sampler: str, greeks: Sequence[str] = (),
             margin: float | None = 0.03) -> PricingOptions:  # fmt: skip
    from pydantic import ValidationError

    from engines.structured.pricing import PricingOptions

    if paths % 2:
        raise _fail(f"--paths: antithetic sampling needs an even path count, got {paths}", OPTION_ERROR)
    data: dict[str, Any] = {"paths": paths, "model": model, "sampler": sampler, "greeks": list(greeks),
                            "target_margin": margin}  # fmt: skip
    if seed is not None:
        data["seed"] = seed
    try:
        return PricingOptions.model_validate(data)
    except ValidationError as exc:
        raise _option_error(exc) from None


def _market(path: Path | None) -> tuple[MarketData, str]:
    from risklab.structured_samples import SpecFileError, load_market, sample_market

    if path is None:
        return sample_market(), SAMPLE_MARKET_LABEL
    try:
        return load_market(path), str(path)
    except SpecFileError as exc:
        raise _fail(str(exc)) from None


def _checked(specs: list[AutocallSpec], where: str, market: MarketData, market_where: str) -> list[AutocallSpec]:
    from risklab.structured_samples import SpecFileError, check_specs_against_market

    try:
        check_specs_against_market(specs, market, where, market_where)
    except SpecFileError as exc:
        raise _fail(str(exc)) from None
    return specs


def _specs(path: Path, market: MarketData, market_where: str) -> list[AutocallSpec]:
    from risklab.structured_samples import SpecFileError, load_specs

    try:
        specs = load_specs(path)
    except SpecFileError as exc:
        raise _fail(str(exc)) from None
    return _checked(specs, str(path), market, market_where)


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Progressor]:
    """A progress bar on stderr fed by the engine's progress(done, total); none with --json."""
    if quiet:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield report


def _engine_call(fn: Callable[[], Any], market_where: str) -> Any:
    """Run an engine call, turning its refusals (bad data, not a bug) into one clear line."""
    try:
        return fn()
    except KeyError as exc:
        raise _fail(str(exc.args[0] if exc.args else exc)) from None
    except ValueError as exc:  # InvalidInputs (e.g. a surface that cannot be calibrated) is a ValueError
        text = str(exc)
        raise _fail(f"{market_where}: {text}" if text.startswith("underlyings.") else text) from None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(data), indent=2) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}"


def _warn(name: str, warnings: Sequence[str]) -> None:
    for w in dict.fromkeys(warnings):
        err.print(f"[yellow]warning:[/] {escape(name)}: {escape(w)}", highlight=False)


# -- price and lab --------------------------------------------------------------------------


def _price(specs: list[AutocallSpec], market: MarketData, market_where: str, options: PricingOptions,
           json_out: bool) -> list[PriceResult]:  # fmt: skip
    from engines.structured.pricing import price_many

    label = f"pricing {len(specs)} note{'s' if len(specs) != 1 else ''}"
    with _progress(label, json_out) as progress:
        return _engine_call(lambda: price_many(specs, market, options, progress=progress), market_where)


def _first_call(spec: AutocallSpec, result: PriceResult) -> tuple[float, float]:
    """Probability of a call at the first callable observation, and of any early (or maturity) call."""
    triggers = spec.triggers()
    callable_ = [i for i, t in enumerate(triggers) if math.isfinite(t)]
    probs = result.autocall_probability
    first = probs[callable_[0]] if callable_ and callable_[0] < len(probs) else 0.0
    return first, float(sum(probs))


def _price_table(rows: Sequence[tuple[str, AutocallSpec, PriceResult]], title: str, options: PricingOptions,
                 first_column: str = "note") -> Table:  # fmt: skip
    margin = options.target_margin
    caption = (
        "In %. price and s.e.: of notional; fair cpn: coupon p.a."
        + (f" for an issuer margin of {100 * margin:g}%" if margin is not None else "")
        + "; call 1st/all: autocall probability at the first callable observation / at any; "
        "life: expected life in years; KI, loss: probability of knock-in, of a capital loss; "
        "IRR p50: the investor's median IRR p.a."
    )
    table = _table(title, caption)
    table.add_column(first_column, overflow="fold", min_width=12)
    for head in ("price", "s.e.", "fair cpn", "call 1st/all", "life", "KI", "loss", "IRR p50"):
        table.add_column(head, justify="right", no_wrap=True)
    for label, spec, r in rows:
        first, total = _first_call(spec, r)
        table.add_row(
            escape(label), _pct(r.price), _pct(r.stderr), _pct(r.fair_coupon), f"{_pct(first, 1)}/{_pct(total, 1)}",
            f"{r.expected_life_years:.2f}", _pct(r.knock_in_probability, 1), _pct(r.capital_loss_probability, 1),
            _pct(r.irr_percentiles.get("p50")),
        )  # fmt: skip
    return table


def _table(title: str, caption: str) -> Table:
    """A compact table; its title and caption are plain text (file names are not markup)."""
    return Table(title=escape(title), caption=escape(caption), title_justify="left", caption_justify="left",
                 box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)  # fmt: skip


def _greeks_table(specs: Sequence[AutocallSpec], results: Sequence[PriceResult], greeks: Sequence[str]) -> Table:
    caption = (
        "% of notional: delta per 100% move of the underlying (equity exposure), gamma in the same relative "
        "units, vega per vol point, rho per bp of the curve, correlation per 0.01 on every pair"
    )
    table = _table("Greeks", caption)
    table.add_column("note", overflow="fold")
    for g in greeks:
        table.add_column(g, justify="right", overflow="fold")
    for spec, r in zip(specs, results, strict=True):
        cells = []
        for g in greeks:
            value = r.greeks.get(g)
            if isinstance(value, list):
                cells.append("\n".join(f"{u} {_pct(v)}" for u, v in zip(spec.underlyings, value, strict=False)))
            else:
                cells.append(_pct(value, 4) if g == "rho" else _pct(value))
        table.add_row(escape(r.name), *cells)
    return table


def _run_title(what: str, options: PricingOptions, market_where: str) -> str:
    return (f"{what} — {options.model}, {options.paths:,} paths ({options.sampler}), seed {options.seed}, "
            f"market: {market_where}")  # fmt: skip


@structured_app.command("price")
def price_command(
    spec: SpecArg,
    market: MarketOpt = None,
    paths: PathsOpt = 10_000,
    seed: SeedOpt = None,
    model: ModelOpt = "bs",
    sampler: SamplerOpt = "sobol",
    greeks: GreeksOpt = "delta,vega",
    margin: MarginOpt = 0.03,
    json_out: JsonOpt = False,
) -> None:
    """Price notes: price and standard error, fair coupon, autocall/knock-in/loss probabilities, IRR, Greeks."""
    options = _options(paths, seed, model, sampler, _greeks(greeks), margin)
    mkt, market_where = _market(market)
    specs = _specs(spec, mkt, market_where)
    results = _price(specs, mkt, market_where, options, json_out)
    if json_out:
        _print_json([r.to_dict() for r in results])
        return
    title = _run_title(f"{len(specs)} note{'s' if len(specs) != 1 else ''}", options, market_where)
    console.print(_price_table([(r.name, s, r) for s, r in zip(specs, results, strict=True)], title, options))
    if options.greeks:
        console.print(_greeks_table(specs, results, options.greeks))
    for r in results:
        _warn(r.name, r.warnings)


@structured_app.command("lab")
def lab_command(
    base: Annotated[Path, typer.Argument(help='Base spec, or a lab file {"base": spec, "grid": LabGrid}.')],
    market: MarketOpt = None,
    paths: PathsOpt = 10_000,
    seed: SeedOpt = None,
    model: ModelOpt = "bs",
    sampler: SamplerOpt = "sobol",
    greeks: GreeksOpt = "delta,vega",
    margin: MarginOpt = 0.03,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Show only the N highest fair coupons.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Price the variations of a base note over a grid (default: 5 barriers x 5 coupons x 3 triggers = 75)."""
    from risklab.structured_samples import SpecFileError, grid_variations, load_lab

    options = _options(paths, seed, model, sampler, _greeks(greeks), margin)
    mkt, market_where = _market(market)
    try:
        base_spec, grid = load_lab(base)
        specs = grid_variations(base_spec, grid, str(base))
    except SpecFileError as exc:
        raise _fail(str(exc)) from None
    _checked(specs, str(base), mkt, market_where)
    results = _price(specs, mkt, market_where, options, json_out)
    order = list(range(len(specs)))
    if top is not None:
        order = sorted(order, key=lambda i: -math.inf if results[i].fair_coupon is None else -results[i].fair_coupon)
        order = order[:top]
    if json_out:
        _print_json([results[i].to_dict() for i in order])
        return
    console.print(f"{len(specs)} variations of {escape(base_spec.name)}", highlight=False)
    rows = [(f"{i + 1}. {_variation_label(specs[i].name, base_spec.name)}", specs[i], results[i]) for i in order]
    shown = f"top {len(order)} by fair coupon" if top is not None else "all, in grid order"
    title = _run_title(f"lab: {len(specs)} variations ({shown})", options, market_where)
    console.print(_price_table(rows, title, options, first_column="variation"))
    for r in results:
        _warn(r.name, r.warnings)


def _variation_label(name: str, base_name: str) -> str:
    if name.startswith(base_name + "[") and name.endswith("]"):
        return name[len(base_name) + 1 : -1]
    return name


# -- stress ---------------------------------------------------------------------------------


@structured_app.command("stress")
def stress_command(
    spec: Annotated[Path, typer.Argument(help="Spec file, or a lab file (stresses its variations).")],
    market: MarketOpt = None,
    paths: PathsOpt = 10_000,
    seed: SeedOpt = None,
    model: ModelOpt = "bs",
    sampler: SamplerOpt = "sobol",
    scenarios: Annotated[
        Path | None,
        typer.Option("--scenarios", help="JSON list of ScenarioSpec (default: the desk's 320-scenario grid)."),
    ] = None,
    limit: Annotated[
        float, typer.Option("--limit", min=0.0001, max=1.0, help="Capital-at-risk limit (fraction of notional).")
    ] = 0.05,
    gap: Annotated[float, typer.Option("--gap", min=0.001, max=0.99, help="Overnight gap for the gap risk.")] = 0.10,
    json_out: JsonOpt = False,
) -> None:
    """Revalue notes under a stress grid from the issuer's side: capital at risk vs limit, gap risk, VaR/ES."""
    from pydantic import ValidationError

    from engines.structured.stress import StressOptions, default_scenarios, stress_test
    from risklab.structured_samples import SpecFileError, load_scenarios

    options = _options(paths, seed, model, sampler, margin=None)
    try:
        stress_options = StressOptions(capital_at_risk_limit=limit, gap=gap)
    except ValidationError as exc:
        raise _option_error(exc) from None
    mkt, market_where = _market(market)
    specs = _specs(spec, mkt, market_where)
    try:
        grid = load_scenarios(scenarios) if scenarios is not None else default_scenarios()
    except SpecFileError as exc:
        raise _fail(str(exc)) from None
    label = f"stressing {len(specs)} note{'s' if len(specs) != 1 else ''} x {len(grid)} scenarios"
    with _progress(label, json_out) as progress:
        report = _engine_call(
            lambda: stress_test(specs, mkt, options, grid, stress_options, progress=progress), market_where
        )
    if json_out:
        _print_json(report.to_dict())
        return
    title = _run_title(f"stress: {len(specs)} note{'s' if len(specs) != 1 else ''} x {len(grid)} scenarios",
                       options, market_where)  # fmt: skip
    caption = (
        "In % of notional, the issuer short the note. base: value under the base market; CaR: capital at risk, the "
        f"worst delta-hedged loss over the grid, against the limit of {100 * limit:g}% (unhedged: without the "
        f"hedge); gap: loss of the hedged issuer when the underlyings gap {100 * gap:g}% through the knock-in "
        "barrier; VaR99, ES99: of the loss held to maturity under the base market"
    )
    table = _table(title, caption)
    table.add_column("note", overflow="fold", min_width=12)
    for head in ("base", "CaR", "unhedged", "limit"):
        table.add_column(head, justify="right", no_wrap=True)
    table.add_column("worst scenario", overflow="fold", min_width=10)
    for head in ("gap", "VaR99", "ES99"):
        table.add_column(head, justify="right", no_wrap=True)
    for r in report.results:
        verdict = "[green]pass[/]" if r.passes else "[bold red]FAIL[/]"
        table.add_row(
            escape(r.name), _pct(r.base_value), _pct(r.capital_at_risk), _pct(r.capital_at_risk_unhedged), verdict,
            escape(r.worst_scenario), _pct(r.gap_risk), _pct(r.base_var.get("0.99")), _pct(r.base_es.get("0.99")),
        )  # fmt: skip
    console.print(table)
    failed = sum(not r.passes for r in report.results)
    console.print(f"{len(report.results) - failed} pass, {failed} fail the capital-at-risk limit", highlight=False)
    for r in report.results:
        _warn(r.name, getattr(r, "warnings", []))


# -- PRIIPs KID -----------------------------------------------------------------------------


@structured_app.command("kid")
def kid_command(
    spec: SpecArg,
    market: MarketOpt = None,
    paths: Annotated[int, typer.Option("--paths", min=2, help="Simulations (PRIIPs needs at least 10,000).")] = 10_000,
    seed: SeedOpt = None,
    model: ModelOpt = "bs",
    sampler: SamplerOpt = "sobol",
    rating: Annotated[str, typer.Option("--rating", help="Issuer's long-term rating (S&P/Fitch or Moody's).")] = "A",
    rhp: Annotated[
        float | None, typer.Option("--rhp", help="Recommended holding period in years (default: maturity).")
    ] = None,
    price: Annotated[float, typer.Option("--price", help="Price paid, as a fraction of notional.")] = 1.0,
    investment: Annotated[float, typer.Option("--investment", help="Amount invested for the scenarios.")] = 10_000.0,
    stressed_vol: Annotated[float, typer.Option("--stressed-vol", help="Vol multiplier of the stress scenario.")] = 1.5,
    json_out: JsonOpt = False,
) -> None:
    """PRIIPs KID indicators: market risk (VEV, MRM), credit risk (CRM), SRI and performance scenarios."""
    from pydantic import ValidationError

    from engines.structured.kid import MIN_PRIIPS_PATHS, KidOptions, kid_indicators
    from engines.structured.priips import credit_quality_step

    if paths < MIN_PRIIPS_PATHS:
        raise _fail(f"--paths: PRIIPs figures need at least {MIN_PRIIPS_PATHS:,} simulations, got {paths}",
                    OPTION_ERROR)  # fmt: skip
    options = _options(paths, seed, model, sampler, margin=None)
    try:
        kid = KidOptions(issuer_rating=rating, rhp_years=rhp, price=price, stressed_vol_multiplier=stressed_vol,
                         investment=investment)  # fmt: skip
        credit_quality_step(rating)
    except ValidationError as exc:
        raise _option_error(exc) from None
    except ValueError as exc:
        raise _fail(f"--{exc}", OPTION_ERROR) from None
    mkt, market_where = _market(market)
    specs = _specs(spec, mkt, market_where)
    short = [s.name for s in specs if rhp is not None and rhp + 1e-9 < s.maturity_years]
    if short:
        raise _fail(f"--rhp: {rhp:g} years is before the maturity of {short[0]!r}; give at least the maturity",
                    OPTION_ERROR)  # fmt: skip
    out = []
    with err.status("simulating the PRIIPs distributions") if not json_out else _nothing():
        for s in specs:
            out.append(_engine_call(lambda s=s: kid_indicators(s, mkt, options, kid), market_where))
    if json_out:
        _print_json(out)
        return
    for s, ind in zip(specs, out, strict=True):
        console.print(_kid_table(s, ind, market_where))


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _kid_table(spec: AutocallSpec, ind: dict[str, Any], market_where: str) -> Table:
    mr, cr = ind["market_risk"], ind["credit_risk"]
    title = (f"PRIIPs KID — {spec.name}: SRI {ind['sri']} (MRM {mr['mrm']}, CRM {cr['crm']}); RHP "
             f"{ind['rhp_years']:g}y, {ind['paths']:,} paths ({ind['model']}), market: {market_where}")  # fmt: skip
    vev = mr.get("vev")
    scen = ind["performance_scenarios"]
    currency = spec.currency
    caption = (
        f"What you might get back on {scen['investment']:,.0f} {currency} invested at "
        f"{_pct(scen.get('price', 1.0))}% of notional, and the average return per year (total return when the "
        f"holding period is under a year). VEV {_pct(vev)}%; issuer rating {cr['rating']} (credit quality step "
        f"{cr['credit_quality_step']}); the stress scenario has vols x{ind['stressed_vol_multiplier']:g}."
    )
    table = _table(title, caption)
    table.add_column("scenario")
    for head in ("holding period", "percentile", f"amount {currency}", "return"):
        table.add_column(head, justify="right", no_wrap=True)
    for period in scen["periods"]:
        for name in ("stress", "unfavourable", "moderate", "favourable"):
            s = period.get(name)
            if not s:
                continue
            ret = f"{_pct(s.get('average_return_per_year'))}%"
            ret += " p.a." if period.get("return_is_annualised", True) else ""
            table.add_row(name, f"{period['holding_period_years']:g}y", f"{s['percentile']:g}", f"{s['amount']:,.0f}",
                          ret)  # fmt: skip
    return table


# -- the desk view of a design request ------------------------------------------------------


@structured_app.command("show")
def show_command(
    request_id: Annotated[str, typer.Argument(help="The design request's id (request_id of its events).")],
    top: Annotated[
        int, typer.Option("--top", min=1, help="Structures in the ranking, stress and compliance tables.")
    ] = 10,
    json_out: JsonOpt = False,
) -> None:
    """A design request as the desk view in PostgreSQL holds it: status and timeline, top structures, stress,
    suitability, compliance, the recommendation and its documents. Exit code 1 for an unknown request."""
    import asyncio

    import asyncpg

    from risklab import queries
    from risklab.settings import load_settings
    from risklab.structured_show import print_view

    async def read() -> dict[str, Any] | None:
        async with queries.connection(load_settings()) as conn:
            return await queries.structured_request(conn, request_id)

    try:
        view = asyncio.run(read())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _fail(f"cannot read the desk view from PostgreSQL: {exc}") from None
    if view is None:
        raise _fail(f"no structured design request {request_id!r} in the desk view")
    if json_out:
        _print_json(view)
        return
    print_view(view, console, top=top)
