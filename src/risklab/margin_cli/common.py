"""What the `risklab margin` commands share: the typer app, and the CLI output helpers (`risklab.cli_output`)."""

from __future__ import annotations

import typer

from risklab.cli_output import (
    DATA_ERROR,
    OPTION_ERROR,
    JsonOpt,
    Progressor,
    SeedOpt,
    console,
    engine_errors,
    err,
    fail,
    figures_table,
    jsonable,
    money,
    print_json,
    progress,
)

margin_app = typer.Typer(
    help="Margin: CCP and SIMM initial margin, stress, the avalanche simulation, liquidity and reverse stress.",
    no_args_is_help=True,
)

__all__ = [
    "DATA_ERROR",
    "OPTION_ERROR",
    "JsonOpt",
    "Progressor",
    "SeedOpt",
    "console",
    "engine_errors",
    "err",
    "fail",
    "figures_table",
    "jsonable",
    "margin_app",
    "money",
    "print_json",
    "progress",
]
