"""The multi-manager book as boundary models, and its arrays for the margin kernels.

A `Book` holds the platform's managers, their strategies, the venues (CCPs and bilateral
counterparties, `venues.py`), the risk factors with today's levels and market depth, the positions
and the liquidity resources that pay margin calls. Positions are a discriminated union on
`instrument`:

==================  =========  ==========================================================  ===============
instrument          venue      size and terms                                              loads on
==================  =========  ==========================================================  ===============
listed_future       CCP        contracts (signed) × multiplier units of an EQ/CM/FX factor  the underlying
listed_option       CCP        contracts × multiplier, strike, expiry, call/put on EQ       EQ, VOL.EQ
cleared_irs         CCP        notional, pay/receive fixed, fixed rate, maturity            IR pillars
cds_index           CCP        notional, buy/sell protection, coupon, maturity on CR.*.5Y   CR
fx_forward          bilateral  buy amount of one currency against a sell amount of another  FX legs
equity_trs          bilateral  notional, receive/pay the equity return on EQ                EQ
uncleared_irs       bilateral  as cleared_irs                                               IR pillars
uncleared_option    bilateral  quantity (signed), strike, expiry on an EQ, FX or IR factor  + VOL.EQ/VOL.IR
==================  =========  ==========================================================  ===============

plus the FX factor ``FX.<CCY>USD`` of a position whose currency is not USD, on its value.

`Book` validates its cross-references (a position's strategy, venue, underlying factors, currency,
dates) and refuses with the path of the first fault: ``positions[17].venue: 'CCP-99' is not a venue
of the book``. `book_arrays(book, history)` builds the `MarginBook` in the history's factor order.

Loadings (see `arrays.py` for the P&L form ``Σ δ·r + ½·γ·r²``) are the exact first and second
derivatives of each position's USD value (`instruments.py`) with respect to its factors' returns:
log returns for prices and vols, absolute changes for rates and spreads. So a linear position in a
price (future, TRS, FX forward leg) has ``δ = γ = notional in USD`` (``N·(e^r − 1) ≈ N·r + ½·N·r²``),
an option ``δ = Q·S·Δ`` and ``γ = Q·(S²·Γ + S·Δ)``, with ``δ = Q·σ·vega`` and
``γ = Q·(σ²·volga + σ·vega)`` on its vol factor; a swap or CDS has its DV01/CS01 times 1e4 and its
convexity, a swap's split between the two pillars around its maturity with the interpolation
weights. Cross-derivatives (vanna, an option's FX × spot) have no place in the form and are left out.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
from pydantic import Field, RootModel, ValidationError, field_validator, model_validator

from engines.margin import instruments as ins
from engines.margin.arrays import ASSET_CLASSES, FactorHistory, MarginBook
from engines.margin.venues import Frozen, LiquidityResources, Money, Venue
from engines.registry import InvalidInputs, split_named_field

AssetClass = Literal["rates", "fx", "equity", "credit", "commodity"]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Style = Literal["macro", "rates_rv", "equity_ls", "credit", "vol_arb", "commodities", "fx"]
OptionType = Literal["call", "put"]

BASE_CURRENCY = "USD"
CLEARED: frozenset[str] = frozenset({"listed_future", "listed_option", "cleared_irs", "cds_index"})
"""Instruments held at a CCP; all others are held with a bilateral counterparty."""

# -- the factor-id grammar (arrays.py) ------------------------------------------------------------

_NAME = r"[A-Z0-9][A-Z0-9_]*"
_FACTOR_ID = re.compile(
    rf"^(?:IR\.(?P<IR>[A-Z]{{3}})\.(?P<tenor>3M|1Y|2Y|5Y|10Y|30Y)|FX\.(?P<FX>[A-Z]{{3}})USD|EQ\.(?P<EQ>{_NAME})"
    rf"|CR\.(?P<CR>{_NAME})\.5Y|CM\.(?P<CM>{_NAME})|VOL\.IR\.(?P<VOLIR>[A-Z]{{3}})|VOL\.EQ\.(?P<VOLEQ>{_NAME}))$"
)
FACTOR_GRAMMAR = (
    "IR.<CCY>.<3M|1Y|2Y|5Y|10Y|30Y>, FX.<CCY>USD, EQ.<index>, CR.<index>.5Y, CM.<commodity>, VOL.IR.<CCY>, "
    "VOL.EQ.<index>"
)
FactorKind = Literal["IR", "FX", "EQ", "CR", "CM", "VOL.IR", "VOL.EQ"]
FACTOR_CLASS: dict[str, AssetClass] = {
    "IR": "rates", "VOL.IR": "rates", "FX": "fx", "EQ": "equity", "VOL.EQ": "equity", "CR": "credit", "CM": "commodity",
}  # fmt: skip
"""Asset class of each kind of factor (vols belong to their underlying's class, as in SIMM)."""


class FactorId(NamedTuple):
    """A parsed factor id: its kind, the currency or index it names, and the tenor of an IR factor."""

    kind: FactorKind
    name: str
    tenor: str | None = None


@functools.lru_cache(maxsize=4096)
def parse_factor_id(text: str) -> FactorId:
    """The parts of a factor id; ValueError if it does not follow the grammar."""
    match = _FACTOR_ID.match(text)
    if match is None:
        raise ValueError(f"{text!r} does not follow the factor grammar ({FACTOR_GRAMMAR})")
    for group, value in match.groupdict().items():
        if value is not None and group != "tenor":
            kind = {"VOLIR": "VOL.IR", "VOLEQ": "VOL.EQ"}.get(group, group)
            if kind == "FX" and value == BASE_CURRENCY:
                raise ValueError(f"{text!r}: an FX factor prices a currency other than USD in USD")
            return FactorId(kind, value, match.group("tenor"))  # type: ignore[arg-type]
    raise AssertionError(text)  # pragma: no cover


def fx_factor(currency: str) -> str:
    """The factor that converts `currency` into USD."""
    return f"FX.{currency}USD"


# -- managers, strategies, factors ----------------------------------------------------------------


class Manager(Frozen):
    """A portfolio manager (or team) of the platform."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)


class Strategy(Frozen):
    """A strategy run by one manager with capital allocated to it and a return target."""

    id: str = Field(min_length=1)
    manager: str = Field(min_length=1, description="Id of the manager who runs it.")
    name: str = Field(min_length=1)
    style: Style
    capital_usd: Money = Field(gt=0.0, description="Capital allocated to the strategy, USD.")
    return_target: float = Field(
        ge=-0.5, le=2.0, allow_inf_nan=False, description="Expected return per year on capital (0.08 = 8%)."
    )

    @property
    def return_target_usd(self) -> float:
        """Expected P&L over a year, USD."""
        return self.capital_usd * self.return_target


class RiskFactor(Frozen):
    """A market risk factor: what the history holds returns of, and what positions load on."""

    id: str = Field(description=f"Factor id: {FACTOR_GRAMMAR}.")
    asset_class: AssetClass
    currency: Currency = Field(description="The currency the factor belongs to (an index's, a curve's, an FX rate's).")
    depth_usd: float = Field(
        gt=0.0, allow_inf_nan=False, description="Notional (USD) that trades in a day without unusual price impact."
    )
    level: float | None = Field(
        None,
        allow_inf_nan=False,
        description="Today's level: a price (index points, USD per unit of an FX rate's currency, commodity "
        "price), a rate or spread in decimals, an implied vol in decimals (VOL.IR: normal vol of the rate).",
    )

    @field_validator("id")
    @classmethod
    def _grammar(cls, text: str) -> str:
        parse_factor_id(text)
        return text

    @property
    def parsed(self) -> FactorId:
        return parse_factor_id(self.id)

    @property
    def quote_currency(self) -> str:
        """The currency a price level is quoted in (USD for an FX rate)."""
        return BASE_CURRENCY if self.parsed.kind == "FX" else self.currency

    @model_validator(mode="after")
    def _consistent(self) -> RiskFactor:
        kind, name, _ = self.parsed
        if FACTOR_CLASS[kind] != self.asset_class:
            raise ValueError(f"asset_class: {self.id!r} belongs to {FACTOR_CLASS[kind]}, not {self.asset_class}")
        if kind in ("IR", "FX", "VOL.IR") and self.currency != name:
            raise ValueError(f"currency: {self.id!r} belongs to {name}, not {self.currency}")
        level = self.level
        if level is None:
            return self
        if kind in ("FX", "EQ", "CM", "VOL.EQ", "VOL.IR") and level <= 0:
            raise ValueError(f"level: must be positive for {self.id!r}, got {level}")
        if kind == "IR" and abs(level) > 0.5:
            raise ValueError(f"level: {level} is not a rate in decimals (0.05 = 5%)")
        if kind == "CR" and not 0 <= level <= 1:
            raise ValueError(f"level: {level} is not a credit spread in decimals (0.01 = 100 bp)")
        if kind == "VOL.EQ" and level > 5:
            raise ValueError(f"level: {level} is not an implied volatility in decimals (0.2 = 20%)")
        if kind == "VOL.IR" and level > 0.2:
            raise ValueError(f"level: {level} is not a normal rate volatility in decimals (0.01 = 100 bp a year)")
        return self


# -- positions ------------------------------------------------------------------------------------


def _nonzero(value: float) -> float:
    if value == 0:
        raise ValueError("must not be zero")
    return value


def _factor_of_kind(kinds: tuple[str, ...], what: str) -> Callable[[str], str]:
    """A validator of an `underlying` factor id: one of `kinds` (EQ, CM, FX, CR), described as `what`."""

    def check(text: str) -> str:
        if parse_factor_id(text).kind not in kinds:
            raise ValueError(f"must be {what}, got {text!r}")
        return text

    return check


_EQUITY_INDEX = _factor_of_kind(("EQ",), "an equity index factor (EQ.*)")


class _Position(Frozen):
    id: str = Field(min_length=1)
    strategy: str = Field(min_length=1, description="Id of the strategy the position belongs to.")
    venue: str = Field(min_length=1, description="Id of the CCP or bilateral counterparty it is held at.")
    currency: Currency = Field(description="The currency the position settles in.")


class ListedFuture(_Position):
    """An exchange-traded future on an equity index, a commodity or an FX rate, cleared at a CCP."""

    instrument: Literal["listed_future"] = "listed_future"
    underlying: str = Field(description="An EQ.*, CM.* or FX.*USD factor.")
    contracts: Finite = Field(description="Number of contracts, negative when short.")
    multiplier: Positive = Field(description="Units of the underlying per contract.")
    expiry: date

    _contracts = field_validator("contracts")(_nonzero)

    _underlying = field_validator("underlying")(
        _factor_of_kind(("EQ", "CM", "FX"), "an equity index, commodity or FX rate factor (EQ.*, CM.*, FX.*USD)")
    )


class ListedOption(_Position):
    """An exchange-traded European option on an equity index, cleared at a CCP."""

    instrument: Literal["listed_option"] = "listed_option"
    underlying: str = Field(description="An EQ.* factor; the option's vega loads on VOL.EQ.<index>.")
    contracts: Finite = Field(description="Number of contracts, negative when sold.")
    multiplier: Positive = Field(description="Units of the index per contract.")
    option: OptionType
    strike: Positive
    expiry: date
    volatility: Positive | None = Field(None, le=5.0, description="Implied vol for pricing; default: the VOL factor.")
    dividend_yield: float = Field(0.0, ge=-0.1, le=0.2, allow_inf_nan=False, description="Continuous, decimals.")

    _contracts = field_validator("contracts")(_nonzero)

    _underlying = field_validator("underlying")(_EQUITY_INDEX)


class _Swap(_Position):
    notional: Positive = Field(description="Notional in the position's currency; the curve is IR.<currency>.*.")
    direction: Literal["pay_fixed", "receive_fixed"]
    fixed_rate: float = Field(ge=-0.05, le=0.5, allow_inf_nan=False, description="Decimals (0.035 = 3.5%).")
    maturity: date
    payments_per_year: int = Field(
        1, description="Fixed-leg payments a year: 1, 2 or 4.", json_schema_extra={"enum": [1, 2, 4]}
    )

    @field_validator("payments_per_year")
    @classmethod
    def _frequency(cls, value: int) -> int:
        if value not in (1, 2, 4):
            raise ValueError(f"must be 1, 2 or 4, got {value}")
        return value


class ClearedIrs(_Swap):
    """A fixed-for-floating interest-rate swap cleared at a CCP."""

    instrument: Literal["cleared_irs"] = "cleared_irs"


class UnclearedIrs(_Swap):
    """A fixed-for-floating interest-rate swap with a bilateral counterparty."""

    instrument: Literal["uncleared_irs"] = "uncleared_irs"


class CdsIndex(_Position):
    """Protection on a CDS index (its 5-year series), cleared at a CCP."""

    instrument: Literal["cds_index"] = "cds_index"
    underlying: str = Field(description="A CR.<index>.5Y factor.")
    notional: Positive
    protection: Literal["buy", "sell"]
    coupon: float = Field(ge=0.0, le=0.2, allow_inf_nan=False, description="Running coupon, decimals (0.01 = 100 bp).")
    maturity: date
    recovery_rate: float = Field(0.4, ge=0.0, lt=1.0, allow_inf_nan=False)

    _underlying = field_validator("underlying")(_factor_of_kind(("CR",), "a credit index factor (CR.<index>.5Y)"))


class FxForward(_Position):
    """A deliverable FX forward with a bilateral counterparty: buy one currency, sell another."""

    instrument: Literal["fx_forward"] = "fx_forward"
    buy_currency: Currency
    buy_amount: Positive
    sell_currency: Currency
    sell_amount: Positive
    maturity: date

    @model_validator(mode="after")
    def _legs(self) -> FxForward:
        if self.buy_currency == self.sell_currency:
            raise ValueError(f"sell_currency: must differ from buy_currency ({self.buy_currency})")
        if self.currency not in (self.buy_currency, self.sell_currency):
            raise ValueError(f"currency: {self.currency} is neither the buy nor the sell currency")
        return self


class EquityTrs(_Position):
    """A total-return swap on an equity index with a bilateral counterparty (reset today: worth zero)."""

    instrument: Literal["equity_trs"] = "equity_trs"
    underlying: str = Field(description="An EQ.* factor.")
    notional: Positive
    direction: Literal["receive_equity", "pay_equity"]
    maturity: date

    _underlying = field_validator("underlying")(_EQUITY_INDEX)


class UnclearedOption(_Position):
    """An over-the-counter European option with a bilateral counterparty, on an equity index (vega on
    VOL.EQ.<index>), an FX rate (premium in USD; no vol factor in the grammar, so `volatility` is
    required) or a swap rate IR.<CCY>.<tenor> of at least 1Y (a call is a payer swaption on a swap of
    that tenor; Bachelier with the normal vol VOL.IR.<CCY>)."""

    instrument: Literal["uncleared_option"] = "uncleared_option"
    underlying: str
    quantity: Finite = Field(
        description="Units of the underlying (index units, units of the FX rate's currency, or the swap's "
        "notional in its currency); negative when sold."
    )
    option: OptionType
    strike: Finite = Field(description="A price level, or a swap rate in decimals.")
    expiry: date
    volatility: Positive | None = Field(None, le=5.0, description="Implied vol for pricing; default: the VOL factor.")
    dividend_yield: float = Field(0.0, ge=-0.1, le=0.2, allow_inf_nan=False, description="Equity only, decimals.")

    _quantity = field_validator("quantity")(_nonzero)

    @model_validator(mode="after")
    def _underlying(self) -> UnclearedOption:
        kind, name, tenor = parse_factor_id(self.underlying)
        if kind not in ("EQ", "FX", "IR"):
            raise ValueError(
                f"underlying: must be an EQ.*, FX.*USD or IR.<CCY>.<tenor> factor, got {self.underlying!r}"
            )
        if kind in ("EQ", "FX") and self.strike <= 0:
            raise ValueError(f"strike: must be positive, got {self.strike}")
        if kind == "FX":
            if self.volatility is None:
                raise ValueError("volatility: is required for an FX option (the grammar has no FX vol factor)")
            if self.currency != BASE_CURRENCY:
                raise ValueError(f"currency: an option on {self.underlying} is paid in USD, not {self.currency}")
        if kind == "IR":
            if tenor == "3M":
                raise ValueError(f"underlying: a swaption needs a swap tenor of 1Y or more, got {self.underlying!r}")
            if self.currency != name:
                raise ValueError(f"currency: an option on {self.underlying} is in {name}, not {self.currency}")
            if abs(self.strike) > 0.5:
                raise ValueError(f"strike: {self.strike} is not a swap rate in decimals")
        return self


Position = Annotated[
    ListedFuture | ListedOption | ClearedIrs | CdsIndex | FxForward | EquityTrs | UnclearedIrs | UnclearedOption,
    Field(discriminator="instrument"),
]
INSTRUMENTS: tuple[str, ...] = (
    "listed_future", "listed_option", "cleared_irs", "cds_index", "fx_forward", "equity_trs", "uncleared_irs",
    "uncleared_option",
)  # fmt: skip


class PositionDocument(RootModel[Position]):
    """One position of any instrument (the document published as `margin.position`)."""


# -- the book -------------------------------------------------------------------------------------


class Book(Frozen):
    """A multi-manager book on one date, in USD. See the module docstring."""

    as_of: date
    base_currency: Literal["USD"] = "USD"
    managers: tuple[Manager, ...] = Field(min_length=1)
    strategies: tuple[Strategy, ...] = Field(min_length=1)
    venues: tuple[Venue, ...] = Field(min_length=1)
    factors: tuple[RiskFactor, ...] = Field(min_length=1)
    positions: tuple[Position, ...]
    resources: LiquidityResources

    @model_validator(mode="after")
    def _references(self) -> Book:
        problem = next(iter(book_problems(self)), None)
        if problem is not None:
            raise ValueError(problem)
        return self


class _Need(NamedTuple):
    field: str
    factor: str


def _ir_pillars(factors: Iterable[RiskFactor]) -> dict[str, list[tuple[float, str]]]:
    """The pillars of each currency's rate curve, (years, factor id) by increasing years: the book's
    IR.<CCY>.<tenor> factors that have a level."""
    curves: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for f in factors:
        kind, name, tenor = f.parsed
        if kind == "IR" and tenor is not None and f.level is not None:
            curves[name].append((ins.PILLAR_YEARS[tenor], f.id))
    return {c: sorted(p) for c, p in curves.items()}


def _curve_factors(pillars: list[tuple[float, str]], years: float) -> list[str]:
    lo, hi, _ = ins.pillar_split([y for y, _ in pillars], [years])
    return sorted({pillars[int(lo[0])][1], pillars[int(hi[0])][1]})


def position_needs(position: Any, as_of: date, ir_pillars: dict[str, list[tuple[float, str]]]) -> list[_Need]:
    """The factors a position is priced from and loads on, each with the field that names or implies it."""
    p = position
    needs: list[_Need] = []
    kind = p.instrument
    if kind in ("cleared_irs", "uncleared_irs"):
        pillars = ir_pillars.get(p.currency)
        if pillars:
            needs += [_Need("currency", f) for f in _curve_factors(pillars, ins.year_fraction(as_of, p.maturity))]
        else:
            needs.append(_Need("currency", f"IR.{p.currency}.10Y"))
    elif kind == "fx_forward":
        needs += [
            _Need(field, fx_factor(c))
            for field, c in (("buy_currency", p.buy_currency), ("sell_currency", p.sell_currency))
            if c != BASE_CURRENCY
        ]
        return needs
    else:
        needs.append(_Need("underlying", p.underlying))
        parsed = parse_factor_id(p.underlying)
        if kind in ("listed_option", "uncleared_option") and parsed.kind == "EQ":
            needs.append(_Need("underlying", f"VOL.EQ.{parsed.name}"))
        if kind == "uncleared_option" and parsed.kind == "IR":
            needs.append(_Need("underlying", f"VOL.IR.{parsed.name}"))
    if p.currency != BASE_CURRENCY:
        needs.append(_Need("currency", fx_factor(p.currency)))
    return needs


def _expected_currency(position: Any, factor: RiskFactor) -> str | None:
    """The currency a position on `factor` must settle in: the currency its level is quoted in."""
    kind = position.instrument
    if kind in ("listed_future", "listed_option", "equity_trs", "cds_index", "uncleared_option"):
        return factor.quote_currency
    return None


def book_problems(book: Book) -> Iterable[str]:
    """Every broken cross-reference of the book as ``path: reason`` (the validator raises the first)."""
    for name in ("managers", "strategies", "venues", "factors", "positions"):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(book, name)):
            if item.id in seen:
                yield f"{name}[{i}].id: {item.id!r} is used by {name}[{seen[item.id]}] too"
            seen.setdefault(item.id, i)
    managers = {m.id for m in book.managers}
    for i, s in enumerate(book.strategies):
        if s.manager not in managers:
            yield f"strategies[{i}].manager: {s.manager!r} is not a manager of the book"
    strategies = {s.id for s in book.strategies}
    venues = {v.id: v for v in book.venues}
    factors = {f.id: f for f in book.factors}
    pillars = _ir_pillars(book.factors)
    for i, p in enumerate(book.positions):
        at = f"positions[{i}]"
        if p.strategy not in strategies:
            yield f"{at}.strategy: {p.strategy!r} is not a strategy of the book"
        venue = venues.get(p.venue)
        if venue is None:
            yield f"{at}.venue: {p.venue!r} is not a venue of the book"
        elif (venue.kind == "ccp") != (p.instrument in CLEARED):
            what = "a CCP" if venue.kind == "ccp" else "a bilateral counterparty"
            where = "at a CCP" if p.instrument in CLEARED else "with a bilateral counterparty"
            yield f"{at}.venue: {p.venue!r} is {what}; a {p.instrument} position is held {where}"
        for field in ("expiry", "maturity"):
            when = getattr(p, field, None)
            if when is not None and when <= book.as_of:
                yield f"{at}.{field}: {when} is not after the book's as_of date {book.as_of}"
        if p.instrument in ("cleared_irs", "uncleared_irs") and p.currency not in pillars:
            yield f"{at}.currency: the book has no IR.{p.currency}.<tenor> factor with a level to price the swap on"
            continue
        for need in position_needs(p, book.as_of, pillars):
            factor = factors.get(need.factor)
            if factor is None:
                yield f"{at}.{need.field}: {need.factor!r} is not a factor of the book"
                continue
            if factor.level is None and not (need.factor.startswith("VOL.") and p.volatility is not None):
                yield f"factors[{book.factors.index(factor)}].level: {need.factor!r} needs a level to price {at}"
        underlying = factors.get(getattr(p, "underlying", ""))
        if underlying is not None:
            expected = _expected_currency(p, underlying)
            if expected is not None and expected != p.currency:
                yield f"{at}.currency: {p.currency!r} is not the currency of {underlying.id!r} ({expected})"


# -- validation messages --------------------------------------------------------------------------

_TAGS = frozenset(INSTRUMENTS) | {"ccp", "bilateral"}


def error_path(loc: Sequence[str | int]) -> str:
    """``('positions', 17, 'listed_option', 'strike')`` → ``positions[17].strike`` (union tags dropped)."""
    out = ""
    previous: str | int | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS and (previous is None or isinstance(previous, int)):
            pass
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out


def _shown(value: Any) -> str:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return repr(value)
        return value
    return repr(value)


def describe_error(error: Any) -> tuple[str, str]:
    """(field path, reason) of one pydantic error, in plain words: ``('strike', 'must be positive, got -5')``."""
    kind, loc, ctx = error["type"], error["loc"], error.get("ctx") or {}
    got = f", got {_shown(error.get('input'))}"
    path = error_path(loc)
    tag = next((p for p in loc if isinstance(p, str) and p in _TAGS), None)
    if kind == "union_tag_invalid":
        return _join(path, "instrument" if "instrument" in ctx.get("discriminator", "") else "kind"), (
            f"must be one of {ctx.get('expected_tags')}, got {ctx.get('tag')!r}"
        )
    if kind == "union_tag_not_found":
        return _join(path, ctx.get("discriminator", "").strip("'")), "is required"
    if kind in ("value_error", "assertion_error"):
        named, reason = split_named_field(str(error["msg"]))
        return (_join(path, named) if named else path), reason
    reasons = {
        "missing": "is required",
        "extra_forbidden": f"is not a field of a {tag} {'position' if tag in INSTRUMENTS else 'venue'}"
        if tag
        else "is not an expected field",
        "greater_than": ("must be positive" if ctx.get("gt") == 0 else f"must be greater than {ctx.get('gt')}") + got,
        "greater_than_equal": ("must not be negative" if ctx.get("ge") == 0 else f"must be at least {ctx.get('ge')}")
        + got,
        "less_than": f"must be less than {ctx.get('lt')}{got}",
        "less_than_equal": f"must be at most {ctx.get('le')}{got}",
        "literal_error": f"must be {ctx.get('expected')}{got}",
        "float_parsing": f"must be a number{got}",
        "float_type": f"must be a number{got}",
        "finite_number": f"must be finite{got}",
        "int_parsing": f"must be an integer{got}",
        "int_from_float": f"must be an integer{got}",
        "int_type": f"must be an integer{got}",
        "date_parsing": f"must be a date (YYYY-MM-DD){got}",
        "date_from_datetime_parsing": f"must be a date (YYYY-MM-DD){got}",
        "date_from_datetime_inexact": f"must be a date (YYYY-MM-DD){got}",
        "date_type": f"must be a date (YYYY-MM-DD){got}",
        "string_pattern_mismatch": f"must match {ctx.get('pattern')}{got}",
        "string_too_short": "must not be empty",
        "string_type": f"must be text{got}",
        "too_short": f"must have at least {ctx.get('min_length')} item(s)",
        "bool_parsing": f"must be true or false{got}",
    }
    return path, reasons.get(kind, str(error["msg"]))


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def describe_validation_error(exc: ValidationError) -> list[tuple[str, str]]:
    """Every error of a pydantic ValidationError as (field path, reason)."""
    return [describe_error(e) for e in exc.errors(include_url=False)]


# -- the arrays -----------------------------------------------------------------------------------


class _Market:
    """Today's levels: factor levels, FX to USD, and each currency's rate curve."""

    def __init__(self, book: Book) -> None:
        self.as_of = book.as_of
        self.factors = {f.id: f for f in book.factors}
        self.pillars = _ir_pillars(book.factors)

    def level(self, factor: str) -> float:
        value = self.factors[factor].level
        assert value is not None, factor  # Book validation requires it
        return value

    def fx(self, currency: str) -> float:
        return 1.0 if currency == BASE_CURRENCY else self.level(fx_factor(currency))

    def years(self, when: date) -> float:
        return ins.year_fraction(self.as_of, when)

    def rates(self, currencies: Sequence[str], years: np.ndarray) -> np.ndarray:
        """Each currency's curve rate at each maturity (0 where the book has no curve of that currency)."""
        out = np.zeros(len(currencies))
        for c in set(currencies):
            pillars = self.pillars.get(c)
            if pillars:
                rows = np.array([x == c for x in currencies])
                out[rows] = ins.curve_rate([y for y, _ in pillars], [self.level(f) for _, f in pillars], years[rows])
        return out


class _Loadings:
    """Loadings accumulated instrument by instrument, plus each position's notional, value and main factor."""

    def __init__(self, n: int) -> None:
        self.position: list[np.ndarray] = []
        self.factor: list[np.ndarray] = []
        self.delta: list[np.ndarray] = []
        self.gamma: list[np.ndarray] = []
        self.notional = np.zeros(n)
        self.value = np.zeros(n)
        self.main: list[str] = [""] * n

    def add(self, rows: np.ndarray, factors: Sequence[str] | np.ndarray, delta: np.ndarray, gamma: np.ndarray) -> None:
        self.position.append(np.asarray(rows, dtype=np.int64))
        self.factor.append(np.asarray(factors, dtype=object))
        self.delta.append(np.asarray(delta, dtype=np.float64))
        self.gamma.append(np.asarray(gamma, dtype=np.float64))

    def add_fx(self, rows: np.ndarray, currencies: Sequence[str], value_usd: np.ndarray) -> None:
        """The FX translation of a value in a currency other than USD: δ = γ = the value in USD."""
        foreign = np.array([c != BASE_CURRENCY for c in currencies], dtype=bool)
        if foreign.any():
            names = [fx_factor(c) for c, f in zip(currencies, foreign, strict=True) if f]
            self.add(rows[foreign], names, value_usd[foreign], value_usd[foreign])


def _attr(positions: Sequence[Any], name: str, dtype: Any = np.float64) -> np.ndarray:
    return np.array([getattr(p, name) for p in positions], dtype=dtype)


def _linear(out: _Loadings, m: _Market, rows: np.ndarray, ps: Sequence[Any]) -> None:
    """Futures and TRS: δ = γ = signed notional in USD on the underlying; worth zero (settled or reset daily)."""
    size = np.array(
        [
            p.contracts * p.multiplier * m.level(p.underlying)
            if p.instrument == "listed_future"
            else (p.notional if p.direction == "receive_equity" else -p.notional)
            for p in ps
        ]
    )
    usd = size * np.array([m.fx(m.factors[p.underlying].quote_currency) for p in ps])
    out.add(rows, [p.underlying for p in ps], usd, usd)
    out.notional[rows] = np.abs(usd)
    for r, p in zip(rows, ps, strict=True):
        out.main[r] = p.underlying


def _price_options(out: _Loadings, m: _Market, rows: np.ndarray, ps: Sequence[Any]) -> None:
    """Options on an equity index or FX rate: Black–Scholes (Garman–Kohlhagen for FX)."""
    under = [p.underlying for p in ps]
    parsed = [parse_factor_id(u) for u in under]
    is_fx = np.array([x.kind == "FX" for x in parsed])
    q = np.array([p.contracts * p.multiplier if p.instrument == "listed_option" else p.quantity for p in ps])
    s = np.array([m.level(u) for u in under])
    t = np.array([m.years(p.expiry) for p in ps])
    currencies = [p.currency for p in ps]
    r = m.rates(currencies, t)
    carry = np.where(is_fx, m.rates([x.name for x in parsed], t), _attr(ps, "dividend_yield"))
    vol_factors = [f"VOL.EQ.{x.name}" for x in parsed]
    vol = np.array(
        [p.volatility if p.volatility is not None else m.level(v) for p, v in zip(ps, vol_factors, strict=True)]
    )
    g = ins.black_scholes(s, _attr(ps, "strike"), t, r, carry, vol, [p.option == "call" for p in ps])
    x = np.array([m.fx(c) for c in currencies])
    qx = q * x
    out.add(rows, under, qx * s * g.delta, qx * (s * s * g.gamma + s * g.delta))
    eq = ~is_fx
    out.add(
        rows[eq],
        np.array(vol_factors, dtype=object)[eq],
        (qx * vol * g.vega)[eq],
        (qx * (vol * vol * g.volga + vol * g.vega))[eq],
    )
    value = qx * g.value
    out.add_fx(rows, currencies, value)
    out.value[rows] = value
    out.notional[rows] = np.abs(qx * s)
    for i, r_ in enumerate(rows):
        out.main[r_] = under[i]


def _price_swaptions(out: _Loadings, m: _Market, rows: np.ndarray, ps: Sequence[Any]) -> None:
    """Options on a swap rate: Bachelier on the rate times the forward annuity."""
    parsed = [parse_factor_id(p.underlying) for p in ps]
    s = np.array([m.level(p.underlying) for p in ps])
    vol_factors = [f"VOL.IR.{x.name}" for x in parsed]
    vol = np.array(
        [p.volatility if p.volatility is not None else m.level(v) for p, v in zip(ps, vol_factors, strict=True)]
    )
    tenor = np.array([ins.PILLAR_YEARS[x.tenor or "10Y"] for x in parsed])
    t = np.array([m.years(p.expiry) for p in ps])
    g = ins.swaption(_attr(ps, "quantity"), _attr(ps, "strike"), s, t, tenor, vol, [p.option == "call" for p in ps])
    currencies = [p.currency for p in ps]
    x = np.array([m.fx(c) for c in currencies])
    out.add(rows, [p.underlying for p in ps], x * g.delta, x * g.gamma)
    out.add(rows, vol_factors, x * vol * g.vega, x * (vol * vol * g.volga + vol * g.vega))
    value = x * g.value
    out.add_fx(rows, currencies, value)
    out.value[rows] = value
    out.notional[rows] = np.abs(_attr(ps, "quantity")) * x
    for i, r_ in enumerate(rows):
        out.main[r_] = ps[i].underlying


def _price_swaps(out: _Loadings, m: _Market, rows: np.ndarray, ps: Sequence[Any]) -> None:
    """Swaps on their currency's curve; DV01 and convexity split between the pillars around maturity."""
    currencies = [p.currency for p in ps]
    t = np.array([m.years(p.maturity) for p in ps])
    x = np.array([m.fx(c) for c in currencies])
    value = np.zeros(len(ps))
    for c in sorted(set(currencies)):
        sub = np.array([cc == c for cc in currencies])
        pillars = m.pillars[c]
        years = np.array([y for y, _ in pillars])
        ids = np.array([f for _, f in pillars], dtype=object)
        par = ins.curve_rate(years, [m.level(f) for f in ids], t[sub])
        group = [p for p, keep in zip(ps, sub, strict=True) if keep]
        g = ins.swap(
            _attr(group, "notional"),
            _attr(group, "fixed_rate"),
            par,
            t[sub],
            _attr(group, "payments_per_year"),
            [p.direction == "pay_fixed" for p in group],
        )
        lo, hi, w = ins.pillar_split(years, t[sub])
        xs, rs = x[sub], rows[sub]
        same = lo == hi
        out.add(rs, ids[lo], np.where(same, 1.0, w) * xs * g.delta, np.where(same, 1.0, w) * xs * g.gamma)
        two = ~same
        out.add(rs[two], ids[hi][two], ((1 - w) * xs * g.delta)[two], ((1 - w) * xs * g.gamma)[two])
        value[sub] = xs * g.value
        for r_, main in zip(rs, np.where(w >= 0.5, ids[lo], ids[hi]), strict=True):
            out.main[r_] = str(main)
    out.add_fx(rows, currencies, value)
    out.value[rows] = value
    out.notional[rows] = _attr(ps, "notional") * x


def _price_cds(out: _Loadings, m: _Market, rows: np.ndarray, ps: Sequence[Any]) -> None:
    """CDS indices: CS01 and convexity on CR.<index>.5Y (credit triangle, discounting on the currency's curve)."""
    currencies = [p.currency for p in ps]
    t = np.array([m.years(p.maturity) for p in ps])
    s = np.array([m.level(p.underlying) for p in ps])
    g = ins.cds(
        _attr(ps, "notional"),
        _attr(ps, "coupon"),
        s,
        t,
        _attr(ps, "recovery_rate"),
        m.rates(currencies, t),
        [p.protection == "buy" for p in ps],
    )
    x = np.array([m.fx(c) for c in currencies])
    out.add(rows, [p.underlying for p in ps], x * g.delta, x * g.gamma)
    value = x * g.value
    out.add_fx(rows, currencies, value)
    out.value[rows] = value
    out.notional[rows] = _attr(ps, "notional") * x
    for i, r_ in enumerate(rows):
        out.main[r_] = ps[i].underlying


def _price_fx_forwards(out: _Loadings, m: _Market, rows: np.ndarray, ps: Sequence[Any]) -> None:
    """FX forwards: each non-USD leg is a linear position in its FX rate, worth its discounted amount in USD."""
    t = np.array([m.years(p.maturity) for p in ps])
    legs = []
    for side, sign in (("buy", 1.0), ("sell", -1.0)):
        currencies = [getattr(p, f"{side}_currency") for p in ps]
        discount = np.exp(-m.rates(currencies, t) * t)
        usd = sign * _attr(ps, f"{side}_amount") * np.array([m.fx(c) for c in currencies]) * discount
        foreign = np.array([c != BASE_CURRENCY for c in currencies])
        out.add(rows[foreign], [fx_factor(c) for c in np.array(currencies)[foreign]], usd[foreign], usd[foreign])
        legs.append(usd)
    out.value[rows] = legs[0] + legs[1]
    out.notional[rows] = _attr(ps, "buy_amount") * np.array([m.fx(p.buy_currency) for p in ps])
    for r_, p in zip(rows, ps, strict=True):
        out.main[r_] = fx_factor(p.buy_currency if p.buy_currency != BASE_CURRENCY else p.sell_currency)


def _pricer(p: Any) -> Any:
    kind = p.instrument
    if kind in ("listed_future", "equity_trs"):
        return _linear
    if kind in ("cleared_irs", "uncleared_irs"):
        return _price_swaps
    if kind == "cds_index":
        return _price_cds
    if kind == "fx_forward":
        return _price_fx_forwards
    if kind == "uncleared_option" and p.underlying.startswith("IR."):
        return _price_swaptions
    return _price_options


def book_arrays(book: Book, history: FactorHistory) -> MarginBook:
    """The `MarginBook` of `book` with factors in `history`'s order (see the module docstring for loadings).

    Every factor of the history must be a factor of the book (its class, currency and depth come from
    there), and every factor a position needs must be in the history; `InvalidInputs` names the fault.
    """
    index = history.factor_index()
    by_id = {f.id: f for f in book.factors}
    for name in history.factors:
        if name not in by_id:
            raise InvalidInputs("history.factors", f"{name!r} is not a factor of the book")
    pillars = _ir_pillars(book.factors)
    for i, p in enumerate(book.positions):
        for need in position_needs(p, book.as_of, pillars):
            if need.factor not in index:
                raise InvalidInputs(
                    f"positions[{i}].{need.field}",
                    f"position {p.id!r} needs factor {need.factor!r}, which the history does not have",
                )

    market = _Market(book)
    n = len(book.positions)
    out = _Loadings(n)
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, p in enumerate(book.positions):
        groups[_pricer(p)].append(i)
    for pricer, members in groups.items():
        pricer(out, market, np.array(members, dtype=np.int64), [book.positions[i] for i in members])

    if out.position:
        load_position = np.concatenate(out.position)
        load_factor = np.array([index[f] for f in np.concatenate(out.factor)], dtype=np.int32)
        delta, gamma = np.concatenate(out.delta), np.concatenate(out.gamma)
    else:
        load_position = np.zeros(0, dtype=np.int64)
        load_factor = np.zeros(0, dtype=np.int32)
        delta = gamma = np.zeros(0)
    keep = (delta != 0) | (gamma != 0)
    order = np.lexsort((load_factor[keep], load_position[keep]))

    currencies = _currencies(book)
    ccy = {c: i for i, c in enumerate(currencies)}
    strategies = {s.id: i for i, s in enumerate(book.strategies)}
    managers = {m.id: i for i, m in enumerate(book.managers)}
    venues = {v.id: i for i, v in enumerate(book.venues)}
    factor_meta = [by_id[name] for name in history.factors]
    position_strategy = np.array([strategies[p.strategy] for p in book.positions], dtype=np.int32)
    strategy_manager = np.array([managers[s.manager] for s in book.strategies], dtype=np.int32)
    main = np.array([index[f] for f in out.main], dtype=np.int32)
    class_of = {c: i for i, c in enumerate(ASSET_CLASSES)}

    return MarginBook(
        factors=tuple(history.factors),
        factor_class=np.array([class_of[f.asset_class] for f in factor_meta], dtype=np.int8),
        factor_currency=np.array([ccy[f.currency] for f in factor_meta], dtype=np.int16),
        factor_depth_usd=np.array([f.depth_usd for f in factor_meta], dtype=np.float64),
        venues=tuple(v.id for v in book.venues),
        venue_is_ccp=np.array([v.kind == "ccp" for v in book.venues], dtype=bool),
        managers=tuple(m.id for m in book.managers),
        strategies=tuple(s.id for s in book.strategies),
        strategy_manager=strategy_manager,
        currencies=currencies,
        position_ids=tuple(p.id for p in book.positions),
        position_venue=np.array([venues[p.venue] for p in book.positions], dtype=np.int32),
        position_manager=strategy_manager[position_strategy] if n else np.zeros(0, dtype=np.int32),
        position_strategy=position_strategy,
        position_currency=np.array([ccy[p.currency] for p in book.positions], dtype=np.int16),
        position_class=np.array([class_of[by_id[f].asset_class] for f in out.main], dtype=np.int8),
        position_notional_usd=out.notional,
        position_value_usd=out.value,
        position_expected_return_usd=_expected_returns(book, position_strategy, out.notional),
        position_liquidity_factor=main,
        load_position=load_position[keep][order].astype(np.int32),
        load_factor=load_factor[keep][order],
        load_delta=delta[keep][order],
        load_gamma=gamma[keep][order],
    )


def _currencies(book: Book) -> tuple[str, ...]:
    """USD first, then every other currency of the factors and positions in alphabetical order."""
    found = {f.currency for f in book.factors} | {p.currency for p in book.positions}
    found.discard(BASE_CURRENCY)
    return (BASE_CURRENCY, *sorted(found))


def _expected_returns(book: Book, position_strategy: np.ndarray, notional: np.ndarray) -> np.ndarray:
    """Each strategy's return target (USD a year) spread over its positions in proportion to gross notional."""
    target = np.array([s.return_target_usd for s in book.strategies])
    total = np.bincount(position_strategy, weights=notional, minlength=len(book.strategies))
    share = np.divide(
        notional, total[position_strategy], out=np.zeros_like(notional), where=total[position_strategy] > 0
    )
    return target[position_strategy] * share
