"""Variation margin: mark-to-market moves per venue, and the CSA mechanics that turn a bilateral
netting set's value into a collateral call.

Signs, from the fund's side: a P&L or a netting set's value (`mtm_usd`) is positive when it is in the
fund's favour; a collateral balance is positive when the fund holds the counterparty's collateral and
negative when the fund has posted; a transfer is positive when collateral moves to the fund. The
figures a liquidity tool wants are the fund's payments: `VariationMargin.paid_usd` is positive when the
fund pays.

At a CCP variation margin is the day's P&L in full, settled the same day (no threshold or transfer
minimum). Under a CSA (`CsaTerms`) the collateral the fund should hold is the credit support amount

    required = sign(mtm) · max(|mtm| − threshold, 0) − independent_amount

(the threshold applies both ways; the independent amount is posted by the fund whatever the value). The
transfer is ``required − balance``; none is made when its size is under the minimum transfer amount.
Otherwise it is split into a return leg (the party holding collateral gives back up to all it holds)
and a delivery leg (the rest, posted by the other party), and — the ISDA convention — the return is
rounded down and the delivery rounded up to a multiple of `rounding_usd`. Calls settle the same day
(``call_timing="same_day"``) or the next business day (``"next_day"``); a call is computed against the
balance plus the calls already made and not yet settled, so a pending call is not called twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engines.margin.arrays import MarginBook
from engines.margin.venues import CsaTerms


def position_pnl(arrays: MarginBook, returns: np.ndarray) -> np.ndarray:
    """P&L per position (delta-gamma) for factor returns [F] -> [P], or [D, F] -> [D, P]."""
    r = _returns(arrays, returns)
    f = arrays.load_factor
    per_load = arrays.load_delta * r[..., f] + 0.5 * arrays.load_gamma * r[..., f] ** 2
    n_p = len(arrays.position_ids)
    if per_load.ndim == 1:
        return np.bincount(arrays.load_position, weights=per_load, minlength=n_p)
    out = np.zeros((per_load.shape[0], n_p))
    np.add.at(out.T, arrays.load_position, per_load.T)
    return out


def venue_pnl(arrays: MarginBook, returns: np.ndarray) -> np.ndarray:
    """P&L per venue (its positions' summed loadings) for returns [F] -> [V], or [D, F] -> [D, V]."""
    r = _returns(arrays, returns)
    pnl = r @ arrays.venue_delta().T
    if np.any(arrays.load_gamma):
        pnl = pnl + 0.5 * (r * r) @ arrays.venue_gamma().T
    return pnl


def _returns(arrays: MarginBook, returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim not in (1, 2) or r.shape[-1] != len(arrays.factors):
        raise ValueError(f"returns: expected [{len(arrays.factors)}] or [days, {len(arrays.factors)}], got {r.shape}")
    return r


@dataclass(frozen=True, eq=False)
class CsaArrays:
    """CSA terms of C netting sets as arrays (USD), in the order of the terms given."""

    threshold_usd: np.ndarray
    minimum_transfer_usd: np.ndarray
    independent_amount_usd: np.ndarray
    rounding_usd: np.ndarray
    settlement_lag_days: np.ndarray  # int: 0 same day, 1 next business day

    @classmethod
    def from_terms(cls, terms: Sequence[CsaTerms]) -> CsaArrays:
        return cls(
            threshold_usd=np.array([t.threshold_usd for t in terms], dtype=np.float64),
            minimum_transfer_usd=np.array([t.minimum_transfer_amount_usd for t in terms], dtype=np.float64),
            independent_amount_usd=np.array([t.independent_amount_usd for t in terms], dtype=np.float64),
            rounding_usd=np.array([t.rounding_usd for t in terms], dtype=np.float64),
            settlement_lag_days=np.array([0 if t.call_timing == "same_day" else 1 for t in terms], dtype=np.int64),
        )


def required_collateral(mtm_usd: np.ndarray, csa: CsaArrays) -> np.ndarray:
    """The balance the fund should hold (negative: should have posted): the credit support amount."""
    mtm = np.asarray(mtm_usd, dtype=np.float64)
    return np.sign(mtm) * np.maximum(np.abs(mtm) - csa.threshold_usd, 0.0) - csa.independent_amount_usd


def _round(amount: np.ndarray, multiple: np.ndarray, up: bool) -> np.ndarray:
    step = np.where(multiple > 0, multiple, 1.0)
    # a tolerance keeps an amount that is a multiple up to floating error from moving a whole step
    q = amount / step
    q = np.ceil(q - 1e-9) if up else np.floor(q + 1e-9)
    return np.where(multiple > 0, q * step, amount)


@dataclass(frozen=True, eq=False)
class CsaCall:
    """The calls of C netting sets: ``transfer_usd = delivery_usd + return_usd`` (signed: + to the fund)."""

    required_usd: np.ndarray  # [C] credit support amount
    transfer_usd: np.ndarray  # [C]
    return_usd: np.ndarray  # [C] the return leg (rounded down in size)
    delivery_usd: np.ndarray  # [C] the delivery leg (rounded up in size)


def csa_call(mtm_usd: np.ndarray, balance_usd: np.ndarray, csa: CsaArrays) -> CsaCall:
    """The collateral call of each netting set given its value and the balance held (see the module docstring)."""
    mtm = np.asarray(mtm_usd, dtype=np.float64)
    held = np.asarray(balance_usd, dtype=np.float64)
    required = required_collateral(mtm, csa)
    transfer = required - held
    sign = np.sign(transfer)
    size = np.abs(transfer)
    # what the receiving side gets back of collateral it had posted: held < 0 when the fund had posted
    posted_by_receiver = np.where(sign > 0, np.maximum(-held, 0.0), np.maximum(held, 0.0))
    ret = np.minimum(size, posted_by_receiver)
    deliver = size - ret
    ret = _round(ret, csa.rounding_usd, up=False)
    deliver = _round(deliver, csa.rounding_usd, up=True)
    called = size >= csa.minimum_transfer_usd
    called &= size > 0
    return CsaCall(
        required_usd=required,
        transfer_usd=np.where(called, sign * (ret + deliver), 0.0),
        return_usd=np.where(called, sign * ret, 0.0),
        delivery_usd=np.where(called, sign * deliver, 0.0),
    )


@dataclass(frozen=True, eq=False)
class CsaPath:
    """Day by day under a CSA: the call made each day, the transfer settled, the balance at the close."""

    calls_usd: np.ndarray  # [D, C] made on day d (+ to the fund)
    settled_usd: np.ndarray  # [D, C] settled on day d
    balance_usd: np.ndarray  # [D, C] after day d's settlements


def csa_path(mtm_usd: np.ndarray, csa: CsaArrays, initial_balance_usd: np.ndarray) -> CsaPath:
    """Calls and balances over D days of netting-set values `mtm_usd` [D, C] from `initial_balance_usd` [C].

    Day d: the calls due on d settle; then the call on d is computed against the balance plus the calls
    still pending; it settles `settlement_lag_days` later (at once when 0).
    """
    mtm = np.atleast_2d(np.asarray(mtm_usd, dtype=np.float64))
    n_d, n_c = mtm.shape
    lag = csa.settlement_lag_days
    balance = np.asarray(initial_balance_usd, dtype=np.float64).copy()
    due = np.zeros((n_d + int(lag.max(initial=0)) + 1, n_c))
    calls = np.zeros((n_d, n_c))
    settled = np.zeros((n_d, n_c))
    balances = np.zeros((n_d, n_c))
    cols = np.arange(n_c)
    for d in range(n_d):
        balance += due[d]
        settled[d] = due[d]
        pending = due[d + 1 :].sum(axis=0)
        call = csa_call(mtm[d], balance + pending, csa).transfer_usd
        calls[d] = call
        now = lag == 0
        balance[now] += call[now]
        settled[d, now] += call[now]
        later = ~now
        due[d + lag[later], cols[later]] += call[later]
        balances[d] = balance
    return CsaPath(calls, settled, balances)


@dataclass(frozen=True, eq=False)
class VariationMargin:
    """One day's variation margin per venue (USD): `paid_usd` > 0 when the fund pays."""

    pnl_usd: np.ndarray  # [V] the day's mark-to-market move of the venue's positions
    paid_usd: np.ndarray  # [V] CCP: −pnl; bilateral: −(CSA transfer)
    settlement_lag_days: np.ndarray  # [V]


def variation_margin(
    arrays: MarginBook,
    returns: np.ndarray,
    csa: Sequence[CsaTerms | None],
    *,
    balance_usd: np.ndarray | None = None,
) -> VariationMargin:
    """Variation margin per venue for one day's factor returns [F]; `csa[v]` is None at a CCP.

    The netting set's value after the move is the sum of its positions' values (`position_value_usd`,
    taken as the value at the end of the day). Without `balance_usd` the balance before the move is the
    credit support amount at the value before it (the previous call settled exactly), so the call is
    what the day's move adds, after threshold, transfer minimum and rounding.
    """
    n_v = len(arrays.venues)
    if len(csa) != n_v:
        raise ValueError(f"csa: expected one entry per venue ({n_v}), got {len(csa)}")
    r = _returns(arrays, returns)
    if r.ndim != 1:
        raise ValueError(f"returns: one day's returns [{len(arrays.factors)}] expected, got {r.shape}")
    pnl = venue_pnl(arrays, r)
    paid = -pnl
    lag = np.zeros(n_v, dtype=np.int64)
    bilateral = np.array([t is not None for t in csa])
    if bilateral.any():
        terms = CsaArrays.from_terms([t for t in csa if t is not None])
        mtm = np.bincount(arrays.position_venue, weights=arrays.position_value_usd, minlength=n_v)[bilateral]
        held = required_collateral(mtm - pnl[bilateral], terms) if balance_usd is None else balance_usd[bilateral]
        paid[bilateral] = -csa_call(mtm, held, terms).transfer_usd
        lag[bilateral] = terms.settlement_lag_days
    return VariationMargin(pnl, paid, lag)
