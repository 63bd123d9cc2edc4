"""Speed and memory of the structured-products engine, at the sizes of the desk's requirements.

    uv run python bench/structured.py --runs 3                  # all three, medians of 3 runs
    uv run python bench/structured.py --only lab --runs 5

- (a) lab: 75 variations of a 3-underlying worst-of autocallable, quarterly over 5 years, 10,000
  paths each, prices plus delta and vega per underlying (target: under 3 s on 2 cores);
- (b) stress: the full grid, 75 variations × 320 scenarios × 10,000 paths (target: under 90 s);
- (c) kernel: path-steps per second against QuantLib's MC basket engine on the same worst-of put
  at the same number of paths, in one run (target: at least 5× QuantLib). Both sides do the same
  work: draw, build the paths, evaluate the payoff, return the mean and its standard error (ours
  through the engine's pricing core `run_group`, without the distribution outputs `price` adds).
Each section runs in a fresh subprocess so its peak resident memory is its own; the first run of
a section also pays numba's compilation unless the cache is warm, so a warm-up run precedes the
timed ones. Market: the bundled sample (Black–Scholes on ATM vols; the stress grid's skew
scenarios use the sample's implied-vol surfaces).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import section_runner

# bench/ leaves the path: its bus.py would shadow the bus package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

UNDERLYINGS = ["SX5E", "SPX", "NKY"]


def _market():
    from risklab.structured_samples import sample_market

    return sample_market()


def _base():
    from engines.structured.spec import AutocallSpec

    return AutocallSpec(
        name="bench",
        underlyings=UNDERLYINGS,
        maturity_years=5.0,
        schedule={"frequency": "quarterly"},
        coupon={"rate": 0.07, "conditional": True, "barrier": 0.7, "memory": True},
        autocall={"trigger": 1.0, "step_down": 0.025, "floor": 0.8, "no_call_observations": 3},
        knock_in={"barrier": 0.6, "monitoring": "european"},
        funding_spread=0.008,
    )


def section_lab(paths: int) -> dict:
    from engines.structured.lab import variations
    from engines.structured.pricing import PricingOptions, price_many

    market, specs = _market(), variations(_base())
    options = PricingOptions(paths=paths, greeks=["delta", "vega"], sampler="pseudo")
    price_many(specs[:1], market, options.model_copy(update={"paths": 4096}))  # compile / load the cache
    t0 = time.perf_counter()
    results = price_many(specs, market, options)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "variations": len(specs),
        "paths": paths,
        "price_0": results[0].price,
        "stderr_0": results[0].stderr,
    }


def section_stress(paths: int) -> dict:
    from engines.structured.lab import variations
    from engines.structured.pricing import PricingOptions
    from engines.structured.stress import default_scenarios, stress_test

    market, specs = _market(), variations(_base())
    options = PricingOptions(paths=paths, sampler="pseudo")
    scenarios = default_scenarios()
    stress_test(specs[:1], market, options.model_copy(update={"paths": 4096}), scenarios[:6])  # warm up
    t0 = time.perf_counter()
    report = stress_test(specs, market, options, scenarios)
    seconds = time.perf_counter() - t0
    cars = [r.capital_at_risk for r in report.results]
    return {
        "seconds": seconds,
        "variations": len(specs),
        "scenarios": len(scenarios),
        "paths": paths,
        "passing": sum(r.passes for r in report.results),
        "capital_at_risk_median": statistics.median(cars),
    }


def section_kernel(paths: int) -> dict:
    import numpy as np
    import QuantLib as ql

    from engines.structured.market import Curve, MarketData, UnderlyingMarket
    from engines.structured.pricing import mean_and_stderr
    from engines.structured.simulation import Shift, make_groups, run_group
    from engines.structured.spec import AutocallSpec

    vols, rho, r, strike = (0.20, 0.25, 0.30), 0.5, 0.03, 1.0
    names = ["A", "B", "C"]
    corr = [[1.0 if i == j else rho for j in range(3)] for i in range(3)]
    market = MarketData(
        rates=Curve.flat(r),
        underlyings={n: UnderlyingMarket(spot=100.0, volatility=v) for n, v in zip(names, vols, strict=True)},
        correlation=corr,
    )
    put_note = AutocallSpec(
        underlyings=names,
        maturity_years=1.0,
        schedule={"dates": [1.0]},
        autocall={"triggers": [None]},
        coupon={"rate": 0.0},
        knock_in=None,
        strike=strike,
    )
    group = make_groups([put_note], market, "bs")[0]

    def ours() -> tuple[float, float]:  # the pricing core: draws, paths, payoff, mean and standard error
        run = run_group(group, market, [Shift()], paths=paths, seed=42, sampler="pseudo", antithetic=True)
        mean, se = mean_and_stderr(run.pv_red[0, 0], run.pairs)
        return float(mean), float(se)

    run_group(group, market, [Shift()], paths=65_536, seed=1)  # compile, load the cache, start the draw threads
    t0 = time.perf_counter()
    value, value_se = ours()
    ours_seconds = time.perf_counter() - t0
    df = np.exp(-r)
    ours_put = 100 * strike * (df - value)

    today = ql.Date(2, 1, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    rate = ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc))
    div = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    procs = [
        ql.BlackScholesMertonProcess(
            ql.QuoteHandle(ql.SimpleQuote(100.0)),
            div,
            rate,
            ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), v, dc)),
        )
        for v in vols
    ]
    process = ql.StochasticProcessArray(procs, corr)
    option = ql.BasketOption(
        ql.MinBasketPayoff(ql.PlainVanillaPayoff(ql.Option.Put, 100.0 * strike)), ql.EuropeanExercise(today + 365)
    )
    option.setPricingEngine(
        ql.MCEuropeanBasketEngine(process, "pseudorandom", timeSteps=1, requiredSamples=paths, seed=42)
    )
    t0 = time.perf_counter()
    ql_put = option.NPV()
    ql_seconds = time.perf_counter() - t0
    steps = paths * 1 * 3
    return {
        "paths": paths,
        "ours_seconds": ours_seconds,
        "quantlib_seconds": ql_seconds,
        "ours_path_steps_per_s": steps / ours_seconds,
        "quantlib_path_steps_per_s": steps / ql_seconds,
        "speedup": ql_seconds / ours_seconds,
        "ours_put": ours_put,
        "ours_put_se": 100 * value_se,
        "quantlib_put": ql_put,
        "quantlib_put_se": option.errorEstimate(),
    }


SECTIONS = {"lab": (section_lab, 10_000), "stress": (section_stress, 10_000), "kernel": (section_kernel, 1_000_000)}


if __name__ == "__main__":
    section_runner.main(
        __file__, __doc__.splitlines()[0], SECTIONS, size_flag="--paths", size_help="Override the section's path count."
    )
