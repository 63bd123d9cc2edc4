-- The actor runtime: which events each actor has processed, how far it has read each
-- partition, the events it emits waiting to be published, and records it could not even
-- dead-letter (poison records on the dead-letter topic itself).
CREATE TABLE processed_events (
    actor        text        NOT NULL,
    event_id     uuid        NOT NULL,
    topic        text        NOT NULL,
    "partition"  integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, event_id)
);

CREATE TABLE consumer_offsets (
    actor       text    NOT NULL,
    topic       text    NOT NULL,
    "partition" integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (actor, topic, "partition")
);

CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    actor      text        NOT NULL,
    event_id   uuid        NOT NULL UNIQUE,
    topic      text        NOT NULL,
    key        bytea,
    value      bytea       NOT NULL,
    headers    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (actor, id) WHERE sent_at IS NULL;

CREATE TABLE rejected_records (
    actor       text        NOT NULL,
    topic       text        NOT NULL,
    "partition" integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    reason      text        NOT NULL,
    value       bytea       NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, topic, "partition", "offset")
);

CREATE TABLE compute_chunks (
    requester    text        NOT NULL,
    request_id   text        NOT NULL,
    chunk_index  integer     NOT NULL,
    chunk_count  integer     NOT NULL,
    status       text        NOT NULL CHECK (status IN ('completed', 'failed')),
    result       jsonb,
    error        text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (requester, request_id, chunk_index)
);
