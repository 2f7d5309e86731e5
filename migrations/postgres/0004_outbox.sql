-- The outbox: intents that process managers derived from the log, waiting
-- for a dispatcher to carry them out (register a model now; webhooks,
-- judges and launchers later). A process manager inserts an intent in the
-- same transaction as its checkpoint; the intent's id comes from what caused
-- it, so a rebuild that replays the log inserts nothing new. Rows stay after
-- they are done (that is what makes a replay a no-op).
CREATE TABLE outbox (
    intent_id     UUID    PRIMARY KEY,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    -- The log position of the event that caused it.
    caused_at     BIGINT NOT NULL,
    -- pending | done | dead
    status        TEXT    NOT NULL,
    attempts      BIGINT NOT NULL,
    available_ms  BIGINT NOT NULL,
    lease_owner   TEXT,
    lease_until   BIGINT,
    last_error    TEXT,
    created_ms    BIGINT NOT NULL,
    finished_ms   BIGINT
);
CREATE INDEX outbox_due ON outbox (status, available_ms);
