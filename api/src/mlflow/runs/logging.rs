//! `runs/log-metric`, `log-parameter`, `set-tag`, `delete-tag` and
//! `log-batch`: what training code reports about a run while it runs.

use super::record::{MetricMsg, key_value, kv_list, record};
use super::{command, handle_job, job_of, missing, not_found};
use crate::mlflow::wire::{self, KeyValueMsg, MlflowError};
use crate::mlflow::{MAX_BATCH_BODY, MAX_BODY, caller, command_error, message, ok_empty};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_commands::CommandError;
use ftl_domain::DomainError;
use ftl_domain::experiment::KeyValue;
use ftl_domain::job::JobCommand;
use ftl_domain::project::Scope;
use serde::Deserialize;
use uuid::Uuid;

/// Batch limits of `runs/log-batch` (MLflow's).
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS: usize = 100;
pub const MAX_BATCH_TAGS: usize = 100;
pub const MAX_BATCH_ENTITIES: usize = 1000;

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
        Ok((run_id, key_value(kind, self.key, self.value)?))
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
    let cmd = JobCommand::DeleteRunTag { key: key.clone() };
    handle_job(&state, &c, job, &cmd, Uuid::new_v4())
        .await
        .map_err(|e| {
            // Not found: the run, or else the tag.
            let run_missing = matches!(
                &e,
                CommandError::Domain(DomainError::NotFound { entity: "job" })
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
