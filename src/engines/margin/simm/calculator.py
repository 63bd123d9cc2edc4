"""ISDA SIMM from CRIF records: net the sensitivities by risk factor, compute the delta, vega,
curvature and base-correlation margins of each risk class within each product class (`margins`),
aggregate risk classes with ψ, add product classes and add-ons into the total.

`simm` treats all the records it is given as one netting set (PortfolioID is not looked at: pass
records from several portfolios to see the margin of netting them); `simm_by_portfolio` gives one
result per PortfolioID. Records for the Schedule IM model and Risk_FX sensitivities to the
calculation currency are left out and counted in the result. Regulations (PostRegulation,
CollectRegulation) are carried by the records but not used: there is one SIMM per netting set, not
one per regulator.

Sides: SIMM is not symmetric in the sign of the sensitivities (curvature is one-sided). The margin
a party collects (`side="call"`) uses its portfolio's sensitivities as they are; the margin it posts
(`side="post"`) uses them negated, i.e. the counterparty's view. Delta and vega margins are the same.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Final

import numpy as np

from engines.margin.simm import margins
from engines.margin.simm.crif import PARAMETER_TYPES, PRODUCT_CLASSES, RISK_TYPES, CrifRecord
from engines.margin.simm.margins import BucketMargins, Factors, SimmInputError
from engines.margin.simm.parameters import SimmParameters, load_parameters
from engines.margin.simm.result import MARGIN_TYPES, RISK_CLASSES, ProductClassMargin, RiskClassMargin, Side, SimmResult

IR_TYPES: Final = frozenset({"Risk_IRCurve", "Risk_Inflation", "Risk_XCcyBasis", "Risk_IRVol", "Risk_InflationVol"})

Netted = dict[tuple[str, str, str, str], list]  # (qualifier, bucket, label1, label2) -> [amount, where]

__all__ = ["SimmInputError", "simm", "simm_by_portfolio"]


def _parameters(parameters: SimmParameters | str | None) -> SimmParameters:
    if parameters is None:
        return load_parameters()
    if isinstance(parameters, str):
        return load_parameters(parameters)
    return parameters


def _factors(netted: Netted | None) -> Factors:
    if not netted:
        return Factors.empty()
    keys = list(netted)
    cols = list(zip(*keys, strict=True))
    return Factors(
        qualifier=np.array(cols[0], dtype=str),
        bucket=np.array(cols[1], dtype=str),
        label1=np.array(cols[2], dtype=str),
        label2=np.array(cols[3], dtype=str),
        amount=np.array([netted[k][0] for k in keys], dtype=np.float64),
        where=tuple(netted[k][1] for k in keys),
    )


def simm(
    records: Iterable[CrifRecord],
    parameters: SimmParameters | str | None = None,
    *,
    side: Side = "call",
    calculation_currency: str = "USD",
) -> SimmResult:
    """The SIMM initial margin of `records` taken as one netting set, in USD, with its breakdown.

    `parameters` is a calibration or a version ("2.6", the default). Amounts are read in USD
    (AmountUSD). Raises `SimmInputError` (a ValueError) naming the record and column when a
    sensitivity cannot be placed (a tenor, bucket or currency SIMM does not know).
    """
    if side not in ("call", "post"):
        raise ValueError(f"side: must be 'call' or 'post', got {side!r}")
    if len(calculation_currency) != 3 or not calculation_currency.isalpha():
        raise ValueError(f"calculation_currency: a currency code such as USD, got {calculation_currency!r}")
    calculation_currency = calculation_currency.upper()
    p = _parameters(parameters)
    sign = 1.0 if side == "call" else -1.0
    netted: dict[tuple[str, str], Netted] = {}
    extra: list[CrifRecord] = []
    ignored: Counter[str] = Counter()
    used = 0
    for record in records:
        if not isinstance(record, CrifRecord):
            raise TypeError(f"records: expected CrifRecord, got {type(record).__name__}")
        if record.is_schedule:
            ignored["IMModel Schedule"] += 1
            continue
        if record.risk_type in PARAMETER_TYPES:
            extra.append(record)
            used += 1
            continue
        if record.risk_type == "Risk_FX" and record.qualifier == calculation_currency:
            ignored[f"Risk_FX in the calculation currency {calculation_currency}"] += 1
            continue
        bucket = "" if record.risk_type in IR_TYPES else record.bucket
        key = (record.qualifier, bucket, record.label1, record.label2)
        group = netted.setdefault((record.product_class, record.risk_type), {})
        entry = group.get(key)
        if entry is None:
            group[key] = [float(record.amount_usd or 0.0), record.where()]
        else:
            entry[0] += float(record.amount_usd or 0.0)
        used += 1

    product_classes: dict[str, ProductClassMargin] = {}
    for pc in PRODUCT_CLASSES:
        by_type = {rt: _factors(netted.get((pc, rt))) for rt in RISK_TYPES}
        if not any(len(f) for f in by_type.values()):
            continue
        risk_classes = _risk_classes(by_type, p, calculation_currency, sign)
        product_classes[pc] = _product_class(risk_classes, p)

    product_classes, add_ons = _add_ons(extra, product_classes)
    total = sum(pc.margin_usd for pc in product_classes.values()) + sum(add_ons.values())
    return SimmResult(
        version=p.version,
        side=side,
        calculation_currency=calculation_currency,
        total_usd=total,
        product_classes=product_classes,
        add_ons_usd=add_ons,
        records_used=used,
        records_ignored=dict(ignored),
    )


def _risk_classes(
    by_type: dict[str, Factors], p: SimmParameters, calculation_currency: str, sign: float
) -> dict[str, RiskClassMargin]:
    parts: dict[str, dict[str, tuple[float, BucketMargins]]] = {}

    def put(risk_class: str, margin_type: str, value: tuple[float, BucketMargins]) -> None:
        parts.setdefault(risk_class, {})[margin_type] = value

    curve, inflation, xccy = by_type["Risk_IRCurve"], by_type["Risk_Inflation"], by_type["Risk_XCcyBasis"]
    if len(curve) or len(inflation) or len(xccy):
        put("InterestRate", "Delta", margins.ir_delta(curve, inflation, xccy, p))
    vol, inflation_vol = by_type["Risk_IRVol"], by_type["Risk_InflationVol"]
    if len(vol) or len(inflation_vol):
        put("InterestRate", "Vega", margins.ir_vega(vol, inflation_vol, p))
        put("InterestRate", "Curvature", margins.ir_curvature(vol, inflation_vol, p, sign))
    for risk_type, (risk_class, margin_type) in RISK_TYPES.items():
        f = by_type[risk_type]
        if risk_type in IR_TYPES or not len(f):
            continue
        put(risk_class, margin_type, margins.bucketed_margin(risk_type, f, p, calculation_currency))
        if risk_type in margins.VEGA_TYPES:
            put(risk_class, "Curvature", margins.bucketed_curvature(risk_type, f, p, calculation_currency, sign))

    out: dict[str, RiskClassMargin] = {}
    for risk_class in RISK_CLASSES:
        if risk_class not in parts:
            continue
        types = {mt: parts[risk_class][mt] for mt in MARGIN_TYPES if mt in parts[risk_class]}
        out[risk_class] = RiskClassMargin(
            margin_usd=sum(v[0] for v in types.values()),
            margin_types_usd={mt: v[0] for mt, v in types.items()},
            buckets_usd={mt: v[1] for mt, v in types.items() if v[1]},
        )
    return out


def _psi(values: dict[str, float], p: SimmParameters) -> float:
    names = list(values)
    v = np.array([values[n] for n in names])
    psi = np.array([[p.risk_class_correlations.correlation(a, b) for b in names] for a in names])
    return math.sqrt(max(float(v @ psi @ v), 0.0))


def _product_class(risk_classes: dict[str, RiskClassMargin], p: SimmParameters) -> ProductClassMargin:
    by_type: dict[str, float] = {}
    for mt in MARGIN_TYPES:
        present = {rc: m.margin_types_usd[mt] for rc, m in risk_classes.items() if mt in m.margin_types_usd}
        if present:
            by_type[mt] = _psi(present, p)
    return ProductClassMargin(
        margin_usd=_psi({rc: m.margin_usd for rc, m in risk_classes.items()}, p),
        margin_types_usd=by_type,
        risk_classes=risk_classes,
    )


def _add_ons(
    records: list[CrifRecord], product_classes: dict[str, ProductClassMargin]
) -> tuple[dict[str, ProductClassMargin], dict[str, float]]:
    """Apply Param_ProductClassMultiplier to its product class; sum fixed and notional-factor add-ons."""
    multipliers: dict[str, tuple[float, CrifRecord]] = {}
    factors: dict[str, tuple[float, CrifRecord]] = {}
    notionals: dict[str, float] = {}
    fixed = 0.0
    has_fixed = False
    for r in records:
        if r.risk_type == "Param_AddOnFixedAmount":
            fixed += r.value_usd
            has_fixed = True
        elif r.risk_type == "Notional":
            notionals[r.qualifier] = notionals.get(r.qualifier, 0.0) + r.value_usd
        else:
            target = multipliers if r.risk_type == "Param_ProductClassMultiplier" else factors
            previous = target.get(r.qualifier)
            if previous is not None and previous[0] != r.value_usd:
                raise SimmInputError(
                    r.where(),
                    "Amount",
                    f"{r.risk_type} for {r.qualifier} is {r.value_usd}, but {previous[1].where()} gives {previous[0]}",
                )
            target[r.qualifier] = (r.value_usd, r)
    out = dict(product_classes)
    for pc, (m, _) in multipliers.items():
        if pc in out:
            base = out[pc]
            extra = (m - 1.0) * base.margin_usd
            out[pc] = base.model_copy(update={"margin_usd": base.margin_usd + extra, "additional_usd": extra})
    add_ons: dict[str, float] = {}
    if has_fixed:
        add_ons["AddOnFixedAmount"] = fixed
    notional_add_on = [notionals[q] * f / 100.0 for q, (f, _) in factors.items() if q in notionals]
    if notional_add_on:
        add_ons["AddOnNotionalFactor"] = sum(notional_add_on)
    return out, add_ons


def simm_by_portfolio(
    records: Iterable[CrifRecord],
    parameters: SimmParameters | str | None = None,
    *,
    side: Side = "call",
    calculation_currency: str = "USD",
) -> dict[str, SimmResult]:
    """One SIMM per PortfolioID (in order of first appearance), each its own netting set."""
    groups: dict[str, list[CrifRecord]] = {}
    for record in records:
        groups.setdefault(record.portfolio_id, []).append(record)
    p = _parameters(parameters)
    return {
        portfolio: simm(group, p, side=side, calculation_currency=calculation_currency)
        for portfolio, group in groups.items()
    }
