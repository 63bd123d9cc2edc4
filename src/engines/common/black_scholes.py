"""Black–Scholes closed form for European calls and puts on an asset with a continuous dividend yield.

The reference every Monte Carlo engine of the platform is checked against, and the pricer agents
use directly for small work. All functions are vectorised: arguments broadcast with numpy rules,
and a result is a float when every argument is a scalar.

    d1 = (ln(S/K) + (r - q + σ²/2) T) / (σ √T),   d2 = d1 - σ √T
    call = S e^{-qT} N(d1) - K e^{-rT} N(d2),      put = K e^{-rT} N(-d2) - S e^{-qT} N(-d1)
    delta_call = e^{-qT} N(d1),                    delta_put = -e^{-qT} N(-d1)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from engines.registry import InvalidInputs, check_fields, register

OPTION_TYPES = ("call", "put")
_POSITIVE = ("spot", "strike", "volatility", "maturity_years")
_FIELDS = ("spot", "strike", "rate", "dividend_yield", "volatility", "maturity_years", "option")


def _arrays(
    spot: ArrayLike,
    strike: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
    volatility: ArrayLike,
    maturity_years: ArrayLike,
    option: ArrayLike,
) -> tuple[tuple[NDArray[np.float64], ...], NDArray[np.bool_], bool]:
    """Validated, broadcast float arrays of the inputs, the call mask, and whether all were scalars."""
    named = {
        "spot": spot,
        "strike": strike,
        "rate": rate,
        "dividend_yield": dividend_yield,
        "volatility": volatility,
        "maturity_years": maturity_years,
    }
    values: dict[str, NDArray[np.float64]] = {}
    for field, value in named.items():
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputs(field, f"must be a number or an array of numbers, got {value!r}") from None
        if not np.all(np.isfinite(arr)):
            raise InvalidInputs(field, "must be finite")
        if field in _POSITIVE and not np.all(arr > 0):
            raise InvalidInputs(field, f"must be positive, got {float(np.min(arr))!r}")
        values[field] = arr
    kinds = np.asarray(option)
    if kinds.dtype.kind not in "UO" or not np.all(np.isin(kinds, OPTION_TYPES)):
        raise InvalidInputs("option", f"must be 'call' or 'put', got {option!r}")
    try:
        *broadcast, is_call = np.broadcast_arrays(*values.values(), kinds == "call")
    except ValueError as exc:
        raise InvalidInputs("inputs", f"array shapes do not broadcast together: {exc}") from None
    scalar = all(np.ndim(v) == 0 for v in (*named.values(), option))
    return tuple(broadcast), is_call, scalar


def _out(value: NDArray[np.float64], scalar: bool) -> float | NDArray[np.float64]:
    return float(value) if scalar else value


def _d1(
    s: NDArray[np.float64],
    k: NDArray[np.float64],
    r: NDArray[np.float64],
    q: NDArray[np.float64],
    vol: NDArray[np.float64],
    t: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """d1 of Black–Scholes and the total standard deviation σ√T it is scaled by."""
    sd = vol * np.sqrt(t)
    return (np.log(s / k) + (r - q + 0.5 * vol * vol) * t) / sd, sd


def black_scholes_price(
    spot: ArrayLike,
    strike: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
    volatility: ArrayLike,
    maturity_years: ArrayLike,
    option: ArrayLike = "call",
) -> float | NDArray[np.float64]:
    """Present value of a European call or put (per unit of underlying), in the spot's currency.

    Rates and yields are continuously compounded decimals per year; `volatility` is annualised.
    Raises `InvalidInputs` naming the argument for non-positive spot, strike, volatility or
    maturity, non-finite numbers, or an option type other than "call"/"put".
    """
    (s, k, r, q, vol, t), is_call, scalar = _arrays(
        spot, strike, rate, dividend_yield, volatility, maturity_years, option
    )
    d1, sd = _d1(s, k, r, q, vol, t)
    d2 = d1 - sd
    forward_leg = s * np.exp(-q * t)
    strike_leg = k * np.exp(-r * t)
    call = forward_leg * ndtr(d1) - strike_leg * ndtr(d2)
    put = strike_leg * ndtr(-d2) - forward_leg * ndtr(-d1)
    return _out(np.where(is_call, call, put), scalar)


def black_scholes_delta(
    spot: ArrayLike,
    strike: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
    volatility: ArrayLike,
    maturity_years: ArrayLike,
    option: ArrayLike = "call",
) -> float | NDArray[np.float64]:
    """Sensitivity of the price to the spot (dimensionless: price units per unit of spot)."""
    (s, k, r, q, vol, t), is_call, scalar = _arrays(
        spot, strike, rate, dividend_yield, volatility, maturity_years, option
    )
    d1, _ = _d1(s, k, r, q, vol, t)
    carry = np.exp(-q * t)
    return _out(np.where(is_call, carry * ndtr(d1), -carry * ndtr(-d1)), scalar)


def _plain(value: float | NDArray[np.float64]) -> float | list[float]:
    return value if isinstance(value, float) else [float(v) for v in np.ravel(value)]


def _concatenate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Chunks priced different options: their prices and deltas one after the other, in chunk order."""
    if len(results) == 1:
        return results[0]
    out: dict[str, list[float]] = {"price": [], "delta": []}
    for i, result in enumerate(results):
        for field, values in out.items():
            if field not in result:
                raise ValueError(f"chunk {i}: result has no {field!r}")
            value = result[field]
            values.extend(value if isinstance(value, list) else [value])
    return out


@register("bs.european_option", combine=_concatenate)
def european_option_kind(inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """Black–Scholes price and delta of European options (numbers, or lists that broadcast)."""
    check_fields(inputs, _FIELDS)
    for field in _FIELDS[:-1]:
        value = inputs[field]
        if isinstance(value, bool) or isinstance(value, str | bytes | dict):
            raise InvalidInputs(field, f"must be a number or a list of numbers, got {value!r}")
    args = [inputs[f] for f in _FIELDS]
    return {"price": _plain(black_scholes_price(*args)), "delta": _plain(black_scholes_delta(*args))}
