"""Compute kinds of the margin engine: simm (filled in by its owner)."""
