-- Worker leases of managed jobs: who holds a job and until when. Heartbeats
-- move `expires_ms`; the reconciler turns an expired lease into a
-- `LoseLease` command (recovery). Not events: a heartbeat is no fact worth
-- keeping, while the lease itself (`job.dispatched`) is in the log.
CREATE TABLE worker_leases (
    job_id       BLOB    PRIMARY KEY,
    lease_id     BLOB    NOT NULL UNIQUE,
    project_id   BLOB    NOT NULL,
    worker_id    TEXT    NOT NULL,
    expires_ms   INTEGER NOT NULL,
    last_tick_ms INTEGER NOT NULL
);
