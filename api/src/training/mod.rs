//! Managed training with the built-in burn trainer: the worker protocol
//! (server and client), the reconciler (leases, cost ticks), checkpoint
//! storage, datasets, models and the GPU/price catalog; and the local run
//! that `finetune-lab train` performs.

pub mod catalog;
pub mod checkpoints;
pub mod datasets;
pub mod http;
pub mod job_states;
pub mod local;
pub mod models;
pub mod protocol;
pub mod reconciler;
pub mod rest;
pub mod storage;
pub mod telemetry;
pub mod worker;
pub mod worker_api;
