"""`risklab xva optimise`: compression, novation, CSA amendment and CVA hedge proposals for a book, ranked.

The book is run once keeping its paths (`XvaSession`); every candidate is then evaluated on those paths
(`engines.xva.optimisation`). The command prints the ranked candidates with their XVA, funding and capital
effect, and the integrated strategy re-evaluated as a whole; with `--json` the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from risklab.cli_output import OPTION_ERROR, JsonOpt, SeedOpt, console, engine_errors, fail, figures_table, print_json
from risklab.cli_output import progress as progress_bar
from risklab.xva_cli.book import BorrowOpt, GridOpt, LendOpt, MarketOpt, PathsOpt, _load, _options
from risklab.xva_cli.common import BookArg, xva_app

if TYPE_CHECKING:
    from engines.xva.optimisation import Candidate

TopOpt = Annotated[int, typer.Option("--top", min=1, help="Candidates listed, by benefit.")]
KindOpt = Annotated[
    list[str] | None,
    typer.Option("--kind", help="Candidate kinds (repeat): compression, novation, csa_amendment, cva_hedge."),
]
MaxOpt = Annotated[int, typer.Option("--max-candidates", min=1, help="Candidates evaluated per kind at most.")]


ACTIONS = {
    "pair": "compress",
    "netting_set": "compress all",
    "to_ccp": "novate",
    "add_csa": "add CSA",
    "zero_threshold": "zero thresh.",
    "lower_mta": "lower MTA",
    "exchange_im": "exchange IM",
    "single_name_cds": "CDS hedge",
    "index_cds": "index hedge",
}
"""Short labels of the candidates' actions for the table."""


def _k(value: float, unit: str = "") -> str:
    """USD in thousands, no decimals: candidates are often well below a million."""
    return f"{value / 1e3:,.0f}{unit}"


def _capital(c: Candidate) -> float:
    """The capital change shown: the book's BA-CVA for a hedge, K_CCR + stand-alone K_CVA otherwise."""
    ch = c.change
    return ch["ba_cva_capital"] if c.kind == "cva_hedge" else ch["k_ccr"] + ch["k_cva"]


@xva_app.command("optimise")
def optimise_command(
    book_arg: BookArg,
    market: MarketOpt = None,
    paths: PathsOpt = 2000,
    grid: GridOpt = None,
    seed: SeedOpt = 1,
    borrow_spread_bp: BorrowOpt = 60.0,
    lend_spread_bp: LendOpt = 40.0,
    top: TopOpt = 15,
    kind: KindOpt = None,
    max_candidates: MaxOpt = 40,
    json_out: JsonOpt = False,
) -> None:
    """XVA optimisation: compressions, novations to a CCP, CSA amendments and CVA hedges, ranked, and a strategy."""
    from engines.xva.book_xva import XvaSession
    from engines.xva.optimisation import KINDS, optimise

    kinds = tuple(kind) if kind else KINDS
    for k in kinds:
        if k not in KINDS:
            raise fail(f"--kind: {k!r} is not one of {', '.join(KINDS)}", OPTION_ERROR)
    options = _options(paths, seed, grid, borrow_spread_bp, lend_spread_bp)
    book, mkt = _load(book_arg, market)
    with progress_bar("netting sets", json_out) as report:
        session = engine_errors(lambda: XvaSession.open(book, mkt, options, progress=report))
    result = engine_errors(lambda: optimise(session, kinds=kinds, top=top, max_candidates=max_candidates))
    if json_out:
        print_json(result.to_dict())
        return
    b = result.book
    table = figures_table(
        f"Top {len(result.top_candidates)} of {len(result.candidates)} candidates, change in USD k — book XVA "
        f"{_k(b['total_xva'], 'k')}, gross notional {b['gross_notional'] / 1e9:,.1f}bn",
        ["#", "action", "set", "CVA", "funding", "KVA", "capital", "benefit"],
    )
    for c in result.top_candidates:
        ch = c.change
        sets = c.netting_set_ids[0] + (f" +{len(c.netting_set_ids) - 1}" if len(c.netting_set_ids) > 1 else "")
        table.add_row(
            str(c.rank), ACTIONS.get(c.action, c.action), sets, _k(ch["cva"]), _k(ch["funding"]),
            _k(ch["kva"] - c.kva_saving), _k(_capital(c)), _k(c.benefit),
        )  # fmt: skip
    console.print(table)
    for c in result.top_candidates[: min(5, top)]:
        console.print(f"{c.rank}. {c.description}", highlight=False)
    s = result.strategy
    strategy = figures_table(
        f"Integrated strategy: {len(s.candidates)} actions, re-evaluated together",
        ["", "before", "after", "change"],
    )
    change = s.change
    for label, key in (
        ("CVA", "cva"),
        ("DVA", "dva"),
        ("FCA", "fca"),
        ("FBA", "fba"),
        ("MVA", "mva"),
        ("KVA", "kva"),
        ("wrong-way add-on", "wrong_way"),
        ("total cost", "total_with_wrong_way"),
        ("funding (FCA - FBA + MVA)", "funding"),
        ("SA-CCR EAD", "ead"),
        ("CCR capital", "k_ccr"),
        ("BA-CVA capital", "ba_cva_capital"),
    ):
        strategy.add_row(label, _k(s.before[key], "k"), _k(s.after[key], "k"), _k(change[key], "k"))
    console.print(strategy)
    counts: dict[str, int] = {}
    for c in s.candidates:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    console.print(
        f"strategy: {', '.join(f'{n} {k}' for k, n in counts.items()) or 'nothing worth doing'}; benefit "
        f"{_k(s.benefit, 'k')} USD = {s.benefit_bp_of_xva:,.1f} bp of the book's XVA, "
        f"{s.benefit_bp_of_notional:,.2f} bp of gross notional (hedge KVA saving {_k(s.kva_saving, 'k')}, "
        f"carry {_k(s.carry, 'k')}; compressions settle {_k(s.settlement_today, 'k')} in cash today)",
        highlight=False,
    )
    console.print(f"{result.evaluations} evaluations, {result.seconds:.1f} s on the cached paths", highlight=False)
