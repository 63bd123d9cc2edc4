"""The XVA engine's CUDA kernels (state propagation, swap cash flows and floating legs) against the CPU's, under
numba's CUDA simulator, and the device selection.

The simulator must be switched on before `numba.cuda` is first imported, so the comparison runs in a subprocess
with NUMBA_ENABLE_CUDASIM=1 (the `cuda_simulator` fixture) and RISKLAB_XVA_DEVICE switched between cpu and cuda.
The simulator runs the kernels in Python with the CPU's IEEE double arithmetic and libm, so the devices agree to
rounding: the states to 1e-12 relative (the CPU's BLAS sums in another order) and the values to 1e-9 relative.
Sizes are tiny (the simulator is slow): a few paths on a short grid, a handful of swaps in USD and EUR.
"""

from __future__ import annotations

import inspect
import textwrap

import numpy as np
import pytest

from engines.xva import cuda_kernels, kernels, scenarios

_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    try:
        from numba import cuda
    except Exception as exc:
        print(json.dumps({"skip": f"numba's CUDA target cannot be imported: {exc!r}"}))
        sys.exit(0)
    from datetime import date
    import numpy as np
    from engines.common import montecarlo_cuda
    from engines.xva import cuda_kernels as C, kernels as K, pricing as P, scenarios as S
    from engines.xva.market import sample_market
    from engines.xva.trades import CrossCurrencySwap, InterestRateSwap, SwapLeg, Swaption

    assert montecarlo_cuda.simulator_enabled()
    os.environ["RISKLAB_XVA_DEVICE"] = "auto"
    assert C.selected_device() == "cpu"  # the simulator never counts as a GPU
    os.environ["RISKLAB_XVA_DEVICE"] = "cuda"
    assert C.use_cuda()

    def rel(a, b):
        a, b = np.asarray(a), np.asarray(b)
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)) if b.size else 0.0

    out = {}
    market = sample_market()
    grid = S.time_grid("1M,3M:monthly,1Y,18M", market.as_of, [10])
    S.PATH_BLOCK = 4  # several random-number blocks: the CPU steps them one by one, CUDA in one launch
    seen = []
    cpu_propagate = S.propagate_states

    def recording(phi, root, z):
        seen.append((phi, root, z))
        return cpu_propagate(phi, root, z)

    S.propagate_states = recording
    scen = {}
    for device in ("cpu", "cuda"):
        os.environ["RISKLAB_XVA_DEVICE"] = device
        scen[device] = S.simulate(market, grid, 10, 7)
    S.propagate_states = cpu_propagate
    out["cpu_launches"] = len(seen)
    phi, root, _ = seen[0]
    z = np.concatenate([r[2] for r in seen])
    state_cpu = S.propagate_states(phi, root, z)
    state_gpu = C.propagate_states_cuda(phi, root, z)
    out["state_shape"] = [list(state_cpu.shape), list(state_gpu.shape)]
    # relative to each component's scale on each date (date 0 is exactly 0 on both)
    scale = np.max(np.abs(state_cpu), axis=0)[1:]
    out["state_rel"] = float(np.max(np.abs(state_gpu - state_cpu)[:, 1:] / scale))
    out["state_date0"] = float(np.max(np.abs(state_gpu[:, 0])))
    a, b = scen["cuda"], scen["cpu"]
    out["paths_rel"] = {k: rel(getattr(a, k), getattr(b, k)) for k in
                        ("x", "fx", "equity", "numeraire", "credit_g", "credit_h")}

    as_of = market.as_of
    swap = dict(notional=5e7, fixed_rate=0.031)
    trades = [
        InterestRateSwap(trade_id="U1", netting_set_id="N", currency="USD", start_date=as_of,
                         maturity_date=date(2027, 7, 1), pay_fixed=True, **swap),
        InterestRateSwap(trade_id="U2", netting_set_id="N", currency="USD", start_date=date(2024, 11, 15),
                         maturity_date=date(2028, 11, 15), pay_fixed=False, float_spread=0.0015,
                         current_fixing=0.0432, **swap),
        InterestRateSwap(trade_id="E1", netting_set_id="N", currency="EUR", start_date=date(2025, 12, 31),
                         maturity_date=date(2029, 12, 31), pay_fixed=True, float_spread=-0.0007, **swap),
        InterestRateSwap(trade_id="E2", netting_set_id="M", currency="EUR", start_date=date(2024, 3, 20),
                         maturity_date=date(2027, 3, 20), pay_fixed=False, **swap),
        CrossCurrencySwap(trade_id="X1", netting_set_id="M", start_date=as_of, maturity_date=date(2028, 6, 30),
                          pay_leg=SwapLeg(currency="USD", notional=1.1e7, spread=0.001),
                          receive_leg=SwapLeg(currency="EUR", notional=1e7, fixed_rate=0.024)),
        Swaption(trade_id="W1", netting_set_id="M", currency="EUR", notional=3e7, expiry_date=date(2025, 12, 31),
                 maturity_date=date(2028, 12, 31), strike=0.025, payer=True),
    ]
    x = scen["cpu"]
    tables = P.compile_trades(trades, [0, 0, 1, 2, 2, 3], x, 4)
    out["gated_rows"] = int(np.sum(tables.cashflows["gate"] >= 0) + np.sum(tables.floats["gate"] >= 0))
    n_dates = len(x.grid.times)
    mask = np.ones((4, n_dates), dtype=np.uint8)
    mask[1, 3] = 0
    mask[2, ::2] = 0
    start = np.random.default_rng(1).standard_normal((4, n_dates, x.paths)) * 1e6  # values are added into `out`
    values = {}
    for device in ("cpu", "cuda"):
        os.environ["RISKLAB_XVA_DEVICE"] = device
        assert (P._swap_kernels()[1] is C.value_float_legs_cuda) == (device == "cuda")
        values[device] = P.value_on_paths(tables, x, mask, out=start.copy(), method="direct") - start
    scale = np.maximum(np.max(np.abs(values["cpu"]), axis=(1, 2), keepdims=True), 1.0)
    out["values_rel"] = float(np.max(np.abs(values["cuda"] - values["cpu"]) / scale))
    out["values_scale"] = float(np.min(scale))
    out["masked_zero"] = bool(np.all(values["cuda"][1, 3] == 0) and np.all(values["cuda"][2, ::2] == 0))
    # the swap kernels alone, on every table row, against the CPU kernels with the very same arguments
    m = P._market_arrays(x)
    c, f, q = tables.cashflows, tables.floats, tables.coupons
    common = (mask, m.times, x.x, x.fx, m.lnp0, m.yv, m.a, m.usd)
    cash = (c["slot"], c["ccy"], c["pay"], c["amount"], c["lnp_pay"], *P._gate_columns(c["gate"], tables.gates))
    flt = (f["slot"], f["ccy"], f["notional"], f["spread"], f["first"], f["count"],
           *P._gate_columns(f["gate"], tables.gates),
           q["start"], q["end"], q["tau"], q["fix_date"], q["fixing"], q["lnp_start"], q["lnp_end"])
    kern = {}
    for name, cpu_kernel, gpu_kernel, args in (("cashflows", K.value_cashflows, C.value_cashflows_cuda, cash),
                                              ("float_legs", K.value_float_legs, C.value_float_legs_cuda, flt)):
        o_cpu, o_gpu = np.zeros((4, n_dates, x.paths)), np.zeros((4, n_dates, x.paths))
        cpu_kernel(o_cpu, *common, *args)
        gpu_kernel(o_gpu, *common, *args)
        kern[name] = {"rel": rel(o_gpu, o_cpu), "nonzero": int(np.count_nonzero(o_cpu))}
    out["kernels"] = kern
    print(json.dumps(out))
    """
)


def test_cuda_kernels_match_the_cpu_under_the_simulator(cuda_simulator) -> None:
    out = cuda_simulator(_SCRIPT)
    assert out["cpu_launches"] == 3  # 10 paths in blocks of 4 on the CPU; a single launch on CUDA
    assert out["state_shape"][0] == out["state_shape"][1]
    assert out["state_date0"] == 0.0
    assert out["state_rel"] <= 1e-12, out
    for name, r in out["paths_rel"].items():
        assert r <= 1e-12, (name, out)
    assert out["gated_rows"] > 0  # the physical swaption's underlying counts only where exercised
    assert out["values_scale"] > 1e5  # every slot holds real values
    assert out["values_rel"] <= 1e-9, out
    assert out["masked_zero"]
    for name, r in out["kernels"].items():
        assert r["nonzero"] > 0, (name, out)
        assert r["rel"] <= 1e-9, (name, out)


def test_same_signatures_as_the_cpu_functions_and_importing_needs_no_gpu() -> None:
    def params(fn) -> list[str]:
        return list(inspect.signature(getattr(fn, "py_func", fn)).parameters)

    assert params(cuda_kernels.value_cashflows_cuda) == params(kernels.value_cashflows)
    assert params(cuda_kernels.value_float_legs_cuda) == params(kernels.value_float_legs)
    assert params(cuda_kernels.propagate_states_cuda) == params(scenarios.propagate_states)


def test_device_selection_from_the_environment(monkeypatch) -> None:
    from engines.common import montecarlo_cuda

    monkeypatch.setenv(cuda_kernels.DEVICE_ENV, "cpu")
    assert cuda_kernels.selected_device() == "cpu" and not cuda_kernels.use_cuda()
    monkeypatch.delenv(cuda_kernels.DEVICE_ENV)
    gpu = montecarlo_cuda.gpu_available()
    assert cuda_kernels.selected_device() == ("cuda" if gpu else "cpu")
    monkeypatch.setenv(cuda_kernels.DEVICE_ENV, "AUTO")
    assert cuda_kernels.selected_device() == ("cuda" if gpu else "cpu")
    monkeypatch.setenv(cuda_kernels.DEVICE_ENV, "gpu")
    with pytest.raises(ValueError, match="RISKLAB_XVA_DEVICE"):
        cuda_kernels.selected_device()
    monkeypatch.setenv(cuda_kernels.DEVICE_ENV, "cuda")
    if gpu:
        assert cuda_kernels.use_cuda()
    else:  # forced without a GPU: a clear error, not a silent fallback
        with pytest.raises(RuntimeError, match="RISKLAB_XVA_DEVICE=cuda"):
            cuda_kernels.use_cuda()


def test_normals_of_several_blocks_are_the_blocks_drawn_one_by_one() -> None:
    """A CUDA launch takes several random-number blocks at once: the paths are those of the blocks drawn alone."""
    b = scenarios.PATH_BLOCK
    whole = scenarios._market_normals(5, b, 3 * b + 7, 4, 3)
    parts = [scenarios._market_normals(5, b0, min(b0 + b, 3 * b + 7), 4, 3) for b0 in range(b, 3 * b + 7, b)]
    assert whole.shape == (2 * b + 7, 4, 3)
    np.testing.assert_array_equal(whole, np.concatenate(parts))


def test_launch_paths_are_whole_blocks_within_the_memory_budget() -> None:
    b = scenarios.PATH_BLOCK
    n = cuda_kernels.launch_paths(200, 75, b)
    assert n % b == 0 and n >= b
    assert n * 8 * 75 * 399 <= cuda_kernels.LAUNCH_BYTES
    assert cuda_kernels.launch_paths(10**6, 10**3, b) == b  # never fewer than one block
