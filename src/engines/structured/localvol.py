"""Local-volatility inputs for the autocallable kernels: calibrated SSVI surfaces turned into Dupire grids.

Each underlying with implied-vol quotes gets an arbitrage-free SSVI surface calibrated to them
(an arbitrageable quote grid is refused, naming the quote); an underlying with only an ATM vol
term structure gets the flat surface of that term structure, whose local vol is its
Black–Scholes forward vol.

Skew steepening by a factor f scales every local vol's distance from the at-the-money local vol
of its date by f (floored at a quarter of the original vol): the skew and smile become f times
steeper and the ATM level stays. It acts on the local vols rather than on the SSVI parameters
because a positive local-vol function always defines an arbitrage-free model, whereas the SSVI
family is often calibrated at its no-arbitrage bound and has no room left to steepen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np

from engines.common.volsurface import SSVISurface, VolQuotes, calibrate_ssvi, flat_surface, local_vol_grid
from engines.registry import InvalidInputs
from engines.structured.market import MarketData, forward

GRID_TIMES_PER_YEAR = 24
GRID_LOG_MONEYNESS = np.linspace(-2.5, 1.0, 141)
ATM_INDEX = int(np.argmin(np.abs(GRID_LOG_MONEYNESS)))


def surface_of(market: MarketData, name: str) -> SSVISurface:
    """The SSVI surface of one underlying (calibrated to its quotes, or flat at its ATM term structure)."""
    u = market.underlyings[name]
    if u.surface is None:
        times, vols = u.atm_vols()
        surface = flat_surface(float(vols[0]), times) if len(vols) == 1 else None
        if surface is None:
            theta = vols**2 * times
            surface = SSVISurface(expiries=times, theta=theta, rho=0.0, eta=0.0, gamma=0.5)
        return surface
    q = u.surface
    expiries = np.asarray(q.expiries)
    strikes = np.outer(np.ones(len(expiries)), np.asarray(q.strikes) * u.spot)
    quotes = VolQuotes.from_strikes(expiries, strikes, np.asarray(q.vols), forward(market, name, expiries))
    try:
        return calibrate_ssvi(quotes)
    except InvalidInputs as exc:
        raise InvalidInputs(f"underlyings.{name}.surface.{exc.field}", exc.reason) from exc


def steepened(grid: np.ndarray, factor: float) -> np.ndarray:
    """The local-vol grid [time, log-moneyness] with its skew and smile scaled by `factor` (see the module doc)."""
    if factor == 1.0:
        return grid
    atm = grid[:, [ATM_INDEX]]
    return np.maximum(atm + factor * (grid - atm), 0.25 * grid)


def surfaces_for(market: MarketData, names: Iterable[str], horizon: float = 10.0) -> dict[str, object]:
    """Local-vol grids for `names`, as the simulation expects: 't', 'k' and, per name, skew → (grid, ATM vol)."""
    lv_t = np.linspace(0.0, horizon, int(horizon * GRID_TIMES_PER_YEAR) + 1)
    out: dict[str, object] = {"t": lv_t, "k": GRID_LOG_MONEYNESS}
    for name in sorted(set(names)):
        out[name] = _grid_function(surface_of(market, name), lv_t)
    return out


def _grid_function(surface: SSVISurface, lv_t: np.ndarray) -> Callable[[float], tuple[np.ndarray, float]]:
    # The row at t = 0 stands for the first interval: evaluated at its middle, because the short-expiry skew of
    # a power-law SSVI diverges at t → 0 and would overstate the first interval's local variance.
    rows_at = np.concatenate([[lv_t[1] / 2], lv_t[1:]])
    base = local_vol_grid(surface, rows_at, GRID_LOG_MONEYNESS)
    atm = float(surface.implied_vol(0.0, 1.0))

    @lru_cache(maxsize=8)
    def grid(skew: float) -> tuple[np.ndarray, float]:
        return np.ascontiguousarray(steepened(base, skew)), atm

    return grid
