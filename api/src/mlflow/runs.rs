//! `runs/*` and `metrics/*`: MLflow runs are jobs (provider `external`).

use super::experiments::{find as find_experiment, view_lifecycle};
use super::search::{
    Clause, Entity, Lit, OrderBy, compare_num, compare_str, parse_filter, parse_order_by,
};
use super::wire::{self, Double, ErrorCode, KeyValueMsg, MlflowError};
use super::{
    MAX_BATCH_BODY, MAX_BODY, caller, command_error, db_error, decode_page_token,
    encode_page_token, max_results, message, ok_empty, settle,
};
use crate::auth::Caller;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_commands::handler::{append_metrics, handle};
use ftl_domain::experiment::{DEFAULT_EXPERIMENT_ID, KeyValue};
use ftl_domain::ids::{JobId, command_id_from_key, derive_entity_id};
use ftl_domain::job::{
    JobCommand, JobDecider, JobStatus, Provider, RUN_NAME_TAG, RunInfo, RunStatus, in_project,
    run_id_text,
};
use ftl_domain::metrics::MetricPoint;
use ftl_domain::project::Scope;
use ftl_projections::views::metrics::{self as metric_views, LatestValue};
use ftl_projections::views::tracking::{
    self, Keys, Lifecycle, RunDetail, RunRow, RunScope, experiment_number,
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cmp::Ordering;
use uuid::Uuid;

/// Batch limits of `runs/log-batch` (MLflow's).
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS: usize = 100;
pub const MAX_BATCH_TAGS: usize = 100;
pub const MAX_BATCH_ENTITIES: usize = 1000;
/// `metrics/get-history` pages.
pub const HISTORY_PAGE: usize = 25_000;
/// Runs named in one `get-history-bulk-interval`.
pub const MAX_BULK_RUNS: usize = 100;

fn not_found(run_id: &str) -> String {
    format!("Run with id={run_id} not found")
}

fn missing(field: &str) -> MlflowError {
    MlflowError::invalid(format!("Missing value for required parameter '{field}'."))
}

/// The job behind a run id (any other shape names no run).
fn job_of(run_id: &str) -> Result<JobId, MlflowError> {
    Uuid::parse_str(run_id)
        .map(JobId)
        .map_err(|_| MlflowError::new(ErrorCode::ResourceDoesNotExist, not_found(run_id)))
}

/// MLflow's `Metric` message, written straight to JSON (a 10,000-point
/// history builds no tree).
#[derive(Serialize)]
struct MetricOut<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<&'a str>,
    step: i64,
    timestamp: i64,
    value: Double,
}

fn metric_json<'a>(m: &'a LatestValue, run_id: Option<&'a str>) -> MetricOut<'a> {
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
struct HistoryOut<'a> {
    metrics: Vec<MetricOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
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
struct RunInfoOut<'a> {
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

fn run_info_json(r: &RunRow) -> RunInfoOut<'_> {
    let id = run_id_text(JobId(r.job_id));
    let status = JobStatus::parse(&r.status).map_or(RunStatus::Running, RunStatus::of_job);
    RunInfoOut {
        artifact_uri: format!("mlflow-artifacts:/{}/{id}/artifacts", r.experiment_id),
        run_uuid: id.clone(),
        run_id: id,
        run_name: &r.name,
        experiment_id: r.experiment_id.to_string(),
        user_id: &r.user_id,
        status: status.as_str(),
        start_time: r.start_time_ms,
        end_time: r.end_time_ms,
        lifecycle_stage: if r.deleted { "deleted" } else { "active" },
    }
}

/// MLflow's `Run` message, written straight to JSON (a search page of
/// runs builds no tree).
#[derive(Serialize)]
struct RunOut<'a> {
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

fn run_json(r: &RunRow) -> RunOut<'_> {
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
struct SearchOut<'a> {
    runs: Vec<RunOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// A run of the caller's project as the read models show it now.
pub(super) async fn find_run(
    state: &AppState,
    c: &Caller,
    run_id: &str,
) -> Result<RunRow, MlflowError> {
    let job = job_of(run_id)?;
    tracking::runs(
        &state.effects.db,
        c.project_id.0,
        RunScope::Jobs(std::slice::from_ref(&job.0)),
        RunDetail::ALL,
    )
    .await
    .map_err(db_error)?
    .pop()
    .ok_or_else(|| MlflowError::new(ErrorCode::ResourceDoesNotExist, not_found(run_id)))
}

/// Reads a run of the caller's project after the read models caught up.
pub(super) async fn read_run(
    state: &AppState,
    c: &Caller,
    run_id: &str,
) -> Result<RunRow, MlflowError> {
    settle(state).await?;
    find_run(state, c, run_id).await
}

/// Runs one job command for a run of the caller's project.
async fn command(
    state: &AppState,
    c: &Caller,
    run_id: &str,
    cmd: JobCommand,
    command_id: Uuid,
) -> Result<u64, MlflowError> {
    let job = job_of(run_id)?;
    let handled = handle::<JobDecider>(
        state.effects.store.as_ref(),
        &job.stream(),
        &cmd,
        command_id,
        &c.metadata(),
        in_project(c.project_id),
    )
    .await
    .map_err(|e| command_error(e, || not_found(run_id)))?;
    Ok(handled.position())
}

/// Params, tags and metric points for one run. The command id comes from
/// the request's content, so a retried request (the client retries on 5xx
/// and 429) finds its events stored and adds nothing: the run-data events
/// replay, the metric batch's event id already exists.
async fn record(
    state: &AppState,
    c: &Caller,
    run_id: &str,
    params: Vec<KeyValue>,
    tags: Vec<KeyValue>,
    points: Vec<MetricPoint>,
) -> Result<(), MlflowError> {
    let job = job_of(run_id)?;
    let cid = content_id(c, job, &params, &tags, &points);
    let cmd = JobCommand::RecordRunData {
        params,
        tags,
        metrics: !points.is_empty(),
    };
    // Validates everything (run state, write-once params) before the points
    // are appended: a rejected batch writes nothing.
    command(state, c, run_id, cmd, Uuid::new_v5(&cid, b"run-data")).await?;
    if !points.is_empty() {
        append_metrics(
            state.effects.store.as_ref(),
            job,
            points,
            cid,
            &c.metadata(),
        )
        .await
        .map_err(|e| super::command_error(e, || format!("Run with id={run_id} not found")))?;
    }
    Ok(())
}

/// A command id from the canonical content of a logging request.
fn content_id(
    c: &Caller,
    job: JobId,
    params: &[KeyValue],
    tags: &[KeyValue],
    points: &[MetricPoint],
) -> Uuid {
    let mut h = ftl_commands::digest::FieldHasher::new();
    let mut field = |b: &[u8]| h.field(b);
    for p in points {
        // NaN has many bit patterns; all log as the same point.
        let bits = if p.value.is_nan() {
            f64::NAN.to_bits()
        } else {
            p.value.to_bits()
        };
        field(p.key.as_bytes());
        field(&bits.to_le_bytes());
        field(&p.step.to_le_bytes());
        field(&p.timestamp_ms.to_le_bytes());
    }
    field(b"params");
    for kv in params {
        field(kv.key.as_bytes());
        field(kv.value.as_bytes());
    }
    field(b"tags");
    for kv in tags {
        field(kv.key.as_bytes());
        field(kv.value.as_bytes());
    }
    command_id_from_key(&format!("{}/mlflow-log/{job}", c.project_id), &h.hex())
}

// ---- runs ------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RunRef {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

impl RunRef {
    fn id(&self) -> Result<String, MlflowError> {
        wire::run_id(self.run_id.as_deref(), self.run_uuid.as_deref())
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Create {
    #[serde(deserialize_with = "wire::id_string")]
    experiment_id: Option<String>,
    user_id: Option<String>,
    run_name: Option<String>,
    #[serde(deserialize_with = "wire::int64")]
    start_time: Option<i64>,
    tags: Vec<KeyValueMsg>,
}

fn kv_list(kind: &str, msgs: Vec<KeyValueMsg>) -> Result<Vec<KeyValue>, MlflowError> {
    msgs.into_iter()
        .map(|m| {
            let key = m.key.ok_or_else(|| missing("key"))?;
            wire::validate_key(kind, &key)?;
            Ok(KeyValue::new(key, m.value.unwrap_or_default()))
        })
        .collect()
}

/// MLflow-style generated run names: `adjective-noun-NNN`.
fn generated_name() -> String {
    const ADJECTIVES: [&str; 16] = [
        "brave", "calm", "eager", "gentle", "jolly", "keen", "lively", "merry", "nimble", "proud",
        "quiet", "rapid", "shy", "swift", "tidy", "witty",
    ];
    const NOUNS: [&str; 16] = [
        "owl", "fox", "lynx", "crane", "otter", "hare", "wolf", "finch", "seal", "moth", "newt",
        "ram", "yak", "wren", "bee", "eel",
    ];
    let mut r = rand::rng();
    format!(
        "{}-{}-{:03}",
        ADJECTIVES[r.random_range(0..ADJECTIVES.len())],
        NOUNS[r.random_range(0..NOUNS.len())],
        r.random_range(0..1000)
    )
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let m: Create = message(&req, payload, MAX_BODY, &[]).await?;
    let experiment_id = m
        .experiment_id
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| DEFAULT_EXPERIMENT_ID.to_string());
    wire::validate_id(&experiment_id, "experiment_id", 64)?;
    settle(&state).await?;
    let experiment = find_experiment(&state, &c, &experiment_id).await?;
    if experiment.lifecycle != "active" {
        return Err(MlflowError::invalid(format!(
            "The experiment {experiment_id} must be in the 'active' state. Current state is {}.",
            experiment.lifecycle
        )));
    }
    let mut tags = kv_list("tag", m.tags)?;
    let tag_name = tags
        .iter()
        .rev()
        .find(|t| t.key == RUN_NAME_TAG)
        .map(|t| t.value.clone());
    let name = match (m.run_name.filter(|n| !n.is_empty()), tag_name) {
        (Some(a), Some(b)) if a != b => {
            return Err(MlflowError::invalid(format!(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='{a}', mlflow.runName='{b}')."
            )));
        }
        (Some(a), _) => a,
        (None, Some(b)) if !b.is_empty() => b,
        _ => generated_name(),
    };
    tags.retain(|t| t.key != RUN_NAME_TAG);
    tags.push(KeyValue::new(RUN_NAME_TAG, name.clone()));
    let cid = Uuid::new_v4();
    let job = JobId(derive_entity_id(cid, "job"));
    let cmd = JobCommand::Create {
        job_id: job,
        project_id: c.project_id,
        name,
        config: json!({}),
        tags: vec![],
        provider: Provider::External,
        run: RunInfo {
            experiment_id: experiment.experiment_id.to_string(),
            user_id: m.user_id.unwrap_or_default(),
            start_time_ms: m.start_time,
            tags,
            start: true,
        },
    };
    let run_id = run_id_text(job);
    command(&state, &c, &run_id, cmd, cid).await?;
    let run = read_run(&state, &c, &run_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "run": run_json(&run) })))
}

pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let m: RunRef = message(&req, payload, MAX_BODY, &[]).await?;
    let run = read_run(&state, &c, &m.id()?).await?;
    Ok(HttpResponse::Ok().json(json!({ "run": run_json(&run) })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Update {
    run_id: Option<String>,
    run_uuid: Option<String>,
    status: Option<String>,
    #[serde(deserialize_with = "wire::int64")]
    end_time: Option<i64>,
    run_name: Option<String>,
}

pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let m: Update = message(&req, payload, MAX_BODY, &[]).await?;
    let run_id = wire::run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let status = match m.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            MlflowError::invalid(format!("Invalid value '{s}' for parameter 'status'"))
        })?),
    };
    if let Some(name) = m.run_name.filter(|n| !n.is_empty()) {
        command(
            &state,
            &c,
            &run_id,
            JobCommand::Rename { name },
            Uuid::new_v4(),
        )
        .await?;
    }
    if let Some(status) = status {
        let cmd = JobCommand::ReportRunStatus {
            status,
            end_time_ms: m.end_time,
        };
        command(&state, &c, &run_id, cmd, Uuid::new_v4()).await?;
    }
    let run = read_run(&state, &c, &run_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "run_info": run_info_json(&run) })))
}

async fn simple(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    cmd: JobCommand,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let m: RunRef = message(&req, payload, MAX_BODY, &[]).await?;
    command(&state, &c, &m.id()?, cmd, Uuid::new_v4()).await?;
    Ok(ok_empty())
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    simple(state, req, payload, JobCommand::Delete).await
}

pub async fn restore(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    simple(state, req, payload, JobCommand::Restore).await
}

/// `runs/log-inputs`: datasets and models are accepted for a live run and
/// not recorded yet (the run is checked: unknown or deleted runs fail).
pub async fn log_inputs(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    simple(
        state,
        req,
        payload,
        JobCommand::RecordRunData {
            params: vec![],
            tags: vec![],
            metrics: false,
        },
    )
    .await
}

// ---- logging ---------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MetricMsg {
    key: Option<String>,
    #[serde(deserialize_with = "wire::double")]
    value: Option<f64>,
    #[serde(deserialize_with = "wire::int64")]
    timestamp: Option<i64>,
    #[serde(deserialize_with = "wire::int64")]
    step: Option<i64>,
}

impl MetricMsg {
    fn point(self) -> Result<MetricPoint, MlflowError> {
        let key = self.key.ok_or_else(|| missing("key"))?;
        wire::validate_key("metric", &key)?;
        let value = self.value.ok_or_else(|| missing("value"))?;
        let timestamp_ms = self.timestamp.ok_or_else(|| missing("timestamp"))?;
        if timestamp_ms < 0 {
            return Err(MlflowError::invalid(format!(
                "Got invalid timestamp {timestamp_ms} for metric '{key}' (value={value}). Timestamp must be a nonnegative long (64-bit integer)"
            )));
        }
        let step = self.step.unwrap_or(0);
        if step < 0 {
            return Err(MlflowError::invalid(format!(
                "Got invalid step {step} for metric '{key}' (value={value}). Steps must be nonnegative here."
            )));
        }
        if step > ftl_domain::limits::MAX_STEP {
            return Err(MlflowError::invalid(format!(
                "Got invalid step {step} for metric '{key}' (value={value}). Steps must be at most 2^53 - 1 ({}) here, so that every client reads them exactly.",
                ftl_domain::limits::MAX_STEP
            )));
        }
        Ok(MetricPoint {
            key,
            step,
            value,
            timestamp_ms,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LogMetric {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(flatten)]
    metric: MetricMsg,
}

pub async fn log_metric(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let m: LogMetric = message(&req, payload, MAX_BODY, &[]).await?;
    let run_id = wire::run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let point = m.metric.point()?;
    record(&state, &c, &run_id, vec![], vec![], vec![point]).await?;
    Ok(ok_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct KeyValueCall {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

impl KeyValueCall {
    fn parts(self, kind: &str) -> Result<(String, KeyValue), MlflowError> {
        let run_id = wire::run_id(self.run_id.as_deref(), self.run_uuid.as_deref())?;
        let key = self.key.ok_or_else(|| missing("key"))?;
        wire::validate_key(kind, &key)?;
        Ok((run_id, KeyValue::new(key, self.value.unwrap_or_default())))
    }
}

pub async fn log_parameter(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let m: KeyValueCall = message(&req, payload, MAX_BODY, &[]).await?;
    let (run_id, kv) = m.parts("param")?;
    record(&state, &c, &run_id, vec![kv], vec![], vec![]).await?;
    Ok(ok_empty())
}

pub async fn set_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let m: KeyValueCall = message(&req, payload, MAX_BODY, &[]).await?;
    let (run_id, kv) = m.parts("tag")?;
    // Tags are last-write-wins: a fresh command id, so setting A, B, then A
    // again takes effect.
    command(
        &state,
        &c,
        &run_id,
        JobCommand::RecordRunData {
            params: vec![],
            tags: vec![kv],
            metrics: false,
        },
        Uuid::new_v4(),
    )
    .await?;
    Ok(ok_empty())
}

pub async fn delete_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let m: KeyValueCall = message(&req, payload, MAX_BODY, &[]).await?;
    let run_id = wire::run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let key = m.key.ok_or_else(|| missing("key"))?;
    let job = job_of(&run_id)?;
    handle::<JobDecider>(
        state.effects.store.as_ref(),
        &job.stream(),
        &JobCommand::DeleteRunTag { key: key.clone() },
        Uuid::new_v4(),
        &c.metadata(),
        in_project(c.project_id),
    )
    .await
    .map_err(|e| {
        let run_missing = matches!(
            &e,
            ftl_commands::CommandError::Domain(ftl_domain::DomainError::NotFound { entity: "job" })
        );
        command_error(e, || {
            if run_missing {
                not_found(&run_id)
            } else {
                format!("No tag with name: {key} in run with id {run_id}")
            }
        })
    })?;
    Ok(ok_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LogBatch {
    run_id: Option<String>,
    run_uuid: Option<String>,
    metrics: Vec<MetricMsg>,
    params: Vec<KeyValueMsg>,
    tags: Vec<KeyValueMsg>,
}

fn batch_limit(what: &str, got: usize, max: usize) -> Result<(), MlflowError> {
    if got > max {
        return Err(MlflowError::invalid(format!(
            "A batch logging request can contain at most {max} {what}. Got {got} {what}. Please split up {what} across multiple requests and try again."
        )));
    }
    Ok(())
}

pub async fn log_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let m: LogBatch = message(&req, payload, MAX_BATCH_BODY, &[]).await?;
    let run_id = wire::run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    batch_limit("metrics", m.metrics.len(), MAX_BATCH_METRICS)?;
    batch_limit("params", m.params.len(), MAX_BATCH_PARAMS)?;
    batch_limit("tags", m.tags.len(), MAX_BATCH_TAGS)?;
    batch_limit(
        "metrics, params, and tags",
        m.metrics.len() + m.params.len() + m.tags.len(),
        MAX_BATCH_ENTITIES,
    )?;
    let points = m
        .metrics
        .into_iter()
        .map(MetricMsg::point)
        .collect::<Result<Vec<_>, _>>()?;
    let params = kv_list("param", m.params)?;
    let tags = kv_list("tag", m.tags)?;
    // An empty batch still checks that the run exists and is live.
    record(&state, &c, &run_id, params, tags, points).await?;
    Ok(ok_empty())
}

// ---- reading metrics -------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct History {
    run_id: Option<String>,
    run_uuid: Option<String>,
    metric_key: Option<String>,
    #[serde(deserialize_with = "wire::int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

pub async fn get_history(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let m: History = message(&req, payload, MAX_BODY, &[]).await?;
    let run_id = wire::run_id(m.run_id.as_deref(), m.run_uuid.as_deref())?;
    let key = m.metric_key.ok_or_else(|| missing("metric_key"))?;
    let offset = decode_page_token(m.page_token.as_deref())?;
    // Absent: everything at once; present: pages of at most 25,000.
    let page = match m.max_results {
        None => None,
        Some(n) if n <= 0 => {
            return Err(MlflowError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied."
            )));
        }
        Some(n) => Some((n as usize).min(HISTORY_PAGE)),
    };
    let run = read_run(&state, &c, &run_id).await?;
    // One row more than the page tells whether another page follows.
    let mut points = metric_views::history(
        &state.effects.db,
        run.job_id,
        &key,
        offset as i64,
        page.map(|p| p as i64 + 1),
    )
    .await
    .map_err(db_error)?;
    let more = page.is_some_and(|p| points.len() > p);
    if let Some(p) = page {
        points.truncate(p);
    }
    Ok(HttpResponse::Ok().json(HistoryOut {
        metrics: points
            .iter()
            .map(|p| MetricOut {
                key: &key,
                run_id: None,
                step: p.step,
                timestamp: p.timestamp_ms,
                value: Double(p.value),
            })
            .collect(),
        next_page_token: more.then(|| encode_page_token(offset + points.len())),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BulkInterval {
    run_ids: Vec<String>,
    metric_key: Option<String>,
    #[serde(deserialize_with = "wire::int64")]
    start_step: Option<i64>,
    #[serde(deserialize_with = "wire::int64")]
    end_step: Option<i64>,
    #[serde(deserialize_with = "wire::int64")]
    max_results: Option<i64>,
}

/// `metrics/get-history-bulk-interval`: for each run, the points at up to
/// `max_results` steps spread over the range, the first and last included.
/// The steps are chosen from the downsampled read model (one per bucket), so
/// a 10-million-point series costs a few thousand rows, not a scan.
pub async fn get_history_bulk_interval(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let m: BulkInterval = message(&req, payload, MAX_BODY, &["run_ids"]).await?;
    if m.run_ids.is_empty() {
        return Err(MlflowError::invalid(
            "GetMetricHistoryBulkInterval request must specify at least one run_id.",
        ));
    }
    if m.run_ids.len() > MAX_BULK_RUNS {
        return Err(MlflowError::invalid(format!(
            "GetMetricHistoryBulkInterval request cannot specify more than {MAX_BULK_RUNS} run_ids. Received {} run_ids.",
            m.run_ids.len()
        )));
    }
    let key = m.metric_key.ok_or_else(|| missing("metric_key"))?;
    let max = max_results(m.max_results, 2500, 2500)?;
    match (m.start_step, m.end_step) {
        (Some(a), Some(b)) if a > b => {
            return Err(MlflowError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={a} and end_step={b}."
            )));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(MlflowError::invalid(
                "If either start step or end step are specified, both must be specified.",
            ));
        }
        _ => {}
    }
    settle(&state).await?;
    let mut out = Vec::new();
    for run_id in &m.run_ids {
        wire::validate_id(run_id, "run_ids", 256)?;
        let run = find_run(&state, &c, run_id).await?;
        let series = metric_views::series(
            &state.effects.db,
            run.job_id,
            &key,
            m.start_step,
            m.end_step,
            max as i64,
        )
        .await
        .map_err(db_error)?;
        let mut steps: Vec<i64> = Vec::with_capacity(series.buckets.len() + 1);
        if let Some(first) = series.buckets.first() {
            steps.push(first.step);
        }
        steps.extend(series.buckets.iter().map(|b| b.last_step));
        steps.dedup();
        if steps.len() > max && steps.len() > 1 {
            steps.remove(1);
        }
        let points = metric_views::points_at_steps(&state.effects.db, run.job_id, &key, &steps)
            .await
            .map_err(db_error)?;
        let id = run_id_text(JobId(run.job_id));
        out.extend(points.iter().map(|p| json!(metric_json(p, Some(&id)))));
    }
    Ok(HttpResponse::Ok().json(json!({ "metrics": out })))
}

// ---- search ----------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Search {
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<String>,
    #[serde(deserialize_with = "wire::int64")]
    max_results: Option<i64>,
    order_by: Vec<String>,
    page_token: Option<String>,
}

fn attribute_str<'a>(r: &'a RunRow, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    Some(match key {
        "status" => Cow::Borrowed(
            JobStatus::parse(&r.status)
                .map_or(RunStatus::Running, RunStatus::of_job)
                .as_str(),
        ),
        "run_name" => Cow::Borrowed(r.name.as_str()),
        "user_id" => Cow::Borrowed(r.user_id.as_str()),
        "run_id" => Cow::Owned(run_id_text(JobId(r.job_id))),
        "lifecycle_stage" => Cow::Borrowed(if r.deleted { "deleted" } else { "active" }),
        _ => return None,
    })
}

fn attribute_num(r: &RunRow, key: &str) -> Option<f64> {
    match key {
        "start_time" => Some(r.start_time_ms as f64),
        "end_time" => r.end_time_ms.map(|t| t as f64),
        _ => None,
    }
}

fn lookup<'a>(items: &'a [(String, String)], key: &str) -> Option<&'a str> {
    items
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn metric(r: &RunRow, key: &str) -> Option<f64> {
    r.metrics.iter().find(|m| m.key == key).map(|m| m.value)
}

/// A sort key value: missing and NaN sort last whatever the direction.
#[derive(PartialEq, PartialOrd)]
enum SortValue<'a> {
    Num(f64),
    Str(std::borrow::Cow<'a, str>),
}

fn sort_value<'a>(r: &'a RunRow, o: &OrderBy) -> Option<SortValue<'a>> {
    match o.entity {
        Entity::Metric => metric(r, &o.key)
            .filter(|v| !v.is_nan())
            .map(SortValue::Num),
        Entity::Param => lookup(&r.params, &o.key).map(|v| SortValue::Str(v.into())),
        Entity::Tag => lookup(&r.tags, &o.key).map(|v| SortValue::Str(v.into())),
        Entity::Attribute => attribute_num(r, &o.key)
            .map(SortValue::Num)
            .or_else(|| attribute_str(r, &o.key).map(SortValue::Str)),
    }
}

pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let m: Search = message(&req, payload, MAX_BODY, &["experiment_ids", "order_by"]).await?;
    let limit = max_results(m.max_results, 1000, 50_000)?;
    let offset = decode_page_token(m.page_token.as_deref())?;
    let filter = m.filter.unwrap_or_default();
    let clauses = parse_filter(&filter)
        .map_err(|e| MlflowError::invalid(format!("Invalid filter '{filter}': {e}")))?;
    for cl in &clauses {
        if cl.entity == Entity::Attribute
            && !matches!(
                cl.key.as_str(),
                "status"
                    | "run_name"
                    | "user_id"
                    | "run_id"
                    | "lifecycle_stage"
                    | "start_time"
                    | "end_time"
            )
        {
            return Err(MlflowError::invalid(format!(
                "Invalid attribute key '{}' specified. Valid keys are 'status', 'run_name', 'user_id', 'run_id', 'start_time', 'end_time'",
                cl.key
            )));
        }
    }
    let orders = m
        .order_by
        .iter()
        .map(|o| parse_order_by(o).map_err(MlflowError::invalid))
        .collect::<Result<Vec<_>, _>>()?;
    for o in &orders {
        if o.entity == Entity::Attribute
            && !matches!(
                o.key.as_str(),
                "start_time" | "end_time" | "run_name" | "status" | "run_id" | "user_id"
            )
        {
            return Err(MlflowError::invalid(format!(
                "Invalid order_by key 'attributes.{}'",
                o.key
            )));
        }
    }
    let experiments: Vec<i64> = m
        .experiment_ids
        .iter()
        .filter_map(|e| experiment_number(e))
        .collect();
    let lifecycle = view_lifecycle(m.run_view_type.as_deref())?;
    // The listing the MLflow UI opens with (no filter, start-time order) is
    // a page in SQL; anything else is filtered and sorted here.
    let by_start = match orders.as_slice() {
        [] => Some(true),
        [o] if o.entity == Entity::Attribute && o.key == "start_time" => Some(!o.ascending),
        _ => None,
    };
    settle(&state).await?;
    let (ids, more) = match by_start {
        Some(newest) if clauses.is_empty() => tracking::runs_by_start(
            &state.effects.db,
            c.project_id.0,
            &experiments,
            lifecycle,
            newest,
            offset,
            limit,
        )
        .await
        .map_err(db_error)?,
        _ => {
            let runs =
                filtered_and_sorted(&state, &c, &experiments, lifecycle, &clauses, &orders).await?;
            let ids = runs
                .iter()
                .skip(offset)
                .take(limit)
                .map(|r| r.job_id)
                .collect();
            (ids, offset + limit < runs.len())
        }
    };
    let mut full: std::collections::HashMap<Uuid, RunRow> = tracking::runs(
        &state.effects.db,
        c.project_id.0,
        RunScope::Jobs(&ids),
        RunDetail::ALL,
    )
    .await
    .map_err(db_error)?
    .into_iter()
    .map(|r| (r.job_id, r))
    .collect();
    let page: Vec<RunRow> = ids.iter().filter_map(|id| full.remove(id)).collect();
    Ok(HttpResponse::Ok().json(SearchOut {
        runs: page.iter().map(run_json).collect(),
        next_page_token: more.then(|| encode_page_token(offset + limit)),
    }))
}

/// The runs of the experiments that pass the filter, in the search's order.
/// Each is read with only the keys the filter and the order name: a search
/// costs a row per run plus the page, not every param, tag and metric of
/// the experiments.
async fn filtered_and_sorted(
    state: &AppState,
    c: &Caller,
    experiments: &[i64],
    lifecycle: Lifecycle,
    clauses: &[Clause],
    orders: &[OrderBy],
) -> Result<Vec<RunRow>, MlflowError> {
    let wanted = |entity: Entity| -> Vec<String> {
        let mut keys: Vec<String> = clauses
            .iter()
            .map(|cl| (cl.entity, &cl.key))
            .chain(orders.iter().map(|o| (o.entity, &o.key)))
            .filter(|(e, _)| *e == entity)
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    };
    let (params, tags, metrics) = (
        wanted(Entity::Param),
        wanted(Entity::Tag),
        wanted(Entity::Metric),
    );
    let mut runs = Vec::new();
    for r in tracking::runs(
        &state.effects.db,
        c.project_id.0,
        RunScope::Experiments(experiments),
        RunDetail {
            params: Keys::Only(&params),
            tags: Keys::Only(&tags),
            metrics: Keys::Only(&metrics),
        },
    )
    .await
    .map_err(db_error)?
    {
        if !lifecycle.admits(r.deleted) {
            continue;
        }
        let keep = clauses.iter().all(|cl| match (cl.entity, &cl.value) {
            (Entity::Metric, Lit::Num(n)) => {
                metric(&r, &cl.key).is_some_and(|v| compare_num(cl.op, v, *n))
            }
            (Entity::Param, Lit::Str(s)) => {
                lookup(&r.params, &cl.key).is_some_and(|v| compare_str(cl.op, v, s))
            }
            (Entity::Tag, Lit::Str(s)) => {
                lookup(&r.tags, &cl.key).is_some_and(|v| compare_str(cl.op, v, s))
            }
            (Entity::Attribute, Lit::Num(n)) => {
                attribute_num(&r, &cl.key).is_some_and(|v| compare_num(cl.op, v, *n))
            }
            (Entity::Attribute, Lit::Str(s)) => {
                attribute_str(&r, &cl.key).is_some_and(|v| compare_str(cl.op, &v, s))
            }
            _ => false,
        });
        if keep {
            runs.push(r);
        }
    }
    runs.sort_by(|a, b| {
        for o in orders {
            let ord = match (sort_value(a, o), sort_value(b, o)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(x), Some(y)) => {
                    let ord = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                    if o.ascending { ord } else { ord.reverse() }
                }
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        // As `tracking::runs_by_start`: run ids are the UUIDs' hex, and
        // their bytes sort the same way.
        b.start_time_ms
            .cmp(&a.start_time_ms)
            .then(a.job_id.as_bytes().cmp(b.job_id.as_bytes()))
    });
    Ok(runs)
}
