"""`risklab xva`: the XVA desk's engine from the command line.

`<book>` is a book JSON file (`risklab xva sample <dir>` writes one with its market) or the word `sample` for
the bundled generated book (1,000 counterparties, 20,000 trades); `--market` gives the market JSON (default:
the sample market). Each command prints rich tables, or with `--json` only the engine's result as JSON on
stdout; long work shows a progress bar on stderr. A bad file or option ends with one line naming the file
and the field (exit code 1 for data, 2 for options), never a traceback.
"""

from __future__ import annotations

# each module adds its commands to xva_app
from risklab.xva_cli import book, optimise, saccr  # noqa: F401
from risklab.xva_cli.common import xva_app
from risklab.xva_cli.saccr import NettingSetFileError, load_netting_sets

__all__ = ["NettingSetFileError", "load_netting_sets", "xva_app"]
