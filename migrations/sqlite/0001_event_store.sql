-- The event log. global_position is the rowid: SQLite has one writer, so rowid
-- order is commit order. AUTOINCREMENT: a position is never reused.
CREATE TABLE events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        BLOB    NOT NULL UNIQUE,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    recorded_at     TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    UNIQUE (stream_id, stream_version)
);

-- One row per stream: how many events it holds. The upsert on this row is what
-- serialises appends to one stream and checks the expected version.
CREATE TABLE streams (
    stream_id TEXT PRIMARY KEY,
    length    INTEGER NOT NULL
);

-- Projection checkpoints and the generation that serves reads.
CREATE TABLE projection_checkpoints (
    name       TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (name, generation)
);

CREATE TABLE projection_active (
    name       TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
