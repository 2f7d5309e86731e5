//! How a managed job's events change its training row, checkpoints, cost
//! ticks, budget alerts and error record.

use crate::runner::{Decoded, ProjectionError};
use crate::views::to_sql_f64;
use crate::{DbTx, execute};
use ftl_domain::job::ManagedEvent;

pub(super) async fn managed(
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
