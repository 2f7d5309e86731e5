//! What a logging call records: its metric points, params and tags
//! checked by MLflow's rules, and appended under a command id taken from
//! their content, so a retried call adds nothing.

use super::{command, job_of, missing, not_found};
use crate::auth::Caller;
use crate::mlflow::command_error;
use crate::mlflow::wire::{self, KeyValueMsg, MlflowError};
use crate::state::AppState;
use ftl_commands::handler::append_metrics;
use ftl_domain::experiment::KeyValue;
use ftl_domain::ids::{JobId, command_id_from_key};
use ftl_domain::job::JobCommand;
use ftl_domain::metrics::MetricPoint;
use serde::Deserialize;
use uuid::Uuid;

/// A param or tag: the key is required and checked, a missing value is "".
pub(super) fn key_value(
    kind: &str,
    key: Option<String>,
    value: Option<String>,
) -> Result<KeyValue, MlflowError> {
    let key = key.ok_or_else(|| missing("key"))?;
    wire::validate_key(kind, &key)?;
    Ok(KeyValue::new(key, value.unwrap_or_default()))
}

/// The params or tags of a message (`kind` words the errors).
pub(super) fn kv_list(kind: &str, msgs: Vec<KeyValueMsg>) -> Result<Vec<KeyValue>, MlflowError> {
    msgs.into_iter()
        .map(|m| key_value(kind, m.key, m.value))
        .collect()
}

/// MLflow's `Metric` message as a request sends it.
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
    pub(super) fn point(self) -> Result<MetricPoint, MlflowError> {
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

/// Params, tags and metric points for one run. The command id comes from
/// the request's content, so a retried request (the client retries on 5xx
/// and 429) finds its events stored and adds nothing: the run-data events
/// replay, the metric batch's event id already exists.
pub(super) async fn record(
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
        .map_err(|e| command_error(e, || not_found(run_id)))?;
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
