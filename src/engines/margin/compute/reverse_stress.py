"""Compute kinds of the margin engine: reverse_stress (filled in by its owner)."""
