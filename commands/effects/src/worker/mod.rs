//! The worker: claims a queued job from a server, trains it with the
//! built-in trainer, and reports through the worker protocol with the job's
//! own token — metrics every `logging_steps`, log lines and telemetry with
//! each heartbeat, checkpoints as uploaded files. `finetune-lab worker` runs
//! one against any server; `serve` runs `training.local_workers` of them
//! against itself, over the same HTTP protocol.

pub mod gpu;
pub mod protocol;

use self::protocol::*;
use ftl_domain::job::logs::{LogLevel as WireLevel, LogLine, MAX_LINES_PER_CALL};
use ftl_domain::limits::MAX_POINTS_PER_CALL;
use ftl_trainer::run::{Control as RunControl, LogLevel, Observer, Outcome, SaveReason};
use ftl_trainer::{Backend, Checkpoint, Dataset, TrainError, Trainer, job};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

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
                if let Err(e) = run_job(&client, &opts, c, shutdown.clone()).await {
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

/// One job's calls, with its token; retried on transport errors and 5xx.
#[derive(Clone)]
struct JobApi {
    client: reqwest::Client,
    base: String,
    token: String,
}

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("the lease on this job was lost")]
    LeaseLost,
    #[error("{0}")]
    Other(String),
}

/// The stable `code` of a REST error body (`{"code": …, "message": …}`).
pub fn error_code(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        code: String,
    }
    serde_json::from_str::<Body>(body).ok().map(|b| b.code)
}

impl JobApi {
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let mut delay = Duration::from_millis(100);
        for attempt in 0..6 {
            match build().bearer_auth(&self.token).send().await {
                Ok(r) if r.status().as_u16() == 409 => {
                    let body = r.text().await.unwrap_or_default();
                    if error_code(&body).as_deref() == Some("lease_lost") {
                        return Err(ApiError::LeaseLost);
                    }
                    return Err(ApiError::Other(body));
                }
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) if r.status().is_server_error() && attempt < 5 => {}
                Ok(r) => {
                    let status = r.status();
                    return Err(ApiError::Other(format!(
                        "HTTP {status}: {}",
                        r.text().await.unwrap_or_default()
                    )));
                }
                Err(e) if attempt < 5 => tracing::debug!(error = %e, "retrying a worker call"),
                Err(e) => return Err(ApiError::Other(e.to_string())),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(ApiError::Other("retries exhausted".into()))
    }

    async fn post<T: Serialize>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response, ApiError> {
        let url = format!("{}{path}", self.base);
        self.send(|| self.client.post(&url).json(body)).await
    }

    async fn post_json<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, ApiError> {
        self.post(path, body)
            .await?
            .json()
            .await
            .map_err(|e| ApiError::Other(e.to_string()))
    }

    async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        let url = format!("{}{path}", self.base);
        let r = self.send(|| self.client.get(&url)).await?;
        Ok(r.bytes()
            .await
            .map_err(|e| ApiError::Other(e.to_string()))?
            .to_vec())
    }

    async fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> Result<(), ApiError> {
        let url = format!("{}{path}", self.base);
        self.send(|| self.client.put(&url).body(bytes.clone()))
            .await
            .map(|_| ())
    }

    /// Sends what the training thread buffered: metric points, then log
    /// lines, in batches within the per-call limits. A batch that cannot be
    /// sent goes back to the front of its buffer for the next flush.
    async fn flush(&self, shared: &Shared) -> Result<(), ApiError> {
        loop {
            let points: Vec<WirePoint> = {
                let mut b = shared.metrics.lock().unwrap_or_else(|e| e.into_inner());
                let n = b.len().min(MAX_POINTS_PER_CALL);
                b.drain(..n).collect()
            };
            if points.is_empty() {
                break;
            }
            let batch = MetricsBatch {
                batch_id: Uuid::new_v4(),
                points,
            };
            if let Err(e) = self.post("/metrics", &batch).await {
                let mut b = shared.metrics.lock().unwrap_or_else(|e| e.into_inner());
                b.splice(0..0, batch.points);
                return Err(e);
            }
        }
        loop {
            let lines: Vec<LogLine> = {
                let mut b = shared.logs.lock().unwrap_or_else(|e| e.into_inner());
                // At most the per-call line limit, and about half the
                // server's body limit in message bytes.
                let mut bytes = 0;
                let n = b
                    .iter()
                    .take(MAX_LINES_PER_CALL)
                    .take_while(|l| {
                        bytes += l.message.len() + 100;
                        bytes <= MAX_REPORT_BYTES / 2
                    })
                    .count()
                    .max(1)
                    .min(b.len());
                b.drain(..n).collect()
            };
            if lines.is_empty() {
                return Ok(());
            }
            let batch = LogsBatch {
                batch_id: Uuid::new_v4(),
                lines,
            };
            if let Err(e) = self.post("/logs", &batch).await {
                let mut b = shared.logs.lock().unwrap_or_else(|e| e.into_inner());
                b.splice(0..0, batch.lines);
                return Err(e);
            }
        }
    }
}

const CONTINUE: u8 = 0;
const PAUSE: u8 = 1;
const CANCEL: u8 = 2;
/// The worker is shutting down or lost its lease: stop without reporting.
const ABANDON: u8 = 3;

/// What the training thread and the heartbeat task share.
struct Shared {
    control: AtomicU8,
    step: AtomicU64,
    /// Reports the training thread buffered for the reporter task: it
    /// never waits on the network between steps.
    metrics: Mutex<Vec<WirePoint>>,
    logs: Mutex<Vec<LogLine>>,
    lost: AtomicBool,
}

impl Shared {
    fn push_metrics(&self, points: impl IntoIterator<Item = WirePoint>) {
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(points);
    }

    fn log(&self, level: WireLevel, source: &str, message: String) {
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

async fn run_job(
    client: &reqwest::Client,
    opts: &WorkerOptions,
    claim: Claim,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let api = JobApi {
        client: client.clone(),
        base: format!("{}{BASE}/jobs/{}", opts.server, claim.job_id),
        token: claim.token.clone(),
    };
    let shared = Arc::new(Shared {
        control: AtomicU8::new(CONTINUE),
        step: AtomicU64::new(claim.resume_step.unwrap_or(0)),
        metrics: Mutex::new(Vec::new()),
        logs: Mutex::new(Vec::new()),
        lost: AtomicBool::new(false),
    });
    let (stop_beat, beat) = {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(reporter(
            api.clone(),
            shared.clone(),
            Intervals {
                report: Duration::from_millis(claim.report_ms.max(50)),
                heartbeat: Duration::from_millis(claim.heartbeat_ms.max(50)),
                telemetry: Duration::from_millis(claim.telemetry_ms.max(100)),
            },
            rx,
            shutdown,
        ));
        (tx, task)
    };
    let result = train(&api, &claim, shared.clone()).await;
    let _ = stop_beat.send(true);
    let _ = beat.await;
    let abandon = shared.control.load(Ordering::SeqCst) == ABANDON;
    if abandon || shared.lost.load(Ordering::SeqCst) {
        anyhow::bail!(
            "abandoned (shutdown or lease lost); the job recovers from its last checkpoint"
        );
    }
    match result {
        Ok((outcome, last_saved)) => {
            shared.log(
                WireLevel::Info,
                "trainer",
                format!("training ended: {outcome:?}"),
            );
            api.flush(&shared).await?;
            match outcome {
                Outcome::Finished => api.post("/finished", &serde_json::json!({})).await?,
                Outcome::Paused => {
                    api.post(
                        "/paused",
                        &PausedReport {
                            checkpoint_step: last_saved,
                        },
                    )
                    .await?
                }
                Outcome::Stopped => api.post("/cancelled", &serde_json::json!({})).await?,
            };
        }
        Err(failure) => {
            shared.log(WireLevel::Error, "trainer", failure.message.clone());
            let _ = api.flush(&shared).await;
            api.post("/failed", &failure).await?;
        }
    }
    Ok(())
}

struct Intervals {
    /// Buffered metrics and log lines are sent this often.
    report: Duration,
    heartbeat: Duration,
    telemetry: Duration,
}

/// Sends buffered reports, heartbeats (bringing back pause/cancel) and
/// telemetry until the training ends.
async fn reporter(
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

/// Prepares the trainer (dataset, base weights, resume) and runs it.
async fn train(
    api: &JobApi,
    claim: &Claim,
    shared: Arc<Shared>,
) -> Result<(Outcome, Option<u64>), FailedReport> {
    let fail = |message: String| FailedReport {
        kind: "error".into(),
        message,
        trace: String::new(),
    };
    let api_fail = |what: &str, e: ApiError| fail(format!("{what}: {e}"));
    let bytes = api
        .get_bytes("/dataset")
        .await
        .map_err(|e| api_fail("downloading the dataset", e))?;
    let model_name = claim
        .config
        .pointer("/model/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let model = match &claim.base_architecture {
        Some(a) => serde_json::from_value(a.clone())
            .map_err(|e| fail(format!("base model architecture: {e}")))?,
        None => {
            job::preset(model_name).ok_or_else(|| fail(format!("unknown model {model_name}")))?
        }
    };
    let dataset =
        Dataset::parse(&bytes, claim.dataset_raw_text, model.context).map_err(|issues| {
            fail(format!(
                "dataset has {} problem(s); first: line {}: {}",
                issues.len(),
                issues.first().map(|i| i.line).unwrap_or(0),
                issues.first().map(|i| i.message.as_str()).unwrap_or("")
            ))
        })?;
    if dataset.digest != claim.dataset_sha256 {
        return Err(fail(format!(
            "the dataset changed since the job was validated (sha256 {} now, {} then)",
            dataset.digest, claim.dataset_sha256
        )));
    }
    let prepared =
        job::prepare(&claim.config, &dataset, model).map_err(|e| fail(format!("config: {e}")))?;
    let base = match &claim.base_architecture {
        Some(_) => Some(
            api.get_bytes("/base/model.bpk")
                .await
                .map_err(|e| api_fail("downloading the base model", e))?,
        ),
        None => None,
    };
    let resume = match claim.resume_step {
        Some(step) => Some(fetch_checkpoint(api, step).await?),
        None => None,
    };
    api.post(
        "/started",
        &Started {
            from_step: claim.resume_step,
        },
    )
    .await
    .map_err(|e| api_fail("reporting the start", e))?;
    let handle = tokio::runtime::Handle::current();
    let api2 = api.clone();
    let plan = prepared.plan.clone();
    tokio::task::spawn_blocking(move || {
        capture_panics(move || {
            let mut trainer = match &resume {
                Some(c) => Trainer::resume(Backend::Cpu, &dataset, prepared.split, c)?,
                None => Trainer::new(
                    prepared.train,
                    Backend::Cpu,
                    &dataset,
                    prepared.split,
                    base.as_deref(),
                )?,
            };
            let mut observer = WorkerObserver {
                handle,
                api: api2,
                shared,
                last_saved: None,
                last_train_loss: None,
            };
            let outcome = ftl_trainer::run::run(&mut trainer, &plan, &mut observer)?;
            Ok((outcome, observer.last_saved))
        })
    })
    .await
    .map_err(|e| fail(format!("training task: {e}")))?
}

async fn fetch_checkpoint(api: &JobApi, step: u64) -> Result<Checkpoint, FailedReport> {
    use ftl_trainer::checkpoint::{META_FILE, MODEL_FILE, OPTIMIZER_FILE, REFERENCE_FILE};
    let mut files = std::collections::HashMap::new();
    for name in [META_FILE, MODEL_FILE, OPTIMIZER_FILE, REFERENCE_FILE] {
        match api
            .get_bytes(&format!("/checkpoints/{step}/files/{name}"))
            .await
        {
            Ok(b) => {
                files.insert(name.to_string(), b);
            }
            // A checkpoint without a reference model (not DPO).
            Err(_) if name == REFERENCE_FILE => {}
            Err(e) => {
                return Err(FailedReport {
                    kind: "error".into(),
                    message: format!("downloading checkpoint {step}/{name}: {e}"),
                    trace: String::new(),
                });
            }
        }
    }
    Checkpoint::from_files(|n| files.remove(n)).map_err(|e| FailedReport {
        kind: "error".into(),
        message: format!("checkpoint {step}: {e}"),
        trace: String::new(),
    })
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f`, turning a training error or a panic into a failure report with
/// the backtrace of where it happened.
fn capture_panics<T>(f: impl FnOnce() -> Result<T, TrainError>) -> Result<T, FailedReport> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(trace));
            previous(info);
        }));
    });
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(FailedReport {
            kind: "error".into(),
            message: e.to_string(),
            trace: std::backtrace::Backtrace::force_capture().to_string(),
        }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(FailedReport {
                kind: "panic".into(),
                message: format!("panicked: {message}"),
                trace: LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_default(),
            })
        }
    }
}

struct WorkerObserver {
    handle: tokio::runtime::Handle,
    api: JobApi,
    shared: Arc<Shared>,
    last_saved: Option<u64>,
    last_train_loss: Option<f64>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn exploding_step() -> Result<u32, TrainError> {
        let v: Vec<u32> = Vec::new();
        // An out-of-bounds index: a real panic with a real backtrace.
        Ok(v[std::hint::black_box(3)])
    }

    #[test]
    fn panics_and_errors_become_failure_reports_with_frames() {
        let r = capture_panics(exploding_step).unwrap_err();
        assert_eq!(r.kind, "panic");
        assert!(r.message.contains("index out of bounds"), "{}", r.message);
        let frames = ftl_domain::job::failure::parse_frames(&r.trace);
        assert!(
            frames
                .iter()
                .any(|f| f.function.ends_with("exploding_step")),
            "{frames:?}"
        );
        let e = capture_panics(|| -> Result<(), TrainError> {
            Err(TrainError::Data("loss became NaN at step 7".into()))
        })
        .unwrap_err();
        assert_eq!(e.kind, "error");
        assert!(e.message.contains("loss became NaN at step 7"));
        // The same failure elsewhere groups with it; another one does not.
        let fp = |m: &str| ftl_domain::job::failure::fingerprint(m, &[]);
        assert_eq!(fp(&e.message), fp("dataset: loss became NaN at step 912"));
        assert_ne!(fp(&e.message), fp("checkpoint: storing failed"));
    }
}
