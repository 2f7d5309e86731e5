//! `runs/*` and `metrics/*`: MLflow runs are jobs (provider `external`).
//!
//! [`lifecycle`] creates, updates, deletes and restores runs; [`logging`]
//! takes metrics, params and tags, one at a time or in a `log-batch`, and
//! [`record`] turns them into events; [`reads`] gets and searches runs and
//! [`history`] reads metrics back, both answering in the messages of
//! [`json`]. What every call shares (the run behind an id, one job command)
//! is here.

mod history;
mod json;
mod lifecycle;
mod logging;
mod reads;
mod record;

pub use history::{get_history, get_history_bulk_interval};
pub(super) use json::artifact_uri;
pub use lifecycle::{create, delete, log_inputs, restore, update};
pub use logging::{delete_tag, log_batch, log_metric, log_parameter, set_tag};
pub use reads::{get, search};

use super::wire::{self, ErrorCode, MlflowError};
use super::{command_error, db_error, settle};
use crate::auth::Caller;
use crate::state::AppState;
use ftl_commands::CommandError;
use ftl_commands::handler::handle;
use ftl_domain::ids::JobId;
use ftl_domain::job::{JobCommand, JobDecider, in_project};
use ftl_projections::views::tracking::{self, RunDetail, RunRow, RunScope};
use serde::Deserialize;
use uuid::Uuid;

/// The 404 message for a run.
pub(super) fn not_found(run_id: &str) -> String {
    format!("Run with id={run_id} not found")
}

fn missing(field: &str) -> MlflowError {
    MlflowError::invalid(format!("Missing value for required parameter '{field}'."))
}

/// The job behind a run id (any other shape names no run).
fn job_of(run_id: &str) -> Result<JobId, MlflowError> {
    Uuid::parse_str(run_id)
        .map(JobId)
        .map_err(|_| MlflowError::new(ErrorCode::ResourceDoesNotExist, not_found(run_id)))
}

/// A message naming a run by `run_id` (or the legacy `run_uuid`) alone.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RunRef {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

impl RunRef {
    fn id(&self) -> Result<String, MlflowError> {
        wire::run_id(self.run_id.as_deref(), self.run_uuid.as_deref())
    }
}

/// A run of the caller's project as the read models show it now.
pub(super) async fn find_run(
    state: &AppState,
    c: &Caller,
    run_id: &str,
) -> Result<RunRow, MlflowError> {
    let job = job_of(run_id)?;
    tracking::runs(
        &state.effects.db,
        c.project_id.0,
        RunScope::Jobs(std::slice::from_ref(&job.0)),
        RunDetail::ALL,
    )
    .await
    .map_err(db_error)?
    .pop()
    .ok_or_else(|| MlflowError::new(ErrorCode::ResourceDoesNotExist, not_found(run_id)))
}

/// Reads a run of the caller's project after the read models caught up.
pub(super) async fn read_run(
    state: &AppState,
    c: &Caller,
    run_id: &str,
) -> Result<RunRow, MlflowError> {
    settle(state).await?;
    find_run(state, c, run_id).await
}

/// Handles one job command on a job of the caller's project, the error
/// left for the caller to word; the position of its last event.
pub(super) async fn handle_job(
    state: &AppState,
    c: &Caller,
    job: JobId,
    cmd: &JobCommand,
    command_id: Uuid,
) -> Result<u64, CommandError> {
    let handled = handle::<JobDecider>(
        state.effects.store.as_ref(),
        &job.stream(),
        cmd,
        command_id,
        &c.metadata(),
        in_project(c.project_id),
    )
    .await?;
    Ok(handled.position())
}

/// Runs one job command for a run of the caller's project.
async fn command(
    state: &AppState,
    c: &Caller,
    run_id: &str,
    cmd: JobCommand,
    command_id: Uuid,
) -> Result<u64, MlflowError> {
    let job = job_of(run_id)?;
    handle_job(state, c, job, &cmd, command_id)
        .await
        .map_err(|e| command_error(e, || not_found(run_id)))
}
