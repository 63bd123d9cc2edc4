"""CRIF, ISDA's Common Risk Interchange Format: one sensitivity per record, the input of SIMM.

A record says which trade and portfolio it belongs to, its product class (RatesFX, Credit, Equity,
Commodity), the risk type (``Risk_IRCurve``, ``Risk_FX``, ...), the risk factor (Qualifier, Bucket,
Label1, Label2) and the amount: the change in value, in USD (AmountUSD) and optionally in another
currency (Amount, AmountCurrency), for the shift the risk type defines (1 bp for rates and credit
spreads, 1% for equity, commodity and FX prices, one vol point for equity/commodity/FX vega; vega
times volatility for interest-rate and credit vega). SIMM parameter records (``Param_*``, ``Notional``)
carry add-ons.

`read_crif` and `write_crif` move records to and from CSV files with the standard CRIF columns.
Header names are matched without regard to case, spaces or underscores (``AmountUSD``,
``amount_usd``); ``post_regulations``/``collect_regulations`` (ORE's spelling) are accepted. Columns
other than the standard ones (``EndDate``, ``ValuationDate``, FRTB fields, ...) are ignored and not
written back. Records are checked when built: a bad value raises ValueError naming the CRIF column,
and the reader adds the file and line (``trades.csv line 12: AmountUSD: not a number: 'abc'``).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

PRODUCT_CLASSES: Final = ("RatesFX", "Credit", "Equity", "Commodity")

RISK_TYPES: Final[dict[str, tuple[str, str]]] = {
    "Risk_IRCurve": ("InterestRate", "Delta"),
    "Risk_Inflation": ("InterestRate", "Delta"),
    "Risk_XCcyBasis": ("InterestRate", "Delta"),
    "Risk_IRVol": ("InterestRate", "Vega"),
    "Risk_InflationVol": ("InterestRate", "Vega"),
    "Risk_CreditQ": ("CreditQualifying", "Delta"),
    "Risk_CreditVol": ("CreditQualifying", "Vega"),
    "Risk_BaseCorr": ("CreditQualifying", "BaseCorr"),
    "Risk_CreditNonQ": ("CreditNonQualifying", "Delta"),
    "Risk_CreditVolNonQ": ("CreditNonQualifying", "Vega"),
    "Risk_Equity": ("Equity", "Delta"),
    "Risk_EquityVol": ("Equity", "Vega"),
    "Risk_Commodity": ("Commodity", "Delta"),
    "Risk_CommodityVol": ("Commodity", "Vega"),
    "Risk_FX": ("FX", "Delta"),
    "Risk_FXVol": ("FX", "Vega"),
}
"""Sensitivity risk types: (SIMM risk class, margin type) of each. Vega records also give curvature."""

PARAMETER_TYPES: Final = (
    "Param_ProductClassMultiplier",
    "Param_AddOnFixedAmount",
    "Param_AddOnNotionalFactor",
    "Notional",
)
"""Add-on records: a multiplier of a product class's margin (Amount, e.g. 1.5, Qualifier = the product
class), a fixed amount (AmountUSD), a percentage of notional (Amount, in %, Qualifier = the product) that
applies to the ``Notional`` record (AmountUSD) with the same Qualifier."""

SUPPORTED_TYPES: Final = (*RISK_TYPES, *PARAMETER_TYPES)

CURRENCY_QUALIFIED: Final = frozenset(
    {"Risk_IRCurve", "Risk_Inflation", "Risk_XCcyBasis", "Risk_IRVol", "Risk_InflationVol", "Risk_FX"}
)
UNITLESS_AMOUNT: Final = frozenset({"Param_ProductClassMultiplier", "Param_AddOnNotionalFactor"})

COLUMNS: Final = (
    "TradeID",
    "PortfolioID",
    "ProductClass",
    "RiskType",
    "Qualifier",
    "Bucket",
    "Label1",
    "Label2",
    "Amount",
    "AmountCurrency",
    "AmountUSD",
    "IMModel",
    "PostRegulation",
    "CollectRegulation",
)
"""The columns `write_crif` writes, in this order; `read_crif` needs RiskType, Qualifier and an amount."""

_ALIASES: Final[dict[str, str]] = {
    **{c.lower(): c for c in COLUMNS},
    "postregulations": "PostRegulation",
    "collectregulations": "CollectRegulation",
    "portfolio": "PortfolioID",
    "tradeid": "TradeID",
}

_TENOR: Final = re.compile(r"^\d+[wmyWMY]$")
_CANONICAL_TYPES: Final = {t.lower(): t for t in SUPPORTED_TYPES}
_CANONICAL_CLASSES: Final = {c.lower(): c for c in PRODUCT_CLASSES}


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _finite(value: float | None, column: str) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{column}: must be finite, got {value!r}")


@dataclass(frozen=True, slots=True)
class CrifRecord:
    """One CRIF line. Values are normalised on construction: risk type and product class to their
    standard spelling, currencies upper case, tenors lower case (``10Y`` → ``10y``), ``residual`` →
    ``Residual``, an FX volatility pair in alphabetical order (``USDEUR`` → ``EURUSD``, as both name
    the same risk factor). `origin` says where the record came from (file and line) for error messages
    and takes no part in comparisons."""

    risk_type: str
    qualifier: str
    amount_usd: float | None
    product_class: str = ""
    bucket: str = ""
    label1: str = ""
    label2: str = ""
    amount: float | None = None
    amount_currency: str = ""
    trade_id: str = ""
    portfolio_id: str = ""
    im_model: str = ""
    post_regulation: str = ""
    collect_regulation: str = ""
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        risk_type = _CANONICAL_TYPES.get(self.risk_type.strip().lower())
        if risk_type is None:
            raise ValueError(f"RiskType: unknown {self.risk_type!r}; supported: {', '.join(SUPPORTED_TYPES)}")
        set_ = object.__setattr__
        set_(self, "risk_type", risk_type)
        for name in ("qualifier", "bucket", "label1", "label2", "amount_currency", "trade_id", "portfolio_id",
                     "im_model", "post_regulation", "collect_regulation", "product_class"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(f"{_COLUMN_OF[name]}: must be text, got {type(value).__name__}")
            set_(self, name, value.strip())
        if risk_type in RISK_TYPES:
            pc = _CANONICAL_CLASSES.get(self.product_class.lower())
            if pc is None:
                raise ValueError(f"ProductClass: {self.product_class!r} is not one of {', '.join(PRODUCT_CLASSES)}")
            set_(self, "product_class", pc)
            if not self.qualifier:
                raise ValueError("Qualifier: required for a sensitivity")
        elif risk_type == "Param_ProductClassMultiplier":
            pc = _CANONICAL_CLASSES.get(self.qualifier.lower())
            if pc is None:
                raise ValueError(f"Qualifier: {self.qualifier!r} is not a product class ({', '.join(PRODUCT_CLASSES)})")
            set_(self, "qualifier", pc)
        if risk_type in CURRENCY_QUALIFIED:
            set_(self, "qualifier", self.qualifier.upper())
        elif risk_type == "Risk_FXVol":
            pair = self.qualifier.upper().replace("/", "")
            if len(pair) != 6 or not pair.isalpha():
                raise ValueError(
                    f"Qualifier: an FX volatility needs a currency pair such as EURUSD, got {self.qualifier!r}"
                )
            set_(self, "qualifier", min(pair[:3], pair[3:]) + max(pair[:3], pair[3:]))
        if _TENOR.match(self.label1):
            set_(self, "label1", self.label1.lower())
        if self.bucket.lower() == "residual":
            set_(self, "bucket", "Residual")
        set_(self, "amount_currency", self.amount_currency.upper())
        for name in ("amount", "amount_usd"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{_COLUMN_OF[name]}: not a number: {value!r}")
                set_(self, name, float(value))
                _finite(float(value), _COLUMN_OF[name])
        if risk_type in UNITLESS_AMOUNT:
            if self.amount is None:
                raise ValueError(f"Amount: required for {risk_type}")
            if self.amount < 0:
                raise ValueError(f"Amount: {risk_type} must not be negative, got {self.amount}")
        elif self.amount_usd is None:
            if self.amount is not None and self.amount_currency == "USD":
                set_(self, "amount_usd", self.amount)
            elif self.amount is None:
                raise ValueError("AmountUSD: required (or Amount with AmountCurrency USD)")
            else:
                raise ValueError(
                    f"AmountUSD: required when AmountCurrency is {self.amount_currency or 'not given'} "
                    "(no FX rates are used to convert Amount)"
                )

    @property
    def is_schedule(self) -> bool:
        """True for records meant for the Schedule IM model, which SIMM leaves out."""
        return self.im_model.lower() == "schedule"

    @property
    def value_usd(self) -> float:
        """AmountUSD, or Amount for a unitless parameter record."""
        if self.risk_type in UNITLESS_AMOUNT:
            return float(self.amount or 0.0)
        return float(self.amount_usd or 0.0)

    def where(self) -> str:
        """The record's origin, or its trade and risk factor when it has none."""
        if self.origin:
            return self.origin
        return f"trade {self.trade_id or '?'} {self.risk_type} {self.qualifier}".strip()

    def to_row(self) -> dict[str, str]:
        """The record as CRIF columns (text), for writing."""
        row = {column: getattr(self, attr) for column, attr in _ATTR_OF.items()}
        for column in ("Amount", "AmountUSD"):
            row[column] = "" if row[column] is None else repr(row[column])
        return row

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "") -> CrifRecord:
        """A record from CRIF column names (any case, with or without underscores) to values.

        Raises ValueError naming the column; unknown keys are refused (a misspelt column must not be
        ignored silently) except the non-standard CRIF columns listed in `IGNORED_COLUMNS`.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a CRIF record must be a mapping of column names to values, not {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            column = _ALIASES.get(_key(str(key)))
            if column is None:
                if _key(str(key)) in IGNORED_COLUMNS:
                    continue
                raise ValueError(f"{key}: not a CRIF column; expected {', '.join(COLUMNS)}")
            attr = _ATTR_OF[column]
            if attr in ("amount", "amount_usd"):
                value = _number(value, column)
            elif value is None:
                value = ""
            elif isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # a bucket written as a JSON number
            elif not isinstance(value, str):
                raise ValueError(f"{column}: must be text, got {type(value).__name__} {value!r}")
            kwargs[attr] = value
        for required in ("risk_type", "qualifier"):
            if required not in kwargs:
                kwargs.setdefault(required, "")
        kwargs.setdefault("amount_usd", None)
        if not kwargs["risk_type"]:
            raise ValueError("RiskType: required")
        return cls(**kwargs, origin=origin)


_ATTR_OF: Final = {
    "TradeID": "trade_id",
    "PortfolioID": "portfolio_id",
    "ProductClass": "product_class",
    "RiskType": "risk_type",
    "Qualifier": "qualifier",
    "Bucket": "bucket",
    "Label1": "label1",
    "Label2": "label2",
    "Amount": "amount",
    "AmountCurrency": "amount_currency",
    "AmountUSD": "amount_usd",
    "IMModel": "im_model",
    "PostRegulation": "post_regulation",
    "CollectRegulation": "collect_regulation",
}
_COLUMN_OF: Final = {attr: column for column, attr in _ATTR_OF.items()}

IGNORED_COLUMNS: Final = frozenset(
    {"valuationdate", "enddate", "tradetype", "label3", "creditquality", "longshortind", "coveredbondind",
     "tranchethickness", "bbrw", "counterparty", "nettingsetid", "agreementtype", "calltype",
     "initialmargintype", "legalentityid", "postingside", "sensitivityid", "productidentifier"}
)  # fmt: skip
"""Non-standard columns some CRIF producers add; the reader and `from_mapping` skip them."""


def _number(value: Any, column: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{column}: not a number: {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{column}: not a number: {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{column}: must be finite, got {value!r}")
    return float(value)


class CrifFileError(ValueError):
    """A CRIF file that cannot be read; the message names the file, the line and the column."""


def read_crif(source: str | Path, *, text: str | None = None) -> list[CrifRecord]:
    """The records of a CRIF CSV file (comma-, tab- or semicolon-separated, with a header line).

    `source` is the file's path; pass `text` to parse content already in memory, `source` then only
    names it in messages. Blank lines are skipped. Raises `CrifFileError` on the first bad line.
    """
    name = Path(source).name if text is None else str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CrifFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CrifFileError(f"{name}: not a UTF-8 text file") from None
    text = text.removeprefix("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "\t" if "\t" in first else (";" if ";" in first and "," not in first else ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str | None] | None = None
    records: list[CrifRecord] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = _header(row, name, line)
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
            raise CrifFileError(f"{name} line {line}: {len(row)} fields for {len(header)} columns")
        data = {column: cell for column, cell in zip(header, row, strict=False) if column is not None}
        try:
            records.append(CrifRecord.from_mapping(data, origin=f"{name} line {line}"))
        except ValueError as exc:
            raise CrifFileError(f"{name} line {line}: {exc}") from None
    if header is None:
        raise CrifFileError(f"{name}: empty file (no header line)")
    return records


def _header(row: list[str], name: str, line: int) -> list[str | None]:
    columns: list[str | None] = []
    for cell in row:
        raw = cell.strip().lstrip("#")
        column = _ALIASES.get(_key(raw))
        if column is not None and column in columns:
            raise CrifFileError(f"{name} line {line}: column {column} appears twice")
        columns.append(column)
    missing = [c for c in ("RiskType", "Qualifier") if c not in columns]
    if "AmountUSD" not in columns and "Amount" not in columns:
        missing.append("AmountUSD")
    if missing:
        raise CrifFileError(
            f"{name} line {line}: missing column(s) {', '.join(missing)}; a CRIF header names {', '.join(COLUMNS)}"
        )
    return columns


def write_crif(records: Iterable[CrifRecord], destination: str | Path | None = None) -> str:
    """Write records as a comma-separated CRIF file with the `COLUMNS` header; returns the text
    (and writes it to `destination` when given). Amounts are written with full precision."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record.to_row())
    text = buffer.getvalue()
    if destination is not None:
        Path(destination).write_text(text, encoding="utf-8")
    return text
