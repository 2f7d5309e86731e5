//! The job's state as its events leave it, and the guards read from it.

use crate::error::DomainError;
use crate::ids::{JobId, ProjectId};
use crate::job::lifecycle::ManagedState;
use crate::job::{JobStatus, Provider};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobState {
    pub created: Option<Created>,
    pub status: Option<JobStatus>,
    pub name: String,
    /// Write-once parameters.
    pub params: BTreeMap<String, String>,
    /// Key/value run tags (last write wins).
    pub run_tags: BTreeMap<String, String>,
    /// MLflow's `lifecycle_stage = deleted`: the job rejects writes.
    pub deleted: bool,
    /// Set for managed jobs (from `job.validated`).
    pub managed: Option<ManagedState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub job_id: JobId,
    pub project_id: ProjectId,
    pub provider: Provider,
    pub experiment_id: String,
}

/// A guard for command handlers: a job of another project does not exist.
pub fn in_project(project: ProjectId) -> impl Fn(&JobState) -> Result<(), DomainError> {
    move |s: &JobState| match &s.created {
        Some(c) if c.project_id != project => Err(DomainError::NotFound { entity: "job" }),
        _ => Ok(()),
    }
}

/// The status a new job starts in: a managed job is validated next.
pub fn created_status(provider: Provider) -> JobStatus {
    match provider {
        Provider::Local => JobStatus::Validating,
        Provider::External => JobStatus::Queued,
    }
}
