//! `POST /claim`: the oldest claimable job gets a lease, a job token and its
//! run's settings, for the server's own workers (any project) or a project
//! key's worker (its project only).

use super::load_job;
use crate::auth::{self, Caller, hash_secret};
use crate::state::AppState;
use crate::training::rest::{RestError, RestResult, json_body};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use ftl_commands::CommandError;
use ftl_commands::handler::handle;
use ftl_commands::leases::{self, Lease};
use ftl_commands::store::Metadata;
use ftl_domain::JobId;
use ftl_domain::job::worker_protocol::*;
use ftl_domain::job::{JobCommand, JobDecider};
use ftl_domain::project::Scope;
use ftl_effects::training::storage;
use ftl_projections::views::training;
use uuid::Uuid;

/// Who may claim: the server's own workers (its in-memory secret) claim for
/// every project, a project key with write scope for its project only.
async fn claimant(st: &AppState, req: &HttpRequest) -> RestResult<Option<Caller>> {
    let token = auth::request_key(req.headers(), false);
    if let Some(t) = &token
        && constant_time_eq(t.as_bytes(), st.worker_secret.as_bytes())
    {
        return Ok(None);
    }
    match st.keys.authenticate(&st.effects, token.as_deref()).await {
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

pub(super) async fn claim(
    st: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> RestResult {
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
