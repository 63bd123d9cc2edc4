"""The Monte Carlo kernels of the autocallable engine: one path of correlated underlyings, then every product on it.

Each path is generated once per market scenario and shared by every product of a group (same
underlyings, same time grid), so a lab of 75 variations costs one path set per scenario. The
two per-path functions use only scalar loops and `math`, so the same source compiles for the
CPU (`numba.njit`, parallel over chunks of paths here) and as CUDA device functions
(`kernels_cuda`).

Conventions of the arrays (A assets, K steps, P products, J observations):
- `z[path, k, a]`: independent standard normals for step k (already Brownian-bridge ordered
  when they come from Sobol); correlation is applied here with the Cholesky factor `chol`.
- market per step: `t_grid[k]` (K + 1 times from 0), `dt[k]`, `growth[k, a]` (r − q over the
  step, per year), `sig[k, a]` (Black–Scholes vol over the step), `div[k, a]` (cash dividend paid at the end of step k),
  `lnfwd[k, a]` (log forward at the start of step k, for local-vol moneyness).
- local vol (when `lv_on`): `lv[a, k, j]` for step k (the surface at the step's start) on an evenly
  spaced log-moneyness grid `lv_k[j]`, scaled by `lv_scale[a]`; it replaces `sig`.
- products: `p_int[p] = (n_obs, basket, ki_type, memory, maturity_step)`, `p_flt[p] = (coupon
  rate, ki barrier, strike, buffer, protection)`, `p_step[p, j]` grid step of observation j,
  `p_obs[p, j] = (time, trigger, coupon barrier, coupon period, -ln discount)`.
Outputs per product and path: present value of the redemption (`pv_red`) and of the coupons
per unit coupon rate (`pv_cpn`), so price = pv_red + rate · pv_cpn and the fair coupon is linear;
with `details`, the observation at which the note was called (-1 if not), the knock-in
probability, the life in years, the redemption and the client's IRR.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

WORST_OF, BEST_OF, AVERAGE = 0, 1, 2
KI_NONE, KI_EUROPEAN, KI_DAILY, KI_CONTINUOUS = 0, 1, 2, 3
MIN_SPOT = 1e-12


def simulate_path(i, z, chol, x0, ref, t_grid, dt, growth, sig, div, lnfwd, lv_on, lv, lv_k, lv_scale, perf, sig_used):
    """Fill `perf[k, a]` = S_a(t_k) / ref_a for path i, and `sig_used[k, a]` with the vol of each step."""
    n_steps = dt.shape[0]
    n_assets = x0.shape[0]
    for a in range(n_assets):
        perf[0, a] = math.exp(x0[a]) / ref[a]
    for a in range(n_assets):
        sig_used[0, a] = 0.0
    for k in range(n_steps):
        h = dt[k]
        sq = math.sqrt(h)
        for a in range(n_assets):
            eps = 0.0
            for b in range(a + 1):
                eps += chol[a, b] * z[i, k, b]
            s_prev = perf[k, a] * ref[a]
            if lv_on:
                m = math.log(s_prev) - lnfwd[k, a]
                vol = lv_scale[a] * _row_interp(lv, a, k, lv_k, m)
            else:
                vol = sig[k, a]
            sig_used[k, a] = vol
            s_new = s_prev * math.exp((growth[k, a] - 0.5 * vol * vol) * h + vol * sq * eps) - div[k, a]
            if s_new < MIN_SPOT * ref[a]:
                s_new = MIN_SPOT * ref[a]
            perf[k + 1, a] = s_new / ref[a]


def _row_interp(grid, a, k, xs, x):
    """Linear interpolation of grid[a, k, :] at x on the evenly spaced xs, flat beyond its ends."""
    n = xs.shape[0]
    pos = (x - xs[0]) / (xs[1] - xs[0])
    if pos <= 0.0:
        return grid[a, k, 0]
    if pos >= n - 1:
        return grid[a, k, n - 1]
    j = int(pos)
    w = pos - j
    return (1.0 - w) * grid[a, k, j] + w * grid[a, k, j + 1]


def _basket(perf, k, kind):
    n = perf.shape[1]
    if kind == WORST_OF:
        v = perf[k, 0]
        for a in range(1, n):
            if perf[k, a] < v:
                v = perf[k, a]
        return v
    if kind == BEST_OF:
        v = perf[k, 0]
        for a in range(1, n):
            if perf[k, a] > v:
                v = perf[k, a]
        return v
    v = 0.0
    for a in range(n):
        v += perf[k, a]
    return v / n


def _survival(perf, sig_used, dt, barrier, last_step):
    """Probability that no underlying crossed `barrier` between grid points (Brownian bridge per step).

    Exact for one underlying with constant vol over each step; for several underlyings the steps'
    crossings are taken as independent given the end points (the standard approximation).
    """
    q = 1.0
    n = perf.shape[1]
    for k in range(last_step):
        var_h = dt[k]
        for a in range(n):
            lo = perf[k, a]
            hi = perf[k + 1, a]
            if lo <= barrier or hi <= barrier:
                return 0.0
            v = sig_used[k, a]
            if v > 0.0:
                q *= 1.0 - math.exp(-2.0 * math.log(lo / barrier) * math.log(hi / barrier) / (v * v * var_h))
    return q


def evaluate_products(
    i, perf, sig_used, dt, rate_shift, p_int, p_flt, p_step, p_obs, details,
    pv_red, pv_cpn, call_idx, ki_prob, life, redemption, irr, cashflows,
):  # fmt: skip
    """Value every product on path i (see the module docstring for the layout)."""
    n_products = p_int.shape[0]
    for p in range(n_products):
        n_obs = p_int[p, 0]
        kind = p_int[p, 1]
        ki_type = p_int[p, 2]
        memory = p_int[p, 3]
        last = p_int[p, 4]
        rate = p_flt[p, 0]
        ki_bar = p_flt[p, 1]
        strike = p_flt[p, 2]
        buffer = p_flt[p, 3]
        protection = p_flt[p, 4]
        red = 0.0
        cpn = 0.0
        missed = 0.0
        called = -1
        for j in range(n_obs):
            k = p_step[p, j]
            t = p_obs[p, j, 0]
            b = _basket(perf, k, kind)
            df = math.exp(-p_obs[p, j, 4] - rate_shift * t)
            paid = 0.0
            if b >= p_obs[p, j, 2]:
                paid = p_obs[p, j, 3] + missed
                missed = 0.0
            elif memory:
                missed += p_obs[p, j, 3]
            cpn += df * paid
            if details:
                cashflows[p, j] = rate * paid
            if b >= p_obs[p, j, 1]:
                red = df
                called = j
                break
        final_red = 1.0
        q_ki = 0.0
        if called < 0:
            b_t = _basket(perf, last, kind)
            loss = strike - buffer - b_t
            exposed = 1.0 - (loss if loss > 0.0 else 0.0) / strike
            if exposed < protection:
                exposed = protection
            if exposed > 1.0:
                exposed = 1.0
            if ki_type == KI_NONE:
                q_ki = 1.0
            elif ki_type == KI_EUROPEAN:
                q_ki = 1.0 if b_t < ki_bar else 0.0
            elif ki_type == KI_DAILY:
                q_ki = 0.0
                for k in range(last + 1):
                    if _basket(perf, k, kind) < ki_bar:
                        q_ki = 1.0
                        break
            else:
                q_ki = 1.0 - _survival(perf, sig_used, dt, ki_bar, last)
            final_red = (1.0 - q_ki) + q_ki * exposed
            t_last = p_obs[p, n_obs - 1, 0]
            red = math.exp(-p_obs[p, n_obs - 1, 4] - rate_shift * t_last) * final_red
        pv_red[p, i] = red
        pv_cpn[p, i] = cpn
        if details:
            j_end = called if called >= 0 else n_obs - 1
            call_idx[p, i] = called
            ki_prob[p, i] = q_ki
            life[p, i] = p_obs[p, j_end, 0]
            redemption[p, i] = final_red
            cashflows[p, j_end] += final_red
            irr[p, i] = _irr(cashflows, p, p_obs, j_end)
            for j in range(j_end + 1):
                cashflows[p, j] = 0.0


def _irr(cashflows, p, p_obs, j_end):
    """Annual effective yield y with Σ cf_j (1+y)^-t_j = 1 (the client pays par at the strike date)."""
    total = 0.0
    for j in range(j_end + 1):
        total += cashflows[p, j]
    if total <= 1e-12:
        return -1.0
    r = 0.0  # continuously compounded
    for _ in range(50):
        f = -1.0
        df = 0.0
        for j in range(j_end + 1):
            t = p_obs[p, j, 0]
            e = cashflows[p, j] * math.exp(-r * t)
            f += e
            df -= t * e
        if df == 0.0:
            break
        step = f / df
        if step > 1.0:
            step = 1.0
        elif step < -1.0:
            step = -1.0
        r -= step
        if abs(step) < 1e-12:
            break
    return math.exp(r) - 1.0


_simulate_path = njit(cache=True, nogil=True, inline="always")(simulate_path)
_row_interp = njit(cache=True, inline="always")(_row_interp)
_basket = njit(cache=True, inline="always")(_basket)
_survival = njit(cache=True)(_survival)
_irr = njit(cache=True)(_irr)
_evaluate = njit(cache=True, nogil=True, inline="always")(evaluate_products)


@njit(parallel=True, cache=True)
def run_block(
    z, chol, x0, ref, t_grid, dt, growth, sig, div, lnfwd, lv_on, lv, lv_k, lv_scale, rate_shift,
    p_int, p_flt, p_step, p_obs, details, pv_red, pv_cpn, call_idx, ki_prob, life, redemption, irr,
):  # fmt: skip
    """Simulate the block's paths for one market scenario and value every product on each (CPU, parallel)."""
    n = z.shape[0]
    n_steps = dt.shape[0]
    n_assets = x0.shape[0]
    n_products = p_int.shape[0]
    n_obs = p_step.shape[1]
    n_chunks = min(n, 64)
    for c in prange(n_chunks):
        perf = np.empty((n_steps + 1, n_assets))
        sig_used = np.empty((n_steps + 1, n_assets))
        cashflows = np.zeros((n_products, n_obs))
        for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            _simulate_path(i, z, chol, x0, ref, t_grid, dt, growth, sig, div, lnfwd, lv_on, lv, lv_k,
                           lv_scale, perf, sig_used)  # fmt: skip
            _evaluate(i, perf, sig_used, dt, rate_shift, p_int, p_flt, p_step, p_obs, details,
                      pv_red, pv_cpn, call_idx, ki_prob, life, redemption, irr, cashflows)  # fmt: skip
