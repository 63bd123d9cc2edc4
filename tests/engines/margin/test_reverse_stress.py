"""Reverse stress testing against analytic design points, replays and hand-counted breach days.

References built here, independently of the module:
- one linear venue: the most plausible s with ``−a's = R`` is ``s* = −R Σa / (a'Σa)`` at distance
  ``R / √(a'Σa)`` (Σ the horizon covariance, recomputed here with numpy);
- several linear venues, calls counted venue by venue: the boundary is piecewise linear; for each set A
  of losing venues the candidate is ``s_A = −R Σb_A / (b_A'Σb_A)`` with ``b_A = Σ_{v∈A} a_v``, valid when
  exactly the venues of A lose there; the optimum is the nearest valid candidate;
- an IM response alone: the need depends on ``a's`` only, so the design point lies along ``±Σa`` and its
  distance solves a scalar equation (brentq);
- the replay: the scenario's need rebuilt loading by loading in plain Python.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hand_built_books import hand_book
from scipy import optimize, stats

from engines.margin.arrays import FactorHistory, MarginBook
from engines.margin.reverse_stress import reverse_stress, stress_space
from engines.margin.venues import CreditFacility, LiquidityResources

H = 10


def correlated_history(f: int, days: int = 1500, seed: int = 3) -> FactorHistory:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(f, f)) / np.sqrt(f) + 0.7 * np.eye(f)
    returns = rng.standard_normal((days, f)) @ mix.T * 0.01
    dates = np.datetime64("2015-01-01") + np.arange(days)
    return FactorHistory(dates, tuple(f"EQ.X{i}" for i in range(f)), returns, np.zeros(days, bool))


def cash_only(amount: float) -> LiquidityResources:
    return LiquidityResources(
        cash_usd={"USD": amount}, facility=CreditFacility(limit_usd=0.0, max_draw_per_day_usd=0.0)
    )


def horizon_covariance(history: FactorHistory) -> np.ndarray:
    centred = history.returns - history.returns.mean(axis=0)
    return centred.T @ centred / (len(centred) - 1) * H


# ---- analytic design points ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("seeded", "polish", "tolerance"), [(True, True, 1e-8), (False, False, 2e-3)])
def test_one_linear_venue_finds_the_analytic_design_point(seeded: bool, polish: bool, tolerance: float) -> None:
    history = correlated_history(8)
    a = np.array([1e8, -5e7, 2e7, 0.0, 3e7, -1e7, 4e7, 1.5e7])
    book = hand_book(a[None, :], [0])
    cov = horizon_covariance(history)
    need = 2.5e7
    s_star = -need * cov @ a / (a @ cov @ a)
    d_star = need / math.sqrt(a @ cov @ a)
    found = reverse_stress(book, stress_space(history, horizon_days=H), cash_only(need), iterations=400, seed=1,
                           seeded=seeded, polish=polish)  # fmt: skip
    assert found.distance == pytest.approx(d_star, rel=tolerance)
    assert found.distance >= d_star * (1 - 1e-9)  # nothing nearer than the design point exhausts the cash
    cosine = found.scenario @ s_star / (np.linalg.norm(found.scenario) * np.linalg.norm(s_star))
    assert cosine > 1 - 50 * tolerance
    assert found.replay.exhausts and found.replay.need_usd == pytest.approx(need, rel=1e-9)
    assert found.half_space_probability == pytest.approx(stats.norm.sf(d_star), rel=1e-4)


def test_several_venues_find_the_nearest_valid_piece_of_the_boundary() -> None:
    history = correlated_history(4, seed=9)
    a = np.array([[3e7, 1e7, 0.0, -2e7], [-2e7, 2e7, 1e7, 0.0], [1e7, -1e7, 3e7, 1e7]])
    book = hand_book(a, [0, 1, 2])
    cov = horizon_covariance(history)
    need = 1e7
    best = math.inf
    for size in (1, 2, 3):
        for chosen in itertools.combinations(range(3), size):
            b = a[list(chosen)].sum(axis=0)
            s = -need * cov @ b / (b @ cov @ b)
            losing = {v for v in range(3) if -(a[v] @ s) > 1e-9 * need}
            if losing == set(chosen):
                best = min(best, need / math.sqrt(b @ cov @ b))
    found = reverse_stress(book, stress_space(history, horizon_days=H), cash_only(need), iterations=200, seed=5)
    assert found.distance == pytest.approx(best, rel=1e-7)
    assert found.replay.exhausts


def test_an_im_rise_alone_exhausts_resources_at_the_distance_of_its_scalar_equation() -> None:
    # the venue gains on its delta but its CCP's filter sees the move: IM grows by IM·(m − 1), with
    # m² = λ^H + (1 − λ^H)(a's)²/(H² σ²); the need is a function of a's alone: the design point lies along ±Σa
    history = correlated_history(5, seed=2)
    a = np.array([2e7, -1e7, 1e7, 5e6, 0.0])
    book = hand_book(a[None, :], [0])
    cov = horizon_covariance(history)
    sigma_day = math.sqrt(a @ (cov / H) @ a)
    sd = math.sqrt(a @ cov @ a)  # a's for a move of distance d along ±Σa is ∓ d·sd
    im, decay, resources = 5e6, 0.97, 4e6
    lam = decay**H

    def need(y: float, losing: bool) -> float:  # y = |a's|
        m = math.sqrt(lam + (1 - lam) * y * y / (H * H * sigma_day**2))
        return (y if losing else 0.0) + im * max(m - 1, 0.0) - resources

    hi = 50 * sd
    d_lose = optimize.brentq(need, 0.0, hi, args=(True,), xtol=1e-6) / sd
    d_gain = optimize.brentq(need, 0.0, hi, args=(False,), xtol=1e-6) / sd
    space = stress_space(history, horizon_days=H)
    found = reverse_stress(book, space, cash_only(resources), venue_im_usd=np.array([im]), ewma_decay=decay,
                           iterations=150, seed=3)  # fmt: skip
    assert found.distance == pytest.approx(min(d_lose, d_gain), rel=1e-6)
    assert found.replay.im_increase_usd > 0
    assert found.replay.need_usd == pytest.approx(resources, rel=1e-7)
    # a bilateral venue's SIMM does not respond: the same book then needs a plain VM loss of 4m
    bilateral = hand_book(a[None, :], [0], is_ccp=[False])
    flat = reverse_stress(bilateral, space, cash_only(resources), venue_im_usd=np.array([im]), iterations=50, seed=3)
    assert flat.distance == pytest.approx(resources / sd, rel=1e-7)
    assert flat.replay.im_increase_usd == 0.0


def test_a_csa_threshold_absorbs_the_first_losses_of_a_bilateral_netting_set() -> None:
    # value +2m, threshold 5m: the first 7m of loss only move the value within the band (-5m, 5m) uncalled
    history = correlated_history(3, seed=5)
    a = np.array([4e7, -1e7, 2e7])
    book = hand_book(a[None, :], [0], is_ccp=[False], value=[2e6])
    sd = math.sqrt(a @ horizon_covariance(history) @ a)
    space = stress_space(history, horizon_days=H)
    found = reverse_stress(book, space, cash_only(1e7), vm_threshold_usd=np.array([5e6]), iterations=50, seed=1)
    assert found.distance == pytest.approx((1e7 + 2e6 + 5e6) / sd, rel=1e-7)
    assert found.replay.need_usd == pytest.approx(1e7, rel=1e-7)
    plain = reverse_stress(book, space, cash_only(1e7), iterations=50, seed=1)
    assert plain.distance == pytest.approx(1e7 / sd, rel=1e-7)


# ---- replay, breach day, determinism ------------------------------------------------------------------------


def replayed_need(book: MarginBook, s: np.ndarray) -> float:
    """Variation margin called, position by position from the loadings, in plain Python (no IM response)."""
    venue_pnl = [0.0] * len(book.venues)
    for k in range(len(book.load_position)):
        p, f = int(book.load_position[k]), int(book.load_factor[k])
        venue_pnl[book.position_venue[p]] += book.load_delta[k] * s[f] + 0.5 * book.load_gamma[k] * s[f] ** 2
    return sum(max(-x, 0.0) for x in venue_pnl)


def test_scenario_found_on_a_gamma_book_really_exhausts_resources_when_replayed() -> None:
    rng = np.random.default_rng(8)
    history = correlated_history(12, seed=4)
    delta = rng.normal(size=(40, 12)) * 5e6 * (rng.random((40, 12)) < 0.3)
    gamma = -np.abs(rng.normal(size=(40, 12))) * 1e8 * (rng.random((40, 12)) < 0.2)  # short options
    book = hand_book(delta, list(rng.integers(0, 6, 40)), gamma=gamma, is_ccp=[False] * 6)
    res = LiquidityResources(
        cash_usd={"USD": 1.5e7, "EUR": 5e6},
        operational_buffer_usd=2e6,
        facility=CreditFacility(limit_usd=1e7, notice_hours=48, max_draw_per_day_usd=2e6),
    )
    found = reverse_stress(book, stress_space(history, horizon_days=H), res, iterations=300, seed=11)
    available = 1.5e7 + 5e6 - 2e6 + min(2e6 * (H - 2), 1e7)
    assert found.resources_usd == pytest.approx(available)
    assert found.found and found.distance < 40
    assert replayed_need(book, found.scenario) >= available * (1 - 1e-9)
    assert found.replay.need_usd == pytest.approx(replayed_need(book, found.scenario), rel=1e-10)
    assert found.replay.exhausts
    assert found.need_usd == pytest.approx(found.replay.need_usd, rel=1e-9)
    shares = [v.share for v in found.breaking_venues]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 1 + 1e-9
    # nearer along the same direction the resources hold
    assert replayed_need(book, 0.999 * found.scenario) < available


def test_breach_day_comes_early_when_the_facility_arrives_late() -> None:
    # cash 2m, facility 8m in one drawing after a 5-day notice: within 10 days 10m is available, but on
    # day h the linear need is h/10 of the final one (10m) while only 2m is at hand until day 6: breach day 2
    history = correlated_history(3, seed=6)
    book = hand_book(np.array([[1e8, 2e7, 0.0]]), [0])
    res = LiquidityResources(
        cash_usd={"USD": 2e6}, facility=CreditFacility(limit_usd=8e6, notice_hours=120, max_draw_per_day_usd=8e6)
    )
    found = reverse_stress(book, stress_space(history, horizon_days=H), res, iterations=100, seed=2)
    assert found.resources_usd == pytest.approx(10e6)
    assert found.breach_day == 2
    assert found.breaking_venues[0].venue == "VEN0"
    assert found.breaking_venues[0].vm_usd == pytest.approx(2e6, rel=1e-7)


def test_the_search_is_deterministic_for_a_seed() -> None:
    history = correlated_history(10, seed=1)
    rng = np.random.default_rng(0)
    book = hand_book(rng.normal(size=(20, 10)) * 1e7, list(rng.integers(0, 4, 20)))
    space = stress_space(history, horizon_days=5)
    runs = [reverse_stress(book, space, cash_only(3e7), iterations=60, seed=42, polish=False) for _ in range(2)]
    assert np.array_equal(runs[0].scenario, runs[1].scenario)
    assert np.array_equal(runs[0].best_by_generation, runs[1].best_by_generation)
    assert runs[0].best_by_generation[-1] <= runs[0].best_by_generation[0]


def test_the_distance_is_the_mahalanobis_distance_and_its_probability_matches_sampling() -> None:
    # for a linear venue, P(−a's ≥ R) under N(0, Σ_H) is Φ(−d): check by sampling the horizon covariance
    history = correlated_history(4, seed=12)
    a = np.array([1e7, 5e6, -3e6, 2e6])
    book = hand_book(a[None, :], [0])
    cov = horizon_covariance(history)
    need = 1.5 * math.sqrt(a @ cov @ a)
    found = reverse_stress(book, stress_space(history, horizon_days=H), cash_only(need), iterations=50, seed=0)
    s = found.scenario
    assert found.distance == pytest.approx(math.sqrt(s @ np.linalg.solve(cov, s)), rel=1e-9)
    draws = np.random.default_rng(1).multivariate_normal(np.zeros(4), cov, size=200_000)
    frequency = np.mean(-(draws @ a) >= need)
    assert frequency == pytest.approx(found.half_space_probability, abs=0.002)
    assert found.chi2_tail_probability == pytest.approx(stats.chi2.sf(found.distance**2, 4))
