//! The worker protocol: what a worker (`finetune-lab worker`, or one that
//! `serve` runs in-process) and the server say to each other over HTTP under
//! `/api/v1/worker`. A worker claims a job with a worker credential and gets
//! a per-job token; every other call carries that token, which opens only
//! that job's worker endpoints and only while its lease holds.
//!
//! Pure wire types (serde, no I/O): the server's worker routes
//! (`api/src/training/worker_api.rs`) and the worker (`ftl-trainer`'s
//! `worker` feature) both use them, and neither depends on the other.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::logs::LogLine;
use super::managed::CheckpointFile;

pub const BASE: &str = "/api/v1/worker";
/// Largest JSON report a worker may send (a full batch of 10,000 metric
/// points is about 1 MiB; log batches are cut at [`MAX_REPORT_BYTES`] / 2).
pub const MAX_REPORT_BYTES: usize = 16 * 1024 * 1024;

/// Prefix of per-job tokens: `ftlw_<job id, 32 hex>_<secret>`.
pub const JOB_TOKEN_PREFIX: &str = "ftlw_";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// A name for the worker (host, process): shown on the job.
    pub worker_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    pub job_id: Uuid,
    pub lease_id: Uuid,
    /// The per-job token (shown once; the server keeps its SHA-256).
    pub token: String,
    /// The normalized job config.
    pub config: Value,
    /// `text`, `supervised` or `preference`; `raw_text` for plain text files.
    pub dataset_kind: String,
    pub dataset_raw_text: bool,
    pub dataset_sha256: String,
    /// The architecture of the model the job starts from when it is one of
    /// ours (its weights: `GET …/base/model.bpk`).
    pub base_architecture: Option<Value>,
    /// Resume from the checkpoint at this step.
    pub resume_step: Option<u64>,
    pub heartbeat_ms: u64,
    /// Buffered metrics and log lines are sent this often.
    pub report_ms: u64,
    pub telemetry_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    Continue,
    Pause,
    Cancel,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub control: Control,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub from_step: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WirePoint {
    pub key: String,
    pub step: i64,
    #[serde(with = "crate::float_json")]
    pub value: f64,
    pub timestamp_ms: i64,
}

/// A batch of metric points; `batch_id` makes a retried batch land once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsBatch {
    pub batch_id: Uuid,
    pub points: Vec<WirePoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsBatch {
    pub batch_id: Uuid,
    pub lines: Vec<LogLine>,
}

/// A checkpoint whose files were uploaded (`PUT …/checkpoints/{step}/files/{name}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointReport {
    pub step: u64,
    pub epoch: f64,
    pub files: Vec<CheckpointFile>,
    pub eval_loss: Option<f64>,
    pub train_loss: Option<f64>,
    /// `interval`, `pause`, `stop` or `final`.
    pub reason: String,
    pub save_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PausedReport {
    pub checkpoint_step: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedReport {
    /// `error` or `panic`.
    pub kind: String,
    pub message: String,
    /// A Rust backtrace or Python traceback, parsed into frames server-side.
    pub trace: String,
}

/// The error body of every worker endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerError {
    pub code: String,
    pub message: String,
}

/// The stable `code` of a REST error body (`{"code": …, "message": …}`).
pub fn error_code(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        code: String,
    }
    serde_json::from_str::<Body>(body).ok().map(|b| b.code)
}
