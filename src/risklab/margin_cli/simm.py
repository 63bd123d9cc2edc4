"""`risklab margin` commands: simm (filled in by its owner)."""
