"""Speed and memory of the margin engine on the sample book, at the sizes of the desk's requirements.

    uv run python bench/margin.py --runs 3                       # every section, medians of 3 runs
    uv run python bench/margin.py --only avalanche --runs 3

The sample book: 30 managers, 70 strategies, 5,000 positions over 200 venues (50 CCPs, 150 bilateral
counterparties), 107 risk factors with 2,520 days of history (`engines.margin.generator.sample`).

- baseline: initial margin of every venue (FHS VaR/ES with APC and add-ons at the 50 CCPs, SIMM at the
  150 counterparties) and today's VM (target: under 5 s on 2 cores). `first_call_seconds` is the first
  call in a fresh process (numba's cached kernels load, the SIMM calibration is read);
  `warm_seconds` the median of three more calls.
- stress: baseline and stressed margin under vol ×2, ×5, ×10 and correlation breakdown.
- avalanche: 10,000 paths × 240 hourly steps × 200 venues with the liquidation feedback (target: under
  120 s on 2 cores, peak memory under 8 GB), from the prepared model (the baseline it starts from is
  timed apart).
- reverse: the reverse stress search, 1,000 iterations (target: under 120 s).
Each section runs in a fresh subprocess so that its peak resident memory is its own; the generation of
the sample book is not timed (`book_seconds` shows it).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import section_runner

# bench/ leaves the path: its bus.py would shadow the bus package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def _book() -> tuple[object, float]:
    from engines.margin.generator import sample

    t0 = time.perf_counter()
    loaded = sample()
    return loaded, time.perf_counter() - t0


def section_baseline(_: int) -> dict:
    from engines.margin.baseline import baseline_margin

    loaded, book_seconds = _book()
    t0 = time.perf_counter()
    base = baseline_margin(loaded)
    first = time.perf_counter() - t0
    warm = []
    for _ in range(3):
        t0 = time.perf_counter()
        baseline_margin(loaded)
        warm.append(time.perf_counter() - t0)
    f, v, p, _ = loaded.arrays.shape
    ccp = loaded.arrays.venue_is_ccp
    return {
        "positions": p,
        "venues": v,
        "factors": f,
        "book_seconds": book_seconds,
        "first_call_seconds": first,
        "warm_seconds": statistics.median(warm),
        "total_im_musd": float(base.venue_im_usd.sum()) / 1e6,
        "ccp_im_musd": float(base.venue_im_usd[ccp].sum()) / 1e6,
        "bilateral_im_musd": float(base.venue_im_usd[~ccp].sum()) / 1e6,
    }


def section_stress(_: int) -> dict:
    from engines.margin.baseline import baseline_margin
    from engines.margin.stressed import stressed_margin

    loaded, _ = _book()
    base = baseline_margin(loaded)
    t0 = time.perf_counter()
    stressed = stressed_margin(loaded, multipliers=(2, 5, 10), correlation_breakdown=True, baseline=base)
    seconds = time.perf_counter() - t0
    out: dict = {"seconds": seconds, "baseline_im_musd": float(base.venue_im_usd.sum()) / 1e6}
    for name, total in zip(stressed.names, stressed.total_usd, strict=True):
        out[f"{name.replace(' ', '_').replace('+', 'and')}_musd"] = float(total) / 1e6
    return out


def section_avalanche(paths: int) -> dict:
    from engines.margin.avalanche import AvalancheSettings, prepare_book, simulate_avalanche

    loaded, _ = _book()
    settings = AvalancheSettings(paths=paths, hours=240, feedback=True)
    t0 = time.perf_counter()
    model = prepare_book(loaded, settings)
    prepare_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = simulate_avalanche(None, None, None, None, model=model)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    summary = result.summary()
    calls, exhaustion = summary["peak_calls_usd"], summary["exhaustion"]
    return {
        "paths": paths,
        "hours": settings.hours,
        "venues": len(loaded.arrays.venues),
        "prepare_seconds": prepare_seconds,
        "simulate_seconds": seconds,
        "path_hours_per_s": paths * settings.hours / seconds,
        "peak_calls_mean_musd": calls["mean"] / 1e6,
        "peak_calls_p99_musd": calls["p99"] / 1e6,
        "peak_calls_p99_9_musd": calls["p99.9"] / 1e6,
        "peak_need_p99_musd": summary["peak_need_usd"]["p99"] / 1e6,
        "p_exhaust": exhaustion["probability"]["p"],
        "max_conservation_residual_usd": summary["conservation"]["max_abs_residual_usd"],
    }


def section_reverse(iterations: int) -> dict:
    from engines.margin.reverse_stress import reverse_stress_of_book

    loaded, _ = _book()
    t0 = time.perf_counter()
    result = reverse_stress_of_book(loaded, iterations=iterations, seed=2026)
    seconds = time.perf_counter() - t0
    summary = result.summary()
    return {
        "iterations": iterations,
        "seconds": seconds,
        **{k: v for k, v in summary.items() if isinstance(v, int | float)},
    }


SECTIONS = {
    "baseline": (section_baseline, 0),
    "stress": (section_stress, 0),
    "avalanche": (section_avalanche, 10_000),
    "reverse": (section_reverse, 1_000),
}


if __name__ == "__main__":
    section_runner.main(
        __file__,
        __doc__.splitlines()[0],
        SECTIONS,
        size_flag="--size",
        size_help="Override paths (avalanche) or iterations (reverse).",
    )
