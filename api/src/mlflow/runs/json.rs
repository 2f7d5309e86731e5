//! The response messages of runs and metrics (`Run`, `RunInfo`, `Metric`,
//! `Param`, `RunTag`), written straight to JSON: a search page of runs or a
//! 10,000-point history builds no tree.

use crate::mlflow::wire::Double;
use ftl_domain::ids::JobId;
use ftl_domain::job::{JobStatus, RunStatus, run_id_text};
use ftl_projections::views::metrics::LatestValue;
use ftl_projections::views::tracking::RunRow;
use serde::Serialize;

/// A run's status in MLflow's terms (a job status not known yet: running).
pub(super) fn run_status(r: &RunRow) -> RunStatus {
    JobStatus::parse(&r.status).map_or(RunStatus::Running, RunStatus::of_job)
}

/// A run's `lifecycle_stage`.
pub(super) fn lifecycle_stage(r: &RunRow) -> &'static str {
    if r.deleted { "deleted" } else { "active" }
}

/// The artifact root of a run, as the client resolves it.
pub(in crate::mlflow) fn artifact_uri(experiment_id: i64, run_id: &str) -> String {
    format!("mlflow-artifacts:/{experiment_id}/{run_id}/artifacts")
}

/// MLflow's `Metric` message.
#[derive(Serialize)]
pub(super) struct MetricOut<'a> {
    pub(super) key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) run_id: Option<&'a str>,
    pub(super) step: i64,
    pub(super) timestamp: i64,
    pub(super) value: Double,
}

pub(super) fn metric_json<'a>(m: &'a LatestValue, run_id: Option<&'a str>) -> MetricOut<'a> {
    MetricOut {
        key: &m.key,
        run_id,
        step: m.step,
        timestamp: m.timestamp_ms,
        value: Double(m.value),
    }
}

/// A page of a metric's history.
#[derive(Serialize)]
pub(super) struct HistoryOut<'a> {
    pub(super) metrics: Vec<MetricOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_page_token: Option<String>,
}

/// MLflow's `Param` and `RunTag` messages.
#[derive(Serialize)]
struct KeyValueOut<'a> {
    key: &'a str,
    value: &'a str,
}

fn kv_json(items: &[(String, String)]) -> Vec<KeyValueOut<'_>> {
    items
        .iter()
        .map(|(key, value)| KeyValueOut { key, value })
        .collect()
}

/// MLflow's `RunInfo` message.
#[derive(Serialize)]
pub(super) struct RunInfoOut<'a> {
    run_id: String,
    run_uuid: String,
    run_name: &'a str,
    experiment_id: String,
    user_id: &'a str,
    status: &'static str,
    start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<i64>,
    artifact_uri: String,
    lifecycle_stage: &'static str,
}

pub(super) fn run_info_json(r: &RunRow) -> RunInfoOut<'_> {
    let id = run_id_text(JobId(r.job_id));
    RunInfoOut {
        artifact_uri: artifact_uri(r.experiment_id, &id),
        run_uuid: id.clone(),
        run_id: id,
        run_name: &r.name,
        experiment_id: r.experiment_id.to_string(),
        user_id: &r.user_id,
        status: run_status(r).as_str(),
        start_time: r.start_time_ms,
        end_time: r.end_time_ms,
        lifecycle_stage: lifecycle_stage(r),
    }
}

/// MLflow's `Run` message.
#[derive(Serialize)]
pub(super) struct RunOut<'a> {
    info: RunInfoOut<'a>,
    data: RunDataOut<'a>,
    inputs: NoInputs,
}

#[derive(Serialize)]
struct RunDataOut<'a> {
    metrics: Vec<MetricOut<'a>>,
    params: Vec<KeyValueOut<'a>>,
    tags: Vec<KeyValueOut<'a>>,
}

/// Dataset inputs are not kept: always `{}`.
#[derive(Serialize)]
struct NoInputs {}

pub(super) fn run_json(r: &RunRow) -> RunOut<'_> {
    RunOut {
        info: run_info_json(r),
        data: RunDataOut {
            metrics: r.metrics.iter().map(|m| metric_json(m, None)).collect(),
            params: kv_json(&r.params),
            tags: kv_json(&r.tags),
        },
        inputs: NoInputs {},
    }
}

/// A page of `runs/search`.
#[derive(Serialize)]
pub(super) struct SearchOut<'a> {
    pub(super) runs: Vec<RunOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_page_token: Option<String>,
}
