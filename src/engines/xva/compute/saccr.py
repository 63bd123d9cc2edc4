"""Compute kinds of the XVA engine: SA-CCR and CVA capital (filled in by its owner)."""
