"""`risklab margin` commands: avalanche (filled in by its owner)."""
