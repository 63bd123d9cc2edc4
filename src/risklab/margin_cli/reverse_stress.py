"""`risklab margin` commands: reverse_stress (filled in by its owner)."""
