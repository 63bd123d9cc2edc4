"""The lab's variations, the pricing figures (fair coupon, Greeks, probabilities) and the compute kinds.

Greeks are checked on a note that is a European put in disguise (never callable, no coupon, no
barrier, strike 1, one observation at maturity), whose value per unit notional is
V(m) = df − P(m·S₀; K = S₀)/S₀ for a spot multiplier m, P the Black–Scholes put. The engine's
Greeks are bump-and-revalue on common normals: delta = (V(1+h) − V(1−h))/(2h), gamma =
(V(1+h) − 2V(1) + V(1−h))/h² with h = 1%, vega = (V(σ+1%) − V(σ−1%))/2. So delta = −Δ_put,
gamma = −S₀·Γ_put and vega = −Vega_put/(S₀·100). Their Monte Carlo error is estimated from
independent scrambled-Sobol replications (different seeds).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from engines import registry
from engines.common.black_scholes import black_scholes_delta, black_scholes_price
from engines.registry import InvalidInputs
from engines.structured import kinds
from engines.structured.lab import MIN_VARIATIONS, LabGrid, TriggerProfile, variations
from engines.structured.market import Curve, MarketData, UnderlyingMarket
from engines.structured.pricing import PricingOptions, price, price_many
from engines.structured.simulation import Shift, make_groups, run_group
from engines.structured.spec import AutocallSpec

NAMES = ("A", "B", "C")
VOLS = (0.20, 0.25, 0.30)
RATE = 0.03
DIVIDEND_YIELD = 0.01
SPOT = 100.0


def make_market() -> MarketData:
    """Three underlyings at spot 100, flat rate 3%, flat dividend yield 1%, vols 20/25/30%, pairwise correlation 0.5."""
    corr = [[1.0 if i == j else 0.5 for j in range(3)] for i in range(3)]
    underlyings = {
        n: UnderlyingMarket(spot=SPOT, dividend_yield=Curve.flat(DIVIDEND_YIELD), volatility=v)
        for n, v in zip(NAMES, VOLS, strict=True)
    }
    return MarketData(rates=Curve.flat(RATE), underlyings=underlyings, correlation=corr)


MARKET = make_market()
MARKET_JSON = MARKET.model_dump(mode="json")


def base_note(**kw: Any) -> AutocallSpec:
    data = {"underlyings": ["A", "B", "C"], "maturity_years": 2.0, **kw}
    return AutocallSpec.model_validate(data)


def assert_close(a: Any, b: Any, tol: float, where: str = "") -> None:
    """Nested dicts/lists equal, floats to `tol` (absolute), everything else exactly."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for k in a:
            assert_close(a[k], b[k], tol, f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, tol, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(a, bool):
        assert isinstance(b, float | int), f"{where}: {a!r} vs {b!r}"
        assert a == b or abs(a - b) <= tol, f"{where}: {a!r} vs {b!r} (tolerance {tol:g})"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


# ---------------------------------------------------------------------------------------------
# The lab's variations
# ---------------------------------------------------------------------------------------------


def test_default_grid_gives_at_least_75_distinct_valid_specs() -> None:
    base = base_note(name="note")
    specs = variations(base)
    assert len(specs) >= MIN_VARIATIONS == 75
    names = [s.name for s in specs]
    assert len(set(names)) == len(names)
    assert all(n.startswith("note[") for n in names)
    designs = {json.dumps(s.model_dump(exclude={"name"}), sort_keys=True) for s in specs}
    assert len(designs) == len(specs), "two variations describe the same note"
    for s in specs:  # each is a valid note in its own right (re-validated from its JSON)
        assert AutocallSpec.model_validate_json(s.model_dump_json()) == s
        assert s.underlyings == base.underlyings and s.maturity_years == base.maturity_years
    grid = LabGrid()
    combos = {
        (s.knock_in.barrier, s.coupon.rate, s.autocall.trigger, s.autocall.step_down, s.autocall.floor) for s in specs
    }
    expected = {
        (b, c, t.trigger, t.step_down, t.floor) for b in grid.barriers for c in grid.coupons for t in grid.triggers
    }
    assert combos == expected


def test_variations_replace_explicit_triggers_by_the_profile() -> None:
    base = base_note(autocall={"triggers": [None, 1.0, 1.0, 1.0, 0.9, 0.9, 0.9, 0.9]})
    specs = variations(base, LabGrid(barriers=[0.6], coupons=[0.07], triggers=[TriggerProfile(trigger=0.95)]))
    assert len(specs) == 1
    assert specs[0].triggers().tolist() == [0.95] * 8


def test_frequencies_and_baskets_multiply_the_count() -> None:
    base = base_note(name="note")
    grid = LabGrid(frequencies=["quarterly", "semi_annual"], baskets=[["A", "B"], ["A", "B", "C"], ["C"]])
    specs = variations(base, grid)
    assert len(specs) == len(variations(base)) * 2 * 3 == 450
    assert len({s.name for s in specs}) == len(specs)
    seen = {(s.schedule.frequency, tuple(s.underlyings)) for s in specs}
    assert seen == {(f, tuple(b)) for f in grid.frequencies for b in grid.baskets}
    semi = next(s for s in specs if s.schedule.frequency == "semi_annual")
    assert len(semi.observation_times()) == 4


def test_grid_making_an_invalid_note_is_refused_naming_the_variation() -> None:
    base = base_note(name="note")
    grid = LabGrid(barriers=[0.6, 1.2], coupons=[0.05], triggers=[TriggerProfile(trigger=1.0)])
    with pytest.raises(ValueError, match=r"lab variation 'note\[ki1\.2 cpn0\.05 trig1\]'") as info:
        variations(base, grid)
    assert "knock_in.barrier" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Fair coupon
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [0.03, 0.015])
@pytest.mark.parametrize("coupon", [{"conditional": True, "memory": True}, {"conditional": False}])
def test_repricing_at_the_fair_coupon_gives_par_less_the_margin(margin: float, coupon: dict) -> None:
    note = base_note(maturity_years=3.0, coupon={"rate": 0.05, **coupon}, knock_in={"barrier": 0.6})
    opts = PricingOptions(paths=8192, seed=11, target_margin=margin)
    first = price(note, MARKET, opts)
    assert first.fair_coupon is not None and 0.0 < first.fair_coupon < 1.0
    fair = note.model_copy(update={"coupon": note.coupon.model_copy(update={"rate": first.fair_coupon})})
    again = price(fair, MARKET, opts)
    assert again.price == pytest.approx(1.0 - margin, abs=1e-10)
    assert again.fair_coupon == pytest.approx(first.fair_coupon, abs=1e-10)


def test_no_fair_coupon_without_a_target_margin() -> None:
    assert price(base_note(), MARKET, PricingOptions(paths=2048, seed=1, target_margin=None)).fair_coupon is None


# ---------------------------------------------------------------------------------------------
# Greeks against Black–Scholes
# ---------------------------------------------------------------------------------------------

PUT_VOL = VOLS[0]  # underlying A
PUT_T = 1.0
BUMP = 0.01


def put_in_disguise() -> AutocallSpec:
    return AutocallSpec(
        underlyings=["A"],
        maturity_years=PUT_T,
        schedule={"dates": [PUT_T]},
        autocall={"triggers": [None]},
        coupon={"rate": 0.0},
        knock_in=None,
        strike=1.0,
        capital_protection=0.0,
        funding_spread=0.0,
    )


def note_value(m: float = 1.0, vol: float = PUT_VOL) -> float:
    """Closed form of the put in disguise: df − P(m·S₀, S₀)/S₀."""
    put = black_scholes_price(m * SPOT, SPOT, RATE, DIVIDEND_YIELD, vol, PUT_T, "put")
    return math.exp(-RATE * PUT_T) - put / SPOT


@pytest.fixture(scope="module")
def replicated_greeks() -> dict[str, tuple[float, float]]:
    """Mean and standard error of the engine's price and Greeks over 8 independent Sobol scramblings."""
    spec = put_in_disguise()
    runs = [
        price(
            spec, MARKET, PricingOptions(paths=8192, seed=seed, greeks=["delta", "gamma", "vega"], target_margin=None)
        )
        for seed in range(1000, 1008)
    ]
    out = {}
    for name, values in (
        ("price", [r.price for r in runs]),
        ("delta", [r.greeks["delta"][0] for r in runs]),
        ("gamma", [r.greeks["gamma"][0] for r in runs]),
        ("vega", [r.greeks["vega"][0] for r in runs]),
    ):
        x = np.array(values)
        out[name] = (float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))))
    return out


def test_put_in_disguise_prices_like_black_scholes(replicated_greeks) -> None:
    mean, se = replicated_greeks["price"]
    assert abs(mean - note_value()) <= 3 * se + 1e-12, f"{mean} vs {note_value()} (3 SE = {3 * se:.2e})"


def test_delta_is_minus_the_black_scholes_put_delta(replicated_greeks) -> None:
    mean, se = replicated_greeks["delta"]
    fd = (note_value(1 + BUMP) - note_value(1 - BUMP)) / (2 * BUMP)
    assert abs(mean - fd) <= 3 * se, f"delta {mean} vs finite difference of the closed form {fd} (3 SE = {3 * se:.2e})"
    analytic = -float(black_scholes_delta(SPOT, SPOT, RATE, DIVIDEND_YIELD, PUT_VOL, PUT_T, "put"))
    assert 0.3 < analytic < 0.5  # a long-equity note: positive delta
    # The central difference's bias h²/6·V''' is about 6e-5 here; 2e-4 covers it and the noise.
    assert mean == pytest.approx(analytic, abs=2e-4)


def test_gamma_is_minus_spot_times_the_black_scholes_gamma(replicated_greeks) -> None:
    mean, se = replicated_greeks["gamma"]
    fd = (note_value(1 + BUMP) - 2 * note_value() + note_value(1 - BUMP)) / BUMP**2
    assert abs(mean - fd) <= 3 * se, f"gamma {mean} vs finite difference of the closed form {fd} (3 SE = {3 * se:.2e})"
    d1 = (RATE - DIVIDEND_YIELD + 0.5 * PUT_VOL**2) * PUT_T / (PUT_VOL * math.sqrt(PUT_T))
    analytic = -math.exp(-DIVIDEND_YIELD * PUT_T) * math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    analytic /= PUT_VOL * math.sqrt(PUT_T)
    assert mean == pytest.approx(analytic, rel=0.01)  # looser: the kink makes the 2nd difference noisy


def test_vega_is_per_vol_point(replicated_greeks) -> None:
    mean, se = replicated_greeks["vega"]
    fd = (note_value(vol=PUT_VOL + 0.01) - note_value(vol=PUT_VOL - 0.01)) / 2
    assert abs(mean - fd) <= 3 * se + 1e-12, f"vega {mean} vs {fd} (3 SE = {3 * se:.2e})"
    d1 = (RATE - DIVIDEND_YIELD + 0.5 * PUT_VOL**2) * PUT_T / (PUT_VOL * math.sqrt(PUT_T))
    bs_vega = SPOT * math.exp(-DIVIDEND_YIELD * PUT_T) * math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    assert mean == pytest.approx(-bs_vega * math.sqrt(PUT_T) / SPOT / 100, rel=1e-3)


# ---------------------------------------------------------------------------------------------
# Probabilities
# ---------------------------------------------------------------------------------------------


def test_autocall_probabilities_and_the_non_called_fraction_sum_to_one() -> None:
    note = base_note(
        autocall={"trigger": 1.0, "step_down": 0.05, "floor": 0.8, "no_call_observations": 2},
        knock_in={"barrier": 0.6},
    )
    opts = PricingOptions(paths=8192, seed=3, target_margin=None)
    res = price(note, MARKET, opts)
    probs = np.array(res.autocall_probability)
    times = note.observation_times()
    assert len(probs) == len(times)
    assert np.all(probs[:2] == 0.0), "called during the no-call period"
    assert np.all(probs >= 0) and probs[2] > 0.1
    # The non-called fraction, counted independently on the same paths.
    group = make_groups([note], MARKET, "bs")[0]
    run = run_group(group, MARKET, [Shift()], paths=8192, seed=3, sampler="sobol", details=True, backend="cpu")
    not_called = float(np.mean(run.call_idx[0] < 0))
    assert 0.0 < not_called < 1.0
    assert probs.sum() + not_called == pytest.approx(1.0, abs=1e-12)
    # The expected life agrees: E[life] = Σ p_j t_j + (1 − Σ p_j)·T.
    assert res.expected_life_years == pytest.approx(
        float(probs @ times) + (1.0 - probs.sum()) * note.maturity_years, abs=1e-6
    )
    assert times[2] <= res.expected_life_years <= note.maturity_years


@pytest.mark.parametrize("monitoring", ["european", "daily", "continuous"])
def test_knock_in_probability_is_at_most_the_capital_loss_probability(monitoring: str) -> None:
    """With strike 1, no buffer and triggers ≤ 1, a note not called and knocked in ends below strike and loses."""
    note = base_note(
        autocall={"trigger": 1.0, "step_down": 0.05, "floor": 0.85},
        knock_in={"barrier": 0.7, "monitoring": monitoring},
        strike=1.0,
        downside_buffer=0.0,
    )
    res = price(note, MARKET, PricingOptions(paths=4096, seed=5, sampler="pseudo", target_margin=None))
    assert res.knock_in_probability > 0.02
    assert res.knock_in_probability <= res.capital_loss_probability + 1e-12
    if monitoring != "continuous":  # a path-wise knock-in: the two events coincide
        assert res.knock_in_probability == pytest.approx(res.capital_loss_probability, abs=1e-12)
    assert res.expected_redemption_if_loss is not None and res.expected_redemption_if_loss < 0.85


def test_full_capital_protection_means_no_capital_loss() -> None:
    note = base_note(knock_in={"barrier": 0.7, "monitoring": "daily"}, capital_protection=1.0)
    res = price(note, MARKET, PricingOptions(paths=4096, seed=5, target_margin=None))
    assert res.knock_in_probability > 0.02  # the barrier is still breached, but protected
    assert res.capital_loss_probability == 0.0
    assert res.expected_redemption_if_loss is None


# ---------------------------------------------------------------------------------------------
# Compute kinds: chunking
# ---------------------------------------------------------------------------------------------

CHUNKED_PATHS = 4 * 4096 + 1000  # 5 blocks: path_chunks(..., 3) gives 8192 + 8192 + 1000


def price_inputs(sampler: str) -> dict[str, Any]:
    specs = [
        base_note(name="worst-of 3", knock_in={"barrier": 0.6}).model_dump(mode="json"),
        base_note(name="step-down", autocall={"trigger": 1.0, "step_down": 0.05, "floor": 0.8}).model_dump(mode="json"),
        base_note(name="pair", underlyings=["A", "B"], maturity_years=3.0).model_dump(mode="json"),
    ]
    options = {"paths": CHUNKED_PATHS, "seed": 77, "sampler": sampler, "greeks": ["delta", "gamma", "vega", "rho"]}
    return {"specs": specs, "market": MARKET_JSON, "options": options}


@pytest.mark.parametrize("sampler", ["pseudo", "sobol"])
def test_price_chunked_by_paths_combines_to_the_unchunked_answer(sampler: str) -> None:
    inputs = price_inputs(sampler)
    whole = registry.run("structured.price", inputs, None)
    chunks = kinds.path_chunks(inputs, 3)
    assert [(c["first_path"], c["paths"]) for c in chunks] == [(0, 8192), (8192, 8192), (16384, 1000)]
    combined = registry.combine("structured.price", [registry.run("structured.price", c, None) for c in chunks])
    assert len(combined["results"]) == 3
    for a, b in zip(whole["results"], combined["results"], strict=True):
        assert b["paths"] == CHUNKED_PATHS
        assert a["price"] == pytest.approx(b["price"], abs=1e-12)
        assert a["stderr"] == pytest.approx(b["stderr"], abs=1e-12)
        assert_close(a["greeks"], b["greeks"], 1e-9, a["name"])  # gamma divides by h² = 1e-4
        assert_close({k: v for k, v in a.items() if k != "greeks"}, {k: v for k, v in b.items() if k != "greeks"},
                     1e-12, a["name"])  # fmt: skip
    # The statistics themselves add up (counts exactly).
    for a, b in zip(whole["stats"], combined["stats"], strict=True):
        assert a["autocall_counts"] == b["autocall_counts"] and a["irr_histogram"] == b["irr_histogram"]
        assert a["loss_count"] == b["loss_count"] and a["samples"] == b["samples"]


def test_lab_kind_prices_every_variation() -> None:
    base = base_note(name="lab").model_dump(mode="json")
    out = registry.run("structured.lab", {"base": base, "market": MARKET_JSON, "options": {"paths": 2048}}, 8)
    assert len(out["results"]) >= 75 and len(out["specs"]) == len(out["results"])
    assert [r["name"] for r in out["results"]] == [s["name"] for s in out["specs"]]
    assert out["seed"] == 8
    prices = np.array([r["price"] for r in out["results"]])
    assert np.all((prices > 0.5) & (prices < 1.2))
    # Higher coupons are worth more on common paths, all else equal.
    by_name = {r["name"]: r["price"] for r in out["results"]}
    assert by_name["lab[ki0.6 cpn0.09 trig1]"] > by_name["lab[ki0.6 cpn0.05 trig1]"]


def test_lab_kind_refuses_an_invalid_grid_naming_the_grid() -> None:
    base = base_note().model_dump(mode="json")
    with pytest.raises(InvalidInputs) as info:
        registry.run("structured.lab", {"base": base, "market": MARKET_JSON, "grid": {"barriers": [1.2]}}, 1)
    assert info.value.field == "grid" and "ki1.2" in info.value.reason


def test_stress_chunked_by_specs_combines_to_the_unchunked_answer() -> None:
    specs = [
        base_note(name="s1", knock_in={"barrier": 0.6}).model_dump(mode="json"),
        base_note(name="s2", coupon={"rate": 0.05}, knock_in={"barrier": 0.65}).model_dump(mode="json"),
    ]
    scenarios = [
        {"name": "crash", "spot_move": -0.3},
        {"name": "vol up", "vol_level": 0.4},
        {"name": "corr and rates", "correlation": 0.9, "rate_shift": 0.01},
    ]
    inputs = {"specs": specs, "market": MARKET_JSON, "options": {"paths": 4096, "seed": 4}, "scenarios": scenarios}
    whole = registry.run("structured.stress", inputs, None)
    chunks = kinds.spec_chunks(inputs, 2)
    assert [len(c["specs"]) for c in chunks] == [1, 1]
    combined = registry.combine("structured.stress", [registry.run("structured.stress", c, None) for c in chunks])
    assert [r["name"] for r in combined["results"]] == ["s1", "s2"]
    assert len(combined["results"][0]["pnl"]) == 3
    assert_close(whole, combined, 1e-12)


def test_priips_kind_gives_an_sri_between_1_and_7() -> None:
    spec = base_note().model_dump(mode="json")
    out = registry.run("structured.priips", {"spec": spec, "market": MARKET_JSON, "options": {"paths": 10_000}}, 2)
    assert isinstance(out["sri"], int) and 1 <= out["sri"] <= 7
    assert out["seed"] == 2


# ---------------------------------------------------------------------------------------------
# Compute kinds: bad inputs name the field
# ---------------------------------------------------------------------------------------------


def _inputs(**kw: Any) -> dict[str, Any]:
    return {"specs": [base_note().model_dump(mode="json")], "market": MARKET_JSON,
            "options": {"paths": 2048}, **kw}  # fmt: skip


def _with_spec(**changes: Any) -> dict[str, Any]:
    return _inputs(specs=[{**base_note().model_dump(mode="json"), **changes}])


def _bad_market() -> dict[str, Any]:
    market = json.loads(json.dumps(MARKET_JSON))
    market["underlyings"]["B"]["spot"] = -1.0
    return _inputs(market=market)


@pytest.mark.parametrize(
    ("inputs", "seed", "field"),
    [
        (_with_spec(underlyings=["A", "Z"]), 1, "specs[0].underlyings"),
        (_with_spec(maturity_years=-1.0), 1, "specs[0].maturity_years"),
        (_with_spec(maturity_years=11.0), 1, "specs[0].maturity_years"),
        (_with_spec(currency="USD"), 1, "specs[0].currency"),
        (_inputs(), None, "options.seed"),
        (_inputs(options={"paths": 8192}, first_path=1000), 1, "first_path"),
        (_inputs(options={"paths": 8192}, first_path=4096, paths=8192), 1, "paths"),
        (_bad_market(), 1, "market.underlyings.B.spot"),
        (_inputs(specs=[]), 1, "specs"),
        (_inputs(specs=None), 1, "specs"),
        (_inputs(options={"paths": 2048, "sampler": "halton"}), 1, "options.sampler"),
        (_inputs(optoins={}), 1, "optoins"),
    ],
)
def test_price_kind_bad_inputs_name_the_field(inputs: dict[str, Any], seed: int | None, field: str) -> None:
    with pytest.raises(InvalidInputs) as info:
        registry.run("structured.price", inputs, seed)
    assert info.value.field == field, str(info.value)


def _bad_forward() -> dict[str, Any]:
    market = json.loads(json.dumps(MARKET_JSON))
    market["underlyings"]["A"]["forwards"] = [{"time": 1.0, "forward": 150.0}]
    return _inputs(market=market)


# Refusals raised by a model-level validator (or by the pricer) rather than by a field's own constraint.
MODEL_LEVEL_REFUSALS = [
    (_with_spec(knock_in={"barrier": 1.1}), "specs[0]", "knock_in.barrier", "specs[0].knock_in.barrier"),
    (_bad_forward(), "market", "underlyings.A.forwards[0]", "market.underlyings.A.forwards[0]"),
    (_inputs(options={"paths": 4097}), "inputs", "paths", "options.paths"),
]


@pytest.mark.parametrize(("inputs", "field", "inner", "full"), MODEL_LEVEL_REFUSALS)
def test_model_level_refusals_name_the_field_in_the_message(inputs: dict, field: str, inner: str, full: str) -> None:
    with pytest.raises(InvalidInputs) as info:
        registry.run("structured.price", inputs, 1)
    assert info.value.field in (field, full)
    assert inner in str(info.value), str(info.value)


@pytest.mark.parametrize(("inputs", "field", "inner", "full"), MODEL_LEVEL_REFUSALS)
def test_model_level_refusals_name_the_full_field_path(inputs: dict, field: str, inner: str, full: str) -> None:
    with pytest.raises(InvalidInputs) as info:
        registry.run("structured.price", inputs, 1)
    assert info.value.field == full


def test_other_kinds_name_their_fields() -> None:
    bad_spec = {**base_note().model_dump(mode="json"), "maturity_years": 0.0}
    with pytest.raises(InvalidInputs) as info:
        registry.run("structured.priips", {"spec": bad_spec, "market": MARKET_JSON}, 1)
    assert info.value.field == "spec.maturity_years"
    with pytest.raises(InvalidInputs) as info:
        registry.run("structured.stress", _inputs(specs=[base_note().model_dump(mode="json"), bad_spec]), 1)
    assert info.value.field == "specs[1].maturity_years"
    with pytest.raises(InvalidInputs) as info:
        registry.run("structured.lab", {"base": bad_spec, "market": MARKET_JSON}, 1)
    assert info.value.field == "base.maturity_years"


# ---------------------------------------------------------------------------------------------
# Reproducibility
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_bits_through_the_kind() -> None:
    inputs = _inputs(options={"paths": 4096, "sampler": "pseudo", "greeks": ["delta"]})
    first = registry.run("structured.price", inputs, 123)
    again = registry.run("structured.price", inputs, 123)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    other = registry.run("structured.price", inputs, 124)
    assert other["results"][0]["price"] != first["results"][0]["price"]
    # A seed in the options wins over the request's (so that chunks share one path sequence).
    pinned = _inputs(options={"paths": 4096, "sampler": "pseudo", "greeks": ["delta"], "seed": 123})
    via_options = registry.run("structured.price", pinned, 999)
    assert via_options["seed"] == 123
    assert json.dumps(via_options["results"], sort_keys=True) == json.dumps(first["results"], sort_keys=True)


def test_odd_path_count_with_antithetic_sampling_is_refused() -> None:
    note = base_note()
    with pytest.raises(ValueError, match=r"paths: antithetic sampling needs an even path count, got 4097"):
        price(note, MARKET, PricingOptions(paths=4097, antithetic=True))
    with pytest.raises(InvalidInputs, match="even"):
        registry.run("structured.price", _inputs(options={"paths": 4097, "antithetic": True}), 1)
    plain = price_many([note], MARKET, PricingOptions(paths=4097, antithetic=False, sampler="pseudo"))[0]
    assert plain.paths == 4097


def test_the_registry_splits_structured_kinds_by_their_own_rule() -> None:
    inputs = _inputs(options={"paths": 20_000, "seed": 4})
    parts = registry.get("structured.price").split(inputs, 3)
    assert [(p["first_path"], p["paths"]) for p in parts] == [(0, 8192), (8192, 8192), (16384, 3616)]
    stress = _inputs(options={"paths": 2048, "seed": 4})
    stress["specs"] = stress["specs"] * 3
    assert [len(p["specs"]) for p in registry.get("structured.stress").split(stress, 2)] == [2, 1]
    assert registry.get("mc.european_option").split({"paths": 10}, 2) == [{"paths": 10}, {"paths": 10}]


def test_combining_the_same_paths_twice_is_refused() -> None:
    inputs = _inputs(options={"paths": 4096, "seed": 4})
    once = registry.run("structured.price", inputs, None)
    with pytest.raises(ValueError, match="repeats paths"):
        registry.combine("structured.price", [once, once])
    other = registry.run("structured.price", _inputs(options={"paths": 4096, "seed": 5}), None)
    both = registry.combine("structured.price", [once, other])  # independent seeds: valid samples
    assert both["results"][0]["paths"] == 8192
