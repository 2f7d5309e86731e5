//! The reports a worker makes under its lease: heartbeat (answered with
//! continue, pause or cancel), started, metric and log batches, and the
//! reports that end the lease.

use super::{Held, lease_lost, ok, release, run};
use crate::state::AppState;
use crate::training::rest::{RestError, RestResult, body_digest, json_body};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use ftl_commands::handler::{append_metrics, append_once};
use ftl_commands::leases;
use ftl_commands::store::{ExpectedVersion, NewEvent};
use ftl_domain::DomainEvent;
use ftl_domain::job::logs::{LogsAppended, validate_lines};
use ftl_domain::job::managed::ErrorRecorded;
use ftl_domain::job::worker_protocol::*;
use ftl_domain::job::{FailureReason, JobCommand, JobStatus, failure};
use ftl_domain::metrics::{MetricPoint, validate_points};

/// The report in `/jobs/{job}/{report}`.
#[derive(serde::Deserialize)]
pub(super) struct Report {
    report: String,
}

pub(super) async fn heartbeat(st: web::Data<AppState>, h: Held) -> RestResult {
    let expires = Utc::now().timestamp_millis() + st.config.training.lease_ms as i64;
    if !leases::heartbeat(&st.effects.db, h.lease, expires)
        .await
        .map_err(RestError::internal)?
    {
        return Err(lease_lost(h.job));
    }
    let control = match h.state.status {
        Some(JobStatus::Pausing) => Control::Pause,
        Some(JobStatus::Cancelling) => Control::Cancel,
        _ => Control::Continue,
    };
    Ok(HttpResponse::Ok().json(HeartbeatReply { control }))
}

pub(super) async fn started(st: web::Data<AppState>, h: Held, body: web::Bytes) -> RestResult {
    let report: Started = json_body(&body)?;
    let cmd = JobCommand::WorkerStarted {
        lease_id: h.lease,
        from_step: report.from_step,
    };
    run(&st, &h, cmd, "started").await?;
    ok()
}

pub(super) async fn metrics(st: web::Data<AppState>, h: Held, body: web::Bytes) -> RestResult {
    let batch: MetricsBatch = json_body(&body)?;
    let points: Vec<MetricPoint> = batch
        .points
        .into_iter()
        .map(|p| MetricPoint {
            key: ftl_domain::metrics::canonical_key(&p.key).to_string(),
            step: p.step,
            value: p.value,
            timestamp_ms: p.timestamp_ms,
        })
        .collect();
    validate_points(&points).map_err(|e| RestError::command(e.into()))?;
    let mut meta = h.metadata();
    meta.request_digest = Some(body_digest(&body));
    append_metrics(
        st.effects.store.as_ref(),
        h.job,
        points,
        batch.batch_id,
        &meta,
    )
    .await
    .map_err(RestError::command)?;
    ok()
}

pub(super) async fn logs(st: web::Data<AppState>, h: Held, body: web::Bytes) -> RestResult {
    let batch: LogsBatch = json_body(&body)?;
    validate_lines(&batch.lines).map_err(|e| RestError::command(e.into()))?;
    let event = DomainEvent::LogsAppended(LogsAppended {
        job_id: h.job,
        lines: batch.lines,
    });
    let mut meta = h.metadata();
    meta.command_id = Some(batch.batch_id);
    meta.request_digest = Some(body_digest(&body));
    let new = NewEvent::from_domain(
        ftl_domain::ids::derive_event_id(batch.batch_id, 0),
        &event,
        meta,
    );
    append_once(
        st.effects.store.as_ref(),
        &h.job.logs_stream(),
        ExpectedVersion::Any,
        vec![new],
    )
    .await
    .map_err(RestError::command)?;
    ok()
}

/// The reports that end a lease — `paused`, `cancelled`, `finished`,
/// `failed` — each as its job command; then the lease row goes.
pub(super) async fn ending(
    st: web::Data<AppState>,
    h: Held,
    path: web::Path<Report>,
    body: web::Bytes,
) -> RestResult {
    let report = path.into_inner().report;
    let cmd = match report.as_str() {
        "paused" => {
            let r: PausedReport = json_body(&body)?;
            JobCommand::ConfirmPaused {
                lease_id: h.lease,
                checkpoint_step: r.checkpoint_step,
            }
        }
        "cancelled" => JobCommand::ConfirmCancelled { lease_id: h.lease },
        // The final checkpoint becomes the job's model by reaction to its
        // success (`ftl_domain::process`, dispatched from the outbox).
        "finished" => JobCommand::Finish { lease_id: h.lease },
        _ => failure_command(&h, json_body(&body)?),
    };
    run(&st, &h, cmd, &report).await?;
    release(&st, &h).await;
    ok()
}

fn failure_command(h: &Held, report: FailedReport) -> JobCommand {
    let frames = failure::parse_frames(&report.trace);
    let fingerprint = failure::fingerprint(&report.message, &frames);
    let panic = report.kind == "panic";
    JobCommand::FailRun {
        lease_id: h.lease,
        reason: if panic {
            FailureReason::Internal
        } else {
            FailureReason::UserCode
        },
        error: Box::new(ErrorRecorded {
            job_id: h.job,
            kind: if panic { "panic" } else { "error" }.into(),
            message: report.message,
            frames,
            fingerprint,
        }),
    }
}
