//! The server side of the worker protocol (`protocol.rs`): claim, heartbeat,
//! and the reports a worker makes while it holds a job's lease. Every report
//! becomes a command on the job's stream (or a batch on its metric or log
//! stream) with an id derived from the lease, so a retried call lands once.

use super::rest::{RestError, RestResult, body_digest, json_body, read_body};
use crate::auth::{self, Caller, hash_secret};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use ftl_commands::handler::{CommandError, append_metrics, append_once, handle};
use ftl_commands::leases::{self, Lease};
use ftl_commands::store::{ExpectedVersion, Metadata, NewEvent};
use ftl_domain::job::logs::{LogsAppended, validate_lines};
use ftl_domain::job::managed::{CheckpointSaved, ErrorRecorded, checkpoints_to_prune};
use ftl_domain::job::worker_protocol::*;
use ftl_domain::job::{FailureReason, JobCommand, JobDecider, JobState, JobStatus, failure};
use ftl_domain::metrics::{MetricPoint, validate_points};
use ftl_domain::project::Scope;
use ftl_domain::{DomainEvent, JobId};
use ftl_effects::blobs::{BlobError, BlobKey};
use ftl_effects::training::checkpoints::{checkpoint_name, checkpoint_prefix, checkpoint_store};
use ftl_effects::training::storage;
use ftl_projections::views::training;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
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
            .route(
                "/jobs/{job}/checkpoints/{step}/files/{file}",
                web::put().to(put_checkpoint_file),
            )
            .route(
                "/jobs/{job}/checkpoints/{step}/files/{file}",
                web::get().to(get_checkpoint_file),
            )
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
struct Held {
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

/// Who may claim: the server's own workers (its in-memory secret) claim for
/// every project, a project key with write scope for its project only.
async fn claimant(st: &AppState, req: &HttpRequest) -> RestResult<Option<Caller>> {
    let token = auth::request_key(req.headers(), false);
    if let Some(t) = &token
        && constant_time_eq(t.as_bytes(), st.worker_secret.as_bytes())
    {
        return Ok(None);
    }
    match auth::authenticate(st, token.as_deref()).await {
        Ok(c) if c.scope.allows(Scope::Write) => Ok(Some(c)),
        Ok(_) => Err(RestError::forbidden(
            "claiming jobs needs a key with write scope",
        )),
        Err(auth::AuthError::Db(e)) => Err(RestError::internal(e)),
        Err(e) => Err(RestError::unauthenticated(e.to_string())),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn claim(st: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> RestResult {
    let caller = claimant(&st, &req).await?;
    let request: ClaimRequest = json_body(&body)?;
    if request.worker_id.is_empty() || request.worker_id.len() > 200 {
        return Err(RestError::invalid("worker_id must be 1 to 200 bytes"));
    }
    let project = caller.as_ref().map(|c| c.project_id.0);
    let candidates = training::claimable_jobs(&st.effects.db, project, 16)
        .await
        .map_err(RestError::internal)?;
    for job in candidates {
        if let Some(claim) = try_claim(&st, JobId(job), &request.worker_id).await? {
            return Ok(HttpResponse::Ok().json(claim));
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn try_claim(st: &AppState, job: JobId, worker: &str) -> RestResult<Option<Claim>> {
    let lease_id = Uuid::new_v4();
    let token = format!(
        "{JOB_TOKEN_PREFIX}{}_{}",
        job.0.simple(),
        auth::generate_secret().trim_start_matches(auth::KEY_PREFIX)
    );
    let state = load_job(st, job).await?;
    let Some(created) = &state.created else {
        return Ok(None);
    };
    let now = Utc::now().timestamp_millis();
    let lease = Lease {
        job_id: job.0,
        lease_id,
        project_id: created.project_id.0,
        worker_id: worker.to_string(),
        expires_ms: now + st.config.training.lease_ms as i64,
        last_tick_ms: now,
    };
    // The lease row first: a crash before the dispatch leaves a row that
    // expires and is dropped (the job never held it).
    if !leases::insert(&st.effects.db, &lease)
        .await
        .map_err(RestError::internal)?
    {
        return Ok(None);
    }
    let cmd = JobCommand::Dispatch {
        worker_id: worker.to_string(),
        lease_id,
        token_sha256: hash_secret(&token),
    };
    let meta = Metadata {
        actor: Some(format!("worker:{worker}")),
        project_id: Some(created.project_id),
        correlation_id: Some(lease_id),
        ..Metadata::default()
    };
    let dispatched = handle::<JobDecider>(
        st.effects.store.as_ref(),
        &job.stream(),
        &cmd,
        lease_id,
        &meta,
        |_| Ok(()),
    )
    .await;
    match dispatched {
        Ok(h) if !h.events.is_empty() => {}
        Ok(_) | Err(CommandError::Domain(_)) => {
            // Taken by another worker meanwhile, or no longer claimable.
            leases::remove(&st.effects.db, lease_id)
                .await
                .map_err(RestError::internal)?;
            return Ok(None);
        }
        Err(e) => {
            let _ = leases::remove(&st.effects.db, lease_id).await;
            return Err(RestError::internal(e));
        }
    }
    let state = load_job(st, job).await?;
    let Some(m) = &state.managed else {
        return Ok(None);
    };
    let dataset_kind = m
        .dataset
        .as_ref()
        .map(|d| d.kind.clone())
        .unwrap_or_default();
    let dataset_row = match &m.dataset {
        Some(d) => training::dataset(&st.effects.db, created.project_id.0, d.dataset_id)
            .await
            .map_err(RestError::internal)?,
        None => None,
    };
    let base_architecture = match m.base_model_id {
        Some(id) => training::model(&st.effects.db, created.project_id.0, id)
            .await
            .map_err(RestError::internal)?
            .and_then(|r| r.local().map(|(_, _, _, arch)| arch.clone())),
        None => None,
    };
    Ok(Some(Claim {
        job_id: job.0,
        lease_id,
        token,
        config: m.config.clone(),
        dataset_raw_text: dataset_row
            .as_ref()
            .is_some_and(|d| storage::is_raw_text(&d.name)),
        dataset_kind,
        dataset_sha256: m
            .dataset
            .as_ref()
            .map(|d| d.digest.clone())
            .unwrap_or_default(),
        base_architecture,
        resume_step: m.last_checkpoint,
        heartbeat_ms: st.config.training.heartbeat_ms,
        report_ms: st.config.training.report_ms,
        telemetry_ms: st.config.training.telemetry_ms,
    }))
}

async fn heartbeat(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> RestResult {
    let h = held(&st, &req, &path).await?;
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

async fn started(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> RestResult {
    let h = held(&st, &req, &path).await?;
    let report: Started = json_body(&body)?;
    let cmd = JobCommand::WorkerStarted {
        lease_id: h.lease,
        from_step: report.from_step,
    };
    run(&st, &h, cmd, "started").await?;
    ok()
}

async fn metrics(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> RestResult {
    let h = held(&st, &req, &path).await?;
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

async fn logs(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> RestResult {
    let h = held(&st, &req, &path).await?;
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

async fn read_object(st: &AppState, path: &BlobKey) -> RestResult<web::Bytes> {
    match st.effects.artifacts.get(path).await {
        Ok(bytes) => Ok(bytes),
        Err(BlobError::NotFound) => Err(RestError::not_found(format!(
            "{} is not stored",
            path.filename().unwrap_or_default()
        ))),
        Err(e) => Err(RestError::internal(e)),
    }
}

fn octets(bytes: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(bytes)
}

async fn dataset(st: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> RestResult {
    let h = held(&st, &req, &path).await?;
    let d = h
        .state
        .managed
        .as_ref()
        .and_then(|m| m.dataset.clone())
        .ok_or_else(|| RestError::not_found("the job has no dataset"))?;
    let row = training::dataset(&st.effects.db, h.project.0, d.dataset_id)
        .await
        .map_err(RestError::internal)?
        .ok_or_else(|| RestError::not_found("dataset not found"))?;
    let bytes = storage::read_dataset(&st.effects, &row.uri)
        .await
        .map_err(RestError::internal)?;
    Ok(octets(bytes))
}

async fn base_weights(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> RestResult {
    let (job, file) = path.into_inner();
    let h = held(&st, &req, &job).await?;
    let model_id = h
        .state
        .managed
        .as_ref()
        .and_then(|m| m.base_model_id)
        .ok_or_else(|| RestError::not_found("the job has no base model of ours"))?;
    if file != ftl_trainer::checkpoint::MODEL_FILE {
        return Err(RestError::not_found("only model.bpk is served"));
    }
    let model = training::model(&st.effects.db, h.project.0, model_id)
        .await
        .map_err(RestError::internal)?
        .ok_or_else(|| RestError::not_found("base model not found"))?;
    let (_, _, folder, _) = model
        .local()
        .ok_or_else(|| RestError::not_found("the base model is not one trained here"))?;
    let path = BlobKey::from(format!("{folder}/{file}"));
    Ok(octets(read_object(&st, &path).await?))
}

fn checkpoint_file_path(job: Uuid, step: u64, file: &str) -> RestResult<BlobKey> {
    let allowed = [
        ftl_trainer::checkpoint::MODEL_FILE,
        ftl_trainer::checkpoint::OPTIMIZER_FILE,
        ftl_trainer::checkpoint::REFERENCE_FILE,
        ftl_trainer::checkpoint::META_FILE,
    ];
    if !allowed.contains(&file) {
        return Err(RestError::invalid(format!(
            "a checkpoint file is one of {}",
            allowed.join(", ")
        )));
    }
    Ok(checkpoint_prefix(job)
        .join(checkpoint_name(step))
        .join(file))
}

async fn put_checkpoint_file(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, u64, String)>,
    payload: web::Payload,
) -> RestResult {
    let (job, step, file) = path.into_inner();
    let h = held(&st, &req, &job).await?;
    let target = checkpoint_file_path(h.job.0, step, &file)?;
    let bytes = read_body(payload, st.config.artifacts.max_file_bytes as usize).await?;
    st.effects
        .artifacts
        .put(&target, bytes)
        .await
        .map_err(RestError::internal)?;
    ok()
}

async fn get_checkpoint_file(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, u64, String)>,
) -> RestResult {
    let (job, step, file) = path.into_inner();
    let h = held(&st, &req, &job).await?;
    let target = checkpoint_file_path(h.job.0, step, &file)?;
    Ok(octets(read_object(&st, &target).await?))
}

/// Commits a checkpoint whose files were uploaded: checks each file's size
/// and SHA-256 against what was stored, writes the listing sidecar, records
/// `job.checkpoint_saved`, then prunes by the job's keep-last-N.
async fn checkpoint(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> RestResult {
    let h = held(&st, &req, &path).await?;
    let report: CheckpointReport = json_body(&body)?;
    let folder = checkpoint_prefix(h.job.0).join(checkpoint_name(report.step));
    for f in &report.files {
        let target = checkpoint_file_path(h.job.0, report.step, &f.name)?;
        let stored = read_object(&st, &target).await.map_err(|e| {
            if e.code == "not_found" {
                RestError::invalid(format!(
                    "checkpoint_incomplete: {} was not uploaded",
                    f.name
                ))
            } else {
                e
            }
        })?;
        let sha = ftl_commands::digest::sha256_hex(&stored);
        if stored.len() as u64 != f.size || sha != f.sha256 {
            return Err(RestError::new(
                StatusCode::BAD_REQUEST,
                "checksum_mismatch",
                format!("{}: stored bytes differ from the report", f.name),
            ));
        }
    }
    let info = ftl_effects::training::checkpoints::CheckpointInfo {
        name: checkpoint_name(report.step),
        step: report.step,
        epoch: report.epoch,
        eval_loss: report.eval_loss,
        files: report
            .files
            .iter()
            .map(|f| ftl_effects::training::checkpoints::StoredFile {
                name: f.name.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
            })
            .collect(),
    };
    let sidecar = serde_json::to_vec_pretty(&info).map_err(RestError::internal)?;
    st.effects
        .artifacts
        .put(
            &folder
                .clone()
                .join(ftl_effects::training::checkpoints::INFO_FILE),
            sidecar,
        )
        .await
        .map_err(RestError::internal)?;
    let cmd = JobCommand::SaveCheckpoint(Box::new(CheckpointSaved {
        job_id: h.job,
        lease_id: h.lease,
        step: report.step,
        epoch: report.epoch,
        path: folder.to_string(),
        files: report.files.clone(),
        eval_loss: report.eval_loss,
        train_loss: report.train_loss,
        reason: report.reason.clone(),
        save_seconds: report.save_seconds,
    }));
    run(&st, &h, cmd, &format!("checkpoint/{}", report.step)).await?;
    prune(&st, &h, report.step).await?;
    ok()
}

async fn prune(st: &AppState, h: &Held, latest: u64) -> RestResult<()> {
    let Some(m) = &h.state.managed else {
        return Ok(());
    };
    let Some(keep) = m
        .config
        .pointer("/checkpoint/save_total_limit")
        .and_then(serde_json::Value::as_u64)
    else {
        return Ok(());
    };
    let mut live: Vec<(u64, Option<f64>)> = m.checkpoints.iter().map(|(s, l)| (*s, *l)).collect();
    if !live.iter().any(|(s, _)| *s == latest) {
        live.push((latest, None));
    }
    let store = checkpoint_store(&st.effects, h.job.0, None);
    for step in checkpoints_to_prune(&live, keep as usize) {
        if step == latest {
            continue;
        }
        let cmd = JobCommand::PruneCheckpoint {
            lease_id: h.lease,
            step,
        };
        run(st, h, cmd, &format!("prune/{step}")).await?;
        store
            .delete(&checkpoint_name(step))
            .await
            .map_err(RestError::internal)?;
    }
    Ok(())
}

/// Ends the lease row after the job released its lease.
async fn release(st: &AppState, h: &Held) {
    if let Err(e) = leases::remove(&st.effects.db, h.lease).await {
        tracing::warn!(error = %e, "removing a lease");
    }
}

/// The reports that end a lease — `paused`, `cancelled`, `finished`,
/// `failed` — each as its job command; then the lease row goes.
async fn ending(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> RestResult {
    let (job, report) = path.into_inner();
    let h = held(&st, &req, &job).await?;
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
