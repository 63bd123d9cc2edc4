"""The issuer's hedge of a sold autocallable: at-the-money puts for vega, the underlyings for delta.

The issuer has sold the note at par and is short it, so its book before hedging has minus the
note's Greeks. Given the note's `delta`, `gamma` and `vega` per underlying in the units of
`engines.structured.pricing` (per note notional 1: delta per 100% relative move of the underlying,
gamma the second derivative in the same relative units, vega per vol point 0.01), the hedge is
built per underlying as in `engines.structured.stress` (its delta-and-vega hedge):

1. a European put struck at the money spot (strike 1 on the performance S/S0) with the note's
   maturity, valued by Black–Scholes at the underlying's ATM vol at that maturity, the zero rate
   of the curve and the dividend yield implied by the forward (cash dividends included); the issuer
   holds `vega_note / vega_put` of them (fraction of notional; negative = sold), which makes the book
   vega-neutral — an autocall's client is short a down-and-in put, so the issuer is long vega and
   usually sells puts;
2. shares (fraction of notional of equity exposure) for the delta the puts leave:
   `delta_note - puts × delta_put`, which makes the book delta-neutral.

The residual Greeks are the issuer's: `puts × greek_put + shares × greek_share - greek_note`
(shares have delta 1 and no gamma or vega), so residual delta and vega are zero up to rounding
and residual gamma is `puts × gamma_put - gamma_note`. `within_targets` compares their absolute
values with the desk's targets (delta 0 within 1e-9, gamma ±0.1, vega ±0.05).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from engines.common.black_scholes import black_scholes_delta, black_scholes_price
from engines.structured.market import MarketData, atm_total_variance, forward
from engines.structured.spec import AutocallSpec

VOL_POINT = 0.01
DELTA_TOLERANCE = 1e-9
"""Residual delta counted as zero (the hedge is delta-neutral by construction)."""


@dataclass(frozen=True)
class HedgeTargets:
    """Absolute bounds on the hedged book's Greeks per underlying (units of engines.structured.pricing)."""

    delta: float = 0.0
    gamma: float = 0.1
    vega: float = 0.05


@dataclass(frozen=True)
class PutGreeks:
    """Black–Scholes value and Greeks of the ATM put on the performance (per unit of notional, pricing's units)."""

    price: float
    delta: float
    gamma: float
    vega: float
    volatility: float
    rate: float
    dividend_yield: float


@dataclass(frozen=True)
class HedgeInstrument:
    """One hedge leg: quantity as a fraction of notional (negative = sold); strike as a fraction of spot;
    `price` the value of one unit per unit of notional (the put's Black–Scholes value; 1 for shares)."""

    instrument: Literal["atm_put", "shares"]
    underlying: str
    quantity: float
    strike: float | None
    maturity_years: float | None
    price: float = 0.0


@dataclass(frozen=True)
class Hedge:
    """The proposal: legs, the issuer's residual Greeks per underlying (in `underlyings` order), the verdict."""

    structure_id: str
    underlyings: list[str]
    instruments: list[HedgeInstrument]
    residual: dict[str, list[float]]
    targets: HedgeTargets
    within_targets: bool

    def to_dict(self) -> dict[str, Any]:
        """The event payload `HedgeProposal` (instruments, residual, targets, within_targets)."""
        return {
            "instruments": [asdict(i) for i in self.instruments],
            "residual": {k: list(v) for k, v in self.residual.items()},
            "targets": asdict(self.targets),
            "within_targets": self.within_targets,
        }


def atm_put_greeks(market: MarketData, name: str, maturity_years: float) -> PutGreeks:
    """Black–Scholes ATM put on S/S0 (spot 1, strike 1) of `name` with `maturity_years`, at the market's ATM vol.

    Rate: the curve's zero rate at maturity; dividend yield: the one that reproduces the forward
    (cash dividends included); vol: the ATM term structure's vol at maturity. Delta and gamma are per
    100% relative move (the put on the performance), vega per vol point.
    """
    t = float(maturity_years)
    u = market.underlyings[name]
    times, vols = u.atm_vols()
    vol = float(np.sqrt(atm_total_variance(times, vols, t) / t))
    r = float(market.rates.zero(t))
    q = r - float(np.log(forward(market, name, np.array([t]))[0] / u.spot)) / t
    sd = vol * np.sqrt(t)
    d1 = (r - q + 0.5 * vol * vol) * t / sd
    density = float(np.exp(-0.5 * d1 * d1) / np.sqrt(2 * np.pi))
    carry = float(np.exp(-q * t))
    return PutGreeks(
        price=float(black_scholes_price(1.0, 1.0, r, q, vol, t, "put")),
        delta=float(black_scholes_delta(1.0, 1.0, r, q, vol, t, "put")),
        gamma=carry * density / sd,
        vega=carry * density * np.sqrt(t) * VOL_POINT,
        volatility=vol,
        rate=r,
        dividend_yield=q,
    )


def _note_greeks(spec: AutocallSpec, greeks: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    n = len(spec.underlyings)
    out = {}
    for key in ("delta", "gamma", "vega"):
        if key not in greeks:
            raise ValueError(f"greeks.{key}: missing; give delta, gamma and vega per underlying")
        values = np.asarray(greeks[key], dtype=np.float64).reshape(-1)
        if values.size != n:
            raise ValueError(f"greeks.{key}: one value per underlying ({n}), got {values.size}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"greeks.{key}: values must be finite")
        out[key] = values
    return out


def hedge_proposal(
    spec: AutocallSpec,
    market: MarketData,
    greeks: Mapping[str, Sequence[float]],
    *,
    targets: HedgeTargets = HedgeTargets(),
) -> Hedge:
    """The vega-then-delta hedge of the issuer's short note and its residual Greeks (see the module docstring)."""
    missing = [u for u in spec.underlyings if u not in market.underlyings]
    if missing:
        raise KeyError(f"underlyings: no market data for {missing}; have {list(market.underlyings)}")
    note = _note_greeks(spec, greeks)
    t = spec.maturity_years
    puts = [atm_put_greeks(market, u, t) for u in spec.underlyings]
    put_delta = np.array([p.delta for p in puts])
    put_gamma = np.array([p.gamma for p in puts])
    put_vega = np.array([p.vega for p in puts])
    quantity = np.divide(note["vega"], put_vega, out=np.zeros_like(put_vega), where=put_vega > 0)
    shares = note["delta"] - quantity * put_delta
    residual = {
        "delta": quantity * put_delta + shares - note["delta"],
        "gamma": quantity * put_gamma - note["gamma"],
        "vega": quantity * put_vega - note["vega"],
    }
    within = bool(
        np.all(np.abs(residual["delta"]) <= max(targets.delta, DELTA_TOLERANCE))
        and np.all(np.abs(residual["gamma"]) <= targets.gamma)
        and np.all(np.abs(residual["vega"]) <= targets.vega)
    )
    instruments: list[HedgeInstrument] = []
    for a, u in enumerate(spec.underlyings):
        instruments.append(HedgeInstrument("atm_put", u, float(quantity[a]), 1.0, float(t), puts[a].price))
        instruments.append(HedgeInstrument("shares", u, float(shares[a]), None, None, 1.0))
    return Hedge(
        structure_id=spec.name,
        underlyings=list(spec.underlyings),
        instruments=instruments,
        residual={k: v.tolist() for k, v in residual.items()},
        targets=targets,
        within_targets=within,
    )
