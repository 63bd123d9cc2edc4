"""Compute kinds of the margin engine: liquidity (filled in by its owner)."""
