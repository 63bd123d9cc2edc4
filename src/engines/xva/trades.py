"""Trades, counterparties, netting sets and CSAs of the XVA book, with schedules and day counts.

The boundary models validate one trade at a time (positive notionals, dates in order) and the whole `Book`
across references (every trade's netting set exists, every netting set's counterparty exists, ids are
unique); `check_against_market` then checks what needs the market (currencies with curves, known equities and
CDS names, trades not matured on the valuation date). Errors name the path: ``trades[17].netting_set_id: ...``.

Schedules are unadjusted (no business-day calendar: a documented simplification): dates roll backward from
maturity by the leg's frequency, the day clipped to the month's length, with a short first stub when the
period does not divide the life. Day counts are ACT/360, ACT/365F and 30/360 (bond basis, ISDA 2006
4.16(f)); each currency has its usual fixed- and floating-leg conventions (`CONVENTIONS`), which a trade may
override. Floating legs are single-curve: the index is projected off the currency's discount curve, and the
index period is the accrual period (no fixing lag).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, RootModel, model_validator

from engines.xva.market import CreditCurve, Currency, Market

DayCount = Literal["ACT/360", "ACT/365F", "30/360"]
Tenor = Annotated[str, Field(pattern=r"^(1|2|3|4|6|12)M$|^1Y$", description="Leg frequency: 1M, 3M, 6M, 12M or 1Y.")]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class LegConventions:
    fixed_frequency: str
    fixed_day_count: str
    float_frequency: str
    float_day_count: str


CONVENTIONS: dict[str, LegConventions] = {
    "USD": LegConventions("6M", "30/360", "3M", "ACT/360"),
    "EUR": LegConventions("1Y", "30/360", "6M", "ACT/360"),
    "GBP": LegConventions("6M", "ACT/365F", "6M", "ACT/365F"),
    "JPY": LegConventions("6M", "ACT/365F", "6M", "ACT/365F"),
    "CHF": LegConventions("1Y", "30/360", "6M", "ACT/360"),
}
"""Each currency's usual (fixed frequency, fixed day count, float frequency, float day count)."""


def months_of(tenor: str) -> int:
    """Months in a leg frequency such as '3M' or '1Y'."""
    return 12 * int(tenor[:-1]) if tenor.endswith("Y") else int(tenor[:-1])


# ---------------------------------------------------------------------------------------------
# Trades
# ---------------------------------------------------------------------------------------------


class _Trade(_Model):
    trade_id: Identifier
    netting_set_id: Identifier


class InterestRateSwap(_Trade):
    """Fixed against floating in one currency; `pay_fixed` says which side the bank is on."""

    type: Literal["irs"] = "irs"
    currency: Currency
    notional: float = Field(gt=0)
    start_date: date
    maturity_date: date
    fixed_rate: float = Field(ge=-0.05, le=0.5)
    pay_fixed: bool
    float_spread: float = Field(0.0, ge=-0.05, le=0.05)
    fixed_frequency: Tenor | None = None
    fixed_day_count: DayCount | None = None
    float_frequency: Tenor | None = None
    float_day_count: DayCount | None = None
    current_fixing: float | None = Field(
        None, description="Fixing of the coupon running on the valuation date; the curve's rate if omitted."
    )

    @model_validator(mode="after")
    def _dates(self) -> InterestRateSwap:
        if self.maturity_date <= self.start_date:
            raise ValueError(f"maturity_date: {self.maturity_date} is not after start_date {self.start_date}")
        return self


class SwapLeg(_Model):
    """One leg of a cross-currency swap: fixed (a `fixed_rate`) or floating (no rate; `spread` over the index)."""

    currency: Currency
    notional: float = Field(gt=0)
    fixed_rate: float | None = Field(None, ge=-0.05, le=0.5)
    spread: float = Field(0.0, ge=-0.05, le=0.05)
    frequency: Tenor | None = None
    day_count: DayCount | None = None
    current_fixing: float | None = None

    @model_validator(mode="after")
    def _kind(self) -> SwapLeg:
        if self.fixed_rate is not None and self.spread != 0.0:
            raise ValueError("spread: a fixed leg has a fixed_rate and no spread")
        return self


class CrossCurrencySwap(_Trade):
    """Two legs in two currencies with notional exchanges (constant notionals, no mark-to-market resets).

    The initial exchange is counted only while it is in the future; the final one at maturity.
    """

    type: Literal["xccy"] = "xccy"
    pay_leg: SwapLeg
    receive_leg: SwapLeg
    start_date: date
    maturity_date: date
    exchange_notionals: bool = True

    @model_validator(mode="after")
    def _legs(self) -> CrossCurrencySwap:
        if self.maturity_date <= self.start_date:
            raise ValueError(f"maturity_date: {self.maturity_date} is not after start_date {self.start_date}")
        if self.pay_leg.currency == self.receive_leg.currency:
            raise ValueError(f"receive_leg.currency: both legs are in {self.pay_leg.currency}")
        return self


class FxForward(_Trade):
    """Buy `buy_amount` of `buy_currency` against `sell_amount` of `sell_currency`, delivered on `delivery_date`."""

    type: Literal["fx_forward"] = "fx_forward"
    buy_currency: Currency
    buy_amount: float = Field(gt=0)
    sell_currency: Currency
    sell_amount: float = Field(gt=0)
    delivery_date: date

    @model_validator(mode="after")
    def _pair(self) -> FxForward:
        if self.buy_currency == self.sell_currency:
            raise ValueError(f"sell_currency: same as buy_currency ({self.buy_currency})")
        return self


class FxOption(_Trade):
    """European option on `notional` units of `foreign` priced in `domestic` (strike in domestic per foreign)."""

    type: Literal["fx_option"] = "fx_option"
    foreign: Currency
    domestic: Currency
    notional: float = Field(gt=0, description="Units of the foreign currency.")
    strike: float = Field(gt=0, description="Domestic currency per unit of foreign.")
    expiry_date: date
    call: bool = Field(description="A call on the foreign currency (put otherwise).")
    long: bool = True

    @model_validator(mode="after")
    def _pair(self) -> FxOption:
        if self.foreign == self.domestic:
            raise ValueError(f"domestic: same as foreign ({self.foreign})")
        return self


class Swaption(_Trade):
    """European swaption into a fixed/float swap starting at expiry; physical or cash (settled at the swap's value).

    Once expired it is worth nothing to the engine: a physically exercised swaption is booked as its swap."""

    type: Literal["swaption"] = "swaption"
    currency: Currency
    notional: float = Field(gt=0)
    expiry_date: date
    maturity_date: date = Field(description="Maturity of the underlying swap, which starts on the expiry date.")
    strike: float = Field(ge=-0.05, le=0.5, description="Fixed rate of the underlying swap.")
    payer: bool = Field(description="The right to pay fixed (a receiver swaption otherwise).")
    long: bool = True
    settlement: Literal["physical", "cash"] = "physical"
    fixed_frequency: Tenor | None = None
    fixed_day_count: DayCount | None = None
    float_frequency: Tenor | None = None
    float_day_count: DayCount | None = None

    @model_validator(mode="after")
    def _dates(self) -> Swaption:
        if self.maturity_date <= self.expiry_date:
            raise ValueError(f"maturity_date: {self.maturity_date} is not after expiry_date {self.expiry_date}")
        return self


class EquityOption(_Trade):
    """European option on `quantity` units of equity `underlying` (a name in the market), in its currency."""

    type: Literal["equity_option"] = "equity_option"
    underlying: Identifier
    quantity: float = Field(gt=0)
    strike: float = Field(gt=0)
    expiry_date: date
    call: bool
    long: bool = True


class EquityForward(_Trade):
    """Buy (`long`) or sell `quantity` units of `underlying` at `strike` on `maturity_date`."""

    type: Literal["equity_forward"] = "equity_forward"
    underlying: Identifier
    quantity: float = Field(gt=0)
    strike: float = Field(gt=0)
    maturity_date: date
    long: bool = True


class CreditDefaultSwap(_Trade):
    """Single-name CDS on a reference name of the market: quarterly premiums at `spread`, ACT/360."""

    type: Literal["cds"] = "cds"
    reference: Identifier
    currency: Currency = "USD"
    notional: float = Field(gt=0)
    spread: float = Field(gt=0, le=1.0, description="Running coupon, decimals (0.01 = 100 bp).")
    start_date: date
    maturity_date: date
    protection_buyer: bool

    @model_validator(mode="after")
    def _dates(self) -> CreditDefaultSwap:
        if self.maturity_date <= self.start_date:
            raise ValueError(f"maturity_date: {self.maturity_date} is not after start_date {self.start_date}")
        return self


Trade = Annotated[
    InterestRateSwap
    | CrossCurrencySwap
    | FxForward
    | FxOption
    | Swaption
    | EquityOption
    | EquityForward
    | CreditDefaultSwap,
    Field(discriminator="type"),
]


class TradeDocument(RootModel[Trade]):
    """One trade of any type (the document published as `xva.trade`)."""


TRADE_TYPES: dict[str, type[BaseModel]] = {
    "irs": InterestRateSwap,
    "xccy": CrossCurrencySwap,
    "fx_forward": FxForward,
    "fx_option": FxOption,
    "swaption": Swaption,
    "equity_option": EquityOption,
    "equity_forward": EquityForward,
    "cds": CreditDefaultSwap,
}


def usd_notional(trade: BaseModel, market: Market) -> float:
    """A trade's notional in USD at today's spot (the first currency's amount for FX, quantity x spot for equity)."""
    if isinstance(trade, InterestRateSwap | Swaption | CreditDefaultSwap):
        return trade.notional * market.fx_spot(trade.currency)
    if isinstance(trade, CrossCurrencySwap):
        return trade.receive_leg.notional * market.fx_spot(trade.receive_leg.currency)
    if isinstance(trade, FxForward):
        return trade.buy_amount * market.fx_spot(trade.buy_currency)
    if isinstance(trade, FxOption):
        return trade.notional * market.fx_spot(trade.foreign)
    if isinstance(trade, EquityOption | EquityForward):
        eq = market.equities[trade.underlying]
        return trade.quantity * eq.spot * market.fx_spot(eq.currency)
    raise TypeError(f"{type(trade).__name__} has no notional mapping")


def trade_end(trade: BaseModel) -> date:
    """The last date on which the trade has a flow or an exercise."""
    for field in ("maturity_date", "delivery_date", "expiry_date"):
        value = getattr(trade, field, None)
        if value is not None:
            return value
    raise TypeError(f"{type(trade).__name__} has no end date")


# ---------------------------------------------------------------------------------------------
# Counterparties, CSAs, netting sets, the book
# ---------------------------------------------------------------------------------------------


class WrongWayRisk(_Model):
    """Correlation of the counterparty's credit intensity to one market driver (``FX.EUR``, ``IR.USD``, ...)."""

    driver: str
    correlation: float = Field(ge=-1, le=1)


class Counterparty(_Model):
    counterparty_id: Identifier
    sector: Literal["bank", "fund", "corporate", "sovereign", "insurer"] = "corporate"
    rating: str = Field("BBB", max_length=8)
    credit_curve: CreditCurve
    intensity_volatility: float = Field(
        0.01, ge=0, le=0.5, description="Absolute vol of the simulated credit intensity, per year (0.01 = 100 bp)."
    )
    wrong_way: WrongWayRisk | None = None


class CSA(_Model):
    """Collateral terms; amounts are in the collateral `currency` (the bank's side: received is held by the bank).

    Variation margin is called on the value at t − MPOR: the counterparty posts above `threshold_received`, the
    bank above `threshold_posted`, and a call moves collateral only if it is at least the minimum transfer amount.
    `independent_amount` is held by the bank if positive (posted if negative); initial margin received reduces the
    bank's exposure, initial margin posted (segregated) reduces only the counterparty's.
    """

    currency: Currency = "USD"
    threshold_received: float = Field(0.0, ge=0)
    threshold_posted: float = Field(0.0, ge=0)
    minimum_transfer_amount: float = Field(0.0, ge=0)
    independent_amount: float = 0.0
    initial_margin_received: float = Field(0.0, ge=0)
    initial_margin_posted: float = Field(0.0, ge=0)
    margin_period_of_risk_days: int = Field(
        10, ge=0, le=260, description="Business days; converted to calendar days as 7/5 of them."
    )

    @property
    def mpor_years(self) -> float:
        """The margin period of risk in model years (business days × 7/5 calendar days / 365)."""
        return round(self.margin_period_of_risk_days * 7 / 5) / 365.0


class NettingSet(_Model):
    netting_set_id: Identifier
    counterparty_id: Identifier
    csa: CSA | None = None


class Book(_Model):
    """A dealer's book: counterparties, their netting sets (with or without a CSA) and the trades in them."""

    counterparties: list[Counterparty]
    netting_sets: list[NettingSet]
    trades: list[Trade]
    _sets: dict[str, NettingSet] | None = PrivateAttr(None)
    _parties: dict[str, Counterparty] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _references(self) -> Book:
        _unique([c.counterparty_id for c in self.counterparties], "counterparties", "counterparty_id")
        _unique([n.netting_set_id for n in self.netting_sets], "netting_sets", "netting_set_id")
        _unique([t.trade_id for t in self.trades], "trades", "trade_id")
        parties = {c.counterparty_id for c in self.counterparties}
        for i, n in enumerate(self.netting_sets):
            if n.counterparty_id not in parties:
                raise ValueError(f"netting_sets[{i}].counterparty_id: {n.counterparty_id!r} is not a counterparty")
        sets = {n.netting_set_id for n in self.netting_sets}
        for i, t in enumerate(self.trades):
            if t.netting_set_id not in sets:
                raise ValueError(f"trades[{i}].netting_set_id: {t.netting_set_id!r} is not a netting set of the book")
        return self

    def netting_set(self, netting_set_id: str) -> NettingSet:
        return self._set_index[netting_set_id]

    def counterparty(self, counterparty_id: str) -> Counterparty:
        return self._party_index[counterparty_id]

    @property
    def _set_index(self) -> dict[str, NettingSet]:
        if self._sets is None:
            self._sets = {n.netting_set_id: n for n in self.netting_sets}
        return self._sets

    @property
    def _party_index(self) -> dict[str, Counterparty]:
        if self._parties is None:
            self._parties = {c.counterparty_id: c for c in self.counterparties}
        return self._parties

    def trades_by_netting_set(self) -> dict[str, list[int]]:
        """Trade positions per netting set id, in book order (every netting set present, maybe empty)."""
        out: dict[str, list[int]] = {n.netting_set_id: [] for n in self.netting_sets}
        for i, t in enumerate(self.trades):
            out[t.netting_set_id].append(i)
        return out


def _unique(ids: list[str], where: str, field: str) -> None:
    counts = Counter(ids)
    if len(counts) != len(ids):
        dup = next(i for i in ids if counts[i] > 1)
        raise ValueError(f"{where}[{ids.index(dup, ids.index(dup) + 1)}].{field}: {dup!r} is used twice")


_DRIVER = re.compile(r"^(IR|FX|EQ)\.[A-Za-z0-9_\-]+$")


def check_against_market(book: Book, market: Market) -> None:
    """Refuse what the market cannot serve, naming the path: unknown currencies, equities, CDS names, WWR drivers,
    and trades whose last date is on or before the valuation date."""
    have = set(market.currencies)
    drivers = set(market.driver_names)
    for i, c in enumerate(book.counterparties):
        if c.wrong_way is not None and c.wrong_way.driver not in drivers:
            raise ValueError(
                f"counterparties[{i}].wrong_way.driver: {c.wrong_way.driver!r} is not a driver of the market"
            )
    for i, n in enumerate(book.netting_sets):
        if n.csa is not None and n.csa.currency not in have:
            raise ValueError(f"netting_sets[{i}].csa.currency: no curve for {n.csa.currency} in the market")
    for i, t in enumerate(book.trades):
        for field in ("currency", "buy_currency", "sell_currency", "foreign", "domestic"):
            ccy = getattr(t, field, None)
            if ccy is not None and ccy not in have:
                raise ValueError(f"trades[{i}].{field}: no curve for {ccy} in the market")
        if isinstance(t, CrossCurrencySwap):
            for leg in ("pay_leg", "receive_leg"):
                if getattr(t, leg).currency not in have:
                    raise ValueError(f"trades[{i}].{leg}.currency: no curve for {getattr(t, leg).currency}")
        if isinstance(t, EquityOption | EquityForward) and t.underlying not in market.equities:
            raise ValueError(f"trades[{i}].underlying: {t.underlying!r} is not an equity of the market")
        if isinstance(t, CreditDefaultSwap) and t.reference not in market.credit_curves:
            raise ValueError(f"trades[{i}].reference: {t.reference!r} has no credit curve in the market")
        end = trade_end(t)
        if end <= market.as_of:
            raise ValueError(f"trades[{i}]: its last date {end} is not after the valuation date {market.as_of}")


# ---------------------------------------------------------------------------------------------
# Day counts and schedules (vectorised over many trades)
# ---------------------------------------------------------------------------------------------


def _ymd(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = d.astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    years = months.astype("datetime64[Y]")
    return (
        years.astype(np.int64) + 1970,
        (months - years).astype(np.int64) + 1,
        (d - months).astype(np.int64) + 1,
    )


def year_fraction(start: np.ndarray, end: np.ndarray, day_count: str) -> np.ndarray:
    """Accrual fractions between datetime64[D] arrays under ACT/360, ACT/365F or 30/360 (bond basis)."""
    start = np.asarray(start, dtype="datetime64[D]")
    end = np.asarray(end, dtype="datetime64[D]")
    if day_count == "ACT/360":
        return (end - start).astype(np.int64) / 360.0
    if day_count == "ACT/365F":
        return (end - start).astype(np.int64) / 365.0
    if day_count == "30/360":
        y1, m1, d1 = _ymd(start)
        y2, m2, d2 = _ymd(end)
        d1 = np.minimum(d1, 30)
        d2 = np.where((d2 == 31) & (d1 == 30), 30, d2)
        return (360 * (y2 - y1) + 30 * (m2 - m1) + (d2 - d1)) / 360.0
    raise ValueError(f"day_count: {day_count!r} is not one of ACT/360, ACT/365F, 30/360")


def _month_index(d: np.ndarray) -> np.ndarray:
    return d.astype("datetime64[M]").astype(np.int64)


def _from_month_index(month: np.ndarray, day: np.ndarray) -> np.ndarray:
    first = month.astype("datetime64[M]").astype("datetime64[D]")
    length = ((month + 1).astype("datetime64[M]").astype("datetime64[D]") - first).astype(np.int64)
    return first + (np.minimum(day, length) - 1).astype("timedelta64[D]")


@dataclass(frozen=True)
class Schedules:
    """Many schedules flattened: periods of schedule i are `start[offset[i]:offset[i+1]]`, `end[...]`."""

    start: np.ndarray  # datetime64[D]
    end: np.ndarray  # datetime64[D]
    offset: np.ndarray  # int64 [n + 1]

    def owner(self) -> np.ndarray:
        """The schedule index of every period."""
        return np.repeat(np.arange(len(self.offset) - 1), np.diff(self.offset))


def schedules(start: np.ndarray, end: np.ndarray, months: np.ndarray) -> Schedules:
    """Unadjusted schedules rolled backward from `end` every `months[i]` months until `start` (short first stub).

    Vectorised over all schedules: no Python loop over trades.
    """
    start = np.asarray(start, dtype="datetime64[D]")
    end = np.asarray(end, dtype="datetime64[D]")
    months = np.asarray(months, dtype=np.int64)
    if start.shape != end.shape or start.shape != months.shape:
        raise ValueError("schedules: start, end and months must have the same length")
    if np.any(end <= start):
        raise ValueError(f"schedules: end on or before start at index {int(np.argmax(end <= start))}")
    end_month = _month_index(end)
    end_day = _ymd(end)[2]
    span = end_month - _month_index(start)
    count = span // months + 2  # upper bound on rolled dates strictly after start, plus one
    owner = np.repeat(np.arange(len(end)), count)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    k = np.arange(owner.size) - first[owner]
    rolled = _from_month_index(end_month[owner] - k * months[owner], end_day[owner])
    keep = rolled > start[owner]
    owner, rolled = owner[keep], rolled[keep]
    n_periods = np.bincount(owner, minlength=len(end))
    offset = np.concatenate([[0], np.cumsum(n_periods)])
    # rolled dates are in decreasing order within each schedule: reverse them per schedule
    pos = offset[owner] + (n_periods[owner] - 1 - (np.arange(owner.size) - offset[owner]))
    period_end = np.empty_like(rolled)
    period_end[pos] = rolled
    period_start = np.empty_like(period_end)
    period_start[1:] = period_end[:-1]
    period_start[offset[:-1]] = start
    return Schedules(period_start, period_end, offset)


def schedule(start: date, end: date, tenor: str) -> tuple[list[date], list[date]]:
    """One schedule's (period starts, period ends), for tests and small jobs."""
    s = schedules(np.array([start], "datetime64[D]"), np.array([end], "datetime64[D]"), np.array([months_of(tenor)]))
    return [d.item() for d in s.start], [d.item() for d in s.end]
