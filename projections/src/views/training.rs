//! Managed training as the screens read it: a job's spend, budget and
//! progress, its checkpoints, log lines, cost ticks and budget alerts, the
//! errors that failed jobs (grouped by fingerprint), and the project's
//! datasets and models.

use super::{to_sql_f64, types};
use crate::json_text::JsonText;
use crate::runner::{Decoded, Projection, ProjectionError};
use crate::{DbTx, execute};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use ftl_domain::DomainEvent;
use ftl_domain::job::{JobEvent, ManagedEvent};
use ftl_domain::registry::Capabilities;
use sqlx::Row;
use uuid::Uuid;

pub struct TrainingProjection;

#[async_trait]
impl Projection for TrainingProjection {
    fn name(&self) -> &'static str {
        "training"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "training_jobs",
            "checkpoints",
            "job_logs",
            "job_errors",
            "cost_ticks",
            "budget_alerts",
            "datasets",
            "models",
        ]
    }

    fn ddl(&self, postgres: bool, s: &str) -> String {
        let t = types(postgres);
        let (u, ts, f) = (t.uuid, t.ts, t.float);
        format!(
            "CREATE TABLE IF NOT EXISTS training_jobs{s} (
                job_id {u} PRIMARY KEY, project_id {u} NOT NULL, dataset_id {u} NOT NULL,
                dataset_digest TEXT NOT NULL, config_hash TEXT NOT NULL, warnings TEXT NOT NULL,
                estimates TEXT NOT NULL, rate_usd_per_hour {f} NOT NULL, max_cost_usd {f},
                max_runtime_minutes BIGINT, spent_usd {f} NOT NULL, billable_ms BIGINT NOT NULL,
                total_steps BIGINT, last_checkpoint BIGINT, attempt BIGINT NOT NULL,
                recovery_count BIGINT NOT NULL, worker_id TEXT, pause_reason TEXT, paused_warning TEXT);
             CREATE TABLE IF NOT EXISTS checkpoints{s} (
                job_id {u} NOT NULL, step BIGINT NOT NULL, epoch {f} NOT NULL, path TEXT NOT NULL,
                files TEXT NOT NULL, eval_loss {f}, train_loss {f}, reason TEXT NOT NULL,
                created_at {ts} NOT NULL, pruned BOOLEAN NOT NULL, PRIMARY KEY (job_id, step));
             CREATE TABLE IF NOT EXISTS job_logs{s} (
                job_id {u} NOT NULL, position BIGINT NOT NULL, idx BIGINT NOT NULL, ts_ms BIGINT NOT NULL,
                level TEXT NOT NULL, level_n BIGINT NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL,
                PRIMARY KEY (job_id, position, idx));
             CREATE TABLE IF NOT EXISTS job_errors{s} (
                job_id {u} PRIMARY KEY, project_id {u} NOT NULL, fingerprint TEXT NOT NULL,
                kind TEXT NOT NULL, message TEXT NOT NULL, frames TEXT NOT NULL, at {ts} NOT NULL);
             CREATE INDEX IF NOT EXISTS job_errors{s}_by_fp ON job_errors{s} (project_id, fingerprint);
             CREATE TABLE IF NOT EXISTS cost_ticks{s} (
                position BIGINT PRIMARY KEY, job_id {u} NOT NULL, project_id {u} NOT NULL,
                from_ms BIGINT NOT NULL, to_ms BIGINT NOT NULL, usd {f} NOT NULL);
             CREATE INDEX IF NOT EXISTS cost_ticks{s}_by_project ON cost_ticks{s} (project_id, to_ms);
             CREATE INDEX IF NOT EXISTS cost_ticks{s}_by_job ON cost_ticks{s} (job_id, to_ms);
             CREATE TABLE IF NOT EXISTS budget_alerts{s} (
                position BIGINT PRIMARY KEY, job_id {u} NOT NULL, percent BIGINT NOT NULL,
                spent_usd {f} NOT NULL, max_cost_usd {f} NOT NULL, at {ts} NOT NULL);
             CREATE TABLE IF NOT EXISTS datasets{s} (
                dataset_id {u} PRIMARY KEY, project_id {u} NOT NULL, name TEXT NOT NULL, uri TEXT NOT NULL,
                size BIGINT NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL, examples BIGINT NOT NULL,
                created_at {ts} NOT NULL, seq BIGINT NOT NULL);
             CREATE TABLE IF NOT EXISTS models{s} (
                model_id {u} PRIMARY KEY, project_id {u} NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
                job_id {u}, checkpoint_step BIGINT, checkpoint_path TEXT, base_model TEXT,
                dataset_digest TEXT, architecture TEXT,
                provider TEXT, base_url TEXT, remote_model TEXT, api_key_sealed TEXT,
                capabilities TEXT NOT NULL, capabilities_source TEXT NOT NULL,
                input_usd_per_mtok {f}, output_usd_per_mtok {f},
                created_at {ts} NOT NULL, seq BIGINT NOT NULL);"
        )
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type == "job.logs_appended"
            || event_type == "job.created"
            || event_type == "dataset.registered"
            || event_type == "model.registered"
            || event_type == "model.external_registered"
            || event_type == "model.price_set"
            || ManagedEvent::TYPES.contains(&event_type)
    }

    async fn apply(
        &self,
        tx: &mut DbTx,
        s: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        for d in events {
            let at = d.recorded_at;
            let pos = d.position as i64;
            match &d.event {
                DomainEvent::LogsAppended(e) => {
                    let sql = format!(
                        "INSERT INTO job_logs{s} (job_id, position, idx, ts_ms, level, level_n, source, message)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
                    );
                    for (i, l) in e.lines.iter().enumerate() {
                        execute!(
                            tx,
                            sql.clone(),
                            e.job_id.0,
                            pos,
                            i as i64,
                            l.timestamp_ms,
                            l.level.as_str(),
                            l.level as i64,
                            &l.source,
                            &l.message
                        )?;
                    }
                }
                DomainEvent::DatasetRegistered(e) => {
                    let sql = format!(
                        "INSERT INTO datasets{s} (dataset_id, project_id, name, uri, size, sha256, kind, examples, created_at, seq)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
                    );
                    execute!(
                        tx,
                        sql,
                        e.dataset_id.0,
                        e.project_id.0,
                        &e.name,
                        &e.uri,
                        e.size as i64,
                        &e.sha256,
                        &e.kind,
                        e.examples as i64,
                        at,
                        pos
                    )?;
                }
                DomainEvent::ModelRegistered(e) => {
                    let sql = format!(
                        "INSERT INTO models{s} (model_id, project_id, name, kind, job_id, checkpoint_step, checkpoint_path,
                            base_model, dataset_digest, architecture, capabilities, capabilities_source, created_at, seq)
                         VALUES ($1, $2, $3, 'local', $4, $5, $6, $7, $8, $9, $10, 'default', $11, $12)
                         ON CONFLICT DO NOTHING"
                    );
                    execute!(
                        tx,
                        sql,
                        e.model_id.0,
                        e.project_id.0,
                        &e.name,
                        e.job_id.0,
                        e.checkpoint_step as i64,
                        &e.checkpoint_path,
                        &e.base_model,
                        &e.dataset_digest,
                        e.architecture.to_string(),
                        json_text(&LOCAL_CAPABILITIES),
                        at,
                        pos
                    )?;
                }
                DomainEvent::ExternalModelRegistered(e) => {
                    let sql = format!(
                        "INSERT INTO models{s} (model_id, project_id, name, kind, provider, base_url, remote_model,
                            api_key_sealed, capabilities, capabilities_source, created_at, seq)
                         VALUES ($1, $2, $3, 'external', $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
                    );
                    execute!(
                        tx,
                        sql,
                        e.model_id.0,
                        e.project_id.0,
                        &e.name,
                        &e.provider,
                        &e.base_url,
                        &e.remote_model,
                        e.api_key_sealed.clone(),
                        json_text(&e.capabilities),
                        &e.capabilities_source,
                        at,
                        pos
                    )?;
                }
                DomainEvent::ModelPriceSet(e) => {
                    let sql = format!(
                        "UPDATE models{s} SET input_usd_per_mtok = $1, output_usd_per_mtok = $2 WHERE model_id = $3"
                    );
                    execute!(
                        tx,
                        sql,
                        e.input_usd_per_mtok,
                        e.output_usd_per_mtok,
                        e.model_id.0
                    )?;
                }
                DomainEvent::Job(JobEvent::Managed(m)) => apply_managed(tx, s, d, m).await?,
                _ => {}
            }
        }
        Ok(())
    }
}

async fn apply_managed(
    tx: &mut DbTx,
    s: &str,
    d: &Decoded,
    m: &ManagedEvent,
) -> Result<(), ProjectionError> {
    let at = d.recorded_at;
    let pos = d.position as i64;
    let job = m.job_id().0;
    let project = d.metadata.project_id.map(|p| p.0);
    match m {
        ManagedEvent::Validated(v) => {
            let budget = ftl_domain::job::budget::Budget::from_config(&v.normalized_config);
            let total_steps = v
                .estimates
                .get("total_steps")
                .and_then(serde_json::Value::as_i64);
            let sql = format!(
                "INSERT INTO training_jobs{s} (job_id, project_id, dataset_id, dataset_digest, config_hash, warnings,
                    estimates, rate_usd_per_hour, max_cost_usd, max_runtime_minutes, spent_usd, billable_ms,
                    total_steps, attempt, recovery_count)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, $11, 0, 0) ON CONFLICT DO NOTHING"
            );
            execute!(
                tx,
                sql,
                job,
                project.unwrap_or_default(),
                v.dataset.dataset_id,
                &v.dataset.digest,
                &v.config_hash,
                v.warnings.to_string(),
                v.estimates.to_string(),
                v.rate_usd_per_hour,
                budget.max_cost_usd,
                budget.max_runtime_minutes.map(|m| m as i64),
                total_steps
            )?;
        }
        ManagedEvent::Dispatched(e) => {
            let sql = format!(
                "UPDATE training_jobs{s} SET worker_id = $1, attempt = $2 WHERE job_id = $3"
            );
            execute!(tx, sql, &e.worker_id, i64::from(e.attempt), job)?;
        }
        ManagedEvent::PauseRequested(e) => {
            let sql = format!("UPDATE training_jobs{s} SET pause_reason = $1 WHERE job_id = $2");
            execute!(tx, sql, e.reason.as_str(), job)?;
        }
        ManagedEvent::Paused(e) => {
            let sql = format!(
                "UPDATE training_jobs{s} SET worker_id = NULL, pause_reason = $1, paused_warning = $2 WHERE job_id = $3"
            );
            execute!(tx, sql, e.reason.as_str(), e.warning.clone(), job)?;
        }
        ManagedEvent::ResumeRequested(e) => {
            let sql = format!(
                "UPDATE training_jobs{s} SET pause_reason = NULL, paused_warning = NULL WHERE job_id = $1"
            );
            execute!(tx, sql, job)?;
            if let Some(b) = &e.budget {
                let sql = format!(
                    "UPDATE training_jobs{s} SET max_cost_usd = $1, max_runtime_minutes = $2 WHERE job_id = $3"
                );
                execute!(
                    tx,
                    sql,
                    b.max_cost_usd,
                    b.max_runtime_minutes.map(|m| m as i64),
                    job
                )?;
            }
        }
        ManagedEvent::RecoveryStarted(e) => {
            let sql = format!(
                "UPDATE training_jobs{s} SET worker_id = NULL, recovery_count = $1 WHERE job_id = $2"
            );
            execute!(tx, sql, i64::from(e.recovery_count), job)?;
        }
        ManagedEvent::CheckpointSaved(e) => {
            let sql = format!(
                "INSERT INTO checkpoints{s} (job_id, step, epoch, path, files, eval_loss, train_loss, reason, created_at, pruned)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE) ON CONFLICT DO NOTHING"
            );
            execute!(
                tx,
                sql,
                job,
                e.step as i64,
                e.epoch,
                &e.path,
                serde_json::to_string(&e.files).unwrap_or_else(|_| "[]".into()),
                e.eval_loss.and_then(to_sql_f64),
                e.train_loss.and_then(to_sql_f64),
                &e.reason,
                at
            )?;
            let sql = format!("UPDATE training_jobs{s} SET last_checkpoint = $1 WHERE job_id = $2");
            execute!(tx, sql, e.step as i64, job)?;
        }
        ManagedEvent::CheckpointPruned(e) => {
            let sql =
                format!("UPDATE checkpoints{s} SET pruned = TRUE WHERE job_id = $1 AND step = $2");
            execute!(tx, sql, job, e.step as i64)?;
        }
        ManagedEvent::CostAccrued(e) => {
            let sql = format!(
                "UPDATE training_jobs{s} SET spent_usd = spent_usd + $1, billable_ms = billable_ms + $2,
                    rate_usd_per_hour = $3 WHERE job_id = $4"
            );
            execute!(
                tx,
                sql,
                e.usd,
                e.to_ms - e.from_ms,
                e.rate_usd_per_hour,
                job
            )?;
            let sql = format!(
                "INSERT INTO cost_ticks{s} (position, job_id, project_id, from_ms, to_ms, usd)
                 SELECT $1, job_id, project_id, $2, $3, $4 FROM training_jobs{s} WHERE job_id = $5
                 ON CONFLICT DO NOTHING"
            );
            execute!(tx, sql, pos, e.from_ms, e.to_ms, e.usd, job)?;
        }
        ManagedEvent::BudgetThresholdCrossed(e) => {
            let sql = format!(
                "INSERT INTO budget_alerts{s} (position, job_id, percent, spent_usd, max_cost_usd, at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
            );
            execute!(
                tx,
                sql,
                pos,
                job,
                i64::from(e.percent),
                e.spent_usd,
                e.max_cost_usd,
                at
            )?;
        }
        ManagedEvent::ErrorRecorded(e) => {
            let sql = format!(
                "INSERT INTO job_errors{s} (job_id, project_id, fingerprint, kind, message, frames, at)
                 SELECT $1, project_id, $2, $3, $4, $5, $6 FROM training_jobs{s} WHERE job_id = $1
                 ON CONFLICT DO NOTHING"
            );
            execute!(
                tx,
                sql,
                job,
                &e.fingerprint,
                &e.kind,
                &e.message,
                serde_json::to_string(&e.frames).unwrap_or_else(|_| "[]".into()),
                at
            )?;
        }
        ManagedEvent::Recovered(_) | ManagedEvent::CancelRequested(_) => {}
    }
    Ok(())
}

// ---- queries -------------------------------------------------------------

/// Row mappers are macros: each expands inside `on_pool!` for the concrete
/// row type of either backend.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRow {
    pub job_id: Uuid,
    pub dataset_id: Uuid,
    pub dataset_digest: String,
    pub config_hash: String,
    pub warnings: serde_json::Value,
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

macro_rules! training_row {
    ($r:expr) => {{
        let r = $r;
        (|| -> Result<TrainingRow, sqlx::Error> {
            Ok(TrainingRow {
                job_id: r.try_get("job_id")?,
                dataset_id: r.try_get("dataset_id")?,
                dataset_digest: r.try_get("dataset_digest")?,
                config_hash: r.try_get("config_hash")?,
                warnings: crate::json_col!(r, "warnings")?,
                estimates: crate::json_col!(r, "estimates")?,
                rate_usd_per_hour: r.try_get("rate_usd_per_hour")?,
                max_cost_usd: r.try_get("max_cost_usd")?,
                max_runtime_minutes: r.try_get("max_runtime_minutes")?,
                spent_usd: r.try_get("spent_usd")?,
                billable_ms: r.try_get("billable_ms")?,
                total_steps: r.try_get("total_steps")?,
                last_checkpoint: r.try_get("last_checkpoint")?,
                attempt: r.try_get("attempt")?,
                recovery_count: r.try_get("recovery_count")?,
                worker_id: r.try_get("worker_id")?,
                pause_reason: r.try_get("pause_reason")?,
                paused_warning: r.try_get("paused_warning")?,
            })
        })()
    }};
}

/// The training facts of a managed job (callers check its project first).
pub async fn training(db: &Db, job: Uuid) -> Result<Option<TrainingRow>, sqlx::Error> {
    let sql = "SELECT * FROM training_jobs WHERE job_id = $1";
    crate::on_pool!(db, |pool| sqlx::query(sql)
        .bind(job)
        .fetch_optional(pool)
        .await?
        .map(|r| training_row!(&r))
        .transpose())
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRow {
    pub job_id: Uuid,
    pub step: i64,
    pub epoch: f64,
    pub path: String,
    pub files: serde_json::Value,
    pub eval_loss: Option<f64>,
    pub train_loss: Option<f64>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub pruned: bool,
}

macro_rules! checkpoint_row {
    ($r:expr) => {{
        let r = $r;
        (|| -> Result<CheckpointRow, sqlx::Error> {
            Ok(CheckpointRow {
                job_id: r.try_get("job_id")?,
                step: r.try_get("step")?,
                epoch: r.try_get("epoch")?,
                path: r.try_get("path")?,
                files: crate::json_col!(r, "files")?,
                eval_loss: r.try_get::<Option<f64>, _>("eval_loss")?,
                train_loss: r.try_get::<Option<f64>, _>("train_loss")?,
                reason: r.try_get("reason")?,
                created_at: r.try_get("created_at")?,
                pruned: r.try_get("pruned")?,
            })
        })()
    }};
}

/// A job's checkpoints by step; pruned ones only when asked.
pub async fn checkpoints(
    db: &Db,
    job: Uuid,
    include_pruned: bool,
) -> Result<Vec<CheckpointRow>, sqlx::Error> {
    let sql = "SELECT * FROM checkpoints WHERE job_id = $1 AND ($2 OR NOT pruned) ORDER BY step";
    crate::on_pool!(db, |pool| sqlx::query(sql)
        .bind(job)
        .bind(include_pruned)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| checkpoint_row!(r))
        .collect())
}

#[derive(Debug, Clone, PartialEq)]
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
        .map(|t| format!("%{}%", super::catalog::escape_like(&t.to_lowercase())));
    let (after_pos, after_idx) = filter.after.unwrap_or((-1, -1));
    let sql = "SELECT position, idx, ts_ms, level, source, message FROM job_logs
               WHERE job_id = $1 AND level_n >= $2
                 AND ($3 IS NULL OR LOWER(message) LIKE $3 ESCAPE '\\')
                 AND (position > $4 OR (position = $4 AND idx > $5))
               ORDER BY position, idx LIMIT $6";
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql)
            .bind(job)
            .bind(filter.min_level.unwrap_or(0))
            .bind(like)
            .bind(after_pos)
            .bind(after_idx)
            .bind(limit)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LogRow {
                    position: r.try_get("position")?,
                    idx: r.try_get("idx")?,
                    ts_ms: r.try_get("ts_ms")?,
                    level: r.try_get("level")?,
                    source: r.try_get("source")?,
                    message: r.try_get("message")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
    })
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

/// Errors of the project's failed jobs grouped by fingerprint, most recent first.
pub async fn errors(
    db: &Db,
    project: Uuid,
    fingerprint: Option<&str>,
    search: Option<&str>,
    limit: usize,
) -> Result<Vec<ErrorGroup>, sqlx::Error> {
    let like = search.map(|t| format!("%{}%", super::catalog::escape_like(&t.to_lowercase())));
    let sql = "SELECT job_id, fingerprint, kind, message, frames, at FROM job_errors
               WHERE project_id = $1 AND ($2 IS NULL OR fingerprint = $2)
                 AND ($3 IS NULL OR LOWER(message) LIKE $3 ESCAPE '\\')
               ORDER BY at";
    type ErrorRow = (
        Uuid,
        String,
        String,
        String,
        JsonText<serde_json::Value>,
        DateTime<Utc>,
    );
    let rows: Vec<ErrorRow> = crate::on_pool!(db, |pool| {
        sqlx::query_as(sql)
            .bind(project)
            .bind(fingerprint)
            .bind(like)
            .fetch_all(pool)
            .await?
    });
    let mut groups: Vec<ErrorGroup> = Vec::new();
    for (job, fp, kind, message, frames, at) in rows {
        match groups.iter_mut().find(|g| g.fingerprint == fp) {
            Some(g) => {
                g.count += 1;
                g.last_seen = at;
                g.message = message;
                g.job_ids.push(job);
            }
            None => groups.push(ErrorGroup {
                fingerprint: fp,
                kind,
                message,
                frames: frames.0,
                count: 1,
                first_seen: at,
                last_seen: at,
                job_ids: vec![job],
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
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql)
            .bind(bucket_ms.max(1))
            .bind(project)
            .bind(job)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("bucket")?, r.try_get("usd")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
    })
}

#[derive(Debug, Clone, PartialEq)]
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
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql).bind(job).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(BudgetAlertRow {
                    position: r.try_get("position")?,
                    percent: r.try_get("percent")?,
                    spent_usd: r.try_get("spent_usd")?,
                    max_cost_usd: r.try_get("max_cost_usd")?,
                    at: r.try_get("at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    pub dataset_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub uri: String,
    pub size: i64,
    pub sha256: String,
    pub kind: String,
    pub examples: i64,
    pub created_at: DateTime<Utc>,
}

macro_rules! dataset_row {
    ($r:expr) => {{
        let r = $r;
        (|| -> Result<DatasetRow, sqlx::Error> {
            Ok(DatasetRow {
                dataset_id: r.try_get("dataset_id")?,
                project_id: r.try_get("project_id")?,
                name: r.try_get("name")?,
                uri: r.try_get("uri")?,
                size: r.try_get("size")?,
                sha256: r.try_get("sha256")?,
                kind: r.try_get("kind")?,
                examples: r.try_get("examples")?,
                created_at: r.try_get("created_at")?,
            })
        })()
    }};
}

pub async fn dataset(db: &Db, project: Uuid, id: Uuid) -> Result<Option<DatasetRow>, sqlx::Error> {
    let sql = "SELECT * FROM datasets WHERE dataset_id = $1 AND project_id = $2";
    crate::on_pool!(db, |pool| sqlx::query(sql)
        .bind(id)
        .bind(project)
        .fetch_optional(pool)
        .await?
        .map(|r| dataset_row!(&r))
        .transpose())
}

pub async fn datasets(db: &Db, project: Uuid, limit: i64) -> Result<Vec<DatasetRow>, sqlx::Error> {
    let sql = "SELECT * FROM datasets WHERE project_id = $1 ORDER BY seq DESC LIMIT $2";
    crate::on_pool!(db, |pool| sqlx::query(sql)
        .bind(project)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| dataset_row!(r))
        .collect())
}

/// What serves a model: its weights here, or another API.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A checkpoint trained here, with its lineage.
    Local {
        job_id: Uuid,
        checkpoint_step: i64,
        checkpoint_path: String,
        base_model: String,
        dataset_digest: String,
        architecture: serde_json::Value,
    },
    /// An OpenAI-compatible or Anthropic endpoint.
    External {
        provider: String,
        base_url: String,
        remote_model: String,
        /// Sealed; opened only to call the provider.
        api_key_sealed: Option<String>,
    },
}

/// Models trained here stream their answers; the rest they lack.
pub const LOCAL_CAPABILITIES: Capabilities = Capabilities {
    streaming: true,
    tools: false,
    vision: false,
    json_mode: false,
};

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub model_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub source: ModelSource,
    pub capabilities: Capabilities,
    /// `declared` or `default`.
    pub capabilities_source: String,
    /// USD per million input and output tokens, when priced.
    pub price: Option<(f64, f64)>,
    pub created_at: DateTime<Utc>,
}

impl ModelRow {
    /// The lineage of a model trained here.
    pub fn local(&self) -> Option<(Uuid, i64, &str, &serde_json::Value)> {
        match &self.source {
            ModelSource::Local {
                job_id,
                checkpoint_step,
                checkpoint_path,
                architecture,
                ..
            } => Some((*job_id, *checkpoint_step, checkpoint_path, architecture)),
            ModelSource::External { .. } => None,
        }
    }

    /// The cost of an exchange at this model's price, if it has one.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Option<f64> {
        self.price.map(|(input, output)| {
            (prompt_tokens as f64 * input + completion_tokens as f64 * output) / 1_000_000.0
        })
    }
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

macro_rules! model_row {
    ($r:expr) => {{
        let r = $r;
        (|| -> Result<ModelRow, sqlx::Error> {
            let kind: String = r.try_get("kind")?;
            let source = if kind == "local" {
                ModelSource::Local {
                    job_id: r.try_get::<Option<Uuid>, _>("job_id")?.unwrap_or_default(),
                    checkpoint_step: r.try_get::<Option<i64>, _>("checkpoint_step")?.unwrap_or(0),
                    checkpoint_path: r
                        .try_get::<Option<String>, _>("checkpoint_path")?
                        .unwrap_or_default(),
                    base_model: r
                        .try_get::<Option<String>, _>("base_model")?
                        .unwrap_or_default(),
                    dataset_digest: r
                        .try_get::<Option<String>, _>("dataset_digest")?
                        .unwrap_or_default(),
                    architecture: r
                        .try_get::<Option<JsonText<_>>, _>("architecture")?
                        .map(|a| a.0)
                        .unwrap_or_default(),
                }
            } else {
                ModelSource::External {
                    provider: r
                        .try_get::<Option<String>, _>("provider")?
                        .unwrap_or_default(),
                    base_url: r
                        .try_get::<Option<String>, _>("base_url")?
                        .unwrap_or_default(),
                    remote_model: r
                        .try_get::<Option<String>, _>("remote_model")?
                        .unwrap_or_default(),
                    api_key_sealed: r.try_get("api_key_sealed")?,
                }
            };
            let input: Option<f64> = r.try_get("input_usd_per_mtok")?;
            let output: Option<f64> = r.try_get("output_usd_per_mtok")?;
            Ok(ModelRow {
                model_id: r.try_get("model_id")?,
                project_id: r.try_get("project_id")?,
                name: r.try_get("name")?,
                source,
                capabilities: crate::json_col!(r, "capabilities")?,
                capabilities_source: r.try_get("capabilities_source")?,
                price: input.zip(output),
                created_at: r.try_get("created_at")?,
            })
        })()
    }};
}

pub async fn model(db: &Db, project: Uuid, id: Uuid) -> Result<Option<ModelRow>, sqlx::Error> {
    let sql = "SELECT * FROM models WHERE model_id = $1 AND project_id = $2";
    crate::on_pool!(db, |pool| sqlx::query(sql)
        .bind(id)
        .bind(project)
        .fetch_optional(pool)
        .await?
        .map(|r| model_row!(&r))
        .transpose())
}

pub async fn models(
    db: &Db,
    project: Uuid,
    job: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ModelRow>, sqlx::Error> {
    let sql = "SELECT * FROM models WHERE project_id = $1 AND ($2 IS NULL OR job_id = $2)
               ORDER BY seq DESC LIMIT $3";
    crate::on_pool!(db, |pool| sqlx::query(sql)
        .bind(project)
        .bind(job)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| model_row!(r))
        .collect())
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
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql)
            .bind(project)
            .bind(limit)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("job_id"))
            .collect::<Result<Vec<Uuid>, sqlx::Error>>()
    })
}
