//! Experiments and run data — params, key/value tags, MLflow lifecycle and
//! times — as the MLflow tracking API reads them (`specs/mlflow-api.md`).
//! A run's name and status are the job's (`catalog`), its latest metric
//! values are `metrics`'s.

use super::metrics::{LatestValue, latest_of};
use super::types;
use crate::runner::{Decoded, Projection, ProjectionError};
use crate::{DbTx, execute};
use async_trait::async_trait;
use ftl_commands::Db;
use ftl_domain::DomainEvent;
use ftl_domain::experiment::{DEFAULT_EXPERIMENT_NAME, ExperimentEvent};
use ftl_domain::job::{JobEvent, RunStatus};
use sqlx::Row;
use std::collections::HashMap;
use uuid::Uuid;

pub struct TrackingProjection;

/// Experiment ids are decimal strings on the wire and integers here (order).
pub fn experiment_number(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|n| *n >= 0)
}

#[async_trait]
impl Projection for TrackingProjection {
    fn name(&self) -> &'static str {
        "tracking"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "experiments",
            "experiment_tags",
            "runs",
            "run_params",
            "run_tags",
        ]
    }

    fn ddl(&self, postgres: bool, s: &str) -> String {
        let u = types(postgres).uuid;
        format!(
            "CREATE TABLE IF NOT EXISTS experiments{s} (
                project_id {u} NOT NULL, experiment_id BIGINT NOT NULL, name TEXT NOT NULL,
                lifecycle TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,
                PRIMARY KEY (project_id, experiment_id));
             CREATE INDEX IF NOT EXISTS experiments{s}_by_name ON experiments{s} (project_id, name);
             CREATE TABLE IF NOT EXISTS experiment_tags{s} (
                project_id {u} NOT NULL, experiment_id BIGINT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (project_id, experiment_id, key));
             CREATE TABLE IF NOT EXISTS runs{s} (
                job_id {u} PRIMARY KEY, project_id {u} NOT NULL, experiment_id BIGINT NOT NULL,
                user_id TEXT NOT NULL, start_time_ms BIGINT NOT NULL, end_time_ms BIGINT,
                deleted BOOLEAN NOT NULL);
             CREATE INDEX IF NOT EXISTS runs{s}_by_experiment ON runs{s} (project_id, experiment_id);
             CREATE TABLE IF NOT EXISTS run_params{s} (
                job_id {u} NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (job_id, key));
             CREATE TABLE IF NOT EXISTS run_tags{s} (
                job_id {u} NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (job_id, key));"
        )
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type == "project.created"
            || event_type.starts_with("experiment.")
            || (event_type.starts_with("job.")
                && !matches!(event_type, "job.metrics_logged" | "job.logs_appended")
                && !ftl_domain::job::ManagedEvent::TYPES.contains(&event_type))
    }

    async fn apply(
        &self,
        tx: &mut DbTx,
        s: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        for d in events {
            let at = d.recorded_at.timestamp_millis();
            match &d.event {
                DomainEvent::ProjectCreated(e) => {
                    let sql = format!(
                        "INSERT INTO experiments{s} (project_id, experiment_id, name, lifecycle, created_ms, updated_ms)
                         VALUES ($1, 0, $2, 'active', $3, $3) ON CONFLICT DO NOTHING"
                    );
                    execute!(tx, sql, e.project_id.0, DEFAULT_EXPERIMENT_NAME, at)?;
                }
                DomainEvent::Experiment(ev) => apply_experiment(tx, s, ev, at).await?,
                DomainEvent::Job(ev) => apply_job(tx, s, ev, at).await?,
                DomainEvent::ApiKeyCreated(_)
                | DomainEvent::ApiKeyRevoked(_)
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
                | DomainEvent::ComparisonVoted(_) => {}
            }
        }
        Ok(())
    }
}

async fn apply_experiment(
    tx: &mut DbTx,
    s: &str,
    ev: &ExperimentEvent,
    at: i64,
) -> Result<(), sqlx::Error> {
    let exp = |id: &str| experiment_number(id).unwrap_or(0);
    match ev {
        ExperimentEvent::Created(e) => {
            let sql = format!(
                "INSERT INTO experiments{s} (project_id, experiment_id, name, lifecycle, created_ms, updated_ms)
                 VALUES ($1, $2, $3, 'active', $4, $4) ON CONFLICT DO NOTHING"
            );
            execute!(tx, sql, e.project_id.0, exp(&e.experiment_id), &e.name, at)?;
            for t in &e.tags {
                set_experiment_tag(tx, s, e.project_id.0, exp(&e.experiment_id), t).await?;
            }
        }
        ExperimentEvent::Renamed(e) => {
            let sql = format!(
                "UPDATE experiments{s} SET name = $1, updated_ms = $2 WHERE project_id = $3 AND experiment_id = $4"
            );
            execute!(tx, sql, &e.name, at, e.project_id.0, exp(&e.experiment_id))?;
        }
        ExperimentEvent::Deleted(e) | ExperimentEvent::Restored(e) => {
            let stage = if matches!(ev, ExperimentEvent::Deleted(_)) {
                "deleted"
            } else {
                "active"
            };
            let sql = format!(
                "UPDATE experiments{s} SET lifecycle = $1, updated_ms = $2 WHERE project_id = $3 AND experiment_id = $4"
            );
            execute!(tx, sql, stage, at, e.project_id.0, exp(&e.experiment_id))?;
        }
        ExperimentEvent::TagSet(e) => {
            set_experiment_tag(tx, s, e.project_id.0, exp(&e.experiment_id), &e.tag).await?;
            let sql = format!(
                "UPDATE experiments{s} SET updated_ms = $1 WHERE project_id = $2 AND experiment_id = $3"
            );
            execute!(tx, sql, at, e.project_id.0, exp(&e.experiment_id))?;
        }
    }
    Ok(())
}

async fn set_experiment_tag(
    tx: &mut DbTx,
    s: &str,
    project: Uuid,
    experiment: i64,
    tag: &ftl_domain::experiment::KeyValue,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO experiment_tags{s} (project_id, experiment_id, key, value) VALUES ($1, $2, $3, $4)
         ON CONFLICT (project_id, experiment_id, key) DO UPDATE SET value = excluded.value"
    );
    execute!(tx, sql, project, experiment, &tag.key, &tag.value)?;
    Ok(())
}

async fn apply_job(tx: &mut DbTx, s: &str, ev: &JobEvent, at: i64) -> Result<(), sqlx::Error> {
    let job = ev.job_id().0;
    match ev {
        JobEvent::Created(e) => {
            let sql = format!(
                "INSERT INTO runs{s} (job_id, project_id, experiment_id, user_id, start_time_ms, end_time_ms, deleted)
                 VALUES ($1, $2, $3, $4, $5, NULL, FALSE) ON CONFLICT DO NOTHING"
            );
            execute!(
                tx,
                sql,
                job,
                e.project_id.0,
                experiment_number(&e.experiment_id).unwrap_or(0),
                &e.user_id,
                e.start_time_ms.unwrap_or(at)
            )?;
        }
        JobEvent::ParamsLogged(e) => {
            let sql = format!(
                "INSERT INTO run_params{s} (job_id, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
            );
            for p in &e.params {
                execute!(tx, sql.clone(), job, &p.key, &p.value)?;
            }
        }
        JobEvent::RunTagsSet(e) => {
            let sql = format!(
                "INSERT INTO run_tags{s} (job_id, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value"
            );
            for t in &e.tags {
                execute!(tx, sql.clone(), job, &t.key, &t.value)?;
            }
        }
        JobEvent::RunTagDeleted(e) => {
            let sql = format!("DELETE FROM run_tags{s} WHERE job_id = $1 AND key = $2");
            execute!(tx, sql, job, &e.key)?;
        }
        JobEvent::Deleted(_) | JobEvent::Restored(_) => {
            let deleted = matches!(ev, JobEvent::Deleted(_));
            let sql = format!("UPDATE runs{s} SET deleted = $1 WHERE job_id = $2");
            execute!(tx, sql, deleted, job)?;
        }
        JobEvent::RunStatusReported(e) => {
            let end = match e.status {
                RunStatus::Running | RunStatus::Scheduled => None,
                _ => Some(e.end_time_ms.unwrap_or(at)),
            };
            let sql = format!("UPDATE runs{s} SET end_time_ms = $1 WHERE job_id = $2");
            execute!(tx, sql, end, job)?;
        }
        JobEvent::Succeeded(_) | JobEvent::Failed(_) | JobEvent::Cancelled(_) => {
            let sql = format!(
                "UPDATE runs{s} SET end_time_ms = COALESCE(end_time_ms, $1) WHERE job_id = $2"
            );
            execute!(tx, sql, at, job)?;
        }
        JobEvent::Reopened(_) => {
            let sql = format!("UPDATE runs{s} SET end_time_ms = NULL WHERE job_id = $1");
            execute!(tx, sql, job)?;
        }
        JobEvent::Started(_)
        | JobEvent::Renamed(_)
        | JobEvent::ArtifactStored(_)
        | JobEvent::ArtifactDeleted(_)
        | JobEvent::Managed(_) => {}
    }
    Ok(())
}

// ---- queries -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    pub experiment_id: i64,
    pub name: String,
    pub lifecycle: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub tags: Vec<(String, String)>,
}

/// Every experiment of a project, by id, with its tags.
pub async fn experiments(db: &Db, project: Uuid) -> Result<Vec<ExperimentRow>, sqlx::Error> {
    let sql = "SELECT experiment_id, name, lifecycle, created_ms, updated_ms FROM experiments
               WHERE project_id = $1 ORDER BY experiment_id";
    let tags_sql = "SELECT experiment_id, key, value FROM experiment_tags WHERE project_id = $1
                    ORDER BY experiment_id, key";
    crate::on_pool!(db, |pool| {
        let mut tags: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for r in sqlx::query(tags_sql).bind(project).fetch_all(pool).await? {
            tags.entry(r.try_get("experiment_id")?)
                .or_default()
                .push((r.try_get("key")?, r.try_get("value")?));
        }
        let rows = sqlx::query(sql).bind(project).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("experiment_id")?;
            out.push(ExperimentRow {
                experiment_id: id,
                name: r.try_get("name")?,
                lifecycle: r.try_get("lifecycle")?,
                created_ms: r.try_get("created_ms")?,
                updated_ms: r.try_get("updated_ms")?,
                tags: tags.remove(&id).unwrap_or_default(),
            });
        }
        Ok(out)
    })
}

/// One experiment by id or by name.
pub async fn experiment(
    db: &Db,
    project: Uuid,
    id: Option<i64>,
    name: Option<&str>,
) -> Result<Option<ExperimentRow>, sqlx::Error> {
    // Projects have few experiments: one listing answers both lookups.
    Ok(experiments(db, project)
        .await?
        .into_iter()
        .find(|e| id.is_none_or(|i| e.experiment_id == i) && name.is_none_or(|n| e.name == n)))
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub job_id: Uuid,
    pub experiment_id: i64,
    pub name: String,
    /// The job's status (`catalog`).
    pub status: String,
    pub user_id: String,
    pub start_time_ms: i64,
    pub end_time_ms: Option<i64>,
    pub deleted: bool,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub metrics: Vec<LatestValue>,
}

/// Which runs to load.
#[derive(Debug, Clone, Copy)]
pub enum RunScope<'a> {
    Experiments(&'a [i64]),
    /// These runs, in no particular order.
    Jobs(&'a [Uuid]),
}

/// Which params, tags or latest metric values to load with each run.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'a> {
    All,
    /// Only these keys (none: the run alone).
    Only(&'a [String]),
}

/// What to load with each run: a search that filters or sorts on a few keys
/// reads those for every candidate, and everything for its page only.
#[derive(Debug, Clone, Copy)]
pub struct RunDetail<'a> {
    pub params: Keys<'a>,
    pub tags: Keys<'a>,
    pub metrics: Keys<'a>,
}

impl RunDetail<'_> {
    pub const ALL: RunDetail<'static> = RunDetail {
        params: Keys::All,
        tags: Keys::All,
        metrics: Keys::All,
    };
}

/// Runs named in one statement (SQLite binds at most 32,766 values).
const JOBS_PER_QUERY: usize = 500;

/// Runs of a project with their params, tags and latest metric values, as
/// much of them as `detail` asks for.
pub async fn runs(
    db: &Db,
    project: Uuid,
    scope: RunScope<'_>,
    detail: RunDetail<'_>,
) -> Result<Vec<RunRow>, sqlx::Error> {
    match scope {
        RunScope::Jobs(ids) if ids.len() > JOBS_PER_QUERY => {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(JOBS_PER_QUERY) {
                out.extend(runs_in(db, project, RunScope::Jobs(chunk), detail).await?);
            }
            Ok(out)
        }
        _ => runs_in(db, project, scope, detail).await,
    }
}

/// Which lifecycle stages a listing shows (MLflow's view types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    Deleted,
    All,
}

impl Lifecycle {
    pub fn admits(self, deleted: bool) -> bool {
        match self {
            Lifecycle::Active => !deleted,
            Lifecycle::Deleted => deleted,
            Lifecycle::All => true,
        }
    }
}

/// A page of runs of the given experiments in start-time order (`newest`
/// first or last), ties broken by run id (its bytes, as its hex sorts), read
/// with the page's `LIMIT` in SQL: the unfiltered listing costs the page,
/// not the experiment. Returns the page's run ids in order, and whether more
/// follow.
pub async fn runs_by_start(
    db: &Db,
    project: Uuid,
    experiments: &[i64],
    lifecycle: Lifecycle,
    newest: bool,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Uuid>, bool), sqlx::Error> {
    if experiments.is_empty() || limit == 0 {
        return Ok((vec![], false));
    }
    let stage = match lifecycle {
        Lifecycle::Active => " AND NOT r.deleted",
        Lifecycle::Deleted => " AND r.deleted",
        Lifecycle::All => "",
    };
    let sql = format!(
        "SELECT r.job_id FROM runs r WHERE r.project_id = $1 AND r.experiment_id IN ({}){stage}
         ORDER BY r.start_time_ms {}, r.job_id LIMIT $2 OFFSET $3",
        experiments
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        if newest { "DESC" } else { "ASC" },
    );
    let mut ids: Vec<Uuid> = crate::on_pool!(db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?
    });
    let more = ids.len() > limit;
    ids.truncate(limit);
    Ok((ids, more))
}

/// `$from, $from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn runs_in(
    db: &Db,
    project: Uuid,
    scope: RunScope<'_>,
    detail: RunDetail<'_>,
) -> Result<Vec<RunRow>, sqlx::Error> {
    // Runs named by id are found by their key and checked against the
    // project here: with the project in the WHERE, SQLite's planner walks
    // the project's index over every run it has instead. The SQL binds the
    // project ($1) or the ids ($1…), then a detail query's keys.
    let jobs: &[Uuid] = match scope {
        RunScope::Jobs(ids) => ids,
        RunScope::Experiments(_) => &[],
    };
    let (runs_where, detail_where, first_key) = match scope {
        RunScope::Experiments([]) | RunScope::Jobs([]) => return Ok(vec![]),
        RunScope::Jobs(_) => {
            let ids = placeholders(1, jobs.len());
            (
                format!("r.job_id IN ({ids})"),
                format!("t.job_id IN ({ids})"),
                1 + jobs.len(),
            )
        }
        RunScope::Experiments(ids) => {
            let experiments = format!(
                "r.project_id = $1 AND r.experiment_id IN ({})",
                ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            );
            (
                experiments.clone(),
                format!("t.job_id IN (SELECT r.job_id FROM runs r WHERE {experiments})"),
                2,
            )
        }
    };
    let runs_sql = format!(
        "SELECT r.job_id, r.project_id, r.experiment_id, j.name, j.status, r.user_id, r.start_time_ms, r.end_time_ms, r.deleted
         FROM runs r JOIN jobs j ON j.job_id = r.job_id WHERE {runs_where}"
    );
    // A detail query, or none where no key is wanted.
    let detail_sql = |select: &str, table: &str, keys: Keys<'_>| -> Option<(String, Vec<String>)> {
        let (only, keys) = match keys {
            Keys::All => (String::new(), vec![]),
            Keys::Only([]) => return None,
            Keys::Only(k) => (
                format!(" AND t.key IN ({})", placeholders(first_key, k.len())),
                k.to_vec(),
            ),
        };
        Some((
            format!("SELECT {select} FROM {table} t WHERE {detail_where}{only} ORDER BY t.key"),
            keys,
        ))
    };
    let params_sql = detail_sql("t.job_id, t.key, t.value", "run_params", detail.params);
    let tags_sql = detail_sql("t.job_id, t.key, t.value", "run_tags", detail.tags);
    let latest_sql = detail_sql(
        "t.job_id, t.key, t.step, t.value, t.ts_ms",
        "metric_latest",
        detail.metrics,
    );
    crate::on_pool!(db, |pool| {
        let q = |sql: String, keys: Vec<String>| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            if jobs.is_empty() {
                q = q.bind(project);
            }
            for j in jobs {
                q = q.bind(*j);
            }
            for k in keys {
                q = q.bind(k);
            }
            q
        };
        let kv = |rows: Vec<_>| -> Result<HashMap<Uuid, Vec<(String, String)>>, sqlx::Error> {
            let mut out: HashMap<Uuid, Vec<(String, String)>> = HashMap::new();
            for r in &rows {
                out.entry(Row::try_get(r, "job_id")?)
                    .or_default()
                    .push((Row::try_get(r, "key")?, Row::try_get(r, "value")?));
            }
            Ok(out)
        };
        let mut params = match params_sql {
            Some((sql, keys)) => kv(q(sql, keys).fetch_all(pool).await?)?,
            None => HashMap::new(),
        };
        let mut tags = match tags_sql {
            Some((sql, keys)) => kv(q(sql, keys).fetch_all(pool).await?)?,
            None => HashMap::new(),
        };
        let mut latest: HashMap<Uuid, Vec<LatestValue>> = HashMap::new();
        if let Some((sql, keys)) = latest_sql {
            for r in q(sql, keys).fetch_all(pool).await? {
                latest
                    .entry(r.try_get("job_id")?)
                    .or_default()
                    .push(latest_of(&r)?);
            }
        }
        let mut out = Vec::new();
        for r in q(runs_sql, vec![]).fetch_all(pool).await? {
            if r.try_get::<Uuid, _>("project_id")? != project {
                continue;
            }
            let job: Uuid = r.try_get("job_id")?;
            out.push(RunRow {
                job_id: job,
                experiment_id: r.try_get("experiment_id")?,
                name: r.try_get("name")?,
                status: r.try_get("status")?,
                user_id: r.try_get("user_id")?,
                start_time_ms: r.try_get("start_time_ms")?,
                end_time_ms: r.try_get("end_time_ms")?,
                deleted: r.try_get("deleted")?,
                params: params.remove(&job).unwrap_or_default(),
                tags: tags.remove(&job).unwrap_or_default(),
                metrics: latest.remove(&job).unwrap_or_default(),
            });
        }
        Ok(out)
    })
}
