"""The sample book generator: deterministic, fast, realistic in shape (skewed netting sets, a collateral mix,
every product), and consistent with the sample market."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from engines.xva.generator import sample_book
from engines.xva.market import sample_market
from engines.xva.trades import check_against_market


@pytest.fixture(scope="module")
def full_book():
    start = time.perf_counter()
    book = sample_book(seed=7)
    return book, time.perf_counter() - start


def test_full_size_book_is_built_fast_and_passes_the_market_checks(full_book):
    book, seconds = full_book
    assert seconds < 5.0, f"sample_book took {seconds:.2f} s"
    assert len(book.counterparties) == 1000
    assert len(book.trades) == 20000
    check_against_market(book, sample_market())


def test_netting_sets_are_skewed_with_a_few_very_large_ones(full_book):
    book, _ = full_book
    sizes = np.array(sorted(Counter(t.netting_set_id for t in book.trades).values(), reverse=True))
    assert len(sizes) == len(book.netting_sets), "every netting set has a trade"
    assert sizes[0] > 1000 and sizes[:3].sum() > 0.2 * sizes.sum(), f"largest sets {sizes[:5]}"
    assert np.median(sizes) <= 10, f"median netting set size {np.median(sizes)}"


def test_collateral_and_product_mix(full_book):
    book, _ = full_book
    collateralised = [n for n in book.netting_sets if n.csa is not None]
    assert 0.3 < len(collateralised) / len(book.netting_sets) < 0.7
    assert any(n.csa.threshold_received > 0 for n in collateralised)
    assert any(n.csa.initial_margin_received > 0 for n in collateralised)
    types = Counter(t.type for t in book.trades)
    assert set(types) == {
        "irs",
        "xccy",
        "fx_forward",
        "fx_option",
        "swaption",
        "equity_option",
        "equity_forward",
        "cds",
    }
    assert types["irs"] > 0.35 * len(book.trades)
    assert sum(c.wrong_way is not None for c in book.counterparties) > 30


def test_same_seed_same_book_other_seed_other_book():
    a = sample_book(seed=3, counterparties=40, trades=400)
    b = sample_book(seed=3, counterparties=40, trades=400)
    c = sample_book(seed=4, counterparties=40, trades=400)
    assert a == b
    assert a != c


def test_refuses_fewer_trades_than_counterparties():
    with pytest.raises(ValueError, match="trades: at least one per counterparty"):
        sample_book(counterparties=10, trades=5)
