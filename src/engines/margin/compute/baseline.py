"""Compute kinds of the margin engine: baseline (filled in by its owner)."""
