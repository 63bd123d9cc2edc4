"""The `risklab xva` typer app and what its commands share."""

from __future__ import annotations

from typing import Annotated

import typer

from risklab.cli_output import JsonOpt

xva_app = typer.Typer(
    help="XVA desk: exposures, CVA/DVA/FVA/MVA/KVA, SA-CCR and BA-CVA capital, what-if and stresses of a book.",
    no_args_is_help=True,
)

BookArg = Annotated[
    str, typer.Argument(help="Book JSON file (`risklab xva sample DIR` writes one) or 'sample' for the generated book.")
]

__all__ = ["BookArg", "JsonOpt", "xva_app"]
