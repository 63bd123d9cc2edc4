"""SIMM sensitivities of a margin book: the loadings of the positions at bilateral counterparties
translated into CRIF records, and the SIMM initial margin of every bilateral counterparty.

A `MarginBook` loads positions on factors whose ids follow one grammar (see `engines.margin.arrays`);
each loading becomes one CRIF record (TradeID = position id, PortfolioID = venue name, ProductClass
from the position's asset class: rates and FX → RatesFX, credit → Credit, equity → Equity,
commodity → Commodity) in the units SIMM expects:

- ``IR.<CCY>.<tenor>`` (delta per unit absolute rate change) → Risk_IRCurve, Label1 the tenor in
  SIMM's spelling (``10Y`` → ``10y``), Label2 ``OIS`` (one curve per currency; sub-curves only
  matter between curves), amount per 1 bp = delta·1e-4.
- ``FX.<CCY>USD`` (delta per unit log return of the currency in USD) → Risk_FX, Qualifier CCY,
  amount per 1% = delta·0.01.
- ``EQ.<index>`` → Risk_Equity in bucket 11 (indices, funds, ETFs), or 12 for a volatility index
  (`VOLATILITY_INDICES`); amount per 1% = delta·0.01.
- ``CM.<name>`` → Risk_Commodity in the bucket `commodity_bucket` finds from the name (16, "Other",
  when it does not know it); amount per 1% = delta·0.01.
- ``CR.<index>.5Y`` (delta per unit absolute spread change) → Risk_CreditQ, Label1 5y, amount per
  1 bp = delta·1e-4, in the bucket `credit_index_bucket` chooses: the book's credit factors are
  indices without look-through to their names, so an investment-grade corporate index goes to the
  investment-grade corporate bucket with the highest risk weight (2, financials), a high-yield or
  crossover index to the high-yield corporate bucket with the highest (8), a sovereign index to 1.
  Conservative (a diversified index is charged as its riskiest sector) and stable.
- ``VOL.IR.<CCY>`` (delta per unit log change of implied vol, i.e. vega·σ) → Risk_IRVol: SIMM's
  interest-rate vega is vega times implied volatility, so the amount is the loading itself.
- ``VOL.EQ.<index>`` → Risk_EquityVol: SIMM's equity vega is the change in value for one vol point
  (0.01 of absolute volatility) = ∂V/∂σ·0.01 = loading·0.01/σ, which needs the implied volatility
  σ: `implied_vols` gives it per factor id, `DEFAULT_IMPLIED_VOL` otherwise.

The book carries no option expiries, so vega records take Label1 `vega_expiry` (1y by default); the
expiry only changes the curvature scaling SF(t) and the tenor correlations of interest-rate vega.
Gammas are not used: SIMM derives curvature from vega.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from engines.margin.arrays import ASSET_CLASSES, MarginBook
from engines.margin.simm.calculator import simm
from engines.margin.simm.crif import CrifRecord
from engines.margin.simm.parameters import SimmParameters
from engines.margin.simm.result import Side, SimmResult

DEFAULT_IMPLIED_VOL: Final = 0.20
"""Implied volatility (decimal) assumed for a VOL.EQ factor missing from `implied_vols`."""

VOLATILITY_INDICES: Final = frozenset({"VIX", "VSTOXX", "V2X", "VXN", "VXD", "VHSI", "VNKY", "VXJ", "VFTSE"})
"""Equity index names placed in SIMM equity bucket 12 (volatility indices)."""

PRODUCT_CLASS_OF: Final = {"rates": "RatesFX", "fx": "RatesFX", "equity": "Equity", "credit": "Credit",
                           "commodity": "Commodity"}  # fmt: skip

IR_TENORS: Final = ("2w", "1m", "3m", "6m", "1y", "2y", "3y", "5y", "10y", "15y", "20y", "30y")

_COMMODITY_BUCKETS: Final = (  # the more specific words first: GASOIL is a distillate, not crude oil or gas
    ("1", ("COAL",)),
    ("4", ("GASOIL", "DIESEL", "HEATING", "JET", "KEROSENE", "ULSD", "DISTILLATE")),
    ("5", ("FUELOIL", "FUEL_OIL", "BUNKER", "HEAVY")),
    ("3", ("NAPHTHA", "PROPANE", "ETHANE", "BUTANE", "GASOLINE", "RBOB")),
    ("2", ("WTI", "BRENT", "CRUDE", "OIL")),
    ("7", ("TTF", "NBP", "PEG", "EU_GAS", "EUGAS")),
    ("6", ("HENRY", "NATGAS", "NAT_GAS", "GAS")),
    ("9", ("EEX", "EPEX", "NORDPOOL", "EU_POWER", "EUPOWER")),
    ("8", ("PJM", "ERCOT", "CAISO", "MISO", "POWER", "ELECTRICITY")),
    ("10", ("FREIGHT", "BALTIC", "TANKER", "CAPESIZE", "PANAMAX")),
    ("12", ("GOLD", "SILVER", "PLATINUM", "PALLADIUM", "XAU", "XAG", "XPT", "XPD")),
    ("11", ("COPPER", "ALUMIN", "NICKEL", "ZINC", "LEAD", "TIN", "IRON", "STEEL")),
    ("13", ("CORN", "WHEAT", "SOY", "RICE", "OATS", "CANOLA", "GRAIN")),
    ("14", ("SUGAR", "COFFEE", "COCOA", "COTTON", "JUICE", "RUBBER")),
    ("15", ("CATTLE", "HOG", "LIVESTOCK", "PORK", "MILK", "DAIRY")),
    ("17", ("BCOM", "GSCI", "CRB")),
)


def commodity_bucket(name: str) -> str:
    """SIMM commodity bucket of a commodity named `name` (by keywords; 16, Other, when none matches)."""
    upper = name.upper()
    for bucket, words in _COMMODITY_BUCKETS:
        if any(w in upper for w in words):
            return bucket
    return "16"


def credit_index_bucket(name: str) -> str:
    """SIMM credit-qualifying bucket of a credit index without look-through (see the module docstring)."""
    upper = name.upper().replace("-", "").replace("_", "").replace(" ", "")
    if "SOV" in upper:
        return "1"
    if any(w in upper for w in ("HY", "XOVER", "CROSSOVER", "HIGHYIELD", "EM")):
        return "8"
    return "2"


@dataclass(frozen=True)
class _Translation:
    risk_type: str
    qualifier: str
    bucket: str
    label1: str
    label2: str
    scale: float


def _translate(factor: str, where: str, implied_vols: Mapping[str, float], vega_expiry: str) -> _Translation:
    parts = factor.split(".")
    kind = parts[0]
    if kind == "IR" and len(parts) == 3 and len(parts[1]) == 3:
        tenor = parts[2].lower()
        if tenor not in IR_TENORS:
            raise ValueError(f"{where}: {factor!r}: tenor {parts[2]!r} is not a SIMM tenor ({', '.join(IR_TENORS)})")
        return _Translation("Risk_IRCurve", parts[1], "", tenor, "OIS", 1e-4)
    if kind == "FX" and len(parts) == 2 and len(parts[1]) == 6 and parts[1].endswith("USD") and parts[1] != "USDUSD":
        return _Translation("Risk_FX", parts[1][:3], "", "", "", 0.01)
    if kind == "EQ" and len(parts) >= 2:
        name = ".".join(parts[1:])
        return _Translation("Risk_Equity", name, _equity_bucket(name), "", "", 0.01)
    if kind == "CM" and len(parts) >= 2:
        name = ".".join(parts[1:])
        return _Translation("Risk_Commodity", name, commodity_bucket(name), "", "", 0.01)
    if kind == "CR" and len(parts) >= 3 and parts[-1].upper() == "5Y":
        name = ".".join(parts[1:-1])
        return _Translation("Risk_CreditQ", name, credit_index_bucket(name), "5y", "", 1e-4)
    if kind == "VOL" and len(parts) == 3 and parts[1] == "IR" and len(parts[2]) == 3:
        return _Translation("Risk_IRVol", parts[2], "", vega_expiry, "", 1.0)
    if kind == "VOL" and len(parts) >= 3 and parts[1] == "EQ":
        name = ".".join(parts[2:])
        vol = implied_vols.get(factor, DEFAULT_IMPLIED_VOL)
        if not (isinstance(vol, int | float) and 0.0 < vol < 10.0):
            raise ValueError(f"implied_vols: {factor}: an implied volatility in decimals (0.2 = 20%), got {vol!r}")
        return _Translation("Risk_EquityVol", name, _equity_bucket(name), vega_expiry, "", 0.01 / vol)
    raise ValueError(
        f"{where}: {factor!r} does not follow the factor grammar (IR.<CCY>.<tenor>, FX.<CCY>USD, EQ.<index>, "
        "CM.<name>, CR.<index>.5Y, VOL.IR.<CCY>, VOL.EQ.<index>)"
    )


def _equity_bucket(name: str) -> str:
    return "12" if name.upper() in VOLATILITY_INDICES else "11"


def _bilateral_venues(arrays: MarginBook, venue: int | None) -> np.ndarray:
    n = len(arrays.venues)
    if venue is None:
        return np.flatnonzero(~np.asarray(arrays.venue_is_ccp, dtype=bool))
    if isinstance(venue, bool) or not isinstance(venue, int | np.integer) or not 0 <= venue < n:
        raise ValueError(f"venue: an index in [0, {n}), got {venue!r}")
    if arrays.venue_is_ccp[venue]:
        raise ValueError(f"venue: {arrays.venues[venue]} (index {venue}) is a CCP; SIMM applies to bilateral venues")
    return np.array([venue])


def crif_from_book(
    arrays: MarginBook,
    venue: int | None = None,
    *,
    implied_vols: Mapping[str, float] | None = None,
    vega_expiry: str = "1y",
) -> list[CrifRecord]:
    """CRIF records of the positions at bilateral venue `venue` (every bilateral venue when None).

    One record per position and factor with a non-zero loading, in position then factor order.
    Raises ValueError naming the venue, a factor outside the grammar or a bad implied vol.
    """
    return [r for _, r in _venue_records(arrays, _bilateral_venues(arrays, venue), implied_vols, vega_expiry)]


def _venue_records(
    arrays: MarginBook, venues: np.ndarray, implied_vols: Mapping[str, float] | None, vega_expiry: str
) -> list[tuple[int, CrifRecord]]:
    if vega_expiry not in IR_TENORS:
        raise ValueError(f"vega_expiry: one of {', '.join(IR_TENORS)}, got {vega_expiry!r}")
    vols = dict(implied_vols or {})
    chosen = np.zeros(len(arrays.venues), dtype=bool)
    chosen[venues] = True
    pos = np.asarray(arrays.load_position)
    fac = np.asarray(arrays.load_factor)
    delta = np.asarray(arrays.load_delta, dtype=np.float64)
    keep = chosen[arrays.position_venue[pos]] & (delta != 0.0)
    if not keep.any():
        return []
    pos, fac, delta = pos[keep], fac[keep], delta[keep]
    order = np.lexsort((fac, pos))
    pos, fac, delta = pos[order], fac[order], delta[order]
    # one record per (position, factor): sum repeated loadings
    first = np.ones(len(pos), dtype=bool)
    first[1:] = (pos[1:] != pos[:-1]) | (fac[1:] != fac[:-1])
    starts = np.flatnonzero(first)
    sums = np.add.reduceat(delta, starts)
    pos, fac = pos[starts], fac[starts]
    translations: dict[int, _Translation] = {}
    records: list[tuple[int, CrifRecord]] = []
    for p, f, d in zip(pos.tolist(), fac.tolist(), sums.tolist(), strict=True):
        if d == 0.0:
            continue
        t = translations.get(f)
        if t is None:
            t = translations[f] = _translate(arrays.factors[f], f"factors[{f}]", vols, vega_expiry)
        amount = d * t.scale
        v = int(arrays.position_venue[p])
        records.append(
            (
                v,
                CrifRecord(
                    risk_type=t.risk_type,
                    qualifier=t.qualifier,
                    bucket=t.bucket,
                    label1=t.label1,
                    label2=t.label2,
                    amount=amount,
                    amount_currency="USD",
                    amount_usd=amount,
                    product_class=PRODUCT_CLASS_OF[ASSET_CLASSES[int(arrays.position_class[p])]],
                    trade_id=arrays.position_ids[p],
                    portfolio_id=arrays.venues[v],
                    im_model="SIMM",
                ),
            )
        )
    return records


def simm_by_counterparty(
    arrays: MarginBook,
    *,
    side: Side = "post",
    parameters: SimmParameters | str | None = None,
    implied_vols: Mapping[str, float] | None = None,
    vega_expiry: str = "1y",
) -> dict[int, SimmResult]:
    """The SIMM initial margin of every bilateral venue (``venue_is_ccp`` False), keyed by venue index.

    By default the margin the fund posts (``side="post"``: its sensitivities negated, the
    counterparty's view); ``side="call"`` gives what it collects. Delta and vega margins are the same
    on both sides; curvature differs (a book short options posts curvature margin, a long one collects
    it). A venue with no positions gets a zero result. `result.total_usd` is the figure to use; the
    CSA's choice of no regulatory IM (``CsaTerms.initial_margin == "none"``) is the caller's to apply.
    """
    venues = _bilateral_venues(arrays, None)
    by_venue: dict[int, list[CrifRecord]] = {int(v): [] for v in venues}
    for v, record in _venue_records(arrays, venues, implied_vols, vega_expiry):
        by_venue[v].append(record)
    return {v: simm(records, parameters, side=side) for v, records in by_venue.items()}
