"""`risklab margin` commands: baseline (filled in by its owner)."""
