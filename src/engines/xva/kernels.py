"""Numba kernels valuing trades on every path and simulation date, one kernel per product table.

Each kernel adds the USD value of its table's rows into ``out[slot, date, path]`` (a slot is a netting set of
the chunk, or a single trade), skipping dates whose ``mask[slot, date]`` is 0 and dates on or after the row's
last flow (a flow paid at t is no longer in the value at t). Work is parallel over blocks of paths; within a
block each row's deterministic part (bond coefficients, variances) is computed once per date and applied to
every path of the block, so no array of [paths × dates × trades] is ever built.

Scenario arrays (see `scenarios.ScenarioSet`): ``x[c, d, p]`` Hull–White states, ``fx[c, d, p]`` USD per unit,
``eq[e, d, p]`` equity prices; per currency and date ``lnp0[c, d]`` = ln P(0, t_d) and ``yv[c, d]`` = y(t_d);
``a[c]`` the mean reversions. Bond prices on a path: ln P(t, T | x) = ln P(0,T) − ln P(0,t) − ½B²y(t) − B x.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

PATHS_PER_BLOCK = 256
_SQRT2 = math.sqrt(2.0)


@njit(cache=True, inline="always")
def _b(a, tau):
    return -math.expm1(-a * tau) / a


@njit(cache=True, inline="always")
def _ncdf(z):
    return 0.5 * math.erfc(-z / _SQRT2)


@njit(cache=True)
def _interp_log(nodes, values, n, t):
    """Linear interpolation of values[:n] on nodes[:n] at t, linear extrapolation with the last slope beyond."""
    if t <= nodes[0]:
        return values[0] + (values[1] - values[0]) * (t - nodes[0]) / (nodes[1] - nodes[0])
    if t >= nodes[n - 1]:
        return values[n - 1] + (values[n - 1] - values[n - 2]) * (t - nodes[n - 1]) / (nodes[n - 1] - nodes[n - 2])
    lo = 0
    hi = n - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if nodes[mid] <= t:
            lo = mid
        else:
            hi = mid
    w = (t - nodes[lo]) / (nodes[hi] - nodes[lo])
    return values[lo] * (1.0 - w) + values[hi] * w


@njit(parallel=True, cache=True)
def value_cashflows(
    out, mask, times, x, fx, lnp0, yv, a, usd,
    slot, ccy, pay, amount, lnp_pay,
    gate_date, gate_ccy, gate_x, gate_sign,
):  # fmt: skip
    """Fixed amounts paid at `pay` in currency `ccy`. A gated row (gate_date ≥ 0, the physical underlying of a
    swaption) counts from simulation date `gate_date` on, on paths where the holder exercised there:
    (x[gate_ccy, gate_date] − gate_x)·gate_sign > 0."""
    n_dates = times.shape[0]
    n_paths = out.shape[2]
    n_blocks = (n_paths + PATHS_PER_BLOCK - 1) // PATHS_PER_BLOCK
    for blk in prange(n_blocks):
        p0 = blk * PATHS_PER_BLOCK
        p1 = min(n_paths, p0 + PATHS_PER_BLOCK)
        for i in range(slot.shape[0]):
            s = slot[i]
            c = ccy[i]
            T = pay[i]
            g = gate_date[i]
            for d in range(n_dates):
                t = times[d]
                if t >= T:
                    break
                if mask[s, d] == 0 or (g >= 0 and d < g):
                    continue
                bb = _b(a[c], T - t)
                ln_a = lnp_pay[i] - lnp0[c, d] - 0.5 * bb * bb * yv[c, d]
                amt = amount[i]
                for p in range(p0, p1):
                    v = amt * math.exp(ln_a - bb * x[c, d, p])
                    if g >= 0 and (x[gate_ccy[i], g, p] - gate_x[i]) * gate_sign[i] <= 0.0:
                        v = 0.0
                    if c != usd:
                        v *= fx[c, d, p]
                    out[s, d, p] += v


@njit(parallel=True, cache=True)
def value_float_legs(
    out, mask, times, x, fx, lnp0, yv, a, usd,
    slot, ccy, notional, spread, first, count,
    gate_date, gate_ccy, gate_x, gate_sign,
    c_start, c_end, c_tau, c_fix_date, c_fixing, c_lnp_start, c_lnp_end,
):  # fmt: skip
    """Single-curve floating legs: coupons not yet reset are worth N(P(t,S) − P(t,E)) + N·s·τ·P(t,E), which
    telescopes over the remaining coupons; the coupon running at t pays (L + s)·τ at E, L fixed on the path at
    the last simulation date on or before its reset (`c_fix_date`), or the known `c_fixing` if it reset before
    the valuation date (c_fix_date = −1). Gating as in `value_cashflows`."""
    n_dates = times.shape[0]
    n_paths = out.shape[2]
    n_blocks = (n_paths + PATHS_PER_BLOCK - 1) // PATHS_PER_BLOCK
    for blk in prange(n_blocks):
        p0 = blk * PATHS_PER_BLOCK
        p1 = min(n_paths, p0 + PATHS_PER_BLOCK)
        for i in range(slot.shape[0]):
            s = slot[i]
            c = ccy[i]
            ac = a[c]
            j_first = first[i]
            j_last = first[i] + count[i] - 1
            g = gate_date[i]
            n = notional[i]
            sp = spread[i]
            j0 = j_first
            for d in range(n_dates):
                t = times[d]
                if t >= c_end[j_last]:
                    break
                while c_end[j0] <= t:
                    j0 += 1
                if mask[s, d] == 0 or (g >= 0 and d < g):
                    continue
                fixed = c_start[j0] <= t
                j1 = j0 + 1 if fixed else j0
                # deterministic parts
                base = -lnp0[c, d]
                b_e0 = _b(ac, c_end[j0] - t)
                ln_e0 = c_lnp_end[j0] + base - 0.5 * b_e0 * b_e0 * yv[c, d]
                fd = c_fix_date[j0]
                tf = times[fd] if fd >= 0 else 0.0
                b_fs = _b(ac, c_start[j0] - tf)
                b_fe = _b(ac, c_end[j0] - tf)
                ln_fs = 0.0
                ln_fe = 0.0
                if fixed and fd >= 0:
                    ln_fs = c_lnp_start[j0] - lnp0[c, fd] - 0.5 * b_fs * b_fs * yv[c, fd]
                    ln_fe = c_lnp_end[j0] - lnp0[c, fd] - 0.5 * b_fe * b_fe * yv[c, fd]
                has_future = j1 <= j_last
                b_s1 = 0.0
                ln_s1 = 0.0
                b_el = 0.0
                ln_el = 0.0
                if has_future:
                    b_s1 = _b(ac, c_start[j1] - t)
                    ln_s1 = c_lnp_start[j1] + base - 0.5 * b_s1 * b_s1 * yv[c, d]
                    b_el = _b(ac, c_end[j_last] - t)
                    ln_el = c_lnp_end[j_last] + base - 0.5 * b_el * b_el * yv[c, d]
                for p in range(p0, p1):
                    if g >= 0 and (x[gate_ccy[i], g, p] - gate_x[i]) * gate_sign[i] <= 0.0:
                        continue
                    xp = x[c, d, p]
                    v = 0.0
                    if fixed:
                        if fd >= 0:
                            xf = x[c, fd, p]
                            rate = (math.exp(ln_fs - b_fs * xf - ln_fe + b_fe * xf) - 1.0) / c_tau[j0]
                        else:
                            rate = c_fixing[j0]
                        v += (rate + sp) * c_tau[j0] * math.exp(ln_e0 - b_e0 * xp)
                    if has_future:
                        v += math.exp(ln_s1 - b_s1 * xp) - math.exp(ln_el - b_el * xp)
                        if sp != 0.0:
                            for j in range(j1, j_last + 1):
                                bj = _b(ac, c_end[j] - t)
                                v += sp * c_tau[j] * math.exp(c_lnp_end[j] + base - 0.5 * bj * bj * yv[c, d] - bj * xp)
                    v *= n
                    if c != usd:
                        v *= fx[c, d, p]
                    out[s, d, p] += v


@njit(parallel=True, cache=True)
def value_swaptions(
    out, mask, times, x, fx, lnp0, yv, a, usd,
    slot, ccy, scale, payer, expiry, lnp_expiry, first, count, var_expiry, row_from,
    k_pay, k_coupon, k_strike, k_lnp,
):  # fmt: skip
    """European swaptions before expiry by Jamshidian: Σ c_i ZBO(t; T0, T_i, K_i) with bond puts for a payer,
    calls for a receiver; `scale` is ± notional; var_expiry[i, d] = ∫_t^T0 σ² e^{−2a(T0−u)} du. Dates before
    `row_from[i]` are skipped (left to the Chebyshev aggregation)."""
    n_dates = times.shape[0]
    n_paths = out.shape[2]
    n_blocks = (n_paths + PATHS_PER_BLOCK - 1) // PATHS_PER_BLOCK
    width = 1
    for i in range(count.shape[0]):
        width = max(width, count[i])
    for blk in prange(n_blocks):
        p0 = blk * PATHS_PER_BLOCK
        p1 = min(n_paths, p0 + PATHS_PER_BLOCK)
        la = np.empty(width)  # ln P(t, T_j | x) = la − bj·x
        bj = np.empty(width)
        alpha = np.empty(width)  # ln(P_j / (K_j P_e)) = alpha − beta·x
        beta = np.empty(width)
        vol = np.empty(width)
        for i in range(slot.shape[0]):
            s = slot[i]
            c = ccy[i]
            ac = a[c]
            T0 = expiry[i]
            pay = payer[i]
            for d in range(n_dates):
                t = times[d]
                if t >= T0:
                    break
                if mask[s, d] == 0 or d < row_from[i]:
                    continue
                b_e = _b(ac, T0 - t)
                ln_e = lnp_expiry[i] - lnp0[c, d] - 0.5 * b_e * b_e * yv[c, d]
                sd_e = math.sqrt(max(var_expiry[i, d], 0.0))
                n_j = count[i]
                for jj in range(n_j):
                    j = first[i] + jj
                    bj[jj] = _b(ac, k_pay[j] - t)
                    la[jj] = k_lnp[j] - lnp0[c, d] - 0.5 * bj[jj] * bj[jj] * yv[c, d]
                    alpha[jj] = la[jj] - math.log(k_strike[j]) - ln_e
                    beta[jj] = bj[jj] - b_e
                    vol[jj] = max(_b(ac, k_pay[j] - T0) * sd_e, 1e-300)
                for p in range(p0, p1):
                    xp = x[c, d, p]
                    pe = -1.0
                    total = 0.0
                    for jj in range(n_j):
                        j = first[i] + jj
                        d1 = (alpha[jj] - beta[jj] * xp) / vol[jj] + 0.5 * vol[jj]
                        d2 = d1 - vol[jj]
                        if (d2 > 8.3 and pay) or (d1 < -8.3 and not pay):
                            continue  # worthless (N(±8.3) < 1e-16)
                        if pe < 0.0:
                            pe = math.exp(ln_e - b_e * xp)
                        pj = math.exp(la[jj] - bj[jj] * xp)
                        kk = k_strike[j]
                        if pay:
                            if d1 < -8.3:
                                opt = kk * pe - pj
                            else:
                                opt = kk * pe * _ncdf(-d2) - pj * _ncdf(-d1)
                        elif d2 > 8.3:
                            opt = pj - kk * pe
                        else:
                            opt = pj * _ncdf(d1) - kk * pe * _ncdf(d2)
                        total += k_coupon[j] * opt
                    v = scale[i] * total
                    if c != usd:
                        v *= fx[c, d, p]
                    out[s, d, p] += v


@njit(parallel=True, cache=True)
def value_lognormal(
    out, mask, times, x, fx, eq, lnp0, yv, a, usd,
    slot, kind, underlying, foreign, ccy, maturity, strike, quantity, call_put, div_yield,
    lnp_maturity, lnp_maturity_foreign, variance,
):  # fmt: skip
    """Equity (kind 0, `underlying` an equity index) and FX (kind 1, `foreign` per `ccy`) forwards (call_put 0)
    and European options (+1 call, −1 put) by Black on the path's forward with the model-consistent variance
    `variance[i, d]` of ln F(·, T) over (t_d, T). Values in the payoff currency `ccy`, times its FX."""
    n_dates = times.shape[0]
    n_paths = out.shape[2]
    n_blocks = (n_paths + PATHS_PER_BLOCK - 1) // PATHS_PER_BLOCK
    for blk in prange(n_blocks):
        p0 = blk * PATHS_PER_BLOCK
        p1 = min(n_paths, p0 + PATHS_PER_BLOCK)
        for i in range(slot.shape[0]):
            s = slot[i]
            c = ccy[i]
            f = foreign[i]
            T = maturity[i]
            k = strike[i]
            cp = call_put[i]
            for d in range(n_dates):
                t = times[d]
                if t >= T:
                    break
                if mask[s, d] == 0:
                    continue
                bd = _b(a[c], T - t)
                ln_d = lnp_maturity[i] - lnp0[c, d] - 0.5 * bd * bd * yv[c, d]
                bf = 0.0
                ln_f = 0.0
                if kind[i] == 1:
                    bf = _b(a[f], T - t)
                    ln_f = lnp_maturity_foreign[i] - lnp0[f, d] - 0.5 * bf * bf * yv[f, d]
                carry = math.exp(-div_yield[i] * (T - t))
                sd = math.sqrt(max(variance[i, d], 0.0))
                for p in range(p0, p1):
                    pd = math.exp(ln_d - bd * x[c, d, p])
                    if kind[i] == 0:
                        fwd = eq[underlying[i], d, p] * carry / pd
                    else:
                        fwd = fx[f, d, p] / fx[c, d, p] * math.exp(ln_f - bf * x[f, d, p]) / pd
                    if cp == 0:
                        v = fwd - k
                    elif sd < 1e-12:
                        v = max(cp * (fwd - k), 0.0)
                    else:
                        d1 = math.log(fwd / k) / sd + 0.5 * sd
                        d2 = d1 - sd
                        v = cp * (fwd * _ncdf(cp * d1) - k * _ncdf(cp * d2))
                    v *= quantity[i] * pd
                    if c != usd:
                        v *= fx[c, d, p]
                    out[s, d, p] += v


@njit(cache=True)
def _cds_value(xq, lgd, sp, acc, accrued, ls0, ls1, k0, k1, pm, p1):
    s0 = math.exp(ls0 - k0 * xq)
    s1 = math.exp(ls1 - k1 * xq)
    default = (s0 - s1) * pm
    return lgd * default - sp * acc * (s1 * p1 + accrued * default)


@njit(cache=True, inline="always")
def _cds_period(t, d, j, c, m, cum_t, sig2, yk, kappa, lnp0, curve_t, curve_lnp, curve_n,
                q_start, q_end, haz_t, haz_cum, haz_n):  # fmt: skip
    """What premium period j contributes from t on, whatever the name's state: forward discount factors at the
    mid-point and end, B_κ to its start and end, log survival terms, and the accrued share at a default."""
    t0 = max(q_start[j], t)
    t1 = q_end[j]
    tm = 0.5 * (t0 + t1)
    pm = math.exp(_interp_log(curve_t[c], curve_lnp[c], curve_n[c], tm) - lnp0[c, d])
    pe = math.exp(_interp_log(curve_t[c], curve_lnp[c], curve_n[c], t1) - lnp0[c, d])
    k0 = _b(kappa, t0 - t)
    k1 = _b(kappa, t1 - t)
    ls0 = -(_interp_log(haz_t[m], haz_cum[m], haz_n[m], t0) - cum_t) - 0.5 * k0 * k0 * sig2 * yk
    ls1 = -(_interp_log(haz_t[m], haz_cum[m], haz_n[m], t1) - cum_t) - 0.5 * k1 * k1 * sig2 * yk
    # premium accrued at a default mid-way through what is left of the period (QuantLib's scheme)
    accrued = (tm - q_start[j]) / (t1 - q_start[j])
    return pm, pe, k0, k1, ls0, ls1, accrued


@njit(parallel=True, cache=True)
def value_cds(
    out, mask, times, fx, lnp0, usd,
    curve_t, curve_lnp, curve_n,
    slot, ccy, name, scale, spread, recovery, first, count,
    q_start, q_end, q_accrual,
    xl, haz_t, haz_cum, haz_n, name_vol, kappa,
):  # fmt: skip
    """Single-name CDS by QuantLib's mid-point scheme on the path's conditional survival curve and the forward
    discount curve P(0,T)/P(0,t) (a CDS is insensitive to rates to first order; with the reference name's credit
    independent of rates this keeps the discounted value a martingale).

    `scale` is +notional for a protection buyer. Survival from t to T given the name's intensity state
    xl[name, d, p]: S(0,T)/S(0,t)·exp(−B_κ(t,T)·xl − ½B_κ²σ²(1−e^{−2κt})/(2κ)), S(0,·) from the hazard nodes
    (haz_t, haz_cum: cumulative hazard, linear between nodes); curves (curve_t, curve_lnp) per currency.
    """
    n_dates = times.shape[0]
    n_paths = out.shape[2]
    n_blocks = (n_paths + PATHS_PER_BLOCK - 1) // PATHS_PER_BLOCK
    for blk in prange(n_blocks):
        p0 = blk * PATHS_PER_BLOCK
        p1 = min(n_paths, p0 + PATHS_PER_BLOCK)
        for i in range(slot.shape[0]):
            s = slot[i]
            c = ccy[i]
            m = name[i]
            j_last = first[i] + count[i] - 1
            sig2 = name_vol[m] * name_vol[m]
            lgd = 1.0 - recovery[i]
            for d in range(n_dates):
                t = times[d]
                if t >= q_end[j_last]:
                    break
                if mask[s, d] == 0:
                    continue
                cum_t = _interp_log(haz_t[m], haz_cum[m], haz_n[m], t)
                yk = -math.expm1(-2.0 * kappa * t) / (2.0 * kappa)
                for j in range(first[i], j_last + 1):
                    if q_end[j] <= t:
                        continue
                    pm, pe, k0, k1, ls0, ls1, accrued = _cds_period(
                        t, d, j, c, m, cum_t, sig2, yk, kappa, lnp0, curve_t, curve_lnp, curve_n,
                        q_start, q_end, haz_t, haz_cum, haz_n,
                    )  # fmt: skip
                    for p in range(p0, p1):
                        v = scale[i] * _cds_value(
                            xl[m, d, p], lgd, spread[i], q_accrual[j], accrued, ls0, ls1, k0, k1, pm, pe
                        )
                        if c != usd:
                            v *= fx[c, d, p]
                        out[s, d, p] += v


# ---------------------------------------------------------------------------------------------
# Chebyshev aggregation: values that depend on the path only through one state at t
# ---------------------------------------------------------------------------------------------
#
# Between resets, a netting set's fixed flows, floating legs and swaptions (before expiry) in currency c are a
# smooth function of the one Hull–White state x_c(t); its CDS on one name a function of that name's state.
# The `nodes_*` kernels add each row's value at N Chebyshev nodes spanning the paths' range of the state on
# each date into `acc[series, date, node]` (a series is a netting set and currency, a netting set and CDS name,
# or the physical underlying of one swaption); the caller turns node values into Chebyshev coefficients and
# `value_series` evaluates them on every path (Clenshaw), times the FX rate and, for an underlying, the
# holder's exercise indicator. Interpolating sums of exponentials with N = 48 nodes on the paths' own range is
# exact to rounding (trailing coefficients below 1e-13 of the largest are dropped per series and date). The
# node kernels run in parallel over dates (in `order`, interleaved so that threads get alike work).


@njit(cache=True)
def _first_alive(c_end, first, last, t):
    """Index of the first coupon in [first, last] ending after t."""
    lo = first
    hi = last
    while lo < hi:
        mid = (lo + hi) // 2
        if c_end[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(parallel=True, cache=True)
def nodes_cashflows(
    acc, active, order, u, mid, half, mask, series_slot, times, lnp0, yv, a,
    row_series, ccy, pay, amount, lnp_pay, row_from,
):  # fmt: skip
    n_nodes = u.shape[0]
    for ii in prange(order.shape[0]):
        d = order[ii]
        t = times[d]
        for i in range(row_series.shape[0]):
            T = pay[i]
            s = row_series[i]
            if t >= T or d < row_from[i] or mask[series_slot[s], d] == 0:
                continue
            c = ccy[i]
            bb = _b(a[c], T - t)
            ln_a = lnp_pay[i] - lnp0[c, d] - 0.5 * bb * bb * yv[c, d]
            m = mid[c, d]
            h = half[c, d]
            amt = amount[i]
            for j in range(n_nodes):
                acc[s, d, j] += amt * math.exp(ln_a - bb * (m + h * u[j]))
            active[s, d] = 1


@njit(parallel=True, cache=True)
def nodes_float_legs(
    acc, active, order, u, mid, half, mask, series_slot, times, lnp0, yv, a,
    row_series, ccy, notional, spread, first, count, row_from,
    c_start, c_end, c_tau, c_fix_date, c_fixing, c_lnp_start, c_lnp_end,
):  # fmt: skip
    """Floating legs at the nodes: the telescoped coupons not yet reset, their spread annuity, a running coupon
    with a known fixing, and −(1 − sτ)·P(t, E) of a running coupon fixed on the path (whose other part,
    P(t_f,S)/P(t_f,E)·P(t,E), depends on the path's past and is added by `value_path_fixings`)."""
    n_nodes = u.shape[0]
    for ii in prange(order.shape[0]):
        d = order[ii]
        t = times[d]
        for i in range(row_series.shape[0]):
            j_last = first[i] + count[i] - 1
            s = row_series[i]
            if t >= c_end[j_last] or d < row_from[i] or mask[series_slot[s], d] == 0:
                continue
            c = ccy[i]
            ac = a[c]
            y = yv[c, d]
            base = -lnp0[c, d]
            m = mid[c, d]
            h = half[c, d]
            n = notional[i]
            sp = spread[i]
            j0 = _first_alive(c_end, first[i], j_last, t)
            fixed = c_start[j0] <= t
            j1 = j0 + 1 if fixed else j0
            b_e0 = _b(ac, c_end[j0] - t)
            ln_e0 = c_lnp_end[j0] + base - 0.5 * b_e0 * b_e0 * y
            w_e0 = 0.0
            if fixed:
                if c_fix_date[j0] < 0:
                    w_e0 = (c_fixing[j0] + sp) * c_tau[j0]
                else:
                    w_e0 = -(1.0 - sp * c_tau[j0])
            has_future = j1 <= j_last
            b_s1 = 0.0
            ln_s1 = 0.0
            b_el = 0.0
            ln_el = 0.0
            if has_future:
                b_s1 = _b(ac, c_start[j1] - t)
                ln_s1 = c_lnp_start[j1] + base - 0.5 * b_s1 * b_s1 * y
                b_el = _b(ac, c_end[j_last] - t)
                ln_el = c_lnp_end[j_last] + base - 0.5 * b_el * b_el * y
            for jn in range(n_nodes):
                xn = m + h * u[jn]
                v = 0.0
                if fixed:
                    v += w_e0 * math.exp(ln_e0 - b_e0 * xn)
                if has_future:
                    v += math.exp(ln_s1 - b_s1 * xn) - math.exp(ln_el - b_el * xn)
                    if sp != 0.0:
                        for j in range(j1, j_last + 1):
                            bj = _b(ac, c_end[j] - t)
                            v += sp * c_tau[j] * math.exp(c_lnp_end[j] + base - 0.5 * bj * bj * y - bj * xn)
                acc[s, d, jn] += n * v
            active[s, d] = 1


@njit(parallel=True, cache=True)
def value_path_fixings(
    out, mask, times, x, fx, lnp0, yv, a, usd,
    slot, ccy, notional, first, count, row_from, gate_ccy, gate_date, gate_x, gate_sign,
    c_start, c_end, c_fix_date, c_lnp_start, c_lnp_end,
):  # fmt: skip
    """The path-dependent part N·P(t_f,S|x_f)/P(t_f,E|x_f)·P(t,E|x_t) of running coupons fixed on the path."""
    n_dates = times.shape[0]
    n_paths = out.shape[2]
    n_blocks = (n_paths + PATHS_PER_BLOCK - 1) // PATHS_PER_BLOCK
    for blk in prange(n_blocks):
        p0 = blk * PATHS_PER_BLOCK
        p1 = min(n_paths, p0 + PATHS_PER_BLOCK)
        for i in range(slot.shape[0]):
            s = slot[i]
            c = ccy[i]
            ac = a[c]
            j_last = first[i] + count[i] - 1
            g = gate_date[i]
            j0 = first[i]
            for d in range(n_dates):
                t = times[d]
                if t >= c_end[j_last]:
                    break
                while c_end[j0] <= t:
                    j0 += 1
                fd = c_fix_date[j0]
                if d < row_from[i] or mask[s, d] == 0 or c_start[j0] > t or fd < 0:
                    continue
                tf = times[fd]
                b_fs = _b(ac, c_start[j0] - tf)
                b_fe = _b(ac, c_end[j0] - tf)
                ln_ratio = c_lnp_start[j0] - c_lnp_end[j0] - 0.5 * (b_fs * b_fs - b_fe * b_fe) * yv[c, fd]
                b_e0 = _b(ac, c_end[j0] - t)
                ln_e0 = c_lnp_end[j0] - lnp0[c, d] - 0.5 * b_e0 * b_e0 * yv[c, d]
                for p in range(p0, p1):
                    if g >= 0 and (x[gate_ccy[i], g, p] - gate_x[i]) * gate_sign[i] <= 0.0:
                        continue
                    xf = x[c, fd, p]
                    v = notional[i] * math.exp(ln_ratio + (b_fe - b_fs) * xf + ln_e0 - b_e0 * x[c, d, p])
                    if c != usd:
                        v *= fx[c, d, p]
                    out[s, d, p] += v


@njit(cache=True)
def _jamshidian(xp, pe, t, ac, yv_cd, lnp0_cd, T0, sd_e, payer, first, count, k_pay, k_coupon, k_strike, k_lnp):
    total = 0.0
    for j in range(first, first + count):
        tj = k_pay[j]
        bj = _b(ac, tj - t)
        pj = math.exp(k_lnp[j] - lnp0_cd - 0.5 * bj * bj * yv_cd - bj * xp)
        vol = _b(ac, tj - T0) * sd_e
        kk = k_strike[j]
        if vol < 1e-14:
            opt = max(kk * pe - pj, 0.0) if payer else max(pj - kk * pe, 0.0)
        else:
            d1 = math.log(pj / (kk * pe)) / vol + 0.5 * vol
            d2 = d1 - vol
            if payer:
                opt = kk * pe * _ncdf(-d2) - pj * _ncdf(-d1)
            else:
                opt = pj * _ncdf(d1) - kk * pe * _ncdf(d2)
        total += k_coupon[j] * opt
    return total


@njit(parallel=True, cache=True)
def nodes_swaptions(
    acc, active, order, u, mid, half, mask, series_slot, times, lnp0, yv, a,
    row_series, ccy, scale, payer, expiry, lnp_expiry, first, count, var_expiry, until,
    k_pay, k_coupon, k_strike, k_lnp,
):  # fmt: skip
    """Swaptions at the nodes up to date `until[i]` (exclusive): close to expiry the price nears its kinked payoff
    and is valued path by path instead (`value_swaptions` from that date)."""
    n_nodes = u.shape[0]
    for ii in prange(order.shape[0]):
        d = order[ii]
        t = times[d]
        for i in range(row_series.shape[0]):
            T0 = expiry[i]
            s = row_series[i]
            if t >= T0 or d >= until[i] or mask[series_slot[s], d] == 0:
                continue
            c = ccy[i]
            ac = a[c]
            b_e = _b(ac, T0 - t)
            ln_e = lnp_expiry[i] - lnp0[c, d] - 0.5 * b_e * b_e * yv[c, d]
            sd_e = math.sqrt(max(var_expiry[i, d], 0.0))
            for jn in range(n_nodes):
                xn = mid[c, d] + half[c, d] * u[jn]
                pe = math.exp(ln_e - b_e * xn)
                acc[s, d, jn] += scale[i] * _jamshidian(
                    xn, pe, t, ac, yv[c, d], lnp0[c, d], T0, sd_e, payer[i], first[i], count[i],
                    k_pay, k_coupon, k_strike, k_lnp,
                )  # fmt: skip
            active[s, d] = 1


@njit(parallel=True, cache=True)
def nodes_cds(
    acc, active, order, u, mid, half, mask, series_slot, times, lnp0,
    curve_t, curve_lnp, curve_n,
    row_series, ccy, name, scale, spread, recovery, first, count,
    q_start, q_end, q_accrual, haz_t, haz_cum, haz_n, name_vol, kappa,
):  # fmt: skip
    """CDS at the nodes of their reference name's intensity state (mid/half per name and date)."""
    n_nodes = u.shape[0]
    for ii in prange(order.shape[0]):
        d = order[ii]
        t = times[d]
        for i in range(row_series.shape[0]):
            j_last = first[i] + count[i] - 1
            s = row_series[i]
            if t >= q_end[j_last] or mask[series_slot[s], d] == 0:
                continue
            c = ccy[i]
            m = name[i]
            sig2 = name_vol[m] * name_vol[m]
            lgd = 1.0 - recovery[i]
            cum_t = _interp_log(haz_t[m], haz_cum[m], haz_n[m], t)
            yk = -math.expm1(-2.0 * kappa * t) / (2.0 * kappa)
            for j in range(first[i], j_last + 1):
                if q_end[j] <= t:
                    continue
                pm, pe, k0, k1, ls0, ls1, accrued = _cds_period(
                    t, d, j, c, m, cum_t, sig2, yk, kappa, lnp0, curve_t, curve_lnp, curve_n,
                    q_start, q_end, haz_t, haz_cum, haz_n,
                )  # fmt: skip
                for jn in range(n_nodes):
                    xq = mid[m, d] + half[m, d] * u[jn]
                    acc[s, d, jn] += scale[i] * _cds_value(
                        xq, lgd, spread[i], q_accrual[j], accrued, ls0, ls1, k0, k1, pm, pe
                    )
            active[s, d] = 1


@njit(parallel=True, cache=True)
def value_series(
    out, mask, coef, degree, series_slot, series_state, series_var, series_fx, usd,
    series_gate_date, series_gate_ccy, series_gate_x, series_gate_sign,
    mid_x, half_x, mid_l, half_l, x, xl, fx,
):  # fmt: skip
    """Evaluate every series' Chebyshev expansion on every path and add it (× FX, × exercise) to its slot.
    `degree[s, d]` is the number of coefficients kept (0: nothing on that date); series_state 0: the state is
    x[series_var]; 1: the credit state xl[series_var]."""
    n_dates = coef.shape[1]
    n_paths = out.shape[2]
    n_blocks = (n_paths + PATHS_PER_BLOCK - 1) // PATHS_PER_BLOCK
    for blk in prange(n_blocks):
        p0 = blk * PATHS_PER_BLOCK
        p1 = min(n_paths, p0 + PATHS_PER_BLOCK)
        for s in range(series_slot.shape[0]):
            slot = series_slot[s]
            v_idx = series_var[s]
            credit = series_state[s] == 1
            c = series_fx[s]
            g = series_gate_date[s]
            for d in range(n_dates):
                n_k = degree[s, d]
                if n_k == 0 or mask[slot, d] == 0:
                    continue
                if credit:
                    m = mid_l[v_idx, d]
                    inv_h = 1.0 / half_l[v_idx, d]
                else:
                    m = mid_x[v_idx, d]
                    inv_h = 1.0 / half_x[v_idx, d]
                for p in range(p0, p1):
                    if g >= 0 and (x[series_gate_ccy[s], g, p] - series_gate_x[s]) * series_gate_sign[s] <= 0.0:
                        continue
                    state = xl[v_idx, d, p] if credit else x[v_idx, d, p]
                    uu = (state - m) * inv_h
                    b1 = 0.0
                    b2 = 0.0
                    for k in range(n_k - 1, 0, -1):
                        b0 = 2.0 * uu * b1 - b2 + coef[s, d, k]
                        b2 = b1
                        b1 = b0
                    v = coef[s, d, 0] + uu * b1 - b2
                    if c != usd:
                        v *= fx[c, d, p]
                    out[slot, d, p] += v


@njit(parallel=True, cache=True)
def ou_with_integral(z, l11, l21, l22, decay, b_step, g_out, h_out, p_offset):
    """Exact unit-vol Ornstein–Uhlenbeck G and its integral H over the steps, from normals z[step, path, 2]:
    H += B·G + e2, G = decay·G + e1, with (e1, e2) = Cholesky(l11, l21, l22)·z. Writes paths p_offset + path of
    g_out/h_out[step, path] (date-major, paths innermost: contiguous writes)."""
    n_steps = z.shape[0]
    n_paths = z.shape[1]
    width = 64
    n_chunks = (n_paths + width - 1) // width
    for chunk in prange(n_chunks):
        a = chunk * width
        b = min(n_paths, a + width)
        g = np.zeros(b - a)
        h = np.zeros(b - a)
        for p in range(a, b):
            g_out[0, p_offset + p] = 0.0
            h_out[0, p_offset + p] = 0.0
        for k in range(n_steps):
            for p in range(a, b):
                e1 = l11[k] * z[k, p, 0]
                e2 = l21[k] * z[k, p, 0] + l22[k] * z[k, p, 1]
                h[p - a] = h[p - a] + b_step[k] * g[p - a] + e2
                g[p - a] = decay[k] * g[p - a] + e1
                g_out[k + 1, p_offset + p] = g[p - a]
                h_out[k + 1, p_offset + p] = h[p - a]
