"""SA-CCR exposure at default of netting sets, as the Basel standard states it (CRE52; first BCBS 279, 2014).

    EAD = alpha x (RC + PFE),  alpha = 1.4,  PFE = multiplier x AddOn_aggregate          (CRE52.1, CRE52.20)
    RC  = max(V - C, 0)                               unmargined                         (CRE52.10)
    RC  = max(V - C, TH + MTA - NICA, 0)              margined                           (CRE52.18)
    multiplier = min(1, 5% + 95% x exp((V - C) / (2 x 95% x AddOn_aggregate)))           (CRE52.23)

Each trade has an effective notional D = d x delta x MF: the adjusted notional d (notional x supervisory
duration SD = (exp(-5% S) - exp(-5% E)) / 5%, floored at ten business days, for interest rate and credit;
the notional otherwise), the supervisory delta (+1/-1, the Black delta of an option with the supervisory
volatility, or 15 / ((1 + 14 A)(1 + 14 D)) for a CDO tranche), and the maturity factor
sqrt(min(M, 1 year) / 1 year) with M floored at 10/250 (unmargined) or 1.5 sqrt(MPOR / 250) (margined).
Add-ons per hedging set: interest rates offset within maturity buckets (E up to 1 year, 1 to 5, over 5)
and partly across them (1.4 between neighbouring buckets, 0.6 between the first and the third); FX offsets
fully within a currency pair; credit, equity and commodity aggregate the risk factors' add-ons
SF x D with the single-factor formula sqrt((sum rho A)^2 + sum (1 - rho^2) A^2). Asset classes add up.

The margined EAD is capped at the unmargined one (CRE52.2). For that cap this module computes the
unmargined EAD of the same trades with the same V and C (collateral held still offsets the exposure;
only the maturity factors and the replacement-cost floor change).

Where BCBS 279 and CRE52 differ, CRE52 is implemented; the five Annex 4a examples of BCBS 279 give the
same figures under both. The differences: BCBS 279 (para 157) floors S and E at ten business days where
CRE52.34 floors the supervisory duration itself; the MPOR floor for a netting set remargined every N > 1
days is 10 + N - 1 days in BCBS 279 (Annex 4 para 41(iii)) and 9 + N in CRE52.50 (the same number);
CRE52 adds the shift lambda for options on negative rates (CRE52.40 FAQ2) and the one-way margin
agreement treated as unmargined with the VM the bank posted counted in C (CRE52.2, CRE52.10); the sold
CDO tranche's delta, printed with a plus sign in BCBS 279's table, is negative (CRE52.41).
Not implemented: the MPOR floors of centrally cleared trades (CRE54; BCBS 279 para 164 gives five days
for a clearing member's client trades), a margin agreement covering several netting sets (CRE52.75-76),
sub-netting sets under several margin agreements (CRE52.74), and the protection seller's cap at unpaid
premia outside netting sets (CRE52.1 FAQ2).

For what-if work (compression, novation, CSA amendments, adding a trade) a netting set is compiled once
into arrays (`compile_netting_set`); `exposure` then evaluates any number of weightings of its trades at
once (a weight scales a trade's notional and market value: 0 removes it), vectorised over the scenarios.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.xva.saccr_models import (
    ASSET_CLASSES,
    HedgingSetAddOn,
    NettingSet,
    SaccrResult,
    SaccrTrade,
    TradeExposure,
)

ALPHA = 1.4
MULTIPLIER_FLOOR = 0.05
SUPERVISORY_RATE = 0.05
"""Rate of the supervisory duration (CRE52.34)."""
BUSINESS_DAYS_PER_YEAR = 250
MATURITY_FLOOR_YEARS = 10 / BUSINESS_DAYS_PER_YEAR
"""Ten business days: the floor of M (CRE52.48-49) and of the supervisory duration (CRE52.34)."""
MARGINED_MF_SCALE = 1.5
BASIS_SCALE = 0.5
VOLATILITY_SCALE = 5.0
IR_BUCKET_LIMITS = (1.0, 5.0)
"""Interest rate maturity buckets by end date E: up to 1 year, 1 to 5 years, over 5 years (CRE52.57(3))."""
IR_BUCKETS = ("<=1y", "1y-5y", ">5y")

# CRE52.72 Table 2: supervisory factor, correlation, supervisory option volatility.
IR_FACTOR, IR_VOLATILITY = 0.005, 0.50
FX_FACTOR, FX_VOLATILITY = 0.04, 0.15
CREDIT_SINGLE_NAME_FACTORS = {
    "AAA": 0.0038,
    "AA": 0.0038,
    "A": 0.0042,
    "BBB": 0.0054,
    "BB": 0.0106,
    "B": 0.016,
    "CCC": 0.06,
}
CREDIT_INDEX_FACTORS = {"IG": 0.0038, "SG": 0.0106}
CREDIT_SINGLE_NAME, CREDIT_INDEX = (0.50, 1.00), (0.80, 0.80)
"""Credit (correlation, option volatility) for single names and indices."""
EQUITY_SINGLE_NAME, EQUITY_INDEX = (0.32, 0.50, 1.20), (0.20, 0.80, 0.75)
"""Equity (supervisory factor, correlation, option volatility)."""
ELECTRICITY, OTHER_COMMODITY = (0.40, 0.40, 1.50), (0.18, 0.40, 0.70)
"""Commodity (supervisory factor, correlation, option volatility): electricity; oil/gas, metals, agricultural, other."""

_CLASS_INDEX = {c: i for i, c in enumerate(ASSET_CLASSES)}
_NATURE_SCALE = {"standard": 1.0, "basis": BASIS_SCALE, "volatility": VOLATILITY_SCALE}


# ---- trade-level quantities ----------------------------------------------------------------------


def supervisory_duration(start: np.ndarray | float, end: np.ndarray | float) -> np.ndarray:
    """SD = (exp(-5% S) - exp(-5% E)) / 5%, floored at ten business days (CRE52.34)."""
    s, e = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    sd = (np.exp(-SUPERVISORY_RATE * s) - np.exp(-SUPERVISORY_RATE * e)) / SUPERVISORY_RATE
    return np.maximum(sd, MATURITY_FLOOR_YEARS)


def unmargined_maturity_factor(maturity: np.ndarray | float) -> np.ndarray:
    """MF = sqrt(min(M, 1 year) / 1 year), M floored at ten business days (CRE52.48-49)."""
    m = np.asarray(maturity, dtype=np.float64)
    return np.sqrt(np.clip(m, MATURITY_FLOOR_YEARS, 1.0))


def margined_maturity_factor(mpor_business_days: float) -> float:
    """MF = 1.5 sqrt(MPOR / 1 year), 250 business days a year (CRE52.52-53)."""
    return MARGINED_MF_SCALE * math.sqrt(mpor_business_days / BUSINESS_DAYS_PER_YEAR)


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def option_delta(
    kind: str, position: str, price: float, strike: float, years: float, volatility: float, shift: float = 0.0
) -> float:
    """Supervisory delta of an option (CRE52.40, with the shift lambda of its FAQ2).

    d1 = (ln((P + lambda) / (K + lambda)) + sigma^2 T / 2) / (sigma sqrt(T)); bought call +Phi(d1), sold call
    -Phi(d1), bought put -Phi(-d1), sold put +Phi(-d1).
    """
    if price + shift <= 0 or strike + shift <= 0 or years <= 0 or volatility <= 0:
        raise ValueError("option delta needs P + shift > 0, K + shift > 0, T > 0 and a positive volatility")
    root = volatility * math.sqrt(years)
    d1 = (math.log((price + shift) / (strike + shift)) + 0.5 * root * root) / root
    sign = 1.0 if position == "bought" else -1.0
    return sign * _normal_cdf(d1) if kind == "call" else -sign * _normal_cdf(-d1)


def tranche_delta(attachment: float, detachment: float, long_protection: bool) -> float:
    """Supervisory delta of a CDO tranche: +-15 / ((1 + 14 A)(1 + 14 D)) (CRE52.41)."""
    value = 15.0 / ((1.0 + 14.0 * attachment) * (1.0 + 14.0 * detachment))
    return value if long_protection else -value


def _supervisory_parameters(trade: SaccrTrade) -> tuple[float, float, float]:
    """(supervisory factor before the basis/volatility scaling, correlation, option volatility) of a trade."""
    cls = trade.asset_class
    if cls == "interest_rate":
        return IR_FACTOR, 1.0, IR_VOLATILITY
    if cls == "fx":
        return FX_FACTOR, 1.0, FX_VOLATILITY
    if cls == "credit":
        quality = str(trade.credit_quality)
        if trade.index:
            return CREDIT_INDEX_FACTORS[quality], *CREDIT_INDEX
        return CREDIT_SINGLE_NAME_FACTORS[quality], *CREDIT_SINGLE_NAME
    if cls == "equity":
        return EQUITY_INDEX if trade.index else EQUITY_SINGLE_NAME
    return ELECTRICITY if trade.electricity else OTHER_COMMODITY


def supervisory_delta(trade: SaccrTrade) -> float:
    """The trade's supervisory delta (CRE52.39-41)."""
    if trade.option is not None:
        o = trade.option
        volatility = _supervisory_parameters(trade)[2]
        return option_delta(o.kind, o.position, o.underlying_price, o.strike, o.exercise_years, volatility, o.shift)
    long = trade.direction == "long"
    if trade.tranche is not None:
        return tranche_delta(trade.tranche.attachment, trade.tranche.detachment, long)
    return 1.0 if long else -1.0


def _hedging_set(trade: SaccrTrade) -> str:
    cls = trade.asset_class
    if cls == "interest_rate":
        base = str(trade.currency)
    elif cls == "fx":
        base = str(trade.currency_pair)
    elif cls == "commodity":
        base = str(trade.commodity_set)
    else:
        base = cls
    if trade.nature == "basis":
        return f"{base} basis {trade.basis}"
    if trade.nature == "volatility":
        return f"{base} volatility"
    return base


def _risk_factor(trade: SaccrTrade) -> str:
    if trade.asset_class == "interest_rate":
        return IR_BUCKETS[_ir_bucket(trade.end)]
    if trade.asset_class == "fx":
        return str(trade.currency_pair)
    return str(trade.reference)


def _ir_bucket(end: float) -> int:
    return 0 if end <= IR_BUCKET_LIMITS[0] else 1 if end <= IR_BUCKET_LIMITS[1] else 2


# ---- the netting set as arrays -------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledNettingSet:
    """A netting set as arrays: each trade's contribution, how contributions aggregate, and the margin terms.

    Trades map to risk-factor groups (an interest rate maturity bucket, a currency pair, a credit or equity
    entity, a commodity type), groups to hedging sets, hedging sets to asset classes. Every interest rate
    hedging set has its three bucket groups, empty or not. Groups are ordered by hedging set.
    """

    netting_set: NettingSet
    trade_ids: tuple[str, ...]
    mtm: np.ndarray
    adjusted_notional: np.ndarray
    delta: np.ndarray
    supervisory_factor: np.ndarray
    unmargined_mf: np.ndarray
    trade_group: np.ndarray
    group_label: tuple[str, ...]
    group_hedging_set: np.ndarray
    group_correlation: np.ndarray
    hedging_set_label: tuple[str, ...]
    hedging_set_class: np.ndarray
    ir_hedging_sets: np.ndarray
    ir_bucket_groups: np.ndarray
    # precomputed aggregation layout
    order: np.ndarray
    group_starts: np.ndarray
    groups_present: np.ndarray
    hedging_set_starts: np.ndarray

    @property
    def margined_mf(self) -> float | None:
        """The maturity factor of every trade of a margined netting set; None if unmargined."""
        mpor = self.netting_set.mpor
        return None if mpor is None else margined_maturity_factor(mpor)


def compile_netting_set(netting_set: NettingSet) -> CompiledNettingSet:
    """The arrays `exposure` evaluates: per-trade d, delta, SF, MF and the group/hedging-set layout."""
    trades = netting_set.trades
    n = len(trades)
    sf, rho, delta, hs_keys, group_keys = [], [], [], [], []
    for t in trades:
        factor, correlation, volatility = _supervisory_parameters(t)
        sf.append(factor * _NATURE_SCALE[t.nature])
        rho.append(correlation)
        if t.option is not None:
            o = t.option
            delta.append(
                option_delta(o.kind, o.position, o.underlying_price, o.strike, o.exercise_years, volatility, o.shift)
            )
        else:
            delta.append(supervisory_delta(t))
        hs = (_CLASS_INDEX[t.asset_class], _hedging_set(t))
        hs_keys.append(hs)
        group_keys.append((hs, _ir_bucket(t.end) if t.asset_class == "interest_rate" else -1, _risk_factor(t)))
    notional = np.array([t.notional for t in trades], dtype=np.float64)
    has_duration = np.array([t.asset_class in ("interest_rate", "credit") for t in trades], dtype=bool)
    sd = supervisory_duration([t.start for t in trades], [t.end for t in trades]) if n else np.zeros(0)
    mf = unmargined_maturity_factor([t.maturity_years for t in trades]) if n else np.zeros(0)

    hedging_sets = sorted(set(hs_keys))
    hs_index = {key: h for h, key in enumerate(hedging_sets)}
    groups = set(group_keys)
    ir_hs = [key for key in hedging_sets if key[0] == _CLASS_INDEX["interest_rate"]]
    groups.update((key, b, IR_BUCKETS[b]) for key in ir_hs for b in range(3))
    ordered = sorted(groups)
    group_index = {key: g for g, key in enumerate(ordered)}
    correlation_of = dict(zip(group_keys, rho, strict=True))
    group_hs = np.array([hs_index[key[0]] for key in ordered], dtype=np.int64)
    trade_group = np.array([group_index[key] for key in group_keys], dtype=np.int64)
    order = np.argsort(trade_group, kind="stable")
    sorted_groups = trade_group[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]) if n else np.zeros(0, np.int64)
    hs_starts = np.flatnonzero(np.r_[True, group_hs[1:] != group_hs[:-1]]) if ordered else np.zeros(0, np.int64)
    ir_groups = np.array([[group_index[(key, b, IR_BUCKETS[b])] for b in range(3)] for key in ir_hs], dtype=np.int64)
    return CompiledNettingSet(
        netting_set=netting_set,
        trade_ids=tuple(t.id for t in trades),
        mtm=np.array([t.mtm for t in trades], dtype=np.float64),
        adjusted_notional=np.where(has_duration, notional * sd, notional),
        delta=np.array(delta, dtype=np.float64),
        supervisory_factor=np.array(sf, dtype=np.float64),
        unmargined_mf=mf,
        trade_group=trade_group,
        group_label=tuple(key[2] for key in ordered),
        group_hedging_set=group_hs,
        group_correlation=np.array([correlation_of.get(key, 1.0) for key in ordered], dtype=np.float64),
        hedging_set_label=tuple(label for _, label in hedging_sets),
        hedging_set_class=np.array([c for c, _ in hedging_sets], dtype=np.int64),
        ir_hedging_sets=np.array([hs_index[key] for key in ir_hs], dtype=np.int64),
        ir_bucket_groups=ir_groups.reshape(len(ir_hs), 3),
        order=order,
        group_starts=starts,
        groups_present=sorted_groups[starts] if n else np.zeros(0, np.int64),
        hedging_set_starts=hs_starts,
    )


# ---- aggregation, vectorised over scenarios ------------------------------------------------------


def group_sums(compiled: CompiledNettingSet, per_trade: np.ndarray) -> np.ndarray:
    """Sum a (scenarios, trades) array over each risk-factor group: (scenarios, groups)."""
    out = np.zeros((per_trade.shape[0], len(compiled.group_label)))
    if compiled.trade_ids:
        out[:, compiled.groups_present] = np.add.reduceat(per_trade[:, compiled.order], compiled.group_starts, axis=1)
    return out


def hedging_set_add_ons(compiled: CompiledNettingSet, group_add_on: np.ndarray) -> np.ndarray:
    """Add-on per hedging set from the groups' signed add-ons A = SF x D: (scenarios, hedging sets).

    Single-factor aggregation sqrt((sum rho A)^2 + sum (1 - rho^2) A^2) (credit, equity, commodity; a currency
    pair with rho = 1 gives |A|), and the maturity-bucket formula for interest rates (CRE52.57(5)).
    """
    k, h = group_add_on.shape[0], len(compiled.hedging_set_label)
    if h == 0:
        return np.zeros((k, 0))
    rho = compiled.group_correlation
    systematic = np.add.reduceat(group_add_on * rho, compiled.hedging_set_starts, axis=1)
    idiosyncratic = np.add.reduceat(group_add_on**2 * (1.0 - rho**2), compiled.hedging_set_starts, axis=1)
    out = np.sqrt(systematic**2 + idiosyncratic)
    if compiled.ir_hedging_sets.size:
        b = compiled.ir_bucket_groups
        a1, a2, a3 = group_add_on[:, b[:, 0]], group_add_on[:, b[:, 1]], group_add_on[:, b[:, 2]]
        if compiled.netting_set.ir_bucket_offset:
            quad = a1**2 + a2**2 + a3**2 + 1.4 * a1 * a2 + 1.4 * a2 * a3 + 0.6 * a1 * a3
            out[:, compiled.ir_hedging_sets] = np.sqrt(np.maximum(quad, 0.0))
        else:
            out[:, compiled.ir_hedging_sets] = np.abs(a1) + np.abs(a2) + np.abs(a3)
    return out


def pfe_multiplier(surplus: np.ndarray | float, add_on: np.ndarray | float) -> np.ndarray:
    """min(1, 5% + 95% exp(surplus / (2 x 95% x AddOn))), surplus = V - C (CRE52.23).

    With no add-on the multiplier is 1 for a non-negative surplus and the floor otherwise (its limit).
    """
    s, a = np.asarray(surplus, dtype=np.float64), np.asarray(add_on, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(a > 0, s / (2.0 * (1.0 - MULTIPLIER_FLOOR) * a), np.where(s >= 0, 0.0, -np.inf))
    return np.minimum(1.0, MULTIPLIER_FLOOR + (1.0 - MULTIPLIER_FLOOR) * np.exp(np.minimum(x, 0.0)))


@dataclass(frozen=True)
class Exposure:
    """SA-CCR figures for a batch of scenarios (weightings of one netting set's trades), one row each."""

    value: np.ndarray
    replacement_cost: np.ndarray
    multiplier: np.ndarray
    add_on: np.ndarray
    add_on_by_class: np.ndarray
    hedging_set_add_on: np.ndarray
    group_add_on: np.ndarray
    ead: np.ndarray
    unmargined_ead: np.ndarray | None

    @property
    def pfe(self) -> np.ndarray:
        return self.multiplier * self.add_on

    @property
    def capped(self) -> np.ndarray:
        """Where the margined EAD is the unmargined one (always False for an unmargined netting set)."""
        if self.unmargined_ead is None:
            return np.zeros_like(self.ead, dtype=bool)
        return self.unmargined_ead <= self.ead


def _add_ons(compiled: CompiledNettingSet, weights: np.ndarray, mf: np.ndarray | float) -> tuple[np.ndarray, ...]:
    per_trade = weights * (compiled.supervisory_factor * compiled.adjusted_notional * compiled.delta * mf)
    groups = group_sums(compiled, per_trade)
    hedging_sets = hedging_set_add_ons(compiled, groups)
    by_class = np.zeros((weights.shape[0], len(ASSET_CLASSES)))
    for c in range(len(ASSET_CLASSES)):
        by_class[:, c] = hedging_sets[:, compiled.hedging_set_class == c].sum(axis=1)
    return groups, hedging_sets, by_class, by_class.sum(axis=1)


def exposure(compiled: CompiledNettingSet, weights: np.ndarray | None = None) -> Exposure:
    """EAD and its parts for each row of `weights` (scenarios x trades; default: one row of ones).

    A weight scales a trade's notional and market value (0 removes the trade, 0.5 halves it), so one call
    prices a set of compression or novation candidates. The margin terms are those of the netting set.
    """
    n = len(compiled.trade_ids)
    w = np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if w.shape[1] != n:
        raise ValueError(f"weights: expected {n} columns (one per trade), got {w.shape[1]}")
    ns = compiled.netting_set
    value = w @ compiled.mtm
    surplus = value - ns.net_collateral
    unmargined = _add_ons(compiled, w, compiled.unmargined_mf)
    rc_unmargined = np.maximum(surplus, 0.0)
    ead_unmargined = ALPHA * (rc_unmargined + pfe_multiplier(surplus, unmargined[3]) * unmargined[3])
    margined_mf = compiled.margined_mf
    if margined_mf is None:
        groups, hedging_sets, by_class, add_on = unmargined
        return Exposure(
            value,
            rc_unmargined,
            pfe_multiplier(surplus, add_on),
            add_on,
            by_class,
            hedging_sets,
            groups,
            ead_unmargined,
            None,
        )
    groups, hedging_sets, by_class, add_on = _add_ons(compiled, w, margined_mf)
    rc = np.maximum(np.maximum(surplus, ns.threshold + ns.minimum_transfer_amount - ns.nica), 0.0)
    multiplier = pfe_multiplier(surplus, add_on)
    ead = np.minimum(ALPHA * (rc + multiplier * add_on), ead_unmargined)
    return Exposure(value, rc, multiplier, add_on, by_class, hedging_sets, groups, ead, ead_unmargined)


# ---- the result of one netting set ---------------------------------------------------------------


def saccr(netting_set: NettingSet, *, trade_detail: bool = True) -> SaccrResult:
    """The SA-CCR exposure at default of a netting set, with its add-ons per asset class and hedging set.

    `trade_detail=False` leaves out the per-trade table (faster for large batches).
    """
    compiled = compile_netting_set(netting_set)
    ex = exposure(compiled)
    mf = compiled.margined_mf
    per_trade_mf = compiled.unmargined_mf if mf is None else np.full(len(compiled.trade_ids), mf)
    effective = compiled.adjusted_notional * compiled.delta * per_trade_mf
    group_en = group_sums(compiled, effective[None, :])[0]
    group_addon = ex.group_add_on[0]
    hedging_sets = []
    ir_buckets: dict[str, list[float]] = {}
    for h, label in enumerate(compiled.hedging_set_label):
        cls = ASSET_CLASSES[compiled.hedging_set_class[h]]
        members = np.flatnonzero(compiled.group_hedging_set == h)
        names = [compiled.group_label[g] for g in members]
        hedging_sets.append(
            HedgingSetAddOn.model_construct(
                asset_class=cls,
                hedging_set=label,
                add_on=float(ex.hedging_set_add_on[0, h]),
                effective_notionals={nm: float(group_en[g]) for nm, g in zip(names, members, strict=True)},
                risk_factor_add_ons={nm: float(group_addon[g]) for nm, g in zip(names, members, strict=True)},
            )
        )
        if cls == "interest_rate":
            ir_buckets[label] = [float(group_en[g]) for g in members]
    present = {
        c: float(ex.add_on_by_class[0, i])
        for i, c in enumerate(ASSET_CLASSES)
        if np.any(compiled.hedging_set_class == i)
    }
    trades = _trade_table(compiled, per_trade_mf, effective) if trade_detail else []
    return SaccrResult.model_construct(
        netting_set_id=netting_set.id,
        currency=netting_set.currency,
        margined=netting_set.margined,
        value=float(ex.value[0]),
        net_collateral=netting_set.net_collateral,
        nica=netting_set.nica,
        replacement_cost=float(ex.replacement_cost[0]),
        pfe_multiplier=float(ex.multiplier[0]),
        add_on=float(ex.add_on[0]),
        add_ons=present,
        pfe=float(ex.pfe[0]),
        ead=float(ex.ead[0]),
        alpha=ALPHA,
        mpor_business_days=netting_set.mpor,
        maturity_factor=mf,
        unmargined_ead=None if ex.unmargined_ead is None else float(ex.unmargined_ead[0]),
        capped=bool(ex.capped[0]),
        hedging_sets=hedging_sets,
        ir_maturity_buckets=ir_buckets,
        trades=trades,
    )


def _trade_table(compiled: CompiledNettingSet, mf: np.ndarray, effective: np.ndarray) -> list[TradeExposure]:
    trades = compiled.netting_set.trades
    hs = compiled.group_hedging_set[compiled.trade_group]
    return [
        TradeExposure.model_construct(
            id=t.id,
            asset_class=t.asset_class,
            hedging_set=compiled.hedging_set_label[hs[i]],
            risk_factor=compiled.group_label[compiled.trade_group[i]],
            adjusted_notional=float(compiled.adjusted_notional[i]),
            supervisory_delta=float(compiled.delta[i]),
            maturity_factor=float(mf[i]),
            supervisory_factor=float(compiled.supervisory_factor[i]),
            effective_notional=float(effective[i]),
        )
        for i, t in enumerate(trades)
    ]


def saccr_batch(netting_sets: Iterable[NettingSet], *, trade_detail: bool = False) -> list[SaccrResult]:
    """`saccr` of each netting set, in order (per-trade tables left out unless asked for)."""
    return [saccr(ns, trade_detail=trade_detail) for ns in netting_sets]


def ead_batch(netting_sets: Iterable[NettingSet]) -> np.ndarray:
    """The EAD of each netting set, as an array (the lean path for many netting sets)."""
    return np.array([float(exposure(compile_netting_set(ns)).ead[0]) for ns in netting_sets])


# ---- what-if ---------------------------------------------------------------------------------------


def without_trades(netting_set: NettingSet, trade_ids: Iterable[str]) -> NettingSet:
    """The netting set with the named trades removed; an id that is not there is refused."""
    drop = set(trade_ids)
    unknown = drop - {t.id for t in netting_set.trades}
    if unknown:
        raise ValueError(f"trade_ids: no trade {sorted(unknown)[0]!r} in netting set {netting_set.id!r}")
    return _rebuilt(netting_set, trades=[t for t in netting_set.trades if t.id not in drop])


def with_trades(netting_set: NettingSet, trades: Sequence[SaccrTrade | dict[str, Any]]) -> NettingSet:
    """The netting set with `trades` added (validated as the netting set validates its own)."""
    return _rebuilt(netting_set, trades=[*netting_set.trades, *trades])


def with_terms(netting_set: NettingSet, **terms: Any) -> NettingSet:
    """The netting set with other margin terms (e.g. threshold=0, margined=True, mpor_business_days=20)."""
    if "trades" in terms:
        raise ValueError("terms: change trades with with_trades or without_trades")
    return _rebuilt(netting_set, **terms)


def _rebuilt(netting_set: NettingSet, **changes: Any) -> NettingSet:
    data = {**netting_set.model_dump(exclude={"trades"}), "trades": list(netting_set.trades), **changes}
    return NettingSet.model_validate(data)


def leave_one_out(netting_set: NettingSet) -> dict[str, float]:
    """EAD of the netting set without each trade in turn (trade id -> EAD), in one vectorised evaluation."""
    compiled = compile_netting_set(netting_set)
    n = len(compiled.trade_ids)
    ead = exposure(compiled, 1.0 - np.eye(n)).ead if n else np.zeros(0)
    return dict(zip(compiled.trade_ids, (float(x) for x in ead), strict=True))
