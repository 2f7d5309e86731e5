-- The event log. Appends take a transaction-scoped advisory lock before they
-- draw positions, so positions become visible in order: a reader that has seen
-- position N has seen every committed position below N (no gaps to skip).
-- tx_id is kept for audit and for a snapshot fence should the lock ever go.
CREATE TABLE events (
    global_position BIGSERIAL   PRIMARY KEY,
    event_id        UUID        NOT NULL UNIQUE,
    stream_id       TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL,
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    payload         JSON        NOT NULL,
    metadata        JSONB       NOT NULL,
    tx_id           XID8        NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (stream_id, stream_version)
);

CREATE TABLE streams (
    stream_id TEXT   PRIMARY KEY,
    length    BIGINT NOT NULL
);

CREATE TABLE projection_checkpoints (
    name       TEXT        NOT NULL,
    generation BIGINT      NOT NULL,
    position   BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, generation)
);

CREATE TABLE projection_active (
    name       TEXT    PRIMARY KEY,
    generation BIGINT  NOT NULL
);
