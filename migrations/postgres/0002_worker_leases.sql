-- Worker leases of managed jobs: who holds a job and until when. Heartbeats
-- move `expires_ms`; the reconciler turns an expired lease into a
-- `LoseLease` command (recovery). Not events: a heartbeat is no fact worth
-- keeping, while the lease itself (`job.dispatched`) is in the log.
CREATE TABLE worker_leases (
    job_id       UUID   PRIMARY KEY,
    lease_id     UUID   NOT NULL UNIQUE,
    project_id   UUID   NOT NULL,
    worker_id    TEXT   NOT NULL,
    expires_ms   BIGINT NOT NULL,
    last_tick_ms BIGINT NOT NULL
);
