//! Managed training with the built-in burn trainer: checkpoint storage and
//! the local run that `finetune-lab train` performs.

pub mod checkpoints;
pub mod local;
