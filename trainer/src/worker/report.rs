//! What the training thread and the reporter task share, and the reporter:
//! buffered reports, heartbeats (bringing back pause/cancel) and telemetry.

use super::api::{ApiError, JobApi};
use super::gpu;
use ftl_domain::job::logs::{LogLevel as WireLevel, LogLine};
use ftl_domain::job::worker_protocol::{Control, HeartbeatReply, WirePoint};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub(super) const CONTINUE: u8 = 0;
pub(super) const PAUSE: u8 = 1;
pub(super) const CANCEL: u8 = 2;
/// The worker is shutting down or lost its lease: stop without reporting.
pub(super) const ABANDON: u8 = 3;

/// What the training thread and the heartbeat task share.
pub(super) struct Shared {
    pub(super) control: AtomicU8,
    pub(super) step: AtomicU64,
    /// Reports the training thread buffered for the reporter task: it
    /// never waits on the network between steps.
    pub(super) metrics: Mutex<Vec<WirePoint>>,
    pub(super) logs: Mutex<Vec<LogLine>>,
    pub(super) lost: AtomicBool,
}

impl Shared {
    pub(super) fn push_metrics(&self, points: impl IntoIterator<Item = WirePoint>) {
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(points);
    }

    pub(super) fn log(&self, level: WireLevel, source: &str, message: String) {
        let mut b = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        let mut message = message;
        message.truncate(ftl_domain::job::logs::MAX_LINE_LEN);
        b.push(LogLine {
            timestamp_ms: chrono::Utc::now().timestamp_millis(),
            level,
            source: source.into(),
            message,
        });
    }
}

pub(super) struct Intervals {
    /// Buffered metrics and log lines are sent this often.
    pub(super) report: Duration,
    pub(super) heartbeat: Duration,
    pub(super) telemetry: Duration,
}

/// Sends buffered reports, heartbeats (bringing back pause/cancel) and
/// telemetry until the training ends.
pub(super) async fn reporter(
    api: JobApi,
    shared: Arc<Shared>,
    every: Intervals,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every.report.min(every.heartbeat));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sampler = gpu::Sampler::new();
    let (mut last_report, mut last_beat, mut last_sample) =
        (Instant::now(), Instant::now(), Instant::now());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
            _ = shutdown.changed() => {
                shared.control.store(ABANDON, Ordering::SeqCst);
                return;
            }
        }
        if last_sample.elapsed() >= every.telemetry {
            last_sample = Instant::now();
            let step = shared.step.load(Ordering::SeqCst) as i64;
            let now = chrono::Utc::now().timestamp_millis();
            shared.push_metrics(sampler.sample().into_iter().map(|(key, value)| WirePoint {
                key,
                step,
                value,
                timestamp_ms: now,
            }));
        }
        if last_report.elapsed() >= every.report {
            last_report = Instant::now();
            if let Err(e) = api.flush(&shared).await {
                tracing::debug!(error = %e, "sending reports failed; kept for the next try");
            }
        }
        if last_beat.elapsed() < every.heartbeat {
            continue;
        }
        last_beat = Instant::now();
        match api
            .post_json::<_, HeartbeatReply>("/heartbeat", &serde_json::json!({}))
            .await
        {
            Ok(reply) => {
                let c = match reply.control {
                    Control::Continue => CONTINUE,
                    Control::Pause => PAUSE,
                    Control::Cancel => CANCEL,
                };
                // Never downgrade: a cancel stays a cancel.
                shared.control.fetch_max(c, Ordering::SeqCst);
            }
            Err(ApiError::LeaseLost) => {
                shared.lost.store(true, Ordering::SeqCst);
                shared.control.store(ABANDON, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
        }
    }
}
