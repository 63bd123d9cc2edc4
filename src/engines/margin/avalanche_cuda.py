"""The avalanche kernel on a GPU (numba's CUDA target): one CUDA thread per path, and the selector of the backend.

`run_paths_cuda` takes exactly the arguments of `avalanche_kernels.run_paths` and fills the same output arrays
with the same values. The numerical code is not duplicated: `avalanche_kernels.simulate_path` and every numba
function it reaches (the sale helpers, the Philox generator of `random_streams`) are compiled as CUDA device
functions from the very same Python code objects. A function reaches its helpers through its module's globals,
which hold the CPU `njit` dispatchers; so each function is rebuilt (`types.FunctionType`, same `__code__`) over
a copy of its own module's globals in which every dispatcher it names is rebound to that helper's device
version, recursively. Under numba's CUDA simulator the rebuilt functions run as Python, so the simulator runs
exactly the call graph a GPU runs.

The random numbers are counter-based (`random_streams`): a thread draws the same numbers for its path as the
CPU does, so on the simulator both backends agree to rounding (same IEEE arithmetic, same libm); on a real GPU
to the last bits (NVVM fuses multiply-adds and libdevice's `log`/`cos` are not the CPU's libm), so a path lying
exactly on a call threshold may, rarely, call an hour apart.

Device memory: the inputs are copied once per call; each thread's scratch (components, factor displacements,
collateral balances, the ring of calls due ...) lives in global memory with the path index last, so that
neighbouring threads touch neighbouring addresses, and paths run in batches of at most `BATCH_PATHS` to bound
that memory (about 55 kB per path on the sample book). Everything is float64.

Importing this module never needs a GPU or a CUDA toolkit: the kernel is compiled on first use.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import numpy as np
from numba.core.dispatcher import Dispatcher

from engines.margin import avalanche_kernels as kernels

try:  # a module global, not a local import: the simulator swaps the kernel's global `cuda`
    from numba import cuda
except Exception:  # no CUDA target in this numba installation
    cuda = None

THREADS_PER_BLOCK = 64
"""Threads per block: the path function is long and uses many registers, so blocks stay small."""
BATCH_PATHS = 16_384
"""Paths per launch (bounds the scratch memory on the device)."""


def simulator_enabled() -> bool:
    """Whether numba runs CUDA kernels in its Python simulator (`NUMBA_ENABLE_CUDASIM=1`)."""
    from numba import config

    return bool(getattr(config, "ENABLE_CUDASIM", False))


@functools.cache
def cuda_available() -> bool:
    """Whether a real GPU can run the kernel; the simulator never counts (it is for tests only)."""
    if cuda is None or simulator_enabled():
        return False
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


def select_backend(backend: str) -> str:
    """The backend to run: "cuda" when asked for, or with "auto" when a GPU is present; else "cpu"."""
    if backend not in ("auto", "cpu", "cuda"):
        raise ValueError(f"backend: must be 'auto', 'cpu' or 'cuda', got {backend!r}")
    if backend == "cpu":
        return "cpu"
    if backend == "cuda":
        if cuda is None:
            raise RuntimeError("backend: 'cuda' asked for, but numba's CUDA target cannot be imported")
        return "cuda"
    return "cuda" if cuda_available() else "cpu"


def device_function(fn: types.FunctionType, done: dict[int, Any] | None = None) -> Any:
    """`fn` as a CUDA device function, rebuilt over its module's globals with every numba dispatcher it names
    (recursively) rebound to that helper's own device version."""
    if cuda is None:
        raise RuntimeError("numba's CUDA target cannot be imported")
    done = {} if done is None else done
    namespace = dict(fn.__globals__)
    for name in fn.__code__.co_names:
        target = fn.__globals__.get(name)
        if isinstance(target, Dispatcher):
            key = id(target)
            if key not in done:
                done[key] = device_function(target.py_func, done)
            namespace[name] = done[key]
    rebuilt = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
    rebuilt.__qualname__ = fn.__qualname__
    rebuilt.__doc__ = fn.__doc__
    return cuda.jit(device=True)(rebuilt)


@functools.cache
def _kernel() -> Any:
    simulate_path = device_function(kernels.simulate_path)

    @cuda.jit
    def run(  # type: ignore[no-untyped-def]
        path_ids, iparams, fparams, comp_w, venue_comp, venue_var, gam_ptr, gam_g, gam_value, gam_comp, gam_factor,
        fd_ptr, fd_factor, fd_value, venue_call, hour_flags, venue_int, venue_flt, venue_order, pair_ptr, pair_factor,
        pair_flt, factor_depth, Y, D, E, tflag, touched, bal, cum_v, keep, offset, ewma, last_pnl, ring, Q, arrivals,
        xg, stats, venue_peak,
    ):  # fmt: skip
        i = cuda.grid(1)
        if i < path_ids.shape[0]:
            simulate_path(i, path_ids[i], iparams, fparams, comp_w, venue_comp, venue_var, gam_ptr, gam_g, gam_value,
                          gam_comp, gam_factor, fd_ptr, fd_factor, fd_value, venue_call, hour_flags, venue_int,
                          venue_flt, venue_order, pair_ptr, pair_factor, pair_flt, factor_depth, Y[:, i], D[:, i],
                          E[:, i], tflag[:, i], touched[:, i], bal[:, i], cum_v[:, i], keep[:, i], offset[:, i],
                          ewma[:, i], last_pnl[:, i], ring[:, :, i], Q[:, i], arrivals[:, i], xg[:, i], stats,
                          venue_peak)  # fmt: skip

    return run


def run_paths_cuda(
    path_ids, iparams, fparams, comp_w, venue_comp, venue_var, gam_ptr, gam_g, gam_value, gam_comp, gam_factor,
    fd_ptr, fd_factor, fd_value, venue_call, hour_flags, venue_int, venue_flt, venue_order, pair_ptr, pair_factor,
    pair_flt, factor_depth, stats, venue_peak,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """`avalanche_kernels.run_paths` on the GPU: same arguments, same outputs written into the same host arrays."""
    if cuda is None:
        raise RuntimeError("numba's CUDA target cannot be imported")
    n = path_ids.shape[0]
    if n == 0:
        return
    shapes = kernels.scratch_shapes(comp_w.shape[0], factor_depth.shape[0], venue_comp.shape[0],
                                    int(iparams[kernels.I_RING]), int(iparams[kernels.I_RING_FACILITY]),
                                    gam_comp.shape[0])  # fmt: skip
    model = [cuda.to_device(np.ascontiguousarray(a)) for a in (
        iparams, fparams, comp_w, venue_comp, venue_var, gam_ptr, gam_g, gam_value, gam_comp, gam_factor,
        fd_ptr, fd_factor, fd_value, venue_call, hour_flags, venue_int, venue_flt, venue_order, pair_ptr, pair_factor,
        pair_flt, factor_depth,
    )]  # fmt: skip
    kernel = _kernel()
    for start in range(0, n, BATCH_PATHS):
        stop = min(n, start + BATCH_PATHS)
        m = stop - start
        scratch = [cuda.device_array((*shape, m), dtype=dtype) for shape, dtype in shapes]
        ids = cuda.to_device(np.ascontiguousarray(path_ids[start:stop]))
        out_stats = cuda.device_array((m, stats.shape[1]), dtype=stats.dtype)
        out_peak = cuda.device_array((m, venue_peak.shape[1]), dtype=venue_peak.dtype)
        threads = min(THREADS_PER_BLOCK, m)
        blocks = (m + threads - 1) // threads
        kernel[blocks, threads](ids, *model, *scratch, out_stats, out_peak)
        stats[start:stop] = out_stats.copy_to_host()
        venue_peak[start:stop] = out_peak.copy_to_host()
