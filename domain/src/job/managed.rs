//! Events of managed training (the built-in trainer run by workers):
//! validation, dispatch to a worker under a lease, pause/resume, recovery,
//! checkpoints, cost and budget (`specs/training-config.md` §5–6).
//!
//! Each event type is listed once in [`crate::events::event_family!`], which derives its
//! stable name, payload codec and job id, so adding one is one line here
//! plus a fixture.

use crate::ids::JobId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a job is pausing (`PauseRequested{user | budget | schedule}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    User,
    Budget,
    Schedule,
}

impl PauseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Budget => "budget",
            Self::Schedule => "schedule",
        }
    }
}

/// Why a recovery started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryCause {
    Preempted,
    HeartbeatLost,
    MachineFailure,
}

/// The dataset a job trains on, as validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRef {
    pub dataset_id: uuid::Uuid,
    /// SHA-256 of the file's bytes.
    pub digest: String,
    /// `text`, `supervised` or `preference`.
    pub kind: String,
    pub examples: u64,
}

/// `job.validated` v1: the config passed validation; the job is queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobValidated {
    pub job_id: JobId,
    pub normalized_config: Value,
    pub config_hash: String,
    pub warnings: Value,
    pub estimates: Value,
    pub dataset: DatasetRef,
    /// The model whose weights the job starts from (`model.name` naming one
    /// of ours), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model_id: Option<uuid::Uuid>,
    /// The $/hour this job is charged while it holds a worker.
    pub rate_usd_per_hour: f64,
}

/// `job.dispatched` v1: a worker holds the job under a lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDispatched {
    pub job_id: JobId,
    pub worker_id: String,
    pub lease_id: uuid::Uuid,
    /// SHA-256 of the per-job token handed to that worker (never the token).
    pub token_sha256: String,
    pub attempt: u32,
    /// When the lease began (ms): cost accrues from here.
    pub at_ms: i64,
}

/// `job.recovered` v1: a worker resumed a recovering job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecovered {
    pub job_id: JobId,
    pub lease_id: uuid::Uuid,
    pub from_step: u64,
}

/// `job.pause_requested` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseRequested {
    pub job_id: JobId,
    pub reason: PauseReason,
}

/// `job.paused` v1: resources released; resumable from `checkpoint_step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPaused {
    pub job_id: JobId,
    pub reason: PauseReason,
    pub checkpoint_step: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// A change of budget when resuming (`resumeJob(jobId, newBudget)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetChange {
    /// `None`: no cost cap.
    pub max_cost_usd: Option<f64>,
    /// `None`: no runtime cap.
    pub max_runtime_minutes: Option<u64>,
}

/// `job.resume_requested` v1: back to the queue, with a new budget if given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeRequested {
    pub job_id: JobId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetChange>,
}

/// `job.cancel_requested` v1: the worker is told to stop and release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelRequested {
    pub job_id: JobId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `job.recovery_started` v1: the worker was lost; another resumes the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryStarted {
    pub job_id: JobId,
    pub cause: RecoveryCause,
    pub recovery_count: u32,
}

/// One file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// `job.checkpoint_saved` v1: a complete checkpoint is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointSaved {
    pub job_id: JobId,
    pub lease_id: uuid::Uuid,
    pub step: u64,
    pub epoch: f64,
    /// Object-store folder of the files.
    pub path: String,
    pub files: Vec<CheckpointFile>,
    pub eval_loss: Option<f64>,
    pub train_loss: Option<f64>,
    /// `interval`, `pause`, `stop` or `final`.
    pub reason: String,
    /// Seconds the save took (feeds the budget's save estimate).
    pub save_seconds: f64,
}

/// `job.checkpoint_pruned` v1: keep-last-N removed a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointPruned {
    pub job_id: JobId,
    pub step: u64,
}

/// `job.cost_accrued` v1 (§5): spend over `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostAccrued {
    pub job_id: JobId,
    pub from_ms: i64,
    pub to_ms: i64,
    pub usd: f64,
    pub rate_usd_per_hour: f64,
    /// `provider` or `estimate`.
    pub source: String,
}

/// `job.budget_threshold_crossed` v1: emitted once per threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetThresholdCrossed {
    pub job_id: JobId,
    pub percent: u32,
    pub spent_usd: f64,
    pub max_cost_usd: f64,
}

/// One frame of a parsed stack trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub function: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// `job.error_recorded` v1: what failed a job, for `errors(filter)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecorded {
    pub job_id: JobId,
    /// `error` or `panic`.
    pub kind: String,
    pub message: String,
    pub frames: Vec<Frame>,
    pub fingerprint: String,
}

crate::events::event_family! {
    /// The managed-training events of a job's lifecycle stream.
    ManagedEvent, job_id: JobId, "managed";
    Validated(JobValidated) = "job.validated",
    Dispatched(JobDispatched) = "job.dispatched",
    Recovered(JobRecovered) = "job.recovered",
    PauseRequested(PauseRequested) = "job.pause_requested",
    Paused(JobPaused) = "job.paused",
    ResumeRequested(ResumeRequested) = "job.resume_requested",
    CancelRequested(CancelRequested) = "job.cancel_requested",
    RecoveryStarted(RecoveryStarted) = "job.recovery_started",
    CheckpointSaved(CheckpointSaved) = "job.checkpoint_saved",
    CheckpointPruned(CheckpointPruned) = "job.checkpoint_pruned",
    CostAccrued(CostAccrued) = "job.cost_accrued",
    BudgetThresholdCrossed(BudgetThresholdCrossed) = "job.budget_threshold_crossed",
    ErrorRecorded(ErrorRecorded) = "job.error_recorded",
}

/// Keep-last-N that never prunes the best: the steps to remove from
/// `checkpoints` (step, eval loss) so that the `keep_last` most recent
/// remain, plus the one with the lowest finite eval loss wherever it is.
pub fn checkpoints_to_prune(checkpoints: &[(u64, Option<f64>)], keep_last: usize) -> Vec<u64> {
    let mut sorted: Vec<(u64, Option<f64>)> = checkpoints.to_vec();
    sorted.sort_by_key(|c| c.0);
    let best = sorted
        .iter()
        .filter(|c| c.1.is_some_and(f64::is_finite))
        .min_by(|a, b| {
            a.1.unwrap_or(f64::INFINITY)
                .total_cmp(&b.1.unwrap_or(f64::INFINITY))
        })
        .map(|c| c.0);
    let cut = sorted.len().saturating_sub(keep_last);
    sorted[..cut]
        .iter()
        .map(|c| c.0)
        .filter(|s| Some(*s) != best)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::checkpoints_to_prune;

    #[test]
    fn keep_last_n_never_prunes_the_best() {
        let c = [
            (10, Some(2.0)),
            (20, Some(1.0)),
            (30, Some(1.5)),
            (40, None),
        ];
        // Keep the last 2 (30, 40); 20 is the best and stays; 10 goes.
        assert_eq!(checkpoints_to_prune(&c, 2), vec![10]);
        assert_eq!(checkpoints_to_prune(&c, 1), vec![10, 30]);
        assert_eq!(checkpoints_to_prune(&c, 4), Vec::<u64>::new());
        // Without eval losses it is plain keep-last-N.
        assert_eq!(
            checkpoints_to_prune(&[(1, None), (2, None), (3, None)], 1),
            vec![1, 2]
        );
    }
}
