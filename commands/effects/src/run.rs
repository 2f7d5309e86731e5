//! The background work of a `serve` process: the projection runners (each
//! under its leader), the reconciler (under its leader), the outbox's
//! dispatchers, and the in-process workers of the local provider. The edge
//! starts the server and calls [`spawn`] once; everything stops at
//! `shutdown`.

use crate::Effects;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where this process's own workers reach the worker protocol.
#[derive(Debug, Clone)]
pub struct LocalWorkers {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// The credential they claim with (random per start, never stored).
    pub token: String,
}

/// Starts the runners; the handles finish after `shutdown` turns true.
pub fn spawn(
    fx: &Effects,
    workers: LocalWorkers,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = if fx.settings.projections.run {
        fx.projections.spawn_runners(shutdown.clone())
    } else {
        vec![]
    };
    tasks.push(tokio::spawn(crate::training::reconciler::run(
        fx.clone(),
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(crate::dispatch::run(
        fx.clone(),
        shutdown.clone(),
    )));
    for i in 0..fx.settings.training.local_workers {
        let opts = ftl_trainer::worker::WorkerOptions {
            server: workers.server.clone(),
            token: workers.token.clone(),
            worker_id: format!("local-{}-{i}", std::process::id()),
            idle_poll: std::time::Duration::from_millis(500),
            once: false,
        };
        tasks.push(tokio::spawn(ftl_trainer::worker::run_worker(
            opts,
            shutdown.clone(),
        )));
    }
    tasks
}
