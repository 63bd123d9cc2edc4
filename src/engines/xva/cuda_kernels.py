"""The XVA engine's path generation and swap valuation on a GPU (numba's CUDA target), and the device selector.

**What runs on the GPU.** When `use_cuda()` is true, `scenarios.simulate` propagates the joint market state over
the time grid with `propagate_states_cuda` (one CUDA thread per path: s_{k+1} = Φ_k s_k + L_k z_k, the step's
transition matrix and noise root applied to the standard normals that the host draws exactly as on the CPU, from
the same per-block Philox streams), and `pricing.value_on_paths(method="direct")` values the fixed cash flows and
floating legs of swaps, cross-currency swaps, FX forwards and exercised physical swaptions with
`value_cashflows_cuda` and `value_float_legs_cuda` (one thread per path and simulation date, looping over the
table's rows in the CPU's order, so each output cell receives the same additions in the same order). Everything
else (the deterministic per-step matrices, the drifts, the Chebyshev aggregation, swaptions, options, CDS) stays on
the CPU. The launchers take exactly the arguments of their CPU counterparts (`scenarios.propagate_states`,
`kernels.value_cashflows`, `kernels.value_float_legs`) and return or add into the same host arrays; host inputs
are copied to the device per call (`phi` and `root` once per simulation) and `out` is copied there and back.

The bond maths is shared rather than duplicated: `kernels._b` (the Hull–White B(τ)) and `kernels._first_alive`
(the running coupon) are compiled as CUDA device functions from the CPU's own code objects, and the per-path
formulas below repeat the CPU kernels' expressions term for term.

**How it was checked.** `tests/engines/xva/test_xva_cuda.py` runs both devices under numba's CUDA simulator
(`NUMBA_ENABLE_CUDASIM=1`, which executes the kernels in Python with the CPU's IEEE double arithmetic and libm):
the propagated states agree with the CPU's BLAS products to 1e-12 relative (only the summation order differs),
the simulated FX, equity, numeraire and credit-factor paths likewise, and swap values on paths (two currencies,
spreads, a seasoned coupon with a known fixing, a forward start, a gated physical swaption, a mask, values added
into a non-zero `out`) to 1e-9 relative (measured: 7e-16 for the states, the values bit for bit). On a real GPU
NVVM fuses multiply-adds and libdevice's `exp`/`expm1` are not the CPU's libm, so results agree to the last bits,
not bit for bit.

**Device selection** (`selected_device`): the environment variable `RISKLAB_XVA_DEVICE` is `cpu`, `cuda` or
`auto` (the default): `auto` uses CUDA when `numba.cuda.is_available()` (the simulator never counts: it is for
tests), `cuda` insists and raises a clear error when no GPU (or simulator) can run the kernels. Importing this
module never needs a GPU, numba-cuda or a CUDA toolkit: the kernels are compiled on first use.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from engines.common import montecarlo_cuda
from engines.xva import kernels

try:  # a module global, not a local import: the simulator swaps the kernels' global `cuda`
    from numba import cuda
except Exception:  # no CUDA target in this numba installation
    cuda = None

DEVICE_ENV = "RISKLAB_XVA_DEVICE"
"""Environment variable choosing the XVA engine's device: cpu, cuda or auto (default)."""
THREADS_PER_BLOCK = 128
"""Threads per block along the path axis (paths are innermost in every array, so neighbours read neighbours)."""
LAUNCH_BYTES = 1 << 29
"""Device memory for the normals and states of one propagation launch (bounds the paths per launch)."""

Device = Literal["cpu", "cuda"]


# ---------------------------------------------------------------------------------------------
# Device selection
# ---------------------------------------------------------------------------------------------


def selected_device() -> Device:
    """The device the XVA kernels run on, from `RISKLAB_XVA_DEVICE` (read on every call, so tests can switch it).

    `cpu`: the numba CPU kernels. `auto` or unset: CUDA when a real GPU is available, else the CPU. `cuda`: CUDA,
    or a RuntimeError saying why it cannot run (a GPU is needed, or numba's simulator switched on for tests)."""
    wanted = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "cpu", "cuda"):
        raise ValueError(f"{DEVICE_ENV}: must be 'auto', 'cpu' or 'cuda', got {wanted!r}")
    if wanted == "cpu":
        return "cpu"
    if wanted == "auto":
        return "cuda" if montecarlo_cuda.gpu_available() else "cpu"
    if cuda is None:
        raise RuntimeError(
            f"{DEVICE_ENV}=cuda, but numba's CUDA target cannot be imported: install the 'cuda' extra (numba-cuda), "
            f"or set {DEVICE_ENV}=cpu"
        )
    if not (montecarlo_cuda.simulator_enabled() or montecarlo_cuda.gpu_available()):
        raise RuntimeError(
            f"{DEVICE_ENV}=cuda, but no CUDA GPU is available (numba.cuda.is_available() is false): "
            f"check the driver, or set {DEVICE_ENV}=cpu"
        )
    return "cuda"


def use_cuda() -> bool:
    """Whether the XVA kernels run on CUDA (`selected_device() == "cuda"`)."""
    return selected_device() == "cuda"


# ---------------------------------------------------------------------------------------------
# Device functions (compiled on first use)
# ---------------------------------------------------------------------------------------------


def _ln_bond(lnp_end, lnp0_cd, bb, y):  # type: ignore[no-untyped-def]
    """ln P(t, T | x) + B·x = ln P(0,T) − ln P(0,t) − ½B²y(t): the deterministic part of a Hull–White bond."""
    return lnp_end - lnp0_cd - 0.5 * bb * bb * y


def _exercised(x, gate_date, gate_ccy, gate_x, gate_sign, i, p):  # type: ignore[no-untyped-def]
    """Whether row i counts on path p: not gated, or its swaption was exercised on that path."""
    g = gate_date[i]
    return g < 0 or (x[gate_ccy[i], g, p] - gate_x[i]) * gate_sign[i] > 0.0


def _require_cuda() -> None:
    if cuda is None:
        raise RuntimeError("numba's CUDA target cannot be imported (install the 'cuda' extra: numba-cuda)")


@functools.cache
def _kernels() -> tuple[Any, Any, Any]:
    """The three CUDA kernels (propagation, cash flows, floating legs), compiled once per process."""
    _require_cuda()
    b = cuda.jit(device=True)(kernels._b.py_func)  # same code objects as the CPU kernels' helpers
    first_alive = cuda.jit(device=True)(kernels._first_alive.py_func)
    ln_bond = cuda.jit(device=True)(_ln_bond)
    exercised = cuda.jit(device=True)(_exercised)

    @cuda.jit
    def propagate(phi, root, z, state):  # type: ignore[no-untyped-def]
        """One thread per path p: state[:, k+1, p] = Φ_k state[:, k, p] + L_k z[:, k, p] from state[:, 0, p] = 0.
        z is [component, step, path] and state [component, date, path]."""
        p = cuda.grid(1)
        if p < z.shape[2]:
            n_c = phi.shape[1]
            for i in range(n_c):
                state[i, 0, p] = 0.0
            for k in range(phi.shape[0]):
                for i in range(n_c):
                    drift = 0.0
                    for j in range(n_c):
                        f = phi[k, i, j]
                        if f != 0.0:  # Φ is the identity plus a few decays: skip its zeros (uniform branch)
                            drift += f * state[j, k, p]
                    noise = 0.0
                    for j in range(n_c):
                        noise += root[k, i, j] * z[j, k, p]
                    state[i, k + 1, p] = drift + noise

    @cuda.jit
    def cashflows(  # type: ignore[no-untyped-def]
        out, mask, times, x, fx, lnp0, yv, a, usd,
        slot, ccy, pay, amount, lnp_pay,
        gate_date, gate_ccy, gate_x, gate_sign,
    ):  # fmt: skip
        """One thread per (path p, date d): every row's fixed amount, as `kernels.value_cashflows`."""
        p, d = cuda.grid(2)
        if p < out.shape[2] and d < times.shape[0]:
            t = times[d]
            for i in range(slot.shape[0]):
                s = slot[i]
                T = pay[i]
                g = gate_date[i]
                if t >= T or mask[s, d] == 0 or (g >= 0 and d < g):
                    continue
                c = ccy[i]
                bb = b(a[c], T - t)
                ln_a = ln_bond(lnp_pay[i], lnp0[c, d], bb, yv[c, d])
                v = amount[i] * math.exp(ln_a - bb * x[c, d, p])
                if not exercised(x, gate_date, gate_ccy, gate_x, gate_sign, i, p):
                    v = 0.0
                if c != usd:
                    v *= fx[c, d, p]
                out[s, d, p] += v

    @cuda.jit
    def float_legs(  # type: ignore[no-untyped-def]
        out, mask, times, x, fx, lnp0, yv, a, usd,
        slot, ccy, notional, spread, first, count,
        gate_date, gate_ccy, gate_x, gate_sign,
        c_start, c_end, c_tau, c_fix_date, c_fixing, c_lnp_start, c_lnp_end,
    ):  # fmt: skip
        """One thread per (path p, date d): every floating leg, as `kernels.value_float_legs`."""
        p, d = cuda.grid(2)
        if p < out.shape[2] and d < times.shape[0]:
            t = times[d]
            for i in range(slot.shape[0]):
                s = slot[i]
                j_last = first[i] + count[i] - 1
                g = gate_date[i]
                if t >= c_end[j_last] or mask[s, d] == 0 or (g >= 0 and d < g):
                    continue
                if not exercised(x, gate_date, gate_ccy, gate_x, gate_sign, i, p):
                    continue
                c = ccy[i]
                ac = a[c]
                y = yv[c, d]
                sp = spread[i]
                j0 = first_alive(c_end, first[i], j_last, t)
                fixed = c_start[j0] <= t
                j1 = j0 + 1 if fixed else j0
                xp = x[c, d, p]
                v = 0.0
                if fixed:
                    fd = c_fix_date[j0]
                    if fd >= 0:
                        tf = times[fd]
                        b_fs = b(ac, c_start[j0] - tf)
                        b_fe = b(ac, c_end[j0] - tf)
                        ln_fs = ln_bond(c_lnp_start[j0], lnp0[c, fd], b_fs, yv[c, fd])
                        ln_fe = ln_bond(c_lnp_end[j0], lnp0[c, fd], b_fe, yv[c, fd])
                        xf = x[c, fd, p]
                        rate = (math.exp(ln_fs - b_fs * xf - ln_fe + b_fe * xf) - 1.0) / c_tau[j0]
                    else:
                        rate = c_fixing[j0]
                    b_e0 = b(ac, c_end[j0] - t)
                    ln_e0 = ln_bond(c_lnp_end[j0], lnp0[c, d], b_e0, y)
                    v += (rate + sp) * c_tau[j0] * math.exp(ln_e0 - b_e0 * xp)
                if j1 <= j_last:  # coupons not yet reset: N(P(t,S) − P(t,E)) telescoped, plus the spread annuity
                    b_s1 = b(ac, c_start[j1] - t)
                    ln_s1 = ln_bond(c_lnp_start[j1], lnp0[c, d], b_s1, y)
                    b_el = b(ac, c_end[j_last] - t)
                    ln_el = ln_bond(c_lnp_end[j_last], lnp0[c, d], b_el, y)
                    v += math.exp(ln_s1 - b_s1 * xp) - math.exp(ln_el - b_el * xp)
                    if sp != 0.0:
                        for j in range(j1, j_last + 1):
                            bj = b(ac, c_end[j] - t)
                            v += sp * c_tau[j] * math.exp(ln_bond(c_lnp_end[j], lnp0[c, d], bj, y) - bj * xp)
                v *= notional[i]
                if c != usd:
                    v *= fx[c, d, p]
                out[s, d, p] += v

    return propagate, cashflows, float_legs


# ---------------------------------------------------------------------------------------------
# Host launchers (same arguments as the CPU functions)
# ---------------------------------------------------------------------------------------------


def _is_device_array(a: Any) -> bool:
    return hasattr(a, "copy_to_host")  # a numba device array (or the simulator's)


def _device(a: Any) -> Any:
    """`a` on the device: a device array as it is, a host array copied (C-contiguous)."""
    return a if _is_device_array(a) else cuda.to_device(np.ascontiguousarray(a))


def to_device(a: np.ndarray) -> Any:
    """A host array copied to the device once, to pass to several launches (`phi`, `root`)."""
    _require_cuda()
    return _device(a)


def launch_paths(n_dates: int, n_components: int, multiple: int) -> int:
    """Paths per propagation launch: a multiple of `multiple` (the random-number block) whose normals and states,
    n_components × (2·n_dates − 1) doubles per path, fit in `LAUNCH_BYTES`."""
    per_path = 8 * n_components * max(1, 2 * n_dates - 1)
    return multiple * max(1, LAUNCH_BYTES // (per_path * multiple))


def propagate_states_cuda(phi: Any, root: Any, z: np.ndarray) -> np.ndarray:
    """`scenarios.propagate_states` on the GPU: states [path, date, component] (a transposed view of a
    [component, date, path] array) from the normals z[path, step, component]; `phi` and `root` may already be on
    the device (`to_device`)."""
    _require_cuda()
    n_paths, n_steps, n_c = z.shape
    if n_paths == 0:
        return np.zeros((0, n_steps + 1, n_c))
    d_z = cuda.to_device(np.ascontiguousarray(np.transpose(z, (2, 1, 0)), dtype=np.float64))
    d_state = cuda.device_array((n_c, n_steps + 1, n_paths), dtype=np.float64)
    threads = min(THREADS_PER_BLOCK, n_paths)
    blocks = (n_paths + threads - 1) // threads
    _kernels()[0][blocks, threads](_device(phi), _device(root), d_z, d_state)
    return d_state.copy_to_host().transpose(2, 1, 0)


def state_propagator(phi: np.ndarray, root: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """`propagate_states_cuda` with the step matrices copied to the device once: z -> states."""
    return functools.partial(propagate_states_cuda, to_device(phi), to_device(root))


def _launch_on_paths(kernel: Any, out: Any, times: np.ndarray, args: tuple[Any, ...]) -> None:
    """Run a (path, date) kernel adding into `out` [slot, date, path]: copied to the device and back unless it
    is a device array already."""
    n_paths, n_dates = out.shape[2], times.shape[0]
    if out.size == 0 or n_dates == 0:
        return
    d_out = _device(out)
    threads = min(THREADS_PER_BLOCK, n_paths)
    grid = ((n_paths + threads - 1) // threads, n_dates)
    kernel[grid, (threads, 1)](d_out, *[_device(a) if isinstance(a, np.ndarray) else a for a in args])
    if _is_device_array(out):
        return
    if out.flags.c_contiguous:
        d_out.copy_to_host(out)
    else:
        out[...] = d_out.copy_to_host()


def value_cashflows_cuda(
    out, mask, times, x, fx, lnp0, yv, a, usd,
    slot, ccy, pay, amount, lnp_pay,
    gate_date, gate_ccy, gate_x, gate_sign,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """`kernels.value_cashflows` on the GPU: same arguments, the same values added into `out`."""
    _require_cuda()
    if len(slot) == 0:
        return
    _launch_on_paths(_kernels()[1], out, times, (
        mask, times, x, fx, lnp0, yv, a, int(usd), slot, ccy, pay, amount, lnp_pay,
        gate_date, gate_ccy, gate_x, gate_sign,
    ))  # fmt: skip


def value_float_legs_cuda(
    out, mask, times, x, fx, lnp0, yv, a, usd,
    slot, ccy, notional, spread, first, count,
    gate_date, gate_ccy, gate_x, gate_sign,
    c_start, c_end, c_tau, c_fix_date, c_fixing, c_lnp_start, c_lnp_end,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """`kernels.value_float_legs` on the GPU: same arguments, the same values added into `out`."""
    _require_cuda()
    if len(slot) == 0:
        return
    _launch_on_paths(_kernels()[2], out, times, (
        mask, times, x, fx, lnp0, yv, a, int(usd), slot, ccy, notional, spread, first, count,
        gate_date, gate_ccy, gate_x, gate_sign, c_start, c_end, c_tau, c_fix_date, c_fixing, c_lnp_start, c_lnp_end,
    ))  # fmt: skip
