//! Projects, API keys and jobs.

use super::types;
use crate::json_text::JsonText;
use crate::runner::{Decoded, Projection, ProjectionError};
use crate::{DbTx, execute};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use ftl_domain::DomainEvent;
use ftl_domain::job::{JobEvent, JobStatus, ManagedEvent, created_status};
use uuid::Uuid;

pub struct CatalogProjection;

#[async_trait]
impl Projection for CatalogProjection {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["projects", "api_keys", "jobs"]
    }

    fn ddl(&self, postgres: bool, s: &str) -> String {
        let t = types(postgres);
        let (u, ts) = (t.uuid, t.ts);
        format!(
            "CREATE TABLE IF NOT EXISTS projects{s} (
                project_id {u} PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at {ts} NOT NULL);
             CREATE TABLE IF NOT EXISTS api_keys{s} (
                key_id {u} PRIMARY KEY, project_id {u} NOT NULL, name TEXT NOT NULL, scope TEXT NOT NULL,
                secret_sha256 TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, created_at {ts} NOT NULL, revoked_at {ts});
             CREATE TABLE IF NOT EXISTS jobs{s} (
                job_id {u} PRIMARY KEY, project_id {u} NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
                provider TEXT NOT NULL, config TEXT NOT NULL, tags TEXT NOT NULL, failure_reason TEXT, error TEXT,
                created_at {ts} NOT NULL, started_at {ts}, ended_at {ts}, updated_at {ts} NOT NULL,
                seq BIGINT NOT NULL);
             CREATE INDEX IF NOT EXISTS jobs{s}_by_project ON jobs{s} (project_id, seq);"
        )
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("project.")
            || event_type.starts_with("api_key.")
            || (event_type.starts_with("job.")
                && !matches!(event_type, "job.metrics_logged" | "job.logs_appended"))
    }

    async fn apply(
        &self,
        tx: &mut DbTx,
        s: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        for d in events {
            let at = d.recorded_at;
            match &d.event {
                DomainEvent::ProjectCreated(e) => {
                    let sql = format!(
                        "INSERT INTO projects{s} (project_id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
                    );
                    execute!(tx, sql, e.project_id.0, &e.name, at)?;
                }
                DomainEvent::ApiKeyCreated(e) => {
                    let sql = format!(
                        "INSERT INTO api_keys{s} (key_id, project_id, name, scope, secret_sha256, prefix, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
                    );
                    execute!(
                        tx,
                        sql,
                        e.key_id.0,
                        e.project_id.0,
                        &e.name,
                        e.scope.as_str(),
                        &e.secret_sha256,
                        &e.prefix,
                        at
                    )?;
                }
                DomainEvent::ApiKeyRevoked(e) => {
                    let sql = format!(
                        "UPDATE api_keys{s} SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL"
                    );
                    execute!(tx, sql, at, e.key_id.0)?;
                }
                DomainEvent::Job(JobEvent::Created(e)) => {
                    let sql = format!(
                        "INSERT INTO jobs{s} (job_id, project_id, name, status, provider, config, tags, created_at, updated_at, seq)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) ON CONFLICT DO NOTHING"
                    );
                    let tags = serde_json::to_string(&e.tags).unwrap_or_else(|_| "[]".into());
                    execute!(
                        tx,
                        sql,
                        e.job_id.0,
                        e.project_id.0,
                        &e.name,
                        created_status(e.provider).as_str(),
                        e.provider.as_str(),
                        e.config.to_string(),
                        tags,
                        at,
                        d.position as i64
                    )?;
                }
                DomainEvent::Job(JobEvent::Started(e)) => {
                    let sql = format!(
                        "UPDATE jobs{s} SET status = $1, started_at = COALESCE(started_at, $2), updated_at = $2 WHERE job_id = $3"
                    );
                    execute!(tx, sql, JobStatus::Running.as_str(), at, e.job_id.0)?;
                }
                DomainEvent::Job(JobEvent::Succeeded(e)) => {
                    end(tx, s, e.job_id.0, JobStatus::Succeeded, at, None, None).await?
                }
                DomainEvent::Job(JobEvent::Cancelled(e)) => {
                    end(
                        tx,
                        s,
                        e.job_id.0,
                        JobStatus::Cancelled,
                        at,
                        None,
                        e.reason.clone(),
                    )
                    .await?
                }
                DomainEvent::Job(JobEvent::Failed(e)) => {
                    end(
                        tx,
                        s,
                        e.job_id.0,
                        JobStatus::Failed,
                        at,
                        Some(e.reason.as_str()),
                        Some(e.message.clone()),
                    )
                    .await?
                }
                DomainEvent::Job(JobEvent::Reopened(e)) => {
                    let sql = format!(
                        "UPDATE jobs{s} SET status = $1, ended_at = NULL, failure_reason = NULL, error = NULL, updated_at = $2
                         WHERE job_id = $3"
                    );
                    execute!(tx, sql, JobStatus::Running.as_str(), at, e.job_id.0)?;
                }
                DomainEvent::Job(JobEvent::Renamed(e)) => {
                    let sql =
                        format!("UPDATE jobs{s} SET name = $1, updated_at = $2 WHERE job_id = $3");
                    execute!(tx, sql, &e.name, at, e.job_id.0)?;
                }
                // Run data (params, tags, artifacts, MLflow lifecycle) is the
                // tracking projection's.
                DomainEvent::Job(
                    JobEvent::ParamsLogged(_)
                    | JobEvent::RunTagsSet(_)
                    | JobEvent::RunTagDeleted(_)
                    | JobEvent::Deleted(_)
                    | JobEvent::Restored(_)
                    | JobEvent::RunStatusReported(_)
                    | JobEvent::ArtifactStored(_)
                    | JobEvent::ArtifactDeleted(_),
                )
                | DomainEvent::MetricsLogged(_)
                | DomainEvent::LogsAppended(_)
                | DomainEvent::DatasetRegistered(_)
                | DomainEvent::ModelRegistered(_)
                | DomainEvent::ExternalModelRegistered(_)
                | DomainEvent::ModelPriceSet(_)
                | DomainEvent::PredictionRecorded(_)
                | DomainEvent::ThumbSet(_)
                | DomainEvent::Evaluated(_)
                | DomainEvent::Rated(_)
                | DomainEvent::ComparisonCreated(_)
                | DomainEvent::ComparisonResponse(_)
                | DomainEvent::ComparisonVoted(_)
                | DomainEvent::Suite(_)
                | DomainEvent::Experiment(_) => {}
                DomainEvent::Job(JobEvent::Managed(m)) => {
                    if let Some(to) = m.status_change() {
                        let only_queued = matches!(m, ManagedEvent::Dispatched(_));
                        let sql = format!(
                            "UPDATE jobs{s} SET status = $1, updated_at = $2,
                                started_at = CASE WHEN $1 = 'running' THEN COALESCE(started_at, $2) ELSE started_at END
                             WHERE job_id = $3 AND ($4 = FALSE OR status = 'queued')"
                        );
                        execute!(tx, sql, to.as_str(), at, m.job_id().0, only_queued)?;
                    }
                }
            }
        }
        Ok(())
    }
}

async fn end(
    tx: &mut DbTx,
    s: &str,
    job: Uuid,
    status: JobStatus,
    at: DateTime<Utc>,
    reason: Option<&str>,
    error: Option<String>,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "UPDATE jobs{s} SET status = $1, ended_at = $2, updated_at = $2, failure_reason = $3, error = $4 WHERE job_id = $5"
    );
    execute!(tx, sql, status.as_str(), at, reason, error, job)?;
    Ok(())
}

// ---- queries -------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub key_id: Uuid,
    pub project_id: Uuid,
    pub project_name: String,
    pub name: String,
    pub scope: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
}

/// The live key with this secret hash, with its project.
pub async fn key_by_hash(db: &Db, sha256: &str) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    let sql = "SELECT k.key_id, k.project_id, p.name AS project_name, k.name, k.scope, k.prefix, k.created_at,
                      (k.revoked_at IS NOT NULL) AS revoked
               FROM api_keys k JOIN projects p ON p.project_id = k.project_id
               WHERE k.secret_sha256 = $1";
    crate::fetch!(db, fetch_optional, ApiKeyRow, sql, sha256)
}

pub async fn keys_of_project(db: &Db, project: Uuid) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    let sql = "SELECT k.key_id, k.project_id, p.name AS project_name, k.name, k.scope, k.prefix, k.created_at,
                      (k.revoked_at IS NOT NULL) AS revoked
               FROM api_keys k JOIN projects p ON p.project_id = k.project_id
               WHERE k.project_id = $1 ORDER BY k.created_at";
    crate::fetch!(db, fetch_all, ApiKeyRow, sql, project)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub job_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub status: String,
    pub provider: String,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub config: serde_json::Value,
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    pub tags: Vec<String>,
    pub failure_reason: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub seq: i64,
}

const JOB_COLUMNS: &str = "job_id, project_id, name, status, provider, config, tags, failure_reason, error, created_at, started_at, ended_at, updated_at, seq";

/// One job, only if it belongs to `project`.
pub async fn job(db: &Db, project: Uuid, job: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1 AND project_id = $2");
    crate::fetch!(
        db,
        fetch_optional,
        JobRow,
        sqlx::AssertSqlSafe(sql),
        job,
        project
    )
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<String>,
    pub name_contains: Option<String>,
    pub tag: Option<String>,
}

/// Newest first; `before_seq` is the cursor. Fetches `limit` rows.
pub async fn jobs(
    db: &Db,
    project: Uuid,
    filter: &JobFilter,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<JobRow>, sqlx::Error> {
    let name_like = filter
        .name_contains
        .as_ref()
        .map(|n| format!("%{}%", escape_like(n)));
    let tag_like = filter.tag.as_ref().map(|t| {
        format!(
            "%{}%",
            escape_like(&serde_json::to_string(t).unwrap_or_default())
        )
    });
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE project_id = $1
           AND ($2 IS NULL OR status = $2)
           AND ($3 IS NULL OR name LIKE $3 ESCAPE '\\')
           AND ($4 IS NULL OR tags LIKE $4 ESCAPE '\\')
           AND seq < $5
         ORDER BY seq DESC LIMIT $6"
    );
    crate::fetch!(
        db,
        fetch_all,
        JobRow,
        sqlx::AssertSqlSafe(sql),
        project,
        filter.status.clone(),
        name_like,
        tag_like,
        before_seq.unwrap_or(i64::MAX),
        limit
    )
}

pub(crate) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
