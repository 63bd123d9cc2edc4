"""The sample generator and the synthetic history: the stated counts, factors, venues and stress periods;
determinism (same seed, same bytes); the statistical features the history promises (volatility clustering,
fat tails, higher volatility and correlation in the flagged stress periods, realistic daily vols per class).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from engines.margin import generator
from engines.margin.arrays import ASSET_CLASSES
from engines.margin.book import INSTRUMENTS, parse_factor_id
from engines.margin.files import LoadedBook, write_book
from engines.margin.history import STRESS_EPISODES, normal_daily_vol, stress_windows, synthetic_history

SMALL = {"managers": 4, "positions": 300, "ccps": 8, "bilaterals": 12, "years": 2}


def test_sample_has_the_stated_counts(sample_book: LoadedBook) -> None:
    book, arrays = sample_book.book, sample_book.arrays
    assert len(book.managers) == 30
    assert len(book.positions) == 5000
    kinds = Counter(v.kind for v in book.venues)
    assert kinds == {"ccp": 50, "bilateral": 150}
    assert len(book.strategies) >= 30
    assert set(Counter(s.manager for s in book.strategies)) == {m.id for m in book.managers}
    assert {p.instrument for p in book.positions} == set(INSTRUMENTS)
    # every venue holds something, every strategy holds something
    assert np.all(np.bincount(arrays.position_venue, minlength=len(arrays.venues)) > 0)
    assert np.all(np.bincount(arrays.position_strategy, minlength=len(arrays.strategies)) > 0)
    assert sum(s.capital_usd for s in book.strategies) == pytest.approx(15e9, rel=1e-6)


def test_sample_factors(sample_book: LoadedBook) -> None:
    factors = sample_book.book.factors
    assert 100 <= len(factors) <= 200
    kinds = Counter(f.parsed.kind for f in factors)
    curves: dict[str, set[str]] = {}
    for f in factors:
        kind, name, tenor = f.parsed
        if kind == "IR":
            curves.setdefault(name, set()).add(tenor or "")
    assert {"USD", "EUR", "GBP", "JPY", "CHF"} <= set(curves)
    assert all(t == {"3M", "1Y", "2Y", "5Y", "10Y", "30Y"} for t in curves.values())
    assert kinds["FX"] == len(curves) - 1  # every currency but USD against USD
    assert 13 <= kinds["EQ"] <= 17 and kinds["VOL.EQ"] == kinds["EQ"]
    assert kinds["CR"] >= 6 and kinds["CM"] >= 6 and kinds["VOL.IR"] == len(curves)
    assert all(f.level is not None for f in factors)
    assert sample_book.history.factors == tuple(f.id for f in factors)
    # the book is multi-currency: positions settle in at least five currencies
    assert len({p.currency for p in sample_book.book.positions}) >= 5


def test_sample_ccps_have_varied_margin_models(sample_book: LoadedBook) -> None:
    models = [v.margin_model for v in sample_book.book.venues if v.kind == "ccp"]
    assert {m.measure for m in models} == {"var", "es"}
    assert {m.apc for m in models} == {"buffer", "stressed_weight", "ten_year_floor", "none"}
    assert min(m.confidence for m in models) == 0.99 and max(m.confidence for m in models) == 0.997
    assert {m.mpor_days for m in models} <= {1, 2, 3, 4, 5} and len({m.mpor_days for m in models}) >= 3
    lookbacks = {m.lookback_days for m in models}
    assert min(lookbacks) == 250 and max(lookbacks) == 2520 and len(lookbacks) >= 4  # one to ten years
    assert len({v.region for v in sample_book.book.venues if v.kind == "ccp"}) >= 5


def test_sample_csas_are_varied(sample_book: LoadedBook) -> None:
    csas = [v.csa for v in sample_book.book.venues if v.kind == "bilateral"]
    assert any(c.threshold_usd > 0 for c in csas) and sum(c.threshold_usd == 0 for c in csas) > len(csas) / 2
    assert any(c.independent_amount_usd > 0 for c in csas)
    assert len({c.minimum_transfer_amount_usd for c in csas}) >= 3
    assert {c.mpor_days for c in csas} == {10, 20}
    assert {c.initial_margin for c in csas} == {"simm", "none"}
    assert len({c.currency for c in csas}) >= 3
    haircuts = [e.haircut for c in csas for e in c.eligible_collateral if not e.asset.startswith("cash")]
    assert haircuts and 0 < min(haircuts) and max(haircuts) < 0.15


def test_sample_sizes_are_skewed_and_platform_sized(sample_book: LoadedBook) -> None:
    arrays, history = sample_book.arrays, sample_book.history
    notional = arrays.position_notional_usd
    assert np.mean(notional) > 2 * np.median(notional)  # a long right tail
    # a parametric margin proxy computed from all loadings: Σ_venues 2.33 σ_v √MPOR, with the last two years' covariance
    cov = np.cov(history.returns[-500:].T)
    d = arrays.venue_delta()
    sigma = np.sqrt(np.einsum("vf,fg,vg->v", d, cov, d))
    mpor = [v.margin_model.mpor_days if v.kind == "ccp" else v.csa.mpor_days for v in sample_book.book.venues]
    proxy = float(np.sum(2.33 * sigma * np.sqrt(mpor)))
    assert 0.08 * 15e9 < proxy < 0.35 * 15e9
    # the platform's daily P&L volatility is that of a leveraged multi-manager fund, not of a single bet
    platform = arrays.position_delta().sum(axis=0)
    assert 0.002 * 15e9 < math.sqrt(platform @ cov @ platform) < 0.015 * 15e9
    resources = sample_book.book.resources
    assert 0.3 * proxy < resources.usable_cash_usd + resources.facility.limit_usd < 2.0 * proxy
    assert len(resources.cash_usd) >= 5
    classes = Counter(ASSET_CLASSES[c] for c in arrays.position_class)
    assert all(classes[c] >= 100 for c in ASSET_CLASSES)


def test_sample_is_cached_and_immutable(sample_book: LoadedBook) -> None:
    assert generator.sample() is sample_book
    assert generator.sample(2026) is sample_book
    with pytest.raises(ValueError, match="read-only"):
        sample_book.arrays.load_delta[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        sample_book.history.returns[0, 0] = 1.0
    with pytest.raises(ValidationError):
        sample_book.book.positions[0].venue = "elsewhere"  # type: ignore[misc]


def test_generator_is_deterministic_byte_for_byte(tmp_path: Path) -> None:
    first = generator.build_sample(7, **SMALL)
    second = generator.build_sample(7, **SMALL)
    other = generator.build_sample(8, **SMALL)
    for name, loaded in (("a", first), ("b", second), ("c", other)):
        write_book(loaded, tmp_path / name, positions_format="csv", history_format="csv")
    for file in ("book.json", "positions.csv", "history.csv"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
        assert (tmp_path / "a" / file).read_bytes() != (tmp_path / "c" / file).read_bytes(), file
    assert first.history.returns.tobytes() == second.history.returns.tobytes()
    assert first.arrays.load_delta.tobytes() == second.arrays.load_delta.tobytes()
    assert len(first.book.positions) == 300 and len(first.book.venues) == 20
    assert len(first.history.dates) == 2 * 252


def test_generator_refuses_bad_counts() -> None:
    with pytest.raises(ValueError, match="positions: must be an integer of at least 1, got 0"):
        generator.build_sample(1, positions=0)


# -- the history ----------------------------------------------------------------------------------


def test_history_covers_ten_years_of_business_days(sample_book: LoadedBook) -> None:
    h = sample_book.history
    assert len(h.dates) == 2520
    assert h.dates[-1] == np.datetime64("2026-11-20")
    assert np.all(np.diff(h.dates.astype(np.int64)) > 0)
    assert np.all(np.is_busday(h.dates))
    years = (h.dates[-1] - h.dates[0]).astype(int) / 365.25
    assert 9.5 < years < 10.5


def test_history_has_its_stress_periods(sample_book: LoadedBook) -> None:
    h = sample_book.history
    windows = stress_windows(h)
    assert len(windows) == len(STRESS_EPISODES) >= 3
    returns, stressed = h.returns, h.stressed
    calm_vol, stress_vol = returns[~stressed].std(axis=0), returns[stressed].std(axis=0)
    assert np.median(stress_vol / calm_vol) > 1.5
    assert np.all(stress_vol > calm_vol)
    # correlations rise in stress: the mean absolute pairwise correlation of equities, credit and FX
    groups = [j for j, f in enumerate(h.factors) if parse_factor_id(f).kind in ("EQ", "CR", "FX", "CM")]

    def mean_abs_correlation(rows: np.ndarray) -> float:
        c = np.corrcoef(returns[np.ix_(rows, groups)].T)
        return float(np.abs(c[np.triu_indices_from(c, 1)]).mean())

    assert mean_abs_correlation(stressed) > mean_abs_correlation(~stressed) + 0.05
    # equities fall and spreads widen over the crash (the third episode)
    starts = np.flatnonzero(np.diff(np.concatenate(([0], stressed.astype(int)))) == 1)
    crash = np.arange(starts[2], starts[2] + STRESS_EPISODES[2].days)
    spx, ig = h.factors.index("EQ.SPX"), h.factors.index("CR.CDX_IG.5Y")
    assert returns[crash, spx].sum() < -0.1 and returns[crash, ig].sum() > 0.001


def test_history_shows_volatility_clustering_and_fat_tails(sample_book: LoadedBook) -> None:
    h = sample_book.history
    calm = h.returns[~h.stressed]
    n = len(calm)
    # ARCH effect: the lag-1 autocorrelation of squared (demeaned) returns, far above its ±2/√n noise band
    x = (calm - calm.mean(axis=0)) ** 2
    x = x - x.mean(axis=0)
    rho = (x[1:] * x[:-1]).sum(axis=0) / (x * x).sum(axis=0)
    assert np.mean(rho > 2 / math.sqrt(n)) > 0.9
    assert np.median(rho) > 0.04  # GARCH(1,1) with these α, β: about 0.05-0.1
    # fat tails even outside the stress periods: excess kurtosis well above the normal's 0
    z = calm - calm.mean(axis=0)
    kurtosis = (z**4).mean(axis=0) / (z**2).mean(axis=0) ** 2 - 3.0
    assert np.all(kurtosis > 0.5)
    assert np.median(kurtosis) > 2.0


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [("IR", 4e-4, 9e-4), ("FX", 0.0035, 0.0075), ("EQ", 0.009, 0.016), ("CR", 1.5e-4, 8e-4), ("CM", 0.012, 0.03),
     ("VOL.EQ", 0.035, 0.07), ("VOL.IR", 0.03, 0.06)],
)  # fmt: skip
def test_history_daily_vols_are_realistic(sample_book: LoadedBook, kind: str, low: float, high: float) -> None:
    """Median calm-day vol per class where desks see it (rates 5-8 bp, FX 0.5%, equity 1.2%, credit a few bp,
    commodities 2%, vols 5%), and every factor near the vol the history was asked for."""
    h = sample_book.history
    columns = [j for j, f in enumerate(h.factors) if parse_factor_id(f).kind == kind]
    vols = h.returns[~h.stressed][:, columns].std(axis=0)
    assert low < float(np.median(vols)) < high
    asked = np.array([normal_daily_vol(sample_book.book.factors[j]) for j in columns])
    assert np.all((0.7 < vols / asked) & (vols / asked < 1.5)), dict(
        zip([h.factors[j] for j in columns], vols / asked, strict=True)
    )


def test_history_of_tiny_book_is_seeded(tiny_book: LoadedBook) -> None:
    factors = tiny_book.book.factors
    again = synthetic_history(factors, end=date(2026, 11, 20), days=300, seed=11)
    assert again.returns.tobytes() == tiny_book.history.returns.tobytes()
    other = synthetic_history(factors, end=date(2026, 11, 20), days=300, seed=12)
    assert not np.array_equal(other.returns, again.returns)
    assert again.stressed.any()
