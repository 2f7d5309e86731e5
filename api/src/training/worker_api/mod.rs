//! The server side of the worker protocol (`ftl_domain::job::worker_protocol`): claim, heartbeat,
//! and the reports a worker makes while it holds a job's lease. Every report
//! becomes a command on the job's stream (or a batch on its metric or log
//! stream) with an id derived from the lease, so a retried call lands once.
//!
//! The routes are one table (`configure`); every route under
//! `/jobs/{job}/` takes a [`Held`] — the extractor that checks the job's
//! token against its current lease — so a handler is only its report.

mod claim;
mod files;
mod reports;

use super::rest::{RestError, RestResult};
use crate::auth::{self, hash_secret};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use ftl_commands::handler::handle;
use ftl_commands::leases;
use ftl_commands::store::Metadata;
use ftl_domain::JobId;
use ftl_domain::job::worker_protocol::*;
use ftl_domain::job::{JobCommand, JobDecider, JobState};
use futures::future::LocalBoxFuture;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use self::{claim::claim, files::*, reports::*};
    const FILE: &str = "/jobs/{job}/checkpoints/{step}/files/{file}";
    cfg.service(
        web::scope(BASE)
            .app_data(web::PayloadConfig::new(MAX_REPORT_BYTES))
            .route("/claim", web::post().to(claim))
            .route("/jobs/{job}/heartbeat", web::post().to(heartbeat))
            .route("/jobs/{job}/started", web::post().to(started))
            .route("/jobs/{job}/metrics", web::post().to(metrics))
            .route("/jobs/{job}/logs", web::post().to(logs))
            .route("/jobs/{job}/dataset", web::get().to(dataset))
            .route("/jobs/{job}/base/{file}", web::get().to(base_weights))
            .route(FILE, web::put().to(put_checkpoint_file))
            .route(FILE, web::get().to(get_checkpoint_file))
            .route("/jobs/{job}/checkpoints", web::post().to(checkpoint))
            .route(
                "/jobs/{job}/{report:paused|cancelled|finished|failed}",
                web::post().to(ending),
            ),
    );
}

/// A job's folded lifecycle state (incrementally, from the cache).
pub async fn load_job(st: &AppState, job: JobId) -> RestResult<JobState> {
    ftl_effects::training::job_states::load_job(&st.effects, job)
        .await
        .map_err(RestError::internal)
}

/// A worker call's authority: the job whose token it carries, the lease it
/// holds, and the job's state at the time of the call.
pub(crate) struct Held {
    job: JobId,
    lease: Uuid,
    /// The worker the lease was given to (its id as it claimed).
    worker: String,
    project: ftl_domain::ProjectId,
    state: JobState,
}

impl Held {
    fn metadata(&self) -> Metadata {
        Metadata {
            // One name per worker from its claim on: `worker:<id>`; the
            // lease is the correlation id of everything done under it.
            actor: Some(format!("worker:{}", self.worker)),
            project_id: Some(self.project),
            correlation_id: Some(self.lease),
            ..Metadata::default()
        }
    }

    /// A command id for the report `what` under this lease (retries dedup).
    fn command_id(&self, what: &str) -> Uuid {
        Uuid::new_v5(&self.lease, what.as_bytes())
    }
}

/// Every `/jobs/{job}/…` route's first argument: the call's authority, or
/// the refusal (401 without the job's token, 403 for another job's, 409
/// once the lease is gone).
impl FromRequest for Held {
    type Error = RestError;
    type Future = LocalBoxFuture<'static, Result<Self, RestError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let st = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| RestError::internal("the server state is missing"))?;
            let job = req.match_info().get("job").unwrap_or_default();
            held(st, &req, job).await
        })
    }
}

fn lease_lost(job: JobId) -> RestError {
    RestError::new(
        StatusCode::CONFLICT,
        "lease_lost",
        format!("this worker no longer holds job {job}"),
    )
}

/// Checks the per-job token against the job's current lease.
async fn held(st: &AppState, req: &HttpRequest, path_job: &str) -> RestResult<Held> {
    let unauthorized =
        || RestError::unauthenticated("a job token (`Bearer ftlw_…`) for this job is required");
    let token = auth::request_key(req.headers(), false).ok_or_else(unauthorized)?;
    let job_hex = token
        .strip_prefix(JOB_TOKEN_PREFIX)
        .and_then(|t| t.split_once('_'))
        .map(|(j, _)| j)
        .ok_or_else(unauthorized)?;
    let job = Uuid::try_parse(job_hex).map_err(|_| unauthorized())?;
    if Uuid::try_parse(path_job).ok() != Some(job) {
        return Err(RestError::forbidden("this token is for another job"));
    }
    let job = JobId(job);
    let state = load_job(st, job).await?;
    let (Some(m), Some(created)) = (&state.managed, &state.created) else {
        return Err(unauthorized());
    };
    let project = created.project_id;
    if m.token_sha256.as_deref() != Some(hash_secret(&token).as_str()) {
        return Err(unauthorized());
    }
    let Some(lease) = m.lease else {
        return Err(lease_lost(job));
    };
    let worker = m.worker_id.clone().unwrap_or_default();
    Ok(Held {
        job,
        lease,
        worker,
        project,
        state,
    })
}

async fn run(st: &AppState, h: &Held, cmd: JobCommand, what: &str) -> RestResult<u64> {
    let handled = handle::<JobDecider>(
        st.effects.store.as_ref(),
        &h.job.stream(),
        &cmd,
        h.command_id(what),
        &h.metadata(),
        |_| Ok(()),
    )
    .await
    .map_err(RestError::command)?;
    Ok(handled.position())
}

fn ok() -> RestResult {
    Ok(HttpResponse::Ok().json(serde_json::json!({"ok": true})))
}

/// Ends the lease row after the job released its lease.
async fn release(st: &AppState, h: &Held) {
    if let Err(e) = leases::remove(&st.effects.db, h.lease).await {
        tracing::warn!(error = %e, "removing a lease");
    }
}
