//! The trainer's observer in a worker: metrics and log lines are buffered for
//! the reporter, checkpoints uploaded, and pause/cancel read between steps.

use super::api::{ApiError, JobApi};
use super::report::{ABANDON, CANCEL, CONTINUE, PAUSE, Shared};
use crate::run::{Control as RunControl, LogLevel, Observer, SaveReason};
use crate::{Checkpoint, TrainError};
use ftl_domain::job::logs::LogLevel as WireLevel;
use ftl_domain::job::worker_protocol::{CheckpointReport, WirePoint};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

pub(super) struct WorkerObserver {
    pub(super) handle: tokio::runtime::Handle,
    pub(super) api: JobApi,
    pub(super) shared: Arc<Shared>,
    pub(super) last_saved: Option<u64>,
    pub(super) last_train_loss: Option<f64>,
}

impl WorkerObserver {
    fn abandoned(&self) -> bool {
        self.shared.control.load(Ordering::SeqCst) == ABANDON
    }
}

fn api_error(e: ApiError) -> TrainError {
    TrainError::Checkpoint(e.to_string())
}

impl Observer for WorkerObserver {
    fn metrics(&mut self, step: u64, points: &[(&str, f64)]) -> Result<(), TrainError> {
        self.shared.step.store(step, Ordering::SeqCst);
        if let Some((_, v)) = points.iter().find(|(k, _)| *k == "train_loss") {
            self.last_train_loss = Some(*v);
        }
        let summary: Vec<String> = points.iter().map(|(k, v)| format!("{k}={v:.6}")).collect();
        self.shared.log(
            WireLevel::Info,
            "trainer",
            format!("step {step}: {}", summary.join(" ")),
        );
        let now = chrono::Utc::now().timestamp_millis();
        self.shared
            .push_metrics(points.iter().map(|(k, v)| WirePoint {
                key: (*k).to_string(),
                step: step as i64,
                value: *v,
                timestamp_ms: now,
            }));
        Ok(())
    }

    fn checkpoint(
        &mut self,
        checkpoint: Checkpoint,
        reason: SaveReason,
        eval_loss: Option<f64>,
    ) -> Result<(), TrainError> {
        if self.abandoned() {
            return Err(TrainError::Checkpoint("abandoned".into()));
        }
        let started = Instant::now();
        let step = checkpoint.meta.step;
        let files = checkpoint.files()?;
        let report = CheckpointReport {
            step,
            epoch: checkpoint.meta.epoch,
            files: files
                .iter()
                .map(|f| ftl_domain::job::managed::CheckpointFile {
                    name: f.name.to_string(),
                    size: f.bytes.len() as u64,
                    sha256: f.sha256.clone(),
                })
                .collect(),
            eval_loss,
            train_loss: self.last_train_loss,
            reason: match reason {
                SaveReason::Scheduled => "interval",
                SaveReason::Final => "final",
                SaveReason::Pause if self.shared.control.load(Ordering::SeqCst) == CANCEL => "stop",
                SaveReason::Pause => "pause",
            }
            .into(),
            save_seconds: 0.0,
        };
        let api = self.api.clone();
        let shared = self.shared.clone();
        self.handle
            .block_on(async move {
                // The metrics up to this step land before the checkpoint does.
                api.flush(&shared).await?;
                for f in files {
                    api.put_bytes(&format!("/checkpoints/{step}/files/{}", f.name), f.bytes)
                        .await?;
                }
                let report = CheckpointReport {
                    save_seconds: started.elapsed().as_secs_f64(),
                    ..report
                };
                api.post("/checkpoints", &report).await.map(|_| ())
            })
            .map_err(api_error)?;
        self.last_saved = Some(step);
        self.shared.log(
            WireLevel::Info,
            "trainer",
            format!("checkpoint saved at step {step}"),
        );
        Ok(())
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => WireLevel::Debug,
            LogLevel::Info => WireLevel::Info,
            LogLevel::Warn => WireLevel::Warn,
            LogLevel::Error => WireLevel::Error,
        };
        self.shared.log(level, "trainer", message.to_string());
    }

    fn control(&mut self, step: u64) -> RunControl {
        self.shared.step.store(step, Ordering::SeqCst);
        match self.shared.control.load(Ordering::SeqCst) {
            CONTINUE => RunControl::Continue,
            PAUSE => RunControl::Pause,
            _ => RunControl::Stop,
        }
    }
}
