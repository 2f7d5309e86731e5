//! A managed job as the screens read it: its training row (spend, budget,
//! progress), checkpoints, log lines, cost over time, budget alerts, the
//! errors of failed jobs grouped by fingerprint, and the jobs waiting for a
//! worker.

use crate::json_text::JsonText;
use crate::views::catalog::escape_like;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TrainingRow {
    pub job_id: Uuid,
    pub dataset_id: Uuid,
    pub dataset_digest: String,
    pub config_hash: String,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub warnings: serde_json::Value,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub estimates: serde_json::Value,
    pub rate_usd_per_hour: f64,
    pub max_cost_usd: Option<f64>,
    pub max_runtime_minutes: Option<i64>,
    pub spent_usd: f64,
    pub billable_ms: i64,
    pub total_steps: Option<i64>,
    pub last_checkpoint: Option<i64>,
    pub attempt: i64,
    pub recovery_count: i64,
    pub worker_id: Option<String>,
    pub pause_reason: Option<String>,
    pub paused_warning: Option<String>,
}

/// The training facts of a managed job (callers check its project first).
pub async fn training(db: &Db, job: Uuid) -> Result<Option<TrainingRow>, sqlx::Error> {
    let sql = "SELECT * FROM training_jobs WHERE job_id = $1";
    crate::fetch!(db, fetch_optional, TrainingRow, sql, job)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CheckpointRow {
    pub job_id: Uuid,
    pub step: i64,
    pub epoch: f64,
    pub path: String,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub files: serde_json::Value,
    pub eval_loss: Option<f64>,
    pub train_loss: Option<f64>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub pruned: bool,
}

/// A job's checkpoints by step; pruned ones only when asked.
pub async fn checkpoints(
    db: &Db,
    job: Uuid,
    include_pruned: bool,
) -> Result<Vec<CheckpointRow>, sqlx::Error> {
    let sql = "SELECT * FROM checkpoints WHERE job_id = $1 AND ($2 OR NOT pruned) ORDER BY step";
    crate::fetch!(db, fetch_all, CheckpointRow, sql, job, include_pruned)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LogRow {
    pub position: i64,
    pub idx: i64,
    pub ts_ms: i64,
    pub level: String,
    pub source: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Lines at this level or above (`debug` < `info` < `warn` < `error`).
    pub min_level: Option<i64>,
    /// A substring of the message (case-insensitive).
    pub search: Option<String>,
    /// Only lines after this `(position, idx)` cursor.
    pub after: Option<(i64, i64)>,
}

/// A job's log lines in order, `limit` at most.
pub async fn logs(
    db: &Db,
    job: Uuid,
    filter: &LogFilter,
    limit: i64,
) -> Result<Vec<LogRow>, sqlx::Error> {
    let like = filter
        .search
        .as_ref()
        .map(|t| format!("%{}%", escape_like(&t.to_lowercase())));
    let (after_pos, after_idx) = filter.after.unwrap_or((-1, -1));
    let sql = "SELECT position, idx, ts_ms, level, source, message FROM job_logs
               WHERE job_id = $1 AND level_n >= $2
                 AND ($3 IS NULL OR LOWER(message) LIKE $3 ESCAPE '\\')
                 AND (position > $4 OR (position = $4 AND idx > $5))
               ORDER BY position, idx LIMIT $6";
    crate::fetch!(
        db,
        fetch_all,
        LogRow,
        sql,
        job,
        filter.min_level.unwrap_or(0),
        like,
        after_pos,
        after_idx,
        limit
    )
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorGroup {
    pub fingerprint: String,
    pub kind: String,
    /// The message of the latest occurrence.
    pub message: String,
    pub frames: serde_json::Value,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub job_ids: Vec<Uuid>,
}

/// One failed job's error, as stored.
#[derive(sqlx::FromRow)]
struct ErrorRow {
    job_id: Uuid,
    fingerprint: String,
    kind: String,
    message: String,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    frames: serde_json::Value,
    at: DateTime<Utc>,
}

/// Errors of the project's failed jobs grouped by fingerprint, most recent first.
pub async fn errors(
    db: &Db,
    project: Uuid,
    fingerprint: Option<&str>,
    search: Option<&str>,
    limit: usize,
) -> Result<Vec<ErrorGroup>, sqlx::Error> {
    let like = search.map(|t| format!("%{}%", escape_like(&t.to_lowercase())));
    let sql = "SELECT job_id, fingerprint, kind, message, frames, at FROM job_errors
               WHERE project_id = $1 AND ($2 IS NULL OR fingerprint = $2)
                 AND ($3 IS NULL OR LOWER(message) LIKE $3 ESCAPE '\\')
               ORDER BY at";
    let rows = crate::fetch!(db, fetch_all, ErrorRow, sql, project, fingerprint, like)?;
    let mut groups: Vec<ErrorGroup> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|g| g.fingerprint == r.fingerprint) {
            Some(g) => {
                g.count += 1;
                g.last_seen = r.at;
                g.message = r.message;
                g.job_ids.push(r.job_id);
            }
            None => groups.push(ErrorGroup {
                fingerprint: r.fingerprint,
                kind: r.kind,
                message: r.message,
                frames: r.frames,
                count: 1,
                first_seen: r.at,
                last_seen: r.at,
                job_ids: vec![r.job_id],
            }),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.last_seen));
    groups.truncate(limit);
    Ok(groups)
}

/// Spend in `[from_ms, to_ms)` buckets of `bucket_ms`, for one job or a
/// whole project: `(bucket start ms, usd)`, only buckets with spend.
pub async fn spend_over_time(
    db: &Db,
    project: Uuid,
    job: Option<Uuid>,
    bucket_ms: i64,
) -> Result<Vec<(i64, f64)>, sqlx::Error> {
    let sql = "SELECT (to_ms / $1) * $1 AS bucket, SUM(usd) AS usd FROM cost_ticks
               WHERE project_id = $2 AND ($3 IS NULL OR job_id = $3)
               GROUP BY (to_ms / $1) * $1 ORDER BY bucket";
    crate::fetch!(
        db,
        fetch_all,
        (i64, f64),
        sql,
        bucket_ms.max(1),
        project,
        job
    )
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BudgetAlertRow {
    pub position: i64,
    pub percent: i64,
    pub spent_usd: f64,
    pub max_cost_usd: f64,
    pub at: DateTime<Utc>,
}

pub async fn budget_alerts(db: &Db, job: Uuid) -> Result<Vec<BudgetAlertRow>, sqlx::Error> {
    let sql = "SELECT position, percent, spent_usd, max_cost_usd, at FROM budget_alerts
               WHERE job_id = $1 ORDER BY position";
    crate::fetch!(db, fetch_all, BudgetAlertRow, sql, job)
}

/// Managed jobs waiting for a worker (queued, or recovering without one),
/// oldest first; only `project`'s when given.
pub async fn claimable_jobs(
    db: &Db,
    project: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = "SELECT j.job_id FROM jobs j JOIN training_jobs t ON t.job_id = j.job_id
               WHERE j.status IN ('queued', 'recovering') AND t.worker_id IS NULL
                 AND ($1 IS NULL OR j.project_id = $1)
               ORDER BY j.seq LIMIT $2";
    let ids = crate::fetch!(db, fetch_all, (Uuid,), sql, project, limit)?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}
