//! MLflow artifacts (`specs/mlflow-api.md` §6): run-scoped files under
//! `/api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<path>`,
//! kept in the artifact store (`object_store`) under `<project>/<run>/<path>`.
//! Every upload and delete also appends an event to the run's stream.
//!
//! [`path`] checks the paths and maps them into the store, [`transfer`]
//! uploads, downloads (with [`range`]) and deletes, [`listing`] lists
//! folders; what they share (the run a path names, store errors) is here.

mod listing;
mod path;
mod range;
mod transfer;

#[cfg(test)]
mod tests;

pub use listing::{RunList, list_for_run};
pub use path::{ArtifactPath, check_relative, decode_once, parse_run_path};

use super::runs::{handle_job, not_found, read_run};
use super::wire::{ErrorCode, MlflowError};
use super::{caller, command_error};
use crate::auth::Caller;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_domain::ids::JobId;
use ftl_domain::job::{JobCommand, run_id_text};
use ftl_domain::project::Scope;
use ftl_effects::blobs::{BlobError, BlobKey as StorePath};
use ftl_projections::views::tracking::RunRow;
use path::{bad_path, raw_tail, store_path};
use uuid::Uuid;

const PREFIX: &str = "/api/2.0/mlflow-artifacts/artifacts";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PREFIX, web::get().to(listing::list))
        .route(
            &format!("{PREFIX}/{{path:.*}}"),
            web::put().to(transfer::upload),
        )
        .route(
            &format!("{PREFIX}/{{path:.*}}"),
            web::get().to(transfer::download),
        )
        .route(
            &format!("{PREFIX}/{{path:.*}}"),
            web::delete().to(transfer::remove),
        )
        .route(
            "/api/2.0/mlflow-artifacts/mpu/{tail:.*}",
            web::post().to(multipart),
        )
        .route(
            "/api/2.0/mlflow-artifacts/presigned/{tail:.*}",
            web::get().to(presigned),
        )
        .route(
            "/api/2.0/mlflow-artifacts/{tail:.*}",
            web::route().to(super::not_served),
        );
}

fn object_error(e: BlobError, what: &str) -> MlflowError {
    match e {
        BlobError::NotFound => MlflowError::new(
            ErrorCode::ResourceDoesNotExist,
            format!("No such artifact: '{what}'"),
        ),
        BlobError::Denied => MlflowError::new(
            ErrorCode::PermissionDenied,
            format!(
                "Artifact path '{what}' passes through a symbolic link, which the artifact store does not follow"
            ),
        ),
        other => {
            tracing::error!(error = %other, "artifact store");
            MlflowError::new(
                ErrorCode::TemporarilyUnavailable,
                "the artifact store is unavailable",
            )
        }
    }
}

/// The run behind a path, in the caller's project and the named experiment.
async fn run_of(state: &AppState, c: &Caller, p: &ArtifactPath) -> Result<RunRow, MlflowError> {
    let run = read_run(state, c, &p.run_id).await?;
    if run.experiment_id.to_string() != p.experiment_id {
        return Err(MlflowError::new(
            ErrorCode::ResourceDoesNotExist,
            not_found(&p.run_id),
        ));
    }
    Ok(run)
}

/// Records an upload or a delete on the run.
async fn run_command(
    state: &AppState,
    c: &Caller,
    run: &RunRow,
    cmd: JobCommand,
) -> Result<(), MlflowError> {
    let job = JobId(run.job_id);
    handle_job(state, c, job, &cmd, Uuid::new_v4())
        .await
        .map_err(|e| command_error(e, || not_found(&run_id_text(job))))?;
    Ok(())
}

/// What a call under [`PREFIX`] names: the caller, the path, its run and
/// where the bytes live.
struct Target {
    c: Caller,
    p: ArtifactPath,
    run: RunRow,
    location: StorePath,
}

/// Authenticates the call and resolves its path to a run of the caller's
/// project; `root_ok` is false where the path must name something inside
/// the run's artifact root (an upload, a delete).
async fn target(
    state: &AppState,
    req: &HttpRequest,
    needs: Scope,
    root_ok: bool,
) -> Result<Target, MlflowError> {
    let c = caller(state, req, needs).await?;
    let p = parse_run_path(&decode_once(raw_tail(req, PREFIX))?)?;
    if !root_ok && p.rel.is_empty() {
        return Err(bad_path(&p.rel));
    }
    let run = run_of(state, &c, &p).await?;
    let location = store_path(&c, &run, &p.rel);
    Ok(Target {
        c,
        p,
        run,
        location,
    })
}

async fn multipart(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    caller(&state, &req, Scope::Write).await?;
    Err(MlflowError::new(
        ErrorCode::NotImplemented,
        "Multipart upload is not supported for the current artifact repository",
    ))
}

async fn presigned(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    caller(&state, &req, Scope::Read).await?;
    Err(MlflowError::new(
        ErrorCode::NotImplemented,
        "Presigned download is not supported for the current artifact repository",
    ))
}
