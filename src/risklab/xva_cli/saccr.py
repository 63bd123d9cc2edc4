"""`risklab xva saccr`: SA-CCR exposure at default of netting sets given as JSON files.

`risklab xva saccr <netting-set.json>` reads one netting set, a list of them or `{"netting_sets": [...]}`
(the model is `engines.xva.saccr_models.NettingSet`) and prints, per netting set, the replacement cost,
the PFE multiplier, the add-ons by asset class and hedging set, and the exposure at default; with
`--json`, only the engine's results as JSON on stdout. A file that cannot be read or holds invalid data
ends with one line naming the file and the field (exit code 1), never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from risklab.cli_output import console, fail
from risklab.xva_cli.common import JsonOpt, xva_app

if TYPE_CHECKING:  # the engine (numpy, pydantic models) is imported by the command only, so `--help` stays fast
    from engines.xva.saccr_models import NettingSet, SaccrResult

class NettingSetFileError(ValueError):
    """A netting-set file that cannot be read or does not hold valid netting sets; the message names file and field."""


def load_netting_sets(path: Path) -> list[NettingSet]:
    """The netting sets of a file: one object, a list, or {"netting_sets": [...]}; errors name file and field."""
    from engines.registry import InvalidInputs, parse_model
    from engines.xva.saccr_models import NettingSet

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NettingSetFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NettingSetFileError(f"{path}: is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NettingSetFileError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NettingSetFileError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if isinstance(data, dict) and "netting_sets" in data:
        if set(data) != {"netting_sets"}:
            extra = sorted(set(data) - {"netting_sets"})[0]
            raise NettingSetFileError(f"{path}: {extra}: not a known field beside netting_sets")
        items, prefix = data["netting_sets"], "netting_sets"
    elif isinstance(data, list):
        items, prefix = data, ""
    elif isinstance(data, dict):
        items, prefix = [data], None
    else:
        raise NettingSetFileError(
            f'{path}: holds {type(data).__name__}; give a netting set, a list or {{"netting_sets": [...]}}'
        )
    if not isinstance(items, list) or not items:
        raise NettingSetFileError(f"{path}: {prefix or 'the file'}: give a non-empty list of netting sets")
    out = []
    for i, item in enumerate(items):
        where = "" if prefix is None else f"{prefix}[{i}]"
        try:
            out.append(parse_model(NettingSet, item, where))
        except InvalidInputs as exc:
            raise NettingSetFileError(f"{path}: {exc.field}: {exc.reason}") from None
    return out


def _amount(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _print_result(r: SaccrResult) -> None:
    summary = Table(title=f"SA-CCR — {r.netting_set_id} ({r.currency})", box=box.SIMPLE_HEAVY, show_header=False)
    summary.add_column("", style="bold")
    summary.add_column("", justify="right")
    rows: list[tuple[str, str]] = [
        ("margined", "yes" if r.margined else "no"),
        ("value V", _amount(r.value)),
        ("net collateral C", _amount(r.net_collateral)),
        ("replacement cost", _amount(r.replacement_cost)),
        ("PFE multiplier", f"{r.pfe_multiplier:.4f}"),
        ("aggregate add-on", _amount(r.add_on)),
        ("PFE", _amount(r.pfe)),
    ]
    if r.margined:
        rows += [
            ("MPOR (business days)", str(r.mpor_business_days)),
            ("maturity factor", f"{r.maturity_factor:.4f}"),
            ("unmargined EAD (cap)", _amount(r.unmargined_ead)),
        ]
    rows.append(("EAD", f"[bold]{_amount(r.ead)}[/]" + (" (capped at the unmargined EAD)" if r.capped else "")))
    for label, value in rows:
        summary.add_row(label, value)
    console.print(summary)
    table = Table(title="Add-ons by asset class and hedging set", box=box.SIMPLE)
    for col, justify in (
        ("asset class", "left"),
        ("hedging set", "left"),
        ("risk factor", "left"),
        ("effective notional", "right"),
        ("add-on", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for cls, total in r.add_ons.items():
        table.add_row(f"[bold]{cls}[/]", "", "", "", f"[bold]{_amount(total)}[/]")
        for hs in (h for h in r.hedging_sets if h.asset_class == cls):
            table.add_row("", escape(hs.hedging_set), "", "", _amount(hs.add_on))
            for name, en in hs.effective_notionals.items():
                table.add_row("", "", escape(name), _amount(en), _amount(hs.risk_factor_add_ons[name]))
    console.print(table)


@xva_app.command("saccr")
def saccr_command(
    path: Annotated[
        Path, typer.Argument(help='Netting set JSON: one netting set, a list, or {"netting_sets": [...]}.')
    ],
    json_out: JsonOpt = False,
) -> None:
    """SA-CCR exposure at default (CRE52): replacement cost, PFE multiplier, add-ons by hedging set, EAD."""
    from engines.xva.saccr import saccr

    try:
        netting_sets = load_netting_sets(path)
    except NettingSetFileError as exc:
        raise fail(str(exc)) from None
    results = [saccr(ns) for ns in netting_sets]
    if json_out:
        payload: dict[str, Any] = {"results": [r.to_dict() for r in results], "total_ead": sum(r.ead for r in results)}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    for r in results:
        _print_result(r)
    if len(results) > 1:
        console.print(f"[bold]Total EAD of {len(results)} netting sets:[/] {_amount(sum(r.ead for r in results))}")
