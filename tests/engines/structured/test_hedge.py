"""The issuer's vega-then-delta hedge: closed-form checks on a note that is exactly a short ATM put.

Units are those of engines.structured.pricing (per note notional 1): delta per 100% relative move,
gamma in the same relative units, vega per vol point. The issuer is short the note, so a note that
is a short put (the client sold it) leaves the issuer long that put: the hedge sells one.
The put's Greeks are rebuilt here independently of the module: delta from the closed form,
gamma and vega by central differences of the Black–Scholes price.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bus.events.structured import HedgeProposal
from engines.common.black_scholes import black_scholes_delta, black_scholes_price
from engines.structured.hedge import HedgeTargets, atm_put_greeks, hedge_proposal
from engines.structured.market import MarketData, atm_total_variance, forward
from engines.structured.spec import AutocallSpec

MARKET = MarketData.model_validate_json(Path("src/risklab/data/structured/market.json").read_text())
T = 5.0


def _put_greeks(name: str, t: float = T) -> dict[str, float]:
    """Black–Scholes ATM put on S/S0 at the market's ATM vol, zero rate and forward-implied dividend yield."""
    u = MARKET.underlyings[name]
    times, vols = u.atm_vols()
    vol = float(np.sqrt(atm_total_variance(times, vols, t) / t))
    r = float(MARKET.rates.zero(t))
    q = r - float(np.log(forward(MARKET, name, np.array([t]))[0] / u.spot)) / t

    def price(x: float = 1.0, v: float = vol) -> float:
        return float(black_scholes_price(x, 1.0, r, q, v, t, "put"))

    h = 1e-4
    return {
        "delta": float(black_scholes_delta(1.0, 1.0, r, q, vol, t, "put")),
        "gamma": (price(1 + h) - 2 * price() + price(1 - h)) / h**2,
        "vega": (price(v=vol + h) - price(v=vol - h)) / (2 * h) * 0.01,
    }


def _spec(*names: str) -> AutocallSpec:
    return AutocallSpec(name="note", underlyings=list(names), maturity_years=T)


def _short_put_note(*names: str) -> dict[str, list[float]]:
    """The Greeks of a note that is exactly a short ATM put on each underlying (client's side)."""
    puts = [_put_greeks(n) for n in names]
    return {k: [-p[k] for p in puts] for k in ("delta", "gamma", "vega")}


def test_put_greeks_match_an_independent_closed_form() -> None:
    mine = atm_put_greeks(MARKET, "SX5E", T)
    ref = _put_greeks("SX5E")
    assert mine.delta == pytest.approx(ref["delta"], abs=1e-12)
    assert mine.gamma == pytest.approx(ref["gamma"], rel=1e-5)
    assert mine.vega == pytest.approx(ref["vega"], rel=1e-7)


def test_a_short_put_note_is_hedged_by_selling_one_put_with_zero_residual() -> None:
    hedge = hedge_proposal(_spec("SX5E"), MARKET, _short_put_note("SX5E"))
    put, shares = hedge.instruments
    assert (put.instrument, put.underlying, put.strike, put.maturity_years) == ("atm_put", "SX5E", 1.0, T)
    assert put.quantity == pytest.approx(-1.0, abs=1e-6)
    assert put.price == pytest.approx(black_scholes_price(1.0, 1.0, *_rq("SX5E"), _vol("SX5E"), T, "put"))
    assert shares.instrument == "shares" and shares.quantity == pytest.approx(0.0, abs=1e-7)
    for greek in ("delta", "gamma", "vega"):
        assert hedge.residual[greek][0] == pytest.approx(0.0, abs=1e-5), greek
    assert hedge.within_targets


def _rq(name: str) -> tuple[float, float]:
    r = float(MARKET.rates.zero(T))
    return r, r - float(np.log(forward(MARKET, name, np.array([T]))[0] / MARKET.underlyings[name].spot)) / T


def _vol(name: str) -> float:
    times, vols = MARKET.underlyings[name].atm_vols()
    return float(np.sqrt(atm_total_variance(times, vols, T) / T))


def test_residuals_are_the_issuer_side_of_note_minus_puts() -> None:
    greeks = {"delta": [0.35, 0.2], "gamma": [-1.7, 0.4], "vega": [-0.004, -0.002]}
    hedge = hedge_proposal(_spec("SX5E", "SPX"), MARKET, greeks)
    puts = [i for i in hedge.instruments if i.instrument == "atm_put"]
    shares = [i for i in hedge.instruments if i.instrument == "shares"]
    assert [p.underlying for p in puts] == ["SX5E", "SPX"] == [s.underlying for s in shares]
    for a, name in enumerate(("SX5E", "SPX")):
        g = atm_put_greeks(MARKET, name, T)
        q = puts[a].quantity
        assert q == pytest.approx(greeks["vega"][a] / g.vega)  # vega-neutral per underlying
        assert q < 0  # the issuer is long the note's short vega: it sells puts
        assert shares[a].quantity == pytest.approx(greeks["delta"][a] - q * g.delta)
        # issuer's residual gamma = -(note gamma - put gamma x quantity)
        assert hedge.residual["gamma"][a] == pytest.approx(-(greeks["gamma"][a] - g.gamma * q))
        assert abs(hedge.residual["delta"][a]) <= 1e-12
        assert abs(hedge.residual["vega"][a]) <= 1e-15
    assert not hedge.within_targets  # residual gamma of about 1.7 on SX5E is far outside ±0.1


@pytest.mark.parametrize(("extra_gamma", "within"), [(0.0, True), (-0.09, True), (-0.11, False), (0.11, False)])
def test_within_targets_flips_when_gamma_exceeds_the_bound(extra_gamma: float, within: bool) -> None:
    greeks = _short_put_note("SX5E")
    greeks["gamma"][0] += extra_gamma
    hedge = hedge_proposal(_spec("SX5E"), MARKET, greeks)
    assert hedge.residual["gamma"][0] == pytest.approx(-extra_gamma, abs=1e-5)
    assert hedge.within_targets is within
    assert hedge_proposal(_spec("SX5E"), MARKET, greeks, targets=HedgeTargets(gamma=0.2)).within_targets


def test_payload_matches_the_event_and_bad_greeks_are_refused() -> None:
    hedge = hedge_proposal(_spec("SX5E", "NKY"), MARKET, _short_put_note("SX5E", "NKY"))
    payload = HedgeProposal.model_validate(hedge.to_dict())
    assert payload.targets == {"delta": 0.0, "gamma": 0.1, "vega": 0.05}
    assert len(payload.instruments) == 4 and payload.within_targets
    with pytest.raises(ValueError, match=r"greeks\.vega"):
        hedge_proposal(_spec("SX5E"), MARKET, {"delta": [0.1], "gamma": [0.0]})
    with pytest.raises(ValueError, match=r"greeks.delta: one value per underlying \(2\)"):
        hedge_proposal(_spec("SX5E", "SPX"), MARKET, {"delta": [0.1], "gamma": [0, 0], "vega": [0, 0]})
    with pytest.raises(KeyError, match="XYZ"):
        hedge_proposal(_spec("XYZ"), MARKET, {"delta": [0.1], "gamma": [0.0], "vega": [0.0]})
