"""The autocallable CUDA kernel against the CPU kernel under numba's CUDA simulator.

The simulator must be switched on before `numba.cuda` is first imported, so the comparison runs
in a subprocess with NUMBA_ENABLE_CUDASIM=1. It runs in Python, so both backends do the same
IEEE double arithmetic with the same libm and must agree to rounding.
"""

from __future__ import annotations

import inspect
import textwrap

import pytest

from engines.structured import kernels, kernels_cuda

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
    from engines.structured import kernels, kernels_cuda
    from engines.structured.market import CashDividend, Curve, MarketData, UnderlyingMarket, VolPoint
    from engines.structured.sampling import NormalSource
    from engines.structured.simulation import Shift, make_groups, market_arrays
    from engines.structured.spec import AutocallSpec

    assert montecarlo_cuda.simulator_enabled()
    assert not kernels_cuda.cuda_available()  # the simulator never counts as a GPU

    # the device functions are compiled from the CPU's own code objects, helpers rebound to device versions
    sim_d, eval_d = kernels_cuda._device_functions()
    assert sim_d.py_func.__code__ is kernels.simulate_path.__code__
    assert eval_d.py_func.__code__ is kernels.evaluate_products.__code__
    for name, fn in (("_row_interp", sim_d), ("_basket", eval_d), ("_survival", eval_d), ("_irr", eval_d)):
        helper = fn.py_func.__globals__[name]
        assert helper.py_func.__code__ is getattr(kernels, name).py_func.__code__, name
        assert type(helper) is not type(getattr(kernels, name)), name

    market = MarketData(
        rates=Curve(times=[0.5, 1.0], rates=[0.02, 0.03]),
        underlyings={
            "A": UnderlyingMarket(spot=100.0, dividend_yield=Curve.flat(0.01),
                                  dividends=[CashDividend(time=0.4, amount=2.0)],
                                  volatility=[VolPoint(time=0.5, vol=0.35), VolPoint(time=1.0, vol=0.4)]),
            "B": UnderlyingMarket(spot=50.0, volatility=0.45),
        },
        correlation=[[1.0, 0.5], [0.5, 1.0]],
    )
    common = {"underlyings": ["A", "B"], "maturity_years": 1.0, "schedule": {"frequency": "quarterly"}}
    specs = [
        AutocallSpec(name="wo_eu", basket="worst_of", knock_in={"barrier": 0.8, "monitoring": "european"},
                     autocall={"trigger": 1.0, "step_down": 0.05}, coupon={"rate": 0.1, "barrier": 0.85},
                     **common),
        AutocallSpec(name="bo", basket="best_of", knock_in={"barrier": 0.9}, autocall={"trigger": 1.1},
                     coupon={"rate": 0.05, "conditional": False}, downside_buffer=0.05, capital_protection=0.6,
                     **common),
        AutocallSpec(name="avg", basket="average", knock_in=None, autocall={"no_call_observations": 1},
                     coupon={"rate": 0.08, "memory": False, "barrier": 0.95}, strike=1.05, **common),
        AutocallSpec(name="wo_cont", basket="worst_of", knock_in={"barrier": 0.5, "monitoring": "continuous"},
                     coupon={"rate": 0.12, "barrier": 0.8}, funding_spread=0.01, **common),
    ]

    lv_t = np.array([0.0, 0.5, 1.0])
    lv_k = np.linspace(-0.4, 0.4, 5)
    def lv_grid(level, skew_slope):
        def grid(skew):
            g = level - skew * skew_slope * lv_k[None, :] + 0.03 * lv_t[:, None]
            return np.ascontiguousarray(g), level
        return grid
    surfaces = {"t": lv_t, "k": lv_k, "A": lv_grid(0.35, 0.4), "B": lv_grid(0.45, 0.25)}

    cases = {
        "bs_base": ("bs", Shift()),
        "bs_shifted": ("bs", Shift(spot=(0.92, 1.03), rate_shift=0.01, correlation=0.3)),
        "lv": ("localvol", Shift(vol_shift=(0.02, -0.01), skew_steepening=1.2)),
    }
    n_paths = 32
    out = {}
    for case, (model, shift) in cases.items():
        (group,) = make_groups(specs, market, model)
        t = group.table
        m = market_arrays(group, market, shift, surfaces if model == "localvol" else None)
        assert m.lv_on == (model == "localvol")
        z = NormalSource(group.times, 2, 11, "pseudo", True).block(0, n_paths)
        dt = np.diff(group.times)
        n_products = t.p_int.shape[0]
        for details in (True, False):
            results = {}
            for backend, run in (("cpu", kernels.run_block), ("cuda", kernels_cuda.run_block_cuda)):
                red, cpn = np.full((n_products, n_paths), -7.0), np.full((n_products, n_paths), -7.0)
                call = np.full((n_products, n_paths), -7, dtype=np.int64)
                ki, life, redm, irr = (np.full((n_products, n_paths), -7.0) for _ in range(4))
                run(z, m.chol, m.x0, m.ref, group.times, dt, m.growth, m.sig, m.div, m.lnfwd, m.lv_on, m.lv,
                    m.lv_k, m.lv_scale, m.rate_shift, t.p_int, t.p_flt, t.p_step, t.p_obs, details,
                    red, cpn, call, ki, life, redm, irr)
                results[backend] = {"pv_red": red, "pv_cpn": cpn, "call_idx": call, "ki_prob": ki, "life": life,
                                    "redemption": redm, "irr": irr}
            cpu, gpu = results["cpu"], results["cuda"]
            r = {"steps": int(dt.shape[0])}
            for key in cpu:
                a, b = cpu[key].astype(float), gpu[key].astype(float)
                r[key] = {
                    "max_rel_diff": float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300))),
                    "untouched": bool(np.all(b == -7.0)),
                    "cpu_untouched": bool(np.all(a == -7.0)),
                }
            if details:
                r["coverage"] = {
                    "called": int(np.sum(cpu["call_idx"] >= 0)),
                    "not_called": int(np.sum(cpu["call_idx"] < 0)),
                    "knocked_in": int(np.sum(cpu["ki_prob"][[0, 1]] == 1.0)),
                    "bridge_partial": int(np.sum((cpu["ki_prob"][3] > 0.0) & (cpu["ki_prob"][3] < 1.0))),
                    "irr_finite": bool(np.all(np.isfinite(cpu["irr"]))),
                }
            out[f"{case}/details={details}"] = r
    print(json.dumps(out))
    """
)

_DETAILS = ("call_idx", "ki_prob", "life", "redemption", "irr")


@pytest.fixture(scope="module")
def simulated(cuda_simulator) -> dict:
    return cuda_simulator(_CUDASIM_SCRIPT)


def test_cuda_kernel_matches_cpu_kernel_under_the_simulator(simulated: dict) -> None:
    assert len(simulated) == 6
    for case, r in simulated.items():
        assert r["steps"] >= 52, case  # the continuous barrier asks for weekly steps
        details = case.endswith("details=True")
        for key in ("pv_red", "pv_cpn", *(_DETAILS if details else ())):
            assert not r[key]["untouched"], (case, key)
            assert r[key]["max_rel_diff"] <= 1e-12, (case, key, r[key]["max_rel_diff"])


def test_without_details_both_backends_leave_the_detail_arrays_alone(simulated: dict) -> None:
    for case, r in simulated.items():
        if case.endswith("details=False"):
            for key in _DETAILS:
                assert r[key]["untouched"] and r[key]["cpu_untouched"], (case, key)


def test_the_comparison_exercises_every_branch(simulated: dict) -> None:
    for case, r in simulated.items():
        if case.endswith("details=True"):
            c = r["coverage"]
            assert c["called"] > 0 and c["not_called"] > 0, (case, c)
            assert c["knocked_in"] > 0, (case, c)
            assert c["bridge_partial"] > 0, (case, c)
            assert c["irr_finite"], (case, c)


def test_same_signature_as_the_cpu_kernel_and_importing_needs_no_gpu() -> None:
    cpu = inspect.signature(kernels.run_block.py_func).parameters
    gpu = inspect.signature(kernels_cuda.run_block_cuda).parameters
    assert list(gpu) == list(cpu)
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in gpu.values())
    assert isinstance(kernels_cuda.cuda_available(), bool)  # asks without needing a GPU or a toolkit


_PRICING_SCRIPT = textwrap.dedent(
    """
    import json
    from engines.structured.market import Curve, MarketData, UnderlyingMarket
    from engines.structured.pricing import PricingOptions, price_many
    from engines.structured.spec import AutocallSpec

    market = MarketData(
        rates=Curve.flat(0.02),
        underlyings={"A": UnderlyingMarket(spot=100, volatility=0.25), "B": UnderlyingMarket(spot=50, volatility=0.3)},
        correlation=[[1, 0.6], [0.6, 1]],
    )
    ki = {"barrier": 0.7, "monitoring": "continuous"}
    spec = AutocallSpec(underlyings=["A", "B"], maturity_years=1.0, knock_in=ki)
    out = {}
    for backend in ("cpu", "cuda"):
        opts = PricingOptions(paths=64, seed=3, sampler="pseudo", greeks=["delta"], backend=backend)
        out[backend] = price_many([spec], market, opts)[0].to_dict()
    print(json.dumps(out))
    """
)


def test_pricing_through_the_cuda_backend_matches_the_cpu_under_the_simulator(cuda_simulator) -> None:
    out = cuda_simulator(_PRICING_SCRIPT)
    cpu, gpu = out["cpu"], out["cuda"]
    for field in ("price", "stderr", "knock_in_probability", "expected_life_years"):
        assert gpu[field] == pytest.approx(cpu[field], rel=1e-12, abs=1e-14), field
    assert gpu["greeks"]["delta"] == pytest.approx(cpu["greeks"]["delta"], rel=1e-10)
