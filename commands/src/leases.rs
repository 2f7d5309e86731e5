//! Worker leases: the live side of `job.dispatched`. A row says which lease
//! holds a job and until when; heartbeats extend it, and the reconciler
//! finds the expired ones. Writes go to the writer pool (SQLite) so they
//! never race a reader's snapshot. They are single statements and commit at
//! whatever `synchronous` level the connection's last transaction set
//! ([`crate::SqliteSync`]): a lease is a liveness record, its insert is made
//! durable by the dispatch append that follows it, and a heartbeat lost to a
//! power cut only makes a lease look older to a restarted server (at worst
//! the job is recovered from its last checkpoint).

use crate::Db;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Lease {
    pub job_id: Uuid,
    pub lease_id: Uuid,
    pub project_id: Uuid,
    pub worker_id: String,
    pub expires_ms: i64,
    pub last_tick_ms: i64,
}

/// Records a new lease (before the dispatch is appended: a crash between
/// the two leaves a lease that expires harmlessly). Fails when the job
/// already has one.
pub async fn insert(db: &Db, lease: &Lease) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO worker_leases (job_id, lease_id, project_id, worker_id, expires_ms, last_tick_ms)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id) DO NOTHING";
    let n = on_writer!(db, |pool| sqlx::query(sql)
        .bind(lease.job_id)
        .bind(lease.lease_id)
        .bind(lease.project_id)
        .bind(&lease.worker_id)
        .bind(lease.expires_ms)
        .bind(lease.last_tick_ms)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(n == 1)
}

/// Extends a lease; `false` when it is gone (expired and reclaimed).
pub async fn heartbeat(db: &Db, lease_id: Uuid, expires_ms: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE worker_leases SET expires_ms = $1 WHERE lease_id = $2";
    let n = on_writer!(db, |pool| sqlx::query(sql)
        .bind(expires_ms)
        .bind(lease_id)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(n == 1)
}

/// Records that cost was charged up to `at_ms`.
pub async fn ticked(db: &Db, lease_id: Uuid, at_ms: i64) -> Result<(), sqlx::Error> {
    let sql = "UPDATE worker_leases SET last_tick_ms = $1 WHERE lease_id = $2";
    on_writer!(db, |pool| sqlx::query(sql)
        .bind(at_ms)
        .bind(lease_id)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn remove(db: &Db, lease_id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM worker_leases WHERE lease_id = $1";
    on_writer!(db, |pool| sqlx::query(sql)
        .bind(lease_id)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// Every lease (the reconciler's view: few rows, one per running job).
pub async fn all(db: &Db) -> Result<Vec<Lease>, sqlx::Error> {
    let sql = "SELECT job_id, lease_id, project_id, worker_id, expires_ms, last_tick_ms FROM worker_leases";
    on_writer!(db, |pool| sqlx::query_as(sql).fetch_all(pool).await)
}
