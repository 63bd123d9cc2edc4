-- The audit trail of one generation: every envelope on the log, append-only, chained by hash
-- per correlation (see projections.audit). `__schema__` is replaced by the generation's schema.
CREATE SCHEMA IF NOT EXISTS __schema__;

CREATE TABLE __schema__.audit_events (
    event_id       uuid        PRIMARY KEY,
    type           text        NOT NULL,
    version        integer     NOT NULL,
    key            text        NOT NULL,
    correlation_id uuid        NOT NULL,
    causation_id   uuid,
    producer       text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    payload        jsonb       NOT NULL,
    topic          text        NOT NULL,
    "partition"    integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    seq            bigint      NOT NULL CHECK (seq >= 1),
    prev_hash      bytea       NOT NULL CHECK (length(prev_hash) = 32),
    row_hash       bytea       NOT NULL CHECK (length(row_hash) = 32),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (correlation_id, seq)
);


-- The last link of each correlation's chain: the seq and row_hash of its newest row. Writers lock
-- a head row to append to its chain; `verify` compares the heads with the rows to find a deleted tail.
CREATE TABLE __schema__.audit_chain_heads (
    correlation_id uuid   PRIMARY KEY,
    seq            bigint NOT NULL,
    row_hash       bytea  NOT NULL
) WITH (fillfactor = 70);  -- room for HOT updates: every batch moves its heads

-- Append-only, enforced by the database: UPDATE, DELETE and TRUNCATE are refused unless the
-- transaction set `risklab.audit_rewrite = 'on'` (deliberate maintenance such as a legally
-- required erasure, and the tamper tests). Replay never needs it: it fills a new schema and drops
-- old ones with DROP SCHEMA. Whatever is rewritten this way, `verify` reports.
CREATE FUNCTION __schema__.audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('risklab.audit_rewrite', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused on %.%', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON __schema__.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION __schema__.audit_events_append_only();
