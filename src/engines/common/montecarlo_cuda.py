"""The antithetic pair payoff of `engines.common.montecarlo` as a CUDA kernel (numba's CUDA target).

Used when a GPU is present. The normals still come from numpy on the host, so a seed gives the
same draws on either backend and the results agree to the last bits of `exp`; the sums are taken
on the host with the CPU kernel, in the same fixed block order. Importing this module never needs
a GPU or a CUDA toolkit: the kernel is compiled on first use. Under the CUDA simulator
(`NUMBA_ENABLE_CUDASIM=1`) the same kernel runs in Python, which is how the tests check it
against the CPU path without a GPU.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engines.common.montecarlo import pair_payoff

try:  # a module global, not a local import: the simulator swaps the kernel's global `cuda`
    from numba import cuda
except Exception:  # no CUDA target in this numba installation
    cuda = None

THREADS_PER_BLOCK = 256


def cuda_importable() -> bool:
    """Whether numba's CUDA target (numba-cuda, or numba's built-in one) could be imported."""
    return cuda is not None


def simulator_enabled() -> bool:
    """Whether numba runs CUDA kernels in its Python simulator (`NUMBA_ENABLE_CUDASIM=1`)."""
    from numba import config

    return bool(getattr(config, "ENABLE_CUDASIM", False))


@functools.cache
def gpu_available() -> bool:
    """Whether a real GPU can run the kernel: the simulator does not count (it is for tests only).
    Asked once per process (the answer does not change while it runs)."""
    if simulator_enabled() or cuda is None:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


@functools.cache
def _kernel() -> Any:
    if cuda is None:
        raise RuntimeError("numba's CUDA target cannot be imported")

    payoff = cuda.jit(device=True)(pair_payoff)

    @cuda.jit
    def pair_payoffs(z, spot, strike, drift, diffusion, discount, is_call, out):  # type: ignore[no-untyped-def]
        i = cuda.grid(1)
        if i < z.size:
            out[i] = payoff(z[i], spot, strike, drift, diffusion, discount, is_call)

    return pair_payoffs


def pair_payoffs_cuda(
    z: NDArray[np.float64],
    spot: float,
    strike: float,
    drift: float,
    diffusion: float,
    discount: float,
    is_call: bool,
    out: NDArray[np.float64],
) -> None:
    """Write the pair-averaged discounted payoff of each normal in `z` into `out` (on the GPU).

    `drift` = (r - q - σ²/2) T, `diffusion` = σ √T, `discount` = e^{-rT}.
    """
    if cuda is None:
        raise RuntimeError("numba's CUDA target cannot be imported")
    n = z.size
    if n == 0:
        return
    device_z = cuda.to_device(np.ascontiguousarray(z, dtype=np.float64))
    device_out = cuda.device_array(n, dtype=np.float64)
    blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    _kernel()[blocks, THREADS_PER_BLOCK](
        device_z, float(spot), float(strike), float(drift), float(diffusion), float(discount), bool(is_call), device_out
    )
    device_out.copy_to_host(out)
