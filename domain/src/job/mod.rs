//! Training jobs: status names and transitions of `specs/training-config.md` §6.
//!
//! Jobs reported from outside (provider `external`) go queued → running →
//! succeeded | failed | cancelled as their reporter says; managed jobs
//! (provider `local`, run by workers) follow the whole table of §6
//! (`lifecycle`).

pub mod budget;
mod decider;
mod events;
pub mod failure;
mod lifecycle;
pub mod logs;
pub mod managed;
pub mod worker_protocol;

pub use decider::{
    JobCommand, JobDecider, JobState, RUN_NAME_TAG, RunInfo, created_status, deleted_run_message,
    in_project, run_id_text,
};
pub use events::{
    ArtifactDeleted, ArtifactStored, JobCancelled, JobCreated, JobEvent, JobFailed, JobRef,
    JobRenamed, JobStarted, JobSucceeded, ParamsLogged, RunStatusReported, RunTagDeleted,
    RunTagsSet,
};
pub use lifecycle::ManagedState;
pub use managed::ManagedEvent;

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Validating,
    Queued,
    Provisioning,
    Running,
    Pausing,
    Paused,
    Recovering,
    Cancelling,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 11] = [
        Self::Validating,
        Self::Queued,
        Self::Provisioning,
        Self::Running,
        Self::Pausing,
        Self::Paused,
        Self::Recovering,
        Self::Cancelling,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validating => "validating",
            Self::Queued => "queued",
            Self::Provisioning => "provisioning",
            Self::Running => "running",
            Self::Pausing => "pausing",
            Self::Paused => "paused",
            Self::Recovering => "recovering",
            Self::Cancelling => "cancelling",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's status as MLflow clients report and read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        Self::Running,
        Self::Scheduled,
        Self::Finished,
        Self::Failed,
        Self::Killed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Scheduled => "SCHEDULED",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// How a job's status reads as an MLflow run status.
    pub fn of_job(status: JobStatus) -> Self {
        match status {
            JobStatus::Validating | JobStatus::Queued | JobStatus::Provisioning => Self::Scheduled,
            JobStatus::Succeeded => Self::Finished,
            JobStatus::Failed => Self::Failed,
            JobStatus::Cancelled => Self::Killed,
            _ => Self::Running,
        }
    }
}

/// Where a job runs. `external`: a training script anywhere reports to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    #[default]
    External,
    Local,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::External => "external",
            Self::Local => "local",
        }
    }
}

/// `failure_reason` of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    Prechecks,
    NoResource,
    Setup,
    #[default]
    UserCode,
    Oom,
    DataError,
    Lost,
    RecoveryExhausted,
    ProviderError,
    Controller,
    Timeout,
    Internal,
}

impl FailureReason {
    pub const ALL: [FailureReason; 12] = [
        Self::Prechecks,
        Self::NoResource,
        Self::Setup,
        Self::UserCode,
        Self::Oom,
        Self::DataError,
        Self::Lost,
        Self::RecoveryExhausted,
        Self::ProviderError,
        Self::Controller,
        Self::Timeout,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prechecks => "prechecks",
            Self::NoResource => "no_resource",
            Self::Setup => "setup",
            Self::UserCode => "user_code",
            Self::Oom => "oom",
            Self::DataError => "data_error",
            Self::Lost => "lost",
            Self::RecoveryExhausted => "recovery_exhausted",
            Self::ProviderError => "provider_error",
            Self::Controller => "controller",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }
}
