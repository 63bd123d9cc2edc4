"""`risklab margin reverse-stress`: the most plausible market scenario that exhausts the book's liquidity
resources, searched by differential evolution over the historical covariance's principal components. With
`--json` it prints the result of the compute kind `margin.reverse_stress` on stdout; otherwise rich tables,
with a progress bar on stderr while the search runs. The engine is imported inside the command.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from risklab.margin_cli.book import DEFAULT_SEED, BookArg, load_book_arg
from risklab.margin_cli.common import JsonOpt, SeedOpt, console, fail, margin_app, money, print_json, progress


@margin_app.command("reverse-stress")
def reverse_stress_command(
    book: BookArg,
    iterations: Annotated[
        int, typer.Option("--iterations", min=1, max=100_000, help="Generations of the search.")
    ] = 1_000,
    population: Annotated[int, typer.Option("--population", min=8, max=4_096, help="Scenarios per generation.")] = 128,
    horizon: Annotated[int, typer.Option("--horizon", min=1, max=60, help="Stress horizon in business days.")] = 10,
    seed: SeedOpt = DEFAULT_SEED,
    search_seed: Annotated[
        int | None,
        typer.Option("--search-seed", min=0, help="Seed of the search (default: --seed).", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
    top: Annotated[int, typer.Option("--top", min=1, max=100, help="Factor moves listed.")] = 10,
) -> None:
    """The most plausible scenario that exhausts liquidity resources (usable cash and the facility within the
    horizon): its distance under the historical covariance, its probability, the venues that break first and
    the replay of its need position by position. --seed picks the sample book and, unless --search-seed says
    otherwise, the search."""
    from engines.margin.compute.reverse_stress import reverse_stress_report

    loaded = load_book_arg(book, seed)
    used = seed if search_seed is None else search_seed
    with progress("reverse stress search", as_json) as report:
        try:
            data = reverse_stress_report(loaded, iterations=iterations, population=population, seed=used,
                                         horizon_days=horizon, progress=report)  # fmt: skip
        except ValueError as exc:
            raise fail(str(exc)) from None
    if as_json:
        print_json(data)
        return
    search = data["search"]
    if not data["found"]:
        console.print(
            f"[bold]No scenario within 40 standard deviations exhausts the resources[/] ({money(data['resources_usd'])}"
            f" within {data['horizon_days']} days) — {search['iterations']} generations, {search['seconds']:.1f} s",
            highlight=False,
        )
        return
    replay = data["replay"]
    console.print(
        f"[bold]Reverse stress as of {data['as_of']}[/]: a {data['horizon_days']}-day scenario at Mahalanobis "
        f"distance {data['distance']:.2f} exhausts {money(data['resources_usd'])} (usable cash + facility "
        f"within the horizon); probability of a move this large along it {data['half_space_probability']:.2e}, "
        f"chi-square tail over {data['dimensions']} dimensions {data['chi2_tail_probability']:.3f}",
        highlight=False,
    )
    console.print(
        f"replayed position by position: VM {money(replay['vm_usd'])} + IM increase "
        f"{money(replay['im_increase_usd'])} − credit {money(replay['vm_received_credit_usd'])} = "
        f"{money(replay['need_usd'])} → {'exhausts' if replay['exhausts'] else 'does NOT exhaust'} the resources; "
        f"breach on day {data['breach_day']} — {search['iterations']} generations × {search['population']}, "
        f"seed {search['seed']}, {search['seconds']:.1f} s",
        highlight=False,
    )
    moves = Table(title=f"Largest factor moves (top {top})", box=box.SIMPLE)
    for c in ("factor", "move", "σ (horizon)"):
        moves.add_column(c, justify="left" if c == "factor" else "right")
    for m in data["top_moves"][:top]:
        moves.add_row(m["factor"], f"{m['move']:+.4f}", f"{m['sigmas']:+.2f}")
    console.print(moves)
    venues = Table(title=f"Venues that break first (calls on day {data['breach_day']})", box=box.SIMPLE)
    for c in ("venue", "VM", "IM increase", "share of need"):
        venues.add_column(c, justify="left" if c == "venue" else "right")
    for v in data["breaking_venues"]:
        venues.add_row(v["venue"], money(v["vm_usd"]), money(v["im_increase_usd"]), f"{v['share']:.1%}")
    console.print(venues)
