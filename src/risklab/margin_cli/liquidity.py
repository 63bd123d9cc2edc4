"""`risklab margin` commands: liquidity (filled in by its owner)."""
