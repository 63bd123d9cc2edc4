"""Compute kinds of the margin engine: avalanche (filled in by its owner)."""
