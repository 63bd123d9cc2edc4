"""Speed and memory of the XVA engine on the sample book, at the sizes of the desk's requirements.

    uv run python bench/xva.py --runs 3                   # every section, medians of 3 runs
    uv run python bench/xva.py --only full --runs 3 --paths 2000
    uv run python bench/xva.py --only ore --runs 1        # needs ORE in its own venv (see xva_reference_ore.py)

The sample book: 1,000 counterparties, 1,107 netting sets, 20,000 trades (swaps, cross-currency swaps, FX
forwards and options, swaptions, equity options and forwards, CDS), a mix of collateralised and not
(`engines.xva.generator.sample_book`), on the sample market (8 currencies, Hull–White per currency).

- full: the whole run (`book_xva.run_xva`): scenarios, valuation of every trade on every path and date,
  collateral, exposures, initial margin, credit paths and the wrong-way add-on, SA-CCR capital profiles, all
  adjustments and the BA-CVA capital, then the desk's 14 stresses. Target: 2,000 paths, ~80-100 dates, under
  300 s on 2 cores with peak memory under 8 GB. The generation of the book is not timed (`book_seconds`).
- whatif: one trade added to a netting set of about 200 trades on the cached paths (`XvaSession.what_if`,
  median of 5 calls after a first one). Target: under 1 s. `open_seconds` is the session's own run of the set.
- ore: the 10-swap, one-counterparty portfolio priced by this engine and by the Open Source Risk Engine at
  the same paths and dates in one run (`xva_reference_ore.compare`): both times and both CVAs. Needs ORE's
  Python at `RISKLAB_ORE_PYTHON` (default /tmp/orevenv/bin/python); without it the section says so.
Each section runs in a fresh subprocess so that its peak resident memory is its own.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import section_runner

# bench/ leaves the path: its bus.py would shadow the bus package
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def _book() -> tuple[object, object, float]:
    from engines.xva.generator import sample_book
    from engines.xva.market import sample_market

    t0 = time.perf_counter()
    market = sample_market()
    book = sample_book(market=market)
    return book, market, time.perf_counter() - t0


def section_full(paths: int) -> dict:
    from engines.xva.book_xva import XvaRunOptions, run_xva

    book, market, book_seconds = _book()
    t0 = time.perf_counter()
    result = run_xva(book, market, XvaRunOptions(paths=paths, seed=1))
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    report = result.stress()
    stress_seconds = time.perf_counter() - t1
    totals = result.totals()
    return {
        "paths": paths,
        "exposure_dates": result.exposure_dates,
        "netting_sets": len(result.parts.ids),
        "trades": len(book.trades),
        "run_seconds": seconds,
        **{f"{k}_seconds": v for k, v in result.seconds.items() if k != "total"},
        "stress_seconds": stress_seconds,
        "stress_scenarios": len(report.scenarios),
        "book_seconds": book_seconds,
        **{f"{k}_usd_m": totals[k] / 1e6 for k in ("cva", "dva", "fva", "mva", "kva", "wrong_way", "total")},
        "cva_stderr_usd_m": totals["cva_stderr"] / 1e6,
        "ead_usd_m": totals["ead"] / 1e6,
        "ba_cva_capital_usd_m": totals["ba_cva_capital"] / 1e6,
    }


def section_whatif(paths: int) -> dict:
    from engines.xva.book_xva import XvaRunOptions, XvaSession

    book, market, _ = _book()
    by_set = book.trades_by_netting_set()
    target = min(by_set, key=lambda ns: abs(len(by_set[ns]) - 200))
    t0 = time.perf_counter()
    session = XvaSession.open(book, market, XvaRunOptions(paths=paths, seed=1), netting_sets=[target])
    open_seconds = time.perf_counter() - t0
    template = next(book.trades[i] for i in by_set[target] if book.trades[i].type == "irs")
    change = {"action": "add", "trade": {**template.model_dump(mode="json"), "trade_id": "BENCH-WHATIF"}}
    first = session.what_if(change)
    times = [session.what_if(change).seconds for _ in range(5)]
    return {
        "paths": paths,
        "netting_set_trades": len(by_set[target]),
        "first_call_seconds": first.seconds,
        "whatif_seconds": statistics.median(times),
        "open_seconds": open_seconds,
        "total_change_usd": first.difference["total_with_wrong_way"],
        "ead_change_usd": first.difference["ead"],
    }


def section_ore(paths: int) -> dict:
    python = os.environ.get("RISKLAB_ORE_PYTHON", "/tmp/orevenv/bin/python")
    if not Path(python).exists():
        print(f"ore: no ORE Python at {python}; set RISKLAB_ORE_PYTHON (bench/xva_reference_ore.py)", file=sys.stderr)
        return {"paths": paths, "ore_available": 0}
    sys.path.insert(0, str(HERE))
    from xva_reference_ore import compare

    return {"ore_available": 1, **compare(python, paths)}


SECTIONS = {
    "full": (section_full, 2000),
    "whatif": (section_whatif, 2000),
    "ore": (section_ore, 2000),
}

if __name__ == "__main__":
    section_runner.main(
        __file__,
        "Speed and memory of the XVA engine on the sample book.",
        SECTIONS,
        size_flag="--paths",
        size_help="Monte Carlo paths (default 2,000 in every section).",
    )
