//! Managed training as the screens read it: a job's spend, budget and
//! progress, its checkpoints, log lines, cost ticks and budget alerts, the
//! errors that failed jobs (grouped by fingerprint), and the project's
//! datasets and models.

mod apply;
mod jobs;
mod models;

pub use jobs::*;
pub use models::*;

use super::types;
use crate::DbTx;
use crate::execute;
use crate::runner::{Decoded, Projection, ProjectionError};
use async_trait::async_trait;
use ftl_domain::DomainEvent;
use ftl_domain::job::{JobEvent, ManagedEvent};

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
                        models::json_text(&LOCAL_CAPABILITIES),
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
                        models::json_text(&e.capabilities),
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
                DomainEvent::Job(JobEvent::Managed(m)) => apply::managed(tx, s, d, m).await?,
                _ => {}
            }
        }
        Ok(())
    }
}
