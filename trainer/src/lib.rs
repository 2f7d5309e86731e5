//! FineTune Lab's built-in trainer, on burn.
//!
//! A decoder-only transformer over a byte-level tokenizer ([`tokenizer`],
//! [`model`]), trained by continued pretraining, SFT (loss on assistant
//! tokens only) or DPO against a frozen reference ([`train`]), with AdamW,
//! global-norm gradient clipping, gradient accumulation and Hugging Face's
//! LR schedules ([`schedule`]). Checkpoints hold everything needed to resume
//! bit for bit ([`checkpoint`]); any checkpoint generates text ([`generate`]).
//!
//! The crate does no I/O of its own: datasets arrive as bytes, checkpoints
//! leave as files, and the caller (a worker) stores and reports them.

pub mod checkpoint;
pub mod dataset;
pub mod generate;
pub mod job;
pub mod model;
pub mod run;
pub mod schedule;
pub mod tokenizer;
pub mod train;

#[cfg(test)]
mod tests;

pub use checkpoint::{Checkpoint, CheckpointMeta};
pub use dataset::{Dataset, DatasetKind, Example};
pub use generate::{FinishReason, GenerateParams, Generation, Generator};
pub use model::{LanguageModel, ModelConfig};
pub use schedule::{Schedule, ScheduleKind};
pub use train::{Backend, EvalReport, Method, StepReport, TrainConfig, Trainer};

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
