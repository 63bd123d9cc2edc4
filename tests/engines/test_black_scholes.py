"""Black–Scholes closed form against published values, put–call parity and limit cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engines import registry
from engines.common.black_scholes import black_scholes_delta, black_scholes_price
from engines.registry import InvalidInputs

HULL = {"spot": 42.0, "strike": 40.0, "rate": 0.10, "dividend_yield": 0.0, "volatility": 0.20, "maturity_years": 0.5}


def test_hull_textbook_example_non_dividend_stock() -> None:
    # Hull, Options, Futures and Other Derivatives, the Black–Scholes–Merton chapter's worked
    # example: S = 42, K = 40, r = 10%, σ = 20%, six months: c = 4.76, p = 0.81.
    call = black_scholes_price(**HULL, option="call")
    put = black_scholes_price(**HULL, option="put")
    assert isinstance(call, float) and isinstance(put, float)
    assert call == pytest.approx(4.76, abs=0.005)
    assert put == pytest.approx(0.81, abs=0.005)


def test_hull_textbook_example_index_with_dividend_yield() -> None:
    # Hull, the stock-index options chapter's worked example: index 930, strike 900,
    # r = 8%, q = 3%, σ = 20%, two months: c = 51.83.
    call = black_scholes_price(930.0, 900.0, 0.08, 0.03, 0.20, 2 / 12, "call")
    assert call == pytest.approx(51.83, abs=0.005)


def test_put_call_parity_over_a_grid_with_dividends() -> None:
    spot = np.linspace(50.0, 150.0, 11)[:, None]
    strike = np.array([60.0, 100.0, 140.0])[None, :]
    for rate, q, vol, t in [(0.03, 0.0, 0.2, 1.0), (-0.005, 0.02, 0.45, 0.25), (0.08, 0.05, 0.1, 5.0)]:
        call = black_scholes_price(spot, strike, rate, q, vol, t, "call")
        put = black_scholes_price(spot, strike, rate, q, vol, t, "put")
        assert isinstance(call, np.ndarray) and call.shape == (11, 3)
        parity = spot * math.exp(-q * t) - strike * math.exp(-rate * t)
        np.testing.assert_allclose(call - put, parity, rtol=1e-10, atol=1e-10)


def test_zero_volatility_limit_is_discounted_intrinsic_value() -> None:
    s, k, r, q, t = 100.0, 90.0, 0.05, 0.01, 2.0
    forward_intrinsic = s * math.exp(-q * t) - k * math.exp(-r * t)
    assert black_scholes_price(s, k, r, q, 1e-8, t, "call") == pytest.approx(forward_intrinsic, rel=1e-9)
    assert black_scholes_price(s, k, r, q, 1e-8, t, "put") == pytest.approx(0.0, abs=1e-12)


def test_delta_matches_central_difference_and_parity() -> None:
    args = {"strike": 100.0, "rate": 0.02, "dividend_yield": 0.03, "volatility": 0.25, "maturity_years": 1.5}
    h = 1e-4
    for spot in (70.0, 100.0, 130.0):
        for option in ("call", "put"):
            fd = (
                black_scholes_price(spot + h, **args, option=option)
                - black_scholes_price(spot - h, **args, option=option)
            ) / (2 * h)
            assert black_scholes_delta(spot, **args, option=option) == pytest.approx(fd, abs=1e-7)
        # delta_call - delta_put = e^{-qT}
        gap = black_scholes_delta(spot, **args, option="call") - black_scholes_delta(spot, **args, option="put")
        assert gap == pytest.approx(math.exp(-0.03 * 1.5), rel=1e-12)


def test_option_type_broadcasts_elementwise() -> None:
    prices = black_scholes_price(42.0, 40.0, 0.1, 0.0, 0.2, 0.5, ["call", "put"])
    np.testing.assert_allclose(prices, [4.759422392871532, 0.8085993729000922], rtol=1e-12)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("spot", 0.0, "positive"),
        ("strike", -1.0, "positive"),
        ("volatility", 0.0, "positive"),
        ("maturity_years", -0.5, "positive"),
        ("rate", math.nan, "finite"),
        ("dividend_yield", math.inf, "finite"),
        ("spot", "abc", "number"),
    ],
)
def test_invalid_arguments_name_the_field(field: str, value: object, reason: str) -> None:
    args: dict[str, object] = {**HULL, field: value}
    with pytest.raises(InvalidInputs) as info:
        black_scholes_price(**args)  # type: ignore[arg-type]
    assert info.value.field == field
    assert reason in info.value.reason


def test_invalid_option_type_names_the_field() -> None:
    with pytest.raises(InvalidInputs) as info:
        black_scholes_price(**HULL, option="straddle")
    assert info.value.field == "option" and "'call' or 'put'" in str(info.value)


def test_registered_kind_prices_numbers_and_lists_and_concatenates_chunks() -> None:
    one = registry.run("bs.european_option", {**HULL, "option": "call"}, None)
    assert one["price"] == pytest.approx(4.7594223929, rel=1e-10)
    assert one["delta"] == pytest.approx(0.7791312909, rel=1e-9)
    strip = registry.run("bs.european_option", {**HULL, "strike": [38.0, 40.0, 44.0], "option": "put"}, None)
    assert len(strip["price"]) == 3 and strip["price"][1] == pytest.approx(0.8085993729, rel=1e-9)
    combined = registry.combine("bs.european_option", [one, strip])
    assert combined["price"] == [one["price"], *strip["price"]]
    assert combined["delta"] == [one["delta"], *strip["delta"]]


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({k: v for k, v in HULL.items() if k != "strike"} | {"option": "call"}, "strike"),
        (HULL | {"option": "call", "vol": 0.2}, "vol"),
        (HULL | {"option": "call", "spot": True}, "spot"),
        (HULL | {"option": "binary"}, "option"),
        (HULL | {"option": "call", "maturity_years": 0}, "maturity_years"),
    ],
)
def test_registered_kind_rejects_bad_inputs_naming_the_field(inputs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputs) as info:
        registry.run("bs.european_option", inputs, None)
    assert info.value.field == field
