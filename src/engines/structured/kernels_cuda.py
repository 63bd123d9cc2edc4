"""The autocallable Monte Carlo kernels on a GPU (numba's CUDA target): one CUDA thread per path.

`run_block_cuda` takes exactly the arguments of `kernels.run_block` and fills the same output
arrays with the same values, so the simulation can pick either backend per block.

The numerical code is not duplicated: `kernels.simulate_path` and `kernels.evaluate_products`,
and the helpers they call (`_row_interp`, `_basket`, `_survival`, `_irr`), are compiled here as CUDA
device functions from the very same Python code objects. Those functions reach their helpers
through module globals, which in `kernels` are bound to the CPU `njit` dispatchers; so each
function is rebuilt (`types.FunctionType`, same `__code__`) over a copy of the `kernels`
namespace in which every such helper is rebound to its own CUDA device version. Handing the CPU
functions to `cuda.jit(device=True)` as they are would compile for a GPU (numba-cuda retargets
`njit` dispatchers called from device code), but numba's CUDA simulator would call the compiled
CPU helpers with its fake device arrays, which `njit` cannot type; with the rebinding the
simulator runs exactly the call graph a GPU runs. It needs no change to `kernels` and picks up
a new helper by itself (any numba dispatcher that the functions name, followed recursively).

Device memory: the inputs are copied per call; per-path scratch (`perf`, `sig_used`,
`cashflows`) lives in global device memory allocated per call, with the path index last
(`perf[K + 1, A, n_paths]`) so that neighbouring threads touch neighbouring addresses; each thread
hands the device functions its strided 2-D view `perf[:, :, i]`. Everything stays in float64.

On a real GPU the numbers agree with the CPU's to the last bits, not bit for bit: NVVM fuses
multiply-adds (FMA) and libdevice's `exp`/`log` are not the CPU's libm, so a path lying exactly
on a trigger or barrier can (rarely) take the other branch; prices agree within Monte Carlo noise.
Everything is float64, which consumer GPUs run at a small fraction of their float32 rate.

Importing this module never needs a GPU or a CUDA toolkit: the kernel is compiled on first use.
Under numba's simulator (`NUMBA_ENABLE_CUDASIM=1`) the same kernel runs in Python, which is how
the tests check it against the CPU kernel without a GPU.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import numpy as np
from numba.core.dispatcher import Dispatcher

from engines.common import montecarlo_cuda
from engines.structured import kernels

try:  # a module global, not a local import: the simulator swaps the kernel's global `cuda`
    from numba import cuda
except Exception:  # no CUDA target in this numba installation
    cuda = None

THREADS_PER_BLOCK = 128
"""Threads per block: the device functions are long and use many registers, so blocks stay small."""


def cuda_available() -> bool:
    """Whether a real GPU can run the kernel; the simulator never counts (it is for tests only)."""
    return montecarlo_cuda.gpu_available()


def _device_functions() -> tuple[Any, Any]:
    """CUDA device versions of `kernels.simulate_path` and `kernels.evaluate_products` (same code objects)."""
    if cuda is None:
        raise RuntimeError("numba's CUDA target cannot be imported")
    namespace = dict(vars(kernels))  # the globals every rebuilt function sees
    done: dict[str, Any] = {}

    def device(fn: types.FunctionType) -> Any:
        for name in fn.__code__.co_names:  # the globals (and attributes) it names
            target = vars(kernels).get(name)
            if isinstance(target, Dispatcher) and name not in done:
                done[name] = target  # marks it while its own helpers are compiled
                done[name] = namespace[name] = device(target.py_func)
        rebuilt = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
        rebuilt.__qualname__ = fn.__qualname__
        rebuilt.__doc__ = fn.__doc__
        return cuda.jit(device=True)(rebuilt)

    return device(kernels.simulate_path), device(kernels.evaluate_products)


@functools.cache
def _kernel() -> Any:
    simulate_path, evaluate_products = _device_functions()

    @cuda.jit
    def run_paths(  # type: ignore[no-untyped-def]
        z, chol, x0, ref, t_grid, dt, growth, sig, div, lnfwd, lv_on, lv, lv_k, lv_scale, rate_shift,
        p_int, p_flt, p_step, p_obs, details, pv_red, pv_cpn, call_idx, ki_prob, life, redemption, irr,
        perf, sig_used, cashflows,
    ):  # fmt: skip
        i = cuda.grid(1)
        if i < z.shape[0]:
            path_perf = perf[:, :, i]
            path_sig = sig_used[:, :, i]
            path_cf = cashflows[:, :, i]
            if details:  # as the CPU's per-chunk np.zeros (evaluate_products also writes each slot before reading it)
                for p in range(path_cf.shape[0]):
                    for j in range(path_cf.shape[1]):
                        path_cf[p, j] = 0.0
            simulate_path(i, z, chol, x0, ref, t_grid, dt, growth, sig, div, lnfwd, lv_on, lv, lv_k,
                          lv_scale, path_perf, path_sig)  # fmt: skip
            evaluate_products(i, path_perf, path_sig, dt, rate_shift, p_int, p_flt, p_step, p_obs, details,
                              pv_red, pv_cpn, call_idx, ki_prob, life, redemption, irr, path_cf)  # fmt: skip

    return run_paths


def _to_device(a: Any) -> Any:
    return cuda.to_device(np.ascontiguousarray(a))


def _copy_back(device_array: Any, host: np.ndarray) -> None:
    if host.flags.c_contiguous:
        device_array.copy_to_host(host)
    else:
        host[...] = device_array.copy_to_host()


def run_block_cuda(
    z, chol, x0, ref, t_grid, dt, growth, sig, div, lnfwd, lv_on, lv, lv_k, lv_scale, rate_shift,
    p_int, p_flt, p_step, p_obs, details, pv_red, pv_cpn, call_idx, ki_prob, life, redemption, irr,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """`kernels.run_block` on the GPU: same arguments, same outputs written into the same host arrays.

    `pv_red` and `pv_cpn` are always written; `call_idx`, `ki_prob`, `life`, `redemption` and `irr`
    only when `details` (otherwise they are left as they were, as on the CPU).
    """
    if cuda is None:
        raise RuntimeError("numba's CUDA target cannot be imported")
    n = z.shape[0]
    if n == 0:
        return
    n_steps = dt.shape[0]
    n_assets = x0.shape[0]
    n_products = p_int.shape[0]
    n_obs = p_step.shape[1]
    details = bool(details)
    outputs = [pv_red, pv_cpn] + ([call_idx, ki_prob, life, redemption, irr] if details else [])
    device_out = [cuda.device_array(a.shape, dtype=a.dtype) for a in outputs]
    if not details:  # never indexed: stand-ins of the right types
        device_out += [cuda.device_array((1, 1), dtype=a.dtype) for a in (call_idx, ki_prob, life, redemption, irr)]
    perf = cuda.device_array((n_steps + 1, n_assets, n), dtype=np.float64)
    sig_used = cuda.device_array((n_steps + 1, n_assets, n), dtype=np.float64)
    cashflows = cuda.device_array((n_products, n_obs, n) if details else (1, 1, n), dtype=np.float64)
    inputs = [_to_device(a) for a in (z, chol, x0, ref, t_grid, dt, growth, sig, div, lnfwd)]
    lv_inputs = [_to_device(a) for a in (lv, lv_k, lv_scale)]
    products = [_to_device(a) for a in (p_int, p_flt, p_step, p_obs)]
    threads = min(THREADS_PER_BLOCK, n)
    blocks = (n + threads - 1) // threads
    _kernel()[blocks, threads](
        *inputs, bool(lv_on), *lv_inputs, float(rate_shift), *products, details, *device_out,
        perf, sig_used, cashflows,
    )  # fmt: skip
    for dev, host in zip(device_out, outputs, strict=False):
        _copy_back(dev, host)
