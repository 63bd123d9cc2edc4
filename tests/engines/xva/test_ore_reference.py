"""Our exposure and CVA of a 10-swap netting set against the Open Source Risk Engine (ORE) as the reference.

`fixtures/ore_swap_portfolio.json` is written by `bench/xva_reference_ore.py --write-fixture` (its docstring has
the commands and the portfolio): ORE 1.8.17.0 on 20,000 Mersenne-Twister paths, USD only, Hull–White with
constant mean reversion and σ (ORE's LGM in its Hull–White parametrisation, not calibrated), 10 fixed/float
swaps in one uncollateralised netting set, one counterparty with a flat hazard rate and recovery 40%. The
fixture holds the market and book as our models' fields, the exposure grid (every coupon date, so fixings and
payments fall on simulation dates in both engines), ORE's trade NPVs today, its discounted EPE per date with
its own standard error (from its netting-set cube) and its CVA with its standard error.

Like for like: EPE here is the discounted expected positive exposure E[max(V(t), 0) / N(t)] — ORE deflates by
the LGM numeraire, we by the bank account; the expectation is the price of max(V(t), 0) paid at t in both, but
the undiscounted EE is not (it depends on the measure), so it is not compared. The CVA is LGD Σ EPE(t_i)
[S(t_{i-1}) − S(t_i)] in both engines with the same survival curve.

Tolerances, in standard errors of the difference, se = √(se_ours² + se_ORE²) per date (each engine's own
sample standard error of its discounted positive exposure):

- today's trade values are deterministic and must equal ORE's NPVs to 1e-9 relative: the same curve, schedules,
  day counts and running fixings;
- EPE on each of the 60 dates within K = 4 standard errors: under no bias a |z| above 4 has probability 6e-5,
  so a false alarm over 60 (correlated) dates has probability below 0.4%, while a model mismatch (a wrong
  drift, numeraire or fixing convention) grows with the horizon and shows as many standard errors at these
  path counts (ORE's simulated curves on month tenors, whose pillars it misdates by a day or two, gave 7 to 10
  standard errors on single dates);
- CVA within K standard errors of the difference too, each engine's CVA error from its per-path CVA; the CVA
  sums all dates with their correlations, so it is the check of a small drift that no single date shows.

The seeds are fixed, so the test is deterministic; K guards against a change of our random stream.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from engines.xva.adjustments import cva, first_to_default
from engines.xva.exposure import ExposureChunk, run_exposures
from engines.xva.market import Market, bootstrap_hazard
from engines.xva.pricing import trade_values
from engines.xva.scenarios import simulate, time_grid
from engines.xva.trades import Book

FIXTURE = Path(__file__).parent / "fixtures" / "ore_swap_portfolio.json"
PATHS = 20_000
SEED = 11
K = 4.0


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def portfolio(reference: dict) -> tuple[Market, Book]:
    return Market.model_validate(reference["market"]), Book.model_validate(reference["book"])


@pytest.fixture(scope="module")
def ours(reference: dict, portfolio: tuple[Market, Book]) -> dict:
    """Our discounted EPE and CVA on the fixture's grid, each with its standard error from the paths."""
    market, book = portfolio
    chunks: list[ExposureChunk] = []
    run = run_exposures(book, market, grid=reference["grid"], paths=PATHS, seed=SEED, with_credit=False,
                        on_chunk=chunks.append)  # fmt: skip
    ns, cp = reference["netting_set_id"], reference["counterparty_id"]
    chunk = chunks[0]
    assert chunk.discount is not None
    disc_pos = chunk.positive[chunk.netting_set_ids.index(ns)] * chunk.discount  # [date, path]
    times = run.scenarios.grid.exposure_times
    hazard = bootstrap_hazard(book.counterparty(cp).credit_curve, market.as_of, market.currencies["USD"].discount)
    survival = hazard.survival(times)
    per_path = (1.0 - hazard.recovery) * first_to_default(survival, None) @ disc_pos
    return {
        "dates": [d.item() for d in run.scenarios.grid.exposure_dates],
        "epe": run.profiles[ns].ee_discounted,
        "epe_stderr": disc_pos.std(axis=1, ddof=1) / math.sqrt(PATHS),
        "cva": float(cva(times, run.profiles[ns].ee_discounted, survival, hazard.recovery)),
        "cva_stderr": float(per_path.std(ddof=1) / math.sqrt(PATHS)),
        "hazard": hazard.hazards,
    }


def test_the_grid_and_the_credit_curve_are_ores(reference: dict, ours: dict) -> None:
    assert [d.isoformat() for d in ours["dates"]] == reference["dates"]
    np.testing.assert_allclose(ours["hazard"], [reference["hazard_rate"]], rtol=1e-12)


def test_todays_trade_values_equal_ores_npvs(reference: dict, portfolio: tuple[Market, Book]) -> None:
    market, book = portfolio
    scen = simulate(market, time_grid(reference["grid"], market.as_of), 1, seed=SEED)
    values = trade_values(book.trades, scen)[:, 0, 0]
    for trade, value in zip(book.trades, values, strict=True):
        want = reference["npv"][trade.trade_id]
        assert value == pytest.approx(want, rel=1e-9, abs=1e-4), f"{trade.trade_id}: {value:.6f} vs ORE {want:.6f}"


def test_discounted_epe_matches_ore_within_k_standard_errors(reference: dict, ours: dict) -> None:
    ore = np.asarray(reference["epe"])
    mine = ours["epe"]
    assert mine[0] == pytest.approx(ore[0], abs=0.005)  # today: max(V(0), 0), deterministic (ORE prints cents)
    se = np.sqrt(ours["epe_stderr"] ** 2 + np.asarray(reference["epe_stderr"]) ** 2)[1:]
    diff = (mine - ore)[1:]
    exact = se == 0  # after the last payment both are zero on every path
    assert np.all(diff[exact] == 0.0)
    z = diff[~exact] / se[~exact]
    worst = int(np.argmax(np.abs(z)))
    date_worst = np.asarray(reference["dates"][1:])[~exact][worst]
    assert np.max(np.abs(z)) < K, f"EPE on {date_worst}: {z[worst]:+.2f} standard errors (all: {np.round(z, 2)})"


def test_cva_matches_ore_within_k_standard_errors(reference: dict, ours: dict) -> None:
    se = math.hypot(ours["cva_stderr"], reference["cva_stderr"])
    z = (ours["cva"] - reference["cva"]) / se
    assert abs(z) < K, f"CVA {ours['cva']:,.2f} vs ORE {reference['cva']:,.2f}: {z:+.2f} standard errors"
