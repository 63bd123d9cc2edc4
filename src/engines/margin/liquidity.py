"""The 30-day cash-flow and margin ladder by currency and venue, with the operational buffer: day by day,
what margin the venues call, what the book pays or receives otherwise, and whether cash and the credit
facility cover it.

Two views over business days 1..D (D = 30), each built the same way:

- **Variation margin.** A venue calls what the fund loses there and pays back what it gains, day by day,
  so over d days its net flow is that of its d-day loss ``L_v(d)`` (its netted delta-gamma P&L on the
  one-day scenarios scaled by √d: what a CCP called yesterday it returns today if prices revert) — under a CSA with a
  threshold, the fall of the credit support ``c(x) = sign(x) (|x| − T)⁺`` from the netting set's value
  today x to ``x − L`` (losses inside the threshold's band are not called; minimum transfer amounts and
  rounding, which move single calls by less than a million, are left out) — the cumulative outflow is
  ``f(L) = L⁺ − κ · L⁻``, where κ (`vm_inflow_credit`, default 0) is the share of the margin received
  from venues where the fund gains that may be counted against calls elsewhere: 0 is the treasury's
  conservative convention (receipts arrive late or are netted against other obligations), 1 counts
  every receipt.
  The **expected** view takes the mean of ``f(L_v(d))`` over the scenarios; the **stressed** view the
  expected shortfall at `confidence` (99%) of the book's total ``Σ_v f(L_v(d))`` and, per venue, that
  venue's mean over the same tail scenarios (so the venues add up to the total, and a venue's figure is
  its outflow in the scenarios that hurt the book most). Daily flows are the differences of the
  cumulative ones.
- **Initial margin.** The expected view keeps today's IM. The stressed view has realised volatility
  multiplied by M (`vol_multiplier`, 2) from day 1, and each venue's IM moves towards `stressed_im_usd`
  (its IM at M times today's volatility) as its model's EWMA filter (decay λ_v) learns the new level:
  the filter's volatility on day h is ``m_v(h) = √(λ_v^h + (1 − λ_v^h) M²)`` times today's, so the venue
  has gone ``(m_v(h) − 1) / (M − 1)`` of the way (with λ = 0.97 and M = 2: 4% on day 1, 34% on day 10,
  69% on day 30). Venues whose margin does not follow realised volatility (SIMM, recalibrated twice a
  year) are given a `stressed_im_usd` equal to today's. Both views add `scheduled_im_change_usd`
  ``[D, V]`` (announced CCP model changes with their phase-in, expiries: positive = more to post).
- **Known cash flows.** `known_flows_usd` ``[D, C]`` by currency (positive = received): settlements,
  expiries, coupons, fees. The margin arrays (`arrays.MarginBook`) carry no dates; `book_ladder` reads
  them from the dated book (`book.Book`): each position expiring or maturing within the ladder releases
  its share of its venue's IM (its Euler allocation: a hedge's expiry raises the venue's IM) on its
  business day, and a deliverable FX forward settling then exchanges its two legs (bought currency in,
  sold currency out, at today's FX rates) while the variation margin held against it goes back (its value
  out, in the CSA's currency) — the net is zero in USD but moves cash between currencies. Other
  collateralised derivatives settle against the variation margin already exchanged: no net flow.
- **Resources.** Usable cash is cash minus the operational buffer (`LiquidityResources`); the facility
  adds cash from day ``notice_days + 1`` (notice rounded up to whole days: a drawing requested on day 1
  arrives after its notice) at most `max_draw_per_day_usd` a day up to its limit, drawn as early as
  allowed. The **buffer is breached** on the first day the cumulative net outflow exceeds usable cash
  plus what the facility has delivered by then: from that day paying the calls eats into the cash kept
  for operations. `facility_needed_day` is the first day usable cash alone is not enough.

Each venue pays and is paid in its own currency (a CCP's settlement currency, a CSA's currency); the
ladder by currency compares each currency's cumulative outflow with the cash held in it, and
`currency_short_day` names the first day a currency runs short (covered by FX conversion if the total
holds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from engines.margin.arrays import MarginBook
from engines.margin.portfolio import tail_weights, venue_pnl_parts
from engines.margin.venues import LiquidityResources

LADDER_DAYS = 30


def facility_available(resources: LiquidityResources, days: int | np.ndarray) -> np.ndarray:
    """Cash the facility has delivered by the end of each business day ``1..days`` (or of the given days).

    A drawing requested on day 1 arrives after the notice, rounded up to whole days; one drawing a day
    of at most `max_draw_per_day_usd`, until the limit.
    """
    facility = resources.facility
    d = np.arange(1, days + 1) if np.isscalar(days) else np.asarray(days, dtype=np.float64)
    notice_days = math.ceil(facility.notice_hours / 24)
    delivered = facility.max_draw_per_day_usd * np.maximum(d - notice_days, 0)
    return np.minimum(delivered, facility.limit_usd).astype(np.float64)


@dataclass(frozen=True)
class LadderView:
    """One view (expected or stressed) of the ladder; arrays are per business day (rows ``d = 1..D``)."""

    name: str
    vm_usd: np.ndarray  # [D, V] variation margin paid (+) that day, by venue
    im_change_usd: np.ndarray  # [D, V] initial margin posted (+) or released (−) that day, by venue
    known_flows_usd: np.ndarray  # [D, C] other cash flows received (+) that day, by currency
    outflow_by_currency_usd: np.ndarray  # [D, C] net outflow that day by currency
    net_outflow_usd: np.ndarray  # [D]
    cumulative_outflow_usd: np.ndarray  # [D]
    available_usd: np.ndarray  # [D] usable cash + facility delivered by that day
    cash_by_currency_usd: np.ndarray  # [C]
    first_breach_day: int | None
    facility_needed_day: int | None
    currency_short_day: dict[str, int]

    @property
    def headroom_usd(self) -> np.ndarray:
        return self.available_usd - self.cumulative_outflow_usd

    def venue_outflow_usd(self) -> np.ndarray:
        """[V] total margin outflow over the ladder by venue (VM + IM change)."""
        return self.vm_usd.sum(axis=0) + self.im_change_usd.sum(axis=0)


@dataclass(frozen=True)
class LiquidityLadder:
    """The ladder's two views, with the names of its venues and currencies and the resources it spends."""

    days: int
    confidence: float
    vm_inflow_credit: float
    venues: tuple[str, ...]
    venue_currency: tuple[str, ...]
    currencies: tuple[str, ...]
    resources: LiquidityResources
    expected: LadderView
    stressed: LadderView

    def to_dict(self, top_venues: int | None = 20) -> dict[str, Any]:
        """JSON form: totals and currencies day by day for both views, and the venues with the largest stressed
        outflow (all venues with `top_venues=None`), each with its daily stressed and expected outflow."""
        facility = self.resources.facility
        out: dict[str, Any] = {
            "days": self.days,
            "confidence": self.confidence,
            "vm_inflow_credit": self.vm_inflow_credit,
            "currencies": list(self.currencies),
            "resources": {
                "cash_usd": self.resources.cash_usd,
                "operational_buffer_usd": self.resources.operational_buffer_usd,
                "usable_cash_usd": self.resources.usable_cash_usd,
                "facility_limit_usd": facility.limit_usd,
                "facility_notice_days": math.ceil(facility.notice_hours / 24),
                "facility_max_draw_per_day_usd": facility.max_draw_per_day_usd,
            },
        }
        for view in (self.expected, self.stressed):
            out[view.name] = {
                "first_breach_day": view.first_breach_day,
                "facility_needed_day": view.facility_needed_day,
                "currency_short_day": view.currency_short_day,
                "ladder": [
                    {
                        "day": d + 1,
                        "vm_usd": float(view.vm_usd[d].sum()),
                        "im_change_usd": float(view.im_change_usd[d].sum()),
                        "known_flows_usd": float(view.known_flows_usd[d].sum()),
                        "net_outflow_usd": float(view.net_outflow_usd[d]),
                        "cumulative_outflow_usd": float(view.cumulative_outflow_usd[d]),
                        "available_usd": float(view.available_usd[d]),
                        "headroom_usd": float(view.headroom_usd[d]),
                        "by_currency_usd": dict(
                            zip(self.currencies, view.outflow_by_currency_usd[d].tolist(), strict=True)
                        ),
                    }
                    for d in range(self.days)
                ],
            }
        stressed = self.stressed.venue_outflow_usd()
        order = np.argsort(-stressed, kind="stable")[:top_venues]
        out["venues"] = [
            {
                "venue": self.venues[v],
                "currency": self.venue_currency[v],
                "stressed_outflow_usd": float(stressed[v]),
                "expected_outflow_usd": float(self.expected.venue_outflow_usd()[v]),
                "stressed_daily_usd": (self.stressed.vm_usd[:, v] + self.stressed.im_change_usd[:, v]).tolist(),
                "expected_daily_usd": (self.expected.vm_usd[:, v] + self.expected.im_change_usd[:, v]).tolist(),
            }
            for v in order
        ]
        return out


def im_path_fraction(days: int, vol_multiplier: float, ewma_decay: np.ndarray) -> np.ndarray:
    """``[D, V]`` how far each venue's IM has gone from today's to its stressed level on days 1..D: realised
    volatility M times today's from day 1, learnt by an EWMA filter of decay λ_v (module docstring)."""
    if vol_multiplier == 1.0:
        return np.zeros((days, len(ewma_decay)))
    h = np.arange(1, days + 1)[:, None]
    weight = np.asarray(ewma_decay)[None, :] ** h
    m = np.sqrt(weight + (1.0 - weight) * vol_multiplier**2)
    return (m - 1.0) / (vol_multiplier - 1.0)


def credit_support(value: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Collateral the fund should hold against a netting set worth `value`: ``sign · (|value| − threshold)⁺``
    (a zero threshold: the value itself, as at a CCP)."""
    return np.sign(value) * np.maximum(np.abs(value) - threshold, 0.0)


def _days_array(value: np.ndarray | None, days: int, width: int, field: str) -> np.ndarray:
    if value is None:
        return np.zeros((days, width))
    a = np.asarray(value, dtype=np.float64)
    if a.shape != (days, width):
        raise ValueError(f"{field}: expected shape ({days}, {width}), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{field}: values must be finite")
    return a


def liquidity_ladder(
    book: MarginBook,
    scenarios: np.ndarray,
    venue_im_usd: np.ndarray,
    venue_currency: Sequence[str],
    resources: LiquidityResources,
    *,
    days: int = LADDER_DAYS,
    confidence: float = 0.99,
    stressed_im_usd: np.ndarray | None = None,
    vol_multiplier: float = 2.0,
    ewma_decay: np.ndarray | float = 0.97,
    scheduled_im_change_usd: np.ndarray | None = None,
    known_flows_usd: np.ndarray | None = None,
    currencies: Sequence[str] | None = None,
    vm_threshold_usd: np.ndarray | None = None,
    vm_inflow_credit: float = 0.0,
) -> LiquidityLadder:
    """The expected and stressed margin and cash-flow ladder (see the module docstring).

    `scenarios` ``[N, F]`` are one-day factor returns (FHS scenarios at today's volatility, or history);
    `venue_im_usd` ``[V]`` today's IM; `venue_currency` each venue's currency; `known_flows_usd` is by
    `currencies` (default: the currencies of the venues and of the cash, sorted).
    """
    n_v = len(book.venues)
    if days < 1:
        raise ValueError(f"days: at least 1, got {days}")
    if not (vol_multiplier > 0 and math.isfinite(vol_multiplier)):
        raise ValueError(f"vol_multiplier: must be positive and finite, got {vol_multiplier}")
    decay = np.broadcast_to(np.asarray(ewma_decay, dtype=np.float64), (n_v,))
    if np.any((decay <= 0) | (decay >= 1)):
        raise ValueError("ewma_decay: must lie in (0, 1) for every venue")
    if not 0.0 <= vm_inflow_credit <= 1.0:
        raise ValueError(f"vm_inflow_credit: a fraction in [0, 1], got {vm_inflow_credit}")
    if len(venue_currency) != n_v:
        raise ValueError(f"venue_currency: one currency per venue ({n_v}), got {len(venue_currency)}")
    im_now = np.asarray(venue_im_usd, dtype=np.float64)
    if im_now.shape != (n_v,):
        raise ValueError(f"venue_im_usd: expected shape ({n_v},), got {im_now.shape}")
    im_stress = im_now if stressed_im_usd is None else np.asarray(stressed_im_usd, dtype=np.float64)
    if im_stress.shape != (n_v,):
        raise ValueError(f"stressed_im_usd: expected shape ({n_v},), got {im_stress.shape}")
    ccys = tuple(currencies) if currencies is not None else tuple(sorted(set(venue_currency) | set(resources.cash_usd)))
    missing = sorted(set(venue_currency) - set(ccys))
    if missing:
        raise ValueError(f"currencies: venues pay in {', '.join(missing)}, which the list leaves out")
    unknown_cash = sorted(set(resources.cash_usd) - set(ccys))
    if unknown_cash:
        raise ValueError(f"resources.cash_usd: currencies {', '.join(unknown_cash)} are not in the ladder's currencies")
    threshold = np.zeros(n_v) if vm_threshold_usd is None else np.asarray(vm_threshold_usd, dtype=np.float64)
    if threshold.shape != (n_v,) or np.any(threshold < 0) or not np.all(np.isfinite(threshold)):
        raise ValueError(f"vm_threshold_usd: one non-negative threshold per venue ({n_v})")
    value = np.bincount(book.position_venue, weights=book.position_value_usd, minlength=n_v)
    scheduled = _days_array(scheduled_im_change_usd, days, n_v, "scheduled_im_change_usd")
    known = _days_array(known_flows_usd, days, len(ccys), "known_flows_usd")
    venue_ccy = np.array([ccys.index(c) for c in venue_currency], dtype=np.int64)
    cash = np.array([resources.cash_usd.get(c, 0.0) for c in ccys])

    # cumulative VM outflow by venue at each horizon, mean and in the book's stressed tail
    lin, quad = venue_pnl_parts(book, scenarios)
    expected_cum = np.zeros((days, n_v))
    stressed_cum = np.zeros((days, n_v))
    for d in range(1, days + 1):
        pnl = math.sqrt(d) * lin + d * quad
        paid = credit_support(value, threshold) - credit_support(value + pnl, threshold)
        flow = np.where(paid > 0, paid, vm_inflow_credit * paid)
        expected_cum[d - 1] = flow.mean(axis=0)
        w = tail_weights(flow.sum(axis=1), confidence)
        stressed_cum[d - 1] = w @ flow
    im_path = im_now + im_path_fraction(days, vol_multiplier, decay) * (im_stress - im_now)
    stressed_im_change = np.diff(np.vstack([im_now, im_path]), axis=0)

    def view(name: str, cum_vm: np.ndarray, im_change: np.ndarray) -> LadderView:
        vm = np.diff(np.vstack([np.zeros(n_v), cum_vm]), axis=0)
        margin = vm + im_change
        by_ccy = np.zeros((days, len(ccys)))
        np.add.at(by_ccy, (slice(None), venue_ccy), margin)
        by_ccy -= known
        net = by_ccy.sum(axis=1)
        cumulative = np.cumsum(net)
        usable = resources.usable_cash_usd
        available = usable + facility_available(resources, days)
        breach = np.flatnonzero(cumulative > available + 1e-9)
        needed = np.flatnonzero(cumulative > usable + 1e-9)
        ccy_cum = np.cumsum(by_ccy, axis=0)
        over = ccy_cum > cash
        short = {c: int(np.argmax(over[:, i])) + 1 for i, c in enumerate(ccys) if over[:, i].any()}
        return LadderView(
            name=name,
            vm_usd=vm,
            im_change_usd=im_change,
            known_flows_usd=known,
            outflow_by_currency_usd=by_ccy,
            net_outflow_usd=net,
            cumulative_outflow_usd=cumulative,
            available_usd=available,
            cash_by_currency_usd=cash,
            first_breach_day=int(breach[0]) + 1 if breach.size else None,
            facility_needed_day=int(needed[0]) + 1 if needed.size else None,
            currency_short_day=short,
        )

    return LiquidityLadder(
        days=days,
        confidence=confidence,
        vm_inflow_credit=vm_inflow_credit,
        venues=book.venues,
        venue_currency=tuple(venue_currency),
        currencies=ccys,
        resources=resources,
        expected=view("expected", expected_cum, scheduled),
        stressed=view("stressed", stressed_cum, stressed_im_change + scheduled),
    )


# ---- the ladder of a dated book ---------------------------------------------------------------------------


def business_day(as_of: date, when: date) -> int:
    """Business day number of `when` counted from `as_of` (the next business day is 1; weekends roll forward)."""
    rolled = np.busday_offset(np.datetime64(when, "D"), 0, roll="forward")
    return int(np.busday_count(np.datetime64(as_of, "D"), rolled))


@dataclass(frozen=True)
class DatedFlows:
    """What the dates of a book add to the ladder: IM released by expiries, FX forward settlements by currency."""

    currencies: tuple[str, ...]
    im_change_usd: np.ndarray  # [D, V]
    known_flows_usd: np.ndarray  # [D, C]
    expiring_positions: int
    settling_fx_forwards: int


def dated_flows(
    book: Any, arrays: MarginBook, position_im_usd: np.ndarray, venue_currency: Sequence[str], days: int = LADDER_DAYS
) -> DatedFlows:
    """IM releases and FX forward settlements within `days` business days of the book's date (module docstring).

    `book` is the pydantic `book.Book` whose positions are in the arrays' order; `position_im_usd` each
    position's share of its venue's IM.
    """
    rates = {"USD": 1.0}
    for factor in book.factors:
        if factor.id.startswith("FX.") and factor.level is not None:
            rates[factor.id[3:6]] = float(factor.level)
    n_v = len(arrays.venues)
    flows: dict[str, np.ndarray] = {}
    im_change = np.zeros((days, n_v))
    expiring = settling = 0

    def add(currency: str, day: int, amount_in_currency: float, field: str) -> None:
        if currency not in rates:
            raise ValueError(f"{field}: no FX.{currency}USD level in the book to convert {currency} to USD")
        flows.setdefault(currency, np.zeros(days))[day - 1] += amount_in_currency * rates[currency]

    for i, position in enumerate(book.positions):
        when = getattr(position, "maturity", None) or getattr(position, "expiry", None)
        if when is None:
            continue
        day = business_day(book.as_of, when)
        if not 1 <= day <= days:
            continue
        expiring += 1
        v = int(arrays.position_venue[i])
        im_change[day - 1, v] -= position_im_usd[i]
        if position.instrument == "fx_forward":
            settling += 1
            add(position.buy_currency, day, position.buy_amount, f"positions[{i}].buy_currency")
            add(position.sell_currency, day, -position.sell_amount, f"positions[{i}].sell_currency")
            flows.setdefault(venue_currency[v], np.zeros(days))[day - 1] -= arrays.position_value_usd[i]
    currencies = tuple(sorted(flows))
    known = np.array([flows[c] for c in currencies]).T if currencies else np.zeros((days, 0))
    return DatedFlows(currencies, im_change, known, expiring, settling)


def book_ladder(
    loaded: Any,
    *,
    baseline: Any = None,
    stressed_im_usd: np.ndarray | None = None,
    vol_multiplier: float = 2.0,
    days: int = LADDER_DAYS,
    confidence: float = 0.99,
    lookback_days: int = 2520,
    vm_inflow_credit: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> LiquidityLadder:
    """The ladder of a loaded book (`files.LoadedBook`): today's IM and its allocation from the baseline; the
    CCPs' IM at `vol_multiplier` times today's volatility (`stressed.stressed_margin`, SIMM left at its
    baseline), reached at the pace of each CCP's EWMA decay; one-day FHS scenarios at today's volatility
    (decay 0.97) over `lookback_days` (at most the history); CSA thresholds; and the book's dates.
    """
    from engines.margin import fhs
    from engines.margin.baseline import baseline_margin, venue_csa
    from engines.margin.stressed import stressed_margin

    def step(done: int) -> None:
        if progress is not None:
            progress(done, 4)

    step(0)
    base = baseline if baseline is not None else baseline_margin(loaded)
    step(1)
    if stressed_im_usd is None:
        stressed_im_usd = base.venue_im_usd
        if vol_multiplier != 1.0:
            stressed = stressed_margin(
                loaded, multipliers=(vol_multiplier,), correlation_breakdown=False, bilateral="unchanged", baseline=base
            )
            stressed_im_usd = stressed.venue_im_usd[1]
    step(2)
    history, arrays = loaded.history, loaded.arrays
    n = min(lookback_days, fhs.available_scenarios(history, mpor_days=1))
    scenarios = fhs.scenarios(history, lookback_days=n, mpor_days=1, ewma_decay=0.97)
    models = [v.margin_model if v.kind == "ccp" else None for v in loaded.book.venues]
    decay = np.array([0.97 if m is None else m.ewma_decay for m in models])
    dated = dated_flows(loaded.book, arrays, base.position_im_usd, base.venue_currency, days)
    currencies = sorted(set(base.venue_currency) | set(loaded.book.resources.cash_usd) | set(dated.currencies))
    known = np.zeros((days, len(currencies)))
    for j, c in enumerate(dated.currencies):
        known[:, currencies.index(c)] = dated.known_flows_usd[:, j]
    thresholds = np.array([0.0 if t is None else t.threshold_usd for t in venue_csa(loaded.book)])
    step(3)
    ladder = liquidity_ladder(
        arrays,
        scenarios,
        base.venue_im_usd,
        base.venue_currency,
        loaded.book.resources,
        days=days,
        confidence=confidence,
        stressed_im_usd=stressed_im_usd,
        vol_multiplier=vol_multiplier,
        ewma_decay=decay,
        scheduled_im_change_usd=dated.im_change_usd,
        known_flows_usd=known,
        currencies=currencies,
        vm_threshold_usd=thresholds,
        vm_inflow_credit=vm_inflow_credit,
    )
    step(4)
    return ladder
