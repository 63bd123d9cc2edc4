"""The avalanche CUDA kernel against the CPU kernel under numba's CUDA simulator.

The simulator must be switched on before `numba.cuda` is first imported, so the comparison runs in a subprocess
with NUMBA_ENABLE_CUDASIM=1 (the `cuda_simulator` fixture). It runs the device functions in Python with the
same IEEE double arithmetic and libm as the CPU, and the random numbers are counter-based, so both backends
must agree to rounding on a tiny stressed book that takes every branch: intraday and end-of-day calls, CSA
thresholds and rounding, jumps, a facility with notice and a daily cap, forced liquidation with feedback and
shortfalls.
"""

from __future__ import annotations

import inspect
import textwrap

import numpy as np

from engines.margin import avalanche_cuda, avalanche_kernels

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    try:
        from numba import cuda
    except Exception as exc:
        print(json.dumps({"skip": f"numba's CUDA target cannot be imported: {exc!r}"}))
        sys.exit(0)
    import numpy as np
    from engines.margin import avalanche as A, avalanche_cuda as C, avalanche_kernels as K, random_streams as rs
    from engines.margin.arrays import EQUITY, FactorHistory, MarginBook
    from engines.margin.venues import (BilateralCounterparty, Ccp, CcpMarginModel, CreditFacility, CsaTerms,
                                       LiquidityResources)

    assert C.simulator_enabled() and not C.cuda_available()  # the simulator never counts as a GPU
    assert C.select_backend("auto") == "cpu" and C.select_backend("cuda") == "cuda"

    # the device function is compiled from the CPU's own code objects, helpers rebound to device versions
    device = C.device_function(K.simulate_path)
    fn = getattr(device, "py_func", None) or getattr(device, "fn", None)
    assert fn.__code__ is K.simulate_path.__code__
    liquidate = fn.__globals__["_liquidate"]
    inner = getattr(liquidate, "py_func", None) or getattr(liquidate, "fn", None)
    assert inner.__code__ is K._liquidate.py_func.__code__ and type(liquidate) is not type(K._liquidate)
    pair = inner.__globals__["_venue_pnl"]
    assert type(pair) is not type(K._venue_pnl)

    venue = np.array([0, 0, 1, 1, 2, 3, 3], dtype=np.int32)
    factor = np.array([0, 1, 1, 2, 0, 2, 0], dtype=np.int32)
    delta = np.array([3e9, -1e9, 2e9, 1e9, 1.5e9, -2e9, 1e9])
    n = len(venue)
    book = MarginBook(
        factors=("EQ.A", "EQ.B", "EQ.C"), factor_class=np.full(3, EQUITY, dtype=np.int8),
        factor_currency=np.zeros(3, dtype=np.int16), factor_depth_usd=np.full(3, 2e9), venues=("V0", "V1", "V2", "V3"),
        venue_is_ccp=np.array([True, True, False, False]), managers=("M0", "M1"), strategies=("S0", "S1"),
        strategy_manager=np.array([0, 1], dtype=np.int32), currencies=("USD",),
        position_ids=tuple(f"P{i}" for i in range(n)), position_venue=venue,
        position_manager=np.array([0, 1, 1, 0, 0, 1, 0], dtype=np.int32),
        position_strategy=np.array([0, 1, 1, 0, 0, 1, 0], dtype=np.int32),
        position_currency=np.zeros(n, dtype=np.int16), position_class=np.full(n, EQUITY, dtype=np.int8),
        position_notional_usd=np.abs(delta), position_value_usd=np.array([0, 0, 0, 0, 2e7, -3e7, 0.0]),
        position_expected_return_usd=np.zeros(n), position_liquidity_factor=factor,
        load_position=np.arange(n, dtype=np.int32), load_factor=factor, load_delta=delta,
        load_gamma=np.array([1e9, 0, 0, -5e8, 0, 0, 0.0]),
    )
    rng = np.random.default_rng(3)
    days = 400
    z = rng.standard_normal((days, 3)) * np.sqrt(4 / rng.chisquare(4, (days, 1)))
    history = FactorHistory(np.arange(days).astype("datetime64[D]"), book.factors, z * [0.012, 0.008, 0.015],
                            np.zeros(days, dtype=bool))
    venues = [
        Ccp(id="V0", name="a", region="US", currency="USD",
            margin_model=CcpMarginModel(intraday_call_hours=(10, 13), intraday_call_threshold=0.05)),
        Ccp(id="V1", name="b", region="EU", currency="EUR",
            margin_model=CcpMarginModel(intraday_call_hours=(), payment_delay_hours=0)),
        BilateralCounterparty(id="V2", name="c", region="US", csa=CsaTerms(threshold_usd=5e6, rounding_usd=1e5,
                                                                           call_timing="same_day")),
        BilateralCounterparty(id="V3", name="d", region="UK", csa=CsaTerms(rounding_usd=1e4, currency="GBP")),
    ]
    res = LiquidityResources(cash_usd={"USD": 1.3e8}, operational_buffer_usd=3e7,
                             facility=CreditFacility(limit_usd=1e8, notice_hours=5, max_draw_per_day_usd=4e7))
    out = {}
    for mode, vol in (("ewma", 3.0), ("conditional", 1.3)):
        settings = A.AvalancheSettings(paths=24, hours=72, seed=5, vol_multiplier=vol, jumps_per_day=1.0,
                                       jump_size=3.0, bilateral_im_procyclicality=1.0, im_volatility=mode)
        model = A.prepare(book, history, np.array([1.5e8, 1e8, 4e7, 6e7]), res, venues, settings)
        ids = np.arange(100, 124)  # global path indices other than 0..n-1
        s_cpu, p_cpu = A.run_model(model, ids, backend="cpu")
        s_gpu, p_gpu = A.run_model(model, ids, backend="cuda")
        scale = np.maximum(np.abs(s_cpu), 1.0)
        out[mode] = {
            "stats_max_rel": float(np.max(np.abs(s_cpu - s_gpu) / scale)),
            "peak_max_abs": float(np.max(np.abs(p_cpu - p_gpu))),
            "untouched": bool(np.all(s_gpu == 0)),
            "liquidated": int(np.sum(s_cpu[:, K.S_LIQUIDATION_HOUR] >= 0)),
            "calm": int(np.sum(s_cpu[:, K.S_EXHAUST_HOUR] < 0)),
            "short": int(np.sum(s_cpu[:, K.S_SHORTFALL_HOUR] >= 0)),
            "facility_paid": int(np.sum(s_cpu[:, K.S_FACILITY] > 0)),
            "in_transit": int(np.sum(s_cpu[:, K.S_ARRIVED] < s_cpu[:, K.S_REQUESTED])),
            "returns": int(np.sum(s_cpu[:, K.S_RETURNS] > 0)),
        }
    print(json.dumps(out))
    """
)


def test_cuda_kernel_matches_cpu_kernel_under_the_simulator(cuda_simulator) -> None:
    out = cuda_simulator(_SCRIPT)
    assert set(out) == {"ewma", "conditional"}
    for mode, r in out.items():
        assert not r["untouched"], mode
        assert r["stats_max_rel"] <= 1e-12, (mode, r)
        assert r["peak_max_abs"] <= 1e-3, (mode, r)
        for branch in ("liquidated", "calm", "short", "facility_paid", "in_transit", "returns"):
            assert r[branch] > 0, (mode, branch, r)


def test_same_signature_as_the_cpu_kernel_and_importing_needs_no_gpu() -> None:
    cpu = inspect.signature(avalanche_kernels.run_paths.py_func).parameters
    gpu = inspect.signature(avalanche_cuda.run_paths_cuda).parameters
    assert list(gpu) == list(cpu)
    assert isinstance(avalanche_cuda.cuda_available(), bool)
    assert avalanche_cuda.select_backend("cpu") == "cpu"
    assert avalanche_cuda.select_backend("auto") in ("cpu", "cuda")


def test_model_arrays_are_named_in_the_kernels_order() -> None:
    from engines.margin.avalanche import MODEL_ARRAYS

    params = list(inspect.signature(avalanche_kernels.run_paths.py_func).parameters)
    assert params == ["path_ids", "iparams", "fparams", *MODEL_ARRAYS, "stats", "venue_peak"]


def test_scratch_layout_matches_the_path_function() -> None:
    """The CUDA launcher allocates `scratch_shapes` in order for the path function's scratch parameters."""
    params = list(inspect.signature(avalanche_kernels.simulate_path).parameters)
    scratch = params[params.index("Y") : params.index("stats")]
    shapes = avalanche_kernels.scratch_shapes(3, 5, 4, 2, 6, 1)
    assert len(shapes) == len(scratch) == 15
    assert shapes[params.index("ring") - params.index("Y")][0] == (4, 2)
    assert all(dtype in (np.float64, np.int8, np.int64) for _, dtype in shapes)
