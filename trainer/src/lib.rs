//! FineTune Lab's built-in trainer, on burn.
//!
//! A decoder-only transformer over a byte-level tokenizer ([`tokenizer`],
//! [`model`]), trained by continued pretraining, SFT (loss on assistant
//! tokens only) or DPO against a frozen reference ([`train`], configured by
//! [`config`]), with AdamW, global-norm gradient clipping, gradient
//! accumulation and Hugging Face's LR schedules ([`schedule`]). Checkpoints
//! hold everything needed to resume bit for bit ([`checkpoint`]); any
//! checkpoint generates text ([`generate`]).
//!
//! With its default features the crate does no I/O: datasets arrive as
//! bytes, checkpoints leave as files, and the caller (a worker) stores and
//! reports them. The `worker` feature (off by default; `ftl-effects` turns it
//! on) adds that caller as the `worker` module: it claims jobs from a server
//! and reports over the worker protocol (`ftl_domain::job::worker_protocol`),
//! with reqwest, tokio and NVML telemetry.

pub mod checkpoint;
pub mod config;
pub mod dataset;
pub mod generate;
pub mod job;
pub mod model;
pub mod run;
pub mod schedule;
pub mod tokenizer;
pub mod train;
#[cfg(feature = "worker")]
pub mod worker;

#[cfg(test)]
mod tests;

pub use checkpoint::{Checkpoint, CheckpointMeta};
pub use config::{Method, TrainConfig};
pub use dataset::{Dataset, DatasetKind, Example};
pub use generate::{FinishReason, GenerateParams, Generation, Generator};
pub use model::{LanguageModel, ModelConfig};
pub use schedule::{Schedule, ScheduleKind};
pub use train::{Backend, EvalReport, StepReport, Trainer};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("dataset: {0}")]
    Data(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("trainer internal error: {0}")]
    Internal(String),
}
