"""The boundary documents that are not events, published in schemas/ beside the event catalog.

Users write these by hand (a product spec, market data, a lab grid, stress scenarios, pricing
options) and send them to the CLI, the API or the compute kinds, so their JSON Schemas are part
of the public contract and versioned like events.
"""

from __future__ import annotations

from bus.schemas import Document
from engines.margin.book import Book, PositionDocument, RiskFactor
from engines.margin.venues import BilateralCounterparty, Ccp, LiquidityResources
from engines.structured.kid import KidOptions
from engines.structured.lab import LabGrid
from engines.structured.market import MarketData
from engines.structured.pricing import PricingOptions
from engines.structured.spec import AutocallSpec
from engines.structured.stress import ScenarioSpec, StressOptions
from engines.xva.bacva import BaCvaPortfolio
from engines.xva.book_xva import TradeChange, XvaRunOptions
from engines.xva.market import Market as XvaMarket
from engines.xva.saccr_models import NettingSet as SaccrNettingSet
from engines.xva.trades import Book as XvaBook
from engines.xva.trades import TradeDocument

DOCUMENTS: tuple[Document, ...] = (
    Document("structured.autocall_spec", 1, AutocallSpec),
    Document("structured.market_data", 1, MarketData),
    Document("structured.pricing_options", 1, PricingOptions),
    Document("structured.lab_grid", 1, LabGrid),
    Document("structured.stress_scenario", 1, ScenarioSpec),
    Document("structured.stress_options", 1, StressOptions),
    Document("structured.kid_options", 1, KidOptions),
    Document("margin.book", 1, Book),
    Document("margin.position", 1, PositionDocument),
    Document("margin.risk_factor", 1, RiskFactor),
    Document("margin.ccp", 1, Ccp),
    Document("margin.bilateral_counterparty", 1, BilateralCounterparty),
    Document("margin.liquidity_resources", 1, LiquidityResources),
    Document("xva.book", 1, XvaBook),
    Document("xva.trade", 1, TradeDocument),
    Document("xva.trade_change", 1, TradeChange),
    Document("xva.market", 1, XvaMarket),
    Document("xva.run_options", 1, XvaRunOptions),
    Document("xva.saccr_netting_set", 1, SaccrNettingSet),
    Document("xva.ba_cva_portfolio", 1, BaCvaPortfolio),
)
