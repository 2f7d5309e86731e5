//! One claimed job: its dataset, base weights and checkpoint are fetched, the
//! trainer runs on a blocking thread, and the outcome is reported.

use super::WorkerOptions;
use super::api::{ApiError, JobApi};
use super::observer::WorkerObserver;
use super::panics::capture_panics;
use super::report::{ABANDON, CONTINUE, Intervals, Shared, reporter};
use crate::run::Outcome;
use crate::{Backend, Checkpoint, Dataset, Trainer, job};
use ftl_domain::job::logs::LogLevel as WireLevel;
use ftl_domain::job::worker_protocol::{BASE, Claim, FailedReport, PausedReport, Started};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub(super) async fn run_job(
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
            let outcome = crate::run::run(&mut trainer, &plan, &mut observer)?;
            Ok((outcome, observer.last_saved))
        })
    })
    .await
    .map_err(|e| fail(format!("training task: {e}")))?
}

async fn fetch_checkpoint(api: &JobApi, step: u64) -> Result<Checkpoint, FailedReport> {
    use crate::checkpoint::{META_FILE, MODEL_FILE, OPTIMIZER_FILE, REFERENCE_FILE};
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
