"""Portfolio tools of the margin engine on hand-built books: scenario P&L, expected shortfall, the Euler
allocation of venue margin, concentration shares and breaches, margin efficiency, the venue what-if and
the strategy optimiser.

References are computed here independently of the modules: P&L loading by loading in plain Python,
shortfall by sorting (and by minimising the Rockafellar–Uryasev function with scipy), an analytic
optimum of the optimiser (a fractional knapsack when venues hold one strategy each) and a brute-force
grid where strategies share venues.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hand_built_books import hand_book
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from engines.margin.concentration import concentration
from engines.margin.efficiency import margin_efficiency
from engines.margin.optimiser import optimise_strategies
from engines.margin.portfolio import (
    allocate_margin,
    es_margin,
    expected_shortfall,
    move_positions,
    position_pnl,
    select_positions,
    venue_pnl,
)


def normal_scenarios(n: int, f: int, seed: int = 7, vol: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(f, f)) / np.sqrt(f) + np.eye(f)
    return rng.standard_normal((n, f)) @ mix.T * vol


def sorted_es(losses: np.ndarray, confidence: float) -> float:
    """Mean of the worst (1 − α)N losses, the last counted in part."""
    k = (1 - confidence) * len(losses)
    worst = np.sort(losses)[::-1]
    whole = int(np.floor(k))
    return float((worst[:whole].sum() + (k - whole) * worst[whole]) / k) if whole < len(worst) else float(worst.mean())


# ---- scenario P&L and expected shortfall ------------------------------------------------------------------


def test_pnl_matches_a_loading_by_loading_sum() -> None:
    rng = np.random.default_rng(1)
    delta = rng.normal(size=(5, 3)) * 1e6
    gamma = rng.normal(size=(5, 3)) * 1e7
    book = hand_book(delta, [0, 1, 0, 2, 1], gamma=gamma)
    r = normal_scenarios(20, 3)
    scale = np.array([1.0, 2.0, 3.0])
    ref_pos = np.zeros((20, 5))
    for n in range(20):
        for k in range(len(book.load_position)):
            p, f = book.load_position[k], book.load_factor[k]
            x = r[n, f] * scale[book.position_venue[p]]
            ref_pos[n, p] += book.load_delta[k] * x + 0.5 * book.load_gamma[k] * x * x
    assert position_pnl(book, r, scale) == pytest.approx(ref_pos, rel=1e-12)
    ref_venue = np.stack([ref_pos[:, book.position_venue == v].sum(axis=1) for v in range(3)], axis=1)
    assert venue_pnl(book, r, scale) == pytest.approx(ref_venue, rel=1e-12)


@pytest.mark.parametrize(("n", "confidence"), [(200, 0.99), (200, 0.975), (150, 0.99), (1000, 0.999)])
def test_expected_shortfall_is_the_tail_mean_and_the_rockafellar_uryasev_minimum(n: int, confidence: float) -> None:
    losses = np.random.default_rng(n).standard_t(4, size=n)
    es = float(expected_shortfall(losses, confidence))
    assert es == pytest.approx(sorted_es(losses, confidence), rel=1e-12)
    ru = optimize.minimize_scalar(
        lambda z: z + np.maximum(losses - z, 0).sum() / ((1 - confidence) * n),
        bounds=(losses.min(), losses.max()),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert es == pytest.approx(ru.fun, rel=1e-7)


# ---- allocation and concentration -------------------------------------------------------------------------


def test_euler_allocation_gives_each_position_its_mean_tail_loss_and_adds_up_to_the_venue_margin() -> None:
    rng = np.random.default_rng(3)
    delta = rng.normal(size=(6, 4)) * 1e6
    delta[5] = -0.5 * delta[4]  # a partial hedge of position 4 at the same venue
    book = hand_book(delta, [0, 0, 1, 1, 2, 2])
    r = normal_scenarios(500, 4)
    venue_im = np.array([3e6, 5e6, 1e6])
    alloc = allocate_margin(book, r, venue_im, confidence=0.99)
    for v in range(3):
        members = np.flatnonzero(book.position_venue == v)
        assert alloc[members].sum() == pytest.approx(venue_im[v], rel=1e-10)
        losses = -(r @ delta[members].T)
        worst = np.argsort(-losses.sum(axis=1))[:5]  # k = 5 scenarios exactly
        raw = losses[worst].mean(axis=0)
        assert alloc[members] == pytest.approx(raw * venue_im[v] / raw.sum(), rel=1e-10)
    assert alloc[5] < 0  # the hedge carries a negative share


def test_concentration_shares_and_breaches_by_dimension() -> None:
    # five positions: managers 0,1,1,2,2 (strategies 0,1,1,2,3), classes, two CCPs and two bilateral counterparties
    book = hand_book(
        np.eye(5) * 1e6,
        [0, 1, 1, 2, 3],
        strategy=[0, 1, 1, 2, 3],
        strategy_manager=[0, 1, 2, 2],
        asset_class=[0, 2, 2, 3, 1],
        is_ccp=[True, True, False, False],
        notional=[100.0, 100.0, 100.0, 600.0, 100.0],
    )
    venue_im = np.array([20.0, 50.0, 25.0, 5.0])
    position_im = np.array([20.0, 30.0, 20.0, 25.0, 5.0])
    result = concentration(book, venue_im, position_im)
    shares = {(g.dimension, g.name): g for gs in result.groups.values() for g in gs}
    assert shares[("manager", "MGR0")].im_share == pytest.approx(0.20)
    assert shares[("manager", "MGR1")].im_share == pytest.approx(0.50)  # strategy 1 of manager 1: positions 1, 2
    assert shares[("manager", "MGR2")].im_share == pytest.approx(0.30)
    assert shares[("asset_class", "equity")].im_share == pytest.approx(0.50)
    assert shares[("venue", "VEN1")].im_share == pytest.approx(0.50)
    assert ("venue", "VEN2") not in shares  # bilateral: a counterparty, not a clearing venue
    assert shares[("counterparty", "VEN2")].im_share == pytest.approx(0.25)
    assert shares[("counterparty", "VEN2")].notional_share == pytest.approx(0.60)
    breached = {(g.dimension, g.name) for g in result.breaches}
    assert breached == {
        ("manager", "MGR0"),  # 20% > 15%
        ("manager", "MGR1"),
        ("manager", "MGR2"),
        ("asset_class", "equity"),  # 50% > 30%
        ("venue", "VEN1"),  # 50% > 25%
        ("counterparty", "VEN2"),  # 25% > 10%
    }
    assert result.breaches[0].im_share - result.breaches[0].limit == pytest.approx(0.35)  # manager 1: 50% vs 15%
    assert ("manager", "MGR2") in {(g.dimension, g.name) for g in result.notional_breaches}
    loose = concentration(book, venue_im, position_im, limits={"manager": 0.6, "asset_class": 0.6})
    assert {(g.dimension, g.name) for g in loose.breaches} == {("venue", "VEN1"), ("counterparty", "VEN2")}


def test_concentration_refuses_allocations_that_do_not_add_up() -> None:
    book = hand_book(np.eye(2), [0, 1])
    with pytest.raises(ValueError, match=r"^position_im_usd: adds up"):
        concentration(book, np.array([1.0, 1.0]), np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match=r"^limits.region"):
        concentration(book, np.array([1.0, 1.0]), np.array([1.0, 1.0]), limits={"region": 0.1})


def test_efficiency_divides_margin_by_the_standalone_shortfall_of_the_strategy() -> None:
    delta = np.array([[1e6, 0.0], [-1e6, 0.0], [0.0, 2e6]])
    book = hand_book(delta, [0, 1, 1], strategy=[0, 1, 1], strategy_manager=[0, 1], expected_return=[1e5, 2e4, 3e4])
    r = normal_scenarios(400, 2)
    position_im = np.array([4e5, 1e5, 6e5])
    result = margin_efficiency(book, position_im, r, confidence=0.99, horizon_days=10)
    by_name = {e.name: e for e in result.strategies}
    es0 = sorted_es(-(r @ delta[0]) * np.sqrt(10), 0.99)
    es1 = sorted_es(-(r @ (delta[1] + delta[2])) * np.sqrt(10), 0.99)
    assert by_name["STR0"].standalone_es_usd == pytest.approx(es0, rel=1e-12)
    assert by_name["STR1"].standalone_es_usd == pytest.approx(es1, rel=1e-12)
    assert by_name["STR1"].im_usd == pytest.approx(7e5)
    assert by_name["STR1"].im_per_risk == pytest.approx(7e5 / es1)
    assert by_name["STR1"].return_on_im == pytest.approx(5e4 / 7e5)
    assert by_name["STR0"].manager == "MGR0"
    managers = {e.name: e for e in result.managers}  # one strategy each: the same figures
    assert managers["MGR1"].standalone_es_usd == pytest.approx(es1, rel=1e-12)
    assert managers["MGR0"].expected_return_usd == pytest.approx(1e5)
    ratio = {n: e.im_usd / e.standalone_es_usd for n, e in by_name.items()}
    assert [e.name for e in result.strategies] == sorted(ratio, key=lambda n: -ratio[n])


# ---- venue what-if ----------------------------------------------------------------------------------------


def test_moving_a_hedge_next_to_what_it_hedges_captures_the_netting() -> None:
    delta = np.array([[1e6, 0.0], [-0.8e6, 0.0], [0.0, 5e5]])
    book = hand_book(delta, [0, 1, 2], strategy=[0, 0, 1], strategy_manager=[0, 1], asset_class=[2, 2, 0])
    r = normal_scenarios(500, 2)
    margin = es_margin(r, 0.99, venue_scale=np.sqrt(5))
    moved = move_positions(book, select_positions(book, manager="MGR0", venue="VEN1"), "VEN0", margin)
    es = [sorted_es(-(r[:, 0] * d) * np.sqrt(5), 0.99) for d in (1e6, -0.8e6, 0.2e6)]
    assert moved.positions == ["POS1"] and moved.from_venues == ["VEN1"]
    assert dict(zip(moved.venues, moved.im_before_usd, strict=True)) == pytest.approx({"VEN0": es[0], "VEN1": es[1]})
    assert dict(zip(moved.venues, moved.im_after_usd, strict=True)) == pytest.approx({"VEN0": es[2], "VEN1": 0.0})
    assert moved.netting_benefit_usd == pytest.approx(es[0] + es[1] - es[2], rel=1e-10)
    assert moved.netting_benefit_usd > 0
    with pytest.raises(ValueError, match=r"^to_venue: unknown venue"):
        move_positions(book, np.array([0]), "VEN9", margin)
    with pytest.raises(ValueError, match=r"^asset_class: unknown"):
        select_positions(book, asset_class="equities")
    assert select_positions(book, asset_class="rates").tolist() == [2]
    assert select_positions(book, ids=["POS2", "POS0"], manager="MGR0").tolist() == [0]


# ---- optimiser ---------------------------------------------------------------------------------------------


def test_optimiser_reaches_the_fractional_knapsack_optimum_when_each_venue_holds_one_strategy() -> None:
    # each strategy alone at its venue: margin is x_s · ES_s (homogeneous), a linear programme in x with a
    # known answer: grow the strategy with the least margin per unit of return, shrink the other to 0.75
    r = normal_scenarios(400, 2, seed=11)
    delta = np.array([[1e6, 0.0], [0.0, 1e6]])
    returns = [3e5, 1e5]
    book = hand_book(delta, [0, 1], strategy=[0, 1], strategy_manager=[0, 0], expected_return=returns)
    es = np.array([sorted_es(-(r @ d), 0.99) for d in delta])
    cheap = int(np.argmin(es / returns))
    dear = 1 - cheap
    x = np.empty(2)
    x[dear] = 0.75
    x[cheap] = 1 + 0.25 * returns[dear] / returns[cheap]
    if x[cheap] > 1.25:  # the cheap one cannot carry it all: the dear one shrinks less
        x[cheap] = 1.25
        x[dear] = 1 - 0.25 * returns[cheap] / returns[dear]
    result = optimise_strategies(book, r)
    assert result.scales() == pytest.approx({"STR0": x[0], "STR1": x[1]}, abs=1e-7)
    assert result.margin_after_usd == pytest.approx(float(es @ x), rel=1e-9)
    assert result.margin_before_usd == pytest.approx(float(es.sum()), rel=1e-12)
    assert result.return_target_met and result.return_after_usd == pytest.approx(sum(returns), rel=1e-7)


def test_a_venue_that_gains_in_every_scenario_charges_nothing_and_earns_no_credit() -> None:
    # strategy 1 is long gamma only (it gains whatever the market does: its venue's shortfall is negative) and
    # loses money on average; its margin is zero at any size, so the optimum shrinks it to 0.75 for the return
    # and shrinks strategy 0 as far as that return allows — a large negative shortfall must not lure it up
    r = normal_scenarios(400, 2, seed=3)
    r[:, 1] = np.where(r[:, 1] > 0, 0.02, -0.02)  # a 2% move either way every day: a gain of 2e8 at venue 1
    delta = np.array([[1e6, 0.0], [0.0, 0.0]])
    gamma = np.array([[0.0, 0.0], [0.0, 1e12]])
    returns = [4e5, -1e5]
    book = hand_book(delta, [0, 1], gamma=gamma, strategy=[0, 1], strategy_manager=[0, 0], expected_return=returns)
    result = optimise_strategies(book, r)
    x0 = 1 - 0.25 * 1e5 / 4e5
    assert result.scales() == pytest.approx({"STR0": x0, "STR1": 0.75}, abs=1e-7)
    assert result.margin_after_usd == pytest.approx(x0 * sorted_es(-(r @ delta[0]), 0.99), rel=1e-9)
    assert result.venue_margin_after_usd[1] == 0.0 == result.venue_margin_before_usd[1]


def test_optimiser_matches_a_brute_force_grid_where_strategies_share_venues() -> None:
    rng = np.random.default_rng(5)
    delta = rng.normal(size=(6, 3)) * 1e6
    gamma = rng.normal(size=(6, 3)) * 2e7
    returns = [2e5, 1e5, 3e5, 5e4, 1.5e5, 1e5]
    book = hand_book(
        delta, [0, 0, 1, 1, 0, 1], gamma=gamma, strategy=[0, 1, 1, 2, 2, 0], strategy_manager=[0, 1, 1],
        expected_return=returns,
    )  # fmt: skip
    r = normal_scenarios(300, 3, seed=4)
    scale = np.array([np.sqrt(2.0), np.sqrt(5.0)])
    result = optimise_strategies(book, r, venue_scale=scale, confidence=0.975)

    def total_es(x: np.ndarray) -> float:
        out = 0.0
        for v in range(2):
            loss = np.zeros(len(r))
            for p in np.flatnonzero(book.position_venue == v):
                y = r * scale[v]
                loss -= x[book.position_strategy[p]] * (y @ delta[p] + 0.5 * (y * y) @ gamma[p])
            out += max(sorted_es(loss, 0.975), 0.0)
        return out

    ret_s = np.array([returns[0] + returns[5], returns[1] + returns[2], returns[3] + returns[4]])
    x = np.array([result.scales()[f"STR{i}"] for i in range(3)])
    assert result.margin_after_usd == pytest.approx(total_es(x), rel=1e-9)
    assert result.margin_before_usd == pytest.approx(total_es(np.ones(3)), rel=1e-9)
    assert ret_s @ x >= ret_s.sum() * (1 - 1e-9)
    assert np.all(np.abs(x - 1) <= 0.25 + 1e-9)
    grid = np.linspace(0.75, 1.25, 21)
    best = min(total_es(np.array(g)) for g in itertools.product(grid, grid, grid) if ret_s @ g >= ret_s.sum() - 1e-6)
    assert result.margin_after_usd <= best * (1 + 1e-9)
    # and no feasible point near the optimum does better (the grid is coarse)
    trials = np.clip(x + rng.normal(scale=0.01, size=(300, 3)), 0.75, 1.25)
    feasible = [t for t in trials if ret_s @ t >= ret_s.sum()]
    assert min(total_es(t) for t in feasible) >= result.margin_after_usd * (1 - 1e-9)


def test_optimiser_honours_a_higher_return_target_and_refuses_an_unreachable_one() -> None:
    r = normal_scenarios(300, 2, seed=2)
    book = hand_book(np.array([[1e6, 0.0], [0.0, 1e6]]), [0, 1], strategy=[0, 1], strategy_manager=[0, 0],
                     expected_return=[1e5, 1e5])  # fmt: skip
    result = optimise_strategies(book, r, return_target_usd=2.4e5)
    assert result.return_after_usd >= 2.4e5 * (1 - 1e-9)
    assert all(0.75 - 1e-9 <= c.scale <= 1.25 + 1e-9 for c in result.strategies)
    with pytest.raises(ValueError, match=r"^return_target_usd: .* above the most"):
        optimise_strategies(book, r, return_target_usd=2.6e5)


# ---- on a loaded book: the venues' own models -------------------------------------------------------------


def test_book_margin_model_is_the_baseline_and_a_move_is_the_baseline_of_the_moved_book(tiny_book: Any) -> None:
    from engines.margin.baseline import baseline_margin
    from engines.margin.files import LoadedBook
    from engines.margin.portfolio import book_margin_model, move_book_positions

    model = book_margin_model(tiny_book)
    base = baseline_margin(tiny_book)
    assert model(tiny_book.arrays) == pytest.approx(base.venue_im_usd, rel=1e-9)
    # the equity total-return swap (long SX5E) next to the short SX5E future at the equity CCP
    move = move_book_positions(tiny_book, "CCP-A", ids=["T1"])
    index = tiny_book.arrays.position_ids.index("T1")
    moved = tiny_book.arrays.with_positions_moved(np.array([index]), tiny_book.arrays.venues.index("CCP-A"))
    after = baseline_margin(LoadedBook(tiny_book.book, tiny_book.history, moved))
    assert move.total_before_usd == pytest.approx(base.total_im_usd, rel=1e-9)
    assert move.total_after_usd == pytest.approx(after.total_im_usd, rel=1e-9)
    assert set(move.venues) <= {"CCP-A", "DEALER-A"} and move.from_venues == ["DEALER-A"]
    with pytest.raises(ValueError, match=r"^ids: say which positions"):
        move_book_positions(tiny_book, "CCP-A")


def test_optimise_book_checks_itself_with_the_stressed_models(tiny_book: Any) -> None:
    from engines.margin.optimiser import optimise_book
    from engines.margin.stressed import stressed_margin

    result = optimise_book(tiny_book, vol_multiplier=2.0)
    stressed = stressed_margin(tiny_book, multipliers=(2.0,), correlation_breakdown=False, bilateral="scaled")
    assert result.model_margin_before_usd == pytest.approx(stressed.total_usd[1], rel=1e-9)
    assert result.return_target_met and result.margin_after_usd <= result.margin_before_usd
    assert all(abs(c.change) <= 0.25 + 1e-9 for c in result.strategies)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), venues=st.integers(1, 4), positions=st.integers(1, 9))
def test_allocation_adds_up_and_shortfall_is_subadditive(seed: int, venues: int, positions: int) -> None:
    rng = np.random.default_rng(seed)
    delta = rng.normal(size=(positions, 3)) * 1e6
    book = hand_book(delta, list(rng.integers(0, venues, positions)), n_venues=venues)
    r = normal_scenarios(200, 3, seed=seed)
    im = rng.uniform(1e5, 1e7, venues) * (np.bincount(book.position_venue, minlength=venues) > 0)  # held venues
    alloc = allocate_margin(book, r, im)
    assert np.bincount(book.position_venue, weights=alloc, minlength=venues) == pytest.approx(im, rel=1e-9)
    losses = -(r @ delta.T)
    assert expected_shortfall(losses.sum(axis=1), 0.99) <= expected_shortfall(losses, 0.99).sum() * (1 + 1e-12) + 1e-6
