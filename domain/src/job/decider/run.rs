//! The tracking-client (MLflow) commands: params, run tags, renames, status reports, artifacts.

use super::{Created, JobCommand, JobState};
use crate::error::DomainError;
use crate::experiment::{KeyValue, validate_key_values};
use crate::ids::JobId;
use crate::job::events::*;
use crate::job::{FailureReason, JobStatus, Provider, RunStatus};
use crate::limits::MAX_NAME_LEN;
use std::collections::HashSet;

/// The MLflow tag holding a run's name (kept equal to the job's name).
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// A job id as MLflow clients see it: 32 lower-case hex characters.
pub fn run_id_text(job: JobId) -> String {
    job.0.simple().to_string()
}

pub fn deleted_run_message(job: JobId) -> String {
    format!(
        "The run {} must be in the 'active' state. Current state is deleted.",
        run_id_text(job)
    )
}

/// Run parameters: values up to 6000 characters; run tags up to 8000 (MLflow's limits).
pub const MAX_PARAM_VALUE_CHARS: usize = 6000;
pub const MAX_RUN_TAG_VALUE_CHARS: usize = 8000;

/// The tracking-client commands (MLflow runs); `None` for lifecycle commands.
pub(super) fn decide_run(
    state: &JobState,
    created: &Created,
    status: JobStatus,
    cmd: &JobCommand,
) -> Result<Option<Vec<JobEvent>>, DomainError> {
    let job_id = created.job_id;
    let external = created.provider == Provider::External;
    let events = match cmd {
        JobCommand::RecordRunData {
            params,
            tags,
            metrics,
        } => {
            validate_key_values("params", params, MAX_PARAM_VALUE_CHARS)?;
            validate_key_values("tags", tags, MAX_RUN_TAG_VALUE_CHARS)?;
            let mut seen = HashSet::new();
            let dups: Vec<&str> = params
                .iter()
                .filter(|p| !seen.insert(p.key.as_str()))
                .map(|p| p.key.as_str())
                .collect();
            if !dups.is_empty() {
                return Err(DomainError::invalid(
                    "params",
                    format!(
                        "Duplicate parameter keys have been submitted: [{}]. Please ensure the request contains only one param value per param key.",
                        dups.iter()
                            .map(|k| format!("'{k}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let mut new_params = Vec::new();
            for p in params {
                match state.params.get(&p.key) {
                    Some(old) if *old == p.value => {}
                    Some(old) => {
                        return Err(DomainError::invalid(
                            "params",
                            format!(
                                "Changing param values is not allowed. Param with key='{}' was already logged with value='{}' for run ID='{}'. Attempted logging new value '{}'.",
                                p.key,
                                old,
                                run_id_text(job_id),
                                p.value
                            ),
                        ));
                    }
                    None => new_params.push(p.clone()),
                }
            }
            let mut out = Vec::new();
            if *metrics && matches!(status, JobStatus::Queued | JobStatus::Provisioning) {
                out.push(JobEvent::Started(JobStarted {
                    job_id,
                    from_step: None,
                }));
            }
            if !new_params.is_empty() {
                out.push(JobEvent::ParamsLogged(ParamsLogged {
                    job_id,
                    params: new_params,
                }));
            }
            if !tags.is_empty() {
                out.push(JobEvent::RunTagsSet(RunTagsSet {
                    job_id,
                    tags: tags.clone(),
                }));
            }
            // Setting `mlflow.runName` renames the run, as in MLflow.
            if let Some(name) = tags.iter().rev().find(|t| t.key == RUN_NAME_TAG)
                && name.value != state.name
                && !name.value.trim().is_empty()
            {
                out.push(JobEvent::Renamed(JobRenamed {
                    job_id,
                    name: name.value.clone(),
                }));
            }
            out
        }
        JobCommand::DeleteRunTag { key } => {
            if !state.run_tags.contains_key(key) {
                return Err(DomainError::NotFound { entity: "tag" });
            }
            vec![JobEvent::RunTagDeleted(RunTagDeleted {
                job_id,
                key: key.clone(),
            })]
        }
        JobCommand::Rename { name } => {
            let name = name.trim();
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(DomainError::invalid(
                    "name",
                    format!("must be 1 to {MAX_NAME_LEN} bytes"),
                ));
            }
            if name == state.name {
                return Ok(Some(vec![]));
            }
            vec![
                JobEvent::Renamed(JobRenamed {
                    job_id,
                    name: name.to_string(),
                }),
                JobEvent::RunTagsSet(RunTagsSet {
                    job_id,
                    tags: vec![KeyValue::new(RUN_NAME_TAG, name)],
                }),
            ]
        }
        JobCommand::Delete if state.deleted => vec![],
        JobCommand::Delete => vec![JobEvent::Deleted(JobRef { job_id })],
        JobCommand::Restore if state.deleted => vec![JobEvent::Restored(JobRef { job_id })],
        JobCommand::Restore => vec![],
        JobCommand::ReportRunStatus {
            status: reported,
            end_time_ms,
        } => {
            let mut out = vec![JobEvent::RunStatusReported(RunStatusReported {
                job_id,
                status: *reported,
                end_time_ms: *end_time_ms,
            })];
            if external {
                out.extend(follow_reported(job_id, status, *reported));
            }
            out
        }
        JobCommand::StoreArtifact {
            path,
            size,
            sha256,
            content_type,
        } => vec![JobEvent::ArtifactStored(ArtifactStored {
            job_id,
            path: path.clone(),
            size: *size,
            sha256: sha256.clone(),
            content_type: content_type.clone(),
        })],
        JobCommand::DeleteArtifact { path } => vec![JobEvent::ArtifactDeleted(ArtifactDeleted {
            job_id,
            path: path.clone(),
        })],
        _ => return Ok(None),
    };
    Ok(Some(events))
}

/// The lifecycle events that make an external job's status match what its
/// client reported. A finished run the client reports running again (a
/// resumed MLflow run) is reopened.
fn follow_reported(job_id: JobId, current: JobStatus, reported: RunStatus) -> Vec<JobEvent> {
    let target = match reported {
        RunStatus::Scheduled => return vec![],
        RunStatus::Running => JobStatus::Running,
        RunStatus::Finished => JobStatus::Succeeded,
        RunStatus::Failed => JobStatus::Failed,
        RunStatus::Killed => JobStatus::Cancelled,
    };
    if current == target {
        return vec![];
    }
    let mut out = Vec::new();
    if current.is_terminal() {
        out.push(JobEvent::Reopened(JobRef { job_id }));
    } else if matches!(
        current,
        JobStatus::Queued | JobStatus::Provisioning | JobStatus::Validating
    ) {
        out.push(JobEvent::Started(JobStarted {
            job_id,
            from_step: None,
        }));
    }
    match target {
        JobStatus::Succeeded => out.push(JobEvent::Succeeded(JobSucceeded { job_id })),
        JobStatus::Failed => out.push(JobEvent::Failed(JobFailed {
            job_id,
            reason: FailureReason::UserCode,
            message: "the tracking client reported the run FAILED".into(),
        })),
        JobStatus::Cancelled => out.push(JobEvent::Cancelled(JobCancelled {
            job_id,
            reason: Some("the tracking client reported the run KILLED".into()),
        })),
        _ => {}
    }
    out
}
