//! Tests that drive the real `finetune-lab` binary: crash safety (of the
//! log, and of managed training), key revocation, the CLI trainer, and the real `mlflow`
//! and `openai` Python clients against the MLflow and OpenAI APIs, and the
//! README's walkthrough as written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crash;
mod keys;
mod mlflow_client;
mod openai_client;
mod process;
mod readme;
mod train_cli;
mod training_crash;
