//! Experiments and run data — params, key/value tags, MLflow lifecycle and
//! times — as the MLflow tracking API reads them (`specs/mlflow-api.md`).
//! A run's name and status are the job's (`catalog`), its latest metric
//! values are `metrics`'s.

mod read;

pub use read::*;

use super::types;
use crate::runner::{Decoded, Projection, ProjectionError};
use crate::{DbTx, execute};
use async_trait::async_trait;
use ftl_domain::DomainEvent;
use ftl_domain::experiment::{DEFAULT_EXPERIMENT_NAME, ExperimentEvent};
use ftl_domain::job::{JobEvent, RunStatus};
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
                | DomainEvent::ComparisonVoted(_)
                | DomainEvent::Suite(_) => {}
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
