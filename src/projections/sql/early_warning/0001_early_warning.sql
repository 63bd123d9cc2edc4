-- The early-warning board of one generation: the current status of each (subject, metric).
-- `__schema__` is replaced by the generation's schema (see projections.generations).
CREATE SCHEMA IF NOT EXISTS __schema__;

CREATE TABLE __schema__.early_warning (
    subject       text             NOT NULL,
    metric        text             NOT NULL,
    value         double precision NOT NULL,
    capacity      double precision NOT NULL CHECK (capacity > 0),
    ratio         double precision NOT NULL,
    unit          text             NOT NULL,
    level         text             NOT NULL CHECK (level IN ('ok', 'high', 'critical')),
    since         timestamptz      NOT NULL,
    trend         text             NOT NULL CHECK (trend IN ('up', 'down', 'flat')),
    updated_at    timestamptz      NOT NULL,
    last_event_id uuid             NOT NULL,
    PRIMARY KEY (subject, metric)
);
