//! `runs/get` and `runs/search`: runs as the read models show them, found
//! by id or by MLflow's filter and order-by language.

use super::json::{SearchOut, lifecycle_stage, run_json, run_status};
use super::{RunRef, read_run};
use crate::auth::Caller;
use crate::mlflow::experiments::view_lifecycle;
use crate::mlflow::search::{
    Clause, Entity, Lit, OrderBy, compare_num, compare_str, parse_filter, parse_order_by,
};
use crate::mlflow::wire::{self, MlflowError};
use crate::mlflow::{
    MAX_BODY, caller, db_error, decode_page_token, encode_page_token, max_results, message, settle,
};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_domain::ids::JobId;
use ftl_domain::job::run_id_text;
use ftl_domain::project::Scope;
use ftl_projections::views::tracking::{
    self, Keys, Lifecycle, RunDetail, RunRow, RunScope, experiment_number,
};
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;
use std::cmp::Ordering;
use uuid::Uuid;

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
pub struct Search {
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<String>,
    #[serde(deserialize_with = "wire::int64")]
    max_results: Option<i64>,
    order_by: Vec<String>,
    page_token: Option<String>,
}

fn attribute_str<'a>(r: &'a RunRow, key: &str) -> Option<Cow<'a, str>> {
    Some(match key {
        "status" => Cow::Borrowed(run_status(r).as_str()),
        "run_name" => Cow::Borrowed(r.name.as_str()),
        "user_id" => Cow::Borrowed(r.user_id.as_str()),
        "run_id" => Cow::Owned(run_id_text(JobId(r.job_id))),
        "lifecycle_stage" => Cow::Borrowed(lifecycle_stage(r)),
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
    Str(Cow<'a, str>),
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
