"""`risklab margin simm <crif.csv>`: ISDA SIMM initial margin of a CRIF file, one netting set per
PortfolioID, as a table by product class and risk class (delta, vega, curvature, base correlation),
or with `--json` the compute kind's result (`margin.simm`) on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich import box
from rich.table import Table

from risklab.margin_cli.common import OPTION_ERROR, JsonOpt, console, fail, margin_app, print_json

if TYPE_CHECKING:
    from engines.margin.simm import SimmResult

CrifArg = Annotated[Path, typer.Argument(help="CRIF file (CSV with a header: RiskType, Qualifier, AmountUSD, ...).")]
ParametersOpt = Annotated[
    str | None,
    typer.Option("--parameters", help="SIMM version of the parameter file, e.g. 2.6 (default: the engine's default)."),
]
SideOpt = Annotated[
    Literal["call", "post"],
    typer.Option("--side", help="call: margin to collect (sensitivities as given); post: to post (negated)."),
]
CurrencyOpt = Annotated[
    str, typer.Option("--calculation-currency", help="SIMM calculation currency (its Risk_FX is left out).")
]

MARGIN_TYPES = ("Delta", "Vega", "Curvature", "BaseCorr")


def _usd(value: float) -> str:
    """Two decimals with k, m or bn (the JSON output has the exact figures)."""
    for scale, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:,.2f}{suffix}"
    return f"{value:,.2f}"


def _table(portfolio: str, result: SimmResult) -> Table:
    table = Table(
        title=f"SIMM {result.version} — {portfolio or '(no PortfolioID)'} — {result.side} side, USD",
        title_justify="left",
        box=box.SIMPLE_HEAVY,
        pad_edge=False,
        caption=f"{result.records_used} records; product classes aggregate risk classes with ψ and add up"
        + "".join(f"; {n} left out: {why}" for why, n in result.records_ignored.items()),
    )
    table.add_column("Class", no_wrap=True)
    for mt in MARGIN_TYPES:
        table.add_column(mt, justify="right")
    table.add_column("Margin", justify="right", style="bold")
    for pc_name, pc in result.product_classes.items():
        cells = [_usd(pc.margin_types_usd[mt]) if mt in pc.margin_types_usd else "" for mt in MARGIN_TYPES]
        label = pc_name + (" (×multiplier)" if pc.additional_usd else "")
        table.add_row(label, *cells, _usd(pc.margin_usd), style="bold")
        for rc_name, rc in pc.risk_classes.items():
            cells = [_usd(rc.margin_types_usd[mt]) if mt in rc.margin_types_usd else "" for mt in MARGIN_TYPES]
            table.add_row(f"  {rc_name}", *cells, _usd(rc.margin_usd))
    for name, value in result.add_ons_usd.items():
        table.add_row(f"{name} add-on", *[""] * len(MARGIN_TYPES), _usd(value))
    table.add_row("Total", *[""] * len(MARGIN_TYPES), _usd(result.total_usd), style="bold", end_section=True)
    return table


@margin_app.command("simm")
def simm_command(
    crif: CrifArg,
    as_json: JsonOpt = False,
    parameters: ParametersOpt = None,
    side: SideOpt = "call",
    calculation_currency: CurrencyOpt = "USD",
) -> None:
    """ISDA SIMM initial margin of a CRIF file, per portfolio."""
    from engines.margin.simm import CrifFileError, SimmInputError, read_crif, simm_by_portfolio
    from engines.margin.simm.parameters import DEFAULT_VERSION, available_versions, load_parameters

    version = parameters or DEFAULT_VERSION
    if version not in available_versions():
        raise fail(f"--parameters: no SIMM parameters for {version!r}; available: {', '.join(available_versions())}",
                   OPTION_ERROR)  # fmt: skip
    currency = calculation_currency.upper()
    if len(currency) != 3 or not currency.isalpha():
        raise fail(f"--calculation-currency: a currency code such as USD, got {calculation_currency!r}", OPTION_ERROR)
    try:
        records = read_crif(crif)
        results = simm_by_portfolio(records, load_parameters(version), side=side, calculation_currency=currency)
    except (CrifFileError, SimmInputError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        from engines.margin.compute.simm import report

        print_json(report(results, version, side, currency))
        return
    if not results:
        console.print(f"{crif.name}: no records")
        return
    for name, result in results.items():
        console.print(_table(name, result))
    if len(results) > 1:
        total = sum(r.total_usd for r in results.values())
        console.print(f"[bold]{len(results)} portfolios, each its own netting set: {_usd(total)} USD in all[/]")
