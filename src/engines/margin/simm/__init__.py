"""ISDA SIMM, the bilateral initial margin model, from CRIF sensitivities.

- `crif`: CRIF records and CSV files in and out.
- `parameters`: the versioned calibration (risk weights, correlations, thresholds) in `calibrations/`.
- `margins`: the delta, vega and curvature formulas of each risk class.
- `calculator`: `simm` and `simm_by_portfolio`, aggregating into product classes and the total.
- `result`: `SimmResult`, the figure and its breakdown.
- `from_book`: CRIF records of a `MarginBook`'s bilateral positions and `simm_by_counterparty`.

Version 2.6 (10-day margin period of risk) is implemented and checked against the Open Source Risk
Engine on the same CRIF files (tests/engines/margin/test_simm.py, bench/simm_reference_ore.py).
"""

from engines.margin.simm.calculator import simm, simm_by_portfolio
from engines.margin.simm.crif import CrifFileError, CrifRecord, read_crif, write_crif
from engines.margin.simm.from_book import crif_from_book, simm_by_counterparty
from engines.margin.simm.margins import SimmInputError
from engines.margin.simm.parameters import DEFAULT_VERSION, SimmParameters, available_versions, load_parameters
from engines.margin.simm.result import SimmResult

__all__ = [
    "DEFAULT_VERSION",
    "CrifFileError",
    "CrifRecord",
    "SimmInputError",
    "SimmParameters",
    "SimmResult",
    "available_versions",
    "crif_from_book",
    "load_parameters",
    "read_crif",
    "simm",
    "simm_by_counterparty",
    "simm_by_portfolio",
    "write_crif",
]
