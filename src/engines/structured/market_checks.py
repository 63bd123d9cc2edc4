"""The market strategist's checks of the market data a pricing will use, as a list of verdicts.

`MarketData` already refuses what cannot be priced at all (a quoted forward off by more than 0.1%,
unsorted curve nodes, a non-PSD correlation without repair, calendar arbitrage in an ATM term
structure). These checks go further and also report what is merely implausible, so that a desk
sees why it should doubt an input before it prices 75 variations on it. They run on any
`MarketData`, including one built without validation (`model_construct`), so each check also
repeats the hard limits it relies on.

Each check is a `MarketCheck(check, status, detail)` with status "ok", "warning" or "failed":

- `forwards`: quoted forwards against spot, rates and dividends (failed beyond the model's
  tolerance, else ok with the largest relative deviation); implied forwards must stay positive
  to 10 years (large cash dividends can make them negative).
- `rate_curve`: node times strictly increasing, zero rates in [-2%, 20%] (failed outside),
  discount factors non-increasing (a rise is expected under negative rates, else it means a
  negative forward rate: warning).
- `vol_arbitrage:<name>`: calendar and butterfly arbitrage of the quoted surface (the checks of
  `engines.common.volsurface.check_quotes`, strikes turned into forward log-moneyness), or
  calendar arbitrage of the ATM term structure when no surface is quoted.
- `skew:<name>`: the put wing (90% strike) above the ATM vol at every expiry, the normal
  equity skew; a flat or inverted skew, or none quoted, is a warning.
- `atm_vol:<name>`: ATM vols within historical ranges: warning outside 8%..60%, failed
  outside 3%..150%.
- `correlation_psd`: failed if not positive semi-definite and not repaired, warning if it is
  repaired (the size of the repair is reported), ok otherwise.
- `correlation_range`: every pairwise correlation within the historical range -0.3..0.98
  (warning otherwise).
- `underlying:<name>`: failed for every requested underlying the market does not have.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from engines.common.volsurface import VolQuotes, check_quotes
from engines.registry import InvalidInputs
from engines.structured.market import FORWARD_TOLERANCE, MarketData, atm_total_variance, forward, nearest_correlation

Status = Literal["ok", "warning", "failed"]

RATE_RANGE = (-0.02, 0.20)
"""Plausible continuously compounded zero rates (decimals): outside is a data error (e.g. percent, not decimal)."""
ATM_VOL_NORMAL = (0.08, 0.60)
"""ATM implied vols seen on equity indices outside extreme episodes: outside is a warning."""
ATM_VOL_LIMITS = (0.03, 1.50)
"""ATM implied vols beyond any historical equity-index level: outside is a failure."""
CORRELATION_RANGE = (-0.3, 0.98)
"""Historical range of pairwise equity-index correlations: outside is a warning."""
PSD_TOLERANCE = 1e-10
"""Lowest eigenvalue a correlation matrix may have and still count as positive semi-definite."""
PUT_WING_STRIKE = 0.9
"""Strike (fraction of spot) at which the put wing is compared with the ATM vol."""
FORWARD_HORIZONS = np.linspace(0.05, 10.0, 200)
"""Times (years) at which implied forwards must be positive."""


@dataclass(frozen=True)
class MarketCheck:
    """One verdict: what was checked, "ok" | "warning" | "failed", and why (with the numbers)."""

    check: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, str]:
        """The event payload `MarketCheck` (same field names)."""
        return asdict(self)


def market_is_usable(checks: Sequence[MarketCheck]) -> bool:
    """True when no check failed (warnings do not stop a pricing)."""
    return all(c.status != "failed" for c in checks)


def check_market(market: MarketData, underlyings: Sequence[str] | None = None) -> list[MarketCheck]:
    """Every check of the module docstring, for `underlyings` (all the market's when None).

    Per-underlying checks run on the requested underlyings the market has; the correlation checks
    on their sub-matrix (the whole matrix when `underlyings` is None).
    """
    names = list(market.underlyings) if underlyings is None else list(dict.fromkeys(underlyings))
    present = [n for n in names if n in market.underlyings]
    out = [MarketCheck(f"underlying:{n}", "failed", f"no market data for {n!r}; have {list(market.underlyings)}")
           for n in names if n not in market.underlyings]  # fmt: skip
    out.append(_check_forwards(market, present))
    out.append(_check_rate_curve(market))
    for name in present:
        out.append(_check_vol_arbitrage(market, name))
        out.append(_check_skew(market, name))
        out.append(_check_atm_vol(market, name))
    out.extend(_check_correlation(market, present if underlyings is not None else list(market.underlyings)))
    return out


def _check_forwards(market: MarketData, names: list[str]) -> MarketCheck:
    worst, where, quoted = 0.0, "", 0
    negative: list[str] = []
    for name in names:
        u = market.underlyings[name]
        implied = forward(market, name, FORWARD_HORIZONS)
        if np.any(implied <= 0):
            t = float(FORWARD_HORIZONS[int(np.argmax(implied <= 0))])
            negative.append(f"{name} from {t:.2f}y")
        if u.forwards:
            times = np.array([q.time for q in u.forwards])
            dev = np.array([q.forward for q in u.forwards]) / forward(market, name, times) - 1
            quoted += len(u.forwards)
            i = int(np.argmax(np.abs(dev)))
            if not where or abs(dev[i]) > abs(worst):
                worst, where = float(dev[i]), f"{name} at {times[i]:g}y"
    if negative:
        return MarketCheck("forwards", "failed", f"implied forwards are not positive: {', '.join(negative)}")
    if not quoted:
        return MarketCheck("forwards", "ok", "no quoted forwards; forwards implied by spot, rates and dividends")
    detail = (
        f"{quoted} quoted forwards; largest deviation from spot, rates and dividends {100 * worst:+.4f}% "
        f"({where}), tolerance {100 * FORWARD_TOLERANCE:g}%"
    )
    return MarketCheck("forwards", "failed" if abs(worst) > FORWARD_TOLERANCE else "ok", detail)


def _check_rate_curve(market: MarketData) -> MarketCheck:
    times = np.asarray(market.rates.times, dtype=np.float64)
    rates = np.asarray(market.rates.rates, dtype=np.float64)
    if times.size == 0 or times.size != rates.size or np.any(times <= 0) or np.any(np.diff(times) <= 0):
        return MarketCheck("rate_curve", "failed", f"node times must be positive and strictly increasing: {times}")
    if not np.all(np.isfinite(rates)):
        return MarketCheck("rate_curve", "failed", "zero rates must be finite")
    lo, hi = RATE_RANGE
    bad = np.flatnonzero((rates < lo) | (rates > hi))
    if bad.size:
        listed = ", ".join(f"{rates[i]:.4%} at {times[i]:g}y" for i in bad[:5])
        return MarketCheck("rate_curve", "failed", f"zero rates outside {lo:.0%}..{hi:.0%}: {listed}")
    grid = np.unique(np.concatenate([times, np.linspace(times[0], times[-1], 200)]))
    discount = np.exp(-market.rates.integral(grid))
    rises = np.flatnonzero(np.diff(discount) > 1e-14)
    span = f"{rates.min():.3%}..{rates.max():.3%} over {times[0]:g}..{times[-1]:g}y"
    if rises.size:
        where = f"between {grid[rises[0]]:.3g}y and {grid[rises[0] + 1]:.3g}y"
        if np.any(rates < 0):
            return MarketCheck("rate_curve", "ok", f"zero rates {span}; discount factors rise {where} (negative rates)")
        return MarketCheck(
            "rate_curve", "warning", f"zero rates {span}; discount factors rise {where}: negative forward rate"
        )
    return MarketCheck("rate_curve", "ok", f"zero rates {span}; discount factors decreasing")


def _check_vol_arbitrage(market: MarketData, name: str) -> MarketCheck:
    u = market.underlyings[name]
    check = f"vol_arbitrage:{name}"
    if u.surface is None:
        times, vols = u.atm_vols()
        variance = vols**2 * times
        drop = np.flatnonzero(np.diff(variance) < 0)
        if drop.size:
            i = int(drop[0]) + 1
            return MarketCheck(check, "failed", f"ATM total variance falls at {times[i]:g}y (calendar arbitrage)")
        return MarketCheck(check, "ok", "no surface quoted; ATM term structure free of calendar arbitrage")
    q = u.surface
    expiries = np.asarray(q.expiries, dtype=np.float64)
    try:
        quotes = VolQuotes.from_strikes(
            expiries, np.asarray(q.strikes) * u.spot, np.asarray(q.vols), forward(market, name, expiries)
        )
        check_quotes(quotes)
    except InvalidInputs as exc:
        return MarketCheck(check, "failed", f"surface.{exc.field.removeprefix('quotes.')}: {exc.reason}")
    return MarketCheck(
        check, "ok", f"{len(q.expiries)}x{len(q.strikes)} quotes free of calendar and butterfly arbitrage"
    )


def _check_skew(market: MarketData, name: str) -> MarketCheck:
    u = market.underlyings[name]
    check = f"skew:{name}"
    if u.surface is None:
        return MarketCheck(check, "warning", "no surface quoted: priced flat in strike, the put skew is ignored")
    strikes = np.asarray(u.surface.strikes, dtype=np.float64)
    vols = np.asarray(u.surface.vols, dtype=np.float64)
    if strikes.min() > PUT_WING_STRIKE or strikes.max() < 1.0:
        return MarketCheck(check, "warning", f"quotes do not span strikes {PUT_WING_STRIKE:g}..1: skew not checked")
    wing = np.array([np.interp(PUT_WING_STRIKE, strikes, row) for row in vols])
    atm = np.array([np.interp(1.0, strikes, row) for row in vols])
    skew = wing - atm
    if np.any(skew <= 0):
        i = int(np.argmin(skew))
        return MarketCheck(
            check,
            "warning",
            f"put wing ({PUT_WING_STRIKE:.0%} strike) at or below ATM at {u.surface.expiries[i]:g}y: "
            f"{wing[i]:.2%} vs {atm[i]:.2%} (flat or inverted skew)",
        )
    return MarketCheck(
        check,
        "ok",
        f"{PUT_WING_STRIKE:.0%}-strike vol above ATM by {skew.min():.2%}..{skew.max():.2%} (normal put skew)",
    )


def _check_atm_vol(market: MarketData, name: str) -> MarketCheck:
    times, vols = market.underlyings[name].atm_vols()
    check = f"atm_vol:{name}"
    listed = f"ATM vols {vols.min():.2%}..{vols.max():.2%} over {times.min():g}..{times.max():g}y"
    if vols.min() < ATM_VOL_LIMITS[0] or vols.max() > ATM_VOL_LIMITS[1]:
        return MarketCheck(check, "failed", f"{listed}: outside {ATM_VOL_LIMITS[0]:.0%}..{ATM_VOL_LIMITS[1]:.0%}")
    if vols.min() < ATM_VOL_NORMAL[0] or vols.max() > ATM_VOL_NORMAL[1]:
        return MarketCheck(
            check, "warning", f"{listed}: outside the usual {ATM_VOL_NORMAL[0]:.0%}..{ATM_VOL_NORMAL[1]:.0%}"
        )
    # the ATM term structure's total variance must not fall (the model refuses it; recheck unvalidated data)
    variance = atm_total_variance(times, vols, times)
    if np.any(np.diff(variance) < 0):
        return MarketCheck(check, "failed", f"{listed}: total variance falls (calendar arbitrage)")
    return MarketCheck(check, "ok", listed)


def _check_correlation(market: MarketData, names: list[str]) -> list[MarketCheck]:
    n = len(names)
    if n < 2:
        return [MarketCheck("correlation_psd", "ok", "a single underlying: no correlation needed")]
    if market.correlation is None:
        return [
            MarketCheck("correlation_psd", "warning", f"no correlation given: {names} priced as uncorrelated"),
        ]
    full = np.asarray(market.correlation, dtype=np.float64)
    all_names = list(market.underlyings)
    idx = [all_names.index(x) for x in names]
    sub = full[np.ix_(idx, idx)]
    if not np.all(np.isfinite(sub)) or not np.allclose(sub, sub.T, atol=1e-12) or not np.allclose(np.diag(sub), 1):
        return [MarketCheck("correlation_psd", "failed", "matrix must be finite, symmetric, with a unit diagonal")]
    lowest = float(np.linalg.eigvalsh(sub).min())
    if lowest >= -PSD_TOLERANCE:
        psd = MarketCheck("correlation_psd", "ok", f"positive semi-definite (lowest eigenvalue {lowest:.4g})")
        used = sub
    elif market.repair_correlation:
        used = nearest_correlation(sub)
        psd = MarketCheck(
            "correlation_psd",
            "warning",
            f"not positive semi-definite (lowest eigenvalue {lowest:.4g}); repaired to the nearest correlation "
            f"matrix, largest change {float(np.abs(used - sub).max()):.4f}",
        )
    else:
        return [
            MarketCheck(
                "correlation_psd",
                "failed",
                f"not positive semi-definite (lowest eigenvalue {lowest:.4g}) and repair_correlation is off",
            )
        ]
    lo, hi = CORRELATION_RANGE
    outside = [
        f"{names[i]}/{names[j]} {used[i, j]:.3f}"
        for i, j in itertools.combinations(range(n), 2)
        if not lo <= used[i, j] <= hi
    ]
    off = used[~np.eye(n, dtype=bool)]
    if outside:
        rng = MarketCheck(
            "correlation_range", "warning", f"outside the historical {lo:g}..{hi:g}: {', '.join(outside)}"
        )
    else:
        rng = MarketCheck("correlation_range", "ok", f"pairwise {off.min():.3f}..{off.max():.3f} within {lo:g}..{hi:g}")
    return [psd, rng]
