"""Read models built from the event log, each in its own per-generation PostgreSQL schema.

- `projections.audit`: `AuditTrailProjection` (every envelope, append-only, hash-chained per
  correlation) and its queries `show`, `lineage`, `verify`.
- `projections.early_warning`: `EarlyWarningProjection` (status per subject and metric, alerts on
  level transitions) and `board`.
- `projections.generations`: schemas per generation, the registry of generations, the `Projection` base.
- `projections.replay`: `rebuild` (replay into a new generation and switch) and `digest`.
"""
