"""The margin engine as compute kinds (`margin.*`) that engine workers run on request; each module
registers the kinds of one part of the engine when imported."""

from engines.margin.compute import avalanche, baseline, liquidity, reverse_stress, simm  # noqa: F401
