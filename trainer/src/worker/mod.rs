//! The worker: claims a queued job from a server, trains it with the
//! built-in trainer, and reports through the worker protocol with the job's
//! own token — metrics every `logging_steps`, log lines and telemetry with
//! each heartbeat, checkpoints as uploaded files. `finetune-lab worker` runs
//! one against any server; `serve` runs `training.local_workers` of them
//! against itself, over the same HTTP protocol.
//!
//! `claimed.rs` runs one claimed job (fetch, train, report the outcome),
//! `report.rs` the reporter task (buffered reports, heartbeats, telemetry),
//! `observer.rs` what the training thread does between steps, `api.rs` the
//! job's HTTP calls, `panics.rs` failure reports with backtraces, `gpu.rs`
//! telemetry. The wire types are `ftl_domain::job::worker_protocol`.

mod api;
mod claimed;
pub mod gpu;
mod observer;
mod panics;
mod report;
#[cfg(test)]
mod tests;

use ftl_domain::job::worker_protocol::{BASE, Claim, ClaimRequest};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// A project key with write scope (or the server's own worker secret).
    pub token: String,
    pub worker_id: String,
    /// Wait between claims when no job is queued.
    pub idle_poll: Duration,
    /// Exit after one job (or none queued).
    pub once: bool,
}

/// Claims and trains jobs until `shutdown` turns true.
pub async fn run_worker(opts: WorkerOptions, shutdown: watch::Receiver<bool>) {
    let client = reqwest::Client::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match claim(&client, &opts).await {
            Ok(Some(c)) => {
                let job = c.job_id;
                tracing::info!(%job, worker = %opts.worker_id, "claimed a job");
                if let Err(e) = claimed::run_job(&client, &opts, c, shutdown.clone()).await {
                    tracing::warn!(%job, error = %format!("{e:#}"), "job ended without a report");
                }
                if opts.once {
                    return;
                }
            }
            Ok(None) if opts.once => return,
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "claim failed"),
        }
        let mut sd = shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(opts.idle_poll) => {}
            _ = sd.changed() => {}
        }
    }
}

async fn claim(client: &reqwest::Client, opts: &WorkerOptions) -> anyhow::Result<Option<Claim>> {
    let r = client
        .post(format!("{}{BASE}/claim", opts.server))
        .bearer_auth(&opts.token)
        .json(&ClaimRequest {
            worker_id: opts.worker_id.clone(),
        })
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    match r.status().as_u16() {
        204 => Ok(None),
        200 => Ok(Some(r.json().await?)),
        s => anyhow::bail!("claim: HTTP {s}: {}", r.text().await.unwrap_or_default()),
    }
}
