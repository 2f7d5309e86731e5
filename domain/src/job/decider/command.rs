//! The commands a job takes, and the error for one its status does not allow.

use super::RunInfo;
use crate::error::DomainError;
use crate::experiment::KeyValue;
use crate::ids::{JobId, ProjectId};
use crate::job::managed::{
    BudgetChange, CheckpointSaved, ErrorRecorded, JobValidated, PauseReason, RecoveryCause,
};
use crate::job::{FailureReason, JobStatus, Provider, RunStatus};

#[derive(Debug, Clone, PartialEq)]
pub enum JobCommand {
    Create {
        job_id: JobId,
        project_id: ProjectId,
        name: String,
        config: serde_json::Value,
        tags: Vec<String>,
        provider: Provider,
        run: RunInfo,
    },
    Start,
    Complete,
    Fail {
        reason: FailureReason,
        message: String,
    },
    Cancel {
        reason: Option<String>,
    },
    /// Metrics arrived: a queued job becomes running; a finished one refuses them.
    ReportMetrics,
    /// Params, tags and/or metrics from a tracking client (MLflow): params are
    /// write-once, a deleted run refuses everything, a finished run accepts
    /// them (as MLflow does) and a queued one starts.
    RecordRunData {
        params: Vec<KeyValue>,
        tags: Vec<KeyValue>,
        metrics: bool,
    },
    DeleteRunTag {
        key: String,
    },
    Rename {
        name: String,
    },
    Delete,
    Restore,
    /// A client's status report (MLflow `runs/update`). For jobs reported from
    /// outside it drives the lifecycle, reopening a finished run when the
    /// client resumes it; for managed jobs it is only recorded.
    ReportRunStatus {
        status: RunStatus,
        end_time_ms: Option<i64>,
    },
    StoreArtifact {
        path: String,
        size: u64,
        sha256: String,
        content_type: String,
    },
    DeleteArtifact {
        path: String,
    },
    /// A managed job whose config and dataset passed validation: created
    /// and queued in one step (`validating` → `queued`).
    CreateManaged {
        job_id: JobId,
        project_id: ProjectId,
        name: String,
        tags: Vec<String>,
        config: serde_json::Value,
        validated: Box<JobValidated>,
    },
    /// A worker takes a queued (or recovering) job under a new lease.
    Dispatch {
        worker_id: String,
        lease_id: uuid::Uuid,
        token_sha256: String,
    },
    /// The worker began training (`from_step`: where it resumed).
    WorkerStarted {
        lease_id: uuid::Uuid,
        from_step: Option<u64>,
    },
    SaveCheckpoint(Box<CheckpointSaved>),
    PruneCheckpoint {
        lease_id: uuid::Uuid,
        step: u64,
    },
    RequestPause {
        reason: PauseReason,
    },
    /// The worker saved (or could not save) and released: the job is paused.
    ConfirmPaused {
        lease_id: uuid::Uuid,
        checkpoint_step: Option<u64>,
    },
    Resume {
        budget: Option<BudgetChange>,
    },
    ConfirmCancelled {
        lease_id: uuid::Uuid,
    },
    /// Training finished and the final artifacts are recorded.
    Finish {
        lease_id: uuid::Uuid,
    },
    FailRun {
        lease_id: uuid::Uuid,
        reason: FailureReason,
        error: Box<ErrorRecorded>,
    },
    /// The lease expired without a heartbeat (the reconciler's command).
    LoseLease {
        lease_id: uuid::Uuid,
        cause: RecoveryCause,
    },
    /// A cost tick up to now, with the budget rules (the controller's command).
    AccrueCost,
}

impl JobCommand {
    fn verb(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Fail { .. } => "fail",
            Self::Cancel { .. } => "cancel",
            Self::ReportMetrics => "log metrics to",
            Self::RecordRunData { .. } => "log to",
            Self::DeleteRunTag { .. } => "delete a tag of",
            Self::Rename { .. } => "rename",
            Self::Delete => "delete",
            Self::Restore => "restore",
            Self::ReportRunStatus { .. } => "report the status of",
            Self::StoreArtifact { .. } => "store an artifact of",
            Self::DeleteArtifact { .. } => "delete an artifact of",
            Self::CreateManaged { .. } => "create",
            Self::Dispatch { .. } => "dispatch",
            Self::WorkerStarted { .. } => "start",
            Self::SaveCheckpoint(_) => "save a checkpoint of",
            Self::PruneCheckpoint { .. } => "prune a checkpoint of",
            Self::RequestPause { .. } => "pause",
            Self::ConfirmPaused { .. } => "confirm the pause of",
            Self::Resume { .. } => "resume",
            Self::ConfirmCancelled { .. } => "confirm the cancellation of",
            Self::Finish { .. } => "complete",
            Self::FailRun { .. } => "fail",
            Self::LoseLease { .. } => "recover",
            Self::AccrueCost => "charge",
        }
    }
}

pub(super) fn invalid(status: JobStatus, cmd: &JobCommand) -> DomainError {
    DomainError::InvalidTransition {
        current: status.to_string(),
        command: cmd.verb().to_string(),
    }
}
