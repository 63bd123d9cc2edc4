"""The XVA engine: exposure simulation, valuation adjustments, SA-CCR and CVA capital, what-if and
optimisation candidates for a dealer's book of netting sets. Nothing of the platform is imported."""
