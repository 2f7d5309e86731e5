use super::{FailureReason, Provider, RunStatus};
use crate::experiment::KeyValue;
use crate::ids::{JobId, ProjectId};
use serde::{Deserialize, Serialize};

/// `job.created` v3. (v1 had no `tags` and no `provider`; v2 no experiment,
/// user or start time; see `events::upcast`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCreated {
    pub job_id: JobId,
    pub project_id: ProjectId,
    pub name: String,
    pub config: serde_json::Value,
    pub tags: Vec<String>,
    pub provider: Provider,
    /// The experiment grouping this job (`"0"`: the project's Default).
    pub experiment_id: String,
    /// Who started it, as the reporting client says (MLflow's `user_id`).
    pub user_id: String,
    /// When the client says it started (ms since the epoch), if it said.
    pub start_time_ms: Option<i64>,
}

/// `job.params_logged` v1: write-once parameters (only keys new to the job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamsLogged {
    pub job_id: JobId,
    pub params: Vec<KeyValue>,
}

/// `job.run_tags_set` v1: key/value tags (last write wins), as MLflow's run tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTagsSet {
    pub job_id: JobId,
    pub tags: Vec<KeyValue>,
}

/// `job.run_tag_deleted` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTagDeleted {
    pub job_id: JobId,
    pub key: String,
}

/// `job.renamed` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRenamed {
    pub job_id: JobId,
    pub name: String,
}

/// `job.deleted`, `job.restored` and `job.reopened` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRef {
    pub job_id: JobId,
}

/// `job.run_status_reported` v1: what the client said (MLflow `runs/update`),
/// kept as said; the lifecycle events it implies follow it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatusReported {
    pub job_id: JobId,
    pub status: RunStatus,
    pub end_time_ms: Option<i64>,
}

/// `job.artifact_stored` v1: a file of the job's artifacts was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactStored {
    pub job_id: JobId,
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
}

/// `job.artifact_deleted` v1: a file or folder of the job's artifacts was removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactDeleted {
    pub job_id: JobId,
    pub path: String,
}

/// `job.started` v1: the first heartbeat or metric arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStarted {
    pub job_id: JobId,
    /// Where training resumed (a managed job resumed from a checkpoint after
    /// a pause); absent on a first start. Added compatibly: older events
    /// read as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_step: Option<u64>,
}

/// `job.succeeded` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSucceeded {
    pub job_id: JobId,
}

/// `job.failed` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFailed {
    pub job_id: JobId,
    pub reason: FailureReason,
    pub message: String,
}

/// `job.cancelled` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCancelled {
    pub job_id: JobId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    Created(JobCreated),
    Started(JobStarted),
    Succeeded(JobSucceeded),
    Failed(JobFailed),
    Cancelled(JobCancelled),
    Reopened(JobRef),
    ParamsLogged(ParamsLogged),
    RunTagsSet(RunTagsSet),
    RunTagDeleted(RunTagDeleted),
    Renamed(JobRenamed),
    Deleted(JobRef),
    Restored(JobRef),
    RunStatusReported(RunStatusReported),
    ArtifactStored(ArtifactStored),
    ArtifactDeleted(ArtifactDeleted),
    /// Managed training (validation, leases, pause/resume, recovery, cost).
    Managed(super::managed::ManagedEvent),
}

impl JobEvent {
    pub fn job_id(&self) -> JobId {
        match self {
            Self::Created(e) => e.job_id,
            Self::Started(e) => e.job_id,
            Self::Succeeded(e) => e.job_id,
            Self::Failed(e) => e.job_id,
            Self::Cancelled(e) => e.job_id,
            Self::Reopened(e) | Self::Deleted(e) | Self::Restored(e) => e.job_id,
            Self::ParamsLogged(e) => e.job_id,
            Self::RunTagsSet(e) => e.job_id,
            Self::RunTagDeleted(e) => e.job_id,
            Self::Renamed(e) => e.job_id,
            Self::RunStatusReported(e) => e.job_id,
            Self::ArtifactStored(e) => e.job_id,
            Self::ArtifactDeleted(e) => e.job_id,
            Self::Managed(e) => e.job_id(),
        }
    }
}
