//! Tests that drive the real `finetune-lab` binary: crash safety (of the
//! log, and of managed training), the CLI trainer, and the real `mlflow`
//! Python client against the MLflow API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crash;
mod mlflow_client;
mod process;
mod train_cli;
mod training_crash;
