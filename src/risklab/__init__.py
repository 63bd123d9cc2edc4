"""risklab."""
