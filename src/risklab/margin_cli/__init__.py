"""`risklab margin`: baseline and stressed margin, SIMM, the avalanche simulation, liquidity tools and
reverse stress testing of a multi-manager book.

`<book>` is a book directory (`risklab margin sample <dir>` writes one) or the word `sample` for the
bundled generated book. Each command prints rich tables, or with `--json` only the engine's result
as JSON on stdout; long work shows a progress bar on stderr. A bad file or option ends with one
line naming the file and the field: exit code 1 for data, 2 for options.
"""

from __future__ import annotations

# each module adds its commands to margin_app
from risklab.margin_cli import avalanche, baseline, book, liquidity, reverse_stress, simm  # noqa: F401
from risklab.margin_cli.common import margin_app

__all__ = ["margin_app"]
