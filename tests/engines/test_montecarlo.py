"""Monte Carlo European option: agreement with the closed form, exact chunk combination,
reproducibility, input validation, and the CUDA kernel under the simulator."""

from __future__ import annotations

import json
import math
import textwrap
import zlib
from typing import Any

import numba
import numpy as np
import pytest

from engines import registry
from engines.common import montecarlo
from engines.common.black_scholes import black_scholes_price
from engines.common.montecarlo import (
    EuropeanOption,
    MonteCarloStats,
    discounted_pair_payoffs,
    european_option_stats,
    mc_european_option,
)
from engines.registry import InvalidInputs

MARKET = {"rate": 0.03, "dividend_yield": 0.01, "volatility": 0.25, "maturity_years": 1.0}
PATHS = 200_000


def inputs(option: str = "call", strike: float = 100.0, paths: int = PATHS, **overrides: Any) -> dict[str, Any]:
    return {"spot": 100.0, "strike": strike, **MARKET, "option": option, "paths": paths, **overrides}


def closed_form(i: dict[str, Any]) -> float:
    return float(
        black_scholes_price(
            i["spot"], i["strike"], i["rate"], i["dividend_yield"], i["volatility"], i["maturity_years"], i["option"]
        )
    )


def derived_seeds(seed: int, n: int) -> list[int]:
    """Independent chunk seeds (the engines do not care how they are derived; the bus uses SHA-256)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n, dtype=np.uint64) >> np.uint64(1)]


@pytest.mark.parametrize("option", ["call", "put"])
@pytest.mark.parametrize("strike", [80.0, 100.0, 125.0], ids=["K80", "K100", "K125"])
def test_price_agrees_with_closed_form_within_four_standard_errors(option: str, strike: float) -> None:
    i = inputs(option, strike)
    seed = zlib.crc32(f"{option}/{strike}".encode())  # independent draws for each case
    result = registry.run("mc.european_option", i, seed=seed)
    exact = closed_form(i)
    se = result["standard_error"]
    print(f"{option} K={strike:g}: MC {result['price']:.5f} ± {se:.5f} vs closed form {exact:.5f}")
    assert result["paths"] == PATHS and result["pairs"] == PATHS // 2
    assert 0 < se < 0.05  # on a spot of 100, 200k paths pin the price to a few cents
    assert abs(result["price"] - exact) < 4 * se


def test_standard_error_matches_the_spread_across_seeds() -> None:
    # Pair averages are the independent samples: an SE computed from single (correlated)
    # antithetic paths would not match the observed spread of independent estimates.
    contract = EuropeanOption.from_inputs(inputs("call", 110.0))
    runs = [european_option_stats(contract, 10_000, seed) for seed in derived_seeds(7, 40)]
    spread = float(np.std([r.price for r in runs], ddof=1))
    mean_se = float(np.mean([r.standard_error for r in runs]))
    assert 0.7 < spread / mean_se < 1.3, (spread, mean_se)


def test_four_chunks_combine_exactly_and_agree_with_closed_form() -> None:
    i = inputs("put", 95.0, paths=50_000)
    seeds = derived_seeds(2024, 4)
    chunks = [registry.run("mc.european_option", i, seed) for seed in seeds]
    combined = registry.combine("mc.european_option", chunks)

    # exact: the combined statistics are those of the concatenated pair payoffs of all chunks
    contract = EuropeanOption.from_inputs(i)
    payoffs = np.concatenate([discounted_pair_payoffs(contract, 50_000, seed) for seed in seeds])
    assert combined["pairs"] == payoffs.size == 100_000 and combined["paths"] == 200_000
    assert combined["sum"] == pytest.approx(math.fsum(payoffs), rel=1e-12)
    assert combined["sum_of_squares"] == pytest.approx(math.fsum(payoffs * payoffs), rel=1e-12)
    assert combined["price"] == pytest.approx(float(np.mean(payoffs)), rel=1e-12)
    assert combined["standard_error"] == pytest.approx(
        float(np.std(payoffs, ddof=1)) / math.sqrt(payoffs.size), rel=1e-9
    )
    assert combined["chunks"] == 4

    # statistically consistent: with the closed form, and with the chunks among themselves
    exact = closed_form(i)
    print(f"4 chunks: MC {combined['price']:.5f} ± {combined['standard_error']:.5f} vs closed form {exact:.5f}")
    assert abs(combined["price"] - exact) < 4 * combined["standard_error"]
    assert combined["standard_error"] == pytest.approx(chunks[0]["standard_error"] / 2, rel=0.05)

    # combining is associative: a combined result is itself a chunk result
    halves = [registry.combine("mc.european_option", chunks[:2]), registry.combine("mc.european_option", chunks[2:])]
    again = registry.combine("mc.european_option", halves)
    assert again["pairs"] == combined["pairs"] and again["chunks"] == 4
    assert again["price"] == pytest.approx(combined["price"], rel=1e-14)


def test_combine_refuses_chunks_of_different_contracts() -> None:
    a = registry.run("mc.european_option", inputs("call", 100.0, paths=1_000), seed=1)
    b = registry.run("mc.european_option", inputs("call", 101.0, paths=1_000), seed=2)
    with pytest.raises(ValueError, match="chunk 1"):
        registry.combine("mc.european_option", [a, b])
    with pytest.raises(ValueError, match="lacks"):
        registry.combine("mc.european_option", [a, {"price": 1.0}])


def test_same_seed_gives_identical_bits_and_another_seed_does_not() -> None:
    i = inputs("call", 105.0, paths=100_000)
    first = registry.run("mc.european_option", i, seed=99)
    assert registry.run("mc.european_option", i, seed=99) == first
    other = registry.run("mc.european_option", i, seed=100)
    assert other["price"] != first["price"]


def test_result_does_not_depend_on_the_thread_count() -> None:
    contract = EuropeanOption.from_inputs(inputs("put", 100.0))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = european_option_stats(contract, 100_002, 5, backend="cpu")
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        parallel = european_option_stats(contract, 100_002, 5, backend="cpu")
    finally:
        numba.set_num_threads(before)
    assert single == parallel  # bit for bit


def test_batches_continue_the_same_random_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    contract = EuropeanOption.from_inputs(inputs("call", 90.0))
    whole = discounted_pair_payoffs(contract, 20_000, 3)
    monkeypatch.setattr(montecarlo, "BATCH_PAIRS", 999)
    batched = discounted_pair_payoffs(contract, 20_000, 3)
    np.testing.assert_array_equal(whole, batched)
    stats = european_option_stats(contract, 20_000, 3)
    assert stats.pairs == 10_000
    assert stats.price == pytest.approx(float(np.mean(whole)), rel=1e-12)


def test_stats_arithmetic() -> None:
    samples = np.array([1.0, 2.0, 4.0, 7.0])
    stats = MonteCarloStats.of_samples(samples)
    assert (stats.pairs, stats.sum, stats.sum_of_squares) == (4, 14.0, 70.0)
    assert stats.paths == 8 and stats.price == 3.5
    assert stats.standard_error == pytest.approx(float(np.std(samples, ddof=1)) / 2.0, rel=1e-15)
    assert math.isnan(MonteCarloStats.of_samples(np.array([1.0])).standard_error)
    assert MonteCarloStats.of_samples(samples[:1]) + MonteCarloStats.of_samples(samples[1:]) == stats


def test_two_paths_give_a_price_without_standard_error_until_combined() -> None:
    one = registry.run("mc.european_option", inputs(paths=2), seed=1)
    assert one["pairs"] == 1 and one["standard_error"] is None
    two = registry.combine("mc.european_option", [one, registry.run("mc.european_option", inputs(paths=2), seed=2)])
    assert two["pairs"] == 2 and two["standard_error"] is not None
    json.dumps(two, allow_nan=False)  # results travel as strict JSON


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"spot": 0.0}, "spot", "positive"),
        ({"strike": -5.0}, "strike", "positive"),
        ({"volatility": 0}, "volatility", "positive"),
        ({"maturity_years": -1.0}, "maturity_years", "positive"),
        ({"rate": "3%"}, "rate", "number"),
        ({"option": "digital"}, "option", "'call', 'put'"),
        ({"paths": 1}, "paths", "at least 2"),
        ({"paths": 1001}, "paths", "even"),
        ({"paths": 10.5}, "paths", "integer"),
        ({"paths": 10**12}, "paths", "at most"),
        ({"volatility": math.nan}, "volatility", "finite"),
        ({"steps": 12}, "steps", "not an input"),
    ],
)
def test_invalid_inputs_name_the_field(overrides: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidInputs) as info:
        registry.run("mc.european_option", inputs(**overrides), seed=1)
    assert info.value.field == field
    assert reason in info.value.reason, info.value.reason


def test_missing_field_and_missing_or_bad_seed_are_named() -> None:
    partial = inputs()
    del partial["volatility"]
    with pytest.raises(InvalidInputs, match=r"^volatility: is required"):
        registry.run("mc.european_option", partial, seed=1)
    with pytest.raises(InvalidInputs, match=r"^seed: is required"):
        registry.run("mc.european_option", inputs(), seed=None)
    with pytest.raises(InvalidInputs, match=r"^seed: must be a non-negative integer"):
        mc_european_option(100, 100, 0.0, 0.0, 0.2, 1.0, "call", 100, -3)


# ---- the CUDA kernel under numba's simulator --------------------------------------------------

_CUDASIM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    try:
        from numba import cuda
    except Exception as exc:
        print(json.dumps({"skip": f"numba's CUDA target cannot be imported: {exc!r}"}))
        sys.exit(0)
    import numpy as np
    from engines.common import montecarlo_cuda
    from engines.common.montecarlo import EuropeanOption, discounted_pair_payoffs, european_option_stats

    assert montecarlo_cuda.simulator_enabled()
    assert not montecarlo_cuda.gpu_available()  # "auto" must never pick the simulator
    out = {}
    for option, strike in (("call", 90.0), ("put", 110.0)):
        c = EuropeanOption(100.0, strike, 0.03, 0.01, 0.25, 1.0, option)
        cpu = discounted_pair_payoffs(c, 1_030, 11, backend="cpu")
        gpu = discounted_pair_payoffs(c, 1_030, 11, backend="cuda")
        s_cpu = european_option_stats(c, 1_030, 11, backend="cpu")
        s_gpu = european_option_stats(c, 1_030, 11, backend="cuda")
        out[option] = {
            "max_abs_diff": float(np.max(np.abs(cpu - gpu))),
            "price_cpu": s_cpu.price, "price_gpu": s_gpu.price,
            "se_cpu": s_cpu.standard_error, "se_gpu": s_gpu.standard_error,
            "pairs": s_gpu.pairs,
        }
    print(json.dumps(out))
    """
)


def test_cuda_kernel_agrees_with_cpu_under_the_simulator(cuda_simulator) -> None:
    answer = cuda_simulator(_CUDASIM_SCRIPT)
    for option, r in answer.items():
        assert r["pairs"] == 515, option
        assert r["max_abs_diff"] < 1e-12, option
        assert r["price_gpu"] == pytest.approx(r["price_cpu"], rel=1e-13), option
        assert r["se_gpu"] == pytest.approx(r["se_cpu"], rel=1e-10), option
