//! Managed training with the built-in burn trainer: datasets, checkpoint
//! storage, the folded job states, the reconciler (leases, cost ticks), the
//! GPU/price catalog, launching a job (`launch`), and the local run that
//! `finetune-lab train` performs.

pub mod catalog;
pub mod checkpoints;
pub mod datasets;
pub mod job_states;
pub mod launch;
pub mod local;
pub mod reconciler;
pub mod storage;
