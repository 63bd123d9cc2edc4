"""The margin-call avalanche kernel: one Monte Carlo path of hourly factor moves, margin calls, the cash
waterfall and forced liquidation with its feedback on prices, written once for both targets.

`simulate_path` and the helpers it calls use only scalar loops, `math` and array indexing, so the same code
compiles for the CPU (`numba.njit`, parallel over chunks of paths in `run_paths`) and as CUDA device functions
(`avalanche_cuda` rebuilds them from the same code objects). The model is described in `avalanche`; this
module fixes the array layout and the order of events within an hour.

Time. Step ``s`` (0-based) moves the market from clock hour ``s`` to ``t = s + 1``; hour of day ``t mod 24``,
day ``t // 24``. Within hour ``t``, in this order:

1. Market. The K principal components move by ``√(h/24) · z`` (``h`` the common variance multiplier, z from
   stream 0), plus a jump with probability ``p_jump`` (stream 1): every component moves by
   ``scale · T · √h · z'`` with ``T = √(ν / χ²_ν)`` a Student-t magnitude common to the jump. Factors moved by
   forced liquidation carry extra variance ``E_f`` (daily) and move by ``√(E_f/24) · z''`` (stream 2);
   ``E_f`` decays hourly. Then the GARCH update ``h ← ω + a · u · h + b · h`` with
   ``u = Σ_k w_k (ΔY_k)² / (h/24)``.
2. Calls. At the hours where a venue calls (table `venue_call[v, hour of day]`: 1 intraday, 2 end of day
   or CSA valuation) its requirement is recomputed from the delta-gamma P&L since the start and its current
   IM, and the difference to the collateral already called is called (CCP intraday: only if above the
   threshold; end of day: both ways; CSA: threshold, minimum transfer amount, rounding). At the end-of-day
   valuation the venue's EWMA variance first takes in the P&L change since the previous one (`_venue_im`
   reads it, or the model's conditional variance, by `I_IM_MODE`). A call made at
   ``t`` is due at ``t + delay_v`` (kept in a ring of `ring` slots per venue); calls falling due after the
   horizon are settled in its last hour.
3. Facility. Drawings requested ``notice`` hours ago arrive. The treasury projects its liquidity
   (cash + facility cash + drawings in transit − calls made and not yet paid) and, when it is below the
   trigger, requests ``target − projected``, within the limit's headroom and the day's drawdown cap.
4. Payments. Returns due are credited to cash, then the calls due are paid from cash, then from facility
   cash, then by forced liquidation (`_liquidate`), and whatever is left is a shortfall.
5. The cumulative net calls ``N`` (calls minus returns paid so far) and the liquidity need ``N + pending``
   update their peaks; at a new peak of ``N`` each venue's cumulative net calls are copied to
   ``venue_peak[i]`` (they add up to ``N``).

Forced liquidation closes a fraction θ of a venue's whole book (most liquid venue first, `venue_order`):
the venue returns the initial margin of what was closed, θ · IM_v (IM_v the venue's current IM for its whole
original book), and closing trades θ · n_vf notional in each factor market f the venue's positions are sold
in, at the square-root impact cost ``Y · c_vf · ((Q_f + θ n_vf)^1.5 − Q_f^1.5) / √d_f`` (Q_f the volume the
fund already traded in f that day, d_f its depth; Q_f never exceeds `max_sale` · d_f in a day, and θ stops where
the marginal cash raised turns negative); the cash raised is the IM returned minus that cost. With
feedback the trade moves factor f by ``Y · m_vf · (√((Q_f + θ n_vf)/d_f) − √(Q_f/d_f))`` (against the
closed positions) and adds ``w · move²`` to its daily variance. The venue keeps the fraction ``s_v`` of its
book: its P&L is ``o_v + s_v · P_v(t)`` (P_v the whole book's, ``o_v`` the P&L of the closed part frozen at
its closing, CCP) or its CSA value ``s_v · (MTM0_v + P_v(t))`` (the closed part's value is settled by the
unwind against the collateral held for it); its IM is ``s_v · IM_v``. The collateral balance moves by the
drop in the requirement, so closing never causes a call or a return by itself.

Amounts short by less than `CENT` are paid from the last pot used (which may then be negative by less than a
cent) rather than counted as liquidation or a shortfall, so rounding in the facility's projection or in the
liquidation's root-finding never fakes one.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from engines.margin.random_streams import STREAM_DIFFUSION, STREAM_IMPACT, STREAM_JUMP, normal_pair, uniform_pair

CENT = 0.01
"""USD: a payment short by less than this is not a forced sale or a shortfall."""
ROOT_ITERATIONS = 64
"""Bisection steps of the liquidation's root-finding (on a fraction in [0, 1]: exact to rounding)."""

# integer parameters (iparams)
I_HOURS, I_SEED, I_NOTICE, I_FEEDBACK, I_JUMP_DF, I_RING, I_RING_FACILITY, I_IM_MODE = range(8)
N_IPARAMS = 8
IM_EWMA, IM_CONDITIONAL = 0, 1

# float parameters (fparams)
(F_OMEGA, F_ALPHA, F_BETA, F_H0, F_JUMP_P, F_JUMP_SCALE, F_IM_FLOOR, F_IMPACT, F_VOL_WEIGHT, F_EXCESS_DECAY,
 F_MAX_SALE, F_CASH, F_LIMIT, F_DAILY_CAP, F_TRIGGER, F_TARGET) = range(16)  # fmt: skip
N_FPARAMS = 16

# per-venue integers (venue_int[v, :]) and floats (venue_flt[v, :])
VI_CCP, VI_DELAY = range(2)
N_VI = 2
(VF_IM0, VF_IM_POWER, VF_MTM0, VF_INTRADAY, VF_CSA_THRESHOLD, VF_MTA, VF_ROUNDING, VF_BALANCE0,
 VF_EWMA_DECAY) = range(9)  # fmt: skip
N_VF = 9

# venue × factor liquidation pairs (pair_flt[p, :]): notional traded when the whole venue book is closed, cost
# coefficient c (USD per unit notional per √(volume/depth), per unit impact coefficient), factor move
# coefficient m (factor units per √(volume/depth), signed against the closed positions)
PF_NOTIONAL, PF_COST, PF_MOVE = range(3)
N_PF = 3

CALL_NONE, CALL_INTRADAY, CALL_DAILY = 0, 1, 2

STAT_NAMES = (
    "peak_calls_usd",
    "peak_hour",
    "peak_need_usd",
    "gross_calls_usd",
    "returns_usd",
    "paid_cash_usd",
    "paid_facility_usd",
    "paid_liquidation_usd",
    "shortfall_usd",
    "closed_notional_usd",
    "liquidation_loss_usd",
    "exhaust_hour",
    "liquidation_hour",
    "shortfall_hour",
    "facility_requested_usd",
    "facility_arrived_usd",
    "cash_end_usd",
    "facility_cash_end_usd",
    "max_vol_multiplier",
    "net_calls_end_usd",
    "calls_made",
    "book_closed_fraction",
)
"""Columns of the per-path statistics; the hours are -1 where the event never happened. `book_closed_fraction`
is the share of the starting IM whose positions were closed."""
(S_PEAK, S_PEAK_HOUR, S_NEED, S_GROSS, S_RETURNS, S_CASH, S_FACILITY, S_LIQUIDATION, S_SHORTFALL, S_CLOSED,
 S_LOSS, S_EXHAUST_HOUR, S_LIQUIDATION_HOUR, S_SHORTFALL_HOUR, S_REQUESTED, S_ARRIVED, S_CASH_END,
 S_FACILITY_END, S_MAX_VOL, S_NET_END, S_CALLS, S_CLOSED_FRACTION) = range(22)  # fmt: skip
N_STATS = len(STAT_NAMES)


def _venue_pnl(v, Y, D, n_touched, venue_comp, fd_ptr, fd_factor, fd_value, gam_ptr, gam_g, gam_value, gam_comp,
               gam_factor, xg, cached):  # fmt: skip
    """P&L since the start of venue v's whole original book (delta on the components and on the factors moved
    by liquidation, gamma on the gamma factors); `xg` holds the gamma factors' moves when `cached`."""
    n_k = Y.shape[0]
    pnl = 0.0
    for k in range(n_k):
        pnl += venue_comp[v, k] * Y[k]
    if n_touched > 0:
        for e in range(fd_ptr[v], fd_ptr[v + 1]):
            pnl += fd_value[e] * D[fd_factor[e]]
    for e in range(gam_ptr[v], gam_ptr[v + 1]):
        g = gam_g[e]
        if cached:
            x = xg[g]
        else:
            x = D[gam_factor[g]]
            for k in range(n_k):
                x += gam_comp[g, k] * Y[k]
        pnl += 0.5 * gam_value[e] * x * x
    return pnl


def _venue_im(v, h, E, n_touched, venue_var, fd_ptr, fd_factor, fd_value, venue_flt, im_floor, im_mode, ewma):
    """Current IM of venue v's whole original book: the starting IM times (estimated vol / calibrated vol) raised
    to the venue's procyclicality, floored at `im_floor` times the starting IM. The estimate is the venue's
    EWMA of its daily P&L changes (`ewma[v]`, `IM_EWMA`), or the model's own conditional variance of its delta
    P&L (`IM_CONDITIONAL`: ``h`` times the calibrated variance plus the extra variance liquidation left)."""
    im0 = venue_flt[v, VF_IM0]
    var0 = venue_var[v]
    if var0 <= 0.0 or im0 == 0.0:
        return im0
    if im_mode == IM_EWMA:
        var = ewma[v]
    else:
        var = h * var0
        if n_touched > 0:
            for e in range(fd_ptr[v], fd_ptr[v + 1]):
                var += fd_value[e] * fd_value[e] * E[fd_factor[e]]
    ratio = math.pow(var / var0, 0.5 * venue_flt[v, VF_IM_POWER])
    if ratio < im_floor:
        ratio = im_floor
    return im0 * ratio


def _requirement(v, pnl, im, keep, offset, venue_int, venue_flt):
    """Collateral venue v requires (positive: the fund posts) for whole-book P&L `pnl` and IM `im`, with the
    fraction `keep` of the book still open and `offset` the frozen P&L of the closed part (CCP)."""
    if venue_int[v, VI_CCP] != 0:
        return keep * im - (offset + keep * pnl)
    mtm = keep * (venue_flt[v, VF_MTM0] + pnl)
    thr = venue_flt[v, VF_CSA_THRESHOLD]
    vm = 0.0
    if mtm < -thr:
        vm = -mtm - thr
    elif mtm > thr:
        vm = thr - mtm
    return keep * im + vm


def _close_cost(theta, p0, p1, pair_factor, pair_flt, factor_depth, Q, impact):
    """Impact cost of closing the fraction `theta` of a venue's book (its pairs p0..p1) after today's volume Q."""
    cost = 0.0
    for p in range(p0, p1):
        f = pair_factor[p]
        q0 = Q[f]
        q1 = q0 + theta * pair_flt[p, PF_NOTIONAL]
        cost += impact * pair_flt[p, PF_COST] * (q1 * math.sqrt(q1) - q0 * math.sqrt(q0)) / math.sqrt(factor_depth[f])
    return cost


def _close_marginal(theta, im, p0, p1, pair_factor, pair_flt, factor_depth, Q, impact):
    """d(cash raised)/dθ: the IM returned per unit fraction less the marginal impact cost (decreasing in θ)."""
    out = im
    for p in range(p0, p1):
        f = pair_factor[p]
        n = pair_flt[p, PF_NOTIONAL]
        out -= 1.5 * impact * pair_flt[p, PF_COST] * n * math.sqrt((Q[f] + theta * n) / factor_depth[f])
    return out


def _liquidate(needed, h, Y, D, E, tflag, touched, n_touched, keep, offset, bal, Q, venue_order, pair_ptr,
               pair_factor, pair_flt, factor_depth, venue_comp, venue_var, fd_ptr, fd_factor, fd_value, gam_ptr, gam_g,
               gam_value, gam_comp, gam_factor, xg, venue_int, venue_flt, im_floor, im_mode, ewma, impact, max_sale,
               feedback, vol_weight):  # fmt: skip
    """Raise `needed` by closing venue books, most liquid venue first (see the module docstring).

    Returns (cash raised, notional closed, impact cost, IM of the closed positions at the start, touched count).
    """
    n_v = venue_order.shape[0]
    raised = 0.0
    notional = 0.0
    loss = 0.0
    closed_im0 = 0.0
    for j in range(n_v):
        rest = needed - raised
        if rest <= 0.0:
            break
        v = venue_order[j]
        p0 = pair_ptr[v]
        p1 = pair_ptr[v + 1]
        if keep[v] <= 0.0 or p1 == p0:
            continue
        im = _venue_im(v, h, E, n_touched, venue_var, fd_ptr, fd_factor, fd_value, venue_flt, im_floor, im_mode,
                       ewma)  # fmt: skip
        if im <= 0.0:
            continue
        cap = keep[v]
        for p in range(p0, p1):
            n = pair_flt[p, PF_NOTIONAL]
            if n > 0.0:
                room = (max_sale * factor_depth[pair_factor[p]] - Q[pair_factor[p]]) / n
                if room < cap:
                    cap = room
        if cap <= 0.0:
            continue
        if _close_marginal(0.0, im, p0, p1, pair_factor, pair_flt, factor_depth, Q, impact) <= 0.0:
            continue
        hi = cap
        if _close_marginal(hi, im, p0, p1, pair_factor, pair_flt, factor_depth, Q, impact) < 0.0:
            lo = 0.0  # beyond the root of the marginal, closing more raises less
            for _ in range(ROOT_ITERATIONS):
                mid = 0.5 * (lo + hi)
                if _close_marginal(mid, im, p0, p1, pair_factor, pair_flt, factor_depth, Q, impact) > 0.0:
                    lo = mid
                else:
                    hi = mid
            hi = lo
        theta = hi
        if theta * im - _close_cost(theta, p0, p1, pair_factor, pair_flt, factor_depth, Q, impact) > rest:
            lo = 0.0
            for _ in range(ROOT_ITERATIONS):
                mid = 0.5 * (lo + hi)
                if mid * im - _close_cost(mid, p0, p1, pair_factor, pair_flt, factor_depth, Q, impact) > rest:
                    hi = mid
                else:
                    lo = mid
            theta = lo
        if theta <= 0.0:
            continue
        cost = _close_cost(theta, p0, p1, pair_factor, pair_flt, factor_depth, Q, impact)
        pnl = _venue_pnl(v, Y, D, n_touched, venue_comp, fd_ptr, fd_factor, fd_value, gam_ptr, gam_g, gam_value,
                         gam_comp, gam_factor, xg, False)  # fmt: skip
        before = _requirement(v, pnl, im, keep[v], offset[v], venue_int, venue_flt)
        if venue_int[v, VI_CCP] != 0:
            offset[v] += theta * pnl
        keep[v] -= theta
        if keep[v] < 1e-15:
            keep[v] = 0.0
        after = _requirement(v, pnl, im, keep[v], offset[v], venue_int, venue_flt)
        bal[v] -= before - after
        for p in range(p0, p1):
            f = pair_factor[p]
            n = pair_flt[p, PF_NOTIONAL]
            q0 = Q[f]
            q1 = q0 + theta * n
            Q[f] = q1
            notional += theta * n
            if feedback and impact > 0.0:
                depth = factor_depth[f]
                move = impact * pair_flt[p, PF_MOVE] * (math.sqrt(q1 / depth) - math.sqrt(q0 / depth))
                D[f] += move
                E[f] += vol_weight * move * move
                if tflag[f] == 0:
                    tflag[f] = 1
                    touched[n_touched] = f
                    n_touched += 1
        raised += theta * im - cost
        loss += cost
        closed_im0 += theta * venue_flt[v, VF_IM0]
    if raised > needed:
        raised = needed
    return raised, notional, loss, closed_im0, n_touched


def simulate_path(
    i, path, iparams, fparams, comp_w, venue_comp, venue_var, gam_ptr, gam_g, gam_value, gam_comp, gam_factor,
    fd_ptr, fd_factor, fd_value, venue_call, hour_flags, venue_int, venue_flt, venue_order, pair_ptr, pair_factor,
    pair_flt, factor_depth, Y, D, E, tflag, touched, bal, cum_v, keep, offset, ewma, last_pnl, ring, Q, arrivals, xg,
    stats, venue_peak,
):  # fmt: skip
    """Simulate global path `path` into row i of `stats` and `venue_peak` (scratch arrays are this path's own)."""
    hours = iparams[I_HOURS]
    seed = iparams[I_SEED]
    notice = iparams[I_NOTICE]
    feedback = iparams[I_FEEDBACK] != 0
    jump_df = iparams[I_JUMP_DF]
    n_ring = iparams[I_RING]
    n_ring_f = iparams[I_RING_FACILITY]
    im_mode = iparams[I_IM_MODE]
    omega = fparams[F_OMEGA]
    alpha = fparams[F_ALPHA]
    beta = fparams[F_BETA]
    p_jump = fparams[F_JUMP_P]
    jump_scale = fparams[F_JUMP_SCALE]
    im_floor = fparams[F_IM_FLOOR]
    impact = fparams[F_IMPACT] if feedback else 0.0
    vol_weight = fparams[F_VOL_WEIGHT]
    decay = fparams[F_EXCESS_DECAY]
    max_sale = fparams[F_MAX_SALE]
    limit = fparams[F_LIMIT]
    daily_cap = fparams[F_DAILY_CAP]
    trigger = fparams[F_TRIGGER]
    target = fparams[F_TARGET]
    n_k = comp_w.shape[0]
    n_v = venue_comp.shape[0]
    n_f = D.shape[0]
    n_g = gam_comp.shape[0]

    im0_total = 0.0
    for k in range(n_k):
        Y[k] = 0.0
    for f in range(n_f):
        D[f] = 0.0
        E[f] = 0.0
        Q[f] = 0.0
        tflag[f] = 0
    n_touched = 0
    for v in range(n_v):
        bal[v] = venue_flt[v, VF_BALANCE0]
        cum_v[v] = 0.0
        keep[v] = 1.0
        offset[v] = 0.0
        ewma[v] = venue_var[v]
        last_pnl[v] = 0.0
        venue_peak[i, v] = 0.0
        im0_total += abs(venue_flt[v, VF_IM0])
        for r in range(n_ring):
            ring[v, r] = 0.0
    for r in range(n_ring_f):
        arrivals[r] = 0.0

    h = fparams[F_H0]
    max_h = h
    cash = fparams[F_CASH]
    fpot = 0.0
    in_transit = 0.0
    pending = 0.0
    requested = 0.0
    requested_today = 0.0
    arrived = 0.0
    net_calls = 0.0
    peak = 0.0
    peak_hour = 0
    peak_need = 0.0
    gross = 0.0
    returns = 0.0
    paid_cash = 0.0
    paid_fac = 0.0
    paid_liq = 0.0
    shortfall = 0.0
    closed = 0.0
    liq_loss = 0.0
    closed_im0 = 0.0
    liq_hour = -1
    shortfall_hour = -1
    calls_made = 0
    day = 0

    for t in range(1, hours + 1):
        step = t - 1
        # 1. market
        sd = math.sqrt(h / 24.0)
        u = 0.0
        for j in range((n_k + 1) // 2):
            z1, z2 = normal_pair(seed, path, step, STREAM_DIFFUSION, j)
            k = 2 * j
            Y[k] += sd * z1
            u += comp_w[k] * z1 * z1
            if k + 1 < n_k:
                Y[k + 1] += sd * z2
                u += comp_w[k + 1] * z2 * z2
        if p_jump > 0.0:
            uj, _unused = uniform_pair(seed, path, step, STREAM_JUMP, 0)
            if uj < p_jump:
                tail = 1.0
                if jump_df > 0:
                    chi = 0.0
                    for j in range((jump_df + 1) // 2):
                        a1, a2 = normal_pair(seed, path, step, STREAM_JUMP, 1 + j)
                        chi += a1 * a1
                        if 2 * j + 1 < jump_df:
                            chi += a2 * a2
                    tail = math.sqrt(jump_df / chi)
                amp = jump_scale * tail * math.sqrt(h)
                base = 1 + (jump_df + 1) // 2
                for j in range((n_k + 1) // 2):
                    a1, a2 = normal_pair(seed, path, step, STREAM_JUMP, base + j)
                    k = 2 * j
                    jk = amp * a1
                    Y[k] += jk
                    u += comp_w[k] * jk * jk / (sd * sd)
                    if k + 1 < n_k:
                        jk = amp * a2
                        Y[k + 1] += jk
                        u += comp_w[k + 1] * jk * jk / (sd * sd)
        for m in range(n_touched):  # factor f takes normal f % 2 of pair f // 2; both of a pair drawn at once
            f = touched[m]
            if f % 2 == 1 and tflag[f - 1] != 0:
                continue
            z1, z2 = normal_pair(seed, path, step, STREAM_IMPACT, f // 2)
            if f % 2 == 0:
                D[f] += math.sqrt(E[f] / 24.0) * z1
                E[f] *= decay
                if f + 1 < n_f and tflag[f + 1] != 0:
                    D[f + 1] += math.sqrt(E[f + 1] / 24.0) * z2
                    E[f + 1] *= decay
            else:
                D[f] += math.sqrt(E[f] / 24.0) * z2
                E[f] *= decay
        h = omega + alpha * u * h + beta * h
        if h > max_h:
            max_h = h

        hod = t % 24
        if t // 24 != day:
            day = t // 24
            requested_today = 0.0
            for f in range(n_f):
                Q[f] = 0.0

        # 2. calls
        slot = t % n_ring
        if hour_flags[hod, 0] != 0:
            for g in range(n_g):
                x = D[gam_factor[g]]
                for k in range(n_k):
                    x += gam_comp[g, k] * Y[k]
                xg[g] = x
            for v in range(n_v):
                kind = venue_call[v, hod]
                if kind == CALL_NONE:
                    continue
                pnl = _venue_pnl(v, Y, D, n_touched, venue_comp, fd_ptr, fd_factor, fd_value, gam_ptr, gam_g,
                                 gam_value, gam_comp, gam_factor, xg, True)  # fmt: skip
                if kind == CALL_DAILY:
                    change = pnl - last_pnl[v]
                    lam = venue_flt[v, VF_EWMA_DECAY]
                    ewma[v] = lam * ewma[v] + (1.0 - lam) * change * change
                    last_pnl[v] = pnl
                im = _venue_im(v, h, E, n_touched, venue_var, fd_ptr, fd_factor, fd_value, venue_flt, im_floor,
                               im_mode, ewma)  # fmt: skip
                amount = _requirement(v, pnl, im, keep[v], offset[v], venue_int, venue_flt) - bal[v]
                if venue_int[v, VI_CCP] != 0:
                    if kind == CALL_INTRADAY:
                        if amount <= 0.0 or amount <= venue_flt[v, VF_INTRADAY] * keep[v] * im:
                            continue
                    elif amount == 0.0:
                        continue
                else:
                    if amount == 0.0 or abs(amount) < venue_flt[v, VF_MTA]:
                        continue
                    rounding = venue_flt[v, VF_ROUNDING]
                    if rounding > 0.0:
                        if amount > 0.0:
                            amount = math.ceil(amount / rounding) * rounding
                        else:
                            amount = -math.floor(-amount / rounding) * rounding
                        if amount == 0.0:
                            continue
                bal[v] += amount
                ring[v, slot] += amount
                if amount > 0.0:
                    pending += amount
                    calls_made += 1

        # 3. facility
        if notice > 0:
            a = arrivals[t % n_ring_f]
            if a != 0.0:
                arrivals[t % n_ring_f] = 0.0
                fpot += a
                in_transit -= a
                arrived += a
        projected = cash + fpot + in_transit - pending
        if projected < trigger:
            q = target - projected
            if q > limit - requested:
                q = limit - requested
            if q > daily_cap - requested_today:
                q = daily_cap - requested_today
            if q > 0.0:
                requested += q
                requested_today += q
                if notice == 0:
                    fpot += q
                    arrived += q
                else:
                    arrivals[(t + notice) % n_ring_f] += q
                    in_transit += q

        # 4. payments
        due = 0.0
        receipts = 0.0
        if hour_flags[hod, 1] != 0 or t == hours:
            for v in range(n_v):
                if t == hours:
                    lo = 0
                    hi = n_ring
                else:
                    lo = (t - venue_int[v, VI_DELAY]) % n_ring
                    hi = lo + 1
                for r in range(lo, hi):
                    a = ring[v, r]
                    if a != 0.0:
                        ring[v, r] = 0.0
                        cum_v[v] += a
                        if a > 0.0:
                            due += a
                        else:
                            receipts -= a
        if receipts > 0.0:
            cash += receipts
            returns += receipts
        if due > 0.0:
            pending -= due
            gross += due
            rest = due
            x = cash if cash < rest else rest
            if x > 0.0:
                cash -= x
                paid_cash += x
                rest -= x
            if rest > 0.0 and fpot > 0.0:
                x = fpot if fpot < rest else rest
                fpot -= x
                paid_fac += x
                rest -= x
            if 0.0 < rest < CENT:
                if arrived > 0.0:
                    fpot -= rest
                    paid_fac += rest
                else:
                    cash -= rest
                    paid_cash += rest
                rest = 0.0
            if rest > 0.0:
                got, notional, cost, im0_closed, n_touched = _liquidate(
                    rest, h, Y, D, E, tflag, touched, n_touched, keep, offset, bal, Q, venue_order, pair_ptr,
                    pair_factor, pair_flt, factor_depth, venue_comp, venue_var, fd_ptr, fd_factor, fd_value, gam_ptr,
                    gam_g, gam_value, gam_comp, gam_factor, xg, venue_int, venue_flt, im_floor, im_mode, ewma, impact,
                    max_sale, feedback, vol_weight,
                )  # fmt: skip
                if notional > 0.0:
                    if liq_hour < 0:
                        liq_hour = t
                    closed += notional
                    liq_loss += cost
                    closed_im0 += im0_closed
                    paid_liq += got
                    rest -= got
                    if rest < CENT:
                        paid_liq += rest
                        rest = 0.0
            if rest > 0.0:
                shortfall += rest
                if shortfall_hour < 0:
                    shortfall_hour = t
        # 5. peaks
        net_calls += due - receipts
        if net_calls > peak:
            peak = net_calls
            peak_hour = t
            for v in range(n_v):
                venue_peak[i, v] = cum_v[v]
        if net_calls + pending > peak_need:
            peak_need = net_calls + pending

    exhaust = liq_hour
    if shortfall_hour >= 0 and (exhaust < 0 or shortfall_hour < exhaust):
        exhaust = shortfall_hour
    stats[i, S_PEAK] = peak
    stats[i, S_PEAK_HOUR] = peak_hour
    stats[i, S_NEED] = peak_need
    stats[i, S_GROSS] = gross
    stats[i, S_RETURNS] = returns
    stats[i, S_CASH] = paid_cash
    stats[i, S_FACILITY] = paid_fac
    stats[i, S_LIQUIDATION] = paid_liq
    stats[i, S_SHORTFALL] = shortfall
    stats[i, S_CLOSED] = closed
    stats[i, S_LOSS] = liq_loss
    stats[i, S_EXHAUST_HOUR] = exhaust
    stats[i, S_LIQUIDATION_HOUR] = liq_hour
    stats[i, S_SHORTFALL_HOUR] = shortfall_hour
    stats[i, S_REQUESTED] = requested
    stats[i, S_ARRIVED] = arrived
    stats[i, S_CASH_END] = cash
    stats[i, S_FACILITY_END] = fpot
    stats[i, S_MAX_VOL] = math.sqrt(max_h)
    stats[i, S_NET_END] = net_calls
    stats[i, S_CALLS] = calls_made
    stats[i, S_CLOSED_FRACTION] = closed_im0 / im0_total if im0_total > 0.0 else 0.0


_venue_pnl = njit(cache=True, inline="always")(_venue_pnl)
_venue_im = njit(cache=True, inline="always")(_venue_im)
_requirement = njit(cache=True, inline="always")(_requirement)
_close_cost = njit(cache=True)(_close_cost)
_close_marginal = njit(cache=True)(_close_marginal)
_liquidate = njit(cache=True)(_liquidate)
_simulate_path = njit(cache=True, nogil=True)(simulate_path)


def scratch_shapes(n_k, n_f, n_v, n_ring, n_ring_f, n_g):
    """Shapes and dtypes of one path's scratch arrays, in `simulate_path`'s order (Y ... xg)."""
    return (
        ((n_k,), np.float64),  # Y: principal components' moves since the start
        ((n_f,), np.float64),  # D: factor displacement by liquidation (and its extra volatility)
        ((n_f,), np.float64),  # E: extra daily variance left by liquidation
        ((n_f,), np.int8),  # tflag: factor moved by liquidation
        ((n_f,), np.int64),  # touched: those factors, in order
        ((n_v,), np.float64),  # bal: collateral called per venue
        ((n_v,), np.float64),  # cum_v: net calls paid per venue
        ((n_v,), np.float64),  # keep: open fraction of each venue's book
        ((n_v,), np.float64),  # offset: frozen P&L of the closed part
        ((n_v,), np.float64),  # ewma: each venue's EWMA variance of its daily P&L
        ((n_v,), np.float64),  # last_pnl: its P&L at the last end-of-day valuation
        ((n_v, n_ring), np.float64),  # ring: calls by the hour they were made (mod ring)
        ((n_f,), np.float64),  # Q: volume traded today per factor market
        ((n_ring_f,), np.float64),  # arrivals: facility drawings by arrival hour (mod ring)
        ((max(n_g, 1),), np.float64),  # xg: gamma factors' moves at a call hour
    )


@njit(parallel=True, cache=True)
def run_paths(
    path_ids, iparams, fparams, comp_w, venue_comp, venue_var, gam_ptr, gam_g, gam_value, gam_comp, gam_factor,
    fd_ptr, fd_factor, fd_value, venue_call, hour_flags, venue_int, venue_flt, venue_order, pair_ptr, pair_factor,
    pair_flt, factor_depth, stats, venue_peak,
):  # fmt: skip
    """Simulate the paths `path_ids` (global indices) into `stats[i]` and `venue_peak[i]` (CPU, parallel)."""
    n = path_ids.shape[0]
    n_k = comp_w.shape[0]
    n_f = factor_depth.shape[0]
    n_v = venue_comp.shape[0]
    n_g = gam_comp.shape[0]
    n_ring = iparams[I_RING]
    n_ring_f = iparams[I_RING_FACILITY]
    n_chunks = min(n, 64)
    for c in prange(n_chunks):
        Y = np.empty(n_k)
        D = np.empty(n_f)
        E = np.empty(n_f)
        tflag = np.empty(n_f, dtype=np.int8)
        touched = np.empty(n_f, dtype=np.int64)
        bal = np.empty(n_v)
        cum_v = np.empty(n_v)
        keep = np.empty(n_v)
        offset = np.empty(n_v)
        ewma = np.empty(n_v)
        last_pnl = np.empty(n_v)
        ring = np.empty((n_v, n_ring))
        Q = np.empty(n_f)
        arrivals = np.empty(n_ring_f)
        xg = np.empty(max(n_g, 1))
        for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            _simulate_path(i, path_ids[i], iparams, fparams, comp_w, venue_comp, venue_var, gam_ptr, gam_g,
                           gam_value, gam_comp, gam_factor, fd_ptr, fd_factor, fd_value, venue_call, hour_flags,
                           venue_int, venue_flt, venue_order, pair_ptr, pair_factor, pair_flt, factor_depth, Y, D, E,
                           tflag, touched, bal, cum_v, keep, offset, ewma, last_pnl, ring, Q, arrivals, xg, stats,
                           venue_peak)  # fmt: skip
