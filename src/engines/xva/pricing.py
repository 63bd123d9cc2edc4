"""Trade values on every path and simulation date, in closed form under the simulation model.

Trades are compiled once into product tables (`compile_trades`): arrays of parameters per row, with schedules
flattened and indexed by offsets; `value_on_paths` then runs one numba kernel per table (`kernels`), parallel
over blocks of paths, adding each row's USD value into its slot (a netting set of the chunk, or a trade).

- Swaps and the legs of cross-currency swaps: fixed coupons and notional exchanges are cash flows valued with
  Hull–White bonds P(t, T | x); floating legs are single-curve, the running coupon fixed on the path at its
  reset (at the last simulation date on or before it, projected to the coupon's period, which keeps the value
  a martingale). Cross-currency legs are converted at the path's FX rate.
- FX forwards: two cash flows, one per currency. FX and equity options and equity forwards: Black on the
  path's forward with the model's own variance of ln F over (t, T) — the FX/equity vol and the rates' vols
  with their correlations — so a discounted option value is a martingale of the simulation.
- European swaptions: Jamshidian's exact Hull–White price up to expiry. After expiry a physical swaption is
  its underlying swap on the paths where the holder exercised, decided with the state at the first simulation
  date on or after expiry against Jamshidian's critical state; a cash-settled one is gone (settled at the
  swap's value at expiry).
- CDS: QuantLib's mid-point scheme on the path's conditional survival curve, from the reference name's simulated
  intensity (`scenarios.credit_paths`), discounted on the forward curve P(0,T)/P(0,t) (a CDS is insensitive to
  rates to first order; reference names are independent of rates, so the discounted value stays a martingale).
  Defaults of the reference name are not simulated: the value on a path is the pre-default value.

Speed: everything that depends on the path only through one state at t — fixed flows, floating legs between
resets, swaptions not too close to expiry, a physical swaption's underlying after exercise, CDS — is summed
per netting set and currency (or CDS name) as a Chebyshev interpolant in that state on the paths' own range
(48 nodes, trailing coefficients below 1e-13 dropped: exact to rounding for these sums of exponentials,
checked against the direct method), so the cost
per path does not grow with the number of flows. What depends on a path's past (a coupon fixed at its reset,
the exercise decision) or on several drivers (FX and equity options and forwards) is valued path by path.
`method="direct"` values every row on every path instead (its swap cash flows and floating legs on a GPU when one
is present: `cuda_kernels`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

from engines.xva import kernels
from engines.xva.hullwhite import HullWhite, PiecewiseConstant
from engines.xva.market import BASE_CURRENCY, HazardCurve, Market, bootstrap_hazard
from engines.xva.scenarios import CreditName, CreditPaths, ScenarioSet, credit_paths
from engines.xva.trades import (
    CONVENTIONS,
    CreditDefaultSwap,
    CrossCurrencySwap,
    EquityForward,
    EquityOption,
    FxForward,
    FxOption,
    InterestRateSwap,
    SwapLeg,
    Swaption,
    months_of,
    schedules,
    year_fraction,
)

_I = np.int64
_F = np.float64


# ---------------------------------------------------------------------------------------------
# Product tables
# ---------------------------------------------------------------------------------------------


@dataclass
class _Rows:
    """Column lists of a table under construction."""

    cols: dict[str, list] = field(default_factory=dict)

    def add(self, **values) -> None:
        for k, v in values.items():
            self.cols.setdefault(k, []).append(v)

    def extend(self, **values) -> None:
        for k, v in values.items():
            self.cols.setdefault(k, []).extend(np.asarray(v).tolist())

    def array(self, key: str, dtype) -> np.ndarray:
        return np.asarray(self.cols.get(key, []), dtype=dtype)


@dataclass(frozen=True, eq=False)
class ProductTables:
    """Trades compiled to the kernels' tables; `slots` is how many output slots the rows add into."""

    slots: int
    cashflows: dict[str, np.ndarray]
    floats: dict[str, np.ndarray]
    coupons: dict[str, np.ndarray]
    swaptions: dict[str, np.ndarray]
    strikes: dict[str, np.ndarray]
    gates: dict[str, np.ndarray]
    lognormal: dict[str, np.ndarray]
    cds: dict[str, np.ndarray]
    periods: dict[str, np.ndarray]
    credit_names: tuple[str, ...]

    @property
    def rows(self) -> int:
        return sum(len(t["slot"]) for t in (self.cashflows, self.floats, self.swaptions, self.lognormal, self.cds))


@dataclass
class _Builder:
    scen: ScenarioSet
    cash: _Rows = field(default_factory=_Rows)
    floats: _Rows = field(default_factory=_Rows)
    coupons: _Rows = field(default_factory=_Rows)
    swaptions: _Rows = field(default_factory=_Rows)
    strikes: _Rows = field(default_factory=_Rows)
    lognormal: _Rows = field(default_factory=_Rows)
    cds: _Rows = field(default_factory=_Rows)
    periods: _Rows = field(default_factory=_Rows)
    gates: _Rows = field(default_factory=_Rows)
    credit_names: list[str] = field(default_factory=list)
    swaption_variance: list[np.ndarray] = field(default_factory=list)

    @property
    def as_of(self) -> np.datetime64:
        return np.datetime64(self.scen.market.as_of, "D")

    def time(self, dates: np.ndarray) -> np.ndarray:
        return (np.asarray(dates, "datetime64[D]") - self.as_of).astype(_I) / 365.0

    def ccy(self, c: str) -> int:
        return self.scen.currency_index(c)

    def lnp(self, c: str, t: np.ndarray) -> np.ndarray:
        return self.scen.models[c].curve.log_discount(t)


def _fixed_leg(
    b: _Builder, slot, ccy: list[str], start, end, months, day_count: list[str], amount_per_accrual,
    gate: np.ndarray | None = None,
) -> None:  # fmt: skip
    """Fixed coupons amount_per_accrual[i]·τ paid at each period end (signed notional × rate); `gate[i]` ≥ 0 makes
    leg i the underlying of swaption gate[i] (counted only where exercised)."""
    if len(slot) == 0:
        return
    s = schedules(np.asarray(start, "datetime64[D]"), np.asarray(end, "datetime64[D]"), np.asarray(months))
    owner = s.owner()
    tau = _accruals(s.start, s.end, np.asarray(day_count)[owner])
    pay = b.time(s.end)
    amounts = np.asarray(amount_per_accrual, _F)[owner] * tau
    gates = np.asarray(gate, _I)[owner] if gate is not None else None
    _cash(b, np.asarray(slot)[owner], np.asarray(ccy)[owner], pay, amounts, gates)


def _cash(b: _Builder, slot, ccy, pay, amount, gate: np.ndarray | None = None) -> None:
    """Amounts paid at times `pay` in currencies `ccy` (those paid on or before the valuation date dropped)."""
    pay = np.asarray(pay, _F)
    ccy = np.asarray(ccy)
    live = pay > 0
    lnp = np.empty(len(pay))
    for c in np.unique(ccy):
        m = ccy == c
        lnp[m] = b.lnp(str(c), pay[m])
    b.cash.extend(
        slot=np.asarray(slot)[live],
        ccy=np.array([b.ccy(str(c)) for c in ccy], dtype=_I)[live],
        pay=pay[live],
        amount=np.asarray(amount, _F)[live],
        lnp_pay=lnp[live],
        gate=(np.full(len(pay), -1, _I) if gate is None else np.asarray(gate, _I))[live],
    )


def _accruals(start: np.ndarray, end: np.ndarray, day_count: np.ndarray) -> np.ndarray:
    out = np.empty(len(start))
    for dc in np.unique(day_count):
        m = day_count == dc
        out[m] = year_fraction(start[m], end[m], str(dc))
    return out


def _float_leg(
    b: _Builder, slot, ccy: list[str], start, end, months, day_count: list[str], notional, spread, fixing,
    gate: np.ndarray | None = None,
) -> None:  # fmt: skip
    """Floating legs (one row each) with their coupons; `fixing` is the rate of a coupon that reset on or before the
    valuation date (None: the curve's rate from today to the coupon's end, exact for a coupon resetting today)."""
    if len(slot) == 0:
        return
    s = schedules(np.asarray(start, "datetime64[D]"), np.asarray(end, "datetime64[D]"), np.asarray(months))
    owner = s.owner()
    t_end = b.time(s.end)
    live = t_end > 0
    owner = owner[live]
    p_start, p_end = s.start[live], s.end[live]
    t_start, t_end = b.time(p_start), t_end[live]
    tau = _accruals(p_start, p_end, np.asarray(day_count)[owner])
    grid = b.scen.grid
    fix_date = np.where(t_start > 0, grid.index_on_or_before(np.maximum(t_start, 0.0)), -1)
    ccy_arr = np.asarray(ccy)[owner]
    lnp_s = np.empty(len(owner))
    lnp_e = np.empty(len(owner))
    for c in np.unique(ccy_arr):
        m = ccy_arr == c
        lnp_s[m] = b.lnp(str(c), np.maximum(t_start[m], 0.0))
        lnp_e[m] = b.lnp(str(c), t_end[m])
    fixings = np.array([np.nan if f is None else f for f in fixing], _F)[owner]
    # without a known fixing: the curve's simple rate from today to the coupon's end over the accrual still to run
    remaining = tau * (t_end - np.maximum(t_start, 0.0)) / np.maximum(t_end - t_start, 1e-12)
    curve_rate = (np.exp(-lnp_e) - 1.0) / np.maximum(remaining, 1e-9)
    fixings = np.where(np.isnan(fixings), curve_rate, fixings)
    counts = np.bincount(owner, minlength=len(slot))
    offset = len(b.coupons.cols.get("start", []))
    firsts = offset + np.concatenate([[0], np.cumsum(counts)[:-1]])
    b.coupons.extend(
        start=t_start, end=t_end, tau=tau, fix_date=fix_date, fixing=fixings, lnp_start=lnp_s, lnp_end=lnp_e
    )
    keep = counts > 0
    gates = np.full(len(slot), -1, _I) if gate is None else np.asarray(gate, _I)
    b.floats.extend(
        slot=np.asarray(slot)[keep],
        ccy=np.array([b.ccy(c) for c in ccy])[keep],
        notional=np.asarray(notional, _F)[keep],
        spread=np.asarray(spread, _F)[keep],
        first=firsts[keep],
        count=counts[keep],
        gate=gates[keep],
    )


def _conv(ccy: str, attr: str, given) -> str:
    return given if given is not None else getattr(CONVENTIONS[ccy], attr)


def _irs(b: _Builder, trades: list[InterestRateSwap], slots: list[int]) -> None:
    if not trades:
        return
    ccy = [t.currency for t in trades]
    sign = np.array([-1.0 if t.pay_fixed else 1.0 for t in trades])  # sign of the fixed leg
    start = [t.start_date for t in trades]
    end = [t.maturity_date for t in trades]
    _fixed_leg(
        b, slots, ccy, start, end,
        [months_of(_conv(t.currency, "fixed_frequency", t.fixed_frequency)) for t in trades],
        [_conv(t.currency, "fixed_day_count", t.fixed_day_count) for t in trades],
        sign * np.array([t.notional * t.fixed_rate for t in trades]),
    )  # fmt: skip
    _float_leg(
        b, slots, ccy, start, end,
        [months_of(_conv(t.currency, "float_frequency", t.float_frequency)) for t in trades],
        [_conv(t.currency, "float_day_count", t.float_day_count) for t in trades],
        -sign * np.array([t.notional for t in trades]),
        [t.float_spread for t in trades],
        [t.current_fixing for t in trades],
    )  # fmt: skip


def _xccy(b: _Builder, trades: list[CrossCurrencySwap], slots: list[int]) -> None:
    for leg_name, sign in (("pay_leg", -1.0), ("receive_leg", 1.0)):
        legs: list[SwapLeg] = [getattr(t, leg_name) for t in trades]
        fixed = [i for i, leg in enumerate(legs) if leg.fixed_rate is not None]
        flt = [i for i, leg in enumerate(legs) if leg.fixed_rate is None]
        for idx, is_fixed in ((fixed, True), (flt, False)):
            if not idx:
                continue
            ls = [legs[i] for i in idx]
            ccy = [leg.currency for leg in ls]
            freq_attr, dc_attr = (
                ("fixed_frequency", "fixed_day_count") if is_fixed else ("float_frequency", "float_day_count")
            )
            months = [months_of(_conv(leg.currency, freq_attr, leg.frequency)) for leg in ls]
            dcs = [_conv(leg.currency, dc_attr, leg.day_count) for leg in ls]
            start = [trades[i].start_date for i in idx]
            end = [trades[i].maturity_date for i in idx]
            sl = [slots[i] for i in idx]
            if is_fixed:
                _fixed_leg(
                    b, sl, ccy, start, end, months, dcs, sign * np.array([leg.notional * leg.fixed_rate for leg in ls])
                )
            else:
                _float_leg(
                    b, sl, ccy, start, end, months, dcs, sign * np.array([leg.notional for leg in ls]),
                    [leg.spread for leg in ls], [leg.current_fixing for leg in ls],
                )  # fmt: skip
        exch = [i for i, t in enumerate(trades) if t.exchange_notionals]
        if exch:
            ccy = np.array([legs[i].currency for i in exch])
            n = np.array([legs[i].notional for i in exch])
            t_start = b.time(np.array([trades[i].start_date for i in exch], "datetime64[D]"))
            t_end = b.time(np.array([trades[i].maturity_date for i in exch], "datetime64[D]"))
            sl = np.array([slots[i] for i in exch])
            _cash(b, sl, ccy, t_start, -sign * n)  # initial exchange (dropped once in the past)
            _cash(b, sl, ccy, t_end, sign * n)


def _fx_forwards(b: _Builder, trades: list[FxForward], slots: list[int]) -> None:
    if not trades:
        return
    t = b.time(np.array([x.delivery_date for x in trades], "datetime64[D]"))
    _cash(b, slots, np.array([x.buy_currency for x in trades]), t, [x.buy_amount for x in trades])
    _cash(b, slots, np.array([x.sell_currency for x in trades]), t, [-x.sell_amount for x in trades])


def _critical_states(models: list[HullWhite], expiry: np.ndarray, pay: np.ndarray, coupons: np.ndarray, first, count):
    """Jamshidian's x* per swaption, vectorised Newton on Σ c_i P(T0, T_i | x) = 1 (convex, decreasing in x)."""
    owner = np.repeat(np.arange(len(expiry)), count)
    ln_a = np.empty(len(pay))
    bb = np.empty(len(pay))
    for i, m in enumerate(models):
        sl = slice(first[i], first[i] + count[i])
        ln_a[sl], bb[sl] = m.bond_coefficients(expiry[i], pay[sl])
    x = np.zeros(len(expiry))
    starts = first - first[0] if len(first) else first
    for _ in range(60):
        terms = coupons * np.exp(ln_a - bb * x[owner])
        f = np.add.reduceat(terms, starts) - 1.0
        df = -np.add.reduceat(terms * bb, starts)
        step = f / df
        x = x - np.clip(step, -0.2, 0.2)
        if np.max(np.abs(step)) < 1e-14:
            break
    strikes = np.exp(ln_a - bb * x[owner])
    return x, strikes


def _swaptions(b: _Builder, trades: list[Swaption], slots: list[int]) -> None:
    # a swaption past its expiry is not valued: an exercised one is booked as its swap
    live = [i for i, t in enumerate(trades) if t.expiry_date > b.scen.market.as_of]
    trades, slots = [trades[i] for i in live], [slots[i] for i in live]
    if not trades:
        return
    scen = b.scen
    ccy = [t.currency for t in trades]
    expiry_dates = np.array([t.expiry_date for t in trades], "datetime64[D]")
    s = schedules(
        expiry_dates,
        np.array([t.maturity_date for t in trades], "datetime64[D]"),
        np.array([months_of(_conv(t.currency, "fixed_frequency", t.fixed_frequency)) for t in trades]),
    )
    owner = s.owner()
    dcs = np.array([_conv(t.currency, "fixed_day_count", t.fixed_day_count) for t in trades])
    tau = _accruals(s.start, s.end, dcs[owner])
    pay = b.time(s.end)
    strike = np.array([t.strike for t in trades])
    coupons = strike[owner] * tau
    last = s.offset[1:] - 1
    coupons[last] += 1.0
    expiry = b.time(expiry_dates)
    models = [scen.models[c] for c in ccy]
    first = s.offset[:-1].astype(_I)
    count = np.diff(s.offset).astype(_I)
    x_star, k_strike = _critical_states(models, expiry, pay, coupons, first, count)
    times = scen.grid.times
    var_exp = np.zeros((len(trades), len(times)))
    lnp_exp = np.empty(len(trades))
    k_lnp = np.empty(len(pay))
    for c in set(ccy):
        m = np.array([x == c for x in ccy])
        model = scen.models[c]
        var_exp[m] = model.sigma.power(2).integral_exp(times[None, :], expiry[m, None], expiry[m, None], 2 * model.a)
        lnp_exp[m] = model.curve.log_discount(expiry[m])
        km = m[owner]
        k_lnp[km] = model.curve.log_discount(pay[km])
    long = np.array([1.0 if t.long else -1.0 for t in trades])
    payer = np.array([t.payer for t in trades])
    notional = np.array([t.notional for t in trades])
    live = expiry > 0
    offset = len(b.strikes.cols.get("pay", []))
    b.strikes.extend(pay=pay, coupon=coupons, strike=k_strike, lnp=k_lnp)
    b.swaptions.extend(
        slot=np.asarray(slots)[live],
        ccy=np.array([b.ccy(c) for c in ccy])[live],
        scale=(long * notional)[live],
        payer=payer[live],
        expiry=expiry[live],
        lnp_expiry=lnp_exp[live],
        first=(first + offset)[live],
        count=count[live],
    )
    b.swaption_variance.append(var_exp[live])
    # the underlying swap of physical swaptions, counted where the holder exercised
    phys = [i for i, t in enumerate(trades) if t.settlement == "physical" and expiry[i] > 0]
    if not phys:
        return
    ex_date = scen.grid.index_on_or_after(expiry[phys])
    direction = np.array([(1.0 if trades[i].payer else -1.0) * long[i] for i in phys])  # +1: the bank pays fixed
    first_gate = len(b.gates.cols.get("slot", []))
    gate = first_gate + np.arange(len(phys))
    b.gates.extend(
        slot=[slots[i] for i in phys],
        ccy=[b.ccy(ccy[i]) for i in phys],
        date=ex_date,
        x=x_star[phys],
        sign=np.where(payer[phys], 1.0, -1.0),
    )
    sub = [trades[i] for i in phys]
    sl = [slots[i] for i in phys]
    ccys = [t.currency for t in sub]
    starts = [t.expiry_date for t in sub]
    ends = [t.maturity_date for t in sub]
    _fixed_leg(
        b, sl, ccys, starts, ends,
        [months_of(_conv(t.currency, "fixed_frequency", t.fixed_frequency)) for t in sub],
        [_conv(t.currency, "fixed_day_count", t.fixed_day_count) for t in sub],
        -direction * np.array([t.notional * t.strike for t in sub]), gate,
    )  # fmt: skip
    _float_leg(
        b, sl, ccys, starts, ends,
        [months_of(_conv(t.currency, "float_frequency", t.float_frequency)) for t in sub],
        [_conv(t.currency, "float_day_count", t.float_day_count) for t in sub],
        direction * np.array([t.notional for t in sub]), [0.0] * len(sub), [None] * len(sub), gate,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Lognormal forwards and options: the model's variance of ln F(·, T)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VarianceTerm:
    """One Brownian exposure of ln F: coef·vol·dW_driver (constant) or coef·σ_c(u)·B_c(u, T)·dW_driver."""

    driver: int
    coef: float
    vol: float = 0.0
    model: HullWhite | None = None


def _pair(ti: VarianceTerm, tj: VarianceTerm, lo, hi, T) -> np.ndarray:
    if ti.model is None and tj.model is None:
        return ti.vol * tj.vol * np.maximum(hi - lo, 0.0)
    if ti.model is None or tj.model is None:
        const, rate = (ti, tj) if ti.model is None else (tj, ti)
        m = rate.model
        assert m is not None
        return const.vol * (m.sigma.integral_exp(lo, hi, T, 0.0) - m.sigma.integral_exp(lo, hi, T, m.a)) / m.a
    mi, mj = ti.model, tj.model
    assert mi is not None and mj is not None
    g: PiecewiseConstant = mi.sigma.power(2) if mi is mj else mi.sigma.times(mj.sigma)
    return (
        g.integral_exp(lo, hi, T, 0.0)
        - g.integral_exp(lo, hi, T, mi.a)
        - g.integral_exp(lo, hi, T, mj.a)
        + g.integral_exp(lo, hi, T, mi.a + mj.a)
    ) / (mi.a * mj.a)


def _variance(terms: list[VarianceTerm], corr: np.ndarray, lo, hi, T) -> np.ndarray:
    total = 0.0
    for i, ti in enumerate(terms):
        for j, tj in enumerate(terms):
            rho = corr[ti.driver, tj.driver]
            if rho != 0.0 and j >= i:
                total = total + (1 if i == j else 2) * ti.coef * tj.coef * rho * _pair(ti, tj, lo, hi, T)
    return np.maximum(np.asarray(total, _F), 0.0)


def equity_terms(scen: ScenarioSet, name: str) -> list[VarianceTerm]:
    market, drivers = scen.market, scen.market.driver_names
    spec = market.equities[name]
    return [
        VarianceTerm(drivers.index(f"EQ.{name}"), 1.0, spec.volatility),
        VarianceTerm(drivers.index(f"IR.{spec.currency}"), 1.0, model=scen.models[spec.currency]),
    ]


def fx_terms(scen: ScenarioSet, foreign: str, domestic: str) -> list[VarianceTerm]:
    market, drivers = scen.market, scen.market.driver_names
    terms = []
    if foreign != BASE_CURRENCY:
        terms.append(VarianceTerm(drivers.index(f"FX.{foreign}"), 1.0, market.fx[foreign].volatility))  # type: ignore[index]
    if domestic != BASE_CURRENCY:
        terms.append(VarianceTerm(drivers.index(f"FX.{domestic}"), -1.0, market.fx[domestic].volatility))  # type: ignore[index]
    terms.append(VarianceTerm(drivers.index(f"IR.{foreign}"), -1.0, model=scen.models[foreign]))
    terms.append(VarianceTerm(drivers.index(f"IR.{domestic}"), 1.0, model=scen.models[domestic]))
    return terms


def forward_variance(scen: ScenarioSet, terms: list[VarianceTerm], lo, hi, T) -> np.ndarray:
    """Variance of ln F(·, T) accumulated over (lo, hi) in the model (F the forward described by `terms`)."""
    return _variance(terms, scen.market.correlation_matrix(), lo, hi, T)


def _lognormal(b: _Builder, trades: list, slots: list[int]) -> None:
    if not trades:
        return
    scen = b.scen
    times = scen.grid.times
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(trades):
        key = ("EQ", t.underlying) if isinstance(t, EquityOption | EquityForward) else ("FX", t.foreign, t.domestic)
        groups.setdefault(key, []).append(i)
    corr = scen.market.correlation_matrix()
    for key, idx in groups.items():
        sub = [trades[i] for i in idx]
        if key[0] == "EQ":
            spec = scen.market.equities[key[1]]
            ccy, foreign, under = spec.currency, spec.currency, scen.equities.index(key[1])
            kind, q = 0, spec.dividend_yield
            terms = equity_terms(scen, key[1])
            mats = np.array(
                [t.expiry_date if isinstance(t, EquityOption) else t.maturity_date for t in sub], "datetime64[D]"
            )
            qty = np.array([t.quantity * (1.0 if t.long else -1.0) for t in sub])
            cp = np.array([(1 if t.call else -1) if isinstance(t, EquityOption) else 0 for t in sub])
        else:
            foreign, ccy, under, kind, q = key[1], key[2], 0, 1, 0.0
            terms = fx_terms(scen, foreign, ccy)
            mats = np.array([t.expiry_date for t in sub], "datetime64[D]")
            qty = np.array([t.notional * (1.0 if t.long else -1.0) for t in sub])
            cp = np.array([1 if t.call else -1 for t in sub])
        T = b.time(mats)
        var = np.zeros((len(sub), len(times)))
        has_vol = cp != 0
        if has_vol.any():
            var[has_vol] = _variance(terms, corr, times[None, :], T[has_vol, None], T[has_vol, None])
        live = T > 0
        b.lognormal.extend(
            slot=np.asarray([slots[i] for i in idx])[live],
            kind=np.full(len(sub), kind)[live],
            underlying=np.full(len(sub), under)[live],
            foreign=np.full(len(sub), b.ccy(foreign))[live],
            ccy=np.full(len(sub), b.ccy(ccy))[live],
            maturity=T[live],
            strike=np.array([t.strike for t in sub])[live],
            quantity=qty[live],
            call_put=cp[live],
            div_yield=np.full(len(sub), q)[live],
            lnp_maturity=b.lnp(ccy, T)[live],
            lnp_maturity_foreign=b.lnp(foreign, T)[live],
        )
        b.lognormal.cols.setdefault("_variance", []).append(var[live])


# ---------------------------------------------------------------------------------------------
# CDS
# ---------------------------------------------------------------------------------------------


def reference_names(market: Market, names: Sequence[str]) -> list[CreditName]:
    """Credit specs of CDS reference names: no wrong-way driver, vol = ratio × the name's 5Y hazard rate."""
    usd = market.currencies[BASE_CURRENCY].discount  # type: ignore[index]
    out = []
    for n in names:
        curve = market.credit_curve(n)
        h5 = float(bootstrap_hazard(curve, market.as_of, usd).hazard(5.0))
        out.append(CreditName(n, curve, market.credit_model.reference_volatility_ratio * h5))
    return out


def _cds(b: _Builder, trades: list[CreditDefaultSwap], slots: list[int]) -> None:
    if not trades:
        return
    s = schedules(
        np.array([t.start_date for t in trades], "datetime64[D]"),
        np.array([t.maturity_date for t in trades], "datetime64[D]"),
        np.full(len(trades), 3),
    )
    owner = s.owner()
    q_start, q_end = b.time(s.start), b.time(s.end)
    acc = year_fraction(s.start, s.end, "ACT/360")
    live_p = q_end > 0
    counts = np.bincount(owner[live_p], minlength=len(trades))
    offset = len(b.periods.cols.get("start", []))
    firsts = offset + np.concatenate([[0], np.cumsum(counts)[:-1]])
    b.periods.extend(start=q_start[live_p], end=q_end[live_p], accrual=acc[live_p])
    for t in trades:
        if t.reference not in b.credit_names:
            b.credit_names.append(t.reference)
    live = counts > 0
    market = b.scen.market
    b.cds.extend(
        slot=np.asarray(slots)[live],
        ccy=np.array([b.ccy(t.currency) for t in trades])[live],
        name=np.array([b.credit_names.index(t.reference) for t in trades])[live],
        scale=np.array([t.notional * (1.0 if t.protection_buyer else -1.0) for t in trades])[live],
        spread=np.array([t.spread for t in trades])[live],
        recovery=np.array([market.credit_curve(t.reference).recovery for t in trades])[live],
        first=firsts[live],
        count=counts[live],
    )


# ---------------------------------------------------------------------------------------------
# Compile and value
# ---------------------------------------------------------------------------------------------

_HANDLERS = (
    (InterestRateSwap, _irs),
    (CrossCurrencySwap, _xccy),
    (FxForward, _fx_forwards),
    (Swaption, _swaptions),
    ((FxOption, EquityOption, EquityForward), _lognormal),
    (CreditDefaultSwap, _cds),
)


def compile_trades(
    trades: Sequence, slots: Sequence[int] | np.ndarray, scenarios: ScenarioSet, n_slots: int | None = None
) -> ProductTables:
    """The product tables of `trades`, trade i adding into output slot `slots[i]` (of `n_slots`, by default one more
    than the largest). Flows paid on or before the valuation date are not in the tables."""
    slots = np.asarray(slots, dtype=_I)
    if len(slots) != len(trades):
        raise ValueError(f"slots: one per trade ({len(trades)}), got {len(slots)}")
    b = _Builder(scenarios)
    for kinds, handler in _HANDLERS:
        idx = [i for i, t in enumerate(trades) if isinstance(t, kinds)]
        handler(b, [trades[i] for i in idx], [int(slots[i]) for i in idx])
    n_dates = len(scenarios.grid.times)

    def table(rows: _Rows, spec: dict[str, type]) -> dict[str, np.ndarray]:
        return {k: rows.array(k, dt) for k, dt in spec.items()}

    cash = table(b.cash, {"slot": _I, "ccy": _I, "pay": _F, "amount": _F, "lnp_pay": _F, "gate": _I})
    floats = table(
        b.floats, {"slot": _I, "ccy": _I, "notional": _F, "spread": _F, "first": _I, "count": _I, "gate": _I}
    )
    coupons = table(
        b.coupons,
        {"start": _F, "end": _F, "tau": _F, "fix_date": _I, "fixing": _F, "lnp_start": _F, "lnp_end": _F},
    )
    swaptions = table(
        b.swaptions,
        {
            "slot": _I,
            "ccy": _I,
            "scale": _F,
            "payer": np.bool_,
            "expiry": _F,
            "lnp_expiry": _F,
            "first": _I,
            "count": _I,
        },
    )
    parts = b.swaption_variance
    swaptions["var_expiry"] = np.concatenate(parts) if parts else np.zeros((0, n_dates))
    gates = table(b.gates, {"slot": _I, "ccy": _I, "date": _I, "x": _F, "sign": _F})
    strikes = table(b.strikes, {"pay": _F, "coupon": _F, "strike": _F, "lnp": _F})
    lognormal = table(
        b.lognormal,
        {
            "slot": _I, "kind": _I, "underlying": _I, "foreign": _I, "ccy": _I, "maturity": _F, "strike": _F,
            "quantity": _F, "call_put": _I, "div_yield": _F, "lnp_maturity": _F, "lnp_maturity_foreign": _F,
        },
    )  # fmt: skip
    parts = b.lognormal.cols.get("_variance", [])
    lognormal["variance"] = np.concatenate(parts) if parts else np.zeros((0, n_dates))
    cds = table(
        b.cds,
        {"slot": _I, "ccy": _I, "name": _I, "scale": _F, "spread": _F, "recovery": _F, "first": _I, "count": _I},
    )
    periods = table(b.periods, {"start": _F, "end": _F, "accrual": _F})
    if n_slots is None:
        n_slots = int(slots.max()) + 1 if len(slots) else 0
    return ProductTables(
        n_slots, cash, floats, coupons, swaptions, strikes, gates, lognormal, cds, periods, tuple(b.credit_names)
    )


@dataclass(frozen=True, eq=False)
class _MarketArrays:
    times: np.ndarray
    lnp0: np.ndarray
    yv: np.ndarray
    a: np.ndarray
    usd: int
    curve_t: np.ndarray
    curve_lnp: np.ndarray
    curve_n: np.ndarray
    x_mid: np.ndarray
    x_half: np.ndarray


def _domain(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-width of each [variable, date] row's range over the paths (a little widened)."""
    lo, hi = state.min(axis=2), state.max(axis=2)
    half = 0.5 * (hi - lo) * (1 + 1e-9) + 1e-12
    return 0.5 * (lo + hi), half


def _market_arrays(scen: ScenarioSet) -> _MarketArrays:
    cached = scen.__dict__.get("_pricing_arrays")
    if cached is not None:
        return cached
    t = scen.grid.times
    models = [scen.models[c] for c in scen.currencies]
    nodes = [np.concatenate([[0.0], np.asarray(m.curve.tenors)]) for m in models]
    width = max(len(n) for n in nodes)
    curve_t = np.zeros((len(models), width))
    curve_lnp = np.zeros((len(models), width))
    for i, (m, n) in enumerate(zip(models, nodes, strict=True)):
        curve_t[i, : len(n)] = n
        curve_t[i, len(n) :] = n[-1] + np.arange(1, width - len(n) + 1)
        curve_lnp[i, : len(n)] = m.curve.log_discount(n)
        curve_lnp[i, len(n) :] = m.curve.log_discount(curve_t[i, len(n) :])
    x_mid, x_half = _domain(scen.x)
    arrays = _MarketArrays(
        times=t,
        lnp0=np.stack([m.curve.log_discount(t) for m in models]),
        yv=np.stack([m.y(t) for m in models]),
        a=np.array([m.a for m in models]),
        usd=scen.currency_index(BASE_CURRENCY),
        curve_t=curve_t,
        curve_lnp=curve_lnp,
        curve_n=np.array([len(n) for n in nodes], dtype=_I),
        x_mid=x_mid,
        x_half=x_half,
    )
    scen.__dict__["_pricing_arrays"] = arrays  # computed once per scenario set (a frozen dataclass)
    return arrays


CHEBYSHEV_NODES = 48
CHEBYSHEV_TOLERANCE = 1e-13
SWAPTION_SMOOTHNESS = 0.15
"""A swaption is interpolated in x while the sd of x at expiry is at least this fraction of the paths' half-range
(closer to expiry its price nears the kinked payoff and is valued path by path; measured with 48 nodes: error
5e-14 of notional at 0.15, 6e-11 at 0.12)."""
_U = np.cos(np.pi * (np.arange(CHEBYSHEV_NODES) + 0.5) / CHEBYSHEV_NODES)
_TO_COEF = (2.0 / CHEBYSHEV_NODES) * np.cos(
    np.pi * np.outer(np.arange(CHEBYSHEV_NODES) + 0.5, np.arange(CHEBYSHEV_NODES)) / CHEBYSHEV_NODES
)
_TO_COEF[:, 0] *= 0.5


def _date_order(n_dates: int) -> np.ndarray:
    """Dates interleaved across threads (static scheduling then gives each thread early and late dates alike)."""
    n = max(1, numba.get_num_threads())
    return np.concatenate([np.arange(k, n_dates, n) for k in range(n)]).astype(_I)


def _gate_columns(gate_ids: np.ndarray, gates: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Per-row (exercise date, currency, critical state, sign) from gate ids (−1: not gated)."""
    has = gate_ids >= 0
    if not has.any():
        n = len(gate_ids)
        return np.full(n, -1, _I), np.zeros(n, _I), np.zeros(n), np.zeros(n)
    g = np.where(has, gate_ids, 0)
    return (
        np.where(has, gates["date"][g], -1).astype(_I),
        np.where(has, gates["ccy"][g], 0).astype(_I),
        np.where(has, gates["x"][g], 0.0),
        np.where(has, gates["sign"][g], 0.0),
    )


def _hazard_nodes(curves: Sequence[HazardCurve]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = max(len(c.times) for c in curves) + 1
    haz_t = np.zeros((len(curves), width))
    haz_c = np.zeros((len(curves), width))
    for i, hz in enumerate(curves):
        nodes = np.concatenate([[0.0], hz.times])
        haz_t[i, : len(nodes)] = nodes
        haz_c[i, : len(nodes)] = hz.cumulative(nodes)
        haz_t[i, len(nodes) :] = nodes[-1] + np.arange(1, width - len(nodes) + 1)
        haz_c[i, len(nodes) :] = hz.cumulative(haz_t[i, len(nodes) :])
    return haz_t, haz_c, np.array([len(c.times) + 1 for c in curves], dtype=_I)


def value_on_paths(
    tables: ProductTables,
    scenarios: ScenarioSet,
    mask: np.ndarray | None = None,
    credit: CreditPaths | None = None,
    out: np.ndarray | None = None,
    method: str = "chebyshev",
) -> np.ndarray:
    """USD values [slot, date, path] of the compiled trades on every path and simulation date (zero where the
    slot's `mask[slot, date]` is 0), added into `out` if given.

    method "chebyshev" (default) aggregates everything that depends on the path only through one state at t
    per slot (see `kernels`); "direct" values every row on every path — slower, the reference for the first.
    CDS need the reference names' credit paths on all simulation dates: given as `credit` (any names including
    `tables.credit_names`, e.g. all of a run's reference names simulated once) or simulated here.
    """
    if method not in ("chebyshev", "direct"):
        raise ValueError(f"method: 'chebyshev' or 'direct', got {method!r}")
    m = _market_arrays(scenarios)
    n_dates = len(m.times)
    if out is None:
        out = np.zeros((tables.slots, n_dates, scenarios.paths))
    if mask is None:
        mask = np.ones((tables.slots, n_dates), dtype=np.uint8)
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    d = tables.cds
    xl = np.zeros((1, 1, 1))
    hazard = (np.zeros((1, 2)), np.zeros((1, 2)), np.ones(1, _I))
    if len(d["slot"]):
        if credit is None:
            credit = credit_paths(scenarios, reference_names(scenarios.market, tables.credit_names), dates="all")
        missing = [n for n in tables.credit_names if n not in credit.names]
        if missing or len(credit.date_index) != n_dates:
            raise ValueError(f"credit: give the paths of the CDS reference names {missing} on all simulation dates")
        rows = [credit.names.index(n) for n in tables.credit_names]
        xl = np.ascontiguousarray(credit.intensity[rows] - credit.hazard[rows][:, :, None])
        hazard = _hazard_nodes([credit.curves[r] for r in rows])
        name_vol, kappa = credit.volatility[rows], credit.kappa
    else:
        name_vol, kappa = np.zeros(1), 1.0
    if method == "direct":
        _value_direct(tables, scenarios, m, mask, out, xl, hazard, name_vol, kappa)
    else:
        _value_chebyshev(tables, scenarios, m, mask, out, xl, hazard, name_vol, kappa)
    o = tables.lognormal
    if len(o["slot"]):
        kernels.value_lognormal(
            out, mask, m.times, scenarios.x, scenarios.fx, scenarios.equity, m.lnp0, m.yv, m.a, m.usd,
            o["slot"], o["kind"], o["underlying"], o["foreign"], o["ccy"], o["maturity"], o["strike"],
            o["quantity"], o["call_put"], o["div_yield"], o["lnp_maturity"], o["lnp_maturity_foreign"], o["variance"],
        )  # fmt: skip
    return out


def _swap_kernels() -> tuple[Callable[..., None], Callable[..., None]]:
    """`kernels.value_cashflows` and `kernels.value_float_legs`, or their CUDA versions (same arguments, same
    values added into `out`) when `cuda_kernels.selected_device()` is cuda: a GPU is present and RISKLAB_XVA_DEVICE
    is not cpu."""
    from engines.xva import cuda_kernels

    if cuda_kernels.use_cuda():
        return cuda_kernels.value_cashflows_cuda, cuda_kernels.value_float_legs_cuda
    return kernels.value_cashflows, kernels.value_float_legs


def _value_direct(tables, scen, m, mask, out, xl, hazard, name_vol, kappa) -> None:
    common = (out, mask, m.times, scen.x, scen.fx, m.lnp0, m.yv, m.a, m.usd)
    value_cashflows, value_float_legs = _swap_kernels()
    c = tables.cashflows
    if len(c["slot"]):
        value_cashflows(*common, c["slot"], c["ccy"], c["pay"], c["amount"], c["lnp_pay"],
                        *_gate_columns(c["gate"], tables.gates))  # fmt: skip
    f, q = tables.floats, tables.coupons
    if len(f["slot"]):
        value_float_legs(
            *common, f["slot"], f["ccy"], f["notional"], f["spread"], f["first"], f["count"],
            *_gate_columns(f["gate"], tables.gates),
            q["start"], q["end"], q["tau"], q["fix_date"], q["fixing"], q["lnp_start"], q["lnp_end"],
        )  # fmt: skip
    s, k = tables.swaptions, tables.strikes
    if len(s["slot"]):
        kernels.value_swaptions(
            *common, s["slot"], s["ccy"], s["scale"], s["payer"], s["expiry"], s["lnp_expiry"], s["first"],
            s["count"], s["var_expiry"], np.zeros(len(s["slot"]), _I), k["pay"], k["coupon"], k["strike"], k["lnp"],
        )  # fmt: skip
    d, p = tables.cds, tables.periods
    if len(d["slot"]):
        kernels.value_cds(
            out, mask, m.times, scen.fx, m.lnp0, m.usd, m.curve_t, m.curve_lnp, m.curve_n,
            d["slot"], d["ccy"], d["name"], d["scale"], d["spread"], d["recovery"], d["first"], d["count"],
            p["start"], p["end"], p["accrual"], xl, *hazard, name_vol, kappa,
        )  # fmt: skip


def _value_chebyshev(tables, scen, m, mask, out, xl, hazard, name_vol, kappa) -> None:
    n_ccy = len(scen.currencies)
    n_slots = tables.slots
    gates = tables.gates
    n_gates = len(gates["slot"])
    n_names = max(1, len(tables.credit_names))
    c, f, s, d = tables.cashflows, tables.floats, tables.swaptions, tables.cds

    # series keys: (slot, currency) for ungated rates rows, then one per gate, then (slot, CDS name)
    def rates_key(slot, ccy, gate):
        return np.where(gate >= 0, n_slots * n_ccy + gate, slot * n_ccy + ccy)

    keys_c = rates_key(c["slot"], c["ccy"], c["gate"])
    keys_f = rates_key(f["slot"], f["ccy"], f["gate"])
    keys_s = s["slot"] * n_ccy + s["ccy"]
    keys_d = n_slots * n_ccy + n_gates + d["slot"] * n_names + d["name"]
    all_keys = np.concatenate([keys_c, keys_f, keys_s, keys_d])
    if not len(all_keys):
        return
    uniq, inverse = np.unique(all_keys, return_inverse=True)
    inverse = inverse.astype(_I)
    n_c, n_f, n_s = len(keys_c), len(keys_f), len(keys_s)
    ser_c, ser_f = inverse[:n_c], inverse[n_c : n_c + n_f]
    ser_s, ser_d = inverse[n_c + n_f : n_c + n_f + n_s], inverse[n_c + n_f + n_s :]
    n_ser = len(uniq)
    ser_slot = np.empty(n_ser, _I)
    ser_state = np.zeros(n_ser, _I)
    ser_var = np.empty(n_ser, _I)
    ser_fx = np.empty(n_ser, _I)
    ser_gate = np.full(n_ser, -1, _I)
    plain = uniq < n_slots * n_ccy
    ser_slot[plain], ser_var[plain] = np.divmod(uniq[plain], n_ccy)
    ser_fx[plain] = ser_var[plain]
    gated = (uniq >= n_slots * n_ccy) & (uniq < n_slots * n_ccy + n_gates)
    gi = uniq[gated] - n_slots * n_ccy
    ser_slot[gated], ser_var[gated], ser_fx[gated], ser_gate[gated] = (
        gates["slot"][gi],
        gates["ccy"][gi],
        gates["ccy"][gi],
        gi,
    )
    cds = uniq >= n_slots * n_ccy + n_gates
    ser_slot[cds], ser_var[cds] = np.divmod(uniq[cds] - n_slots * n_ccy - n_gates, n_names)
    ser_state[cds] = 1
    # a CDS series converts at its trades' currency (one currency per name and slot is assumed: checked)
    for i in np.flatnonzero(cds):
        ccys = np.unique(d["ccy"][ser_d == i])
        if len(ccys) != 1:
            raise ValueError("cds: CDS on one name in one netting set must share a currency")
        ser_fx[i] = ccys[0]
    g_date, g_ccy, g_x, g_sign = _gate_columns(ser_gate, gates)
    acc = np.zeros((n_ser, len(m.times), CHEBYSHEV_NODES))
    active = np.zeros((n_ser, len(m.times)), dtype=np.uint8)
    order = _date_order(len(m.times))
    nodes = (acc, active, order, _U, m.x_mid, m.x_half, mask, ser_slot, m.times, m.lnp0, m.yv, m.a)
    row_from_c = _gate_columns(c["gate"], gates)[0].clip(min=0)
    if n_c:
        kernels.nodes_cashflows(*nodes, ser_c, c["ccy"], c["pay"], c["amount"], c["lnp_pay"], row_from_c)
    q = tables.coupons
    f_gate = _gate_columns(f["gate"], gates)
    if n_f:
        kernels.nodes_float_legs(
            *nodes, ser_f, f["ccy"], f["notional"], f["spread"], f["first"], f["count"], f_gate[0].clip(min=0),
            q["start"], q["end"], q["tau"], q["fix_date"], q["fixing"], q["lnp_start"], q["lnp_end"],
        )  # fmt: skip
    k = tables.strikes
    if n_s:
        # near expiry (the spread of x at expiry small against the paths' range) the price nears its kinked payoff:
        # from then on it is valued path by path
        ratio = np.sqrt(np.maximum(s["var_expiry"], 0.0)) / m.x_half[s["ccy"]]
        until = np.argmax(ratio < SWAPTION_SMOOTHNESS, axis=1).astype(_I)
        until[~(ratio < SWAPTION_SMOOTHNESS).any(axis=1)] = len(m.times)
        kernels.nodes_swaptions(
            *nodes, ser_s, s["ccy"], s["scale"], s["payer"], s["expiry"], s["lnp_expiry"], s["first"], s["count"],
            s["var_expiry"], until, k["pay"], k["coupon"], k["strike"], k["lnp"],
        )  # fmt: skip
        kernels.value_swaptions(
            out, mask, m.times, scen.x, scen.fx, m.lnp0, m.yv, m.a, m.usd,
            s["slot"], s["ccy"], s["scale"], s["payer"], s["expiry"], s["lnp_expiry"], s["first"],
            s["count"], s["var_expiry"], until, k["pay"], k["coupon"], k["strike"], k["lnp"],
        )  # fmt: skip
    l_mid, l_half = np.zeros((1, 1)), np.ones((1, 1))
    if len(d["slot"]):
        l_mid, l_half = _domain(xl)
        p = tables.periods
        kernels.nodes_cds(
            acc, active, order, _U, l_mid, l_half, mask, ser_slot, m.times, m.lnp0, m.curve_t, m.curve_lnp,
            m.curve_n, ser_d, d["ccy"], d["name"], d["scale"], d["spread"], d["recovery"], d["first"], d["count"],
            p["start"], p["end"], p["accrual"], *hazard, name_vol, kappa,
        )  # fmt: skip
    coef = acc @ _TO_COEF
    # keep the coefficients down to 1e-13 of the largest (the truncation error is below that, summed)
    big = np.abs(coef)
    keep = big > CHEBYSHEV_TOLERANCE * big.max(axis=2, keepdims=True)
    degree = np.where(keep.any(axis=2), CHEBYSHEV_NODES - np.argmax(keep[:, :, ::-1], axis=2), 0).astype(_I)
    degree[active == 0] = 0
    kernels.value_series(
        out, mask, coef, degree, ser_slot, ser_state, ser_var, ser_fx, m.usd, g_date, g_ccy, g_x, g_sign,
        m.x_mid, m.x_half, l_mid, l_half, scen.x, xl, scen.fx,
    )  # fmt: skip
    if n_f:
        kernels.value_path_fixings(
            out, mask, m.times, scen.x, scen.fx, m.lnp0, m.yv, m.a, m.usd,
            f["slot"], f["ccy"], f["notional"], f["first"], f["count"], f_gate[0].clip(min=0), f_gate[1],
            f_gate[0], f_gate[2], f_gate[3], q["start"], q["end"], q["fix_date"], q["lnp_start"], q["lnp_end"],
        )  # fmt: skip


def trade_values(
    trades: Sequence, scenarios: ScenarioSet, mask: np.ndarray | None = None, method: str = "chebyshev"
) -> np.ndarray:
    """USD values [trade, date, path] of each trade on its own (for tests and what-if on a single trade)."""
    tables = compile_trades(trades, np.arange(len(trades)), scenarios, len(trades))
    return value_on_paths(tables, scenarios, mask, method=method)


__all__ = [
    "ProductTables",
    "compile_trades",
    "equity_terms",
    "forward_variance",
    "fx_terms",
    "reference_names",
    "trade_values",
    "value_on_paths",
]
