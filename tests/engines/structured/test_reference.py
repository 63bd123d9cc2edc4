"""The autocallable engine against independent references: QuantLib 1.44, Black–Scholes closed forms and hand-computed
deterministic cash flows, plus the Monte Carlo's statistical properties (1/√N error, Sobol vs pseudo-random,
reproducibility).

Prices from the engine are fractions of notional with performance S_T/S_0 (strike fixing S_0 = spot = 100), so a
QuantLib price on S_0 = 100 is divided by 100 before comparing. Monte Carlo comparisons are within 3 standard errors
(combined as √(se₁² + se₂²) when both sides are simulated); the tolerance is stated in each assertion message.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from scipy.stats import norm

from engines.structured.market import CashDividend, Curve, MarketData, UnderlyingMarket
from engines.structured.pricing import PricingOptions, mean_and_stderr, price, price_many
from engines.structured.simulation import Group, Shift, product_table, run_group
from engines.structured.spec import AutocallSpec

SPOT = 100.0
NAMES = ("A", "B", "C")


# ---------------------------------------------------------------------------------------------
# Helpers: markets, the vanilla reductions of the note, closed forms and QuantLib instruments
# ---------------------------------------------------------------------------------------------


def flat_market(
    vols: tuple[float, ...] = (0.20,), r: float = 0.03, q: float = 0.01, rho: float = 0.0, names=NAMES
) -> MarketData:
    """Spots 100, flat rate r and dividend yield q, flat vols, one pairwise correlation rho."""
    n = len(vols)
    corr = [[1.0 if i == j else rho for j in range(n)] for i in range(n)]
    underlyings = {
        names[i]: UnderlyingMarket(spot=SPOT, dividend_yield=Curve.flat(q), volatility=vols[i]) for i in range(n)
    }
    return MarketData(rates=Curve.flat(r), underlyings=underlyings, correlation=corr)


def options(paths: int, seed: int = 7, sampler: str = "pseudo", antithetic: bool = True, **kw) -> PricingOptions:
    return PricingOptions(paths=paths, seed=seed, sampler=sampler, antithetic=antithetic, target_margin=None, **kw)


def put_note(names, strike: float = 1.0, maturity: float = 1.0, basket: str = "worst_of") -> AutocallSpec:
    """Never callable, no coupon, no barrier, one observation: PV = df·(1 − (K − b_T)⁺/K)."""
    return AutocallSpec(
        underlyings=list(names),
        basket=basket,
        maturity_years=maturity,
        schedule={"dates": [maturity]},
        autocall={"triggers": [None]},
        coupon={"rate": 0.0},
        knock_in=None,
        strike=strike,
    )


def barrier_note(names, barrier: float, monitoring: str, maturity: float = 1.0, callable_at_maturity: bool = True):
    """Strike 1, no coupon, one observation at maturity, knock-in barrier observed as `monitoring`."""
    return AutocallSpec(
        underlyings=list(names),
        maturity_years=maturity,
        schedule={"dates": [maturity]},
        autocall={"triggers": [1.0 if callable_at_maturity else None]},
        coupon={"rate": 0.0},
        knock_in={"barrier": barrier, "monitoring": monitoring},
        strike=1.0,
    )


def bs_put(s: float, k: float, r: float, q: float, vol: float, t: float) -> float:
    """Black–Scholes European put (scipy)."""
    d1 = (math.log(s / k) + (r - q + 0.5 * vol**2) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    return k * math.exp(-r * t) * norm.cdf(-d2) - s * math.exp(-q * t) * norm.cdf(-d1)


EVAL_DATE = ql.Date(2, 1, 2025)
DAY_COUNT = ql.Actual365Fixed()


def ql_process(spot: float, r: float, q: float, vol: float) -> ql.BlackScholesMertonProcess:
    ql.Settings.instance().evaluationDate = EVAL_DATE
    return ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(EVAL_DATE, q, DAY_COUNT, ql.Continuous)),
        ql.YieldTermStructureHandle(ql.FlatForward(EVAL_DATE, r, DAY_COUNT, ql.Continuous)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(EVAL_DATE, ql.NullCalendar(), vol, DAY_COUNT)),
    )


def ql_expiry(years: float) -> ql.Date:
    days = round(years * 365)
    assert abs(days - years * 365) < 1e-9, "QuantLib expiries here are whole days on Actual/365"
    return EVAL_DATE + days


def ql_european(payoff: ql.Payoff, process, years: float) -> float:
    option = ql.VanillaOption(payoff, ql.EuropeanExercise(ql_expiry(years)))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return option.NPV()


# ---------------------------------------------------------------------------------------------
# 1. Limit cases: the single-observation note as digitals and a (down-and-in) put
# ---------------------------------------------------------------------------------------------


def test_european_barrier_note_matches_quantlib_digitals() -> None:
    """B = 0.6, trigger 1.0 at maturity only, no coupon, one underlying.

    PV = df·(1{S_T ≥ S₀} + 1{B·S₀ ≤ S_T < S₀} + 1{S_T < B·S₀}·S_T/S₀)
       = cash-or-nothing call(S₀) + [cash-or-nothing call(B·S₀) − cash-or-nothing call(S₀)] + asset-or-nothing put(B·S₀)
    (cash amounts 1 per unit notional, i.e. S₀ on QuantLib's S₀ = 100, hence the division by 100).
    """
    r, q, vol, t, b = 0.03, 0.01, 0.30, 2.0, 0.6
    process = ql_process(SPOT, r, q, vol)
    con_call_at_par = ql_european(ql.CashOrNothingPayoff(ql.Option.Call, SPOT, SPOT), process, t)
    con_call_at_barrier = ql_european(ql.CashOrNothingPayoff(ql.Option.Call, b * SPOT, SPOT), process, t)
    aon_put_at_barrier = ql_european(ql.AssetOrNothingPayoff(ql.Option.Put, b * SPOT), process, t)
    reference = (con_call_at_par + (con_call_at_barrier - con_call_at_par) + aon_put_at_barrier) / SPOT

    # The reference itself, rebuilt from scipy: df·N(d2(B)) + e^{-qT}·N(-d1(B)).
    d1 = (math.log(1 / b) + (r - q + 0.5 * vol**2) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    closed_form = math.exp(-r * t) * norm.cdf(d2) + math.exp(-q * t) * norm.cdf(-d1)
    assert reference == pytest.approx(closed_form, abs=1e-12)

    res = price(barrier_note(["A"], b, "european", t), flat_market((vol,), r, q), options(200_000))
    tol = 3 * res.stderr
    assert abs(res.price - reference) <= tol, (
        f"engine {res.price:.6f} ± {res.stderr:.6f} vs QuantLib {reference:.6f}: "
        f"|diff| {abs(res.price - reference):.2e} > 3 SE = {tol:.2e}"
    )
    # Not a vacuous match: the knock-in leg is worth far more than the tolerance.
    assert math.exp(-r * t) - reference > 50 * tol


R_DI, Q_DI, VOL_DI, T_DI, B_DI = 0.03, 0.01, 0.20, 1.0, 0.8


@pytest.fixture(scope="module")
def down_and_in_reference() -> dict[str, float]:
    """QuantLib: analytic down-and-in put (K = 100, barrier 80) and the cash-or-nothing digitals at 100."""

    def di_put_npv(q: float) -> float:
        put = ql.BarrierOption(
            ql.Barrier.DownIn,
            B_DI * SPOT,
            0.0,
            ql.PlainVanillaPayoff(ql.Option.Put, SPOT),
            ql.EuropeanExercise(ql_expiry(T_DI)),
        )
        put.setPricingEngine(ql.AnalyticBarrierEngine(ql_process(SPOT, R_DI, q, VOL_DI)))
        return put.NPV()

    assert di_put_npv(0.0) == pytest.approx(4.690277, abs=1e-6)  # the q = 0 figure in the shared QuantLib notes
    process = ql_process(SPOT, R_DI, Q_DI, VOL_DI)
    di_put = di_put_npv(Q_DI) / SPOT
    con_call = ql_european(ql.CashOrNothingPayoff(ql.Option.Call, SPOT, SPOT), process, T_DI) / SPOT
    con_put = ql_european(ql.CashOrNothingPayoff(ql.Option.Put, SPOT, SPOT), process, T_DI) / SPOT
    # PV = df·1{S_T ≥ S₀} + df·1{S_T < S₀}·(1 − 1{KI}·(1 − S_T/S₀)) = CoN call + CoN put − DI put.
    note = con_call + con_put - di_put
    assert con_call + con_put == pytest.approx(math.exp(-R_DI * T_DI), abs=1e-12)
    return {"note": note, "di_put": di_put}


def test_continuous_knock_in_matches_quantlib_analytic_barrier(down_and_in_reference) -> None:
    """The public API with a fine grid (252 steps a year) and the bridge-corrected continuous barrier."""
    spec = barrier_note(["A"], B_DI, "continuous", T_DI)
    res = price(spec, flat_market((VOL_DI,), R_DI, Q_DI), options(200_000, steps_per_year=252))
    ref = down_and_in_reference["note"]
    tol = 3 * res.stderr + 1e-4
    assert abs(res.price - ref) <= tol, (
        f"engine {res.price:.6f} ± {res.stderr:.6f} vs QuantLib {ref:.6f} "
        f"(DI put {down_and_in_reference['di_put']:.6f}): |diff| {abs(res.price - ref):.2e} > 3 SE + 1e-4 = {tol:.2e}"
    )


def _run_on_grid(specs, market: MarketData, steps: int, paths: int, seed: int) -> list[tuple[float, float]]:
    """(price, stderr) of each spec on an explicit even grid of `steps` steps (the public API floors continuous
    monitoring at 52 steps a year, so coarse grids are built here); all specs share the same normals."""
    times = np.linspace(0.0, T_DI, steps + 1)
    group = Group(("A",), times, product_table(specs, times, market), "bs", indices=list(range(len(specs))))
    run = run_group(group, market, [Shift()], paths=paths, seed=seed, sampler="pseudo", antithetic=True)
    mean, se = mean_and_stderr(run.pv_red[0], run.pairs)  # no coupons: pv = pv_red
    return [(float(m), float(s)) for m, s in zip(mean, se, strict=True)]


def test_continuous_knock_in_bridge_converges_and_beats_discrete_monitoring(down_and_in_reference) -> None:
    """On grids of 4, 12, 52 and 252 steps (same seed, 200k antithetic paths), the Brownian-bridge-corrected
    continuous barrier stays within 3 SE (+1e-4) of the analytic value on every grid (it is exact for one
    underlying with constant vol), while the same paths checked only at the grid points ("daily" monitoring
    on that grid, no bridge) under-price the knock-in, with an error that shrinks as the grid refines."""
    market = flat_market((VOL_DI,), R_DI, Q_DI)
    specs = [barrier_note(["A"], B_DI, "continuous", T_DI), barrier_note(["A"], B_DI, "daily", T_DI)]
    ref = down_and_in_reference["note"]
    tolerances, discrete_err = [], []
    for steps in (4, 12, 52, 252):
        (p_bridge, se_bridge), (p_discrete, _) = _run_on_grid(specs, market, steps, 200_000, seed=11)
        tol = 3 * se_bridge + 1e-4
        assert abs(p_bridge - ref) <= tol, (
            f"{steps} steps: bridge-corrected {p_bridge:.6f} ± {se_bridge:.6f} vs QuantLib {ref:.6f}: "
            f"|diff| {abs(p_bridge - ref):.2e} > 3 SE + 1e-4 = {tol:.2e}"
        )
        tolerances.append(tol)
        discrete_err.append(p_discrete - ref)
    # Discrete monitoring misses crossings between dates: the note is worth more than under continuous monitoring,
    # by less as the grid refines (BGK: the effective barrier moves by ~0.5826·σ·√dt).
    assert all(e > 0 for e in discrete_err), f"discrete-monitoring errors {discrete_err}"
    assert discrete_err == sorted(discrete_err, reverse=True), f"discrete error does not shrink: {discrete_err}"
    # On the coarsest grid (4 steps) the bridge is within its tolerance while discrete monitoring is 10x further off.
    assert discrete_err[0] > 10 * tolerances[0], (
        f"4 steps: discrete error {discrete_err[0]:.2e} vs bridge tolerance {tolerances[0]:.2e}"
    )


# ---------------------------------------------------------------------------------------------
# 2. One underlying repeated with correlation (almost) 1
# ---------------------------------------------------------------------------------------------

# The engine cannot take a correlation of exactly 1: the scenario's matrix must be positive definite for its
# Cholesky factor. 1 − 1e-8 leaves the copies' paths within ~3e-5 (relative) of each other.
RHO_ONE = 1.0  # perfectly correlated: the engine factors singular correlation matrices

def test_worst_of_three_copies_equals_single_underlying() -> None:
    """A worst-of put on A, B, C with identical market data and correlation exactly 1 is the put on A alone.

    The single- and three-asset runs draw different normals (the draws are shaped by the asset count), so the
    comparison is within 3 combined standard errors."""
    single = price(put_note(["A"]), flat_market(), options(200_000, seed=3))
    triple = price(put_note(NAMES), flat_market((0.2, 0.2, 0.2), rho=RHO_ONE), options(200_000, seed=3))
    tol = 3 * math.hypot(single.stderr, triple.stderr)
    assert abs(triple.price - single.price) <= tol, (
        f"worst-of of 3 copies {triple.price:.6f} ± {triple.stderr:.6f} vs single {single.price:.6f} ± "
        f"{single.stderr:.6f}: |diff| {abs(triple.price - single.price):.2e} > 3 combined SE = {tol:.2e}"
    )


def test_worst_best_and_average_of_three_copies_coincide_on_common_paths() -> None:
    """On one path set (same group, same normals), worst-of, best-of and average of three copies of one
    underlying are the same product: their prices agree to 1e-4 (no sampling noise in the difference)."""
    market = flat_market((0.2, 0.2, 0.2), rho=RHO_ONE)
    specs = [put_note(NAMES, basket=b) for b in ("worst_of", "best_of", "average")]
    worst, best, avg = (r.price for r in price_many(specs, market, options(50_000, seed=5)))
    assert abs(worst - best) <= 1e-4 and abs(avg - worst) <= 1e-4, (
        f"worst-of {worst:.6f}, best-of {best:.6f}, average {avg:.6f}: spread {best - worst:.2e} > 1e-4"
    )


# ---------------------------------------------------------------------------------------------
# 3. (Almost) zero volatility: the deterministic forward path and its cash flows
# ---------------------------------------------------------------------------------------------

# The market refuses a zero vol; 1e-6 moves a path by ~2e-6 relative, and antithetic pairs cancel it to first order.
TINY_VOL = 1e-6


def test_zero_vol_rising_forward_pays_memory_coupons_then_calls() -> None:
    """r from a curve (3% at 1y, 5% at 3y, linear in between), q 1%, funding spread 1%, quarterly over 3y,
    trigger 1.10 stepping down 0.02 after one non-call date, conditional 8% coupons at 1.02 with memory.

    Forward performance F(t) = exp(z(t)·t − q·t):
      t=0.25 1.0050, 0.50 1.0101, 0.75 1.0151, 1.00 1.0202, 1.25 1.0285, 1.50 1.0382.
    Triggers (the first date not callable): -, 1.10, 1.08, 1.06, 1.04, 1.02 → first call at t=1.50 (1.0382 ≥ 1.02;
    at t=1.25, 1.0285 < 1.04). Coupon barrier 1.02: first met at t=1.00 (1.0202), which pays the four quarters
    of 2% remembered so far; 2% at 1.25 and 1.50, with par at 1.50. Discounting at z(t) + 1% funding spread.
    """
    times = [1.0, 3.0]
    zeros = [0.03, 0.05]
    q, spread = 0.01, 0.01
    market = MarketData(
        rates=Curve(times=times, rates=zeros),
        underlyings={"A": UnderlyingMarket(spot=SPOT, dividend_yield=Curve.flat(q), volatility=TINY_VOL)},
    )
    spec = AutocallSpec(
        underlyings=["A"],
        maturity_years=3.0,
        schedule={"frequency": "quarterly"},
        autocall={"trigger": 1.10, "step_down": 0.02, "floor": 1.0, "no_call_observations": 1},
        coupon={"rate": 0.08, "conditional": True, "barrier": 1.02, "memory": True},
        knock_in={"barrier": 0.7, "monitoring": "european"},
        funding_spread=spread,
    )

    def z(t: float) -> float:
        return float(np.interp(t, times, zeros))

    def fwd(t: float) -> float:
        return math.exp(z(t) * t - q * t)

    def df(t: float) -> float:
        return math.exp(-(z(t) + spread) * t)

    # The path and the decisions it implies (margins well above the 1e-6 vol).
    assert fwd(0.75) < 1.02 - 1e-3 and fwd(1.0) > 1.02 + 1e-4  # first coupon at t = 1.0 (memory: 4 quarters)
    assert fwd(1.25) < 1.04 - 1e-3  # not called at 1.25 (trigger 1.04)
    assert fwd(1.5) > 1.02 + 1e-3  # called at 1.5 (trigger 1.02)
    assert fwd(0.5) < 1.10 and fwd(0.75) < 1.08 and fwd(1.0) < 1.06  # not called before
    cash_flows = {1.0: 0.08, 1.25: 0.02, 1.5: 0.02 + 1.0}  # 4 quarters of 2% at 1.0, then 2% a quarter, then par
    expected = sum(cf * df(t) for t, cf in cash_flows.items())

    res = price(spec, market, options(2_000, seed=1))
    assert res.price == pytest.approx(expected, abs=1e-6), f"engine {res.price:.9f} vs hand {expected:.9f} (tol 1e-6)"
    assert res.expected_life_years == pytest.approx(1.5, abs=1e-9)
    assert res.autocall_probability[5] == pytest.approx(1.0) and sum(res.autocall_probability) == pytest.approx(1.0)
    assert res.knock_in_probability == 0.0


def test_zero_vol_falling_forward_with_cash_dividend_knocks_in() -> None:
    """r 1%, q 5%, a cash dividend of 5 at t=1, annual over 4y, trigger 1.0, coupon 6% at 0.9 without memory,
    European knock-in 0.85, downside buffer 5%; one note with 80% protection (not binding), one with 90% (binding).

    S(t) = 100·e^{−0.04t} before the dividend, S(1) = 100·e^{−0.04} − 5 = 91.079, then ·e^{−0.04(t−1)}:
    performances 0.9108, 0.8751, 0.8408, 0.8078 → coupon at t=1 only, never called, knocked in at maturity,
    redemption 1 − (1 − 0.05 − 0.8078) = 0.8578 (or the 0.90 floor)."""
    r, q, div = 0.01, 0.05, 5.0
    market = MarketData(
        rates=Curve.flat(r),
        underlyings={
            "A": UnderlyingMarket(
                spot=SPOT,
                dividend_yield=Curve.flat(q),
                dividends=[CashDividend(time=1.0, amount=div)],
                volatility=TINY_VOL,
            )
        },
    )
    base = dict(
        underlyings=["A"],
        maturity_years=4.0,
        schedule={"frequency": "annual"},
        autocall={"trigger": 1.0},
        coupon={"rate": 0.06, "conditional": True, "barrier": 0.9, "memory": False},
        knock_in={"barrier": 0.85, "monitoring": "european"},
        downside_buffer=0.05,
    )
    specs = [AutocallSpec(**base, capital_protection=0.8), AutocallSpec(**base, capital_protection=0.9)]

    s1 = SPOT * math.exp((r - q) * 1.0) - div
    perf = {t: s1 * math.exp((r - q) * (t - 1.0)) / SPOT for t in (1.0, 2.0, 3.0, 4.0)}
    assert perf[1.0] > 0.9 + 5e-3 and all(perf[t] < 0.9 - 5e-3 for t in (2.0, 3.0, 4.0))
    assert perf[4.0] < 0.85 - 1e-2
    redemption = 1.0 - (1.0 - 0.05 - perf[4.0])
    assert 0.8 + 1e-2 < redemption < 0.9 - 1e-2
    expected = [
        0.06 * math.exp(-r * 1.0) + red * math.exp(-r * 4.0) for red in (redemption, 0.9)
    ]  # coupon at 1y, redemption at 4y

    results = price_many(specs, market, options(2_000, seed=1))
    for res, exp in zip(results, expected, strict=True):
        assert res.price == pytest.approx(exp, abs=1e-6), f"engine {res.price:.9f} vs hand {exp:.9f} (tol 1e-6)"
        assert res.knock_in_probability == 1.0 and sum(res.autocall_probability) == 0.0
        assert res.capital_loss_probability == 1.0
    assert results[0].expected_redemption_if_loss == pytest.approx(redemption, abs=1e-5)  # float32 details
    assert results[1].expected_redemption_if_loss == pytest.approx(0.9, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# 4. Worst-of put on three assets against QuantLib's Monte Carlo basket engine
# ---------------------------------------------------------------------------------------------


def test_worst_of_put_matches_quantlib_mc_basket() -> None:
    """Vols 20/25/30%, ρ 0.5, r 3%, q 0, T 1, K = 100, spots 100; 200k paths on each side."""
    vols, rho, r, t, n = (0.20, 0.25, 0.30), 0.5, 0.03, 1.0, 200_000
    procs = [ql_process(SPOT, r, 0.0, v) for v in vols]
    corr = ql.Matrix(3, 3)
    for i in range(3):
        for j in range(3):
            corr[i][j] = 1.0 if i == j else rho
    basket = ql.BasketOption(
        ql.MinBasketPayoff(ql.PlainVanillaPayoff(ql.Option.Put, SPOT)), ql.EuropeanExercise(ql_expiry(t))
    )
    basket.setPricingEngine(
        ql.MCEuropeanBasketEngine(
            ql.StochasticProcessArray(procs, corr), "pseudorandom", timeSteps=1, requiredSamples=n, seed=42
        )
    )
    ql_price, ql_se = basket.NPV() / SPOT, basket.errorEstimate() / SPOT

    res = price(put_note(NAMES), flat_market(vols, r, 0.0, rho), options(n, seed=42))
    ours, ours_se = math.exp(-r * t) - res.price, res.stderr  # put with K = 1 = K·(df − PV)
    tol = 3 * math.hypot(ours_se, ql_se)
    assert abs(ours - ql_price) <= tol, (
        f"engine worst-of put {100 * ours:.4f} ± {100 * ours_se:.4f} vs QuantLib {100 * ql_price:.4f} ± "
        f"{100 * ql_se:.4f} (per 100): |diff| {100 * abs(ours - ql_price):.4f} > 3 combined SE = {100 * tol:.4f}"
    )


# ---------------------------------------------------------------------------------------------
# 5–7. Statistical properties of the simulation
# ---------------------------------------------------------------------------------------------


def test_standard_error_shrinks_like_one_over_sqrt_n() -> None:
    market = flat_market()
    spec = put_note(["A"])
    small = price(spec, market, options(16_384, seed=21, antithetic=False))
    large = price(spec, market, options(16 * 16_384, seed=22, antithetic=False))
    ratio = small.stderr / large.stderr
    assert 4 * 0.85 <= ratio <= 4 * 1.15, (
        f"SE {small.stderr:.3e} at 16384 paths / {large.stderr:.3e} at 262144 = {ratio:.3f}, outside 4 ± 15%"
    )


def test_sobol_beats_pseudo_random_on_a_smooth_payoff() -> None:
    """Put on one underlying (no barrier), 12 steps (Sobol in 12 dimensions via the Brownian bridge), 4096
    non-antithetic paths, 8 seeds each: RMS error against Black–Scholes, Sobol (scrambled) < pseudo-random."""
    r, q, vol, t = 0.03, 0.01, 0.2, 1.0
    market = flat_market((vol,), r, q)
    spec = put_note(["A"])
    exact = bs_put(1.0, 1.0, r, q, vol, t)
    errors: dict[str, list[float]] = {"sobol": [], "pseudo": []}
    for sampler in errors:
        for seed in range(100, 108):
            res = price(spec, market, options(4096, seed=seed, sampler=sampler, antithetic=False, steps_per_year=12))
            errors[sampler].append(math.exp(-r * t) - res.price - exact)
    rms = {k: math.sqrt(np.mean(np.square(v))) for k, v in errors.items()}
    assert rms["sobol"] < rms["pseudo"], f"RMS error Sobol {rms['sobol']:.2e} vs pseudo {rms['pseudo']:.2e}"
    # Not by accident: with the terminal value on the first Sobol dimension the gain is large.
    assert rms["sobol"] < 0.25 * rms["pseudo"], f"RMS error Sobol {rms['sobol']:.2e} vs pseudo {rms['pseudo']:.2e}"


@pytest.mark.parametrize("sampler", ["pseudo", "sobol"])
def test_same_seed_reproduces_bit_for_bit_and_other_seeds_differ(sampler: str) -> None:
    market = flat_market((0.2, 0.25), rho=0.4)
    spec = AutocallSpec(underlyings=["A", "B"], maturity_years=2.0, knock_in={"barrier": 0.6, "monitoring": "daily"})
    first = price(spec, market, options(8192, seed=9, sampler=sampler))
    again = price(spec, market, options(8192, seed=9, sampler=sampler))
    other = price(spec, market, options(8192, seed=10, sampler=sampler))
    assert first.price.hex() == again.price.hex() and first.stderr.hex() == again.stderr.hex()
    assert first.irr_percentiles == again.irr_percentiles
    assert other.price != first.price
