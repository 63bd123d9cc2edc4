"""`risklab structured`: the bundled sample market and spec, the price/lab/stress/kid commands, and their refusals.

Commands run in-process through typer's `CliRunner` on the real `risklab` app (so the sub-app's wiring is
tested too) with small path counts. `--json` output is parsed from stdout alone; messages go to stderr.
Refusals must be one line naming the file or option and the field, with exit code 1 (data) or 2 (options)
and no traceback.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from engines.structured.lab import MIN_VARIATIONS
from engines.structured.localvol import surface_of
from engines.structured.market import MarketData
from engines.structured.spec import AutocallSpec
from risklab.cli import app
from risklab.structured_samples import (
    SAMPLE_MARKET,
    SAMPLE_SPEC,
    SpecFileError,
    lab_variations,
    load_scenarios,
    load_specs,
    sample_file,
    sample_market,
    sample_spec,
)

PATHS = "2048"
NAMES = ["SX5E", "SPX", "NKY", "SMI", "UKX"]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["structured", *args])


def said(text: str) -> str:
    """Printed text as one line (rich wraps long messages at the terminal width)."""
    return " ".join(_ANSI.sub("", text).split())


def refused(result: Result, code: int = 1) -> str:
    """The error line of a refused command, after checking the exit code and that no traceback leaked."""
    message = said(result.stderr)
    assert result.exit_code == code, (result.exit_code, message, result.stdout)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return message


def spec_dict(**changes: Any) -> dict[str, Any]:
    return {**json.loads(sample_file(SAMPLE_SPEC).read_text()), **changes}


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    return write(tmp_path / "autocall.json", spec_dict())


@pytest.fixture
def two_specs(tmp_path: Path) -> Path:
    second = spec_dict(name="WO SX5E/SMI 3y", underlyings=["SX5E", "SMI"], maturity_years=3.0)
    return write(tmp_path / "two.json", {"specs": [spec_dict(), second]})


# -- the bundled sample -----------------------------------------------------------------------


def test_bundled_files_are_package_data() -> None:
    assert sample_file(SAMPLE_MARKET).is_file()
    assert sample_file(SAMPLE_SPEC).is_file()


def test_bundled_market_validates_and_every_surface_calibrates() -> None:
    market = MarketData.model_validate_json(sample_file(SAMPLE_MARKET).read_text())
    assert market == sample_market()
    assert market.currency == "EUR" and market.names == NAMES
    assert 0.015 <= min(market.rates.rates) and max(market.rates.rates) <= 0.03
    corr = np.asarray(market.correlation)
    off = corr[~np.eye(5, dtype=bool)]
    assert off.min() >= 0.4 and off.max() <= 0.8
    assert np.linalg.eigvalsh(corr).min() > 0
    for name in NAMES:
        u = market.underlyings[name]
        assert bool(u.dividends) == (name == "SX5E")
        surface = surface_of(market, name)  # calibrates the SSVI to the quotes; raises on arbitrage
        surface.check_arbitrage()
        assert -0.8 <= surface.rho <= -0.6 and 0.9 <= surface.eta <= 1.2 and 0.3 <= surface.gamma <= 0.5
        q = u.surface
        assert q is not None and q.expiries[0] == 0.25 and q.expiries[-1] == 7.0
        assert q.strikes[0] == 0.5 and q.strikes[-1] == 1.5
        vols = np.asarray(q.vols)
        assert np.all(vols[:, 0] > vols[:, q.strikes.index(1.0)])  # equity skew: downside vols above ATM
        # the ATM term structure is the surface's at-the-money (strike = spot) column, within ATM vols of 15-22%
        assert isinstance(u.volatility, list)
        times, atm = u.atm_vols()
        assert list(times) == q.expiries
        np.testing.assert_allclose(atm, vols[:, q.strikes.index(1.0)], atol=1e-12)
        assert 0.15 <= atm.min() and atm.max() <= 0.225
        fitted = surface.implied_vol(0.0, np.asarray(q.expiries))
        assert np.all(np.abs(fitted - atm) < 0.01)


def test_bundled_spec_is_the_desk_design() -> None:
    spec = sample_spec()
    assert AutocallSpec.model_validate_json(sample_file(SAMPLE_SPEC).read_text()) == spec
    assert spec.underlyings == ["SX5E", "SPX", "NKY"] and spec.basket == "worst_of"
    assert spec.notional == 1_000_000 and spec.currency == "EUR" and spec.funding_spread == 0.008
    assert len(spec.observation_times()) == 20
    triggers = spec.triggers()
    assert np.all(np.isinf(triggers[:4]))
    np.testing.assert_allclose(triggers[4:], np.maximum(1.0 - 0.025 * np.arange(16), 0.8))
    assert spec.coupon.rate == 0.07 and spec.coupon.memory and spec.coupon.conditional and spec.coupon.barrier == 0.7
    assert spec.knock_in is not None and spec.knock_in.barrier == 0.6 and spec.knock_in.monitoring == "european"


# -- loaders ----------------------------------------------------------------------------------


def test_spec_files_come_in_four_shapes(tmp_path: Path) -> None:
    one = spec_dict()
    assert len(load_specs(write(tmp_path / "one.json", one))) == 1
    assert len(load_specs(write(tmp_path / "list.json", [one, {**one, "name": "b"}]))) == 2
    assert len(load_specs(write(tmp_path / "specs.json", {"specs": [one]}))) == 1
    lab = {"base": one, "grid": {"barriers": [0.5, 0.6], "coupons": [0.06], "triggers": []}}
    assert [s.name for s in load_specs(write(tmp_path / "lab.json", lab))] == [
        f"{one['name']}[ki0.5 cpn0.06]",
        f"{one['name']}[ki0.6 cpn0.06]",
    ]
    assert len(lab_variations(tmp_path / "one.json")) >= MIN_VARIATIONS


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"specs": []}, "specs: give at least one spec"),
        ({"specs": [spec_dict()], "market": {}}, "unexpected key(s) market next to specs"),
        ({"base": spec_dict(), "grid": {"barriers": [0.9]}}, "grid: lab variation"),
        ({"base": spec_dict(), "grid": {"barrier": [0.5]}}, "grid.barrier: unknown field"),
        ({"base": spec_dict(), "extra": 1}, "unexpected key(s) extra: a lab file holds base and grid"),
        ([spec_dict(), {**spec_dict(), "notional": -1}], "[1].notional: Input should be greater than 0"),
        ({"specs": [{**spec_dict(), "basket": "rainbow"}]}, "specs[0].basket: Input should be"),
        ({**spec_dict(), "underlyings": []}, "underlyings: List should have at least 1 item"),
        ({**spec_dict(), "colour": "red"}, "colour: unknown field"),
        ({k: v for k, v in spec_dict().items() if k != "underlyings"}, "underlyings: missing (a required field)"),
        (42, "a spec file holds a spec object"),
    ],
)
def test_bad_spec_files_are_refused_naming_file_and_field(tmp_path: Path, content: Any, expected: str) -> None:
    path = write(tmp_path / "specs.json", content)
    with pytest.raises(SpecFileError) as info:
        load_specs(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_scenario_files_are_validated(tmp_path: Path) -> None:
    good = write(tmp_path / "s.json", [{"name": "a", "spot_move": -0.3}, {"name": "b"}])
    assert [s.name for s in load_scenarios(good)] == ["a", "b"]
    with pytest.raises(SpecFileError, match=r"s2\.json: \[1\]\.spot_move: Input should be greater than -1"):
        load_scenarios(write(tmp_path / "s2.json", [{"name": "a"}, {"name": "b", "spot_move": -1.5}]))
    with pytest.raises(SpecFileError, match="scenario names must be distinct, repeated: a"):
        load_scenarios(write(tmp_path / "s3.json", [{"name": "a"}, {"name": "a"}]))


# -- price ------------------------------------------------------------------------------------


def test_price_json_on_the_bundled_sample(spec_path: Path) -> None:
    result = invoke("price", str(spec_path), "--paths", PATHS, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no progress bar with --json
    (r,) = json.loads(result.stdout)
    assert 0.5 < r["price"] < 1.2 and 0 < r["stderr"] < 0.02
    assert r["paths"] == 2048 and r["model"] == "bs" and r["sampler"] == "sobol"
    assert 0.03 < r["fair_coupon"] < 0.2
    assert len(r["autocall_probability"]) == 20 and sum(r["autocall_probability"][:4]) == 0
    assert 0 < r["knock_in_probability"] < 1 and 1 < r["expected_life_years"] <= 5
    assert len(r["greeks"]["delta"]) == 3 and all(d > 0 for d in r["greeks"]["delta"])
    assert len(r["greeks"]["vega"]) == 3 and set(r["greeks"]) == {"delta", "vega"}


def test_price_options_reach_the_engine(two_specs: Path) -> None:
    args = ["price", str(two_specs), "--paths", PATHS, "--seed", "7", "--model", "localvol", "--sampler", "pseudo"]
    result = invoke(*args, "--greeks", "rho,correlation", "--margin", "0.02", "--json")
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert [r["name"] for r in results] == ["WO SX5E/SPX/NKY 5y Phoenix 7% memory", "WO SX5E/SMI 3y"]
    for r in results:
        assert (r["seed"], r["model"], r["sampler"]) == (7, "localvol", "pseudo")
        assert set(r["greeks"]) == {"rho", "correlation"} and math.isfinite(r["greeks"]["rho"])
        assert 0.5 < r["price"] < 1.2


def test_price_table(spec_path: Path) -> None:
    result = invoke("price", str(spec_path), "--paths", PATHS, "--greeks", "delta")
    assert result.exit_code == 0, result.output
    out = said(result.stdout)
    assert "fair cpn" in out and "call 1st/all" in out and "IRR p50" in out and "Greeks" in out
    assert "the bundled sample market" in out
    price = json.loads(invoke("price", str(spec_path), "--paths", PATHS, "--greeks", "none", "--json").stdout)[0]
    assert f"{100 * price['price']:.2f}" in out  # the table shows the price in % of notional


# -- lab --------------------------------------------------------------------------------------


def test_lab_default_grid_gives_at_least_75_variations(spec_path: Path) -> None:
    result = invoke("lab", str(spec_path), "--paths", PATHS, "--greeks", "none", "--json")
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert len(results) >= MIN_VARIATIONS
    assert len({r["name"] for r in results}) == len(results)
    assert all(0.3 < r["price"] < 1.3 for r in results)
    top = json.loads(invoke("lab", str(spec_path), "--paths", PATHS, "--greeks", "none", "--top", "3", "--json").stdout)
    best = sorted((r["fair_coupon"] for r in results), reverse=True)[:3]
    assert [r["fair_coupon"] for r in top] == pytest.approx(best)


def test_lab_file_keeps_the_grid_order_and_top_n(tmp_path: Path) -> None:
    lab = write(tmp_path / "lab.json", {"base": spec_dict(), "grid": {"barriers": [0.5, 0.6], "coupons": [0.06, 0.08],
                                                                       "triggers": []}})  # fmt: skip
    result = invoke("lab", str(lab), "--paths", PATHS)
    assert result.exit_code == 0, result.output
    out = said(result.stdout)
    assert out.startswith("4 variations of WO SX5E/SPX/NKY 5y Phoenix 7% memory")
    positions = [out.index(label) for label in ("1. ki0.5", "2. ki0.5", "3. ki0.6", "4. ki0.6")]  # may wrap after
    assert positions == sorted(positions)
    top = said(invoke("lab", str(lab), "--paths", PATHS, "--top", "1").stdout)
    assert "top 1 by fair coupon" in top and "3. ki0.6" in top and "1. ki0.5" not in top


# -- stress -----------------------------------------------------------------------------------


SCENARIOS = [
    {"name": "crash-30 vol35 corr0.8", "spot_move": -0.3, "vol_level": 0.35, "correlation": 0.8},
    {"name": "rates+100bp", "rate_shift": 0.01},
    {"name": "rally+10 vol12", "spot_move": 0.1, "vol_level": 0.12},
]


def test_stress_two_specs_on_custom_scenarios_json(tmp_path: Path, two_specs: Path) -> None:
    scenarios = write(tmp_path / "scenarios.json", SCENARIOS)
    result = invoke("stress", str(two_specs), "--scenarios", str(scenarios), "--paths", PATHS, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["name"] for s in report["scenarios"]] == [s["name"] for s in SCENARIOS]
    assert report["paths"] == 2048 and len(report["results"]) == 2
    for r in report["results"]:
        assert len(r["pnl"]) == len(r["hedged_pnl"]) == 3
        assert 0.5 < r["base_value"] < 1.2 and r["capital_at_risk"] >= 0 and r["gap_risk"] >= 0
        assert r["worst_scenario"] in {s["name"] for s in SCENARIOS}
        assert r["passes"] == (r["capital_at_risk"] <= r["limit"]) and r["limit"] == 0.05
        assert 0 <= r["base_es"]["0.99"] and r["base_var"]["0.99"] <= r["base_es"]["0.99"] + 1e-12
    crash = report["results"][0]["pnl"][0]
    assert crash > 0  # the issuer, short the note, gains when the worst-of crashes

    table = invoke("stress", str(two_specs), "--scenarios", str(scenarios), "--paths", PATHS, "--limit", "0.5")
    assert table.exit_code == 0, table.output
    out = said(table.stdout)
    assert "2 notes x 3 scenarios" in out and "2 pass, 0 fail" in out and "limit of 50%" in out


# -- kid --------------------------------------------------------------------------------------


def test_kid(spec_path: Path) -> None:
    result = invoke("kid", str(spec_path), "--rating", "A", "--json")
    assert result.exit_code == 0, result.output
    (kid,) = json.loads(result.stdout)
    assert kid["name"] == sample_spec().name and kid["paths"] == 10_000 and kid["rhp_years"] == 5.0
    assert 1 <= kid["sri"] <= 7 and 1 <= kid["market_risk"]["mrm"] <= 7
    assert kid["credit_risk"]["rating"] == "A" and kid["credit_risk"]["crm"] in (1, 2, 3)
    (period,) = kid["performance_scenarios"]["periods"]
    assert period["stress"]["value"] <= period["unfavourable"]["value"] <= period["moderate"]["value"]
    assert period["moderate"]["value"] <= period["favourable"]["value"]
    table = said(invoke("kid", str(spec_path), "--rating", "Baa2").stdout)
    assert f"SRI {kid['sri']}" in table and "issuer rating Baa2" in table and "moderate" in table


# -- refusals ---------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    for command in ("price", "lab", "stress", "kid"):
        assert f"error: {missing}: no such file" in refused(invoke(command, str(missing)))


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.json", '{"name": "x",\n "underlyings": [}')
    assert f"{path}: invalid JSON at line 2 column 18" in refused(invoke("price", str(path)))


def test_invalid_spec_names_the_field(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.json", spec_dict(coupon={"rate": 1.5}))
    assert f"{bad}: coupon.rate: Input should be less than or equal to 1" in refused(invoke("price", str(bad)))
    late = write(tmp_path / "late.json", [spec_dict(), spec_dict(knock_in={"barrier": 0.9})])
    message = refused(invoke("stress", str(late)))
    assert f"{late}: [1].knock_in.barrier: 0.9 is above the lowest autocall trigger" in message


def test_unknown_underlying(tmp_path: Path) -> None:
    path = write(tmp_path / "dax.json", spec_dict(underlyings=["SX5E", "DAX"]))
    message = refused(invoke("price", str(path)))
    assert f"{path}: spec 'WO SX5E/SPX/NKY 5y Phoenix 7% memory': underlyings: no market data for DAX" in message
    assert "in the bundled sample market; it has SX5E, SPX, NKY, SMI, UKX" in message


def test_invalid_market_and_currency(tmp_path: Path, spec_path: Path) -> None:
    market = json.loads(sample_file(SAMPLE_MARKET).read_text())
    market["underlyings"]["SPX"]["spot"] = -1
    bad_market = write(tmp_path / "market.json", market)
    message = refused(invoke("price", str(spec_path), "--market", str(bad_market)))
    assert f"{bad_market}: underlyings.SPX.spot: Input should be greater than 0" in message
    usd = write(tmp_path / "usd.json", spec_dict(currency="USD"))
    assert "currency: USD differs from the market's EUR" in refused(invoke("price", str(usd)))


def test_bad_scenarios_file(tmp_path: Path, spec_path: Path) -> None:
    scenarios = write(tmp_path / "scen.json", [{"spot_move": -0.2}])
    message = refused(invoke("stress", str(spec_path), "--scenarios", str(scenarios), "--paths", PATHS))
    assert f"{scenarios}: [0].name: missing (a required field)" in message


@pytest.mark.parametrize(
    ("command", "options", "expected"),
    [
        ("price", ["--greeks", "delta,theta"], "--greeks: unknown Greek(s) theta"),
        ("price", ["--paths", "2049"], "--paths: antithetic sampling needs an even path count, got 2049"),
        ("lab", ["--paths", "1"], "Invalid value for '--paths'"),
        ("price", ["--model", "heston"], "Invalid value for '--model'"),
        ("stress", ["--sampler", "halton"], "Invalid value for '--sampler'"),
        ("kid", ["--paths", "2048"], "--paths: PRIIPs figures need at least 10,000 simulations"),
        ("kid", ["--rating", "NR"], "--rating: 'NR' is not a rating"),
        ("kid", ["--rhp", "3"], "--rhp: 3 years is before the maturity"),
        ("kid", ["--price", "3"], "--price: Input should be less than or equal to 2"),
    ],
)
def test_bad_options_exit_2(spec_path: Path, command: str, options: list[str], expected: str) -> None:
    assert expected in refused(invoke(command, str(spec_path), *options), code=2)
