//! `runs/create`, `update`, `delete`, `restore` and `log-inputs`: a run's
//! life from start to end, and out of and back into the trash.

use super::json::{run_info_json, run_json};
use super::record::kv_list;
use super::{RunRef, command, read_run};
use crate::mlflow::experiments::find as find_experiment;
use crate::mlflow::wire::{self, KeyValueMsg, MlflowError};
use crate::mlflow::{MAX_BODY, caller, message, ok_empty, settle};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_domain::experiment::{DEFAULT_EXPERIMENT_ID, KeyValue};
use ftl_domain::ids::{JobId, derive_entity_id};
use ftl_domain::job::{JobCommand, Provider, RUN_NAME_TAG, RunInfo, RunStatus, run_id_text};
use ftl_domain::project::Scope;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

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

/// A write that names a run and nothing else.
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
