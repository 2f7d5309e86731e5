use super::{FailureReason, Provider};
use crate::ids::{JobId, ProjectId};
use serde::{Deserialize, Serialize};

/// `job.created` v2. (v1 had no `tags` and no `provider`; see `events::upcast`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCreated {
    pub job_id: JobId,
    pub project_id: ProjectId,
    pub name: String,
    pub config: serde_json::Value,
    pub tags: Vec<String>,
    pub provider: Provider,
}

/// `job.started` v1: the first heartbeat or metric arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStarted {
    pub job_id: JobId,
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
}

impl JobEvent {
    pub fn job_id(&self) -> JobId {
        match self {
            Self::Created(e) => e.job_id,
            Self::Started(e) => e.job_id,
            Self::Succeeded(e) => e.job_id,
            Self::Failed(e) => e.job_id,
            Self::Cancelled(e) => e.job_id,
        }
    }
}
