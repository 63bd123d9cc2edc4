"""`risklab margin` commands on books: sample and crif (filled in by its owner)."""
