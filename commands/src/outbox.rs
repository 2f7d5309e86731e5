//! The outbox: intents waiting to be carried out (`domain::process`).
//!
//! A process manager enqueues in its own transaction, beside its checkpoint
//! ([`ENQUEUE_SQL`]); dispatchers [`claim`] due intents under a lease, so
//! two `serve` processes never carry out one intent at once, and [`settle`]
//! each (done, retry at a time with backoff, or dead letter). A lease that
//! runs out (its process died) makes the intent due again.

use crate::Db;
use ftl_domain::process::{Intent, Settlement};
use uuid::Uuid;

/// Inserts an intent (binds: intent id, kind, payload JSON, causing log
/// position, now in ms); an intent already there — a replay — is left alone.
pub const ENQUEUE_SQL: &str = "INSERT INTO outbox (intent_id, kind, payload, caused_at, status, attempts, available_ms, created_ms)
     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) ON CONFLICT (intent_id) DO NOTHING";

/// The binds of [`ENQUEUE_SQL`] for an intent.
pub fn enqueue_binds(intent: &Intent) -> Result<(Uuid, &'static str, String), serde_json::Error> {
    Ok((intent.id(), intent.kind(), serde_json::to_string(intent)?))
}

/// An intent claimed by a dispatcher.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Claimed {
    pub intent_id: Uuid,
    pub kind: String,
    pub payload: String,
    /// This attempt's number (1 for the first).
    pub attempts: i64,
}

impl Claimed {
    pub fn intent(&self) -> Result<Intent, serde_json::Error> {
        serde_json::from_str(&self.payload)
    }
}

/// One outbox row, as an operator (or a test) sees it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Row {
    pub intent_id: Uuid,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub caused_at: i64,
}

/// Claims up to `limit` due intents of `kind` for `lease_ms`, counting the
/// attempt. Each is claimed by one caller at a time.
pub async fn claim(
    db: &Db,
    kind: &str,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    // Most polls find nothing due: look before taking SQLite's write lock.
    let due =
        "SELECT intent_id FROM outbox WHERE kind = $1 AND status = 'pending' AND available_ms <= $2
               AND (lease_until IS NULL OR lease_until < $2) LIMIT 1";
    let any: Option<Uuid> = on_writer!(db, |pool| sqlx::query_scalar(due)
        .bind(kind)
        .bind(now_ms)
        .fetch_optional(pool)
        .await?);
    if any.is_none() {
        return Ok(vec![]);
    }
    // PostgreSQL: rows another claimer is updating are skipped, not waited
    // for. SQLite has one writer, so the sub-select is already exclusive.
    let lock = if matches!(db, Db::Postgres(_)) {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1
         WHERE intent_id IN (
             SELECT intent_id FROM outbox
             WHERE kind = $3 AND status = 'pending' AND available_ms <= $4
               AND (lease_until IS NULL OR lease_until < $4)
             ORDER BY available_ms LIMIT $5 {lock})
         RETURNING intent_id, kind, payload, attempts"
    );
    on_writer!(db, |pool| sqlx::query_as::<_, Claimed>(
        sqlx::AssertSqlSafe(sql)
    )
    .bind(owner)
    .bind(now_ms + lease_ms)
    .bind(kind)
    .bind(now_ms)
    .bind(limit)
    .fetch_all(pool)
    .await)
}

/// Records how an attempt ended; `false` when `owner` no longer held the
/// intent (its lease ran out and another claimer took it).
pub async fn settle(
    db: &Db,
    intent: Uuid,
    owner: &str,
    settlement: &Settlement,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let (status, available, error) = match settlement {
        Settlement::Done => ("done", now_ms, None),
        Settlement::Retry { at_ms, error } => ("pending", *at_ms, Some(error.as_str())),
        Settlement::Dead { error } => ("dead", now_ms, Some(error.as_str())),
    };
    let finished = (status != "pending").then_some(now_ms);
    let sql = "UPDATE outbox SET status = $1, available_ms = $2, last_error = $3, finished_ms = $4,
                      lease_owner = NULL, lease_until = NULL
               WHERE intent_id = $5 AND lease_owner = $6";
    let n = on_writer!(db, |pool| sqlx::query(sql)
        .bind(status)
        .bind(available)
        .bind(error)
        .bind(finished)
        .bind(intent)
        .bind(owner)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(n == 1)
}

/// Every intent, oldest cause first.
pub async fn rows(db: &Db) -> Result<Vec<Row>, sqlx::Error> {
    let sql = "SELECT intent_id, kind, status, attempts, last_error, caused_at FROM outbox ORDER BY caused_at, intent_id";
    on_writer!(db, |pool| sqlx::query_as::<_, Row>(sql)
        .fetch_all(pool)
        .await)
}
