//! `metrics/get-history` and `metrics/get-history-bulk-interval`: a run's
//! metric points read back, in pages or downsampled over a step range.

use super::json::{HistoryOut, MetricOut, metric_json};
use super::{find_run, missing, read_run};
use crate::mlflow::wire::{self, Double, MlflowError};
use crate::mlflow::{
    MAX_BODY, caller, db_error, decode_page_token, encode_page_token, max_results, message, settle,
};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_domain::ids::JobId;
use ftl_domain::job::run_id_text;
use ftl_domain::project::Scope;
use ftl_projections::views::metrics as metric_views;
use serde::Deserialize;
use serde_json::json;

/// `metrics/get-history` pages.
pub const HISTORY_PAGE: usize = 25_000;
/// Runs named in one `get-history-bulk-interval`.
pub const MAX_BULK_RUNS: usize = 100;

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
