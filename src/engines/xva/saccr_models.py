"""SA-CCR boundary models: a netting set of derivative trades with its margin terms, and its exposure at default.

The inputs follow the Basel standardised approach for counterparty credit risk as consolidated in
CRE52 of the Basel Framework (first published as BCBS 279, 2014). Amounts are in the netting set's
currency (`NettingSet.currency`); times are in years from the calculation date. A netting set file
may give ISO dates instead (`maturity_date`, `start_date`, `end_date`, `option.exercise_date`) with
the netting set's `as_of`: they are read as ACT/365 year fractions, and a start date already passed
counts as 0 (CRE52.34).

What a trade must say depends on its asset class (the others' fields are refused, so that a
misplaced field is never silently ignored):

| asset class   | hedging set (CRE52.45)          | risk factor inside it            | adjusted notional (CRE52.34-36) |
|---------------|---------------------------------|----------------------------------|---------------------------------|
| interest_rate | `currency`                      | maturity bucket of the end date  | notional x supervisory duration |
| fx            | `currency_pair` (e.g. EUR/USD)  | the pair                         | foreign-leg notional            |
| credit        | one per netting set             | `reference` (+ `credit_quality`) | notional x supervisory duration |
| equity        | one per netting set             | `reference` (+ `index`)          | price x units                   |
| commodity     | `commodity_set`                 | `reference` (the commodity type) | price x units                   |

Basis transactions (`nature: basis`, with a `basis` label naming the pair of risk factors) and
volatility transactions (`nature: volatility`) form their own hedging sets with half and five
times the supervisory factor (CRE52.46-47, CRE52.73).

Direction: `long` means long in the primary risk factor (CRE52.39): receiving floating in an
interest rate swap, buying the foreign currency of the pair forward, buying credit protection,
buying the equity or commodity forward. An option's direction comes from `option.kind` and
`option.position` alone; a CDO tranche's from `direction` (long = protection bought, CRE52.41).

Collateral amounts are haircut values (CRE52.11): the caller applies the haircuts.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AssetClass = Literal["interest_rate", "fx", "credit", "equity", "commodity"]
ASSET_CLASSES: tuple[AssetClass, ...] = ("interest_rate", "fx", "credit", "equity", "commodity")
Direction = Literal["long", "short"]
CreditQuality = Literal["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "IG", "SG"]
SINGLE_NAME_RATINGS: tuple[str, ...] = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC")
INDEX_GRADES: tuple[str, ...] = ("IG", "SG")
CommoditySet = Literal["energy", "metals", "agricultural", "other"]
Nature = Literal["standard", "basis", "volatility"]

Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]

DAYS_PER_YEAR = 365.0
"""Dates become year fractions as ACT/365."""
MAX_TRADES = 100_000
LARGE_NETTING_SET_TRADES = 5_000
"""More trades than this (none with a central counterparty) raise the MPOR floor to 20 business days (CRE52.51)."""

_OPTIONAL_FIELDS = (
    "currency",
    "currency_pair",
    "reference",
    "credit_quality",
    "index",
    "commodity_set",
    "electricity",
    "start_years",
    "end_years",
    "option",
    "tranche",
    "basis",
)
_USED_BY: dict[str, frozenset[str]] = {
    "interest_rate": frozenset({"currency", "start_years", "end_years", "option", "basis"}),
    "fx": frozenset({"currency_pair", "option"}),
    "credit": frozenset(
        {"reference", "credit_quality", "index", "start_years", "end_years", "option", "tranche", "basis"}
    ),
    "equity": frozenset({"reference", "index", "option", "basis"}),
    "commodity": frozenset({"reference", "commodity_set", "electricity", "option", "basis"}),
}
_REQUIRED_BY: dict[str, tuple[str, ...]] = {
    "interest_rate": ("currency",),
    "fx": ("currency_pair",),
    "credit": ("reference", "credit_quality"),
    "equity": ("reference",),
    "commodity": ("reference", "commodity_set"),
}
_TRADE_DATES = {"maturity_date": "maturity_years", "start_date": "start_years", "end_date": "end_years"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptionTerms(_Model):
    """What the supervisory delta of an option needs (CRE52.40): the Black formula without discounting."""

    kind: Literal["call", "put"]
    position: Literal["bought", "sold"]
    underlying_price: Finite = Field(description="P: the forward (or spot, or current average) price or rate.")
    strike: Finite = Field(description="K: the strike price or rate, in the unit of underlying_price.")
    exercise_years: Positive = Field(description="T: years to the latest contractual exercise date.")
    shift: NonNegative = Field(
        0.0, description="lambda: shift added to P and K where rates can be negative (CRE52.40 FAQ2); 0 otherwise."
    )

    @model_validator(mode="after")
    def _positive_after_shift(self) -> OptionTerms:
        if self.underlying_price + self.shift <= 0:
            raise ValueError(
                f"underlying_price: {self.underlying_price} + shift {self.shift} must be positive "
                "(give a shift for negative rates, CRE52.40 FAQ2)"
            )
        if self.strike + self.shift <= 0:
            raise ValueError(f"strike: {self.strike} + shift {self.shift} must be positive")
        return self


class TrancheTerms(_Model):
    """A CDO tranche (or an nth-to-default on m names: attachment (n-1)/m, detachment n/m), CRE52.41."""

    attachment: float = Field(ge=0, lt=1, allow_inf_nan=False)
    detachment: float = Field(gt=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> TrancheTerms:
        if self.detachment <= self.attachment:
            raise ValueError(f"detachment: {self.detachment} must be above the attachment {self.attachment}")
        return self


class SaccrTrade(_Model):
    """One derivative trade of a netting set (see the module docstring for what each asset class needs)."""

    id: str = Field(min_length=1, max_length=200)
    asset_class: AssetClass
    notional: NonNegative = Field(
        description="In the netting set's currency: the trade notional (interest rate, credit), the foreign leg's "
        "notional (fx; the larger leg if neither is in the netting set's currency), or price x units (equity, "
        "commodity)."
    )
    direction: Direction | None = Field(None, description="Long or short in the primary risk factor; not for options.")
    mtm: Finite = Field(0.0, description="Current market value to the bank, in the netting set's currency.")
    maturity_years: Positive = Field(description="M: years until the last day the contract may still be active.")
    start_years: NonNegative | None = Field(None, description="S (interest rate, credit): start of the period; 0.")
    end_years: Positive | None = Field(None, description="E (interest rate, credit): end of the period; M.")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="Interest rate: the hedging set.")
    currency_pair: str | None = Field(None, pattern=r"^[A-Z]{3}/[A-Z]{3}$", description="FX: e.g. EUR/USD.")
    reference: str | None = Field(
        None, min_length=1, max_length=200, description="Credit or equity entity or index; commodity type."
    )
    credit_quality: CreditQuality | None = Field(None, description="Credit: AAA..CCC single name, IG/SG index.")
    index: bool = Field(False, description="Credit or equity: the reference is an index.")
    commodity_set: CommoditySet | None = None
    electricity: bool = Field(False, description="Commodity (energy): electricity, supervisory factor 40%.")
    nature: Nature = "standard"
    basis: str | None = Field(None, min_length=1, max_length=200, description="Basis: the pair of risk factors.")
    option: OptionTerms | None = None
    tranche: TrancheTerms | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_dates(cls, data: Any) -> Any:
        if isinstance(data, dict):
            option = data.get("option")
            dates = [k for k in _TRADE_DATES if k in data]
            if isinstance(option, dict) and "exercise_date" in option:
                dates.append("option.exercise_date")
            if dates:
                raise ValueError(
                    f"{dates[0]}: dates are read by the netting set (with its as_of); a trade on its own takes years"
                )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SaccrTrade:
        used = _USED_BY[self.asset_class]
        for name in _OPTIONAL_FIELDS:
            if name not in used and getattr(self, name) not in (None, False):
                raise ValueError(f"{name}: not used by {self.asset_class} trades")
        for name in _REQUIRED_BY[self.asset_class]:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: required for {self.asset_class} trades")
        if self.option is not None and self.direction is not None:
            raise ValueError("direction: an option's direction is given by option.kind and option.position")
        if self.option is None and self.direction is None:
            raise ValueError("direction: required (long or short in the primary risk factor)")
        if self.option is not None and self.tranche is not None:
            raise ValueError("tranche: a trade is an option or a CDO tranche, not both")
        if self.asset_class == "credit":
            grades = INDEX_GRADES if self.index else SINGLE_NAME_RATINGS
            if self.credit_quality not in grades:
                kind = "an index takes" if self.index else "a single name takes"
                raise ValueError(f"credit_quality: {kind} one of {', '.join(grades)}, got {self.credit_quality}")
        if self.electricity and self.commodity_set != "energy":
            raise ValueError(f"electricity: electricity is in the energy hedging set, not {self.commodity_set}")
        if self.currency_pair is not None and self.currency_pair[:3] == self.currency_pair[4:]:
            raise ValueError(f"currency_pair: {self.currency_pair} names one currency twice")
        if (self.nature == "basis") != (self.basis is not None):
            raise ValueError("basis: a basis transaction names its pair of risk factors in basis, and only it")
        if self.nature == "basis" and self.asset_class == "fx":
            raise ValueError("nature: FX trades are never basis transactions (CRE52.46 footnote 11)")
        if self.end <= self.start:
            raise ValueError(f"end_years: {self.end} must be after start_years {self.start}")
        if self.option is not None and self.option.exercise_years > self.maturity_years + 1e-9:
            raise ValueError(
                f"option.exercise_years: {self.option.exercise_years} is after maturity_years {self.maturity_years}"
            )
        return self

    @property
    def start(self) -> float:
        """S: start of the referenced period in years (0 unless given)."""
        return 0.0 if self.start_years is None else self.start_years

    @property
    def end(self) -> float:
        """E: end of the referenced period in years (the maturity unless given)."""
        return self.maturity_years if self.end_years is None else self.end_years


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{where}: not an ISO date (YYYY-MM-DD): {value!r}")


def _years(as_of: date, value: Any, where: str) -> float:
    return (_date(value, where) - as_of).days / DAYS_PER_YEAR


def _trade_in_years(trade: dict[str, Any], as_of: date | None, i: int) -> dict[str, Any]:
    """A trade's dates turned into years from `as_of` (a start already passed is 0)."""
    out = dict(trade)
    where = f"trades[{i}]"
    option = out.get("option")
    has_exercise = isinstance(option, dict) and "exercise_date" in option
    for field, years in _TRADE_DATES.items():
        if field not in out:
            continue
        if as_of is None:
            raise ValueError(f"{where}.{field}: dates need the netting set's as_of")
        if out.pop(years, None) is not None:
            raise ValueError(f"{where}.{years}: give {years} or {field}, not both")
        value = _years(as_of, out.pop(field), f"{where}.{field}")
        if field == "start_date":
            value = max(value, 0.0)
        elif value <= 0:
            raise ValueError(f"{where}.{field}: {trade[field]} is not after as_of {as_of}")
        out[years] = value
    if has_exercise:
        if as_of is None:
            raise ValueError(f"{where}.option.exercise_date: dates need the netting set's as_of")
        opt = dict(option)
        if opt.pop("exercise_years", None) is not None:
            raise ValueError(f"{where}.option.exercise_years: give exercise_years or exercise_date, not both")
        value = _years(as_of, opt.pop("exercise_date"), f"{where}.option.exercise_date")
        if value <= 0:
            raise ValueError(f"{where}.option.exercise_date: {option['exercise_date']} is not after as_of {as_of}")
        out["option"] = {**opt, "exercise_years": value}
    return out


class NettingSet(_Model):
    """A netting set: its trades and margin terms. Amounts in `currency`; collateral at haircut value.

    Margined means the counterparty posts variation margin (CRE52.2); a one-way agreement under which only
    the bank posts is unmargined, its posted VM counting against the bank in C (CRE52.10 footnote 2).
    NICA is the independent collateral held (segregated or not) less the unsegregated independent
    collateral posted (CRE52.17): collateral the bank posted to a bankruptcy-remote account is left out.
    """

    id: str = Field("netting-set", min_length=1, max_length=200)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="Currency of every amount.")
    as_of: date | None = Field(None, description="Calculation date; needed only when trades give dates.")
    trades: list[SaccrTrade] = Field(default_factory=list, max_length=MAX_TRADES)
    margined: bool = False
    threshold: NonNegative = Field(0.0, description="TH: exposure below which the counterparty posts no VM.")
    minimum_transfer_amount: NonNegative = Field(0.0, description="MTA applicable to the counterparty.")
    independent_collateral_held: NonNegative = Field(0.0, description="IA/IM posted by the counterparty.")
    independent_collateral_posted: NonNegative = Field(
        0.0, description="IA/IM posted by the bank and not held in a bankruptcy-remote account."
    )
    variation_margin_held: NonNegative = Field(0.0, description="VM received (margined netting sets).")
    variation_margin_posted: NonNegative = Field(0.0, description="VM posted by the bank.")
    remargin_business_days: int = Field(1, ge=1, le=250, description="N: business days between margin calls.")
    mpor_business_days: int | None = Field(
        None, ge=1, le=1000, description="The bank's own margin period of risk; the CRE52.50-51 floor applies."
    )
    illiquid: bool = Field(False, description="Illiquid collateral or an OTC derivative hard to replace: MPOR 20.")
    margin_disputes: bool = Field(
        False, description="More than two long margin call disputes in two quarters: the MPOR floor doubles."
    )
    ir_bucket_offset: bool = Field(
        True, description="Offset long and short interest rate positions across maturity buckets (CRE52.57(5))."
    )

    @model_validator(mode="before")
    @classmethod
    def _dates_to_years(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("trades"), list):
            return data
        raw_as_of = data.get("as_of")
        as_of = None if raw_as_of is None else _date(raw_as_of, "as_of")
        trades = [_trade_in_years(t, as_of, i) if isinstance(t, dict) else t for i, t in enumerate(data["trades"])]
        return {**data, "trades": trades}

    @model_validator(mode="after")
    def _consistent(self) -> NettingSet:
        if not self.margined:
            for name in ("threshold", "minimum_transfer_amount", "variation_margin_held"):
                if getattr(self, name):
                    raise ValueError(
                        f"{name}: applies to margined netting sets only (a counterparty posting VM makes the netting "
                        "set margined, CRE52.2); set margined to true"
                    )
            for name in ("mpor_business_days", "margin_disputes", "illiquid"):
                if getattr(self, name) not in (None, False):
                    raise ValueError(f"{name}: applies to margined netting sets only")
            if self.remargin_business_days != 1:
                raise ValueError("remargin_business_days: applies to margined netting sets only")
        _check_trades(self.trades)
        return self

    @property
    def nica(self) -> float:
        """Net independent collateral amount (CRE52.17)."""
        return self.independent_collateral_held - self.independent_collateral_posted

    @property
    def net_collateral(self) -> float:
        """C: haircut value of the net collateral held, VM and NICA (CRE52.10, CRE52.18)."""
        return self.variation_margin_held - self.variation_margin_posted + self.nica

    @property
    def mpor_floor(self) -> int:
        """The supervisory floor on the margin period of risk in business days (CRE52.50-51)."""
        floor = 10 if self.remargin_business_days == 1 else 9 + self.remargin_business_days
        if self.illiquid or len(self.trades) > LARGE_NETTING_SET_TRADES:
            floor = max(floor, 20)
        return 2 * floor if self.margin_disputes else floor

    @property
    def mpor(self) -> int | None:
        """The margin period of risk used (business days): the bank's own, at least the floor; None if unmargined."""
        if not self.margined:
            return None
        return max(self.mpor_business_days or 0, self.mpor_floor)


def _check_trades(trades: list[SaccrTrade]) -> None:
    """Unique ids, and one set of supervisory attributes per reference (an entity has one rating)."""
    seen: dict[str, int] = {}
    attributes: dict[tuple[str, str], tuple[tuple[str, Any], int]] = {}
    pairs: dict[str, int] = {}
    for i, t in enumerate(trades):
        if t.id in seen:
            raise ValueError(f"trades[{i}].id: {t.id!r} is also trades[{seen[t.id]}]")
        seen[t.id] = i
        if t.currency_pair is not None:
            reverse = f"{t.currency_pair[4:]}/{t.currency_pair[:3]}"
            if reverse in pairs:
                raise ValueError(
                    f"trades[{i}].currency_pair: {t.currency_pair} reverses {reverse} of trades[{pairs[reverse]}]; "
                    "write each pair one way (CRE52.59 FAQ1)"
                )
            pairs.setdefault(t.currency_pair, i)
        if t.reference is None:
            continue
        if t.asset_class == "credit":
            attr: tuple[str, Any] = ("credit_quality", (t.credit_quality, t.index))
        elif t.asset_class == "equity":
            attr = ("index", t.index)
        else:
            attr = ("commodity_set", (t.commodity_set, t.electricity))
        key = (t.asset_class, t.reference)
        if key not in attributes:
            attributes[key] = (attr, i)
        elif attributes[key][0] != attr:
            j = attributes[key][1]
            raise ValueError(
                f"trades[{i}].{attr[0]}: {t.reference!r} is described differently in trades[{j}]; "
                "a reference has one set of supervisory attributes"
            )


class TradeExposure(_Model):
    """One trade's SA-CCR quantities: D = d x delta x MF, and its supervisory factor."""

    id: str
    asset_class: AssetClass
    hedging_set: str
    risk_factor: str = Field(description="Maturity bucket (interest rate), pair, entity or commodity type.")
    adjusted_notional: float
    supervisory_delta: float
    maturity_factor: float
    supervisory_factor: float
    effective_notional: float


class HedgingSetAddOn(_Model):
    """A hedging set's add-on and the effective notionals and add-ons of the risk factors inside it."""

    asset_class: AssetClass
    hedging_set: str
    add_on: float
    effective_notionals: dict[str, float] = Field(
        description="Sum of d x delta x MF per maturity bucket (interest rate), pair, entity or commodity type."
    )
    risk_factor_add_ons: dict[str, float] = Field(description="Supervisory factor x effective notional, signed.")


class SaccrResult(_Model):
    """The exposure at default of one netting set and how it was built (amounts in `currency`)."""

    netting_set_id: str
    currency: str
    margined: bool
    value: float = Field(description="V: sum of the trades' current market values.")
    net_collateral: float = Field(description="C: VM and NICA held, net of what the bank posted.")
    nica: float
    replacement_cost: float
    pfe_multiplier: float
    add_on: float = Field(description="Aggregate add-on.")
    add_ons: dict[AssetClass, float] = Field(description="Add-on per asset class present.")
    pfe: float
    ead: float
    alpha: float
    mpor_business_days: int | None = None
    maturity_factor: float | None = Field(None, description="Margined: 1.5 x sqrt(MPOR / 250) for every trade.")
    unmargined_ead: float | None = Field(None, description="Margined: the cap, EAD computed as if unmargined.")
    capped: bool = Field(False, description="Margined: the EAD is the unmargined one (CRE52.2).")
    hedging_sets: list[HedgingSetAddOn] = Field(default_factory=list)
    ir_maturity_buckets: dict[str, list[float]] = Field(
        default_factory=dict, description="Interest rate hedging set -> effective notionals of buckets 1, 2, 3."
    )
    trades: list[TradeExposure] = Field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return self.model_dump(mode="json")
